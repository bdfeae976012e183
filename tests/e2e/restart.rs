//! With no `PORTCULLIS_JWT_SECRET`, the server generates a signing key on first start
//! and keeps it in the database: tokens issued before a restart still work after it.

use serde_json::json;

use crate::support::backend::Backend;
use crate::support::process::{Server, Session, TestDb, Tokens};

#[tokio::test]
async fn tokens_survive_a_restart_with_the_generated_secret() {
    let db = TestDb::sqlite_plain_path();

    let server = Server::start(&db);
    let api = server.api();
    let reply = api
        .register(
            "Grace Hopper",
            "grace@example.com",
            "a ship in port is safe",
        )
        .await;
    let session = Session::from_body(reply.expect(201), "Grace Hopper", None, "grace@example.com");
    api.welcome(&session.tokens.access).await.expect(200);
    let logs = server.logs().clone();
    let status = server.stop();
    assert!(
        status.success(),
        "SIGTERM: the server exited with {status}; log:\n{}",
        logs.text()
    );
    assert!(
        logs.text().contains("portcullis stopped"),
        "no graceful-shutdown line in the log:\n{}",
        logs.text()
    );
    assert!(
        db.sqlite_path().is_some_and(|p| p.is_file()),
        "the SQLite file was not created"
    );

    // Same file, new process: the old access token still authenticates, and the old
    // refresh token still rotates.
    let server = Server::start(&db);
    let api = server.api();
    let reply = api.welcome(&session.tokens.access).await;
    assert_eq!(
        reply.expect(200),
        &json!({
            "message": "Welcome authenticated user",
            "user": {"name": "Grace Hopper", "bio": null, "email": "grace@example.com"},
        })
    );
    let reply = api.refresh(&session.tokens.refresh).await;
    let rotated = Tokens::from_body(reply.expect(200));
    api.welcome(&rotated.access).await.expect(200);
    let status = server.stop();
    assert!(status.success(), "SIGTERM: the server exited with {status}");
}

#[tokio::test]
async fn tokens_do_not_survive_a_change_of_secret() {
    let db = TestDb::new(Backend::Sqlite);
    let secret_a = [(
        "PORTCULLIS_JWT_SECRET",
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    )];
    let secret_b = [(
        "PORTCULLIS_JWT_SECRET",
        "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=",
    )];

    let server = Server::start_with(&db, &secret_a);
    let reply = server
        .api()
        .register(
            "Grace Hopper",
            "grace@example.com",
            "a ship in port is safe",
        )
        .await;
    let session = Session::from_body(reply.expect(201), "Grace Hopper", None, "grace@example.com");
    drop(server);

    // Another key: the token is refused. This is what makes the test above meaningful.
    let server = Server::start_with(&db, &secret_b);
    server
        .api()
        .welcome(&session.tokens.access)
        .await
        .expect_error(401, "Please authenticate");
    drop(server);

    // The same key again: accepted.
    let server = Server::start_with(&db, &secret_a);
    server
        .api()
        .welcome(&session.tokens.access)
        .await
        .expect(200);
}
