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
        a_stalled_body_gets_408_and_the_connection_closes,
        probes_answer_a_wrong_method_with_405,
        forwarded_headers_count_only_from_trusted_proxies,
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
    let secret = app.mail().await.last_secret_for("ada@example.com").unwrap();
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

/// A client that sends its headers and then stalls (or trickles) its body is answered
/// 408 in the dialect's format once the body timeout passes, and its connection closed,
/// so a few thousand such sockets cannot hold the server's file descriptors.
async fn a_stalled_body_gets_408_and_the_connection_closes(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = TestApp::spawn_with(backend, &[("PORTCULLIS_BODY_TIMEOUT_SECS", "1")]).await;
    let address = app.base.trim_start_matches("http://").to_owned();
    for (path, expected) in [
        (
            "/auth/register",
            "{\"code\":408,\"message\":\"Request body not received in time\"}",
        ),
        (
            "/api/login",
            "{\"errors\":[\"Request body not received in time\"]}",
        ),
    ] {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"email\":"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        // The server closes the connection after answering: read to the end, bounded.
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_end(&mut answer),
        )
        .await
        .expect("answered and closed within the timeout")
        .unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{answer}"
        );
        assert!(answer.ends_with(expected), "{answer}");
    }
}

async fn probes_answer_a_wrong_method_with_405(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for path in ["/healthz", "/readyz"] {
        let reply = app.post(path, json!({})).await;
        assert_eq!(reply.status.as_u16(), 405, "{path}: {}", reply.text);
        assert_eq!(header(&reply, "allow"), Some("GET"));
        assert_eq!(reply.body, json!({"status": "method not allowed"}));
    }
}

/// pocketbase's errors echo the URL called: a client's own `X-Forwarded-Host` is not
/// believed, a trusted proxy's is.
async fn forwarded_headers_count_only_from_trusted_proxies(backend: Backend) {
    for (trusted, expected_prefix) in [
        (None, "http://127.0.0.1:"),
        (Some("127.0.0.1"), "https://auth.example/auth/login"),
    ] {
        let overrides: Vec<(&str, &str)> = trusted
            .map(|t| ("PORTCULLIS_TRUSTED_PROXIES", t))
            .into_iter()
            .collect();
        let app = TestApp::spawn_with(backend, &overrides).await;
        let reply = app
            .send(
                app.client
                    .post(app.url("/auth/login"))
                    .header("x-forwarded-host", "auth.example")
                    .header("x-forwarded-proto", "https")
                    .json(&json!({"username": "nobody", "password": "wrong password"})),
            )
            .await;
        assert_eq!(reply.status.as_u16(), 400, "{}", reply.text);
        let url = reply.body["url"].as_str().unwrap();
        assert!(url.starts_with(expected_prefix), "{trusted:?}: {url}");
    }
}
