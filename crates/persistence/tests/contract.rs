#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The repository contract of `portcullis_domain::ports`, written once and run against
//! PostgreSQL (`postgres::*`) and SQLite (`sqlite::*`), each test on a database of its own.

use std::sync::{Arc, Barrier};
use std::thread;

use chrono::{DateTime, TimeDelta, Utc};
use portcullis_domain::{
    Bio, Clock, CompleteResetError, CreateUserError, DisplayName, Email, EndSessionError,
    PasswordHash, Profile, RefreshTokenRecord, ResetSecret, ResetTokenHash, ResetTokenRecord,
    ResetTokenRepository, RevocationReason, RotateError, Session, SessionId, SessionRepository,
    SystemClock, TokenId, User, UserId, UserRepository, Username,
};
use portcullis_persistence::testing::TestDatabase;
use portcullis_persistence::{Backend, Database};
use serde_json::json;

/// Generates `postgres::<test>` and `sqlite::<test>` for each contract test.
macro_rules! contract {
    ($($test:ident),* $(,)?) => {
        mod postgres {
            $(
                #[test]
                fn $test() {
                    super::$test(&portcullis_persistence::testing::TestDatabase::postgres());
                }
            )*
        }
        mod sqlite {
            $(
                #[test]
                fn $test() {
                    super::$test(&portcullis_persistence::testing::TestDatabase::sqlite());
                }
            )*
        }
    };
}

contract!(
    ping_answers,
    user_round_trips_and_is_found_case_insensitively,
    unknown_users_are_none,
    email_taken_case_insensitively,
    username_taken_case_insensitively,
    users_without_username_coexist,
    duplicate_user_id_is_a_store_error,
    replace_password_hash_updates_existing_users_only,
    profile_json_round_trips,
    timestamps_round_trip_exactly,
    unparsable_rows_are_store_errors,
    session_round_trips,
    session_create_is_atomic,
    rotate_spends_the_token_and_stores_the_successor,
    rotate_unknown_token,
    rotate_replay_is_refused_and_revokes_the_session,
    rotate_on_revoked_session_changes_nothing,
    rotate_on_expired_session,
    end_by_refresh_token_revokes_the_session,
    end_by_refresh_token_unknown_token,
    end_by_refresh_token_with_used_token_revokes_for_reuse,
    end_by_refresh_token_on_inactive_session_changes_nothing,
    revoke_is_idempotent_and_keeps_the_first_reason,
    revoke_all_for_user_counts_active_sessions_only,
    reset_token_is_found_while_valid,
    new_reset_token_invalidates_older_ones,
    expiry_is_exact_to_the_microsecond,
    complete_reset_changes_the_password_and_ends_sessions,
    complete_reset_refuses_invalid_tokens,
    secrets_are_created_once,
    migrations_revert_and_reapply,
    concurrent_migrations_take_turns,
    deleting_a_user_cascades,
    concurrent_rotations_exactly_one_wins,
    concurrent_registrations_exactly_one_wins,
    concurrent_resets_exactly_one_wins,
);

const THREADS: usize = 8;
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

fn new_user(email: &str, username: Option<&str>) -> User {
    let now = now();
    User {
        id: UserId::generate(now),
        email: Email::parse(email).unwrap(),
        username: username.map(|name| Username::parse(name).unwrap()),
        name: DisplayName::parse("Ada Lovelace").unwrap(),
        bio: None,
        email_verified: false,
        must_change_password: false,
        profile: Profile::default(),
        password_hash: PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$b2xk".into()),
        password_changed_at: now,
        created_at: now,
        updated_at: now,
    }
}

fn stored_user(db: &Database, email: &str) -> User {
    let user = new_user(email, None);
    UserRepository::create(db, &user).unwrap();
    user
}

fn token_for(session: SessionId, issued_at: DateTime<Utc>) -> RefreshTokenRecord {
    RefreshTokenRecord {
        id: TokenId::generate(issued_at),
        session_id: session,
        issued_at,
        expires_at: issued_at + hours(24),
        used_at: None,
    }
}

/// A stored session of `user`, created at `created_at` and lasting `ttl`, and its first token.
fn stored_session(
    db: &Database,
    user: &User,
    created_at: DateTime<Utc>,
    ttl: TimeDelta,
) -> (Session, RefreshTokenRecord) {
    let session = Session {
        id: SessionId::generate(created_at),
        user_id: user.id,
        created_at,
        expires_at: created_at + ttl,
        last_refreshed_at: None,
        revoked_at: None,
        revocation_reason: None,
    };
    let token = token_for(session.id, created_at);
    SessionRepository::create(db, &session, &token).unwrap();
    (session, token)
}

fn reset_record(
    user: &User,
    secret: &str,
    created_at: DateTime<Utc>,
    ttl: TimeDelta,
) -> ResetTokenRecord {
    ResetTokenRecord {
        token_hash: ResetTokenHash::of(&ResetSecret::from_presented(secret)),
        user_id: user.id,
        created_at,
        expires_at: created_at + ttl,
        used_at: None,
    }
}

fn session(db: &Database, id: SessionId) -> Session {
    db.find(id).unwrap().expect("session is stored")
}

fn user(db: &Database, id: UserId) -> User {
    db.find_by_id(id).unwrap().expect("user is stored")
}

fn ping_answers(t: &TestDatabase) {
    t.database().ping().unwrap();
}

fn user_round_trips_and_is_found_case_insensitively(t: &TestDatabase) {
    let db = t.database();
    let mut ada = new_user("ada@example.com", Some("Ada_Lovelace"));
    ada.bio = Some(Bio::parse("Wrote the first program.").unwrap());
    ada.email_verified = true;
    ada.must_change_password = true;
    ada.profile.set("language", json!("en"));
    UserRepository::create(db, &ada).unwrap();

    assert_eq!(db.find_by_id(ada.id).unwrap(), Some(ada.clone()));
    let email = Email::parse("ADA@Example.COM").unwrap();
    assert_eq!(db.find_by_email(&email).unwrap(), Some(ada.clone()));
    let username = Username::parse("ada_LOVELACE").unwrap();
    assert_eq!(db.find_by_username(&username).unwrap(), Some(ada.clone()));
    // Kept as written.
    assert_eq!(user(db, ada.id).username.unwrap().as_str(), "Ada_Lovelace");
}

fn unknown_users_are_none(t: &TestDatabase) {
    let db = t.database();
    stored_user(db, "ada@example.com");
    assert_eq!(db.find_by_id(UserId::generate(now())).unwrap(), None);
    let email = Email::parse("grace@example.com").unwrap();
    assert_eq!(db.find_by_email(&email).unwrap(), None);
    let username = Username::parse("grace").unwrap();
    assert_eq!(db.find_by_username(&username).unwrap(), None);
}

fn email_taken_case_insensitively(t: &TestDatabase) {
    let db = t.database();
    let ada = new_user("ada@example.com", Some("ada"));
    UserRepository::create(db, &ada).unwrap();
    let again = new_user("ADA@EXAMPLE.com", Some("someone_else"));
    assert!(matches!(
        UserRepository::create(db, &again),
        Err(CreateUserError::EmailTaken)
    ));
    assert_eq!(db.find_by_id(again.id).unwrap(), None);
    assert_eq!(user(db, ada.id), ada);
}

fn username_taken_case_insensitively(t: &TestDatabase) {
    let db = t.database();
    UserRepository::create(db, &new_user("ada@example.com", Some("Ada"))).unwrap();
    let again = new_user("other@example.com", Some("aDA"));
    assert!(matches!(
        UserRepository::create(db, &again),
        Err(CreateUserError::UsernameTaken)
    ));
    assert_eq!(db.find_by_id(again.id).unwrap(), None);
}

fn users_without_username_coexist(t: &TestDatabase) {
    let db = t.database();
    let first = stored_user(db, "one@example.com");
    let second = stored_user(db, "two@example.com");
    assert_eq!(user(db, first.id).username, None);
    assert_eq!(user(db, second.id).username, None);
}

fn duplicate_user_id_is_a_store_error(t: &TestDatabase) {
    let db = t.database();
    let ada = stored_user(db, "ada@example.com");
    let mut clash = new_user("grace@example.com", Some("grace"));
    clash.id = ada.id;
    assert!(matches!(
        UserRepository::create(db, &clash),
        Err(CreateUserError::Store(_))
    ));
}

fn replace_password_hash_updates_existing_users_only(t: &TestDatabase) {
    let db = t.database();
    let ada = stored_user(db, "ada@example.com");
    let later = ada.updated_at + hours(1);
    let rehashed = PasswordHash::new("$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$bmV3".into());

    assert!(db.replace_password_hash(ada.id, &rehashed, later).unwrap());
    let stored = user(db, ada.id);
    assert_eq!(stored.password_hash, rehashed);
    assert_eq!(stored.password_changed_at, ada.password_changed_at);
    assert_eq!(stored.updated_at, later);

    assert!(
        !db.replace_password_hash(UserId::generate(later), &rehashed, later)
            .unwrap()
    );
}

fn profile_json_round_trips(t: &TestDatabase) {
    let db = t.database();
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
    UserRepository::create(db, &ada).unwrap();
    assert_eq!(user(db, ada.id).profile, ada.profile);

    let plain = stored_user(db, "plain@example.com");
    assert_eq!(user(db, plain.id).profile, Profile::default());
}

fn timestamps_round_trip_exactly(t: &TestDatabase) {
    let db = t.database();
    let base = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let mut ada = new_user("ada@example.com", None);
    ada.password_changed_at = base + micros(123_456);
    ada.created_at = base; // whole second
    ada.updated_at = base + micros(999_999);
    UserRepository::create(db, &ada).unwrap();
    assert_eq!(user(db, ada.id), ada);

    let stored = Session {
        id: SessionId::generate(base),
        user_id: ada.id,
        created_at: base + micros(1),
        expires_at: base + hours(24 * 400) + micros(10),
        last_refreshed_at: Some(base + micros(500_000)),
        revoked_at: Some(base + hours(1) + micros(7)),
        revocation_reason: Some(RevocationReason::Logout),
    };
    SessionRepository::create(db, &stored, &token_for(stored.id, base)).unwrap();
    assert_eq!(session(db, stored.id), stored);

    let reset = reset_record(
        &ada,
        "s",
        base - hours(24 * 365 * 30) + micros(42),
        hours(24 * 365 * 60),
    );
    ResetTokenRepository::create(db, &reset).unwrap();
    assert_eq!(
        db.find_valid(&reset.token_hash, now()).unwrap(),
        Some(reset)
    );
}

fn unparsable_rows_are_store_errors(t: &TestDatabase) {
    let db = t.database();
    let ada = stored_user(db, "ada@example.com");
    let (stored, _) = stored_session(db, &ada, now(), hours(1));

    t.execute(&format!(
        "UPDATE users SET email = 'not-an-email' WHERE id = '{}'",
        ada.id
    ));
    assert!(db.find_by_id(ada.id).is_err());

    t.execute(&format!(
        "UPDATE sessions SET revoked_at = created_at, revocation_reason = 'bogus' WHERE id = '{}'",
        stored.id
    ));
    assert!(db.find(stored.id).is_err());
}

fn session_round_trips(t: &TestDatabase) {
    let db = t.database();
    let ada = stored_user(db, "ada@example.com");
    let (stored, _) = stored_session(db, &ada, now(), hours(24));
    assert_eq!(db.find(stored.id).unwrap(), Some(stored));
    assert_eq!(db.find(SessionId::generate(now())).unwrap(), None);
}

fn session_create_is_atomic(t: &TestDatabase) {
    let db = t.database();
    let ada = stored_user(db, "ada@example.com");
    let (_, first) = stored_session(db, &ada, now(), hours(24));

    // A second session whose first token reuses a stored jti: neither row may stay.
    let mut second = session(db, first.session_id);
    second.id = SessionId::generate(now());
    let clashing = RefreshTokenRecord {
        session_id: second.id,
        ..first.clone()
    };
    assert!(SessionRepository::create(db, &second, &clashing).is_err());
    assert_eq!(db.find(second.id).unwrap(), None);
}

fn rotate_spends_the_token_and_stores_the_successor(t: &TestDatabase) {
    let db = t.database();
    let ada = stored_user(db, "ada@example.com");
    let created = now();
    let (stored, first) = stored_session(db, &ada, created, hours(24));

    let t1 = created + micros(1_500_001);
    let second = token_for(stored.id, t1);
    db.rotate(first.id, &second, t1).unwrap();
    assert_eq!(session(db, stored.id).last_refreshed_at, Some(t1));

    // The successor works in turn.
    let t2 = t1 + hours(1);
    let third = token_for(stored.id, t2);
    db.rotate(second.id, &third, t2).unwrap();
    assert_eq!(session(db, stored.id).last_refreshed_at, Some(t2));
    // A spent token presented again is a replay: the whole family dies with it.
    assert!(matches!(
        db.rotate(first.id, &token_for(stored.id, t2), t2),
        Err(RotateError::AlreadyUsed { session }) if session == stored.id
    ));
    assert!(matches!(
        db.rotate(third.id, &token_for(stored.id, t2), t2),
        Err(RotateError::SessionInactive)
    ));
}

fn rotate_unknown_token(t: &TestDatabase) {
    let db = t.database();
    let ada = stored_user(db, "ada@example.com");
    let (stored, _) = stored_session(db, &ada, now(), hours(24));
    let unknown = TokenId::generate(now());
    assert!(matches!(
        db.rotate(unknown, &token_for(stored.id, now()), now()),
        Err(RotateError::UnknownToken)
    ));
}

fn rotate_replay_is_refused_and_revokes_the_session(t: &TestDatabase) {
    let db = t.database();
    let ada = stored_user(db, "ada@example.com");
    let created = now();
    let (stored, first) = stored_session(db, &ada, created, hours(24));
    let t1 = created + hours(1);
    db.rotate(first.id, &token_for(stored.id, t1), t1).unwrap();

    let t2 = t1 + hours(1);
    let replayed_successor = token_for(stored.id, t2);
    assert!(matches!(
        db.rotate(first.id, &replayed_successor, t2),
        Err(RotateError::AlreadyUsed { session }) if session == stored.id
    ));
    let after = session(db, stored.id);
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
        db.rotate(first.id, &token_for(stored.id, t3), t3),
        Err(RotateError::AlreadyUsed { .. })
    ));
    assert_eq!(session(db, stored.id).revoked_at, Some(t2));
    // The refused successor was not stored.
    assert!(matches!(
        db.rotate(replayed_successor.id, &token_for(stored.id, t2), t2),
        Err(RotateError::UnknownToken)
    ));
}

fn rotate_on_revoked_session_changes_nothing(t: &TestDatabase) {
    let db = t.database();
    let ada = stored_user(db, "ada@example.com");
    let created = now();
    let (stored, first) = stored_session(db, &ada, created, hours(24));
    let t1 = created + hours(1);
    db.revoke(stored.id, RevocationReason::Logout, t1).unwrap();

    let successor = token_for(stored.id, t1);
    assert!(matches!(
        db.rotate(first.id, &successor, t1),
        Err(RotateError::SessionInactive)
    ));
    assert!(matches!(
        db.rotate(successor.id, &token_for(stored.id, t1), t1),
        Err(RotateError::UnknownToken)
    ));
    assert_eq!(session(db, stored.id).last_refreshed_at, None);

    // Undo the revocation behind the ports' back: the token was not spent.
    t.execute("UPDATE sessions SET revoked_at = NULL, revocation_reason = NULL");
    db.rotate(first.id, &successor, t1).unwrap();
    // A spent token is a replay even once the session is revoked, and the replay
    // keeps the first revocation's reason.
    db.revoke(stored.id, RevocationReason::Logout, t1).unwrap();
    assert!(matches!(
        db.rotate(first.id, &token_for(stored.id, t1), t1),
        Err(RotateError::AlreadyUsed { .. })
    ));
    assert_eq!(
        session(db, stored.id).revocation_reason,
        Some(RevocationReason::Logout)
    );
}

fn rotate_on_expired_session(t: &TestDatabase) {
    let db = t.database();
    let ada = stored_user(db, "ada@example.com");
    let (stored, first) = stored_session(db, &ada, now(), hours(2));

    let at_expiry = stored.expires_at;
    assert!(matches!(
        db.rotate(first.id, &token_for(stored.id, at_expiry), at_expiry),
        Err(RotateError::SessionInactive)
    ));
    assert_eq!(session(db, stored.id).last_refreshed_at, None);
    let just_before = stored.expires_at - micros(1);
    db.rotate(first.id, &token_for(stored.id, just_before), just_before)
        .unwrap();
}

fn end_by_refresh_token_revokes_the_session(t: &TestDatabase) {
    let db = t.database();
    let ada = stored_user(db, "ada@example.com");
    let created = now();
    let (stored, first) = stored_session(db, &ada, created, hours(24));
    let t1 = created + hours(1);

    assert_eq!(
        db.end_by_refresh_token(first.id, RevocationReason::Logout, t1)
            .unwrap(),
        stored.id
    );
    let ended = session(db, stored.id);
    assert_eq!(ended.revoked_at, Some(t1));
    assert_eq!(ended.revocation_reason, Some(RevocationReason::Logout));
}

fn end_by_refresh_token_unknown_token(t: &TestDatabase) {
    let db = t.database();
    assert!(matches!(
        db.end_by_refresh_token(TokenId::generate(now()), RevocationReason::Logout, now()),
        Err(EndSessionError::UnknownToken)
    ));
}

fn end_by_refresh_token_with_used_token_revokes_for_reuse(t: &TestDatabase) {
    let db = t.database();
    let ada = stored_user(db, "ada@example.com");
    let created = now();
    let (stored, first) = stored_session(db, &ada, created, hours(24));
    let t1 = created + hours(1);
    db.rotate(first.id, &token_for(stored.id, t1), t1).unwrap();

    let t2 = t1 + hours(1);
    assert!(matches!(
        db.end_by_refresh_token(first.id, RevocationReason::Logout, t2),
        Err(EndSessionError::AlreadyUsed)
    ));
    let ended = session(db, stored.id);
    assert_eq!(ended.revoked_at, Some(t2));
    assert_eq!(
        ended.revocation_reason,
        Some(RevocationReason::RefreshReuse)
    );
}

fn end_by_refresh_token_on_inactive_session_changes_nothing(t: &TestDatabase) {
    let db = t.database();
    let ada = stored_user(db, "ada@example.com");
    let created = now();

    let (revoked, revoked_token) = stored_session(db, &ada, created, hours(24));
    let t1 = created + hours(1);
    db.revoke(revoked.id, RevocationReason::PasswordReset, t1)
        .unwrap();
    assert!(matches!(
        db.end_by_refresh_token(revoked_token.id, RevocationReason::Logout, t1 + hours(1)),
        Err(EndSessionError::SessionInactive)
    ));
    let still = session(db, revoked.id);
    assert_eq!(still.revoked_at, Some(t1));
    assert_eq!(
        still.revocation_reason,
        Some(RevocationReason::PasswordReset)
    );

    let (expired, expired_token) = stored_session(db, &ada, created, hours(2));
    assert!(matches!(
        db.end_by_refresh_token(
            expired_token.id,
            RevocationReason::Logout,
            expired.expires_at
        ),
        Err(EndSessionError::SessionInactive)
    ));
    assert_eq!(session(db, expired.id), expired);
}

fn revoke_is_idempotent_and_keeps_the_first_reason(t: &TestDatabase) {
    let db = t.database();
    let ada = stored_user(db, "ada@example.com");
    let created = now();
    let (stored, _) = stored_session(db, &ada, created, hours(24));
    let t1 = created + hours(1);

    db.revoke(stored.id, RevocationReason::Logout, t1).unwrap();
    db.revoke(stored.id, RevocationReason::RefreshReuse, t1 + hours(1))
        .unwrap();
    let revoked = session(db, stored.id);
    assert_eq!(revoked.revoked_at, Some(t1));
    assert_eq!(revoked.revocation_reason, Some(RevocationReason::Logout));

    db.revoke(SessionId::generate(t1), RevocationReason::Logout, t1)
        .unwrap();
}

fn revoke_all_for_user_counts_active_sessions_only(t: &TestDatabase) {
    let db = t.database();
    let ada = stored_user(db, "ada@example.com");
    let grace = stored_user(db, "grace@example.com");
    let created = now();
    let active: Vec<Session> = (0..3)
        .map(|_| stored_session(db, &ada, created, hours(24)).0)
        .collect();
    let (revoked, _) = stored_session(db, &ada, created, hours(24));
    db.revoke(revoked.id, RevocationReason::Logout, created)
        .unwrap();
    let (expired, _) = stored_session(db, &ada, created, hours(1));
    let (other, _) = stored_session(db, &grace, created, hours(24));

    let t1 = created + hours(2);
    assert_eq!(
        db.revoke_all_for_user(ada.id, RevocationReason::PasswordReset, t1)
            .unwrap(),
        3
    );
    for id in active.iter().map(|s| s.id) {
        let ended = session(db, id);
        assert_eq!(ended.revoked_at, Some(t1));
        assert_eq!(
            ended.revocation_reason,
            Some(RevocationReason::PasswordReset)
        );
    }
    assert_eq!(
        session(db, revoked.id).revocation_reason,
        Some(RevocationReason::Logout)
    );
    assert_eq!(session(db, expired.id), expired);
    assert_eq!(session(db, other.id), other);
    assert_eq!(
        db.revoke_all_for_user(ada.id, RevocationReason::PasswordReset, t1)
            .unwrap(),
        0
    );
}

fn reset_token_is_found_while_valid(t: &TestDatabase) {
    let db = t.database();
    let ada = stored_user(db, "ada@example.com");
    let created = now();
    let record = reset_record(&ada, "secret", created, hours(1));
    ResetTokenRepository::create(db, &record).unwrap();

    assert_eq!(
        db.find_valid(&record.token_hash, created).unwrap(),
        Some(record.clone())
    );
    let unknown = ResetTokenHash::of(&ResetSecret::from_presented("other"));
    assert_eq!(db.find_valid(&unknown, created).unwrap(), None);
    assert_eq!(
        db.find_valid(&record.token_hash, record.expires_at)
            .unwrap(),
        None
    );

    db.complete_reset(&record.token_hash, &ada.password_hash, created)
        .unwrap();
    assert_eq!(db.find_valid(&record.token_hash, created).unwrap(), None);
}

fn new_reset_token_invalidates_older_ones(t: &TestDatabase) {
    let db = t.database();
    let ada = stored_user(db, "ada@example.com");
    let grace = stored_user(db, "grace@example.com");
    let created = now();
    let older = reset_record(&ada, "older", created, hours(1));
    let graces = reset_record(&grace, "grace's", created, hours(1));
    ResetTokenRepository::create(db, &older).unwrap();
    ResetTokenRepository::create(db, &graces).unwrap();

    let newer = reset_record(&ada, "newer", created + micros(1), hours(1));
    ResetTokenRepository::create(db, &newer).unwrap();
    assert_eq!(db.find_valid(&older.token_hash, created).unwrap(), None);
    assert!(matches!(
        db.complete_reset(&older.token_hash, &ada.password_hash, created),
        Err(CompleteResetError::InvalidToken)
    ));
    assert_eq!(
        db.find_valid(&newer.token_hash, created).unwrap(),
        Some(newer)
    );
    assert_eq!(
        db.find_valid(&graces.token_hash, created).unwrap(),
        Some(graces)
    );
}

fn expiry_is_exact_to_the_microsecond(t: &TestDatabase) {
    // SQLite compares instants as text: whole seconds and fractions must still order.
    let db = t.database();
    let ada = stored_user(db, "ada@example.com");
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
        ResetTokenRepository::create(db, &record).unwrap();
        for now in [
            second - micros(1),
            second,
            second + micros(1),
            second + micros(500_000),
        ] {
            assert_eq!(
                db.find_valid(&record.token_hash, now).unwrap().is_some(),
                now < expires_at,
                "expires {expires_at}, now {now}"
            );
        }
    }
}

fn complete_reset_changes_the_password_and_ends_sessions(t: &TestDatabase) {
    let db = t.database();
    let mut ada = new_user("ada@example.com", None);
    ada.must_change_password = true;
    UserRepository::create(db, &ada).unwrap();
    let created = now();
    let sessions: Vec<Session> = (0..2)
        .map(|_| stored_session(db, &ada, created, hours(24)).0)
        .collect();
    let record = reset_record(&ada, "secret", created, hours(1));
    ResetTokenRepository::create(db, &record).unwrap();

    let t1 = created + micros(30_000_001);
    let new_hash = PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$bmV3".into());
    assert_eq!(
        db.complete_reset(&record.token_hash, &new_hash, t1)
            .unwrap(),
        ada.id
    );
    let reset = user(db, ada.id);
    assert_eq!(reset.password_hash, new_hash);
    assert_eq!(reset.password_changed_at, t1);
    assert!(!reset.must_change_password);
    for id in sessions.iter().map(|s| s.id) {
        let ended = session(db, id);
        assert_eq!(ended.revoked_at, Some(t1));
        assert_eq!(
            ended.revocation_reason,
            Some(RevocationReason::PasswordReset)
        );
    }

    let other = PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$YWdhaW4".into());
    assert!(matches!(
        db.complete_reset(&record.token_hash, &other, t1),
        Err(CompleteResetError::InvalidToken)
    ));
    assert_eq!(user(db, ada.id).password_hash, new_hash);
}

fn complete_reset_refuses_invalid_tokens(t: &TestDatabase) {
    let db = t.database();
    let mut ada = new_user("ada@example.com", None);
    ada.must_change_password = true;
    UserRepository::create(db, &ada).unwrap();
    let created = now();
    let (live, _) = stored_session(db, &ada, created, hours(24));
    let record = reset_record(&ada, "secret", created, hours(1));
    ResetTokenRepository::create(db, &record).unwrap();
    let new_hash = PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$bmV3".into());

    let unknown = ResetTokenHash::of(&ResetSecret::from_presented("unknown"));
    assert!(matches!(
        db.complete_reset(&unknown, &new_hash, created),
        Err(CompleteResetError::InvalidToken)
    ));
    assert!(matches!(
        db.complete_reset(&record.token_hash, &new_hash, record.expires_at),
        Err(CompleteResetError::InvalidToken)
    ));
    // Nothing changed: the user, the session and the token are as they were.
    assert_eq!(user(db, ada.id), ada);
    assert_eq!(session(db, live.id), live);
    assert_eq!(
        db.find_valid(&record.token_hash, created).unwrap(),
        Some(record)
    );
}

fn secrets_are_created_once(t: &TestDatabase) {
    let db = t.database();
    let bytes = vec![0u8, 1, 0xff, 0x7f, 0, 42];
    let first = db.load_or_create_secret("jwt", || bytes.clone()).unwrap();
    assert_eq!(first, bytes);

    let mut generated_again = false;
    let second = db
        .load_or_create_secret("jwt", || {
            generated_again = true;
            vec![9; 32]
        })
        .unwrap();
    assert_eq!(second, bytes);
    assert!(!generated_again);

    let other = db.load_or_create_secret("other", || vec![7; 64]).unwrap();
    assert_eq!(other, vec![7; 64]);
}

fn migrations_revert_and_reapply(t: &TestDatabase) {
    let db = t.database();
    stored_user(db, "ada@example.com");
    db.revert_all_migrations().unwrap();
    assert!(
        db.find_by_id(UserId::generate(now())).is_err(),
        "tables are gone"
    );
    db.run_migrations().unwrap();
    db.run_migrations().unwrap();
    let email = Email::parse("ada@example.com").unwrap();
    assert_eq!(db.find_by_email(&email).unwrap(), None);
    stored_user(db, "ada@example.com");
}

fn concurrent_migrations_take_turns(t: &TestDatabase) {
    t.database().revert_all_migrations().unwrap();
    // Separate pools, as separate server processes would have.
    let barrier = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let db = Database::connect(t.url(), 2).unwrap();
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                db.run_migrations()
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap().unwrap();
    }
    stored_user(t.database(), "ada@example.com");
}

fn deleting_a_user_cascades(t: &TestDatabase) {
    let db = t.database();
    let ada = stored_user(db, "ada@example.com");
    let grace = stored_user(db, "grace@example.com");
    let created = now();
    let (ended, token) = stored_session(db, &ada, created, hours(24));
    stored_session(db, &grace, created, hours(24));
    let record = reset_record(&ada, "secret", created, hours(1));
    ResetTokenRepository::create(db, &record).unwrap();

    assert_eq!(
        t.execute(&format!("DELETE FROM users WHERE id = '{}'", ada.id)),
        1
    );
    assert_eq!(db.find(ended.id).unwrap(), None);
    assert!(matches!(
        db.rotate(token.id, &token_for(ended.id, created), created),
        Err(RotateError::UnknownToken)
    ));
    assert_eq!(db.find_valid(&record.token_hash, created).unwrap(), None);
    // Grace's session and its token are all that is left.
    assert_eq!(t.execute("DELETE FROM refresh_tokens"), 1);
    assert_eq!(t.execute("DELETE FROM sessions"), 1);
    assert_eq!(t.execute("DELETE FROM password_reset_tokens"), 0);
}

/// Runs `f(i)` on `THREADS` threads released together; their results in thread order.
fn race<T: Send + 'static>(
    db: &Database,
    f: impl Fn(&Database, usize) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let barrier = Arc::new(Barrier::new(THREADS));
    let f = Arc::new(f);
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let (db, barrier, f) = (db.clone(), Arc::clone(&barrier), Arc::clone(&f));
            thread::spawn(move || {
                barrier.wait();
                f(&db, i)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// The index of the one `Ok` among `results`; fails unless there is exactly one.
fn sole_winner<T: std::fmt::Debug, E: std::fmt::Debug>(results: &[Result<T, E>]) -> usize {
    let winners: Vec<usize> = (0..results.len()).filter(|&i| results[i].is_ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    winners[0]
}

fn concurrent_rotations_exactly_one_wins(t: &TestDatabase) {
    let db = t.database();
    let ada = stored_user(db, "ada@example.com");
    // Several rounds: one race may not overlap the threads' transactions.
    for _ in 0..ROUNDS {
        let created = now();
        let (stored, first) = stored_session(db, &ada, created, hours(24));
        let successors: Vec<RefreshTokenRecord> = (0..THREADS)
            .map(|_| token_for(stored.id, created))
            .collect();

        let shared = successors.clone();
        let results = race(db, move |db, i| db.rotate(first.id, &shared[i], created));
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
        let after = session(db, stored.id);
        assert_eq!(
            after.revocation_reason,
            Some(RevocationReason::RefreshReuse)
        );
        for (i, successor) in successors.iter().enumerate() {
            let outcome = db.rotate(successor.id, &token_for(stored.id, created), created);
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

fn concurrent_registrations_exactly_one_wins(t: &TestDatabase) {
    let db = t.database();
    for round in 0..ROUNDS {
        let email = format!("race{round}@example.com");
        let shared = email.clone();
        let results = race(db, move |db, i| {
            let user = new_user(&shared, Some(&format!("racer{round}_{i}")));
            UserRepository::create(db, &user).map(|()| user)
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
            db.find_by_email(&email).unwrap().as_ref(),
            results[winner].as_ref().ok()
        );
    }
}

fn concurrent_resets_exactly_one_wins(t: &TestDatabase) {
    let db = t.database();
    let ada = stored_user(db, "ada@example.com");
    for round in 0..ROUNDS {
        let created = now();
        let record = reset_record(&ada, &format!("secret{round}"), created, hours(1));
        ResetTokenRepository::create(db, &record).unwrap();
        let hashes: Vec<PasswordHash> = (0..THREADS)
            .map(|i| {
                PasswordHash::new(format!(
                    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$r{round}t{i}"
                ))
            })
            .collect();

        let (token, shared) = (record.token_hash.clone(), hashes.clone());
        let results = race(db, move |db, i| {
            db.complete_reset(&token, &shared[i], created)
        });
        let winner = sole_winner(&results);
        for result in &results {
            assert!(
                matches!(result, Err(CompleteResetError::InvalidToken))
                    || result.as_ref().is_ok_and(|id| *id == ada.id),
                "{result:?}"
            );
        }
        assert_eq!(user(db, ada.id).password_hash, hashes[winner]);
    }
}

#[test]
fn test_databases_are_of_the_backend_asked_for() {
    let [pg, lite] = TestDatabase::each();
    assert_eq!(pg.backend(), Backend::Postgres);
    assert!(pg.url().starts_with("postgres"));
    assert_eq!(lite.backend(), Backend::Sqlite);
    assert!(lite.url().starts_with("sqlite://"));
    // Debug output is safe to log: no password.
    assert!(!format!("{pg:?}").contains(":portcullis_test@"), "{pg:?}");
}
