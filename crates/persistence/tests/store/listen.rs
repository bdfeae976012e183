//! The change listener on PostgreSQL: what the triggers announce reaches the sink, its
//! own probes confirm it is current, and a cut connection is reported and replaced.
//! SQLite has no listener.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use portcullis_domain::contract::fixtures::{event, stored_session, stored_user, token_for};
use portcullis_domain::{
    Clock, EventKind, PasswordHash, RevocationReason, SessionRepository, SystemClock,
    UserRepository,
};
use portcullis_persistence::testing::TestDatabase;
use portcullis_persistence::{Change, ChangeSink};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Heard {
    Changed(Change),
    Confirmed,
    Lost,
}

#[derive(Default)]
struct Recorder(Mutex<Vec<Heard>>);

impl ChangeSink for Recorder {
    fn changed(&self, change: Change) {
        self.0.lock().unwrap().push(Heard::Changed(change));
    }
    fn confirmed(&self, _: Instant) {
        self.0.lock().unwrap().push(Heard::Confirmed);
    }
    fn lost(&self) {
        self.0.lock().unwrap().push(Heard::Lost);
    }
}

impl Recorder {
    fn heard(&self) -> Vec<Heard> {
        self.0.lock().unwrap().clone()
    }

    /// Waits (at most 2 s) until something after the first `from` entries satisfies
    /// `wanted`; fails with what was heard.
    #[track_caller]
    fn wait_for(&self, from: usize, wanted: impl Fn(&Heard) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if self.heard().iter().skip(from).any(&wanted) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("not heard within 2 s; heard {:?}", self.heard());
    }
}

#[test]
fn sqlite_has_no_listener() {
    let t = TestDatabase::sqlite();
    let listener = t
        .database()
        .listen_for_changes(Arc::new(Recorder::default()));
    assert!(listener.unwrap().is_none());
}

#[test]
fn committed_changes_reach_the_sink_and_probes_confirm_it() {
    let t = TestDatabase::postgres();
    let db = t.database();
    let recorder = Arc::new(Recorder::default());
    let listener = db.listen_for_changes(recorder.clone()).unwrap().unwrap();
    recorder.wait_for(0, |h| *h == Heard::Confirmed);
    assert_eq!(recorder.heard()[0], Heard::Lost, "starts unconfirmed");

    let user = stored_user(db, "ada@example.com");
    let (session, token) = stored_session(db, &user, SystemClock.now(), TimeDelta::days(1));
    // A rotation touches only last_refreshed_at: nothing to announce.
    let mark = recorder.heard().len();
    let now = SystemClock.now();
    db.rotate(
        token.id,
        &token_for(session.id, now),
        now,
        TimeDelta::zero(),
        &event(EventKind::Refresh),
    )
    .unwrap();
    db.revoke(session.id, RevocationReason::Logout, now)
        .unwrap();
    recorder.wait_for(mark, |h| *h == Heard::Changed(Change::Session(session.id)));
    let announced = recorder
        .heard()
        .iter()
        .filter(|h| **h == Heard::Changed(Change::Session(session.id)))
        .count();
    assert_eq!(
        announced,
        1,
        "the rotation was announced: {:?}",
        recorder.heard()
    );

    let mark = recorder.heard().len();
    let new = PasswordHash::new("another hash".into());
    assert!(
        db.replace_password_hash(user.id, &user.password_hash, &new, now)
            .unwrap()
    );
    recorder.wait_for(mark, |h| *h == Heard::Changed(Change::User(user.id)));

    // A change made outside Portcullis is announced too.
    let mark = recorder.heard().len();
    t.execute("TRUNCATE sessions CASCADE");
    recorder.wait_for(mark, |h| *h == Heard::Changed(Change::Everything));
    drop(listener);
}

#[test]
fn a_cut_connection_is_reported_then_replaced() {
    let t = TestDatabase::postgres();
    let recorder = Arc::new(Recorder::default());
    let listener = t
        .database()
        .listen_for_changes(recorder.clone())
        .unwrap()
        .unwrap();
    recorder.wait_for(0, |h| *h == Heard::Confirmed);

    let mark = recorder.heard().len();
    let cut = t.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE '%pg_notify%' \
         AND pid <> pg_backend_pid()",
    );
    assert_eq!(cut, 1);
    recorder.wait_for(mark, |h| *h == Heard::Lost);
    let lost_at = mark
        + recorder
            .heard()
            .iter()
            .skip(mark)
            .position(|h| *h == Heard::Lost)
            .unwrap();
    recorder.wait_for(lost_at, |h| *h == Heard::Confirmed);

    // Dropping the listener stops its thread, which says so last.
    drop(listener);
    assert_eq!(recorder.heard().last(), Some(&Heard::Lost));
}
