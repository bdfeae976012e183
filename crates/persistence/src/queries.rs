// The query code, written once. `backend::pg` and `backend::sqlite` each `include!` it
// after defining `schema` (their tables), `Conn` (their connection) and `write_tx`
// (their kind of read-write transaction).

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use portcullis_domain::{
    AccountUpdate, AuthEvent, CompletedReset, ImportWriteError, Bio, ClientId, Clock, CompleteResetError, CreateUserError, Email, EndSessionError,
    EventFilter, EventOutcome, MailId, OutboxEntry, OutboxStatus, PasswordHash, QueuedMail,
    RefreshTokenRecord, RegisteredClient, ResetSecret, ResetTokenHash, ResetTokenRecord, RevocationReason, RotateError, Session, SessionId, StoreError, SystemClock,
    ThrottleRecord, TokenId, User, UserId, Username,
};
use portcullis_domain::SigningKeyRecord;
use schema::{
    auth_events, mail_outbox, oauth_clients, password_reset_tokens, refresh_tokens,
    server_secrets, sessions, signing_keys, throttles, users,
};

use crate::error::{Abort, BoxError, create_user_error, store};
use crate::purge::Purged;
use crate::rows::{EventRow, NO_EMAIL, ResetTokenRow, SessionRow, SigningKeyRow, UserRow};
use crate::sql::{lower, no_email};
use crate::types::{DbJson, DbUuid};

/// The columns of `users`, in [`UserRow`]'s order.
type UserColumns = (
    users::id,
    users::email,
    users::username,
    users::name,
    users::bio,
    users::email_verified,
    users::must_change_password,
    users::profile,
    users::password_hash,
    users::password_changed_at,
    users::created_at,
    users::updated_at,
    users::credential_version,
);

const USER_COLUMNS: UserColumns = (
    users::id,
    users::email,
    users::username,
    users::name,
    users::bio,
    users::email_verified,
    users::must_change_password,
    users::profile,
    users::password_hash,
    users::password_changed_at,
    users::created_at,
    users::updated_at,
    users::credential_version,
);

const SESSION_COLUMNS: (
    sessions::id,
    sessions::user_id,
    sessions::created_at,
    sessions::expires_at,
    sessions::last_refreshed_at,
    sessions::revoked_at,
    sessions::revocation_reason,
    sessions::credential_version,
) = (
    sessions::id,
    sessions::user_id,
    sessions::created_at,
    sessions::expires_at,
    sessions::last_refreshed_at,
    sessions::revoked_at,
    sessions::revocation_reason,
    sessions::credential_version,
);

const RESET_TOKEN_COLUMNS: (
    password_reset_tokens::token_hash,
    password_reset_tokens::user_id,
    password_reset_tokens::created_at,
    password_reset_tokens::expires_at,
    password_reset_tokens::used_at,
) = (
    password_reset_tokens::token_hash,
    password_reset_tokens::user_id,
    password_reset_tokens::created_at,
    password_reset_tokens::expires_at,
    password_reset_tokens::used_at,
);

pub(crate) fn ping(conn: &mut Conn) -> Result<(), StoreError> {
    diesel::sql_query("SELECT 1")
        .execute(conn)
        .map(drop)
        .map_err(store)
}

pub(crate) fn create_user(
    conn: &mut Conn,
    user: &User,
    event: &AuthEvent,
) -> Result<(), CreateUserError> {
    write_tx(conn, |c| {
        insert_user(c, user)?;
        insert_event(c, event)
    })
    .map_err(create_user_error)
}

/// Every column of a `users` row, to insert or to overwrite (the id is the key).
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = users, treat_none_as_null = true)]
struct UserValues<'a> {
    id: DbUuid,
    email: &'a str,
    username: Option<&'a str>,
    name: &'a str,
    bio: Option<&'a str>,
    email_verified: bool,
    must_change_password: bool,
    profile: DbJson,
    password_hash: &'a str,
    password_changed_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    credential_version: i64,
}

impl<'a> UserValues<'a> {
    fn of(user: &'a User) -> Self {
        Self {
            id: DbUuid(user.id.as_uuid()),
            email: user.email.as_ref().map_or(NO_EMAIL, Email::as_str),
            username: user.username.as_ref().map(Username::as_str),
            name: user.name.as_str(),
            bio: user.bio.as_ref().map(Bio::as_str),
            email_verified: user.email_verified,
            must_change_password: user.must_change_password,
            profile: DbJson(serde_json::Value::Object(user.profile.as_map().clone())),
            password_hash: user.password_hash.as_str(),
            password_changed_at: user.password_changed_at,
            created_at: user.created_at,
            updated_at: user.updated_at,
            credential_version: user.credential_version,
        }
    }
}

fn insert_user(conn: &mut Conn, user: &User) -> QueryResult<usize> {
    diesel::insert_into(users::table)
        .values(UserValues::of(user))
        .execute(conn)
}

/// An `auth_events` row to insert (its id is generated).
#[derive(Insertable)]
#[diesel(table_name = auth_events)]
struct NewEvent<'a> {
    at: DateTime<Utc>,
    kind: &'a str,
    outcome: &'a str,
    user_id: Option<DbUuid>,
    identifier_hash: Option<&'a str>,
    session_id: Option<DbUuid>,
    ip: Option<String>,
    user_agent: Option<&'a str>,
    dialect: Option<&'a str>,
}

impl<'a> NewEvent<'a> {
    fn of(event: &'a AuthEvent) -> Self {
        Self {
            at: event.at,
            kind: event.kind.as_str(),
            outcome: event.outcome.as_str(),
            user_id: event.user_id.map(|id| DbUuid(id.as_uuid())),
            identifier_hash: event.identifier_hash.as_deref(),
            session_id: event.session_id.map(|id| DbUuid(id.as_uuid())),
            ip: event.ip.map(|ip| ip.to_string()),
            user_agent: event.user_agent.as_deref(),
            dialect: event.dialect.as_deref(),
        }
    }
}

fn insert_event(conn: &mut Conn, event: &AuthEvent) -> QueryResult<()> {
    diesel::insert_into(auth_events::table)
        .values(NewEvent::of(event))
        .execute(conn)
        .map(drop)
}

/// Rows per multi-row INSERT of an import: under both databases' limits on bound
/// parameters (13 a user).
const IMPORT_ROWS_PER_INSERT: usize = 500;

pub(crate) fn find_accounts(
    conn: &mut Conn,
    emails: &[Email],
    usernames: &[Username],
) -> Result<Vec<User>, StoreError> {
    let mut rows: Vec<UserRow> = Vec::new();
    if !emails.is_empty() {
        // Stored emails are lower-cased as parsed; `lower()` matches the unique index.
        let emails: Vec<&str> = emails.iter().map(Email::as_str).collect();
        rows.extend(
            users::table
                .filter(users::email.ne(no_email()))
                .filter(lower(users::email).eq_any(emails))
                .select(USER_COLUMNS)
                .load::<UserRow>(conn)
                .map_err(store)?,
        );
    }
    if !usernames.is_empty() {
        let usernames: Vec<String> = usernames
            .iter()
            .map(|name| name.as_str().to_ascii_lowercase())
            .collect();
        rows.extend(
            users::table
                .filter(lower(users::username.assume_not_null()).eq_any(usernames))
                .select(USER_COLUMNS)
                .load::<UserRow>(conn)
                .map_err(store)?,
        );
    }
    let mut users: Vec<User> = rows
        .into_iter()
        .map(UserRow::into_domain)
        .collect::<Result<_, _>>()?;
    users.sort_by_key(|user| user.id.as_uuid());
    users.dedup_by_key(|user| user.id);
    Ok(users)
}

pub(crate) fn write_import(
    conn: &mut Conn,
    created: &[User],
    updated: &[AccountUpdate],
    events: &[AuthEvent],
) -> Result<(), ImportWriteError> {
    let changed = |error: diesel::result::Error| match error {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        ) => Abort::Refuse(ImportWriteError::Changed),
        other => Abort::Db(other),
    };
    write_tx(conn, |c| {
        for chunk in created.chunks(IMPORT_ROWS_PER_INSERT) {
            let rows: Vec<UserValues<'_>> = chunk.iter().map(UserValues::of).collect();
            diesel::insert_into(users::table)
                .values(rows)
                .execute(c)
                .map_err(changed)?;
        }
        for update in updated {
            let user = &update.user;
            let written = diesel::update(
                users::table
                    .find(DbUuid(user.id.as_uuid()))
                    .filter(users::updated_at.eq(update.read_updated_at)),
            )
            .set(UserValues::of(user))
            .execute(c)
            .map_err(changed)?;
            if written == 0 {
                return Err(Abort::Refuse(ImportWriteError::Changed));
            }
        }
        for chunk in events.chunks(IMPORT_ROWS_PER_INSERT) {
            let rows: Vec<NewEvent<'_>> = chunk.iter().map(NewEvent::of).collect();
            diesel::insert_into(auth_events::table)
                .values(rows)
                .execute(c)?;
        }
        Ok(())
    })
    .map_err(Abort::into_error)
}

pub(crate) fn record_event(conn: &mut Conn, event: &AuthEvent) -> Result<(), StoreError> {
    insert_event(conn, event).map_err(store)
}

pub(crate) fn list_events(
    conn: &mut Conn,
    filter: &EventFilter,
) -> Result<Vec<AuthEvent>, StoreError> {
    let mut query = auth_events::table
        .select((
            auth_events::at,
            auth_events::kind,
            auth_events::outcome,
            auth_events::user_id,
            auth_events::identifier_hash,
            auth_events::session_id,
            auth_events::ip,
            auth_events::user_agent,
            auth_events::dialect,
        ))
        .order((auth_events::at.desc(), auth_events::id.desc()))
        .limit(i64::from(filter.limit))
        .into_boxed();
    if let Some(user) = filter.user {
        query = query.filter(auth_events::user_id.eq(DbUuid(user.as_uuid())));
    }
    if let Some(since) = filter.since {
        query = query.filter(auth_events::at.ge(since));
    }
    query
        .load::<EventRow>(conn)
        .map_err(store)?
        .into_iter()
        .map(EventRow::into_domain)
        .collect()
}

fn into_user(row: QueryResult<Option<UserRow>>) -> Result<Option<User>, StoreError> {
    row.map_err(store)?.map(UserRow::into_domain).transpose()
}

pub(crate) fn find_user_by_id(conn: &mut Conn, id: UserId) -> Result<Option<User>, StoreError> {
    into_user(
        users::table
            .find(DbUuid(id.as_uuid()))
            .select(USER_COLUMNS)
            .first(conn)
            .optional(),
    )
}

pub(crate) fn find_user_by_email(
    conn: &mut Conn,
    email: &Email,
) -> Result<Option<User>, StoreError> {
    // The same expression and condition as the unique index, so the index serves the
    // lookup.
    into_user(
        users::table
            .filter(users::email.ne(no_email()))
            .filter(lower(users::email).eq(lower(email.as_str())))
            .select(USER_COLUMNS)
            .first(conn)
            .optional(),
    )
}

pub(crate) fn find_user_by_username(
    conn: &mut Conn,
    username: &Username,
) -> Result<Option<User>, StoreError> {
    // NULL usernames never compare equal, so assuming NOT NULL changes only the type.
    into_user(
        users::table
            .filter(lower(users::username.assume_not_null()).eq(lower(username.as_str())))
            .select(USER_COLUMNS)
            .first(conn)
            .optional(),
    )
}

pub(crate) fn replace_password_hash(
    conn: &mut Conn,
    id: UserId,
    verified: &PasswordHash,
    new: &PasswordHash,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let updated = diesel::update(
        users::table
            .find(DbUuid(id.as_uuid()))
            .filter(users::password_hash.eq(verified.as_str())),
    )
    .set((
        users::password_hash.eq(new.as_str()),
        users::updated_at.eq(now),
    ))
    .execute(conn)
    .map_err(store)?;
    Ok(updated > 0)
}

fn insert_refresh_token(conn: &mut Conn, token: &RefreshTokenRecord) -> QueryResult<usize> {
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::jti.eq(DbUuid(token.id.as_uuid())),
            refresh_tokens::session_id.eq(DbUuid(token.session_id.as_uuid())),
            refresh_tokens::issued_at.eq(token.issued_at),
            refresh_tokens::expires_at.eq(token.expires_at),
            refresh_tokens::used_at.eq(token.used_at),
        ))
        .execute(conn)
}

pub(crate) fn create_session(
    conn: &mut Conn,
    session: &Session,
    first_token: &RefreshTokenRecord,
    event: Option<&AuthEvent>,
) -> Result<(), StoreError> {
    if let Some(event) = event
        && let Some(created) = create_session_at_once(conn, session, first_token, event)
    {
        return created.map_err(store);
    }
    write_tx(conn, |c| {
        diesel::insert_into(sessions::table)
            .values((
                sessions::id.eq(DbUuid(session.id.as_uuid())),
                sessions::user_id.eq(DbUuid(session.user_id.as_uuid())),
                sessions::created_at.eq(session.created_at),
                sessions::expires_at.eq(session.expires_at),
                sessions::last_refreshed_at.eq(session.last_refreshed_at),
                sessions::revoked_at.eq(session.revoked_at),
                sessions::revocation_reason
                    .eq(session.revocation_reason.map(RevocationReason::as_str)),
                sessions::credential_version.eq(session.credential_version),
            ))
            .execute(c)?;
        insert_refresh_token(c, first_token)?;
        event.map_or(Ok(()), |event| insert_event(c, event))
    })
    .map_err(store)
}

pub(crate) fn find_session(conn: &mut Conn, id: SessionId) -> Result<Option<Session>, StoreError> {
    sessions::table
        .find(DbUuid(id.as_uuid()))
        .select(SESSION_COLUMNS)
        .first::<SessionRow>(conn)
        .optional()
        .map_err(store)?
        .map(SessionRow::into_domain)
        .transpose()
}

/// A refresh token as rotation and logout judge it.
struct PresentedToken {
    session: DbUuid,
    used: bool,
    session_active: bool,
}

fn presented_token(
    conn: &mut Conn,
    jti: TokenId,
    now: DateTime<Utc>,
) -> QueryResult<Option<PresentedToken>> {
    let row = refresh_tokens::table
        .inner_join(sessions::table)
        .filter(refresh_tokens::jti.eq(DbUuid(jti.as_uuid())))
        .select((
            sessions::id,
            refresh_tokens::used_at,
            sessions::revoked_at,
            sessions::expires_at,
        ))
        .first::<(
            DbUuid,
            Option<DateTime<Utc>>,
            Option<DateTime<Utc>>,
            DateTime<Utc>,
        )>(conn)
        .optional()?;
    Ok(row.map(
        |(session, used_at, revoked_at, expires_at)| PresentedToken {
            session,
            used: used_at.is_some(),
            session_active: revoked_at.is_none() && now < expires_at,
        },
    ))
}

/// Revokes the session if it is still active at `now`; whether it did.
fn revoke_if_active(
    conn: &mut Conn,
    session: DbUuid,
    reason: RevocationReason,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let revoked = diesel::update(
        sessions::table
            .find(session)
            .filter(sessions::revoked_at.is_null())
            .filter(sessions::expires_at.gt(now)),
    )
    .set((
        sessions::revoked_at.eq(now),
        sessions::revocation_reason.eq(reason.as_str()),
    ))
    .execute(conn)?;
    Ok(revoked > 0)
}

fn revoke_active_of_user(
    conn: &mut Conn,
    user: DbUuid,
    reason: RevocationReason,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user))
            .filter(sessions::revoked_at.is_null())
            .filter(sessions::expires_at.gt(now)),
    )
    .set((
        sessions::revoked_at.eq(now),
        sessions::revocation_reason.eq(reason.as_str()),
    ))
    .execute(conn)
}

pub(crate) fn rotate(
    conn: &mut Conn,
    presented: TokenId,
    successor: &RefreshTokenRecord,
    now: DateTime<Utc>,
    grace: TimeDelta,
    event: &AuthEvent,
) -> Result<(), RotateError> {
    if rotate_at_once(conn, presented, successor, now, event).map_err(store)? {
        return Ok(());
    }
    // Not rotated: find out why (or rotate, where there is no one-statement form).
    let replayed = write_tx(conn, |c| {
        lock_session_of(c, presented)?;
        let Some(token) = presented_token(c, presented, now)? else {
            return Err(Abort::Refuse(RotateError::UnknownToken));
        };
        // A spent token is a replay whatever the session's state, so that every loser
        // of a concurrent rotation sees `AlreadyUsed`, unless it was spent within the
        // grace period.
        if token.used {
            return spent_again(c, presented, &token, now, grace, event);
        }
        if !token.session_active {
            return Err(Abort::Refuse(RotateError::SessionInactive));
        }
        // The conditional update is the race arbiter: of concurrent rotations exactly
        // one finds `used_at` still NULL.
        let spent = diesel::update(
            refresh_tokens::table
                .find(DbUuid(presented.as_uuid()))
                .filter(refresh_tokens::used_at.is_null()),
        )
        .set((
            refresh_tokens::used_at.eq(now),
            refresh_tokens::replaced_by.eq(DbUuid(successor.id.as_uuid())),
        ))
        .execute(c)?;
        if spent == 0 {
            return spent_again(c, presented, &token, now, grace, event);
        }
        // Re-checked under the row lock: a revocation may have committed since the read.
        let refreshed = diesel::update(
            sessions::table
                .find(token.session)
                .filter(sessions::revoked_at.is_null())
                .filter(sessions::expires_at.gt(now)),
        )
        .set(sessions::last_refreshed_at.eq(now))
        .execute(c)?;
        if refreshed == 0 {
            return Err(Abort::Refuse(RotateError::SessionInactive));
        }
        insert_refresh_token(c, successor)?;
        insert_event(c, event)?;
        Ok(None)
    })
    .map_err(Abort::into_error)?;
    // A replay commits the session's revocation above; only then is it reported.
    match replayed {
        Some(session) => Err(RotateError::AlreadyUsed {
            session: SessionId::from_uuid(session.0),
        }),
        None => Ok(()),
    }
}

/// A spent refresh token presented again: within `grace` of its rotation, with its
/// session active, the successor it was rotated into (the winner's committed row, read
/// now); otherwise a replay.
fn spent_again(
    conn: &mut Conn,
    presented: TokenId,
    token: &PresentedToken,
    now: DateTime<Utc>,
    grace: TimeDelta,
    event: &AuthEvent,
) -> Result<Option<DbUuid>, Abort<RotateError>> {
    let (used_at, replaced_by) = refresh_tokens::table
        .find(DbUuid(presented.as_uuid()))
        .select((refresh_tokens::used_at, refresh_tokens::replaced_by))
        .first::<(Option<DateTime<Utc>>, Option<DbUuid>)>(conn)?;
    let recent = grace > TimeDelta::zero() && used_at.is_some_and(|used_at| now < used_at + grace);
    if recent
        && token.session_active
        && let Some(successor) = replaced_by
    {
        let record = refresh_tokens::table
            .find(successor)
            .select((
                refresh_tokens::jti,
                refresh_tokens::session_id,
                refresh_tokens::issued_at,
                refresh_tokens::expires_at,
                refresh_tokens::used_at,
            ))
            .first::<(
                DbUuid,
                DbUuid,
                DateTime<Utc>,
                DateTime<Utc>,
                Option<DateTime<Utc>>,
            )>(conn)?;
        let (id, session_id, issued_at, expires_at, used_at) = record;
        return Err(Abort::Refuse(RotateError::RecentlyRotated {
            successor: RefreshTokenRecord {
                id: TokenId::from_uuid(id.0),
                session_id: SessionId::from_uuid(session_id.0),
                issued_at,
                expires_at,
                used_at,
            },
        }));
    }
    revoke_replayed(conn, token.session, now, event)?;
    Ok(Some(token.session))
}

/// A replayed refresh token: its session is revoked (if still active) and `event`
/// stored as a reuse, in the same transaction that detected the replay.
fn revoke_replayed(
    conn: &mut Conn,
    session: DbUuid,
    now: DateTime<Utc>,
    event: &AuthEvent,
) -> QueryResult<()> {
    revoke_if_active(conn, session, RevocationReason::RefreshReuse, now)?;
    insert_event(
        conn,
        &event.clone().with_outcome(EventOutcome::ReuseDetected),
    )
}

pub(crate) fn end_by_refresh_token(
    conn: &mut Conn,
    token: TokenId,
    reason: RevocationReason,
    now: DateTime<Utc>,
    event: &AuthEvent,
) -> Result<SessionId, EndSessionError> {
    let (session, reused) = write_tx(conn, |c| {
        let Some(presented) = presented_token(c, token, now)? else {
            return Err(Abort::Refuse(EndSessionError::UnknownToken));
        };
        if !presented.session_active {
            return Err(Abort::Refuse(EndSessionError::SessionInactive));
        }
        if presented.used {
            revoke_replayed(c, presented.session, now, event)?;
            return Ok((presented.session, true));
        }
        // Conditional, so a concurrent revocation leaves the first reason in place.
        if !revoke_if_active(c, presented.session, reason, now)? {
            return Err(Abort::Refuse(EndSessionError::SessionInactive));
        }
        insert_event(c, event)?;
        Ok((presented.session, false))
    })
    .map_err(Abort::into_error)?;
    // A replay still commits the revocation above; only then is it reported.
    if reused {
        return Err(EndSessionError::AlreadyUsed);
    }
    Ok(SessionId::from_uuid(session.0))
}

pub(crate) fn revoke(
    conn: &mut Conn,
    id: SessionId,
    reason: RevocationReason,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    diesel::update(
        sessions::table
            .find(DbUuid(id.as_uuid()))
            .filter(sessions::revoked_at.is_null()),
    )
    .set((
        sessions::revoked_at.eq(now),
        sessions::revocation_reason.eq(reason.as_str()),
    ))
    .execute(conn)
    .map(drop)
    .map_err(store)
}

pub(crate) fn revoke_all_for_user(
    conn: &mut Conn,
    user: UserId,
    reason: RevocationReason,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    revoke_active_of_user(conn, DbUuid(user.as_uuid()), reason, now)
        .map(|count| count as u64)
        .map_err(store)
}

pub(crate) fn create_reset_token(
    conn: &mut Conn,
    token: &ResetTokenRecord,
    event: &AuthEvent,
    mail: Option<(&QueuedMail, &str)>,
) -> Result<(), StoreError> {
    let user = DbUuid(token.user_id.as_uuid());
    write_tx(conn, |c| {
        // Only the newest link works: outstanding ones go.
        diesel::delete(
            password_reset_tokens::table
                .filter(password_reset_tokens::user_id.eq(user))
                .filter(password_reset_tokens::used_at.is_null()),
        )
        .execute(c)?;
        diesel::insert_into(password_reset_tokens::table)
            .values((
                password_reset_tokens::token_hash.eq(token.token_hash.as_str()),
                password_reset_tokens::user_id.eq(user),
                password_reset_tokens::created_at.eq(token.created_at),
                password_reset_tokens::expires_at.eq(token.expires_at),
                password_reset_tokens::used_at.eq(token.used_at),
            ))
            .execute(c)?;
        if let Some((mail, stored_secret)) = mail {
            diesel::insert_into(mail_outbox::table)
                .values((
                    mail_outbox::id.eq(DbUuid(mail.id.as_uuid())),
                    mail_outbox::recipient.eq(mail.to.as_str()),
                    mail_outbox::secret.eq(Some(stored_secret)),
                    mail_outbox::link_expires_at.eq(mail.link_expires_at),
                    mail_outbox::queued_at.eq(mail.queued_at),
                    mail_outbox::attempts.eq(0),
                    mail_outbox::next_attempt_at.eq(mail.queued_at),
                ))
                .execute(c)?;
        }
        insert_event(c, event)
    })
    .map_err(store)
}

/// An outbox row as a sender or the status reads it.
type OutboxRow = (
    DbUuid,
    String,
    Option<String>,
    DateTime<Utc>,
    DateTime<Utc>,
    i32,
    DateTime<Utc>,
    Option<String>,
    Option<DateTime<Utc>>,
);

const OUTBOX_COLUMNS: (
    mail_outbox::id,
    mail_outbox::recipient,
    mail_outbox::secret,
    mail_outbox::link_expires_at,
    mail_outbox::queued_at,
    mail_outbox::attempts,
    mail_outbox::next_attempt_at,
    mail_outbox::last_error,
    mail_outbox::failed_at,
) = (
    mail_outbox::id,
    mail_outbox::recipient,
    mail_outbox::secret,
    mail_outbox::link_expires_at,
    mail_outbox::queued_at,
    mail_outbox::attempts,
    mail_outbox::next_attempt_at,
    mail_outbox::last_error,
    mail_outbox::failed_at,
);

fn stored_recipient(recipient: &str) -> Result<Email, StoreError> {
    Email::parse(recipient)
        .map_err(|e| StoreError::new(format!("stored mail_outbox.recipient is invalid: {e}")))
}

/// Candidates are read, then each is leased by a conditional update on the due time it
/// was read with, so of two senders racing for a message exactly one gets it.
pub(crate) fn lease_due_mail(
    conn: &mut Conn,
    now: DateTime<Utc>,
    lease: TimeDelta,
    limit: u32,
) -> Result<Vec<QueuedMail>, StoreError> {
    write_tx(conn, |c| {
        let due: Vec<OutboxRow> = mail_outbox::table
            .filter(mail_outbox::failed_at.is_null())
            .filter(mail_outbox::next_attempt_at.le(now))
            .order(mail_outbox::queued_at)
            .limit(i64::from(limit))
            .select(OUTBOX_COLUMNS)
            .load(c)?;
        let mut leased = Vec::new();
        for (id, recipient, secret, link_expires_at, queued_at, attempts, due_at, _, _) in due {
            let taken = diesel::update(
                mail_outbox::table
                    .find(id)
                    .filter(mail_outbox::next_attempt_at.eq(due_at))
                    .filter(mail_outbox::failed_at.is_null()),
            )
            .set((
                mail_outbox::next_attempt_at.eq(now + lease),
                mail_outbox::attempts.eq(mail_outbox::attempts + 1),
            ))
            .execute(c)?;
            if taken > 0 {
                leased.push((id, recipient, secret, link_expires_at, queued_at, attempts + 1));
            }
        }
        Ok(leased)
    })
    .map_err(store)?
    .into_iter()
    .map(|(id, recipient, secret, link_expires_at, queued_at, attempts)| {
        Ok(QueuedMail {
            id: MailId::from_uuid(id.0),
            to: stored_recipient(&recipient)?,
            secret: ResetSecret::from_presented(&secret.unwrap_or_default()),
            link_expires_at,
            queued_at,
            attempts: u32::try_from(attempts).unwrap_or(0),
        })
    })
    .collect()
}

pub(crate) fn mail_delivered(conn: &mut Conn, id: MailId) -> Result<(), StoreError> {
    diesel::delete(mail_outbox::table.find(DbUuid(id.as_uuid())))
        .execute(conn)
        .map(drop)
        .map_err(store)
}

pub(crate) fn retry_mail_at(
    conn: &mut Conn,
    id: MailId,
    retry_at: DateTime<Utc>,
    error: &str,
) -> Result<(), StoreError> {
    diesel::update(
        mail_outbox::table
            .find(DbUuid(id.as_uuid()))
            .filter(mail_outbox::failed_at.is_null()),
    )
    .set((
        mail_outbox::next_attempt_at.eq(retry_at),
        mail_outbox::last_error.eq(error),
    ))
    .execute(conn)
    .map(drop)
    .map_err(store)
}

pub(crate) fn give_up_mail(
    conn: &mut Conn,
    id: MailId,
    now: DateTime<Utc>,
    error: &str,
) -> Result<(), StoreError> {
    diesel::update(
        mail_outbox::table
            .find(DbUuid(id.as_uuid()))
            .filter(mail_outbox::failed_at.is_null()),
    )
    .set((
        mail_outbox::failed_at.eq(now),
        mail_outbox::secret.eq(None::<String>),
        mail_outbox::last_error.eq(error),
    ))
    .execute(conn)
    .map(drop)
    .map_err(store)
}

pub(crate) fn outbox_status(conn: &mut Conn) -> Result<OutboxStatus, StoreError> {
    let rows: Vec<OutboxRow> = mail_outbox::table
        .order(mail_outbox::queued_at)
        .select(OUTBOX_COLUMNS)
        .load(conn)
        .map_err(store)?;
    let mut status = OutboxStatus::default();
    for (id, recipient, _, _, queued_at, attempts, next_attempt_at, last_error, failed_at) in rows {
        let entry = OutboxEntry {
            id: MailId::from_uuid(id.0),
            to: stored_recipient(&recipient)?,
            queued_at,
            attempts: u32::try_from(attempts).unwrap_or(0),
            at: failed_at.unwrap_or(next_attempt_at),
            last_error,
        };
        match failed_at {
            None => status.pending.push(entry),
            Some(_) => status.failed.push(entry),
        }
    }
    Ok(status)
}

pub(crate) fn find_refresh_token(
    conn: &mut Conn,
    id: TokenId,
) -> Result<Option<RefreshTokenRecord>, StoreError> {
    refresh_tokens::table
        .find(DbUuid(id.as_uuid()))
        .select((
            refresh_tokens::jti,
            refresh_tokens::session_id,
            refresh_tokens::issued_at,
            refresh_tokens::expires_at,
            refresh_tokens::used_at,
        ))
        .first::<(DbUuid, DbUuid, DateTime<Utc>, DateTime<Utc>, Option<DateTime<Utc>>)>(conn)
        .optional()
        .map(|row| {
            row.map(|(id, session, issued_at, expires_at, used_at)| RefreshTokenRecord {
                id: TokenId::from_uuid(id.0),
                session_id: SessionId::from_uuid(session.0),
                issued_at,
                expires_at,
                used_at,
            })
        })
        .map_err(store)
}

pub(crate) fn create_client(conn: &mut Conn, client: &RegisteredClient) -> Result<(), StoreError> {
    diesel::insert_into(oauth_clients::table)
        .values((
            oauth_clients::id.eq(DbUuid(client.id.as_uuid())),
            oauth_clients::name.eq(&client.name),
            oauth_clients::secret_hash.eq(&client.secret_hash),
            oauth_clients::created_at.eq(client.created_at),
        ))
        .execute(conn)
        .map(drop)
        .map_err(store)
}

type ClientRow = (DbUuid, String, String, DateTime<Utc>);

fn into_client((id, name, secret_hash, created_at): ClientRow) -> RegisteredClient {
    RegisteredClient {
        id: ClientId::from_uuid(id.0),
        name,
        secret_hash,
        created_at,
    }
}

const CLIENT_COLUMNS: (
    oauth_clients::id,
    oauth_clients::name,
    oauth_clients::secret_hash,
    oauth_clients::created_at,
) = (
    oauth_clients::id,
    oauth_clients::name,
    oauth_clients::secret_hash,
    oauth_clients::created_at,
);

pub(crate) fn find_client(
    conn: &mut Conn,
    id: ClientId,
) -> Result<Option<RegisteredClient>, StoreError> {
    oauth_clients::table
        .find(DbUuid(id.as_uuid()))
        .select(CLIENT_COLUMNS)
        .first::<ClientRow>(conn)
        .optional()
        .map(|row| row.map(into_client))
        .map_err(store)
}

pub(crate) fn list_clients(conn: &mut Conn) -> Result<Vec<RegisteredClient>, StoreError> {
    oauth_clients::table
        .order(oauth_clients::created_at)
        .select(CLIENT_COLUMNS)
        .load::<ClientRow>(conn)
        .map(|rows| rows.into_iter().map(into_client).collect())
        .map_err(store)
}

pub(crate) fn delete_client(conn: &mut Conn, id: ClientId) -> Result<bool, StoreError> {
    diesel::delete(oauth_clients::table.find(DbUuid(id.as_uuid())))
        .execute(conn)
        .map(|deleted| deleted > 0)
        .map_err(store)
}

pub(crate) fn find_valid_reset_token(
    conn: &mut Conn,
    hash: &ResetTokenHash,
    now: DateTime<Utc>,
) -> Result<Option<ResetTokenRecord>, StoreError> {
    password_reset_tokens::table
        .find(hash.as_str())
        .filter(password_reset_tokens::used_at.is_null())
        .filter(password_reset_tokens::expires_at.gt(now))
        .select(RESET_TOKEN_COLUMNS)
        .first::<ResetTokenRow>(conn)
        .optional()
        .map_err(store)?
        .map(ResetTokenRow::into_domain)
        .transpose()
}

pub(crate) fn complete_reset(
    conn: &mut Conn,
    hash: &ResetTokenHash,
    new_password_hash: &PasswordHash,
    now: DateTime<Utc>,
    event: &AuthEvent,
) -> Result<CompletedReset, CompleteResetError> {
    write_tx(conn, |c| {
        // Spending the token is the conditional update that decides concurrent resets.
        let user = diesel::update(
            password_reset_tokens::table
                .find(hash.as_str())
                .filter(password_reset_tokens::used_at.is_null())
                .filter(password_reset_tokens::expires_at.gt(now)),
        )
        .set(password_reset_tokens::used_at.eq(now))
        .returning(password_reset_tokens::user_id)
        .get_result::<DbUuid>(c)
        .optional()?;
        let Some(user) = user else {
            return Err(Abort::Refuse(CompleteResetError::InvalidToken));
        };
        diesel::update(users::table.find(user))
            .set((
                users::password_hash.eq(new_password_hash.as_str()),
                users::password_changed_at.eq(now),
                users::credential_version.eq(users::credential_version + 1),
                users::must_change_password.eq(false),
                users::updated_at.eq(now),
            ))
            .execute(c)?;
        let revoked = revoke_active_of_user(c, user, RevocationReason::PasswordReset, now)?;
        insert_event(c, event)?;
        Ok(CompletedReset {
            user: UserId::from_uuid(user.0),
            sessions_revoked: u64::try_from(revoked).unwrap_or(u64::MAX),
        })
    })
    .map_err(Abort::into_error)
}

pub(crate) fn load_or_create_secret(
    conn: &mut Conn,
    name: &str,
    generate: impl FnOnce() -> Vec<u8>,
) -> Result<Vec<u8>, StoreError> {
    let stored = |c: &mut Conn| {
        server_secrets::table
            .find(name)
            .select(server_secrets::value)
            .first::<Vec<u8>>(c)
            .optional()
            .map_err(store)
    };
    if let Some(secret) = stored(conn)? {
        return Ok(secret);
    }
    // Of processes starting together, the first insert wins and all read its value.
    diesel::insert_into(server_secrets::table)
        .values((
            server_secrets::name.eq(name),
            server_secrets::value.eq(generate()),
            server_secrets::created_at.eq(SystemClock.now()),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .map_err(store)?;
    stored(conn)?
        .ok_or_else(|| StoreError::new(format!("server secret {name:?} vanished after insert")))
}

const SIGNING_KEY_COLUMNS: (
    signing_keys::id,
    signing_keys::algorithm,
    signing_keys::private_key,
    signing_keys::public_key,
    signing_keys::legacy,
    signing_keys::created_at,
    signing_keys::activated_at,
    signing_keys::retired_at,
) = (
    signing_keys::id,
    signing_keys::algorithm,
    signing_keys::private_key,
    signing_keys::public_key,
    signing_keys::legacy,
    signing_keys::created_at,
    signing_keys::activated_at,
    signing_keys::retired_at,
);

pub(crate) fn signing_keys(conn: &mut Conn) -> Result<Vec<SigningKeyRecord>, StoreError> {
    signing_keys::table
        .select(SIGNING_KEY_COLUMNS)
        .order((signing_keys::created_at.asc(), signing_keys::id.asc()))
        .load::<SigningKeyRow>(conn)
        .map_err(store)?
        .into_iter()
        .map(SigningKeyRow::into_domain)
        .collect()
}

pub(crate) fn find_signing_key(
    conn: &mut Conn,
    kid: &str,
) -> Result<Option<SigningKeyRecord>, StoreError> {
    signing_keys::table
        .find(kid)
        .select(SIGNING_KEY_COLUMNS)
        .first::<SigningKeyRow>(conn)
        .optional()
        .map_err(store)?
        .map(SigningKeyRow::into_domain)
        .transpose()
}

fn insert_key_row(conn: &mut Conn, key: &SigningKeyRecord) -> QueryResult<usize> {
    diesel::insert_into(signing_keys::table)
        .values((
            signing_keys::id.eq(&key.kid),
            signing_keys::algorithm.eq(key.algorithm.as_str()),
            signing_keys::private_key.eq(&key.sealed_private_key),
            signing_keys::public_key.eq(key.public_key.as_ref()),
            signing_keys::legacy.eq(key.legacy),
            signing_keys::created_at.eq(key.created_at),
            signing_keys::activated_at.eq(key.activated_at),
            signing_keys::retired_at.eq(key.retired_at),
        ))
        .execute(conn)
}

pub(crate) fn insert_signing_key(
    conn: &mut Conn,
    key: &SigningKeyRecord,
    only_if_none_active: bool,
) -> Result<bool, StoreError> {
    write_tx(conn, |c| {
        // Instances starting together on an empty table take turns here, so exactly
        // one stores the first key and the others then find it.
        keys_lock(c)?;
        if only_if_none_active {
            let active: i64 = signing_keys::table
                .filter(signing_keys::activated_at.is_not_null())
                .filter(signing_keys::retired_at.is_null())
                .count()
                .get_result(c)?;
            if active > 0 {
                return Ok(false);
            }
        }
        insert_key_row(c, key)?;
        Ok(true)
    })
    .map_err(store)
}

pub(crate) fn retire_signing_key(
    conn: &mut Conn,
    kid: &str,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    diesel::update(
        signing_keys::table
            .find(kid)
            .filter(signing_keys::retired_at.is_null()),
    )
    .set(signing_keys::retired_at.eq(at))
    .execute(conn)
    .map(|changed| changed > 0)
    .map_err(store)
}

/// Moves the plaintext secret `name` of `server_secrets` into `signing_keys`, sealed by
/// `seal` (given the secret and when it was stored), and deletes the plaintext row, in
/// one transaction: the key is never in both tables, nor in neither. `Ok(None)` when
/// there is no such secret (never was, or already imported).
pub(crate) fn import_legacy_secret(
    conn: &mut Conn,
    name: &str,
    seal: impl FnOnce(&[u8], DateTime<Utc>) -> Result<SigningKeyRecord, BoxError>,
) -> Result<Option<SigningKeyRecord>, StoreError> {
    write_tx(conn, |c| {
        keys_lock(c)?;
        let Some((value, created_at)) = server_secrets::table
            .find(name)
            .select((server_secrets::value, server_secrets::created_at))
            .first::<(Vec<u8>, DateTime<Utc>)>(c)
            .optional()?
        else {
            return Ok(None);
        };
        let record = seal(&value, created_at).map_err(|e| Abort::Refuse(StoreError::new(e)))?;
        insert_key_row(c, &record)?;
        diesel::delete(server_secrets::table.find(name)).execute(c)?;
        Ok(Some(record))
    })
    .map_err(Abort::into_error)
}

/// Deletes what can no longer matter, in one transaction: sessions past their absolute
/// expiry (their tokens cannot outlive it, so nothing can present them; their refresh
/// tokens go with them), refresh tokens past their own expiry (the codec refuses them
/// before any lookup), and reset tokens used or expired. Spent refresh tokens of live
/// sessions stay: reuse detection needs them. Events from before `events_before` go, and
/// throttle counters last hit before `throttles_before`. `None` when another instance
/// is purging.
pub(crate) fn purge(
    conn: &mut Conn,
    now: DateTime<Utc>,
    events_before: DateTime<Utc>,
    throttles_before: DateTime<Utc>,
) -> Result<Option<Purged>, StoreError> {
    write_tx(conn, |c| {
        if !purge_lock(c)? {
            return Ok(None);
        }
        let refresh_tokens = diesel::delete(
            refresh_tokens::table.filter(
                refresh_tokens::expires_at
                    .le(now)
                    .or(refresh_tokens::session_id.eq_any(
                        sessions::table
                            .filter(sessions::expires_at.le(now))
                            .select(sessions::id),
                    )),
            ),
        )
        .execute(c)?;
        let sessions =
            diesel::delete(sessions::table.filter(sessions::expires_at.le(now))).execute(c)?;
        let reset_tokens = diesel::delete(
            password_reset_tokens::table.filter(
                password_reset_tokens::used_at
                    .is_not_null()
                    .or(password_reset_tokens::expires_at.le(now)),
            ),
        )
        .execute(c)?;
        let events =
            diesel::delete(auth_events::table.filter(auth_events::at.lt(events_before)))
                .execute(c)?;
        // Given-up messages are kept as long as the events.
        let failed_mail =
            diesel::delete(mail_outbox::table.filter(mail_outbox::failed_at.lt(events_before)))
                .execute(c)?;
        let throttles =
            diesel::delete(throttles::table.filter(throttles::last_at.lt(throttles_before)))
                .execute(c)?;
        Ok(Some(Purged {
            sessions,
            refresh_tokens,
            reset_tokens,
            events,
            throttles,
            failed_mail,
        }))
    })
    .map_err(store)
}

pub(crate) fn get_throttle(
    conn: &mut Conn,
    key: &str,
) -> Result<Option<ThrottleRecord>, StoreError> {
    throttles::table
        .find(key)
        .select((
            throttles::count,
            throttles::window_started_at,
            throttles::last_at,
        ))
        .first::<(i64, DateTime<Utc>, DateTime<Utc>)>(conn)
        .optional()
        .map(|row| {
            row.map(|(count, window_started_at, last_at)| ThrottleRecord {
                count,
                window_started_at,
                last_at,
            })
        })
        .map_err(store)
}

/// Two statements in one transaction, each atomic on its own: a window that has ended
/// restarts (a conditional update), then the count goes up by one, or starts at one
/// (an upsert), so concurrent hits all count.
pub(crate) fn hit_throttle(
    conn: &mut Conn,
    key: &str,
    now: DateTime<Utc>,
    window: TimeDelta,
) -> Result<ThrottleRecord, StoreError> {
    use diesel::dsl::{SqlTypeOf, case_when};

    // One atomic upsert: a window that has ended restarts (both SET expressions read
    // the row as it was).
    let ended = || throttles::window_started_at.le(now - window);
    diesel::insert_into(throttles::table)
        .values((
            throttles::key.eq(key),
            throttles::count.eq(1),
            throttles::window_started_at.eq(now),
            throttles::last_at.eq(now),
        ))
        .on_conflict(throttles::key)
        .do_update()
        .set((
            throttles::count.eq(case_when::<_, _, SqlTypeOf<throttles::count>>(ended(), 1_i64)
                .otherwise(throttles::count + 1)),
            throttles::window_started_at.eq(case_when::<
                _,
                _,
                SqlTypeOf<throttles::window_started_at>,
            >(ended(), now)
            .otherwise(throttles::window_started_at)),
            throttles::last_at.eq(now),
        ))
        .returning((
            throttles::count,
            throttles::window_started_at,
            throttles::last_at,
        ))
        .get_result::<(i64, DateTime<Utc>, DateTime<Utc>)>(conn)
    .map(|(count, window_started_at, last_at)| ThrottleRecord {
        count,
        window_started_at,
        last_at,
    })
    .map_err(store)
}

/// A compare-and-set: one statement whose condition is the counter as seen.
pub(crate) fn claim_throttle(
    conn: &mut Conn,
    key: &str,
    seen: Option<ThrottleRecord>,
    now: DateTime<Utc>,
    window: TimeDelta,
) -> Result<Option<ThrottleRecord>, StoreError> {
    let Some(seen) = seen else {
        let inserted = diesel::insert_into(throttles::table)
            .values((
                throttles::key.eq(key),
                throttles::count.eq(1),
                throttles::window_started_at.eq(now),
                throttles::last_at.eq(now),
            ))
            .on_conflict_do_nothing()
            .execute(conn)
            .map_err(store)?;
        return Ok((inserted > 0).then_some(ThrottleRecord {
            count: 1,
            window_started_at: now,
            last_at: now,
        }));
    };
    let after = if seen.window_started_at > now - window {
        ThrottleRecord {
            count: seen.count + 1,
            last_at: now,
            ..seen
        }
    } else {
        ThrottleRecord {
            count: 1,
            window_started_at: now,
            last_at: now,
        }
    };
    let updated = diesel::update(
        throttles::table
            .find(key)
            .filter(throttles::count.eq(seen.count))
            .filter(throttles::window_started_at.eq(seen.window_started_at))
            .filter(throttles::last_at.eq(seen.last_at)),
    )
    .set((
        throttles::count.eq(after.count),
        throttles::window_started_at.eq(after.window_started_at),
        throttles::last_at.eq(after.last_at),
    ))
    .execute(conn)
    .map_err(store)?;
    Ok((updated > 0).then_some(after))
}

pub(crate) fn release_throttle(conn: &mut Conn, key: &str) -> Result<(), StoreError> {
    diesel::update(throttles::table.find(key).filter(throttles::count.gt(0)))
        .set(throttles::count.eq(throttles::count - 1))
        .execute(conn)
        .map(drop)
        .map_err(store)
}

pub(crate) fn clear_throttle(conn: &mut Conn, key: &str) -> Result<(), StoreError> {
    diesel::delete(throttles::table.find(key))
        .execute(conn)
        .map(drop)
        .map_err(store)
}
