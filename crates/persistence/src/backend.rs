//! The query code of `queries.rs`, compiled once per backend.

/// PostgreSQL: plain transactions; row locks make the conditional updates race-safe.
pub(crate) mod pg {
    use diesel::Connection as _;

    use crate::schema::pg as schema;

    type Conn = diesel::PgConnection;

    fn write_tx<T, E>(conn: &mut Conn, f: impl FnOnce(&mut Conn) -> Result<T, E>) -> Result<T, E>
    where
        E: From<diesel::result::Error>,
    {
        conn.transaction(f)
    }

    /// Whether this transaction may purge: a transaction-level advisory lock, so of
    /// the instances sharing the database one purges at a time and the others skip.
    fn purge_lock(conn: &mut Conn) -> diesel::QueryResult<bool> {
        use diesel::RunQueryDsl as _;
        use diesel::sql_types::{BigInt, Bool};

        #[derive(diesel::QueryableByName)]
        struct Locked {
            #[diesel(sql_type = Bool)]
            locked: bool,
        }
        diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
            .bind::<BigInt, _>(crate::purge::PURGE_LOCK_KEY)
            .get_result::<Locked>(conn)
            .map(|row| row.locked)
    }

    /// Serializes changes to `signing_keys` across instances: a transaction-level
    /// advisory lock, held until the transaction ends.
    fn keys_lock(conn: &mut Conn) -> diesel::QueryResult<()> {
        use diesel::RunQueryDsl as _;
        use diesel::sql_types::BigInt;

        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<BigInt, _>(crate::purge::KEYS_LOCK_KEY)
            .execute(conn)
            .map(drop)
    }

    include!("queries.rs");
}

/// SQLite: write transactions start IMMEDIATE, taking the write lock up front, so
/// concurrent writers queue on `busy_timeout` instead of failing with SQLITE_BUSY when
/// a read lock cannot be upgraded.
pub(crate) mod sqlite {
    use crate::schema::sqlite as schema;

    type Conn = diesel::SqliteConnection;

    fn write_tx<T, E>(conn: &mut Conn, f: impl FnOnce(&mut Conn) -> Result<T, E>) -> Result<T, E>
    where
        E: From<diesel::result::Error>,
    {
        conn.immediate_transaction(f)
    }

    /// The IMMEDIATE transaction's write lock already makes purges take turns.
    fn purge_lock(_: &mut Conn) -> diesel::QueryResult<bool> {
        Ok(true)
    }

    /// The IMMEDIATE transaction's write lock already serializes key changes.
    fn keys_lock(_: &mut Conn) -> diesel::QueryResult<()> {
        Ok(())
    }

    include!("queries.rs");
}
