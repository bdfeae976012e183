//! The session cache across instances: two `portcullis` processes on one PostgreSQL,
//! each caching sessions and users. Whatever ends a session on one (logout, password
//! reset, refresh-token reuse, an operator's SQL) is refused by the other within 1 s,
//! also while the other's notification connection is being re-established.

use std::time::{Duration, Instant};

use crate::support::backend::Backend;
use crate::support::client::Api;
use crate::support::process::{Server, Session, TestDb};

const NAME: &str = "Ada Lovelace";
const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery staple";
const NEW_PASSWORD: &str = "a brand new passphrase";
/// The promise: a revocation anywhere is honoured everywhere within this.
const WITHIN: Duration = Duration::from_secs(1);

async fn registered(api: &Api, email: &str) -> Session {
    let reply = api.register(NAME, email, PASSWORD).await;
    Session::from_body(reply.expect(201), NAME, None, email)
}

/// Authenticates on `api` a few times, so that its cache holds the session and user.
async fn warm(api: &Api, session: &Session) {
    for _ in 0..3 {
        api.welcome(&session.tokens.access).await.expect(200);
    }
}

/// How long until `api` refuses `session`'s access token; fails after [`WITHIN`].
async fn refused_within_a_second(api: &Api, session: &Session) -> Duration {
    let started = Instant::now();
    loop {
        let reply = api.welcome(&session.tokens.access).await;
        if reply.status == 401 {
            return started.elapsed();
        }
        reply.expect(200);
        assert!(
            started.elapsed() < WITHIN,
            "still accepted {:?} after the revocation",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_logout_on_one_instance_is_refused_by_the_other_within_a_second() {
    let db = TestDb::new(Backend::Postgres);
    let (a, b) = (Server::start(&db), Server::start(&db));
    let (a, b) = (a.api(), b.api());
    let session = registered(&a, EMAIL).await;
    let bystander = registered(&a, "bob@example.com").await;
    warm(&b, &session).await;
    warm(&b, &bystander).await;

    a.logout(&session.tokens.refresh).await.expect(200);
    refused_within_a_second(&b, &session).await;
    // Only that session: the other user's, cached beside it, still works.
    b.welcome(&bystander.tokens.access).await.expect(200);
}

#[tokio::test]
async fn a_password_reset_on_one_instance_ends_the_sessions_cached_by_the_other() {
    let db = TestDb::new(Backend::Postgres);
    let server_a = Server::start(&db);
    let a = server_a.api();
    let session = registered(&a, EMAIL).await;
    // The link is taken from A's log before B starts, as B would deliver it too.
    let mark = server_a.logs().mark();
    a.forgot_password(EMAIL).await.expect(200);
    let token = server_a.logs().reset_token_after(mark, EMAIL);
    let server_b = Server::start(&db);
    let b = server_b.api();
    warm(&b, &session).await;

    a.reset_password(&token, NEW_PASSWORD).await.expect(200);
    refused_within_a_second(&b, &session).await;
    b.login(EMAIL, NEW_PASSWORD).await.expect(200);
}

#[tokio::test]
async fn refresh_token_reuse_on_one_instance_ends_the_session_on_the_other() {
    let db = TestDb::new(Backend::Postgres);
    let (a, b) = (Server::start(&db), Server::start(&db));
    let (a, b) = (a.api(), b.api());
    let session = registered(&a, EMAIL).await;
    a.refresh(&session.tokens.refresh).await.expect(200);
    warm(&b, &session).await;

    // The spent token again: a stolen family, so the whole session is revoked.
    a.refresh(&session.tokens.refresh).await.expect(401);
    refused_within_a_second(&b, &session).await;
}

#[tokio::test]
async fn a_revocation_made_in_sql_reaches_every_instance() {
    let db = TestDb::new(Backend::Postgres);
    let (a, b) = (Server::start(&db), Server::start(&db));
    let (a, b) = (a.api(), b.api());
    let session = registered(&a, EMAIL).await;
    warm(&a, &session).await;
    warm(&b, &session).await;

    db.execute("UPDATE sessions SET revoked_at = now(), revocation_reason = 'logout'");
    refused_within_a_second(&a, &session).await;
    refused_within_a_second(&b, &session).await;
}

#[tokio::test]
async fn revocations_are_honoured_while_the_notification_connection_is_replaced() {
    let db = TestDb::new(Backend::Postgres);
    let (a, b) = (Server::start(&db), Server::start(&db));
    let (a, b) = (a.api(), b.api());
    let session = registered(&a, EMAIL).await;
    let bystander = registered(&a, "bob@example.com").await;
    warm(&b, &session).await;

    // Both listeners' connections are cut (their last query was a probe); a logout
    // commits before they are back.
    let cut = db.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE '%pg_notify%' \
         AND pid <> pg_backend_pid()",
    );
    assert_eq!(cut, 2, "one listener per instance");
    a.logout(&session.tokens.refresh).await.expect(200);
    refused_within_a_second(&b, &session).await;
    // The listeners reconnect and the cache serves again, with nothing stale.
    b.welcome(&bystander.tokens.access).await.expect(200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    b.welcome(&session.tokens.access).await.expect(401);
    let back = db.execute(
        "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() \
         AND query LIKE '%pg_notify%' AND pid <> pg_backend_pid()",
    );
    assert_eq!(back, 2, "both listeners reconnected");
}

/// What proves the cache is in use: a change the database does not announce (its
/// trigger disabled, as no client of Portcullis can) goes unseen until the time to live.
#[tokio::test]
async fn an_unannounced_change_is_seen_only_when_the_entry_expires() {
    let db = TestDb::new(Backend::Postgres);
    let server = Server::start_with(&db, &[("PORTCULLIS_CACHE_TTL_SECS", "2")]);
    let api = server.api();
    let session = registered(&api, EMAIL).await;
    warm(&api, &session).await;

    db.execute("ALTER TABLE sessions DISABLE TRIGGER sessions_changed");
    db.execute("UPDATE sessions SET revoked_at = now(), revocation_reason = 'logout'");
    db.execute("ALTER TABLE sessions ENABLE TRIGGER sessions_changed");
    let started = Instant::now();
    api.welcome(&session.tokens.access).await.expect(200);
    loop {
        let reply = api.welcome(&session.tokens.access).await;
        if reply.status == 401 {
            break;
        }
        reply.expect(200);
        assert!(started.elapsed() < Duration::from_secs(4), "never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        started.elapsed() > Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}
