//! Portcullis's storage adapter: the domain's [`UserRepository`],
//! [`SessionRepository`] and [`ResetTokenRepository`] on PostgreSQL or SQLite, through
//! Diesel and an r2d2 connection pool.
//!
//! One [`Database`] serves either backend; which one is chosen by the URL given to
//! [`Database::connect`]. Every method blocks: async callers run them on a blocking
//! thread. The schema is created by [`Database::run_migrations`], from SQL embedded in
//! the binary.
//!
//! With the `testing` feature, [`testing::TestDatabase`] gives each test a fresh,
//! migrated database of either backend that is deleted when dropped.

mod backend;
mod connect;
mod error;
mod listen;
mod migrations;
mod pocketbase;
mod purge;
mod rows;
mod schema;
mod sql;
#[cfg(feature = "testing")]
pub mod testing;
mod types;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, TimeDelta, Utc};
use diesel::r2d2::{ConnectionManager, Pool, PoolError, PooledConnection, R2D2Connection};
use diesel::{PgConnection, SqliteConnection};
use portcullis_domain::{
    AccountUpdate, AuthEvent, ClientId, ClientRepository, CompleteResetError, CompletedReset,
    CreateUserError, Email, EndSessionError, EventFilter, EventRepository, ImportWriteError,
    MailId, MailOutbox, OutboxStatus, PasswordHash, QueuedMail, RefreshTokenRecord,
    RegisteredClient, ResetSecret, ResetTokenHash, ResetTokenRecord, ResetTokenRepository,
    RevocationReason, RotateError, SecretSealer, Session, SessionId, SessionRepository,
    SigningKeyRecord, SigningKeyRepository, StoreError, ThrottleRecord, ThrottleRepository,
    TokenId, User, UserId, UserImportRepository, UserRepository, Username, nonblocking,
};

pub use connect::{PoolOptions, sqlite_path};
pub use error::{ConnectError, MigrationError};
pub use listen::{Change, ChangeListener, ChangeSink, PROBE_INTERVAL};
pub use pocketbase::{PocketBaseAccounts, PocketBaseError};
pub use purge::Purged;

/// Which database a [`Database`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Postgres => "PostgreSQL",
            Self::Sqlite => "SQLite",
        })
    }
}

#[derive(Clone)]
enum Pools {
    Postgres(Pool<ConnectionManager<PgConnection>>),
    /// With the lock its write transactions take turns on (see `backend::sqlite`).
    Sqlite(
        Pool<ConnectionManager<SqliteConnection>>,
        Arc<std::sync::Mutex<()>>,
    ),
}

/// The store: a connection pool to PostgreSQL or SQLite, implementing the domain's
/// repository ports. Cloning is cheap and shares the pool.
#[derive(Clone)]
pub struct Database {
    pools: Pools,
    checkout_timeout: Duration,
    health: Arc<connect::ConnectHealth>,
    /// Seals the reset secrets of queued mail; without one they are stored as they are.
    sealer: Option<Arc<dyn SecretSealer>>,
    /// Where [`Database::listen_for_changes`] connects (PostgreSQL only).
    listen_url: Option<Arc<str>>,
}

/// How a sealed outbox secret starts, so rows written without a sealer still read.
const SEALED_SECRET: &str = "sealed:v1:";

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

/// A connection within `timeout`, else an unavailable [`StoreError`]: every connection
/// is busy, or none can be opened (the database is down or unreachable). When the last
/// attempt to open one was refused for good (no such database, login refused), it is a
/// plain failure instead: waiting will not help.
fn checkout<C: R2D2Connection + 'static>(
    pool: &Pool<ConnectionManager<C>>,
    timeout: Duration,
    health: &connect::ConnectHealth,
) -> Result<PooledConnection<ConnectionManager<C>>, StoreError> {
    if nonblocking::is_forbidden() {
        return Err(nonblocking::refuse());
    }
    pool.get_timeout(timeout).map_err(|error| {
        if health.misconfigured() {
            StoreError::new(error)
        } else {
            StoreError::unavailable(error)
        }
    })
}

/// Runs `$body` with `$conn` a pooled connection and `$q` the query module of the
/// database's backend: the body is written once and compiled for both.
macro_rules! with_conn {
    ($db:expr, |$conn:ident, $q:ident| $body:expr) => {
        with_conn!($db, $db.checkout_timeout, |$conn, $q| $body)
    };
    ($db:expr, $timeout:expr, |$conn:ident, $q:ident| $body:expr) => {
        match &$db.pools {
            Pools::Postgres(pool) => {
                use crate::backend::pg as $q;
                let mut pooled = checkout(pool, $timeout, &$db.health)?;
                let $conn = &mut *pooled;
                $body
            }
            Pools::Sqlite(pool, writer) => {
                use crate::backend::sqlite as $q;
                let _writer = $q::WriterScope::enter(writer);
                let mut pooled = checkout(pool, $timeout, &$db.health)?;
                let $conn = &mut *pooled;
                $body
            }
        }
    };
}

impl Database {
    /// Connects to `url`: `postgres://` or `postgresql://` is PostgreSQL; `sqlite://PATH`,
    /// `sqlite:PATH` or a plain path is SQLite (the file is created if missing, its
    /// directory is not). Opens one connection to check the URL, then a pool of
    /// `pool_size` connections. Does not run the migrations.
    pub fn connect(url: &str, pool_size: u32) -> Result<Database, ConnectError> {
        Self::connect_with(url, PoolOptions::with_size(pool_size))
    }

    /// [`Database::connect`] with the pool's size and checkout timeout. Every operation
    /// waits at most `options.checkout_timeout` for a connection; past it, it fails
    /// with an unavailable [`StoreError`] (a lost connection is one too).
    pub fn connect_with(url: &str, options: PoolOptions) -> Result<Database, ConnectError> {
        let health = Arc::default();
        let pools = connect::pools(url, options.size, &health)?;
        let listen_url = matches!(pools, Pools::Postgres(_)).then(|| url.into());
        Ok(Database {
            pools,
            checkout_timeout: options.checkout_timeout,
            health,
            sealer: None,
            listen_url,
        })
    }

    /// On PostgreSQL, a thread that reports every committed change to sessions and
    /// users to `sink`, over a connection of its own (reconnecting as needed), until
    /// the returned listener is dropped. `None` on SQLite, which cannot notify: a
    /// process there sees only its own changes.
    pub fn listen_for_changes(
        &self,
        sink: Arc<dyn ChangeSink>,
    ) -> std::io::Result<Option<ChangeListener>> {
        self.listen_url
            .as_deref()
            .map(|url| ChangeListener::spawn(url.to_owned(), sink))
            .transpose()
    }

    /// The same database, storing the reset secrets of queued mail sealed by `sealer`
    /// (bound to the message's id), so that a copy of the database does not yield a
    /// usable reset link. Pending rows sealed by another sealer no longer open.
    pub fn sealing_secrets_with(mut self, sealer: Arc<dyn SecretSealer>) -> Self {
        self.sealer = Some(sealer);
        self
    }

    /// The outbox form of `mail`'s secret: sealed when there is a sealer.
    fn stored_secret(&self, mail: &QueuedMail) -> Result<String, StoreError> {
        let secret = mail.secret.expose();
        match &self.sealer {
            None => Ok(secret.to_owned()),
            Some(sealer) => {
                let sealed = sealer
                    .seal(&mail.id.to_string(), secret)
                    .map_err(StoreError::new)?;
                Ok(format!("{SEALED_SECRET}{}", BASE64.encode(sealed)))
            }
        }
    }

    /// The secret of a leased message, opened if it was sealed.
    fn opened(&self, mut mail: QueuedMail) -> Result<QueuedMail, StoreError> {
        let Some(sealed) = mail.secret.expose().strip_prefix(SEALED_SECRET) else {
            return Ok(mail);
        };
        let sealer = self.sealer.as_ref().ok_or_else(|| {
            StoreError::new("a queued message's secret is sealed, and no sealer is configured")
        })?;
        let bytes = BASE64
            .decode(sealed)
            .map_err(|e| StoreError::new(format!("a sealed outbox secret: {e}")))?;
        let secret = sealer
            .open(&mail.id.to_string(), &bytes)
            .map_err(StoreError::new)?;
        mail.secret = ResetSecret::from_presented(&secret);
        Ok(mail)
    }

    pub fn backend(&self) -> Backend {
        match self.pools {
            Pools::Postgres(_) => Backend::Postgres,
            Pools::Sqlite(..) => Backend::Sqlite,
        }
    }

    /// Applies the pending migrations. Idempotent, and safe when several processes start
    /// at once: they take turns (a PostgreSQL advisory lock, SQLite's write lock).
    pub fn run_migrations(&self) -> Result<(), MigrationError> {
        self.migrate(migrations::Direction::Up)
    }

    /// Reverts every applied migration, leaving an empty database.
    pub fn revert_all_migrations(&self) -> Result<(), MigrationError> {
        self.migrate(migrations::Direction::RevertAll)
    }

    fn migrate(&self, direction: migrations::Direction) -> Result<(), MigrationError> {
        let lost = |e: PoolError| MigrationError::Connection(e.into());
        match &self.pools {
            Pools::Postgres(pool) => {
                migrations::postgres(&mut *pool.get().map_err(lost)?, direction)
            }
            Pools::Sqlite(pool, _) => {
                migrations::sqlite(&mut *pool.get().map_err(lost)?, direction)
            }
        }
    }

    /// Runs `SELECT 1`: whether the database answers, for readiness checks.
    pub fn ping(&self) -> Result<(), StoreError> {
        with_conn!(self, |conn, q| q::ping(conn))
    }

    /// [`Database::ping`], waiting at most `timeout` (or the checkout timeout, if
    /// shorter) for a connection.
    pub fn ping_within(&self, timeout: Duration) -> Result<(), StoreError> {
        with_conn!(self, timeout.min(self.checkout_timeout), |conn, q| q::ping(
            conn
        ))
    }

    /// How long an operation waits for a connection.
    pub fn checkout_timeout(&self) -> Duration {
        self.checkout_timeout
    }

    /// The pool's connections now: `(idle, in use)`.
    pub fn pool_connections(&self) -> (u32, u32) {
        let state = match &self.pools {
            Pools::Postgres(pool) => pool.state(),
            Pools::Sqlite(pool, _) => pool.state(),
        };
        (
            state.idle_connections,
            state.connections - state.idle_connections,
        )
    }

    /// Deletes expired sessions (with their refresh tokens), expired refresh tokens,
    /// used or expired reset tokens, as of `now`, security events from before
    /// `events_before` and throttle counters last hit before `throttles_before`.
    /// `Ok(None)` when another instance is purging the same database at this moment
    /// (PostgreSQL; they take turns).
    pub fn purge(
        &self,
        now: DateTime<Utc>,
        events_before: DateTime<Utc>,
        throttles_before: DateTime<Utc>,
    ) -> Result<Option<Purged>, StoreError> {
        with_conn!(self, |conn, q| q::purge(
            conn,
            now,
            events_before,
            throttles_before
        ))
    }

    /// The stored secret `name`; if there is none yet, stores `generate()` and returns
    /// it. Race-safe across processes: whichever inserts first wins, and every caller
    /// gets that value. `generate` runs only when the secret is absent.
    pub fn load_or_create_secret(
        &self,
        name: &str,
        generate: impl FnOnce() -> Vec<u8>,
    ) -> Result<Vec<u8>, StoreError> {
        with_conn!(self, |conn, q| q::load_or_create_secret(
            conn, name, generate
        ))
    }
}

impl Database {
    /// Moves the plaintext secret `name` of `server_secrets` (the HS256 key generated
    /// before keys were sealed) into `signing_keys` as `seal` makes it of the secret
    /// and the time it was stored, and deletes the plaintext, in one transaction.
    /// Returns the imported key, or `None` when there is nothing to import. Race-safe:
    /// of instances starting together, one imports.
    pub fn import_legacy_secret(
        &self,
        name: &str,
        seal: impl FnOnce(&[u8], DateTime<Utc>) -> Result<SigningKeyRecord, error::BoxError>,
    ) -> Result<Option<SigningKeyRecord>, StoreError> {
        with_conn!(self, |conn, q| q::import_legacy_secret(conn, name, seal))
    }
}

impl SigningKeyRepository for Database {
    fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        with_conn!(self, |conn, q| q::signing_keys(conn))
    }

    fn find_signing_key(&self, kid: &str) -> Result<Option<SigningKeyRecord>, StoreError> {
        with_conn!(self, |conn, q| q::find_signing_key(conn, kid))
    }

    fn insert_signing_key(
        &self,
        key: &SigningKeyRecord,
        only_if_none_active: bool,
    ) -> Result<bool, StoreError> {
        with_conn!(self, |conn, q| q::insert_signing_key(
            conn,
            key,
            only_if_none_active
        ))
    }

    fn retire_signing_key(&self, kid: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        with_conn!(self, |conn, q| q::retire_signing_key(conn, kid, at))
    }
}

impl UserImportRepository for Database {
    fn find_accounts(
        &self,
        emails: &[Email],
        usernames: &[Username],
    ) -> Result<Vec<User>, StoreError> {
        with_conn!(self, |conn, q| q::find_accounts(conn, emails, usernames))
    }

    fn write_import(
        &self,
        created: &[User],
        updated: &[AccountUpdate],
        events: &[AuthEvent],
    ) -> Result<(), ImportWriteError> {
        with_conn!(self, |conn, q| q::write_import(
            conn, created, updated, events
        ))
    }
}

impl UserRepository for Database {
    fn create(&self, user: &User, event: &AuthEvent) -> Result<(), CreateUserError> {
        with_conn!(self, |conn, q| q::create_user(conn, user, event))
    }

    fn find_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        with_conn!(self, |conn, q| q::find_user_by_id(conn, id))
    }

    fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        with_conn!(self, |conn, q| q::find_user_by_email(conn, email))
    }

    fn find_by_username(&self, username: &Username) -> Result<Option<User>, StoreError> {
        with_conn!(self, |conn, q| q::find_user_by_username(conn, username))
    }

    fn replace_password_hash(
        &self,
        id: UserId,
        verified: &PasswordHash,
        new: &PasswordHash,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        with_conn!(self, |conn, q| q::replace_password_hash(
            conn, id, verified, new, now
        ))
    }
}

impl ThrottleRepository for Database {
    fn get(&self, key: &str) -> Result<Option<ThrottleRecord>, StoreError> {
        with_conn!(self, |conn, q| q::get_throttle(conn, key))
    }

    fn hit(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: TimeDelta,
    ) -> Result<ThrottleRecord, StoreError> {
        with_conn!(self, |conn, q| q::hit_throttle(conn, key, now, window))
    }

    fn claim(
        &self,
        key: &str,
        seen: Option<ThrottleRecord>,
        now: DateTime<Utc>,
        window: TimeDelta,
    ) -> Result<Option<ThrottleRecord>, StoreError> {
        with_conn!(self, |conn, q| q::claim_throttle(
            conn, key, seen, now, window
        ))
    }

    fn release(&self, key: &str) -> Result<(), StoreError> {
        with_conn!(self, |conn, q| q::release_throttle(conn, key))
    }

    fn clear(&self, key: &str) -> Result<(), StoreError> {
        with_conn!(self, |conn, q| q::clear_throttle(conn, key))
    }
}

impl MailOutbox for Database {
    fn lease_due(
        &self,
        now: DateTime<Utc>,
        lease: TimeDelta,
        limit: u32,
    ) -> Result<Vec<QueuedMail>, StoreError> {
        let leased = with_conn!(self, |conn, q| q::lease_due_mail(conn, now, lease, limit))?;
        leased.into_iter().map(|mail| self.opened(mail)).collect()
    }

    fn delivered(&self, id: MailId) -> Result<(), StoreError> {
        with_conn!(self, |conn, q| q::mail_delivered(conn, id))
    }

    fn retry_at(&self, id: MailId, retry_at: DateTime<Utc>, error: &str) -> Result<(), StoreError> {
        with_conn!(self, |conn, q| q::retry_mail_at(conn, id, retry_at, error))
    }

    fn give_up(&self, id: MailId, now: DateTime<Utc>, error: &str) -> Result<(), StoreError> {
        with_conn!(self, |conn, q| q::give_up_mail(conn, id, now, error))
    }

    fn status(&self) -> Result<OutboxStatus, StoreError> {
        with_conn!(self, |conn, q| q::outbox_status(conn))
    }
}

impl ClientRepository for Database {
    fn create_client(&self, client: &RegisteredClient) -> Result<(), StoreError> {
        with_conn!(self, |conn, q| q::create_client(conn, client))
    }

    fn find_client(&self, id: ClientId) -> Result<Option<RegisteredClient>, StoreError> {
        with_conn!(self, |conn, q| q::find_client(conn, id))
    }

    fn list_clients(&self) -> Result<Vec<RegisteredClient>, StoreError> {
        with_conn!(self, |conn, q| q::list_clients(conn))
    }

    fn delete_client(&self, id: ClientId) -> Result<bool, StoreError> {
        with_conn!(self, |conn, q| q::delete_client(conn, id))
    }
}

impl EventRepository for Database {
    fn record(&self, event: &AuthEvent) -> Result<(), StoreError> {
        with_conn!(self, |conn, q| q::record_event(conn, event))
    }

    fn list(&self, filter: &EventFilter) -> Result<Vec<AuthEvent>, StoreError> {
        with_conn!(self, |conn, q| q::list_events(conn, filter))
    }
}

impl SessionRepository for Database {
    fn create(
        &self,
        session: &Session,
        first_token: &RefreshTokenRecord,
        event: Option<&AuthEvent>,
    ) -> Result<(), StoreError> {
        with_conn!(self, |conn, q| q::create_session(
            conn,
            session,
            first_token,
            event
        ))
    }

    fn find(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        with_conn!(self, |conn, q| q::find_session(conn, id))
    }

    fn refresh_token(&self, id: TokenId) -> Result<Option<RefreshTokenRecord>, StoreError> {
        with_conn!(self, |conn, q| q::find_refresh_token(conn, id))
    }

    fn rotate(
        &self,
        presented: TokenId,
        successor: &RefreshTokenRecord,
        now: DateTime<Utc>,
        grace: TimeDelta,
        event: &AuthEvent,
    ) -> Result<(), RotateError> {
        with_conn!(self, |conn, q| q::rotate(
            conn, presented, successor, now, grace, event
        ))
    }

    fn end_by_refresh_token(
        &self,
        token: TokenId,
        reason: RevocationReason,
        now: DateTime<Utc>,
        event: &AuthEvent,
    ) -> Result<SessionId, EndSessionError> {
        with_conn!(self, |conn, q| q::end_by_refresh_token(
            conn, token, reason, now, event
        ))
    }

    fn revoke(
        &self,
        id: SessionId,
        reason: RevocationReason,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_conn!(self, |conn, q| q::revoke(conn, id, reason, now))
    }

    fn revoke_all_for_user(
        &self,
        user: UserId,
        reason: RevocationReason,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        with_conn!(self, |conn, q| q::revoke_all_for_user(
            conn, user, reason, now
        ))
    }
}

impl ResetTokenRepository for Database {
    fn create(
        &self,
        token: &ResetTokenRecord,
        event: &AuthEvent,
        mail: Option<&QueuedMail>,
    ) -> Result<(), StoreError> {
        let mail = match mail {
            Some(mail) => Some((mail, self.stored_secret(mail)?)),
            None => None,
        };
        let mail = mail.as_ref().map(|(mail, secret)| (*mail, secret.as_str()));
        with_conn!(self, |conn, q| q::create_reset_token(
            conn, token, event, mail
        ))
    }

    fn find_valid(
        &self,
        hash: &ResetTokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<ResetTokenRecord>, StoreError> {
        with_conn!(self, |conn, q| q::find_valid_reset_token(conn, hash, now))
    }

    fn complete_reset(
        &self,
        hash: &ResetTokenHash,
        new_password_hash: &PasswordHash,
        now: DateTime<Utc>,
        event: &AuthEvent,
    ) -> Result<CompletedReset, CompleteResetError> {
        with_conn!(self, |conn, q| q::complete_reset(
            conn,
            hash,
            new_password_hash,
            now,
            event
        ))
    }
}
