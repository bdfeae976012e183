//! The database a test server runs on, and the environment it starts with.

/// The database behind a test.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A fixed key sealing the test servers' signing keys (test code only).
pub const TEST_SECRETS_KEY_B64: &str = "dGVzdC1vbmx5LXNlY3JldHMta2V5LTAxMjM0NTY3ODk=";

/// The environment every test server starts from, on the database at `database_url`:
/// a port the kernel picks on loopback, cheap argon2 (the parameters' effect is the
/// crypto crate's concern) and few workers, so that parallel tests do not exhaust the
/// machine. A fixed secrets key (`PORTCULLIS_SECRETS_KEY`), as PostgreSQL needs one. No
/// refresh grace period, so that a spent token presented again is reuse at
/// once, as the reuse tests expect; the grace period's own tests turn it on. A
/// registration limit per address that loopback tests never reach.
pub fn server_env(database_url: &str) -> Vec<(&'static str, String)> {
    [
        ("DATABASE_URL", database_url),
        // PostgreSQL refuses to start without one; SQLite would generate a file.
        ("PORTCULLIS_SECRETS_KEY", TEST_SECRETS_KEY_B64),
        ("PORTCULLIS_BIND", "127.0.0.1:0"),
        ("PORTCULLIS_WORKERS", "2"),
        ("PORTCULLIS_ARGON2_MEMORY_KIB", "1024"),
        ("PORTCULLIS_ARGON2_ITERATIONS", "1"),
        ("PORTCULLIS_ARGON2_PARALLELISM", "1"),
        ("PORTCULLIS_REFRESH_GRACE_SECS", "0"),
        // The outbox is delivered in the background: promptly, so tests wait little.
        ("PORTCULLIS_MAIL_POLL_MS", "20"),
        // Every test client is 127.0.0.1: the per-address registration limit would
        // otherwise cap the accounts a test may make.
        ("PORTCULLIS_THROTTLE_IP_REGISTRATIONS", "100000"),
    ]
    .into_iter()
    .map(|(name, value)| (name, value.to_owned()))
    .collect()
}

/// Declares a module's tests that take a [`Backend`]. Those under `both` run once on
/// PostgreSQL and once on SQLite (`<module>::postgres::<name>`, `<module>::sqlite::<name>`):
/// races, replay detection, rotation, single use, case folding, stored timestamps and
/// JSON, everything whose outcome the store decides. Those under `sqlite` only on
/// SQLite: their behaviour is the same on either store, which the persistence crate's
/// contract tests establish once for all.
#[macro_export]
macro_rules! on_backends {
    (both: [$($both:ident),* $(,)?] $(, sqlite: [$($sqlite:ident),* $(,)?])? $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $both() {
                    super::$both($crate::support::backend::Backend::Postgres).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $both() {
                    super::$both($crate::support::backend::Backend::Sqlite).await;
                }
            )*
            $($(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $sqlite() {
                    super::$sqlite($crate::support::backend::Backend::Sqlite).await;
                }
            )*)?
        }
    };
}
