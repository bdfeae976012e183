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

    include!("queries.rs");
}
