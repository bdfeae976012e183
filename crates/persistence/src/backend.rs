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

    /// A rotation in one statement, one round trip: locks the session (re-checked as
    /// active under the lock, so a revocation committed meanwhile wins), spends the
    /// presented token if it is still unused (the race arbiter), stores its successor,
    /// touches the session and stores `event`. Whether it rotated; `false` changed
    /// nothing, and the caller's transaction finds out why.
    fn rotate_at_once(
        conn: &mut Conn,
        presented: TokenId,
        successor: &RefreshTokenRecord,
        now: DateTime<Utc>,
        event: &AuthEvent,
    ) -> QueryResult<bool> {
        use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz, Uuid};

        #[derive(diesel::QueryableByName)]
        struct Rotated {
            #[diesel(sql_type = BigInt)]
            rotated: i64,
        }
        let uuid = |id: uuid::Uuid| crate::types::DbUuid(id);
        diesel::sql_query(
            "WITH live AS (                  SELECT s.id FROM sessions s                  WHERE s.id = $3 AND s.revoked_at IS NULL AND s.expires_at > $2                    AND EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.jti = $1 AND t.session_id = s.id)                  FOR UPDATE              ), spent AS (                  UPDATE refresh_tokens SET used_at = $2, replaced_by = $4                  WHERE jti = $1 AND used_at IS NULL AND session_id IN (SELECT id FROM live)                  RETURNING session_id              ), touched AS (                  UPDATE sessions SET last_refreshed_at = $2                  WHERE id IN (SELECT session_id FROM spent)              ), successor AS (                  INSERT INTO refresh_tokens (jti, session_id, issued_at, expires_at)                  SELECT $4, session_id, $5, $6 FROM spent              ), logged AS (                  INSERT INTO auth_events                      (at, kind, outcome, user_id, identifier_hash, session_id, ip, user_agent, dialect)                  SELECT $7, $8, $9, $10, $11, $12, $13, $14, $15 FROM spent              )              SELECT count(*) AS rotated FROM spent",
        )
        .bind::<Uuid, _>(uuid(presented.as_uuid()))
        .bind::<Timestamptz, _>(now)
        .bind::<Uuid, _>(uuid(successor.session_id.as_uuid()))
        .bind::<Uuid, _>(uuid(successor.id.as_uuid()))
        .bind::<Timestamptz, _>(successor.issued_at)
        .bind::<Timestamptz, _>(successor.expires_at)
        .bind::<Timestamptz, _>(event.at)
        .bind::<Text, _>(event.kind.as_str())
        .bind::<Text, _>(event.outcome.as_str())
        .bind::<Nullable<Uuid>, _>(event.user_id.map(|id| uuid(id.as_uuid())))
        .bind::<Nullable<Text>, _>(event.identifier_hash.as_deref())
        .bind::<Nullable<Uuid>, _>(event.session_id.map(|id| uuid(id.as_uuid())))
        .bind::<Nullable<Text>, _>(event.ip.map(|ip| ip.to_string()))
        .bind::<Nullable<Text>, _>(event.user_agent.as_deref())
        .bind::<Nullable<Text>, _>(event.dialect.as_deref())
        .get_result::<Rotated>(conn)
        .map(|row| row.rotated > 0)
    }

    /// Locks the session of refresh token `jti` for the rest of the transaction, taking
    /// locks in the order [`rotate_at_once`] does (session, then token).
    fn lock_session_of(conn: &mut Conn, jti: TokenId) -> QueryResult<()> {
        use diesel::sql_types::Uuid;

        diesel::sql_query(
            "SELECT 1 FROM sessions WHERE id =              (SELECT session_id FROM refresh_tokens WHERE jti = $1) FOR UPDATE",
        )
        .bind::<Uuid, _>(crate::types::DbUuid(jti.as_uuid()))
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

    /// SQLite has no data-modifying `WITH`; its statements are calls within the
    /// process, so the transaction of several costs little more than its commit.
    fn rotate_at_once(
        _: &mut Conn,
        _: TokenId,
        _: &RefreshTokenRecord,
        _: DateTime<Utc>,
        _: &AuthEvent,
    ) -> QueryResult<bool> {
        Ok(false)
    }

    /// The IMMEDIATE transaction's write lock already serializes rotations.
    fn lock_session_of(_: &mut Conn, _: TokenId) -> QueryResult<()> {
        Ok(())
    }

    include!("queries.rs");
}
