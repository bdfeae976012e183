//! The decorators keep the whole repository contract (every write is seen by the next
//! read of this process), and serve lookups from memory until invalidated.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use portcullis_cache::{
    CacheConfig, CachedResetTokens, CachedSessions, CachedUsers, Freshness, StateCache,
};
use portcullis_domain::contract::fixtures::{event, stored_session, stored_user, token_for};
use portcullis_domain::*;
use portcullis_memory::MemoryStore;

const LOCAL: CacheConfig = CacheConfig {
    capacity: 1000,
    ttl: Duration::from_secs(3600),
    freshness: Freshness::Local,
};

/// A store whose sessions, users and reset tokens go through the cache decorators,
/// over a `MemoryStore` that `backing` shares (writes to it play another process).
struct CachedStore {
    backing: MemoryStore,
    cache: Arc<StateCache>,
    sessions: CachedSessions<MemoryStore>,
    users: CachedUsers<MemoryStore>,
    resets: CachedResetTokens<MemoryStore>,
}

impl CachedStore {
    fn new(config: CacheConfig) -> Self {
        let backing = MemoryStore::new();
        let cache = StateCache::new(config);
        Self {
            sessions: CachedSessions::new(backing.clone(), cache.clone()),
            users: CachedUsers::new(backing.clone(), cache.clone()),
            resets: CachedResetTokens::new(backing.clone(), cache.clone()),
            backing,
            cache,
        }
    }
}

impl UserRepository for CachedStore {
    fn create(&self, user: &User, event: &AuthEvent) -> Result<(), CreateUserError> {
        self.users.create(user, event)
    }
    fn find_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.users.find_by_id(id)
    }
    fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        self.users.find_by_email(email)
    }
    fn find_by_username(&self, username: &Username) -> Result<Option<User>, StoreError> {
        self.users.find_by_username(username)
    }
    fn replace_password_hash(
        &self,
        id: UserId,
        verified: &PasswordHash,
        new: &PasswordHash,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.users.replace_password_hash(id, verified, new, now)
    }
}

impl UserImportRepository for CachedStore {
    fn find_accounts(
        &self,
        emails: &[Email],
        usernames: &[Username],
    ) -> Result<Vec<User>, StoreError> {
        self.users.find_accounts(emails, usernames)
    }
    fn write_import(
        &self,
        created: &[User],
        updated: &[AccountUpdate],
        events: &[AuthEvent],
    ) -> Result<(), ImportWriteError> {
        self.users.write_import(created, updated, events)
    }
}

impl SessionRepository for CachedStore {
    fn create(
        &self,
        session: &Session,
        first_token: &RefreshTokenRecord,
        event: Option<&AuthEvent>,
    ) -> Result<(), StoreError> {
        self.sessions.create(session, first_token, event)
    }
    fn find(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        self.sessions.find(id)
    }
    fn refresh_token(&self, id: TokenId) -> Result<Option<RefreshTokenRecord>, StoreError> {
        self.sessions.refresh_token(id)
    }
    fn rotate(
        &self,
        presented: TokenId,
        successor: &RefreshTokenRecord,
        now: DateTime<Utc>,
        grace: TimeDelta,
        event: &AuthEvent,
    ) -> Result<(), RotateError> {
        self.sessions
            .rotate(presented, successor, now, grace, event)
    }
    fn end_by_refresh_token(
        &self,
        token: TokenId,
        reason: RevocationReason,
        now: DateTime<Utc>,
        event: &AuthEvent,
    ) -> Result<SessionId, EndSessionError> {
        self.sessions
            .end_by_refresh_token(token, reason, now, event)
    }
    fn revoke(
        &self,
        id: SessionId,
        reason: RevocationReason,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.sessions.revoke(id, reason, now)
    }
    fn revoke_all_for_user(
        &self,
        user: UserId,
        reason: RevocationReason,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.sessions.revoke_all_for_user(user, reason, now)
    }
}

impl ResetTokenRepository for CachedStore {
    fn create(
        &self,
        token: &ResetTokenRecord,
        event: &AuthEvent,
        mail: Option<&QueuedMail>,
    ) -> Result<(), StoreError> {
        self.resets.create(token, event, mail)
    }
    fn find_valid(
        &self,
        hash: &ResetTokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<ResetTokenRecord>, StoreError> {
        self.resets.find_valid(hash, now)
    }
    fn complete_reset(
        &self,
        hash: &ResetTokenHash,
        new_password_hash: &PasswordHash,
        now: DateTime<Utc>,
        event: &AuthEvent,
    ) -> Result<CompletedReset, CompleteResetError> {
        self.resets
            .complete_reset(hash, new_password_hash, now, event)
    }
}

// The ports the cache does not decorate, straight through.
impl ThrottleRepository for CachedStore {
    fn get(&self, key: &str) -> Result<Option<ThrottleRecord>, StoreError> {
        self.backing.get(key)
    }
    fn hit(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: TimeDelta,
    ) -> Result<ThrottleRecord, StoreError> {
        self.backing.hit(key, now, window)
    }
    fn claim(
        &self,
        key: &str,
        seen: Option<ThrottleRecord>,
        now: DateTime<Utc>,
        window: TimeDelta,
    ) -> Result<Option<ThrottleRecord>, StoreError> {
        self.backing.claim(key, seen, now, window)
    }
    fn release(&self, key: &str) -> Result<(), StoreError> {
        self.backing.release(key)
    }
    fn clear(&self, key: &str) -> Result<(), StoreError> {
        self.backing.clear(key)
    }
}

impl EventRepository for CachedStore {
    fn record(&self, event: &AuthEvent) -> Result<(), StoreError> {
        self.backing.record(event)
    }
    fn list(&self, filter: &EventFilter) -> Result<Vec<AuthEvent>, StoreError> {
        self.backing.list(filter)
    }
}

impl MailOutbox for CachedStore {
    fn lease_due(
        &self,
        now: DateTime<Utc>,
        lease: TimeDelta,
        limit: u32,
    ) -> Result<Vec<QueuedMail>, StoreError> {
        self.backing.lease_due(now, lease, limit)
    }
    fn delivered(&self, id: MailId) -> Result<(), StoreError> {
        self.backing.delivered(id)
    }
    fn retry_at(&self, id: MailId, retry_at: DateTime<Utc>, error: &str) -> Result<(), StoreError> {
        self.backing.retry_at(id, retry_at, error)
    }
    fn give_up(&self, id: MailId, now: DateTime<Utc>, error: &str) -> Result<(), StoreError> {
        self.backing.give_up(id, now, error)
    }
    fn status(&self) -> Result<OutboxStatus, StoreError> {
        self.backing.status()
    }
}

impl ClientRepository for CachedStore {
    fn create_client(&self, client: &RegisteredClient) -> Result<(), StoreError> {
        self.backing.create_client(client)
    }
    fn find_client(&self, id: ClientId) -> Result<Option<RegisteredClient>, StoreError> {
        self.backing.find_client(id)
    }
    fn list_clients(&self) -> Result<Vec<RegisteredClient>, StoreError> {
        self.backing.list_clients()
    }
    fn delete_client(&self, id: ClientId) -> Result<bool, StoreError> {
        self.backing.delete_client(id)
    }
}

mod contract {
    portcullis_domain::repository_contract!(super::CachedStore::new(super::LOCAL));
}

fn now() -> DateTime<Utc> {
    SystemClock.now()
}

/// Whether the session reads back revoked (through the cache).
fn revoked(store: &CachedStore, id: SessionId) -> bool {
    store.find(id).unwrap().unwrap().revoked_at.is_some()
}

/// A user with one active session, stored straight into the backing store.
fn seeded(store: &CachedStore) -> (User, Session, RefreshTokenRecord) {
    let user = stored_user(&store.backing, "ada@example.com");
    let (session, token) = stored_session(&store.backing, &user, now(), TimeDelta::days(1));
    (user, session, token)
}

#[test]
fn lookups_are_served_from_memory_until_invalidated() {
    let store = CachedStore::new(LOCAL);
    let (user, session, _) = seeded(&store);
    assert_eq!(store.find(session.id).unwrap(), Some(session.clone()));
    assert_eq!(store.find_by_id(user.id).unwrap(), Some(user.clone()));
    assert_eq!(store.cache.stats().misses, 2);

    // Another process revokes the session: this one's entry still answers...
    store
        .backing
        .revoke(session.id, RevocationReason::Logout, now())
        .unwrap();
    assert!(!revoked(&store, session.id));
    assert_eq!(store.cache.stats().hits, 1);
    // ...until its notification arrives.
    store.cache.invalidate_session(session.id);
    assert!(revoked(&store, session.id));
}

#[test]
fn invalidating_a_user_drops_its_sessions_and_spares_the_others() {
    let store = CachedStore::new(LOCAL);
    let (ada, ada_session, _) = seeded(&store);
    let bob = stored_user(&store.backing, "bob@example.com");
    let (bob_session, _) = stored_session(&store.backing, &bob, now(), TimeDelta::days(1));
    for id in [ada_session.id, bob_session.id] {
        store.find(id).unwrap();
    }
    store.find_by_id(ada.id).unwrap();
    assert_eq!(store.cache.stats().sessions, 2);

    store.cache.invalidate_user(ada.id);
    let stats = store.cache.stats();
    assert_eq!((stats.sessions, stats.users), (1, 0));
    store.find(bob_session.id).unwrap();
    assert_eq!(store.cache.stats().hits, 1);
}

#[test]
fn a_logout_in_this_process_is_seen_at_once() {
    let store = CachedStore::new(LOCAL);
    let (_, session, token) = seeded(&store);
    store.find(session.id).unwrap();
    store
        .end_by_refresh_token(
            token.id,
            RevocationReason::Logout,
            now(),
            &event(EventKind::Logout),
        )
        .unwrap();
    assert!(revoked(&store, session.id));
}

#[test]
fn a_replayed_refresh_token_at_logout_drops_the_session() {
    let store = CachedStore::new(LOCAL);
    let (_, session, token) = seeded(&store);
    let successor = token_for(session.id, now());
    store
        .rotate(
            token.id,
            &successor,
            now(),
            TimeDelta::zero(),
            &event(EventKind::Refresh),
        )
        .unwrap();
    store.find(session.id).unwrap();
    let replay = store.end_by_refresh_token(
        token.id,
        RevocationReason::Logout,
        now(),
        &event(EventKind::Logout),
    );
    assert!(matches!(replay, Err(EndSessionError::AlreadyUsed)));
    let revoked = store.find(session.id).unwrap().unwrap();
    assert_eq!(
        revoked.revocation_reason,
        Some(RevocationReason::RefreshReuse)
    );
}

#[test]
fn a_leased_cache_serves_nothing_before_its_listener_confirms() {
    let store = CachedStore::new(CacheConfig {
        freshness: Freshness::Leased(Duration::from_millis(300)),
        ..LOCAL
    });
    let (_, session, _) = seeded(&store);
    store.find(session.id).unwrap();
    store.find(session.id).unwrap();
    assert_eq!(
        store.cache.stats(),
        Default::default(),
        "bypassed, nothing kept"
    );

    store.cache.confirm(Instant::now());
    store.find(session.id).unwrap();
    store.find(session.id).unwrap();
    assert_eq!(store.cache.stats().hits, 1);

    // The lease lapses without a new confirmation: straight to the store again.
    std::thread::sleep(Duration::from_millis(350));
    store
        .backing
        .revoke(session.id, RevocationReason::Logout, now())
        .unwrap();
    assert!(revoked(&store, session.id));
    assert_eq!(store.cache.stats().hits, 1);
}

#[test]
fn suspending_drops_everything_and_stops_serving() {
    let store = CachedStore::new(CacheConfig {
        freshness: Freshness::Leased(Duration::from_secs(60)),
        ..LOCAL
    });
    let (_, session, _) = seeded(&store);
    store.cache.confirm(Instant::now());
    store.find(session.id).unwrap();
    assert_eq!(store.cache.stats().sessions, 1);

    store.cache.suspend();
    assert_eq!(store.cache.stats().sessions, 0);
    store.find(session.id).unwrap();
    assert_eq!(
        store.cache.stats().sessions,
        0,
        "nothing kept while suspended"
    );
}
