//! Portcullis's in-memory storage adapter: the domain's [`UserRepository`],
//! [`SessionRepository`] and [`ResetTokenRepository`] without a database, for unit
//! tests of code that embeds the domain and for prototypes.
//!
//! [`MemoryStore`] keeps the semantics of the SQL adapter (`portcullis-persistence`),
//! refusals and all: emails and usernames are unique ignoring ASCII case, a session and
//! its first refresh token are stored together or not at all, a replayed refresh token
//! revokes its session, a new reset token retires the older ones, and a write the SQL
//! schema would refuse (a duplicate id, a session of an unknown user) is a
//! [`StoreError`]. It passes the domain's repository contract
//! (`portcullis_domain::contract`), as the SQL adapter does. Each method is one atomic
//! step, so concurrent callers see what they would see with SQL transactions. Nothing
//! is persisted: the data lives as long as the store's last clone.
//!
//! The whole use-case layer runs on it; here with mock crypto (the domain's `mocks`
//! feature):
//!
//! ```
//! use std::sync::Arc;
//! use portcullis_domain::*;
//! use portcullis_memory::MemoryStore;
//!
//! let store = MemoryStore::new();
//! let mut hasher = MockPasswordHasher::new();
//! hasher.expect_hash().returning(|p| Ok(PasswordHash::new(format!("plain:{}", p.expose()))));
//! hasher.expect_verify().returning(|p, hash| {
//!     let matches = hash.as_str() == format!("plain:{}", p.expose());
//!     Ok(if matches { PasswordVerdict::Valid } else { PasswordVerdict::Invalid })
//! });
//! let mut tokens = MockTokenCodec::new();
//! tokens.expect_issue().returning(|claims| Ok(claims.token_id.to_string()));
//! let service = AuthService::new(
//!     Ports {
//!         users: Arc::new(store.clone()),
//!         sessions: Arc::new(store.clone()),
//!         reset_tokens: Arc::new(store.clone()),
//!         hasher: Arc::new(hasher),
//!         tokens: Arc::new(tokens),
//!         clock: Arc::new(SystemClock),
//!         mailer: Arc::new(MockMailer::new()),
//!         throttles: Arc::new(store.clone()),
//!         events: Arc::new(store.clone()),
//!         outbox: Arc::new(store.clone()),
//!         clients: Arc::new(store.clone()),
//!     },
//!     AuthConfig::default(),
//! );
//!
//! let password = Password::new("correct horse");
//! let form = Registration {
//!     name: "Ada",
//!     bio: None,
//!     email: Some("ada@example.com"),
//!     username: Some("ada"),
//!     password: &password,
//!     confirm: None,
//! };
//! let registered = service.register(form, &IssueOptions::default())?;
//! let login = service.login("ADA", &password, &IssueOptions::default())?;
//! assert_eq!(login.user.id, registered.user.id);
//! assert!(store.find(login.session_id)?.is_some_and(|s| s.is_active(service.now())));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, TimeDelta, Utc};
use portcullis_domain::{
    AccountUpdate, AuthEvent, ClientId, ClientRepository, CompleteResetError, CompletedReset,
    CreateUserError, Email, EndSessionError, EventFilter, EventOutcome, EventRepository,
    ImportWriteError, MailId, MailOutbox, OutboxEntry, OutboxStatus, PasswordHash, QueuedMail,
    RefreshTokenRecord, RegisteredClient, ResetSecret, ResetTokenHash, ResetTokenRecord,
    ResetTokenRepository, RevocationReason, RotateError, Session, SessionId, SessionRepository,
    StoreError, ThrottleRecord, ThrottleRepository, TokenId, User, UserId, UserImportRepository,
    UserRepository, Username,
};

/// The repositories in memory. Clones share one store; every method takes its lock
/// once, so each is atomic and the store may be used from any number of threads.
#[derive(Clone, Default)]
pub struct MemoryStore {
    tables: Arc<Mutex<Tables>>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

/// Why the store refused or failed, as the source of a [`StoreError`]. The refusals
/// are the ones the SQL schema's keys and checks make.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("the memory store is unusable: a thread panicked while holding its lock")]
    Poisoned,
    #[error("a {0} with this key is already stored")]
    Duplicate(&'static str),
    #[error("no {0} with this id is stored")]
    Missing(&'static str),
    #[error("a session's revocation time and reason must be set together")]
    HalfRevoked,
}

impl From<Failure> for StoreError {
    fn from(failure: Failure) -> Self {
        StoreError::new(failure)
    }
}

#[derive(Default)]
struct Tables {
    users: HashMap<UserId, User>,
    sessions: HashMap<SessionId, Session>,
    refresh_tokens: HashMap<TokenId, RefreshTokenRecord>,
    /// The token each spent refresh token was rotated into.
    successors: HashMap<TokenId, TokenId>,
    throttles: HashMap<String, ThrottleRecord>,
    reset_tokens: HashMap<ResetTokenHash, ResetTokenRecord>,
    /// In the order stored.
    events: Vec<AuthEvent>,
    /// In the order queued.
    outbox: Vec<OutboxRow>,
    /// In the order registered.
    clients: Vec<RegisteredClient>,
}

/// A message in the outbox, with its delivery state.
struct OutboxRow {
    mail: QueuedMail,
    next_attempt_at: DateTime<Utc>,
    last_error: Option<String>,
    failed_at: Option<DateTime<Utc>>,
}

impl OutboxRow {
    fn entry(&self) -> OutboxEntry {
        OutboxEntry {
            id: self.mail.id,
            to: self.mail.to.clone(),
            queued_at: self.mail.queued_at,
            attempts: self.mail.attempts,
            at: self.failed_at.unwrap_or(self.next_attempt_at),
            last_error: self.last_error.clone(),
        }
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A poisoned lock means a panic interrupted a change: the data may be half
    /// written, so the store refuses to serve it.
    fn tables(&self) -> Result<MutexGuard<'_, Tables>, StoreError> {
        self.tables.lock().map_err(|_| Failure::Poisoned.into())
    }
}

/// ASCII case folding, as SQLite's `lower()` in the SQL adapter's unique indexes does;
/// emails are lower-cased and usernames ASCII already.
fn same_text(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

fn email_of(user: &User) -> Option<&str> {
    user.email.as_ref().map(Email::as_str)
}

fn username_of(user: &User) -> Option<&str> {
    user.username.as_ref().map(Username::as_str)
}

fn revoke(session: &mut Session, reason: RevocationReason, now: DateTime<Utc>) {
    session.revoked_at = Some(now);
    session.revocation_reason = Some(reason);
}

impl Tables {
    fn user_by(&self, matches: impl Fn(&User) -> bool) -> Option<User> {
        self.users.values().find(|user| matches(user)).cloned()
    }

    /// A refresh token and its session, as the SQL adapter's join finds them.
    fn presented(&self, jti: TokenId) -> Option<(&RefreshTokenRecord, &Session)> {
        let token = self.refresh_tokens.get(&jti)?;
        Some((token, self.sessions.get(&token.session_id)?))
    }

    /// What the SQL schema checks when a refresh token is inserted.
    fn check_new_refresh_token(&self, token: &RefreshTokenRecord) -> Result<(), Failure> {
        if self.refresh_tokens.contains_key(&token.id) {
            return Err(Failure::Duplicate("refresh token"));
        }
        if !self.sessions.contains_key(&token.session_id) {
            return Err(Failure::Missing("session"));
        }
        Ok(())
    }

    /// Revokes the session if it is still active at `now`.
    fn revoke_if_active(&mut self, id: SessionId, reason: RevocationReason, now: DateTime<Utc>) {
        if let Some(session) = self.sessions.get_mut(&id).filter(|s| s.is_active(now)) {
            revoke(session, reason, now);
        }
    }

    fn revoke_active_of_user(
        &mut self,
        user: UserId,
        reason: RevocationReason,
        now: DateTime<Utc>,
    ) -> u64 {
        let mut revoked = 0;
        for session in self.sessions.values_mut() {
            if session.user_id == user && session.is_active(now) {
                revoke(session, reason, now);
                revoked += 1;
            }
        }
        revoked
    }
}

/// Whether another account of `users` has `user`'s email or username.
fn clashes(users: &HashMap<UserId, User>, user: &User) -> bool {
    let same = |mine: Option<&str>, theirs: Option<&str>| {
        mine.zip(theirs)
            .is_some_and(|(mine, theirs)| same_text(mine, theirs))
    };
    users.values().any(|other| {
        other.id != user.id
            && (same(email_of(user), email_of(other))
                || same(username_of(user), username_of(other)))
    })
}

impl UserImportRepository for MemoryStore {
    fn find_accounts(
        &self,
        emails: &[Email],
        usernames: &[Username],
    ) -> Result<Vec<User>, StoreError> {
        let tables = self.tables()?;
        let matches = |user: &User| {
            emails
                .iter()
                .any(|email| email_of(user).is_some_and(|mine| same_text(mine, email.as_str())))
                || usernames.iter().any(|name| {
                    username_of(user).is_some_and(|mine| same_text(mine, name.as_str()))
                })
        };
        Ok(tables
            .users
            .values()
            .filter(|user| matches(user))
            .cloned()
            .collect())
    }

    fn write_import(
        &self,
        created: &[User],
        updated: &[AccountUpdate],
        events: &[AuthEvent],
    ) -> Result<(), ImportWriteError> {
        let mut tables = self.tables()?;
        // Written into a copy, swapped in only if every row fits: all or nothing.
        let mut users = tables.users.clone();
        for user in created {
            if users.contains_key(&user.id) || clashes(&users, user) {
                return Err(ImportWriteError::Changed);
            }
            users.insert(user.id, user.clone());
        }
        for update in updated {
            let unchanged = users
                .get(&update.user.id)
                .is_some_and(|stored| stored.updated_at == update.read_updated_at);
            if !unchanged || clashes(&users, &update.user) {
                return Err(ImportWriteError::Changed);
            }
            users.insert(update.user.id, update.user.clone());
        }
        tables.users = users;
        tables.events.extend_from_slice(events);
        Ok(())
    }
}

impl UserRepository for MemoryStore {
    fn create(&self, user: &User, event: &AuthEvent) -> Result<(), CreateUserError> {
        let mut tables = self.tables()?;
        // In the order the SQL adapter's primary key and unique indexes are checked.
        if tables.users.contains_key(&user.id) {
            return Err(StoreError::from(Failure::Duplicate("user")).into());
        }
        let taken = |mine: Option<&str>, theirs: fn(&User) -> Option<&str>| {
            mine.is_some_and(|mine| {
                tables
                    .users
                    .values()
                    .any(|other| theirs(other).is_some_and(|other| same_text(other, mine)))
            })
        };
        if taken(user.email.as_ref().map(Email::as_str), email_of) {
            return Err(CreateUserError::EmailTaken);
        }
        if taken(user.username.as_ref().map(Username::as_str), username_of) {
            return Err(CreateUserError::UsernameTaken);
        }
        tables.users.insert(user.id, user.clone());
        tables.events.push(event.clone());
        Ok(())
    }

    fn find_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        Ok(self.tables()?.users.get(&id).cloned())
    }

    fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        Ok(self
            .tables()?
            .user_by(|user| email_of(user).is_some_and(|mine| same_text(mine, email.as_str()))))
    }

    fn find_by_username(&self, username: &Username) -> Result<Option<User>, StoreError> {
        Ok(self.tables()?.user_by(|user| {
            username_of(user).is_some_and(|mine| same_text(mine, username.as_str()))
        }))
    }

    fn replace_password_hash(
        &self,
        id: UserId,
        verified: &PasswordHash,
        new: &PasswordHash,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tables = self.tables()?;
        let Some(user) = tables
            .users
            .get_mut(&id)
            .filter(|user| user.password_hash == *verified)
        else {
            return Ok(false);
        };
        user.password_hash = new.clone();
        user.updated_at = now;
        Ok(true)
    }
}

impl ThrottleRepository for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<ThrottleRecord>, StoreError> {
        Ok(self.tables()?.throttles.get(key).copied())
    }

    fn hit(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: TimeDelta,
    ) -> Result<ThrottleRecord, StoreError> {
        let mut tables = self.tables()?;
        let record = tables
            .throttles
            .entry(key.to_owned())
            .and_modify(|record| {
                if record.window_started_at <= now - window {
                    record.count = 1;
                    record.window_started_at = now;
                } else {
                    record.count += 1;
                }
                record.last_at = now;
            })
            .or_insert(ThrottleRecord {
                count: 1,
                window_started_at: now,
                last_at: now,
            });
        Ok(*record)
    }

    fn claim(
        &self,
        key: &str,
        seen: Option<ThrottleRecord>,
        now: DateTime<Utc>,
        window: TimeDelta,
    ) -> Result<Option<ThrottleRecord>, StoreError> {
        let mut tables = self.tables()?;
        if tables.throttles.get(key).copied() != seen {
            return Ok(None);
        }
        let after = match seen {
            Some(record) if record.window_started_at > now - window => ThrottleRecord {
                count: record.count + 1,
                last_at: now,
                ..record
            },
            _ => ThrottleRecord {
                count: 1,
                window_started_at: now,
                last_at: now,
            },
        };
        tables.throttles.insert(key.to_owned(), after);
        Ok(Some(after))
    }

    fn release(&self, key: &str) -> Result<(), StoreError> {
        if let Some(record) = self.tables()?.throttles.get_mut(key) {
            record.count = (record.count - 1).max(0);
        }
        Ok(())
    }

    fn clear(&self, key: &str) -> Result<(), StoreError> {
        self.tables()?.throttles.remove(key);
        Ok(())
    }
}

impl SessionRepository for MemoryStore {
    fn create(
        &self,
        session: &Session,
        first_token: &RefreshTokenRecord,
        event: Option<&AuthEvent>,
    ) -> Result<(), StoreError> {
        let mut tables = self.tables()?;
        if tables.sessions.contains_key(&session.id) {
            return Err(Failure::Duplicate("session").into());
        }
        if !tables.users.contains_key(&session.user_id) {
            return Err(Failure::Missing("user").into());
        }
        if session.revoked_at.is_some() != session.revocation_reason.is_some() {
            return Err(Failure::HalfRevoked.into());
        }
        tables.sessions.insert(session.id, session.clone());
        // Both or neither: the session goes again if its token cannot be stored.
        if let Err(failure) = tables.check_new_refresh_token(first_token) {
            tables.sessions.remove(&session.id);
            return Err(failure.into());
        }
        tables
            .refresh_tokens
            .insert(first_token.id, first_token.clone());
        tables.events.extend(event.cloned());
        Ok(())
    }

    fn find(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        Ok(self.tables()?.sessions.get(&id).cloned())
    }

    fn refresh_token(&self, id: TokenId) -> Result<Option<RefreshTokenRecord>, StoreError> {
        Ok(self.tables()?.refresh_tokens.get(&id).cloned())
    }

    fn rotate(
        &self,
        presented: TokenId,
        successor: &RefreshTokenRecord,
        now: DateTime<Utc>,
        grace: TimeDelta,
        event: &AuthEvent,
    ) -> Result<(), RotateError> {
        let mut tables = self.tables()?;
        let Some((token, session)) = tables.presented(presented) else {
            return Err(RotateError::UnknownToken);
        };
        let (session_id, used_at, active) = (session.id, token.used_at, session.is_active(now));
        let recent =
            grace > TimeDelta::zero() && used_at.is_some_and(|used_at| now < used_at + grace);
        let rotated_into = tables
            .successors
            .get(&presented)
            .and_then(|id| tables.refresh_tokens.get(id));
        if let (true, true, Some(successor)) = (recent, active, rotated_into) {
            return Err(RotateError::RecentlyRotated {
                successor: successor.clone(),
            });
        }
        // A spent token is a replay whatever the session's state.
        if used_at.is_some() {
            tables.revoke_if_active(session_id, RevocationReason::RefreshReuse, now);
            tables
                .events
                .push(event.clone().with_outcome(EventOutcome::ReuseDetected));
            return Err(RotateError::AlreadyUsed {
                session: session_id,
            });
        }
        if !active {
            return Err(RotateError::SessionInactive);
        }
        tables
            .check_new_refresh_token(successor)
            .map_err(StoreError::from)?;
        if let Some(token) = tables.refresh_tokens.get_mut(&presented) {
            token.used_at = Some(now);
        }
        if let Some(session) = tables.sessions.get_mut(&session_id) {
            session.last_refreshed_at = Some(now);
        }
        tables
            .refresh_tokens
            .insert(successor.id, successor.clone());
        tables.successors.insert(presented, successor.id);
        tables.events.push(event.clone());
        Ok(())
    }

    fn end_by_refresh_token(
        &self,
        token: TokenId,
        reason: RevocationReason,
        now: DateTime<Utc>,
        event: &AuthEvent,
    ) -> Result<SessionId, EndSessionError> {
        let mut tables = self.tables()?;
        let Some((token, session)) = tables.presented(token) else {
            return Err(EndSessionError::UnknownToken);
        };
        if !session.is_active(now) {
            return Err(EndSessionError::SessionInactive);
        }
        let (session_id, used) = (session.id, token.used_at.is_some());
        let reason = if used {
            RevocationReason::RefreshReuse
        } else {
            reason
        };
        tables.revoke_if_active(session_id, reason, now);
        if used {
            tables
                .events
                .push(event.clone().with_outcome(EventOutcome::ReuseDetected));
            return Err(EndSessionError::AlreadyUsed);
        }
        tables.events.push(event.clone());
        Ok(session_id)
    }

    fn revoke(
        &self,
        id: SessionId,
        reason: RevocationReason,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tables = self.tables()?;
        // Expiry does not matter here, only a first revocation: its time and reason stay.
        if let Some(session) = tables
            .sessions
            .get_mut(&id)
            .filter(|s| s.revoked_at.is_none())
        {
            revoke(session, reason, now);
        }
        Ok(())
    }

    fn revoke_all_for_user(
        &self,
        user: UserId,
        reason: RevocationReason,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        Ok(self.tables()?.revoke_active_of_user(user, reason, now))
    }
}

impl ResetTokenRepository for MemoryStore {
    fn create(
        &self,
        token: &ResetTokenRecord,
        event: &AuthEvent,
        mail: Option<&QueuedMail>,
    ) -> Result<(), StoreError> {
        let mut tables = self.tables()?;
        if !tables.users.contains_key(&token.user_id) {
            return Err(Failure::Missing("user").into());
        }
        let outstanding_of_user =
            |stored: &ResetTokenRecord| stored.user_id == token.user_id && stored.used_at.is_none();
        // Only the newest link works: the user's outstanding tokens go, so the new one's
        // key may clash with one of them but with no other.
        let clashes = tables
            .reset_tokens
            .get(&token.token_hash)
            .is_some_and(|stored| !outstanding_of_user(stored));
        if clashes {
            return Err(Failure::Duplicate("reset token").into());
        }
        tables
            .reset_tokens
            .retain(|_, stored| !outstanding_of_user(stored));
        tables
            .reset_tokens
            .insert(token.token_hash.clone(), token.clone());
        tables.events.push(event.clone());
        if let Some(mail) = mail {
            tables.outbox.push(OutboxRow {
                mail: mail.clone(),
                next_attempt_at: mail.queued_at,
                last_error: None,
                failed_at: None,
            });
        }
        Ok(())
    }

    fn find_valid(
        &self,
        hash: &ResetTokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<ResetTokenRecord>, StoreError> {
        Ok(self
            .tables()?
            .reset_tokens
            .get(hash)
            .filter(|token| token.used_at.is_none() && now < token.expires_at)
            .cloned())
    }

    fn complete_reset(
        &self,
        hash: &ResetTokenHash,
        new_password_hash: &PasswordHash,
        now: DateTime<Utc>,
        event: &AuthEvent,
    ) -> Result<CompletedReset, CompleteResetError> {
        let mut tables = self.tables()?;
        let Some(token) = tables
            .reset_tokens
            .get_mut(hash)
            .filter(|token| token.used_at.is_none() && now < token.expires_at)
        else {
            return Err(CompleteResetError::InvalidToken);
        };
        token.used_at = Some(now);
        let user_id = token.user_id;
        if let Some(user) = tables.users.get_mut(&user_id) {
            user.password_hash = new_password_hash.clone();
            user.password_changed_at = now;
            user.credential_version += 1;
            user.must_change_password = false;
            user.updated_at = now;
        }
        let sessions_revoked =
            tables.revoke_active_of_user(user_id, RevocationReason::PasswordReset, now);
        tables.events.push(event.clone());
        Ok(CompletedReset {
            user: user_id,
            sessions_revoked,
        })
    }
}

impl MailOutbox for MemoryStore {
    fn lease_due(
        &self,
        now: DateTime<Utc>,
        lease: TimeDelta,
        limit: u32,
    ) -> Result<Vec<QueuedMail>, StoreError> {
        let mut tables = self.tables()?;
        let mut due: Vec<&mut OutboxRow> = tables
            .outbox
            .iter_mut()
            .filter(|row| row.failed_at.is_none() && row.next_attempt_at <= now)
            .collect();
        due.sort_by_key(|row| row.mail.queued_at);
        Ok(due
            .into_iter()
            .take(limit as usize)
            .map(|row| {
                row.next_attempt_at = now + lease;
                row.mail.attempts += 1;
                row.mail.clone()
            })
            .collect())
    }

    fn delivered(&self, id: MailId) -> Result<(), StoreError> {
        self.tables()?.outbox.retain(|row| row.mail.id != id);
        Ok(())
    }

    fn retry_at(&self, id: MailId, retry_at: DateTime<Utc>, error: &str) -> Result<(), StoreError> {
        if let Some(row) = self
            .tables()?
            .outbox
            .iter_mut()
            .find(|row| row.mail.id == id)
        {
            row.next_attempt_at = retry_at;
            row.last_error = Some(error.to_owned());
        }
        Ok(())
    }

    fn give_up(&self, id: MailId, now: DateTime<Utc>, error: &str) -> Result<(), StoreError> {
        if let Some(row) = self
            .tables()?
            .outbox
            .iter_mut()
            .find(|row| row.mail.id == id)
        {
            row.failed_at = Some(now);
            row.last_error = Some(error.to_owned());
            row.mail.secret = ResetSecret::from_presented("");
        }
        Ok(())
    }

    fn status(&self) -> Result<OutboxStatus, StoreError> {
        let tables = self.tables()?;
        let mut status = OutboxStatus::default();
        for row in &tables.outbox {
            match row.failed_at {
                None => status.pending.push(row.entry()),
                Some(_) => status.failed.push(row.entry()),
            }
        }
        status.pending.sort_by_key(|entry| entry.queued_at);
        status.failed.sort_by_key(|entry| entry.queued_at);
        Ok(status)
    }
}

impl ClientRepository for MemoryStore {
    fn create_client(&self, client: &RegisteredClient) -> Result<(), StoreError> {
        let mut tables = self.tables()?;
        if tables.clients.iter().any(|stored| stored.id == client.id) {
            return Err(Failure::Duplicate("client").into());
        }
        tables.clients.push(client.clone());
        Ok(())
    }

    fn find_client(&self, id: ClientId) -> Result<Option<RegisteredClient>, StoreError> {
        Ok(self.tables()?.clients.iter().find(|c| c.id == id).cloned())
    }

    fn list_clients(&self) -> Result<Vec<RegisteredClient>, StoreError> {
        Ok(self.tables()?.clients.clone())
    }

    fn delete_client(&self, id: ClientId) -> Result<bool, StoreError> {
        let mut tables = self.tables()?;
        let before = tables.clients.len();
        tables.clients.retain(|c| c.id != id);
        Ok(tables.clients.len() < before)
    }
}

impl EventRepository for MemoryStore {
    fn record(&self, event: &AuthEvent) -> Result<(), StoreError> {
        self.tables()?.events.push(event.clone());
        Ok(())
    }

    fn list(&self, filter: &EventFilter) -> Result<Vec<AuthEvent>, StoreError> {
        let tables = self.tables()?;
        let mut selected: Vec<&AuthEvent> = tables
            .events
            .iter()
            .rev()
            .filter(|event| filter.user.is_none_or(|user| event.user_id == Some(user)))
            .filter(|event| filter.since.is_none_or(|since| event.at >= since))
            .collect();
        // Stable, so events of one instant stay latest-stored first.
        selected.sort_by_key(|event| std::cmp::Reverse(event.at));
        Ok(selected
            .into_iter()
            .take(filter.limit as usize)
            .cloned()
            .collect())
    }
}

/// The repository contract every adapter passes, one test per case.
#[cfg(test)]
mod contract {
    portcullis_domain::repository_contract!(crate::MemoryStore::new());
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use chrono::TimeDelta;
    use portcullis_domain::contract::fixtures::event;
    use portcullis_domain::{Clock, DisplayName, EventKind, Profile, ResetSecret, SystemClock};

    use super::*;

    fn user(email: &str) -> User {
        let now = SystemClock.now();
        User {
            id: UserId::generate(now),
            email: Some(Email::parse(email).unwrap()),
            username: None,
            name: DisplayName::parse("Ada").unwrap(),
            bio: None,
            email_verified: false,
            must_change_password: false,
            profile: Profile::default(),
            password_hash: PasswordHash::new("hash".into()),
            password_changed_at: now,
            created_at: now,
            updated_at: now,
            credential_version: 0,
        }
    }

    fn session_of(user: &User) -> (Session, RefreshTokenRecord) {
        let now = SystemClock.now();
        let session = Session {
            id: SessionId::generate(now),
            user_id: user.id,
            created_at: now,
            expires_at: now + TimeDelta::hours(1),
            last_refreshed_at: None,
            revoked_at: None,
            revocation_reason: None,
            credential_version: user.credential_version,
        };
        let token = RefreshTokenRecord {
            id: TokenId::generate(now),
            session_id: session.id,
            issued_at: now,
            expires_at: session.expires_at,
            used_at: None,
        };
        (session, token)
    }

    #[test]
    fn clones_share_the_data() {
        let store = MemoryStore::new();
        let ada = user("ada@example.com");
        UserRepository::create(&store.clone(), &ada, &event(EventKind::Registration)).unwrap();
        assert_eq!(store.find_by_id(ada.id).unwrap(), Some(ada));
    }

    #[test]
    fn a_poisoned_lock_is_a_store_error() {
        let store = MemoryStore::new();
        let poisoner = store.clone();
        let panicked = std::thread::spawn(move || {
            let _held = poisoner.tables.lock();
            panic!("poisoning the memory store on purpose");
        })
        .join();
        assert!(panicked.is_err());
        let error = store
            .find_by_id(UserId::generate(SystemClock.now()))
            .unwrap_err();
        assert!(error.to_string().contains("panicked"), "{error}");
    }

    #[test]
    fn writes_the_sql_schema_refuses_are_store_errors() {
        let store = MemoryStore::new();
        let ghost = user("ghost@example.com");
        let (orphan, orphan_token) = session_of(&ghost);
        assert!(SessionRepository::create(&store, &orphan, &orphan_token, None).is_err());
        let reset = ResetTokenRecord {
            token_hash: ResetTokenHash::of(&ResetSecret::from_presented("secret")),
            user_id: ghost.id,
            created_at: ghost.created_at,
            expires_at: ghost.created_at + TimeDelta::hours(1),
            used_at: None,
        };
        assert!(
            ResetTokenRepository::create(&store, &reset, &event(EventKind::ResetRequest), None)
                .is_err()
        );

        let ada = user("ada@example.com");
        UserRepository::create(&store, &ada, &event(EventKind::Registration)).unwrap();
        let (mut half_revoked, token) = session_of(&ada);
        half_revoked.revoked_at = Some(half_revoked.created_at);
        assert!(SessionRepository::create(&store, &half_revoked, &token, None).is_err());
        assert_eq!(store.find(half_revoked.id).unwrap(), None);

        let (stored, first) = session_of(&ada);
        SessionRepository::create(&store, &stored, &first, None).unwrap();
        let (_, other_token) = session_of(&ada);
        assert!(SessionRepository::create(&store, &stored, &other_token, None).is_err());
        assert!(store.find(stored.id).unwrap().is_some());
    }
}
