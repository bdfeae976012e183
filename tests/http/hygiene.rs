//! Headers and small affordances every client gets: `Cache-Control: no-store` on every
//! dialect answer (they carry tokens or user data), `X-Content-Type-Options: nosniff` on
//! every response, the reset token accepted in the body, and the session cookie read
//! as cookie-parser reads it.

use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::json;

use crate::support::app::{NewUserSpec, PASSWORD, TestApp, create_user};
use crate::support::backend::Backend;
use crate::support::client::Reply;

crate::on_backends! {
    both: [],
    sqlite: [
        every_answer_is_no_store_and_nosniff,
        the_reset_token_may_come_in_the_body,
        the_session_cookie_is_read_with_spaces_trimmed,
    ],
}

fn header<'r>(reply: &'r Reply, name: &str) -> Option<&'r str> {
    reply.headers.get(name).map(|v| v.to_str().unwrap())
}

async fn every_answer_is_no_store_and_nosniff(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    create_user(
        &app,
        NewUserSpec::new("ada@example.com").with_username("ada"),
    )
    .await;
    let answers = [
        app.login("ada@example.com", PASSWORD).await,
        app.login("ada@example.com", "wrong password").await,
        app.post(
            "/api/login",
            json!({"username": "ada", "password": PASSWORD}),
        )
        .await,
        app.post(
            "/auth/login",
            json!({"username": "ada", "password": PASSWORD}),
        )
        .await,
        app.post(
            "/api/v1/auth/login",
            json!({"user": "ada", "password": PASSWORD}),
        )
        .await,
        app.get("/api/user").await,
    ];
    for reply in &answers {
        assert_eq!(
            header(reply, "cache-control"),
            Some("no-store"),
            "{}",
            reply.text
        );
        assert_eq!(header(reply, "x-content-type-options"), Some("nosniff"));
    }
    for path in ["/healthz", "/no/such/path"] {
        let reply = app.get(path).await;
        assert_eq!(
            header(&reply, "x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
    }
}

async fn the_reset_token_may_come_in_the_body(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    create_user(&app, NewUserSpec::new("ada@example.com")).await;
    app.post("/auth/forgot-password", json!({"email": "ada@example.com"}))
        .await
        .expect(200);
    let secret = app.mailer.last_secret_for("ada@example.com").unwrap();
    app.post(
        "/auth/reset-password",
        json!({"password": "a new passphrase"}),
    )
    .await
    .expect_error(400, "\"token\" is required");
    app.post(
        "/auth/reset-password",
        json!({"password": "a new passphrase", "token": 7}),
    )
    .await
    .expect_error(400, "\"token\" must be a string");
    // The body's token wins over a stale one in the query string.
    app.post(
        "/auth/reset-password?token=stale",
        json!({"password": "a new passphrase", "token": secret}),
    )
    .await
    .expect(200);
    app.login("ada@example.com", "a new passphrase")
        .await
        .expect(200);
}

async fn the_session_cookie_is_read_with_spaces_trimmed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    create_user(
        &app,
        NewUserSpec::new("ada@example.com").with_username("ada"),
    )
    .await;
    let login = app
        .post(
            "/api/login",
            json!({"username": "ada", "password": PASSWORD}),
        )
        .await;
    let set = login.headers[SET_COOKIE].to_str().unwrap();
    let value = set
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("access_tokens=")
        .unwrap();
    let spaced = format!("other=1;  access_tokens  =  {value}  ; access_tokens=ignored");
    let me = app
        .send(app.client.get(app.url("/api/user")).header(COOKIE, spaced))
        .await;
    assert_eq!(me.expect(200)["username"], "ada");
}
