//! What only a SQL store has, beyond the domain's repository contract: migrations, the
//! server's secrets, rows the ports cannot write, foreign keys. `postgres::*` and
//! `sqlite::*` run each test on a database of that backend.

use std::sync::{Arc, Barrier};
use std::thread;

use chrono::TimeDelta;
use portcullis_domain::contract::fixtures::{
    event, reset_record, stored_session, stored_user, token_for,
};
use portcullis_domain::{
    Clock, Email, EventFilter, EventKind, EventRepository, MailId, MailOutbox, QueuedMail,
    ResetSecret, ResetTokenRepository, RevocationReason, RotateError, SealError, SecretSealer,
    SessionRepository, SystemClock, ThrottleRepository, UserId, UserRepository, nonblocking,
};
use portcullis_persistence::Database;
use portcullis_persistence::testing::TestDatabase;

on_each_backend!(
    ping_answers,
    unparsable_rows_are_store_errors,
    secrets_are_created_once,
    migrations_revert_and_reapply,
    concurrent_migrations_take_turns,
    deleting_a_user_cascades,
    purge_removes_only_what_can_no_longer_matter,
    queued_secrets_are_sealed_when_a_sealer_is_given,
    no_query_runs_where_blocking_is_forbidden,
);

/// Inside `nonblocking::attempt` (an async worker trying a use case from memory) the
/// store refuses at once rather than wait for a connection or a query.
fn no_query_runs_where_blocking_is_forbidden(t: &TestDatabase) {
    let db = t.database();
    let user = stored_user(db, "ada@example.com");
    assert!(nonblocking::attempt(|| db.find_by_id(user.id)).is_none());
    let refused = nonblocking::attempt(|| {
        db.revoke_all_for_user(user.id, RevocationReason::Logout, SystemClock.now())
    });
    assert!(refused.is_none());
    assert_eq!(
        db.find_by_id(user.id).unwrap(),
        Some(user),
        "answers again outside"
    );
}

fn ping_answers(t: &TestDatabase) {
    t.database().ping().unwrap();
}

fn unparsable_rows_are_store_errors(t: &TestDatabase) {
    let db = t.database();
    let ada = stored_user(db, "ada@example.com");
    let (stored, _) = stored_session(db, &ada, SystemClock.now(), TimeDelta::hours(1));

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
        db.find_by_id(UserId::generate(SystemClock.now())).is_err(),
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
    let created = SystemClock.now();
    let (ended, token) = stored_session(db, &ada, created, TimeDelta::hours(24));
    stored_session(db, &grace, created, TimeDelta::hours(24));
    let record = reset_record(&ada, "secret", created, TimeDelta::hours(1));
    ResetTokenRepository::create(db, &record, &event(EventKind::ResetRequest), None).unwrap();

    assert_eq!(
        t.execute(&format!("DELETE FROM users WHERE id = '{}'", ada.id)),
        1
    );
    assert_eq!(db.find(ended.id).unwrap(), None);
    assert!(matches!(
        db.rotate(
            token.id,
            &token_for(ended.id, created),
            created,
            chrono::TimeDelta::zero(),
            &event(EventKind::Refresh)
        ),
        Err(RotateError::UnknownToken)
    ));
    assert_eq!(db.find_valid(&record.token_hash, created).unwrap(), None);
    // Grace's session and its token are all that is left.
    assert_eq!(t.execute("DELETE FROM refresh_tokens"), 1);
    assert_eq!(t.execute("DELETE FROM sessions"), 1);
    assert_eq!(t.execute("DELETE FROM password_reset_tokens"), 0);
}

/// A purge deletes sessions past their expiry (with their tokens), expired refresh
/// tokens, used or expired reset tokens, events older than the retention and throttle
/// counters last hit before the cut-off; a live session's spent token stays, so a
/// replay of it is still detected.
fn purge_removes_only_what_can_no_longer_matter(t: &TestDatabase) {
    let db = t.database();
    let now = SystemClock.now();
    let hour = TimeDelta::hours(1);
    let ada = stored_user(db, "ada@example.com");
    let (expired, _) = stored_session(db, &ada, now - hour * 3, hour);
    let (live, first) = stored_session(db, &ada, now - hour, hour * 24);
    let second = token_for(live.id, now - hour / 2);
    db.rotate(
        first.id,
        &second,
        now - hour / 2,
        TimeDelta::zero(),
        &event(EventKind::Refresh),
    )
    .unwrap();
    let used = reset_record(&ada, "used", now - hour, hour * 2);
    ResetTokenRepository::create(db, &used, &event(EventKind::ResetRequest), None).unwrap();
    db.complete_reset(
        &used.token_hash,
        &ada.password_hash,
        now - hour / 4,
        &event(EventKind::ResetCompletion),
    )
    .unwrap();
    // Unused but expired (creating it retired nothing left unused).
    let stale = reset_record(&ada, "stale", now - hour * 2, hour);
    ResetTokenRepository::create(db, &stale, &event(EventKind::ResetRequest), None).unwrap();

    // Events: one from before the retention period, one within it.
    let retention_start = now - TimeDelta::days(90);
    let mut old = event(EventKind::Login);
    old.at = retention_start - TimeDelta::microseconds(1);
    db.record(&old).unwrap();
    let mut kept = event(EventKind::Login);
    kept.at = retention_start;
    db.record(&kept).unwrap();

    // Throttle counters: one last hit before the cut-off, one at it.
    let forgotten_before = now - TimeDelta::days(1);
    db.hit(
        "login:ip:192.0.2.1",
        forgotten_before - TimeDelta::microseconds(1),
        hour,
    )
    .unwrap();
    db.hit("login:ip:192.0.2.2", forgotten_before, hour)
        .unwrap();

    let purged = db
        .purge(now, retention_start, forgotten_before)
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            purged.sessions,
            purged.refresh_tokens,
            purged.reset_tokens,
            purged.events,
            purged.throttles
        ),
        (1, 1, 2, 1, 1)
    );
    assert_eq!(db.get("login:ip:192.0.2.1").unwrap(), None);
    assert!(db.get("login:ip:192.0.2.2").unwrap().is_some());
    let remaining = db
        .list(&EventFilter {
            limit: 1000,
            ..EventFilter::default()
        })
        .unwrap();
    assert!(remaining.contains(&kept) && !remaining.contains(&old));
    assert!(db.find(expired.id).unwrap().is_none());
    // The live session's spent token is still known: presenting it again is a replay.
    assert!(matches!(
        db.rotate(
            first.id,
            &token_for(live.id, now),
            now,
            TimeDelta::zero(),
            &event(EventKind::Refresh)
        ),
        Err(RotateError::AlreadyUsed { .. })
    ));
    // A live reset token stays; nothing else is left to purge.
    let valid = reset_record(&ada, "valid", now, hour);
    ResetTokenRepository::create(db, &valid, &event(EventKind::ResetRequest), None).unwrap();
    let again = db
        .purge(now, retention_start, forgotten_before)
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            again.sessions,
            again.refresh_tokens,
            again.reset_tokens,
            again.events,
            again.throttles
        ),
        (0, 0, 0, 0, 0)
    );
}

/// A stand-in sealer: reversible only with the same context (the real one, XChaCha20-
/// Poly1305 under the secrets key, is the crypto crate's and tested there).
struct ReversingSealer;

impl SecretSealer for ReversingSealer {
    fn seal(&self, context: &str, secret: &str) -> Result<Vec<u8>, SealError> {
        Ok(format!("{context}|{}", secret.chars().rev().collect::<String>()).into_bytes())
    }

    fn open(&self, context: &str, sealed: &[u8]) -> Result<String, SealError> {
        let text = String::from_utf8(sealed.to_vec()).map_err(|e| SealError(e.to_string()))?;
        let reversed = text
            .strip_prefix(&format!("{context}|"))
            .ok_or_else(|| SealError("another context".into()))?;
        Ok(reversed.chars().rev().collect())
    }
}

/// With a sealer, a queued message's secret is stored sealed (bound to the message)
/// and leased opened; without one, rows it sealed are a store error, not a wrong link.
fn queued_secrets_are_sealed_when_a_sealer_is_given(t: &TestDatabase) {
    let plain = t.database().clone();
    let sealing = plain
        .clone()
        .sealing_secrets_with(Arc::new(ReversingSealer));
    let ada = stored_user(&plain, "ada@example.com");
    let now = SystemClock.now();
    let record = reset_record(&ada, "the-reset-secret", now, TimeDelta::hours(1));
    let mail = QueuedMail {
        id: MailId::generate(now),
        to: ada.email.clone().unwrap(),
        secret: ResetSecret::from_presented("the-reset-secret"),
        link_expires_at: record.expires_at,
        queued_at: now,
        attempts: 0,
    };
    ResetTokenRepository::create(
        &sealing,
        &record,
        &event(EventKind::ResetRequest),
        Some(&mail),
    )
    .unwrap();
    // Counted by a no-op update: the stored text is sealed, never the secret itself.
    let matching = |condition: &str| {
        t.execute(&format!(
            "UPDATE mail_outbox SET attempts = attempts WHERE {condition}"
        ))
    };
    assert_eq!(matching("secret LIKE '%the-reset-secret%'"), 0);
    assert_eq!(matching("secret LIKE 'sealed:v1:%'"), 1);
    // Without the sealer the row cannot be read as a link.
    assert!(plain.lease_due(now, TimeDelta::seconds(60), 10).is_err());
    let leased = sealing
        .lease_due(now + TimeDelta::seconds(61), TimeDelta::seconds(60), 10)
        .unwrap();
    assert_eq!(leased.len(), 1);
    assert_eq!(leased[0].secret.expose(), "the-reset-secret");
}
