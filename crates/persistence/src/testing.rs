//! Test support (feature `testing`): every [`TestDatabase`] is a brand-new, migrated
//! database of its own, deleted when dropped, so tests run in parallel without sharing
//! state.
//!
//! PostgreSQL databases are created through the admin URL in the environment variable
//! `TEST_DATABASE_URL` (default [`DEFAULT_ADMIN_URL`]; `scripts/test-db.sh` sets that
//! server up). Its role needs `CREATEDB`. An unreachable server fails the test: nothing
//! is skipped silently.
//!
//! ```
//! use portcullis_domain::{UserId, UserRepository};
//! use portcullis_persistence::testing::TestDatabase;
//!
//! let db = TestDatabase::sqlite();
//! let unknown = UserId::generate(chrono::Utc::now());
//! assert!(db.database().find_by_id(unknown).unwrap().is_none());
//! ```

use std::fmt;

use diesel::{Connection, PgConnection, RunQueryDsl};
use portcullis_domain::StoreError;
use tempfile::TempDir;

use crate::error::redact_url;
use crate::{Backend, Database, Pools};

/// The admin URL used when `TEST_DATABASE_URL` is not set.
pub const DEFAULT_ADMIN_URL: &str = "postgres://portcullis_test:portcullis_test@127.0.0.1:5432/postgres?sslmode=disable&gssencmode=disable";

/// Enough connections for the concurrency tests' threads to race for real.
const POOL_SIZE: u32 = 10;

/// A fresh, migrated database, deleted on drop.
pub struct TestDatabase {
    // Fields drop in order: the pool closes before its database is deleted.
    database: Database,
    url: String,
    _scratch: Scratch,
}

impl fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestDatabase")
            .field("backend", &self.backend())
            .field("url", &redact_url(&self.url))
            .finish_non_exhaustive()
    }
}

/// Deletes the database when dropped; only held for that.
enum Scratch {
    Postgres { _database: ScratchPostgres },
    Sqlite { _dir: TempDir },
}

struct ScratchPostgres {
    admin_url: String,
    name: String,
}

impl ScratchPostgres {
    fn drop_database(&self) -> Result<(), String> {
        let mut admin = PgConnection::establish(&self.admin_url).map_err(|e| e.to_string())?;
        diesel::sql_query(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut admin)
        .map(drop)
        .map_err(|e| e.to_string())
    }
}

impl Drop for ScratchPostgres {
    fn drop(&mut self) {
        // FORCE ends connections still open, e.g. from clones of the `Database`, but
        // fails while an autovacuum worker is in the database (PostgreSQL 15 may not
        // signal it for a non-superuser): such a worker is gone after a moment.
        let mut dropped = self.drop_database();
        for _ in 0..50 {
            if dropped.is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            dropped = self.drop_database();
        }
        if let Err(error) = dropped {
            // Never panic in drop: it would abort a test that is already unwinding.
            eprintln!(
                "TestDatabase: could not drop database {}: {error}",
                self.name
            );
        }
    }
}

impl TestDatabase {
    /// A new PostgreSQL database `pc_test_<uuid>` on the server of `TEST_DATABASE_URL`.
    ///
    /// # Panics
    ///
    /// When the server cannot be reached or the database cannot be created or migrated.
    pub fn postgres() -> Self {
        let admin_url =
            std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned());
        let mut admin = PgConnection::establish(&admin_url).unwrap_or_else(|error| {
            panic!(
                "TestDatabase: PostgreSQL is unreachable at {} ({error}); \
                 start it with scripts/test-db.sh or point TEST_DATABASE_URL at one",
                redact_url(&admin_url)
            )
        });
        let name = format!("pc_test_{}", uuid::Uuid::new_v4().simple());
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .unwrap_or_else(|error| panic!("TestDatabase: cannot create database {name}: {error}"));
        let url = with_database(&admin_url, &name);
        Self::open(
            url,
            Scratch::Postgres {
                _database: ScratchPostgres { admin_url, name },
            },
        )
    }

    /// A new SQLite database file in a new temporary directory.
    ///
    /// # Panics
    ///
    /// When the directory or the database cannot be created or migrated.
    pub fn sqlite() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("pc_test_")
            .tempdir()
            .unwrap_or_else(|error| {
                panic!("TestDatabase: cannot create a temporary directory: {error}")
            });
        let path = dir.path().join("portcullis.db");
        let Some(path) = path.to_str() else {
            panic!("TestDatabase: temporary path {path:?} is not UTF-8");
        };
        Self::open(format!("sqlite://{path}"), Scratch::Sqlite { _dir: dir })
    }

    /// One database of each backend: PostgreSQL, then SQLite.
    pub fn each() -> [Self; 2] {
        [Self::postgres(), Self::sqlite()]
    }

    // On a panic here `scratch` is dropped while unwinding, deleting the database.
    fn open(url: String, scratch: Scratch) -> Self {
        let database = Database::connect(&url, POOL_SIZE)
            .unwrap_or_else(|error| panic!("TestDatabase: {error}"));
        database
            .run_migrations()
            .unwrap_or_else(|error| panic!("TestDatabase: {error}"));
        Self {
            database,
            url,
            _scratch: scratch,
        }
    }

    pub fn database(&self) -> &Database {
        &self.database
    }

    /// The URL the database was opened with, for [`Database::connect`] (e.g. to start a
    /// server process on it).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn backend(&self) -> Backend {
        self.database.backend()
    }

    /// Runs one SQL statement through the pool (so with SQLite's pragmas) and returns
    /// how many rows it changed: for arranging states the ports cannot reach, such as
    /// a deleted user or a corrupt row.
    ///
    /// # Panics
    ///
    /// When the statement fails.
    pub fn execute(&self, sql: &str) -> usize {
        let changed = match &self.database.pools {
            Pools::Postgres(pool) => pool.get().map_err(StoreError::new).and_then(|mut conn| {
                diesel::sql_query(sql)
                    .execute(&mut *conn)
                    .map_err(StoreError::new)
            }),
            Pools::Sqlite(pool, _) => pool.get().map_err(StoreError::new).and_then(|mut conn| {
                diesel::sql_query(sql)
                    .execute(&mut *conn)
                    .map_err(StoreError::new)
            }),
        };
        changed.unwrap_or_else(|error| panic!("TestDatabase::execute({sql:?}): {error}"))
    }
}

/// `url` with its database (the path) replaced by `name`, keeping any query string.
fn with_database(url: &str, name: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    // A valid URL has '/' and '?' in its user info only percent-encoded.
    let authority_end = url[authority_start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| authority_start + i);
    let query = url[authority_end..]
        .find('?')
        .map_or("", |i| &url[authority_end + i..]);
    format!("{}/{name}{query}", &url[..authority_end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_database_replaces_only_the_path() {
        assert_eq!(
            with_database("postgres://u:p@127.0.0.1:5432/postgres", "pc_x"),
            "postgres://u:p@127.0.0.1:5432/pc_x"
        );
        assert_eq!(
            with_database("postgresql://u@h/postgres?sslmode=disable", "pc_x"),
            "postgresql://u@h/pc_x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "pc_x"),
            "postgres://h:5432/pc_x"
        );
        assert_eq!(
            with_database("postgres://h?sslmode=disable", "pc_x"),
            "postgres://h/pc_x?sslmode=disable"
        );
    }
}
