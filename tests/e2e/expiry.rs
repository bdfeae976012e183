//! Lifetimes, shortened through the environment so that expiry happens during the test.

use std::time::Duration;

use crate::support::backend::Backend;
use crate::support::process::{Server, Session, TestDb, Tokens};

const NAME: &str = "Katherine Johnson";
const EMAIL: &str = "katherine@example.com";
const PASSWORD: &str = "hidden figures 1962";

async fn register(server: &Server<'_>) -> Session {
    let reply = server.api().register(NAME, EMAIL, PASSWORD).await;
    Session::from_body(reply.expect(201), NAME, None, EMAIL)
}

#[tokio::test]
async fn an_expired_access_token_is_refused_and_refresh_still_works() {
    let db = TestDb::new(Backend::Sqlite);
    // JWT expiry has whole-second resolution, so a token lives between TTL - 1 and TTL
    // seconds: 3 leaves the checks before expiry (at least) two seconds.
    let server = Server::start_with(
        &db,
        &[
            ("PORTCULLIS_ACCESS_TOKEN_TTL_SECS", "3"),
            ("PORTCULLIS_JWT_LEEWAY_SECS", "0"),
        ],
    );
    let api = server.api();
    let session = register(&server).await;
    api.welcome(&session.tokens.access).await.expect(200);

    tokio::time::sleep(Duration::from_millis(4100)).await;
    api.welcome(&session.tokens.access)
        .await
        .expect_error(401, "Please authenticate");
    let reply = api.refresh(&session.tokens.refresh).await;
    let rotated = Tokens::from_body(reply.expect(200));
    api.welcome(&rotated.access).await.expect(200);
}

#[tokio::test]
async fn an_expired_reset_token_is_refused() {
    let db = TestDb::new(Backend::Sqlite);
    let server = Server::start_with(&db, &[("PORTCULLIS_RESET_TOKEN_TTL_SECS", "3")]);
    let api = server.api();
    register(&server).await;

    // Used at once, a token works ...
    let mark = server.logs().mark();
    api.forgot_password(EMAIL).await.expect(200);
    let fresh = server.logs().reset_token_after(mark, EMAIL);
    api.reset_password(&fresh, "first new password")
        .await
        .expect(200);

    // ... used after its lifetime, it does not, and the password stays as it was.
    let mark = server.logs().mark();
    api.forgot_password(EMAIL).await.expect(200);
    let stale = server.logs().reset_token_after(mark, EMAIL);
    assert_ne!(stale, fresh);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    api.reset_password(&stale, "second new password")
        .await
        .expect_error(401, "Password reset failed");
    api.login(EMAIL, "first new password").await.expect(200);
    api.login(EMAIL, "second new password")
        .await
        .expect_error(401, "Incorrect email or password");
}
