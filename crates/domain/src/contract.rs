//! The repository contract (feature `contract`): what every adapter of
//! [`UserRepository`], [`UserImportRepository`], [`SessionRepository`],
//! [`ResetTokenRepository`] and the other storage ports must do, as a
//! test suite any adapter can run. Portcullis runs it against PostgreSQL, SQLite and
//! `portcullis-memory`'s `MemoryStore`.
//!
//! Each case is a function taking a fresh, empty store. [`repository_contract!`]
//! turns them all into `#[test]` functions of the module it is invoked in, so each
//! case reports under its own name and the cases run in parallel:
//!
//! ```
//! // In the adapter's tests, with `portcullis-domain`'s `contract` feature on:
//! mod contract {
//!     portcullis_domain::repository_contract!(portcullis_memory::MemoryStore::new());
//! }
//! ```
//!
//! The expression is evaluated once per case. When the store needs something kept
//! alive beside it (a scratch database deleted on drop), give that instead, followed
//! by a function from it to the store:
//! `repository_contract!(TestDatabase::sqlite(), TestDatabase::database)`.
//!
//! A case fails by panicking, with the assertion that broke. The concurrency cases
//! race [`THREADS`] threads, so a store for them should allow as many connections.
//! [`fixtures`] has the builders the cases use, for an adapter's own further tests.
//!
//! [`repository_contract!`]: crate::repository_contract

// A test suite: a failed expectation is a panic, as in any test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod fixtures;

use std::sync::Barrier;
use std::thread;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

use self::fixtures::{event, new_user, reset_record, stored_session, stored_user, token_for};
use crate::ImportWriteError;
use crate::{
    AccountUpdate, AuthEvent, Bio, Client, ClientId, ClientRepository, Clock, CompleteResetError,
    CompletedReset, CreateUserError, Email, EndSessionError, EventFilter, EventKind, EventOutcome,
    EventRepository, MailId, MailOutbox, OutboxStatus, PasswordHash, Profile, QueuedMail,
    RefreshTokenRecord, RegisteredClient, ResetSecret, ResetTokenHash, ResetTokenRecord,
    ResetTokenRepository, RevocationReason, RotateError, Session, SessionId, SessionRepository,
    SystemClock, ThrottleRepository, TokenId, User, UserId, UserImportRepository, UserRepository,
    Username,
};

/// A store under test: one value implementing all eight storage ports.
pub trait Repositories:
    UserRepository
    + UserImportRepository
    + SessionRepository
    + ResetTokenRepository
    + ThrottleRepository
    + EventRepository
    + MailOutbox
    + ClientRepository
{
}

impl<T> Repositories for T where
    T: UserRepository
        + UserImportRepository
        + SessionRepository
        + ResetTokenRepository
        + ThrottleRepository
        + EventRepository
        + MailOutbox
        + ClientRepository
        + ?Sized
{
}

/// One `#[test]` per case of the [`contract`](crate::contract), in the current module.
///
/// `repository_contract!(fresh)`: `fresh` is an expression giving a new, empty store
/// (any [`Repositories`](crate::contract::Repositories)); it is evaluated once per case.
/// `repository_contract!(fresh, store)`: `fresh` gives a fixture that owns the store or
/// keeps it alive, dropped when the case ends, and `store` is a function from `&fixture`
/// to `&store`.
#[macro_export]
macro_rules! repository_contract {
    // Run in test builds and type-checked in every other (doc examples included).
    (@tests ($fresh:expr, $store:expr) $($case:ident)*) => {$(
        #[cfg_attr(test, test)]
        #[allow(dead_code)]
        fn $case() {
            let fixture = $fresh;
            $crate::contract::$case(($store)(&fixture));
        }
    )*};
    (@names $($case:ident)*) => {
        [$(stringify!($case)),*]
    };
    // The one list of cases, passed on to the arm named by `$how`.
    (@each $($how:tt)*) => {
        $crate::repository_contract! { $($how)*
            user_round_trips_and_is_found_case_insensitively
            unknown_users_are_none
            email_taken_case_insensitively
            username_taken_case_insensitively
            users_without_username_coexist
            users_without_email_coexist
            duplicate_user_id_is_a_store_error
            replace_password_hash_updates_existing_users_only
            import_finds_accounts_by_email_or_username
            import_writes_accounts_and_events_together
            import_writes_nothing_when_accounts_changed
            profile_json_round_trips
            timestamps_round_trip_exactly
            session_round_trips
            session_create_is_atomic
            rotate_spends_the_token_and_stores_the_successor
            rotate_unknown_token
            rotate_replay_is_refused_and_revokes_the_session
            rotate_within_the_grace_period_returns_the_one_successor
            rotate_on_revoked_session_changes_nothing
            rotate_on_expired_session
            end_by_refresh_token_revokes_the_session
            end_by_refresh_token_unknown_token
            end_by_refresh_token_with_used_token_revokes_for_reuse
            end_by_refresh_token_on_inactive_session_changes_nothing
            revoke_is_idempotent_and_keeps_the_first_reason
            revoke_all_for_user_counts_active_sessions_only
            reset_token_is_found_while_valid
            new_reset_token_invalidates_older_ones
            expiry_is_exact_to_the_microsecond
            complete_reset_changes_the_password_and_ends_sessions
            complete_reset_refuses_invalid_tokens
            concurrent_rotations_exactly_one_wins
            concurrent_registrations_exactly_one_wins
            concurrent_resets_exactly_one_wins
            throttle_counts_hits_in_a_window_and_clears
            concurrent_throttle_hits_all_count
            throttle_claim_is_a_compare_and_set
            concurrent_throttle_claims_exactly_one_wins
            events_read_back_newest_first_and_filtered
            changes_store_their_event_in_their_transaction
            outbox_mail_is_queued_with_its_token_and_leased_once
            outbox_retries_and_gives_up
            concurrent_leases_take_each_message_once
            refresh_tokens_read_back_spent_or_not
            clients_round_trip_and_go
        }
    };
    ($fresh:expr, $store:expr $(,)?) => {
        $crate::repository_contract!(@each @tests ($fresh, $store));
    };
    ($fresh:expr $(,)?) => {
        $crate::repository_contract!($fresh, ::core::convert::identity);
    };
}

/// Threads released together in each concurrency case.
pub const THREADS: usize = 8;

/// No grace period: a spent refresh token presented again is always a replay.
const NO_GRACE: TimeDelta = TimeDelta::zero();
/// Races per concurrency case: one race may not overlap the threads' transactions.
const ROUNDS: usize = 10;

fn now() -> DateTime<Utc> {
    SystemClock.now()
}

fn micros(n: i64) -> TimeDelta {
    TimeDelta::microseconds(n)
}

fn hours(n: i64) -> TimeDelta {
    TimeDelta::hours(n)
}

fn session<S: SessionRepository + ?Sized>(store: &S, id: SessionId) -> Session {
    store.find(id).unwrap().expect("session is stored")
}

fn user<S: UserRepository + ?Sized>(store: &S, id: UserId) -> User {
    store.find_by_id(id).unwrap().expect("user is stored")
}

/// Runs `f(store, i)` on [`THREADS`] threads released together; their results in
/// thread order.
fn race<S, T>(store: &S, f: impl Fn(&S, usize) -> T + Sync) -> Vec<T>
where
    S: Repositories + ?Sized,
    T: Send,
{
    let barrier = Barrier::new(THREADS);
    thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let (barrier, f) = (&barrier, &f);
                scope.spawn(move || {
                    barrier.wait();
                    f(store, i)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// The index of the one `Ok` among `results`; fails unless there is exactly one.
fn sole_winner<T: std::fmt::Debug, E: std::fmt::Debug>(results: &[Result<T, E>]) -> usize {
    let winners: Vec<usize> = (0..results.len()).filter(|&i| results[i].is_ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    winners[0]
}

/// A stored user reads back equal, by id, by email and by username, both matched ignoring
/// case; the username is kept as written.
pub fn user_round_trips_and_is_found_case_insensitively<S: Repositories + ?Sized>(store: &S) {
    let mut ada = new_user("ada@example.com", Some("Ada_Lovelace"));
    ada.bio = Some(Bio::parse("Wrote the first program.").unwrap());
    ada.email_verified = true;
    ada.must_change_password = true;
    ada.profile.set("language", json!("en"));
    UserRepository::create(store, &ada, &event(EventKind::Registration)).unwrap();

    assert_eq!(store.find_by_id(ada.id).unwrap(), Some(ada.clone()));
    let email = Email::parse("ADA@Example.COM").unwrap();
    assert_eq!(store.find_by_email(&email).unwrap(), Some(ada.clone()));
    let username = Username::parse("ada_LOVELACE").unwrap();
    assert_eq!(
        store.find_by_username(&username).unwrap(),
        Some(ada.clone())
    );
    // Kept as written.
    assert_eq!(
        user(store, ada.id).username.unwrap().as_str(),
        "Ada_Lovelace"
    );
}

/// Lookups that match no user are `Ok(None)`.
pub fn unknown_users_are_none<S: Repositories + ?Sized>(store: &S) {
    stored_user(store, "ada@example.com");
    assert_eq!(store.find_by_id(UserId::generate(now())).unwrap(), None);
    let email = Email::parse("grace@example.com").unwrap();
    assert_eq!(store.find_by_email(&email).unwrap(), None);
    let username = Username::parse("grace").unwrap();
    assert_eq!(store.find_by_username(&username).unwrap(), None);
}

/// A second user with the same email in other case is [`CreateUserError::EmailTaken`],
/// and is not stored.
pub fn email_taken_case_insensitively<S: Repositories + ?Sized>(store: &S) {
    let ada = new_user("ada@example.com", Some("ada"));
    UserRepository::create(store, &ada, &event(EventKind::Registration)).unwrap();
    let again = new_user("ADA@EXAMPLE.com", Some("someone_else"));
    assert!(matches!(
        UserRepository::create(store, &again, &event(EventKind::Registration)),
        Err(CreateUserError::EmailTaken)
    ));
    assert_eq!(store.find_by_id(again.id).unwrap(), None);
    assert_eq!(user(store, ada.id), ada);
}

/// A second user with the same username in other case is
/// [`CreateUserError::UsernameTaken`], and is not stored.
pub fn username_taken_case_insensitively<S: Repositories + ?Sized>(store: &S) {
    UserRepository::create(
        store,
        &new_user("ada@example.com", Some("Ada")),
        &event(EventKind::Registration),
    )
    .unwrap();
    let again = new_user("other@example.com", Some("aDA"));
    assert!(matches!(
        UserRepository::create(store, &again, &event(EventKind::Registration)),
        Err(CreateUserError::UsernameTaken)
    ));
    assert_eq!(store.find_by_id(again.id).unwrap(), None);
}

/// Any number of users may have no username.
pub fn users_without_username_coexist<S: Repositories + ?Sized>(store: &S) {
    let first = stored_user(store, "one@example.com");
    let second = stored_user(store, "two@example.com");
    assert_eq!(user(store, first.id).username, None);
    assert_eq!(user(store, second.id).username, None);
}

/// Any number of users may have no email; none is found by email, and a username
/// stays unique among them.
pub fn users_without_email_coexist<S: Repositories + ?Sized>(store: &S) {
    let mut first = new_user("one@example.com", Some("one"));
    first.email = None;
    let mut second = new_user("two@example.com", Some("two"));
    second.email = None;
    UserRepository::create(store, &first, &event(EventKind::Registration))
        .expect("a user without email is stored");
    UserRepository::create(store, &second, &event(EventKind::Registration))
        .expect("a second one too");
    assert_eq!(user(store, first.id), first);
    assert_eq!(user(store, second.id).email, None);
    let with_email = stored_user(store, "three@example.com");
    let email = Email::parse("three@example.com").expect("a valid email");
    assert_eq!(
        store.find_by_email(&email).expect("lookup").map(|u| u.id),
        Some(with_email.id)
    );
    let mut clash = new_user("four@example.com", Some("ONE"));
    clash.email = None;
    assert!(matches!(
        UserRepository::create(store, &clash, &event(EventKind::Registration)),
        Err(CreateUserError::UsernameTaken)
    ));
}

/// A second user with a stored id is [`CreateUserError::Store`].
pub fn duplicate_user_id_is_a_store_error<S: Repositories + ?Sized>(store: &S) {
    let ada = stored_user(store, "ada@example.com");
    let mut clash = new_user("grace@example.com", Some("grace"));
    clash.id = ada.id;
    assert!(matches!(
        UserRepository::create(store, &clash, &event(EventKind::Registration)),
        Err(CreateUserError::Store(_))
    ));
}

fn emails(list: &[&str]) -> Vec<Email> {
    list.iter()
        .map(|text| Email::parse(text).unwrap())
        .collect()
}

fn usernames(list: &[&str]) -> Vec<Username> {
    list.iter()
        .map(|text| Username::parse(text).unwrap())
        .collect()
}

fn ids(mut users: Vec<User>) -> Vec<UserId> {
    users.sort_by_key(|user| user.id.as_uuid());
    users.into_iter().map(|user| user.id).collect()
}

fn imported(user: &User) -> AuthEvent {
    event(EventKind::UserImported).for_user(user.id)
}

/// [`UserImportRepository::find_accounts`] returns every account matching an email or a
/// username (ignoring the username's case), each once, and nothing for no match.
pub fn import_finds_accounts_by_email_or_username<S: Repositories + ?Sized>(store: &S) {
    let ada = new_user("ada@example.com", Some("Ada"));
    UserRepository::create(store, &ada, &event(EventKind::Registration)).unwrap();
    let grace = stored_user(store, "grace@example.com");
    let mut alan = new_user("alan@example.com", Some("alan"));
    alan.email = None;
    UserRepository::create(store, &alan, &event(EventKind::Registration)).unwrap();
    stored_user(store, "someone@example.com");

    let found = store
        .find_accounts(
            &emails(&["ada@example.com", "grace@example.com", "nobody@example.com"]),
            &usernames(&["ADA", "ALAN", "nobody"]),
        )
        .unwrap();
    assert_eq!(ids(found), ids(vec![ada.clone(), grace, alan]));
    let by_username_only = store.find_accounts(&[], &usernames(&["aDa"])).unwrap();
    assert_eq!(ids(by_username_only), vec![ada.id]);
    assert!(
        store
            .find_accounts(&emails(&["x@example.com"]), &[])
            .unwrap()
            .is_empty()
    );
    assert!(store.find_accounts(&[], &[]).unwrap().is_empty());
}

/// [`UserImportRepository::write_import`] stores new accounts, overwrites updated ones
/// (every field, a removed email included) and stores the events.
pub fn import_writes_accounts_and_events_together<S: Repositories + ?Sized>(store: &S) {
    let ada = stored_user(store, "ada@example.com");
    let grace = new_user("grace@example.com", Some("grace"));
    let mut alan = new_user("alan@example.com", None);
    alan.password_hash = PasswordHash::unusable();
    let mut changed = ada.clone();
    changed.username = Some(Username::parse("countess").unwrap());
    changed.password_hash = PasswordHash::new("$2b$10$imported".into());
    changed.credential_version += 1;
    changed.must_change_password = true;
    changed.updated_at = ada.updated_at + hours(1);
    let update = AccountUpdate {
        user: changed.clone(),
        read_updated_at: ada.updated_at,
    };
    let events = [imported(&grace), imported(&alan), imported(&ada)];

    store
        .write_import(&[grace.clone(), alan.clone()], &[update], &events)
        .unwrap();

    assert_eq!(user(store, grace.id), grace);
    assert_eq!(user(store, alan.id), alan);
    assert_eq!(user(store, ada.id), changed);
    for account in [&grace, &alan, &ada] {
        let logged = store
            .list(&EventFilter {
                user: Some(account.id),
                ..EventFilter::default()
            })
            .unwrap();
        assert!(
            logged.iter().any(|e| e.kind == EventKind::UserImported),
            "{logged:?}"
        );
    }
    let mut without_email = changed.clone();
    without_email.email = None;
    without_email.updated_at += hours(1);
    let update = AccountUpdate {
        user: without_email.clone(),
        read_updated_at: changed.updated_at,
    };
    store.write_import(&[], &[update], &[]).unwrap();
    assert_eq!(user(store, ada.id), without_email);
}

/// A clash with a stored email, username (ignoring case) or id, or an update of an
/// account changed or gone since it was read, is [`ImportWriteError::Changed`] and
/// nothing of the batch is written.
pub fn import_writes_nothing_when_accounts_changed<S: Repositories + ?Sized>(store: &S) {
    let ada = new_user("ada@example.com", Some("Ada"));
    UserRepository::create(store, &ada, &event(EventKind::Registration)).unwrap();
    let grace = stored_user(store, "grace@example.com");
    let fresh = new_user("fresh@example.com", Some("fresh"));
    let mut renamed = grace.clone();
    renamed.name = crate::DisplayName::parse("Grace Hopper").unwrap();
    renamed.updated_at = grace.updated_at + hours(1);
    let good_update = AccountUpdate {
        user: renamed.clone(),
        read_updated_at: grace.updated_at,
    };

    let mut same_email = new_user("ada@example.com", None);
    same_email.email = Some(Email::parse("ADA@example.com").unwrap());
    let same_username = new_user("other@example.com", Some("aDA"));
    let mut same_id = new_user("third@example.com", None);
    same_id.id = ada.id;
    for clash in [same_email, same_username, same_id] {
        let result = store.write_import(
            &[fresh.clone(), clash],
            std::slice::from_ref(&good_update),
            &[imported(&fresh)],
        );
        assert!(
            matches!(result, Err(ImportWriteError::Changed)),
            "{result:?}"
        );
    }
    let stale = AccountUpdate {
        user: renamed.clone(),
        read_updated_at: grace.updated_at - hours(1),
    };
    let mut gone_user = new_user("gone@example.com", None);
    gone_user.updated_at = gone_user.created_at + hours(1);
    let gone = AccountUpdate {
        read_updated_at: gone_user.created_at,
        user: gone_user,
    };
    let mut taking = grace.clone();
    taking.username = Some(Username::parse("ADA").unwrap());
    taking.updated_at = grace.updated_at + hours(1);
    let takes_a_username = AccountUpdate {
        user: taking,
        read_updated_at: grace.updated_at,
    };
    for bad in [stale, gone, takes_a_username] {
        let result = store.write_import(
            std::slice::from_ref(&fresh),
            &[good_update.clone(), bad],
            &[imported(&fresh)],
        );
        assert!(
            matches!(result, Err(ImportWriteError::Changed)),
            "{result:?}"
        );
    }

    assert_eq!(store.find_by_id(fresh.id).unwrap(), None);
    assert_eq!(user(store, grace.id), grace);
    assert_eq!(user(store, ada.id), ada);
    let logged = store
        .list(&EventFilter {
            user: Some(fresh.id),
            ..EventFilter::default()
        })
        .unwrap();
    assert!(logged.is_empty(), "{logged:?}");
}

/// [`UserRepository::replace_password_hash`] sets the hash and `updated_at` but keeps
/// `password_changed_at` and `credential_version`, only while the stored hash is the
/// one verified; for an unknown user, or a hash changed meanwhile, it is `Ok(false)`
/// and nothing changes.
pub fn replace_password_hash_updates_existing_users_only<S: Repositories + ?Sized>(store: &S) {
    let ada = stored_user(store, "ada@example.com");
    let later = ada.updated_at + hours(1);
    let rehashed = PasswordHash::new("$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$bmV3".into());

    assert!(
        store
            .replace_password_hash(ada.id, &ada.password_hash, &rehashed, later)
            .unwrap()
    );
    let stored = user(store, ada.id);
    assert_eq!(stored.password_hash, rehashed);
    assert_eq!(stored.password_changed_at, ada.password_changed_at);
    assert_eq!(stored.credential_version, ada.credential_version);
    assert_eq!(stored.updated_at, later);

    // The password changed since `ada.password_hash` was verified: the re-hash of the
    // old one must not overwrite it.
    let stale = PasswordHash::new("$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$b2xk".into());
    assert!(
        !store
            .replace_password_hash(ada.id, &ada.password_hash, &stale, later + hours(1))
            .unwrap()
    );
    assert_eq!(user(store, ada.id), stored);

    assert!(
        !store
            .replace_password_hash(UserId::generate(later), &rehashed, &rehashed, later)
            .unwrap()
    );
}

/// A profile reads back equal: nested values, Unicode, escapes, large integers, empty.
pub fn profile_json_round_trips<S: Repositories + ?Sized>(store: &S) {
    let serde_json::Value::Object(map) = json!({
        "avatar": "https://example.com/a.png",
        "language": "français ✓ 日本語",
        "units": {"distance": "km", "nested": [1, 2.5, -3, null, true, {"deep": "er"}]},
        "count": 9_007_199_254_740_991_i64,
        "empty": {},
        "quote": "\"'\\\n",
    }) else {
        unreachable!()
    };
    let mut ada = new_user("ada@example.com", None);
    ada.profile = Profile::from_map(map);
    UserRepository::create(store, &ada, &event(EventKind::Registration)).unwrap();
    assert_eq!(user(store, ada.id).profile, ada.profile);

    let plain = stored_user(store, "plain@example.com");
    assert_eq!(user(store, plain.id).profile, Profile::default());
}

/// Instants read back equal to the microsecond, whole seconds, distant past and future
/// included, for users, sessions and reset tokens.
pub fn timestamps_round_trip_exactly<S: Repositories + ?Sized>(store: &S) {
    let base = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let mut ada = new_user("ada@example.com", None);
    ada.password_changed_at = base + micros(123_456);
    ada.created_at = base; // whole second
    ada.updated_at = base + micros(999_999);
    UserRepository::create(store, &ada, &event(EventKind::Registration)).unwrap();
    assert_eq!(user(store, ada.id), ada);

    let stored = Session {
        id: SessionId::generate(base),
        user_id: ada.id,
        created_at: base + micros(1),
        expires_at: base + hours(24 * 400) + micros(10),
        last_refreshed_at: Some(base + micros(500_000)),
        revoked_at: Some(base + hours(1) + micros(7)),
        revocation_reason: Some(RevocationReason::Logout),
        credential_version: 41,
    };
    SessionRepository::create(store, &stored, &token_for(stored.id, base), None).unwrap();
    assert_eq!(session(store, stored.id), stored);

    let reset = reset_record(
        &ada,
        "s",
        base - hours(24 * 365 * 30) + micros(42),
        hours(24 * 365 * 60),
    );
    ResetTokenRepository::create(store, &reset, &event(EventKind::ResetRequest), None).unwrap();
    assert_eq!(
        store.find_valid(&reset.token_hash, now()).unwrap(),
        Some(reset)
    );
}

/// A stored session reads back equal; an unknown id is `Ok(None)`.
pub fn session_round_trips<S: Repositories + ?Sized>(store: &S) {
    let ada = stored_user(store, "ada@example.com");
    let (stored, _) = stored_session(store, &ada, now(), hours(24));
    assert_eq!(store.find(stored.id).unwrap(), Some(stored));
    assert_eq!(store.find(SessionId::generate(now())).unwrap(), None);
}

/// A session whose first token cannot be stored (its `jti` is taken) is not stored
/// either.
pub fn session_create_is_atomic<S: Repositories + ?Sized>(store: &S) {
    let ada = stored_user(store, "ada@example.com");
    let (_, first) = stored_session(store, &ada, now(), hours(24));

    // A second session whose first token reuses a stored jti: neither row may stay.
    let mut second = session(store, first.session_id);
    second.id = SessionId::generate(now());
    let clashing = RefreshTokenRecord {
        session_id: second.id,
        ..first.clone()
    };
    assert!(SessionRepository::create(store, &second, &clashing, None).is_err());
    assert_eq!(store.find(second.id).unwrap(), None);
}

/// Rotation sets `last_refreshed_at`, and the successor rotates in turn; presenting a
/// spent token is a replay that ends the whole family.
pub fn rotate_spends_the_token_and_stores_the_successor<S: Repositories + ?Sized>(store: &S) {
    let ada = stored_user(store, "ada@example.com");
    let created = now();
    let (stored, first) = stored_session(store, &ada, created, hours(24));

    let t1 = created + micros(1_500_001);
    let second = token_for(stored.id, t1);
    store
        .rotate(first.id, &second, t1, NO_GRACE, &event(EventKind::Refresh))
        .unwrap();
    assert_eq!(session(store, stored.id).last_refreshed_at, Some(t1));

    // The successor works in turn.
    let t2 = t1 + hours(1);
    let third = token_for(stored.id, t2);
    store
        .rotate(second.id, &third, t2, NO_GRACE, &event(EventKind::Refresh))
        .unwrap();
    assert_eq!(session(store, stored.id).last_refreshed_at, Some(t2));
    // A spent token presented again is a replay: the whole family dies with it.
    assert!(matches!(
        store.rotate(first.id, &token_for(stored.id, t2), t2, NO_GRACE, &event(EventKind::Refresh)),
        Err(RotateError::AlreadyUsed { session }) if session == stored.id
    ));
    assert!(matches!(
        store.rotate(
            third.id,
            &token_for(stored.id, t2),
            t2,
            NO_GRACE,
            &event(EventKind::Refresh)
        ),
        Err(RotateError::SessionInactive)
    ));
}

/// Rotating a `jti` that was never stored is [`RotateError::UnknownToken`].
pub fn rotate_unknown_token<S: Repositories + ?Sized>(store: &S) {
    let ada = stored_user(store, "ada@example.com");
    let (stored, _) = stored_session(store, &ada, now(), hours(24));
    let unknown = TokenId::generate(now());
    assert!(matches!(
        store.rotate(
            unknown,
            &token_for(stored.id, now()),
            now(),
            NO_GRACE,
            &event(EventKind::Refresh)
        ),
        Err(RotateError::UnknownToken)
    ));
}

/// A replay is [`RotateError::AlreadyUsed`]; it revokes the session for
/// [`RevocationReason::RefreshReuse`] at once, later replays keep that revocation, and
/// the refused successor is not stored.
pub fn rotate_replay_is_refused_and_revokes_the_session<S: Repositories + ?Sized>(store: &S) {
    let ada = stored_user(store, "ada@example.com");
    let created = now();
    let (stored, first) = stored_session(store, &ada, created, hours(24));
    let t1 = created + hours(1);
    store
        .rotate(
            first.id,
            &token_for(stored.id, t1),
            t1,
            NO_GRACE,
            &event(EventKind::Refresh),
        )
        .unwrap();

    let t2 = t1 + hours(1);
    let replayed_successor = token_for(stored.id, t2);
    assert!(matches!(
        store.rotate(first.id, &replayed_successor, t2, NO_GRACE, &event(EventKind::Refresh)),
        Err(RotateError::AlreadyUsed { session }) if session == stored.id
    ));
    let after = session(store, stored.id);
    assert_eq!(after.last_refreshed_at, Some(t1));
    // The replay revoked the whole family, in the same transaction.
    assert_eq!(after.revoked_at, Some(t2));
    assert_eq!(
        after.revocation_reason,
        Some(RevocationReason::RefreshReuse)
    );
    // A later replay is still a replay, and keeps the first revocation.
    let t3 = t2 + hours(1);
    assert!(matches!(
        store.rotate(
            first.id,
            &token_for(stored.id, t3),
            t3,
            NO_GRACE,
            &event(EventKind::Refresh)
        ),
        Err(RotateError::AlreadyUsed { .. })
    ));
    assert_eq!(session(store, stored.id).revoked_at, Some(t2));
    // The refused successor was not stored.
    assert!(matches!(
        store.rotate(
            replayed_successor.id,
            &token_for(stored.id, t2),
            t2,
            NO_GRACE,
            &event(EventKind::Refresh)
        ),
        Err(RotateError::UnknownToken)
    ));
}

/// A spent token presented again less than the grace period after its rotation is
/// [`RotateError::RecentlyRotated`] with the one successor it was rotated into, and
/// changes nothing; from the end of the period it is a replay again, and a token of a
/// revoked session buys no successor, within its period or not.
pub fn rotate_within_the_grace_period_returns_the_one_successor<S: Repositories + ?Sized>(
    store: &S,
) {
    let grace = TimeDelta::seconds(10);
    let ada = stored_user(store, "ada@example.com");
    let created = now();
    let (stored, first) = stored_session(store, &ada, created, hours(24));
    let t1 = created + hours(1);
    let successor = token_for(stored.id, t1);
    store
        .rotate(first.id, &successor, t1, grace, &event(EventKind::Refresh))
        .unwrap();

    for (attempt, at) in [t1, t1 + micros(1), t1 + grace - micros(1)]
        .into_iter()
        .enumerate()
    {
        let other = token_for(stored.id, at);
        match store.rotate(first.id, &other, at, grace, &event(EventKind::Refresh)) {
            Err(RotateError::RecentlyRotated { successor: found }) => {
                assert_eq!(found, successor, "attempt {attempt}");
            }
            outcome => panic!("attempt {attempt}: {outcome:?}"),
        }
        // Nothing stored, nothing revoked.
        assert!(matches!(
            store.rotate(
                other.id,
                &token_for(stored.id, at),
                at,
                grace,
                &event(EventKind::Refresh)
            ),
            Err(RotateError::UnknownToken)
        ));
        assert!(session(store, stored.id).is_active(at));
    }
    // The successor itself rotates as usual.
    let t2 = t1 + micros(2);
    let third = token_for(stored.id, t2);
    store
        .rotate(successor.id, &third, t2, grace, &event(EventKind::Refresh))
        .unwrap();

    // At the end of the period the first token is a replay: the family is revoked.
    let late = t1 + grace;
    assert!(matches!(
        store.rotate(
            first.id,
            &token_for(stored.id, late),
            late,
            grace,
            &event(EventKind::Refresh)
        ),
        Err(RotateError::AlreadyUsed { .. })
    ));
    assert_eq!(
        session(store, stored.id).revocation_reason,
        Some(RevocationReason::RefreshReuse)
    );
    // ... and within its period, the successor of a revoked session buys nothing.
    assert!(matches!(
        store.rotate(
            successor.id,
            &token_for(stored.id, late),
            late,
            grace,
            &event(EventKind::Refresh)
        ),
        Err(RotateError::AlreadyUsed { .. })
    ));
}

/// Rotating on a revoked session is [`RotateError::SessionInactive`] and spends nothing;
/// a spent token is still a replay there, and keeps the first revocation's reason.
pub fn rotate_on_revoked_session_changes_nothing<S: Repositories + ?Sized>(store: &S) {
    let ada = stored_user(store, "ada@example.com");
    let created = now();
    let (stored, first) = stored_session(store, &ada, created, hours(24));
    let t1 = created + hours(1);
    store
        .revoke(stored.id, RevocationReason::Logout, t1)
        .unwrap();
    let revoked = session(store, stored.id);

    let successor = token_for(stored.id, t1);
    assert!(matches!(
        store.rotate(
            first.id,
            &successor,
            t1,
            NO_GRACE,
            &event(EventKind::Refresh)
        ),
        Err(RotateError::SessionInactive)
    ));
    assert!(matches!(
        store.rotate(
            successor.id,
            &token_for(stored.id, t1),
            t1,
            NO_GRACE,
            &event(EventKind::Refresh)
        ),
        Err(RotateError::UnknownToken)
    ));
    // The token was not spent: presented again, it is refused alike, not as a replay.
    assert!(matches!(
        store.rotate(
            first.id,
            &successor,
            t1,
            NO_GRACE,
            &event(EventKind::Refresh)
        ),
        Err(RotateError::SessionInactive)
    ));
    assert_eq!(session(store, stored.id), revoked);

    // A spent token is a replay even once the session is revoked, and the replay
    // keeps the first revocation's reason.
    let (other, other_first) = stored_session(store, &ada, created, hours(24));
    store
        .rotate(
            other_first.id,
            &token_for(other.id, t1),
            t1,
            NO_GRACE,
            &event(EventKind::Refresh),
        )
        .unwrap();
    store
        .revoke(other.id, RevocationReason::Logout, t1)
        .unwrap();
    assert!(matches!(
        store.rotate(
            other_first.id,
            &token_for(other.id, t1),
            t1,
            NO_GRACE,
            &event(EventKind::Refresh)
        ),
        Err(RotateError::AlreadyUsed { .. })
    ));
    assert_eq!(
        session(store, other.id).revocation_reason,
        Some(RevocationReason::Logout)
    );
}

/// A session is inactive from its `expires_at` on, exactly: rotating then is
/// [`RotateError::SessionInactive`] and changes nothing; a microsecond earlier it works.
pub fn rotate_on_expired_session<S: Repositories + ?Sized>(store: &S) {
    let ada = stored_user(store, "ada@example.com");
    let (stored, first) = stored_session(store, &ada, now(), hours(2));

    let at_expiry = stored.expires_at;
    assert!(matches!(
        store.rotate(
            first.id,
            &token_for(stored.id, at_expiry),
            at_expiry,
            NO_GRACE,
            &event(EventKind::Refresh)
        ),
        Err(RotateError::SessionInactive)
    ));
    assert_eq!(session(store, stored.id).last_refreshed_at, None);
    let just_before = stored.expires_at - micros(1);
    store
        .rotate(
            first.id,
            &token_for(stored.id, just_before),
            just_before,
            NO_GRACE,
            &event(EventKind::Refresh),
        )
        .unwrap();
}

/// Logout by refresh token revokes its session with the reason given and returns its id.
pub fn end_by_refresh_token_revokes_the_session<S: Repositories + ?Sized>(store: &S) {
    let ada = stored_user(store, "ada@example.com");
    let created = now();
    let (stored, first) = stored_session(store, &ada, created, hours(24));
    let t1 = created + hours(1);

    assert_eq!(
        store
            .end_by_refresh_token(
                first.id,
                RevocationReason::Logout,
                t1,
                &event(EventKind::Logout)
            )
            .unwrap(),
        stored.id
    );
    let ended = session(store, stored.id);
    assert_eq!(ended.revoked_at, Some(t1));
    assert_eq!(ended.revocation_reason, Some(RevocationReason::Logout));
}

/// Logout with an unknown `jti` is [`EndSessionError::UnknownToken`].
pub fn end_by_refresh_token_unknown_token<S: Repositories + ?Sized>(store: &S) {
    assert!(matches!(
        store.end_by_refresh_token(
            TokenId::generate(now()),
            RevocationReason::Logout,
            now(),
            &event(EventKind::Logout)
        ),
        Err(EndSessionError::UnknownToken)
    ));
}

/// Logout with a spent token is [`EndSessionError::AlreadyUsed`] and revokes the session
/// for [`RevocationReason::RefreshReuse`].
pub fn end_by_refresh_token_with_used_token_revokes_for_reuse<S: Repositories + ?Sized>(store: &S) {
    let ada = stored_user(store, "ada@example.com");
    let created = now();
    let (stored, first) = stored_session(store, &ada, created, hours(24));
    let t1 = created + hours(1);
    store
        .rotate(
            first.id,
            &token_for(stored.id, t1),
            t1,
            NO_GRACE,
            &event(EventKind::Refresh),
        )
        .unwrap();

    let t2 = t1 + hours(1);
    assert!(matches!(
        store.end_by_refresh_token(
            first.id,
            RevocationReason::Logout,
            t2,
            &event(EventKind::Logout)
        ),
        Err(EndSessionError::AlreadyUsed)
    ));
    let ended = session(store, stored.id);
    assert_eq!(ended.revoked_at, Some(t2));
    assert_eq!(
        ended.revocation_reason,
        Some(RevocationReason::RefreshReuse)
    );
}

/// Logout on a revoked or expired session is [`EndSessionError::SessionInactive`] and
/// changes nothing.
pub fn end_by_refresh_token_on_inactive_session_changes_nothing<S: Repositories + ?Sized>(
    store: &S,
) {
    let ada = stored_user(store, "ada@example.com");
    let created = now();

    let (revoked, revoked_token) = stored_session(store, &ada, created, hours(24));
    let t1 = created + hours(1);
    store
        .revoke(revoked.id, RevocationReason::PasswordReset, t1)
        .unwrap();
    assert!(matches!(
        store.end_by_refresh_token(
            revoked_token.id,
            RevocationReason::Logout,
            t1 + hours(1),
            &event(EventKind::Logout)
        ),
        Err(EndSessionError::SessionInactive)
    ));
    let still = session(store, revoked.id);
    assert_eq!(still.revoked_at, Some(t1));
    assert_eq!(
        still.revocation_reason,
        Some(RevocationReason::PasswordReset)
    );

    let (expired, expired_token) = stored_session(store, &ada, created, hours(2));
    assert!(matches!(
        store.end_by_refresh_token(
            expired_token.id,
            RevocationReason::Logout,
            expired.expires_at,
            &event(EventKind::Logout)
        ),
        Err(EndSessionError::SessionInactive)
    ));
    assert_eq!(session(store, expired.id), expired);
}

/// Revoking twice keeps the first time and reason; revoking an unknown id is `Ok`.
pub fn revoke_is_idempotent_and_keeps_the_first_reason<S: Repositories + ?Sized>(store: &S) {
    let ada = stored_user(store, "ada@example.com");
    let created = now();
    let (stored, _) = stored_session(store, &ada, created, hours(24));
    let t1 = created + hours(1);

    store
        .revoke(stored.id, RevocationReason::Logout, t1)
        .unwrap();
    store
        .revoke(stored.id, RevocationReason::RefreshReuse, t1 + hours(1))
        .unwrap();
    let revoked = session(store, stored.id);
    assert_eq!(revoked.revoked_at, Some(t1));
    assert_eq!(revoked.revocation_reason, Some(RevocationReason::Logout));

    store
        .revoke(SessionId::generate(t1), RevocationReason::Logout, t1)
        .unwrap();
}

/// [`SessionRepository::revoke_all_for_user`] revokes and counts the user's active
/// sessions only: revoked, expired and other users' sessions stay as they were.
pub fn revoke_all_for_user_counts_active_sessions_only<S: Repositories + ?Sized>(store: &S) {
    let ada = stored_user(store, "ada@example.com");
    let grace = stored_user(store, "grace@example.com");
    let created = now();
    let active: Vec<Session> = (0..3)
        .map(|_| stored_session(store, &ada, created, hours(24)).0)
        .collect();
    let (revoked, _) = stored_session(store, &ada, created, hours(24));
    store
        .revoke(revoked.id, RevocationReason::Logout, created)
        .unwrap();
    let (expired, _) = stored_session(store, &ada, created, hours(1));
    let (other, _) = stored_session(store, &grace, created, hours(24));

    let t1 = created + hours(2);
    assert_eq!(
        store
            .revoke_all_for_user(ada.id, RevocationReason::PasswordReset, t1)
            .unwrap(),
        3
    );
    for id in active.iter().map(|s| s.id) {
        let ended = session(store, id);
        assert_eq!(ended.revoked_at, Some(t1));
        assert_eq!(
            ended.revocation_reason,
            Some(RevocationReason::PasswordReset)
        );
    }
    assert_eq!(
        session(store, revoked.id).revocation_reason,
        Some(RevocationReason::Logout)
    );
    assert_eq!(session(store, expired.id), expired);
    assert_eq!(session(store, other.id), other);
    assert_eq!(
        store
            .revoke_all_for_user(ada.id, RevocationReason::PasswordReset, t1)
            .unwrap(),
        0
    );
}

/// A reset token is found until it expires or is used, and only by its hash.
pub fn reset_token_is_found_while_valid<S: Repositories + ?Sized>(store: &S) {
    let ada = stored_user(store, "ada@example.com");
    let created = now();
    let record = reset_record(&ada, "secret", created, hours(1));
    ResetTokenRepository::create(store, &record, &event(EventKind::ResetRequest), None).unwrap();

    assert_eq!(
        store.find_valid(&record.token_hash, created).unwrap(),
        Some(record.clone())
    );
    let unknown = ResetTokenHash::of(&ResetSecret::from_presented("other"));
    assert_eq!(store.find_valid(&unknown, created).unwrap(), None);
    assert_eq!(
        store
            .find_valid(&record.token_hash, record.expires_at)
            .unwrap(),
        None
    );

    store
        .complete_reset(
            &record.token_hash,
            &ada.password_hash,
            created,
            &event(EventKind::ResetCompletion),
        )
        .unwrap();
    assert_eq!(store.find_valid(&record.token_hash, created).unwrap(), None);
}

/// A new reset token retires the user's older ones, not other users'.
pub fn new_reset_token_invalidates_older_ones<S: Repositories + ?Sized>(store: &S) {
    let ada = stored_user(store, "ada@example.com");
    let grace = stored_user(store, "grace@example.com");
    let created = now();
    let older = reset_record(&ada, "older", created, hours(1));
    let graces = reset_record(&grace, "grace's", created, hours(1));
    ResetTokenRepository::create(store, &older, &event(EventKind::ResetRequest), None).unwrap();
    ResetTokenRepository::create(store, &graces, &event(EventKind::ResetRequest), None).unwrap();

    let newer = reset_record(&ada, "newer", created + micros(1), hours(1));
    ResetTokenRepository::create(store, &newer, &event(EventKind::ResetRequest), None).unwrap();
    assert_eq!(store.find_valid(&older.token_hash, created).unwrap(), None);
    assert!(matches!(
        store.complete_reset(
            &older.token_hash,
            &ada.password_hash,
            created,
            &event(EventKind::ResetCompletion)
        ),
        Err(CompleteResetError::InvalidToken)
    ));
    assert_eq!(
        store.find_valid(&newer.token_hash, created).unwrap(),
        Some(newer)
    );
    assert_eq!(
        store.find_valid(&graces.token_hash, created).unwrap(),
        Some(graces)
    );
}

/// A reset token is valid strictly before its `expires_at`, to the microsecond.
pub fn expiry_is_exact_to_the_microsecond<S: Repositories + ?Sized>(store: &S) {
    // SQLite compares instants as text: whole seconds and fractions must still order.
    let ada = stored_user(store, "ada@example.com");
    let second = DateTime::from_timestamp(2_000_000_000, 0).unwrap();
    for expires_at in [
        second,
        second + micros(1),
        second + micros(500_000),
        second - micros(1),
    ] {
        let record = ResetTokenRecord {
            expires_at,
            ..reset_record(&ada, &expires_at.to_rfc3339(), second - hours(1), hours(0))
        };
        ResetTokenRepository::create(store, &record, &event(EventKind::ResetRequest), None)
            .unwrap();
        for now in [
            second - micros(1),
            second,
            second + micros(1),
            second + micros(500_000),
        ] {
            assert_eq!(
                store.find_valid(&record.token_hash, now).unwrap().is_some(),
                now < expires_at,
                "expires {expires_at}, now {now}"
            );
        }
    }
}

/// A reset sets the hash and `password_changed_at`, clears `must_change_password`,
/// revokes every session for [`RevocationReason::PasswordReset`] and spends the token.
pub fn complete_reset_changes_the_password_and_ends_sessions<S: Repositories + ?Sized>(store: &S) {
    let mut ada = new_user("ada@example.com", None);
    ada.must_change_password = true;
    UserRepository::create(store, &ada, &event(EventKind::Registration)).unwrap();
    let created = now();
    let sessions: Vec<Session> = (0..2)
        .map(|_| stored_session(store, &ada, created, hours(24)).0)
        .collect();
    let record = reset_record(&ada, "secret", created, hours(1));
    ResetTokenRepository::create(store, &record, &event(EventKind::ResetRequest), None).unwrap();

    let t1 = created + micros(30_000_001);
    let new_hash = PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$bmV3".into());
    assert_eq!(
        store
            .complete_reset(
                &record.token_hash,
                &new_hash,
                t1,
                &event(EventKind::ResetCompletion)
            )
            .unwrap(),
        CompletedReset {
            user: ada.id,
            sessions_revoked: 2
        }
    );
    let reset = user(store, ada.id);
    assert_eq!(reset.password_hash, new_hash);
    assert_eq!(reset.password_changed_at, t1);
    assert_eq!(reset.credential_version, ada.credential_version + 1);
    assert!(!reset.must_change_password);
    for id in sessions.iter().map(|s| s.id) {
        let ended = session(store, id);
        assert_eq!(ended.revoked_at, Some(t1));
        assert_eq!(
            ended.revocation_reason,
            Some(RevocationReason::PasswordReset)
        );
    }

    let other = PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$YWdhaW4".into());
    assert!(matches!(
        store.complete_reset(
            &record.token_hash,
            &other,
            t1,
            &event(EventKind::ResetCompletion)
        ),
        Err(CompleteResetError::InvalidToken)
    ));
    assert_eq!(
        user(store, ada.id),
        reset,
        "a refused reset changes nothing"
    );

    // A second reset moves the version again.
    let again = reset_record(&ada, "again", t1, hours(1));
    ResetTokenRepository::create(store, &again, &event(EventKind::ResetRequest), None).unwrap();
    store
        .complete_reset(
            &again.token_hash,
            &other,
            t1 + micros(1),
            &event(EventKind::ResetCompletion),
        )
        .unwrap();
    assert_eq!(
        user(store, ada.id).credential_version,
        ada.credential_version + 2
    );
}

/// A reset with an unknown or expired token is [`CompleteResetError::InvalidToken`] and
/// changes nothing.
pub fn complete_reset_refuses_invalid_tokens<S: Repositories + ?Sized>(store: &S) {
    let mut ada = new_user("ada@example.com", None);
    ada.must_change_password = true;
    UserRepository::create(store, &ada, &event(EventKind::Registration)).unwrap();
    let created = now();
    let (live, _) = stored_session(store, &ada, created, hours(24));
    let record = reset_record(&ada, "secret", created, hours(1));
    ResetTokenRepository::create(store, &record, &event(EventKind::ResetRequest), None).unwrap();
    let new_hash = PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$bmV3".into());

    let unknown = ResetTokenHash::of(&ResetSecret::from_presented("unknown"));
    assert!(matches!(
        store.complete_reset(
            &unknown,
            &new_hash,
            created,
            &event(EventKind::ResetCompletion)
        ),
        Err(CompleteResetError::InvalidToken)
    ));
    assert!(matches!(
        store.complete_reset(
            &record.token_hash,
            &new_hash,
            record.expires_at,
            &event(EventKind::ResetCompletion)
        ),
        Err(CompleteResetError::InvalidToken)
    ));
    // Nothing changed: the user, the session and the token are as they were.
    assert_eq!(user(store, ada.id), ada);
    assert_eq!(session(store, live.id), live);
    assert_eq!(
        store.find_valid(&record.token_hash, created).unwrap(),
        Some(record)
    );
}

/// Of threads rotating one token at once, exactly one wins and every other gets
/// [`RotateError::AlreadyUsed`]; their replays end the session.
pub fn concurrent_rotations_exactly_one_wins<S: Repositories + ?Sized>(store: &S) {
    let ada = stored_user(store, "ada@example.com");
    // Several rounds: one race may not overlap the threads' transactions.
    for _ in 0..ROUNDS {
        let created = now();
        let (stored, first) = stored_session(store, &ada, created, hours(24));
        let successors: Vec<RefreshTokenRecord> = (0..THREADS)
            .map(|_| token_for(stored.id, created))
            .collect();

        let results = race(store, |store, i| {
            store.rotate(
                first.id,
                &successors[i],
                created,
                NO_GRACE,
                &event(EventKind::Refresh),
            )
        });
        let winner = sole_winner(&results);
        for result in &results {
            assert!(
                result.is_ok()
                    || matches!(result, Err(RotateError::AlreadyUsed { session }) if *session == stored.id),
                "{result:?}"
            );
        }
        // The losers' replays revoked the family: the winner's successor is stored but
        // its session is dead; the losers' successors were never stored.
        let after = session(store, stored.id);
        assert_eq!(
            after.revocation_reason,
            Some(RevocationReason::RefreshReuse)
        );
        for (i, successor) in successors.iter().enumerate() {
            let outcome = store.rotate(
                successor.id,
                &token_for(stored.id, created),
                created,
                NO_GRACE,
                &event(EventKind::Refresh),
            );
            if i == winner {
                assert!(
                    matches!(outcome, Err(RotateError::SessionInactive)),
                    "{outcome:?}"
                );
            } else {
                assert!(
                    matches!(outcome, Err(RotateError::UnknownToken)),
                    "{outcome:?}"
                );
            }
        }
    }
}

/// Of threads creating users with one email at once, exactly one wins and every other
/// gets [`CreateUserError::EmailTaken`].
pub fn concurrent_registrations_exactly_one_wins<S: Repositories + ?Sized>(store: &S) {
    for round in 0..ROUNDS {
        let email = format!("race{round}@example.com");
        let results = race(store, |store, i| {
            let user = new_user(&email, Some(&format!("racer{round}_{i}")));
            UserRepository::create(store, &user, &event(EventKind::Registration)).map(|()| user)
        });
        let winner = sole_winner(&results);
        for result in &results {
            assert!(
                matches!(result, Ok(_) | Err(CreateUserError::EmailTaken)),
                "{result:?}"
            );
        }
        let email = Email::parse(&email).unwrap();
        assert_eq!(
            store.find_by_email(&email).unwrap().as_ref(),
            results[winner].as_ref().ok()
        );
    }
}

/// Of threads completing one reset at once, exactly one wins and every other gets
/// [`CompleteResetError::InvalidToken`]; the winner's hash is the one stored.
pub fn concurrent_resets_exactly_one_wins<S: Repositories + ?Sized>(store: &S) {
    let ada = stored_user(store, "ada@example.com");
    for round in 0..ROUNDS {
        let created = now();
        let record = reset_record(&ada, &format!("secret{round}"), created, hours(1));
        ResetTokenRepository::create(store, &record, &event(EventKind::ResetRequest), None)
            .unwrap();
        let hashes: Vec<PasswordHash> = (0..THREADS)
            .map(|i| {
                PasswordHash::new(format!(
                    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$r{round}t{i}"
                ))
            })
            .collect();

        let results = race(store, |store, i| {
            store.complete_reset(
                &record.token_hash,
                &hashes[i],
                created,
                &event(EventKind::ResetCompletion),
            )
        });
        let winner = sole_winner(&results);
        for result in &results {
            assert!(
                matches!(result, Err(CompleteResetError::InvalidToken))
                    || result.as_ref().is_ok_and(|done| done.user == ada.id),
                "{result:?}"
            );
        }
        assert_eq!(user(store, ada.id).password_hash, hashes[winner]);
    }
}

/// [`ThrottleRepository`]: a first hit starts a window at one; hits within it count up
/// and move `last_at`; a hit at or after the window's end restarts it; `clear` removes
/// the counter (twice is fine); counters are independent.
pub fn throttle_counts_hits_in_a_window_and_clears<S: Repositories + ?Sized>(store: &S) {
    let window = TimeDelta::minutes(15);
    let t0 = now();
    assert_eq!(store.get("login:ip:192.0.2.1").unwrap(), None);
    let first = store.hit("login:ip:192.0.2.1", t0, window).unwrap();
    assert_eq!(
        (first.count, first.window_started_at, first.last_at),
        (1, t0, t0)
    );
    let t1 = t0 + TimeDelta::minutes(5);
    let second = store.hit("login:ip:192.0.2.1", t1, window).unwrap();
    assert_eq!(
        (second.count, second.window_started_at, second.last_at),
        (2, t0, t1)
    );
    assert_eq!(store.get("login:ip:192.0.2.1").unwrap(), Some(second));
    store.hit("login:ip:198.51.100.9", t1, window).unwrap();
    let t2 = t0 + window;
    let restarted = store.hit("login:ip:192.0.2.1", t2, window).unwrap();
    assert_eq!(
        (
            restarted.count,
            restarted.window_started_at,
            restarted.last_at
        ),
        (1, t2, t2)
    );
    store.clear("login:ip:192.0.2.1").unwrap();
    store.clear("login:ip:192.0.2.1").unwrap();
    assert_eq!(store.get("login:ip:192.0.2.1").unwrap(), None);
    assert_eq!(
        store.get("login:ip:198.51.100.9").unwrap().unwrap().count,
        1
    );
}

/// Concurrent hits on one counter all count: none is lost to a race.
pub fn concurrent_throttle_hits_all_count<S: Repositories + ?Sized>(store: &S) {
    let window = TimeDelta::minutes(15);
    let at = now();
    for _ in 0..ROUNDS {
        race(store, |s, _| {
            s.hit("login:user:racing", at, window).unwrap()
        });
    }
    let total = i64::try_from(THREADS * ROUNDS).unwrap();
    assert_eq!(
        store.get("login:user:racing").unwrap().unwrap().count,
        total
    );
}

/// A claim counts only on the counter as seen; a release takes one back.
pub fn throttle_claim_is_a_compare_and_set<S: Repositories + ?Sized>(store: &S) {
    let window = TimeDelta::minutes(15);
    let key = "login:user:claimed";
    let t0 = now();
    let first = store.claim(key, None, t0, window).unwrap();
    assert_eq!(
        first.map(|r| (r.count, r.window_started_at, r.last_at)),
        Some((1, t0, t0))
    );
    // Seen as absent, but it exists now: nothing counted.
    assert_eq!(store.claim(key, None, t0, window).unwrap(), None);
    let t1 = t0 + micros(1);
    let second = store.claim(key, first, t1, window).unwrap();
    assert_eq!(
        second.map(|r| (r.count, r.window_started_at, r.last_at)),
        Some((2, t0, t1))
    );
    // A stale view counts nothing.
    assert_eq!(store.claim(key, first, t1, window).unwrap(), None);
    assert_eq!(store.get(key).unwrap(), second);
    // Past the window it restarts.
    let late = t0 + window;
    let restarted = store.claim(key, second, late, window).unwrap();
    assert_eq!(
        restarted.map(|r| (r.count, r.window_started_at, r.last_at)),
        Some((1, late, late))
    );
    store.release(key).unwrap();
    let released = store.get(key).unwrap().unwrap();
    assert_eq!(
        (released.count, released.window_started_at, released.last_at),
        (0, late, late)
    );
    store.release(key).unwrap();
    assert_eq!(store.get(key).unwrap().unwrap().count, 0);
    store.release("login:user:never").unwrap();
    assert_eq!(store.get("login:user:never").unwrap(), None);
}

/// Of concurrent claims on one view of a counter, exactly one counts.
pub fn concurrent_throttle_claims_exactly_one_wins<S: Repositories + ?Sized>(store: &S) {
    let window = TimeDelta::minutes(15);
    for round in 0..ROUNDS {
        let key = format!("login:user:race{round}");
        let at = now();
        let seen = (round % 2 == 1).then(|| store.hit(&key, at, window).unwrap());
        let results = race(store, |s, _| {
            s.claim(&key, seen, at + micros(1), window).unwrap()
        });
        let won = results.iter().filter(|r| r.is_some()).count();
        assert_eq!(won, 1, "{results:?}");
        let expected = seen.map_or(1, |r| r.count + 1);
        assert_eq!(store.get(&key).unwrap().unwrap().count, expected);
    }
}

/// Events read back as stored, newest first, by account, since an instant, and at
/// most as many as asked for.
pub fn events_read_back_newest_first_and_filtered<S: Repositories + ?Sized>(store: &S) {
    let t0 = now();
    let ada = UserId::generate(t0);
    let client = Client::at(Some("2001:db8::7".parse().unwrap()))
        .with_user_agent("Mozilla/5.0 (Portcullis contract)")
        .via("authapi");
    let full = AuthEvent::new(EventKind::Login, EventOutcome::Success, t0, &client)
        .for_user(ada)
        .in_session(SessionId::generate(t0));
    let anonymous = AuthEvent::new(
        EventKind::Login,
        EventOutcome::Throttled,
        t0 + micros(5),
        &Client::default(),
    )
    .for_account(None, "nobody@example.com");
    let later = AuthEvent::new(
        EventKind::Logout,
        EventOutcome::Success,
        t0 + hours(1),
        &client,
    )
    .for_user(ada);
    // Same instant as `later`, stored after it.
    let tie = later.clone().with_outcome(EventOutcome::ReuseDetected);
    for event in [&full, &anonymous, &later, &tie] {
        store.record(event).unwrap();
    }
    let all = store.list(&EventFilter::default()).unwrap();
    assert_eq!(
        all,
        vec![tie.clone(), later.clone(), anonymous.clone(), full.clone()]
    );
    let adas = EventFilter {
        user: Some(ada),
        ..EventFilter::default()
    };
    assert_eq!(
        store.list(&adas).unwrap(),
        vec![tie.clone(), later.clone(), full.clone()]
    );
    let since = EventFilter {
        since: Some(t0 + micros(5)),
        ..EventFilter::default()
    };
    assert_eq!(
        store.list(&since).unwrap(),
        vec![tie.clone(), later, anonymous]
    );
    let newest = EventFilter {
        limit: 1,
        ..EventFilter::default()
    };
    assert_eq!(store.list(&newest).unwrap(), vec![tie]);
    let nobody = EventFilter {
        user: Some(UserId::generate(t0)),
        ..EventFilter::default()
    };
    assert_eq!(store.list(&nobody).unwrap(), vec![]);
}

/// Each change that records an event stores it with the change, and a refused change
/// stores none: registration, login, rotation (and a replay's revocation), logout,
/// reset request and reset completion.
pub fn changes_store_their_event_in_their_transaction<S: Repositories + ?Sized>(store: &S) {
    let kinds = |store: &S| -> Vec<(EventKind, EventOutcome)> {
        let mut listed: Vec<_> = store
            .list(&EventFilter::default())
            .unwrap()
            .into_iter()
            .map(|e| (e.kind, e.outcome))
            .collect();
        listed.reverse();
        listed
    };
    let ada = new_user("ada@example.com", Some("ada"));
    let registered = event(EventKind::Registration).for_user(ada.id);
    UserRepository::create(store, &ada, &registered).unwrap();
    let stored = store.list(&EventFilter::default()).unwrap();
    assert_eq!(stored, vec![registered.clone()]);
    let clash = new_user("ADA@example.com", None);
    assert!(UserRepository::create(store, &clash, &registered).is_err());
    assert_eq!(
        kinds(store).len(),
        1,
        "a refused registration records nothing"
    );

    let t0 = now();
    let first_session = Session {
        id: SessionId::generate(t0),
        user_id: ada.id,
        created_at: t0,
        expires_at: t0 + hours(24),
        last_refreshed_at: None,
        revoked_at: None,
        revocation_reason: None,
        credential_version: 0,
    };
    let first = token_for(first_session.id, t0);
    let login = event(EventKind::Login)
        .for_user(ada.id)
        .in_session(first_session.id);
    SessionRepository::create(store, &first_session, &first, Some(&login)).unwrap();
    // A session that cannot be stored (its token clashes) takes its event with it.
    let mut clashing_session = first_session.clone();
    clashing_session.id = SessionId::generate(t0);
    assert!(SessionRepository::create(store, &clashing_session, &first, Some(&login)).is_err());

    let t1 = t0 + micros(10);
    let successor = token_for(first_session.id, t1);
    store
        .rotate(
            first.id,
            &successor,
            t1,
            NO_GRACE,
            &event(EventKind::Refresh),
        )
        .unwrap();
    // Unknown token: nothing.
    assert!(
        store
            .rotate(
                TokenId::generate(t1),
                &token_for(first_session.id, t1),
                t1,
                NO_GRACE,
                &event(EventKind::Refresh)
            )
            .is_err()
    );
    // The replay revokes the session and records the reuse with it.
    assert!(matches!(
        store.rotate(
            first.id,
            &token_for(first_session.id, t1),
            t1,
            NO_GRACE,
            &event(EventKind::Refresh)
        ),
        Err(RotateError::AlreadyUsed { .. })
    ));

    let (_, other_token) = stored_session(store, &ada, t1, hours(24));
    store
        .end_by_refresh_token(
            other_token.id,
            RevocationReason::Logout,
            t1,
            &event(EventKind::Logout),
        )
        .unwrap();
    // Already ended: nothing more.
    assert!(
        store
            .end_by_refresh_token(
                other_token.id,
                RevocationReason::Logout,
                t1,
                &event(EventKind::Logout)
            )
            .is_err()
    );

    let record = reset_record(&ada, "reset-secret", t1, hours(1));
    ResetTokenRepository::create(store, &record, &event(EventKind::ResetRequest), None).unwrap();
    let new_hash = PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$bmV3".into());
    store
        .complete_reset(
            &record.token_hash,
            &new_hash,
            t1,
            &event(EventKind::ResetCompletion),
        )
        .unwrap();
    // Spent: refused, nothing recorded.
    assert!(
        store
            .complete_reset(
                &record.token_hash,
                &new_hash,
                t1,
                &event(EventKind::ResetCompletion)
            )
            .is_err()
    );

    use EventKind::*;
    use EventOutcome::{ReuseDetected, Success};
    assert_eq!(
        kinds(store),
        vec![
            (Registration, Success),
            (Login, Success),
            (Refresh, Success),
            (Refresh, ReuseDetected),
            (Logout, Success),
            (ResetRequest, Success),
            (ResetCompletion, Success),
        ]
    );
}

fn queued(user: &User, record: &ResetTokenRecord, secret: &str) -> QueuedMail {
    QueuedMail {
        id: MailId::generate(record.created_at),
        to: user.email.clone().expect("the fixture user has an email"),
        secret: ResetSecret::from_presented(secret),
        link_expires_at: record.expires_at,
        queued_at: record.created_at,
        attempts: 0,
    }
}

/// Stores a reset token for `user` with its message queued, created at `at`.
fn queue_reset<S: Repositories + ?Sized>(
    store: &S,
    user: &User,
    secret: &str,
    at: DateTime<Utc>,
) -> QueuedMail {
    let record = reset_record(user, secret, at, hours(1));
    let mail = queued(user, &record, secret);
    ResetTokenRepository::create(store, &record, &event(EventKind::ResetRequest), Some(&mail))
        .unwrap();
    mail
}

/// A message enters the outbox with its reset token, is due at once, and a lease hands
/// it out once (with its attempt counted) until the lease ends; delivered, it is gone.
pub fn outbox_mail_is_queued_with_its_token_and_leased_once<S: Repositories + ?Sized>(store: &S) {
    let ada = stored_user(store, "ada@example.com");
    let t0 = now();
    let mail = queue_reset(store, &ada, "mailed-secret", t0);
    let lease = TimeDelta::seconds(60);
    assert_eq!(store.lease_due(t0 - micros(1), lease, 10).unwrap(), vec![]);
    let leased = store.lease_due(t0, lease, 10).unwrap();
    let expected = QueuedMail {
        attempts: 1,
        ..mail.clone()
    };
    assert_eq!(leased, vec![expected]);
    assert_eq!(store.lease_due(t0 + micros(1), lease, 10).unwrap(), vec![]);
    let status = store.status().unwrap();
    assert_eq!(status.pending.len(), 1);
    assert_eq!(
        (status.pending[0].attempts, status.pending[0].at),
        (1, t0 + lease)
    );
    // The lease ends: it is due again.
    let again = store.lease_due(t0 + lease, lease, 10).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
    store.delivered(mail.id).unwrap();
    assert_eq!(store.status().unwrap(), OutboxStatus::default());
    assert_eq!(store.lease_due(t0 + hours(1), lease, 10).unwrap(), vec![]);
    // A token stored without mail queues none.
    let quiet = reset_record(&ada, "quiet-secret", t0, hours(1));
    ResetTokenRepository::create(store, &quiet, &event(EventKind::ResetRequest), None).unwrap();
    assert_eq!(store.status().unwrap(), OutboxStatus::default());
}

/// A failed attempt waits until its retry time and keeps its error; a given-up message
/// is never leased again, keeps no secret and is listed as failed.
pub fn outbox_retries_and_gives_up<S: Repositories + ?Sized>(store: &S) {
    let ada = stored_user(store, "ada@example.com");
    let t0 = now();
    let lease = TimeDelta::seconds(60);
    let first = queue_reset(store, &ada, "first-secret", t0);
    let second = queue_reset(store, &ada, "second-secret", t0 + micros(1));
    // Oldest first, at most the limit.
    let leased = store.lease_due(t0 + micros(1), lease, 1).unwrap();
    assert_eq!(leased.len(), 1);
    assert_eq!(leased[0].id, first.id);
    let retry = t0 + TimeDelta::seconds(5);
    store
        .retry_at(first.id, retry, "connection refused")
        .unwrap();
    let pending = store.status().unwrap().pending;
    assert_eq!(pending.len(), 2);
    assert_eq!((pending[0].id, pending[0].at), (first.id, retry));
    assert_eq!(pending[0].last_error.as_deref(), Some("connection refused"));
    assert_eq!(pending[0].to, first.to);
    // Before the retry time only the second one is due.
    let ids = |mails: Vec<QueuedMail>| mails.iter().map(|m| (m.id, m.attempts)).collect::<Vec<_>>();
    assert_eq!(
        ids(store.lease_due(retry - micros(1), lease, 10).unwrap()),
        vec![(second.id, 1)]
    );
    assert_eq!(
        ids(store.lease_due(retry, lease, 10).unwrap()),
        vec![(first.id, 2)]
    );
    store
        .give_up(first.id, retry, "mailbox unavailable")
        .unwrap();
    let status = store.status().unwrap();
    assert_eq!(status.failed.len(), 1);
    assert_eq!(
        (status.failed[0].id, status.failed[0].at),
        (first.id, retry)
    );
    assert_eq!(
        status.failed[0].last_error.as_deref(),
        Some("mailbox unavailable")
    );
    assert_eq!(
        status.pending.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![second.id]
    );
    let later = store.lease_due(retry + hours(2), lease, 10).unwrap();
    assert!(later.iter().all(|m| m.id != first.id), "{later:?}");
}

/// Of senders leasing at once, no message goes to two; what the race leaves is leased
/// afterwards.
pub fn concurrent_leases_take_each_message_once<S: Repositories + ?Sized>(store: &S) {
    let ada = stored_user(store, "ada@example.com");
    let t0 = now();
    let mut ids: Vec<MailId> = (0..THREADS)
        .map(|n| {
            let at = t0 + micros(i64::try_from(n).unwrap());
            queue_reset(store, &ada, &format!("secret-{n}"), at).id
        })
        .collect();
    let at = t0 + TimeDelta::seconds(1);
    let lease = TimeDelta::seconds(60);
    let results = race(store, |s, _| s.lease_due(at, lease, 3).unwrap());
    let mut taken: Vec<MailId> = results.iter().flatten().map(|m| m.id).collect();
    taken.extend(
        store
            .lease_due(at, lease, 100)
            .unwrap()
            .iter()
            .map(|m| m.id),
    );
    taken.sort();
    ids.sort();
    assert_eq!(taken, ids, "each message leased exactly once");
}

/// A refresh token reads back by `jti`, spent (after a rotation) or not; an unknown
/// one is `None`.
pub fn refresh_tokens_read_back_spent_or_not<S: Repositories + ?Sized>(store: &S) {
    let ada = stored_user(store, "ada@example.com");
    let t0 = now();
    let (session, first) = stored_session(store, &ada, t0, hours(24));
    assert_eq!(store.refresh_token(first.id).unwrap(), Some(first.clone()));
    let t1 = t0 + micros(5);
    let second = token_for(session.id, t1);
    store
        .rotate(first.id, &second, t1, NO_GRACE, &event(EventKind::Refresh))
        .unwrap();
    let spent = store.refresh_token(first.id).unwrap().unwrap();
    assert_eq!(spent.used_at, Some(t1));
    assert_eq!(store.refresh_token(second.id).unwrap(), Some(second));
    assert_eq!(store.refresh_token(TokenId::generate(t1)).unwrap(), None);
}

/// Registered clients read back as stored, oldest first, and go when deleted.
pub fn clients_round_trip_and_go<S: Repositories + ?Sized>(store: &S) {
    let t0 = now();
    let client = |name: &str, at| RegisteredClient {
        id: ClientId::generate(at),
        name: name.to_owned(),
        secret_hash: "a".repeat(64),
        created_at: at,
    };
    let billing = client("billing", t0);
    let search = client("search", t0 + micros(1));
    store.create_client(&billing).unwrap();
    store.create_client(&search).unwrap();
    assert!(store.create_client(&billing).is_err(), "a clash of ids");
    assert_eq!(store.find_client(search.id).unwrap(), Some(search.clone()));
    assert_eq!(
        store.list_clients().unwrap(),
        vec![billing.clone(), search.clone()]
    );
    assert!(store.delete_client(billing.id).unwrap());
    assert!(!store.delete_client(billing.id).unwrap());
    assert_eq!(store.find_client(billing.id).unwrap(), None);
    assert_eq!(store.list_clients().unwrap(), vec![search]);
}

#[cfg(test)]
mod tests {
    /// Every public function of this file is a case, and the macro runs each.
    #[test]
    fn the_macro_lists_every_case() {
        let mut defined: Vec<&str> = include_str!("contract.rs")
            .lines()
            .filter_map(|line| line.strip_prefix("pub fn "))
            .filter_map(|rest| rest.split(['<', '(']).next())
            .collect();
        let mut listed = crate::repository_contract!(@each @names);
        defined.sort_unstable();
        listed.sort_unstable();
        assert_eq!(defined, listed);
    }
}
