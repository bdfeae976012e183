//! Portcullis's cache of session and user state: decorators over the domain's
//! [`SessionRepository`], [`UserRepository`] and [`ResetTokenRepository`] that answer
//! the lookups of every authenticated request ([`SessionRepository::find`],
//! [`UserRepository::find_by_id`]) from memory, so that a request costs a JWT check
//! and no database round trip. The domain does not know the cache exists.
//!
//! # Staying correct
//!
//! An entry is dropped the moment anything that decides a request's fate changes:
//!
//! - **in this process**, by the decorators themselves, before the write that changed
//!   it returns (logout, revocation, refresh-token reuse, password reset, re-hash);
//! - **in other processes** sharing a PostgreSQL database, by
//!   [`StateCache::invalidate_session`] / [`StateCache::invalidate_user`] called from a
//!   listener on the database's change notifications (triggers send them, so changes
//!   made by any client, SQL consoles included, are seen).
//!
//! A fill that read the store before an invalidation reached it is refused (see
//! [`table`]), so an entry can never outlive the change that made it stale.
//!
//! Across processes the cache also needs the listener to be alive: with
//! [`Freshness::Leased`] entries are served only while the listener has recently proven
//! (a round trip on its connection, [`StateCache::confirm`]) that it has received every
//! notification committed before then. When proof is overdue (a slow or dead
//! connection) every lookup goes to the store, and a new connection starts with a full
//! flush. So a change committed at time `t` is honoured everywhere by `t + lease` at
//! worst, even if the notification itself is lost.
//!
//! One field is not invalidated across processes: a session's `last_refreshed_at`,
//! which every rotation changes and no request decides on (this process updates its
//! own entry in place). Entries also expire after a time to live, the bound for
//! deployments the database cannot notify (several processes on one SQLite file).

mod table;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use portcullis_domain::{
    AccountUpdate, AuthEvent, CompleteResetError, CompletedReset, CreateUserError, Email,
    EndSessionError, ImportWriteError, PasswordHash, QueuedMail, RefreshTokenRecord,
    ResetTokenHash, ResetTokenRecord, ResetTokenRepository, RevocationReason, RotateError, Session,
    SessionId, SessionRepository, StoreError, TokenId, User, UserId, UserImportRepository,
    UserRepository, Username,
};

use crate::table::Table;

/// How a cache knows its entries are still current.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// Every change goes through this process's decorators (one process per SQLite
    /// file): entries are current until their time to live.
    Local,
    /// Other processes change the store too; entries are served only while the
    /// invalidation listener's last confirmation is younger than this lease.
    Leased(Duration),
}

/// A [`StateCache`]'s bounds.
#[derive(Clone, Copy, Debug)]
pub struct CacheConfig {
    /// Entries per table (sessions, users); when full, an arbitrary one makes room.
    pub capacity: usize,
    /// The longest an entry is served, invalidated or not.
    pub ttl: Duration,
    pub freshness: Freshness,
}

/// Lookups served from memory and from the store, for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub sessions: usize,
    pub users: usize,
}

/// The shared state behind the decorators: one per process.
pub struct StateCache {
    sessions: Table<SessionId, Session>,
    users: Table<UserId, User>,
    freshness: Freshness,
    /// The moment [`StateCache::new`] ran; leases are milliseconds after it.
    started: Instant,
    /// Under [`Freshness::Leased`], entries are served until this many milliseconds
    /// after `started` (0: not before the listener's first confirmation).
    served_until_ms: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for StateCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateCache")
            .field("freshness", &self.freshness)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl StateCache {
    pub fn new(config: CacheConfig) -> Arc<Self> {
        Arc::new(Self {
            sessions: Table::new(config.capacity, config.ttl),
            users: Table::new(config.capacity, config.ttl),
            freshness: config.freshness,
            started: Instant::now(),
            served_until_ms: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    fn millis_since_start(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.started).as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether entries may be served and stored now.
    fn usable(&self) -> bool {
        match self.freshness {
            Freshness::Local => true,
            Freshness::Leased(_) => {
                self.millis_since_start(Instant::now())
                    < self.served_until_ms.load(Ordering::Acquire)
            }
        }
    }

    /// The listener has received every notification committed before `sent_at` (it
    /// sent a query at `sent_at` and read its answer, which the database sends after
    /// them): entries may be served until `sent_at` plus the lease.
    pub fn confirm(&self, sent_at: Instant) {
        if let Freshness::Leased(lease) = self.freshness {
            let until = self.millis_since_start(sent_at + lease);
            self.served_until_ms.fetch_max(until, Ordering::AcqRel);
        }
    }

    /// The listener lost its connection (or has a new one, not yet caught up): stop
    /// serving entries and drop them all, since notifications may have been missed.
    pub fn suspend(&self) {
        self.served_until_ms.store(0, Ordering::Release);
        self.flush();
    }

    /// Drops one session's entry.
    pub fn invalidate_session(&self, id: SessionId) {
        self.sessions.remove(&id);
    }

    /// Drops a user's entry and the entries of all its sessions.
    pub fn invalidate_user(&self, id: UserId) {
        self.users.remove(&id);
        self.sessions.remove_where(|session| session.user_id == id);
    }

    /// Drops everything.
    pub fn flush(&self) {
        self.sessions.clear();
        self.users.clear();
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            sessions: self.sessions.len(),
            users: self.users.len(),
        }
    }

    /// A cached lookup: the entry, else `load` from the store, kept unless it was
    /// invalidated meanwhile. Absent rows are not cached (a token names a row that
    /// exists, so misses on absent rows are rare and cheap to repeat).
    fn lookup<K: std::hash::Hash + Eq + Copy, V: Clone>(
        &self,
        table: &Table<K, V>,
        key: K,
        load: impl FnOnce() -> Result<Option<V>, StoreError>,
    ) -> Result<Option<V>, StoreError> {
        if !self.usable() {
            return load();
        }
        if let Some(value) = table.get(&key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(value));
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let ticket = table.ticket(&key);
        let loaded = load()?;
        // Checked again: the lease may have lapsed while the store was read.
        if let Some(value) = &loaded
            && self.usable()
        {
            table.fill(key, value.clone(), ticket);
        }
        Ok(loaded)
    }
}

/// [`SessionRepository`] over `S`, with [`SessionRepository::find`] cached.
pub struct CachedSessions<S> {
    inner: S,
    cache: Arc<StateCache>,
}

impl<S> CachedSessions<S> {
    pub fn new(inner: S, cache: Arc<StateCache>) -> Self {
        Self { inner, cache }
    }
}

impl<S: SessionRepository> CachedSessions<S> {
    /// After a failed or refused write whose session is not known: find it through
    /// the token, else drop everything (rare: reuse detection, storage failures).
    fn invalidate_by_token(&self, token: TokenId) {
        match self.inner.refresh_token(token) {
            Ok(Some(record)) => self.cache.invalidate_session(record.session_id),
            Ok(None) => {}
            Err(_) => self.cache.flush(),
        }
    }
}

impl<S: SessionRepository> SessionRepository for CachedSessions<S> {
    fn create(
        &self,
        session: &Session,
        first_token: &RefreshTokenRecord,
        event: Option<&AuthEvent>,
    ) -> Result<(), StoreError> {
        self.inner.create(session, first_token, event)
    }

    fn find(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        self.cache
            .lookup(&self.cache.sessions, id, || self.inner.find(id))
    }

    fn refresh_token(&self, id: TokenId) -> Result<Option<RefreshTokenRecord>, StoreError> {
        self.inner.refresh_token(id)
    }

    fn rotate(
        &self,
        presented: TokenId,
        successor: &RefreshTokenRecord,
        now: DateTime<Utc>,
        grace: TimeDelta,
        event: &AuthEvent,
    ) -> Result<(), RotateError> {
        let rotated = self.inner.rotate(presented, successor, now, grace, event);
        match &rotated {
            // A success changes only `last_refreshed_at`, kept exact here in place (the
            // next refresh needs the entry); other processes keep theirs (see above).
            Ok(()) => self
                .cache
                .sessions
                .update(&successor.session_id, |session| {
                    session.last_refreshed_at = Some(now);
                }),
            // A replay revoked the session; a storage failure may have, if what got
            // lost was the commit's answer.
            Err(_) => self.cache.invalidate_session(successor.session_id),
        }
        rotated
    }

    fn end_by_refresh_token(
        &self,
        token: TokenId,
        reason: RevocationReason,
        now: DateTime<Utc>,
        event: &AuthEvent,
    ) -> Result<SessionId, EndSessionError> {
        let ended = self.inner.end_by_refresh_token(token, reason, now, event);
        match &ended {
            Ok(session) => self.cache.invalidate_session(*session),
            Err(EndSessionError::AlreadyUsed | EndSessionError::Store(_)) => {
                self.invalidate_by_token(token);
            }
            Err(EndSessionError::UnknownToken | EndSessionError::SessionInactive) => {}
        }
        ended
    }

    fn revoke(
        &self,
        id: SessionId,
        reason: RevocationReason,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let revoked = self.inner.revoke(id, reason, now);
        self.cache.invalidate_session(id);
        revoked
    }

    fn revoke_all_for_user(
        &self,
        user: UserId,
        reason: RevocationReason,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let revoked = self.inner.revoke_all_for_user(user, reason, now);
        self.cache.invalidate_user(user);
        revoked
    }
}

/// [`UserRepository`] over `U`, with [`UserRepository::find_by_id`] cached. Lookups by
/// email and username (logins) always go to the store.
pub struct CachedUsers<U> {
    inner: U,
    cache: Arc<StateCache>,
}

impl<U> CachedUsers<U> {
    pub fn new(inner: U, cache: Arc<StateCache>) -> Self {
        Self { inner, cache }
    }
}

impl<U: UserRepository> UserRepository for CachedUsers<U> {
    fn create(&self, user: &User, event: &AuthEvent) -> Result<(), CreateUserError> {
        self.inner.create(user, event)
    }

    fn find_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.cache
            .lookup(&self.cache.users, id, || self.inner.find_by_id(id))
    }

    fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        self.inner.find_by_email(email)
    }

    fn find_by_username(&self, username: &Username) -> Result<Option<User>, StoreError> {
        self.inner.find_by_username(username)
    }

    fn replace_password_hash(
        &self,
        id: UserId,
        verified: &PasswordHash,
        new: &PasswordHash,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let replaced = self.inner.replace_password_hash(id, verified, new, now);
        self.cache.users.remove(&id);
        replaced
    }
}

/// An import's updates drop what is cached of the accounts they change (a replaced
/// password ends their sessions), whatever the outcome.
impl<U: UserImportRepository> UserImportRepository for CachedUsers<U> {
    fn find_accounts(
        &self,
        emails: &[Email],
        usernames: &[Username],
    ) -> Result<Vec<User>, StoreError> {
        self.inner.find_accounts(emails, usernames)
    }

    fn write_import(
        &self,
        created: &[User],
        updated: &[AccountUpdate],
        events: &[AuthEvent],
    ) -> Result<(), ImportWriteError> {
        let written = self.inner.write_import(created, updated, events);
        for update in updated {
            self.cache.invalidate_user(update.user.id);
        }
        written
    }
}

/// [`ResetTokenRepository`] over `R`: a completed reset drops the user's entries (its
/// credentials changed and its sessions were revoked).
pub struct CachedResetTokens<R> {
    inner: R,
    cache: Arc<StateCache>,
}

impl<R> CachedResetTokens<R> {
    pub fn new(inner: R, cache: Arc<StateCache>) -> Self {
        Self { inner, cache }
    }
}

impl<R: ResetTokenRepository> ResetTokenRepository for CachedResetTokens<R> {
    fn create(
        &self,
        token: &ResetTokenRecord,
        event: &AuthEvent,
        mail: Option<&QueuedMail>,
    ) -> Result<(), StoreError> {
        self.inner.create(token, event, mail)
    }

    fn find_valid(
        &self,
        hash: &ResetTokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<ResetTokenRecord>, StoreError> {
        self.inner.find_valid(hash, now)
    }

    fn complete_reset(
        &self,
        hash: &ResetTokenHash,
        new_password_hash: &PasswordHash,
        now: DateTime<Utc>,
        event: &AuthEvent,
    ) -> Result<CompletedReset, CompleteResetError> {
        let completed = self
            .inner
            .complete_reset(hash, new_password_hash, now, event);
        match &completed {
            Ok(completed) => self.cache.invalidate_user(completed.user),
            // Whose reset it was is unknown; the commit may have happened.
            Err(CompleteResetError::Store(_)) => self.cache.flush(),
            Err(CompleteResetError::InvalidToken) => {}
        }
        completed
    }
}
