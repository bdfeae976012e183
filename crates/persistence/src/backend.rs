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
        use diesel::RunQueryDsl as _;

        one_statement::RotateAtOnce {
            presented: DbUuid(presented.as_uuid()),
            now,
            session: DbUuid(successor.session_id.as_uuid()),
            successor: DbUuid(successor.id.as_uuid()),
            issued_at: successor.issued_at,
            expires_at: successor.expires_at,
            event: one_statement::EventValues::of(event),
        }
        .get_result::<i64>(conn)
        .map(|rotated| rotated > 0)
    }

    /// A new session, its first refresh token and `event` in one statement, one round
    /// trip (the foreign key is checked at its end); `None` where there is no such form.
    fn create_session_at_once(
        conn: &mut Conn,
        session: &Session,
        first_token: &RefreshTokenRecord,
        event: &AuthEvent,
    ) -> Option<QueryResult<()>> {
        use diesel::RunQueryDsl as _;

        let statement = one_statement::CreateSessionAtOnce {
            id: DbUuid(session.id.as_uuid()),
            user: DbUuid(session.user_id.as_uuid()),
            created_at: session.created_at,
            expires_at: session.expires_at,
            last_refreshed_at: session.last_refreshed_at,
            revoked_at: session.revoked_at,
            revocation_reason: session.revocation_reason.map(RevocationReason::as_str),
            credential_version: session.credential_version,
            token: DbUuid(first_token.id.as_uuid()),
            token_issued_at: first_token.issued_at,
            token_expires_at: first_token.expires_at,
            token_used_at: first_token.used_at,
            event: one_statement::EventValues::of(event),
        };
        Some(statement.execute(conn).map(drop))
    }

    /// Writes of several rows as single statements that Diesel keeps prepared on each
    /// connection (a raw `sql_query` is parsed and planned anew every time, which cost
    /// a rotation more than the rest of it).
    mod one_statement {
        use chrono::{DateTime, Utc};
        use diesel::pg::Pg;
        use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
        use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz, Uuid};
        use diesel::{PgConnection, QueryResult, RunQueryDsl};
        use portcullis_domain::AuthEvent;

        use crate::types::DbUuid;

        const EVENT_COLUMNS: &str = "auth_events (at, kind, outcome, user_id, \
             identifier_hash, session_id, ip, user_agent, dialect)";

        /// An event's column values, in `EVENT_COLUMNS` order.
        pub(super) struct EventValues<'a> {
            event: &'a AuthEvent,
            user: Option<DbUuid>,
            session: Option<DbUuid>,
            ip: Option<String>,
        }

        impl<'a> EventValues<'a> {
            pub(super) fn of(event: &'a AuthEvent) -> Self {
                Self {
                    event,
                    user: event.user_id.map(|id| DbUuid(id.as_uuid())),
                    session: event.session_id.map(|id| DbUuid(id.as_uuid())),
                    ip: event.ip.map(|ip| ip.to_string()),
                }
            }

            fn push<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
                let event = self.event;
                out.push_bind_param::<Timestamptz, _>(&event.at)?;
                out.push_sql(", ");
                out.push_bind_param::<Text, _>(event.kind.as_str())?;
                out.push_sql(", ");
                out.push_bind_param::<Text, _>(event.outcome.as_str())?;
                out.push_sql(", ");
                out.push_bind_param::<Nullable<Uuid>, _>(&self.user)?;
                out.push_sql(", ");
                out.push_bind_param::<Nullable<Text>, _>(&event.identifier_hash)?;
                out.push_sql(", ");
                out.push_bind_param::<Nullable<Uuid>, _>(&self.session)?;
                out.push_sql(", ");
                out.push_bind_param::<Nullable<Text>, _>(&self.ip)?;
                out.push_sql(", ");
                out.push_bind_param::<Nullable<Text>, _>(&event.user_agent)?;
                out.push_sql(", ");
                out.push_bind_param::<Nullable<Text>, _>(&event.dialect)
            }
        }

        /// Each statement is its own type, so Diesel's statement cache keys it by type.
        macro_rules! prepared_statement {
            ($name:ident) => {
                impl QueryId for $name<'_> {
                    type QueryId = $name<'static>;
                    const HAS_STATIC_QUERY_ID: bool = true;
                }

                impl Query for $name<'_> {
                    type SqlType = BigInt;
                }

                impl RunQueryDsl<PgConnection> for $name<'_> {}
            };
        }

        pub(super) struct RotateAtOnce<'a> {
            pub presented: DbUuid,
            pub now: DateTime<Utc>,
            pub session: DbUuid,
            pub successor: DbUuid,
            pub issued_at: DateTime<Utc>,
            pub expires_at: DateTime<Utc>,
            pub event: EventValues<'a>,
        }

        prepared_statement!(RotateAtOnce);

        impl QueryFragment<Pg> for RotateAtOnce<'_> {
            fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
                out.push_sql("WITH live AS (SELECT s.id FROM sessions s WHERE s.id = ");
                out.push_bind_param::<Uuid, _>(&self.session)?;
                out.push_sql(" AND s.revoked_at IS NULL AND s.expires_at > ");
                out.push_bind_param::<Timestamptz, _>(&self.now)?;
                out.push_sql(
                    " AND EXISTS (SELECT 1 FROM refresh_tokens t \
                     WHERE t.session_id = s.id AND t.jti = ",
                );
                out.push_bind_param::<Uuid, _>(&self.presented)?;
                out.push_sql(") FOR UPDATE), spent AS (UPDATE refresh_tokens SET used_at = ");
                out.push_bind_param::<Timestamptz, _>(&self.now)?;
                out.push_sql(", replaced_by = ");
                out.push_bind_param::<Uuid, _>(&self.successor)?;
                out.push_sql(" WHERE jti = ");
                out.push_bind_param::<Uuid, _>(&self.presented)?;
                out.push_sql(
                    " AND used_at IS NULL AND session_id IN (SELECT id FROM live) \
                     RETURNING session_id), \
                     touched AS (UPDATE sessions SET last_refreshed_at = ",
                );
                out.push_bind_param::<Timestamptz, _>(&self.now)?;
                out.push_sql(
                    " WHERE id IN (SELECT session_id FROM spent)), \
                     successor AS (INSERT INTO refresh_tokens \
                     (jti, session_id, issued_at, expires_at) SELECT ",
                );
                out.push_bind_param::<Uuid, _>(&self.successor)?;
                out.push_sql(", session_id, ");
                out.push_bind_param::<Timestamptz, _>(&self.issued_at)?;
                out.push_sql(", ");
                out.push_bind_param::<Timestamptz, _>(&self.expires_at)?;
                out.push_sql(" FROM spent), logged AS (INSERT INTO ");
                out.push_sql(EVENT_COLUMNS);
                out.push_sql(" SELECT ");
                self.event.push(&mut out)?;
                out.push_sql(" FROM spent) SELECT count(*) FROM spent");
                Ok(())
            }
        }

        pub(super) struct CreateSessionAtOnce<'a> {
            pub id: DbUuid,
            pub user: DbUuid,
            pub created_at: DateTime<Utc>,
            pub expires_at: DateTime<Utc>,
            pub last_refreshed_at: Option<DateTime<Utc>>,
            pub revoked_at: Option<DateTime<Utc>>,
            pub revocation_reason: Option<&'static str>,
            pub credential_version: i64,
            pub token: DbUuid,
            pub token_issued_at: DateTime<Utc>,
            pub token_expires_at: DateTime<Utc>,
            pub token_used_at: Option<DateTime<Utc>>,
            pub event: EventValues<'a>,
        }

        prepared_statement!(CreateSessionAtOnce);

        impl QueryFragment<Pg> for CreateSessionAtOnce<'_> {
            fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
                out.push_sql(
                    "WITH created AS (INSERT INTO sessions (id, user_id, created_at, \
                     expires_at, last_refreshed_at, revoked_at, revocation_reason, \
                     credential_version) VALUES (",
                );
                out.push_bind_param::<Uuid, _>(&self.id)?;
                out.push_sql(", ");
                out.push_bind_param::<Uuid, _>(&self.user)?;
                out.push_sql(", ");
                out.push_bind_param::<Timestamptz, _>(&self.created_at)?;
                out.push_sql(", ");
                out.push_bind_param::<Timestamptz, _>(&self.expires_at)?;
                out.push_sql(", ");
                out.push_bind_param::<Nullable<Timestamptz>, _>(&self.last_refreshed_at)?;
                out.push_sql(", ");
                out.push_bind_param::<Nullable<Timestamptz>, _>(&self.revoked_at)?;
                out.push_sql(", ");
                out.push_bind_param::<Nullable<Text>, _>(&self.revocation_reason)?;
                out.push_sql(", ");
                out.push_bind_param::<BigInt, _>(&self.credential_version)?;
                out.push_sql(
                    ") RETURNING id), first AS (INSERT INTO refresh_tokens \
                     (jti, session_id, issued_at, expires_at, used_at) SELECT ",
                );
                out.push_bind_param::<Uuid, _>(&self.token)?;
                out.push_sql(", id, ");
                out.push_bind_param::<Timestamptz, _>(&self.token_issued_at)?;
                out.push_sql(", ");
                out.push_bind_param::<Timestamptz, _>(&self.token_expires_at)?;
                out.push_sql(", ");
                out.push_bind_param::<Nullable<Timestamptz>, _>(&self.token_used_at)?;
                out.push_sql(" FROM created), logged AS (INSERT INTO ");
                out.push_sql(EVENT_COLUMNS);
                out.push_sql(" SELECT ");
                self.event.push(&mut out)?;
                out.push_sql(" FROM created) SELECT count(*) FROM created");
                Ok(())
            }
        }
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
/// concurrent writers queue instead of failing with SQLITE_BUSY when a read lock cannot
/// be upgraded. Within the process they queue on a mutex first: SQLite's own wait
/// (`busy_timeout`) polls with sleeps of 1 ms and up, leaving the lock idle between a
/// commit and the next writer's wake-up, which capped rotations at a fraction of what
/// the file allows. `busy_timeout` still covers other processes (the CLI).
pub(crate) mod sqlite {
    use std::cell::{Cell, RefCell};
    use std::sync::{Arc, Mutex, PoisonError};

    use crate::schema::sqlite as schema;

    type Conn = diesel::SqliteConnection;

    thread_local! {
        /// The write lock of the database this thread is working on.
        static WRITER: RefCell<Option<Arc<Mutex<()>>>> = const { RefCell::new(None) };
        /// Whether this thread holds it (a transaction within a transaction).
        static HOLDING: Cell<bool> = const { Cell::new(false) };
    }

    /// While alive, this thread's write transactions take turns on `writer`.
    pub(crate) struct WriterScope(Option<Arc<Mutex<()>>>);

    impl WriterScope {
        pub(crate) fn enter(writer: &Arc<Mutex<()>>) -> Self {
            Self(WRITER.with(|slot| slot.replace(Some(writer.clone()))))
        }
    }

    impl Drop for WriterScope {
        fn drop(&mut self) {
            let outer = self.0.take();
            WRITER.with(|slot| *slot.borrow_mut() = outer);
        }
    }

    fn write_tx<T, E>(conn: &mut Conn, f: impl FnOnce(&mut Conn) -> Result<T, E>) -> Result<T, E>
    where
        E: From<diesel::result::Error>,
    {
        let writer = WRITER.with(|slot| slot.borrow().clone());
        let _turn = match &writer {
            Some(writer) if !HOLDING.get() => {
                let guard = writer.lock().unwrap_or_else(PoisonError::into_inner);
                HOLDING.set(true);
                Some(Holding { _guard: guard })
            }
            _ => None,
        };
        conn.immediate_transaction(f)
    }

    /// The write lock, held until the transaction ends.
    struct Holding<'a> {
        _guard: std::sync::MutexGuard<'a, ()>,
    }

    impl Drop for Holding<'_> {
        fn drop(&mut self) {
            HOLDING.set(false);
        }
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

    /// Statements are calls within the process here: the transaction does it.
    fn create_session_at_once(
        _: &mut Conn,
        _: &Session,
        _: &RefreshTokenRecord,
        _: &AuthEvent,
    ) -> Option<QueryResult<()>> {
        None
    }

    /// The IMMEDIATE transaction's write lock already serializes rotations.
    fn lock_session_of(_: &mut Conn, _: TokenId) -> QueryResult<()> {
        Ok(())
    }

    include!("queries.rs");
}
