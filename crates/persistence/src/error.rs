//! The adapter's own errors, and the mapping of Diesel's errors onto the ports' errors.

use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind, Error as DieselError};
use portcullis_domain::{CreateUserError, StoreError};

use crate::Backend;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why [`Database::connect`](crate::Database::connect) failed. Messages never include
/// the password of the URL.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "unsupported database URL scheme `{scheme}`: use postgres://, postgresql://, sqlite:// or a file path"
    )]
    UnsupportedScheme { scheme: String },
    #[error(
        "an in-memory or temporary SQLite database cannot be shared by a connection pool: give a file path"
    )]
    InMemorySqlite,
    #[error("the connection pool size must be at least 1")]
    ZeroPoolSize,
    /// The first connection failed: the server is unreachable, refused the login, or
    /// the SQLite file cannot be opened or configured.
    #[error("cannot connect to {backend} at {location}: {source}")]
    Connect {
        backend: Backend,
        /// The URL with its password replaced by `***`.
        location: String,
        #[source]
        source: BoxError,
    },
}

/// Why running or reverting the migrations failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("no database connection for the migrations: {0}")]
    Connection(#[source] BoxError),
    /// Taking or releasing the migration lock failed.
    #[error("cannot lock the database for the migrations: {0}")]
    Lock(#[source] BoxError),
    #[error("database migration failed: {0}")]
    Migration(#[source] BoxError),
}

/// A Diesel error as the ports' error: [`StoreError::unavailable`] when the connection
/// was lost or the database is locked past its busy timeout (see [`is_unreachable`]).
pub(crate) fn store(error: DieselError) -> StoreError {
    if is_unreachable(&error) {
        StoreError::unavailable(error)
    } else {
        StoreError::new(error)
    }
}

/// Whether `error` says the database could not be reached, rather than refused or
/// failed the statement: the connection closed or broke (the server stopped or
/// restarted, the network failed), or SQLite stayed locked past `busy_timeout`.
pub(crate) fn is_unreachable(error: &DieselError) -> bool {
    match error {
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => true,
        DieselError::DatabaseError(_, info) => info.message().contains("database is locked"),
        DieselError::RollbackErrorOnCommit { commit_error, .. } => is_unreachable(commit_error),
        _ => false,
    }
}

/// What a unique-constraint violation on `users` means, by the index that caught it:
/// PostgreSQL names it as the constraint, SQLite only in the message
/// ("UNIQUE constraint failed: index 'users_email_lower'").
pub(crate) fn create_user_error(error: DieselError) -> CreateUserError {
    if let DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) = &error {
        if names_index(info.as_ref(), "users_email_lower") {
            return CreateUserError::EmailTaken;
        }
        if names_index(info.as_ref(), "users_username_lower") {
            return CreateUserError::UsernameTaken;
        }
    }
    CreateUserError::Store(store(error))
}

fn names_index(info: &dyn DatabaseErrorInformation, index: &str) -> bool {
    info.constraint_name() == Some(index) || info.message().contains(&format!("'{index}'"))
}

/// Ends a transaction early: a database failure, or a refusal that rolls it back.
pub(crate) enum Abort<E> {
    Db(DieselError),
    Refuse(E),
}

impl<E> From<DieselError> for Abort<E> {
    fn from(error: DieselError) -> Self {
        Self::Db(error)
    }
}

impl<E: From<StoreError>> Abort<E> {
    pub(crate) fn into_error(self) -> E {
        match self {
            Self::Db(error) => store(error).into(),
            Self::Refuse(refusal) => refusal,
        }
    }
}

/// `url` with the password, if any, replaced by `***`.
pub(crate) fn redact_url(url: &str) -> String {
    match url_password(url) {
        Some(password) => url.replacen(&format!(":{password}@"), ":***@", 1),
        None => url.to_owned(),
    }
}

/// `message` with every occurrence of the URL's password replaced by `***`, for error
/// texts from drivers that might echo part of a malformed URL.
pub(crate) fn scrub(message: &str, url: &str) -> String {
    match url_password(url) {
        Some(password) if !password.is_empty() => message.replace(password, "***"),
        _ => message.to_owned(),
    }
}

/// The password of `scheme://user:password@host/...`; the user info ends at the last `@`.
fn url_password(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let (user_info, _) = rest.rsplit_once('@')?;
    let (_, password) = user_info.split_once(':')?;
    Some(password)
}

/// A connection error with the password scrubbed from its text.
pub(crate) fn connect_error(
    backend: Backend,
    url: &str,
    error: impl std::fmt::Display,
) -> ConnectError {
    ConnectError::Connect {
        backend,
        location: redact_url(url),
        source: scrub(&error.to_string(), url).into(),
    }
}

#[cfg(test)]
mod tests {
    use diesel::result::DatabaseErrorInformation;

    use super::*;

    #[derive(Debug)]
    struct Message(&'static str);

    impl DatabaseErrorInformation for Message {
        fn message(&self) -> &str {
            self.0
        }
        fn details(&self) -> Option<&str> {
            None
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            None
        }
        fn column_name(&self) -> Option<&str> {
            None
        }
        fn constraint_name(&self) -> Option<&str> {
            None
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
    }

    fn database_error(kind: DatabaseErrorKind, message: &'static str) -> DieselError {
        DieselError::DatabaseError(kind, Box::new(Message(message)))
    }

    #[test]
    fn a_lost_connection_or_a_locked_database_is_unavailable() {
        for error in [
            database_error(
                DatabaseErrorKind::ClosedConnection,
                "server closed the connection unexpectedly",
            ),
            database_error(DatabaseErrorKind::UnableToSendCommand, "no connection"),
            database_error(DatabaseErrorKind::Unknown, "database is locked"),
            DieselError::RollbackErrorOnCommit {
                rollback_error: Box::new(DieselError::BrokenTransactionManager),
                commit_error: Box::new(database_error(
                    DatabaseErrorKind::ClosedConnection,
                    "terminating connection",
                )),
            },
        ] {
            assert!(store(error).is_unavailable());
        }
        for error in [
            database_error(DatabaseErrorKind::UniqueViolation, "duplicate key"),
            database_error(DatabaseErrorKind::Unknown, "syntax error"),
            DieselError::NotFound,
        ] {
            assert!(!store(error).is_unavailable());
        }
    }

    #[test]
    fn redacts_the_password_only() {
        assert_eq!(
            redact_url("postgres://ada:s3cr3t@db.example:5432/auth?sslmode=require"),
            "postgres://ada:***@db.example:5432/auth?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://ada@db.example/auth"),
            "postgres://ada@db.example/auth"
        );
        assert_eq!(redact_url("/var/lib/auth.db"), "/var/lib/auth.db");
        // An unencoded '@' in the password: the user info still ends at the last one.
        assert_eq!(
            redact_url("postgres://ada:p@ss@db/auth"),
            "postgres://ada:***@db/auth"
        );
    }

    #[test]
    fn scrubs_the_password_from_driver_messages() {
        let url = "postgres://ada:p@ss@db/auth";
        assert_eq!(scrub("bad option p@ss, p@ss", url), "bad option ***, ***");
        let error = connect_error(Backend::Postgres, url, "password p@ss rejected");
        let text = error.to_string();
        assert!(!text.contains("p@ss"), "{text}");
        assert!(text.contains("postgres://ada:***@db/auth"), "{text}");
    }
}
