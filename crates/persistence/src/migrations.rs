//! The schema migrations, embedded in the binary, one set per backend.

use diesel::backend::Backend as DieselBackend;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::{Abort, MigrationError};

const POSTGRES: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
const SQLITE: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// The PostgreSQL advisory lock that serializes migrations across processes ("portcull").
const LOCK_KEY: i64 = 0x706f_7274_6375_6c6c;

#[derive(Clone, Copy, Debug)]
pub(crate) enum Direction {
    Up,
    RevertAll,
}

fn apply<DB, C>(
    conn: &mut C,
    direction: Direction,
    migrations: EmbeddedMigrations,
) -> Result<(), MigrationError>
where
    DB: DieselBackend,
    C: MigrationHarness<DB>,
{
    let versions = match direction {
        Direction::Up => conn.run_pending_migrations(migrations),
        Direction::RevertAll => conn.revert_all_migrations(migrations),
    }
    .map_err(MigrationError::Migration)?;
    if !versions.is_empty() {
        let versions: Vec<String> = versions.iter().map(ToString::to_string).collect();
        tracing::info!(?direction, ?versions, "database migrations applied");
    }
    Ok(())
}

/// Holds a session-level advisory lock around the migrations, so that of two processes
/// starting at once one migrates and the other then finds nothing pending.
pub(crate) fn postgres(
    conn: &mut PgConnection,
    direction: Direction,
) -> Result<(), MigrationError> {
    let lock = |c: &mut PgConnection, function: &str| {
        diesel::sql_query(format!("SELECT {function}($1)"))
            .bind::<BigInt, _>(LOCK_KEY)
            .execute(c)
            .map_err(|e| MigrationError::Lock(e.into()))
    };
    lock(conn, "pg_advisory_lock")?;
    let result = apply(conn, direction, POSTGRES);
    // Released before the connection goes back to the pool, whatever the outcome.
    let unlocked = lock(conn, "pg_advisory_unlock");
    result.and(unlocked.map(drop))
}

/// One IMMEDIATE transaction around the migrations: SQLite's write lock plays the
/// advisory lock's part.
pub(crate) fn sqlite(
    conn: &mut SqliteConnection,
    direction: Direction,
) -> Result<(), MigrationError> {
    conn.immediate_transaction(|c| apply(c, direction, SQLITE).map_err(Abort::Refuse))
        .map_err(|abort| match abort {
            Abort::Db(e) => MigrationError::Lock(e.into()),
            Abort::Refuse(e) => e,
        })
}
