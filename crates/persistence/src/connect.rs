//! From a database URL to a connection pool.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{
    Builder, ConnectionManager, CustomizeConnection, HandleError, Pool, R2D2Connection,
};
use diesel::{Connection, PgConnection, SqliteConnection};

use crate::error::{ConnectError, connect_error};
use crate::{Backend, Pools};

/// How long filling the pool at start-up may take. A query's wait for a connection is
/// bounded by [`PoolOptions::checkout_timeout`] instead.
const FILL_TIMEOUT: Duration = Duration::from_secs(10);

/// The connection pool's size and patience.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolOptions {
    /// Connections kept open. At least 1.
    pub size: u32,
    /// How long an operation waits for a connection (a free one, or a new one to an
    /// unreachable database) before it fails with an unavailable
    /// [`StoreError`](portcullis_domain::StoreError).
    pub checkout_timeout: Duration,
}

impl PoolOptions {
    /// The default checkout timeout: 2 s.
    pub const DEFAULT_CHECKOUT_TIMEOUT: Duration = Duration::from_secs(2);

    /// `size` connections, with the default checkout timeout.
    pub fn with_size(size: u32) -> Self {
        Self {
            size,
            checkout_timeout: Self::DEFAULT_CHECKOUT_TIMEOUT,
        }
    }
}

/// Applied to every SQLite connection. `busy_timeout` comes first so that even the
/// switch to WAL waits for a lock rather than failing.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; \
     PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = NORMAL; \
     PRAGMA foreign_keys = ON;";

/// Where a database URL points.
#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    Postgres,
    Sqlite(&'a str),
}

impl<'a> Target<'a> {
    fn parse(url: &'a str) -> Result<Self, ConnectError> {
        let path = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres);
        } else if let Some(path) = url.strip_prefix("sqlite://") {
            path
        } else if let Some(path) = url.strip_prefix("sqlite:") {
            path
        } else if let Some((scheme, _)) = url.split_once("://") {
            return Err(ConnectError::UnsupportedScheme {
                scheme: scheme.to_owned(),
            });
        } else {
            url
        };
        if path.is_empty() || path == ":memory:" || path.contains("mode=memory") {
            return Err(ConnectError::InMemorySqlite);
        }
        Ok(Self::Sqlite(path))
    }
}

/// The SQLite file `url` names, or `None` for a PostgreSQL URL (for what lives beside
/// the database, such as a generated secrets key).
pub fn sqlite_path(url: &str) -> Result<Option<&str>, ConnectError> {
    Ok(match Target::parse(url)? {
        Target::Postgres => None,
        Target::Sqlite(path) => Some(path),
    })
}

/// Creates the SQLite file, if missing, readable by its owner only (0600): it holds
/// password hashes and sessions. SQLite creates its `-wal` and `-shm` files with the
/// database file's permissions, so they are 0600 too. An existing file is left as it
/// is.
fn create_private_file(path: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

#[derive(Clone, Copy, Debug)]
struct SqlitePragmas;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(SQLITE_PRAGMAS)
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// What the pool's last failed attempt to open a connection said: whether the database
/// refused us for good (it does not exist, the login is refused: the configuration is
/// wrong) rather than could not be reached (refused, reset, closed, starting up or
/// shutting down: an outage). A checkout that times out is an outage unless the last
/// attempt said the configuration is wrong.
#[derive(Debug, Default)]
pub(crate) struct ConnectHealth {
    misconfigured: AtomicBool,
}

impl ConnectHealth {
    pub(crate) fn misconfigured(&self) -> bool {
        self.misconfigured.load(Ordering::Relaxed)
    }

    fn record(&self, message: &str) {
        let message = message.to_lowercase();
        let misconfigured = ["does not exist", "authentication failed", "pg_hba.conf"]
            .iter()
            .any(|sign| message.contains(sign));
        self.misconfigured.store(misconfigured, Ordering::Relaxed);
    }
}

/// r2d2's error handler: records each failed connection attempt (see
/// [`ConnectHealth`]) and logs it, as r2d2's default handler would.
#[derive(Debug)]
struct RecordErrors(Arc<ConnectHealth>);

impl HandleError<diesel::r2d2::Error> for RecordErrors {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        let message = error.to_string();
        self.0.record(&message);
        tracing::warn!(error = %message, "cannot open a database connection");
    }
}

fn builder<C: R2D2Connection + 'static>(
    pool_size: u32,
    health: &Arc<ConnectHealth>,
) -> Builder<ConnectionManager<C>> {
    Pool::builder()
        .max_size(pool_size)
        .connection_timeout(FILL_TIMEOUT)
        .error_handler(Box::new(RecordErrors(health.clone())))
}

/// Opens one connection first, so that a wrong URL, a refused login or an unreachable
/// server fails at once and with the driver's reason rather than as a pool timeout.
/// Then fills the whole pool before returning: with no connection being opened in the
/// background, no pool thread is inside libpq's OpenSSL when the process exits, which
/// OpenSSL's exit handlers answer with a segfault.
pub(crate) fn pools(
    url: &str,
    pool_size: u32,
    health: &Arc<ConnectHealth>,
) -> Result<Pools, ConnectError> {
    let target = Target::parse(url)?;
    if pool_size == 0 {
        return Err(ConnectError::ZeroPoolSize);
    }
    match target {
        Target::Postgres => {
            let failed = |e: &dyn std::fmt::Display| connect_error(Backend::Postgres, url, e);
            PgConnection::establish(url).map_err(|e| failed(&e))?;
            let pool = builder(pool_size, health)
                .build(ConnectionManager::new(url))
                .map_err(|e| failed(&e))?;
            Ok(Pools::Postgres(pool))
        }
        Target::Sqlite(path) => {
            let failed = |e: &dyn std::fmt::Display| connect_error(Backend::Sqlite, url, e);
            // SQLite also accepts `file:` URIs; only a plain path is ours to create.
            if !path.starts_with("file:") {
                create_private_file(path).map_err(|e| failed(&e))?;
            }
            let mut probe = SqliteConnection::establish(path).map_err(|e| failed(&e))?;
            SqlitePragmas
                .on_acquire(&mut probe)
                .map_err(|e| failed(&e))?;
            let pool = builder(pool_size, health)
                .connection_customizer(Box::new(SqlitePragmas))
                .build(ConnectionManager::new(path))
                .map_err(|e| failed(&e))?;
            Ok(Pools::Sqlite(pool, Arc::default()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_the_backend() {
        for url in ["postgres://u:p@h/db", "postgresql://h/db"] {
            assert_eq!(Target::parse(url).unwrap(), Target::Postgres);
        }
        assert_eq!(
            Target::parse("sqlite:///var/lib/a.db").unwrap(),
            Target::Sqlite("/var/lib/a.db")
        );
        assert_eq!(
            Target::parse("sqlite://data/a.db").unwrap(),
            Target::Sqlite("data/a.db")
        );
        assert_eq!(
            Target::parse("sqlite:a.db").unwrap(),
            Target::Sqlite("a.db")
        );
        assert_eq!(Target::parse("./a.db").unwrap(), Target::Sqlite("./a.db"));
    }

    #[derive(diesel::QueryableByName, Debug, PartialEq)]
    struct Pragmas {
        #[diesel(sql_type = diesel::sql_types::Text)]
        journal_mode: String,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        busy_timeout: i32,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        foreign_keys: i32,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        synchronous: i32,
    }

    #[test]
    fn every_sqlite_connection_gets_the_pragmas() {
        use diesel::RunQueryDsl;

        let test = crate::testing::TestDatabase::sqlite();
        let Pools::Sqlite(pool, _) = &test.database().pools else {
            panic!("not SQLite");
        };
        // Two connections held at once, so both cannot be the probe's settings.
        let mut first = pool.get().unwrap();
        let mut second = pool.get().unwrap();
        for conn in [&mut first, &mut second] {
            let pragmas: Pragmas = diesel::sql_query(
                "SELECT (SELECT journal_mode FROM pragma_journal_mode) AS journal_mode, \
                        (SELECT timeout FROM pragma_busy_timeout) AS busy_timeout, \
                        (SELECT foreign_keys FROM pragma_foreign_keys) AS foreign_keys, \
                        (SELECT synchronous FROM pragma_synchronous) AS synchronous",
            )
            .get_result(&mut **conn)
            .unwrap();
            assert_eq!(
                pragmas,
                Pragmas {
                    journal_mode: "wal".into(),
                    busy_timeout: 5000,
                    foreign_keys: 1,
                    synchronous: 1, // NORMAL
                }
            );
        }
    }

    #[test]
    fn a_refused_login_or_a_missing_database_is_not_an_outage() {
        let health = ConnectHealth::default();
        assert!(!health.misconfigured());
        for (message, misconfigured) in [
            ("FATAL:  database \"pc_test_1\" does not exist", true),
            (
                "FATAL:  password authentication failed for user \"ada\"",
                true,
            ),
            ("FATAL:  no pg_hba.conf entry for host", true),
            (
                "connection to server at \"127.0.0.1\", port 5432 failed: Connection refused",
                false,
            ),
            ("server closed the connection unexpectedly", false),
            ("FATAL:  the database system is shutting down", false),
        ] {
            health.record(message);
            assert_eq!(health.misconfigured(), misconfigured, "{message}");
        }
    }

    #[test]
    fn unsupported_urls_are_refused() {
        assert!(matches!(
            Target::parse("mysql://u:p@h/db"),
            Err(ConnectError::UnsupportedScheme { scheme }) if scheme == "mysql"
        ));
        for url in [
            "sqlite::memory:",
            ":memory:",
            "sqlite://",
            "",
            "file:x?mode=memory",
        ] {
            assert!(
                matches!(Target::parse(url), Err(ConnectError::InMemorySqlite)),
                "{url:?}"
            );
        }
    }
}
