//! The authapi dialect (`001_*`): every row and error cell, over HTTP, on both databases.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use chrono::{TimeDelta, Utc};
use portcullis_domain::TokenKind;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{
    Backend, NOW_TOLERANCE_SECS, PASSWORD, TestApp, assert_error, drop_database, expired_copy,
    parse_utc, tampered, token,
};

on_both_backends!(
    register_returns_the_user_and_a_token_pair,
    register_validation_errors,
    register_body_errors,
    register_rejects_a_taken_email_in_any_case,
    concurrent_registrations_of_one_email_give_one_account,
    login_by_email_in_any_case,
    login_failures_look_the_same,
    login_body_errors,
    welcome_needs_a_live_access_token,
    refresh_rotates_the_pair,
    refresh_reuse_kills_the_session,
    refresh_refusals,
    concurrent_refreshes_with_one_token_give_one_pair,
    logout_kills_the_session_at_once,
    logout_refusals,
    forgot_password_says_the_same_either_way,
    forgot_password_body_errors,
    reset_password_sets_the_password_and_ends_every_session,
    reset_password_refusals,
    health_endpoints,
);

async fn register_returns_the_user_and_a_token_pair(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let before = Utc::now();
    let body = app.register("Ada@Example.com").await;
    let user = body["user"].as_object().unwrap();
    let keys: Vec<_> = user.keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 4, "exactly id, name, bio, email: {user:?}");
    assert!(uuid_like(&body["user"]["id"]));
    assert_eq!(body["user"]["name"], "Ada Lovelace");
    assert_eq!(body["user"]["bio"], "Analyst");
    assert_eq!(body["user"]["email"], "ada@example.com");
    let access_expires = parse_utc(body["tokens"]["access"]["expires"].as_str().unwrap());
    let refresh_expires = parse_utc(body["tokens"]["refresh"]["expires"].as_str().unwrap());
    assert!(
        (access_expires - before - TimeDelta::seconds(1800))
            .num_seconds()
            .abs()
            < NOW_TOLERANCE_SECS
    );
    assert!(
        (refresh_expires - before - TimeDelta::days(14))
            .num_seconds()
            .abs()
            < NOW_TOLERANCE_SECS
    );
    assert!(
        body["tokens"]["access"]["expires"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_ne!(token(&body, "access"), token(&body, "refresh"));
    // A null bio is allowed and shown as null.
    let reply = app
        .post(
            "/auth/register",
            json!({"name": "Bo", "bio": null, "email": "bo@example.com", "password": PASSWORD, "confirm": PASSWORD}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.body["user"]["bio"], Value::Null);
    // The token pair works at once.
    let welcome = app.post_bearer("/auth", &token(&body, "access")).await;
    assert_eq!(welcome.status, StatusCode::OK);
}

fn uuid_like(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4)
}

async fn register_validation_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let valid = json!({"name": "Ada", "bio": "x", "email": "ada@example.com", "password": PASSWORD, "confirm": PASSWORD});
    let cases: [(&str, Value, &str); 7] = [
        ("name", json!("   "), "Name is required"),
        (
            "name",
            json!("n".repeat(101)),
            "Name must be at most 100 characters",
        ),
        (
            "bio",
            json!("b".repeat(501)),
            "Bio must be at most 500 characters",
        ),
        (
            "email",
            json!("not-an-email"),
            "Email must be a valid email address",
        ),
        (
            "password",
            json!("short"),
            "Password must be at least 8 characters",
        ),
        (
            "password",
            json!("p".repeat(257)),
            "Password must be at most 256 characters",
        ),
        ("confirm", json!("something else"), "Passwords don't match"),
    ];
    for (field, value, message) in cases {
        let mut body = valid.clone();
        body[field] = value.clone();
        if field == "password" {
            body["confirm"] = value;
        }
        let reply = app.post("/auth/register", body).await;
        assert_error(&reply, 400, message);
        assert_eq!(reply.body["details"][0]["field"], field, "{}", reply.body);
        assert_eq!(reply.body["details"][0]["message"], message);
    }
    // A password equal to the email is refused.
    let mut body = valid.clone();
    body["password"] = json!("ada@example.com");
    body["confirm"] = json!("ada@example.com");
    assert_error(
        &app.post("/auth/register", body).await,
        400,
        "Password must not be the same as the email or username",
    );
    // Every problem is listed at once.
    let reply = app
        .post(
            "/auth/register",
            json!({"name": "  ", "email": "x", "password": "short", "confirm": "other"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let fields: Vec<_> = reply.body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].clone())
        .collect();
    assert_eq!(
        fields,
        [
            json!("name"),
            json!("email"),
            json!("password"),
            json!("confirm")
        ],
        "{}",
        reply.body
    );
    assert_eq!(
        reply.body["message"],
        "Name is required, Email must be a valid email address, Password must be at least 8 characters, Passwords don't match"
    );
    // Nothing was created by any of these.
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
}

async fn register_body_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let reply = app.post("/auth/register", json!({})).await;
    assert_error(
        &reply,
        400,
        "\"name\" is required, \"email\" is required, \"password\" is required, \"confirm\" is required",
    );
    assert_eq!(reply.body["details"].as_array().unwrap().len(), 4);
    let reply = app
        .post(
            "/auth/register",
            json!({"name": 5, "email": "a@example.com", "password": PASSWORD, "confirm": PASSWORD}),
        )
        .await;
    assert_error(&reply, 400, "\"name\" must be a string");
    assert_error(
        &app.post_raw("/auth/register", "{\"name\": ").await,
        400,
        "Malformed JSON body",
    );
    assert_error(
        &app.post_raw("/auth/register", "[1, 2]").await,
        400,
        "Request body must be a JSON object",
    );
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(17 * 1024));
    assert_error(
        &app.post_raw("/auth/register", huge).await,
        413,
        "Request body too large (limit 16384 bytes)",
    );
}

async fn register_rejects_a_taken_email_in_any_case(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada@example.com").await;
    for email in ["ada@example.com", "ADA@Example.COM"] {
        let reply = app
            .post(
                "/auth/register",
                json!({"name": "Imposter", "email": email, "password": PASSWORD, "confirm": PASSWORD}),
            )
            .await;
        assert_error(&reply, 400, "Email already taken");
    }
}

async fn concurrent_registrations_of_one_email_give_one_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let attempts = (0..8).map(|i| {
        app.post(
            "/auth/register",
            json!({"name": format!("Racer {i}"), "email": "race@example.com", "password": PASSWORD, "confirm": PASSWORD}),
        )
    });
    let replies = futures::future::join_all(attempts).await;
    let created = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "exactly one registration wins");
    for reply in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        assert_error(reply, 400, "Email already taken");
    }
}

async fn login_by_email_in_any_case(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada@example.com").await;
    let reply = app.login("ADA@example.com", PASSWORD).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["user"]["email"], "ada@example.com");
    assert_eq!(reply.body["user"]["name"], "Ada Lovelace");
    let welcome = app
        .post_bearer("/auth", &token(&reply.body, "access"))
        .await;
    assert_eq!(welcome.status, StatusCode::OK);
}

async fn login_failures_look_the_same(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada@example.com").await;
    let wrong = app.login("ada@example.com", "wrong password").await;
    let unknown = app.login("ghost@example.com", PASSWORD).await;
    let nonsense = app.login("not an identifier!", PASSWORD).await;
    for reply in [&wrong, &unknown, &nonsense] {
        assert_error(reply, 401, "Incorrect email or password");
    }
    assert_eq!(wrong.body, unknown.body);
}

async fn login_body_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_error(
        &app.post("/auth/login", json!({"email": "a@example.com"}))
            .await,
        400,
        "\"password\" is required",
    );
    assert_error(
        &app.post("/auth/login", json!({"email": 1, "password": PASSWORD}))
            .await,
        400,
        "\"email\" must be a string",
    );
    assert_error(
        &app.post("/auth/login", json!({"email": "", "password": PASSWORD}))
            .await,
        400,
        "\"email\" is not allowed to be empty",
    );
    assert_error(
        &app.post_raw("/auth/login", "{oops").await,
        400,
        "Malformed JSON body",
    );
    assert_error(
        &app.post_raw("/auth/login", "").await,
        400,
        "\"email\" is required, \"password\" is required",
    );
    let huge = format!("{{\"email\": \"{}\"}}", "x".repeat(20_000));
    assert_eq!(
        app.post_raw("/auth/login", huge).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

async fn welcome_needs_a_live_access_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = app.register("ada@example.com").await;
    let access = token(&body, "access");
    let reply = app.post_bearer("/auth", &access).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.body,
        json!({"message": "Welcome authenticated user",
               "user": {"name": "Ada Lovelace", "bio": "Analyst", "email": "ada@example.com"}})
    );
    // Missing and malformed headers.
    let no_header = app.client.post(app.url("/auth")).send().await.unwrap();
    assert_eq!(no_header.status(), StatusCode::UNAUTHORIZED);
    let body_of = no_header.json::<Value>().await.unwrap();
    assert_eq!(
        body_of,
        json!({"code": 401, "message": "Please authenticate"})
    );
    for header in [
        "Bearer",
        "Bearer ",
        "Token abc",
        &access,
        &format!("Basic {access}"),
    ] {
        assert_error(
            &app.post_with_header("/auth", "Authorization", header).await,
            401,
            "Please authenticate",
        );
    }
    // The scheme is case-insensitive.
    let lower = app
        .post_with_header("/auth", "Authorization", &format!("bearer {access}"))
        .await;
    assert_eq!(lower.status, StatusCode::OK);
    // Garbage, a bad signature, a refresh token, an expired token.
    for bad in [
        "garbage".to_owned(),
        tampered(&access),
        token(&body, "refresh"),
        expired_copy(&access, TokenKind::Access),
    ] {
        assert_error(
            &app.post_bearer("/auth", &bad).await,
            401,
            "Please authenticate",
        );
    }
}

async fn refresh_rotates_the_pair(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = app.register("ada@example.com").await;
    let reply = app
        .post(
            "/auth/refresh-tokens",
            json!({"refreshToken": token(&body, "refresh")}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let keys: Vec<_> = reply.body.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["access", "refresh"]);
    assert_ne!(token(&reply.body, "refresh"), token(&body, "refresh"));
    parse_utc(reply.body["access"]["expires"].as_str().unwrap());
    // The new pair works, and so does the first access token (same live session).
    assert_eq!(
        app.post_bearer("/auth", &token(&reply.body, "access"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.post_bearer("/auth", &token(&body, "access"))
            .await
            .status,
        StatusCode::OK
    );
    // And the new refresh token rotates again.
    let again = app
        .post(
            "/auth/refresh-tokens",
            json!({"refreshToken": token(&reply.body, "refresh")}),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
}

async fn refresh_reuse_kills_the_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = app.register("ada@example.com").await;
    let first = token(&body, "refresh");
    let rotated = app
        .post("/auth/refresh-tokens", json!({"refreshToken": first}))
        .await;
    assert_eq!(rotated.status, StatusCode::OK);
    let replay = app
        .post("/auth/refresh-tokens", json!({"refreshToken": first}))
        .await;
    assert_error(&replay, 401, "Please authenticate");
    // The whole family is dead: the newest refresh token and every access token.
    let newest = app
        .post(
            "/auth/refresh-tokens",
            json!({"refreshToken": token(&rotated.body, "refresh")}),
        )
        .await;
    assert_error(&newest, 401, "Please authenticate");
    assert_error(
        &app.post_bearer("/auth", &token(&rotated.body, "access"))
            .await,
        401,
        "Please authenticate",
    );
    assert_error(
        &app.post_bearer("/auth", &token(&body, "access")).await,
        401,
        "Please authenticate",
    );
    // Other sessions of the user are untouched.
    let other = app.login("ada@example.com", PASSWORD).await;
    assert_eq!(
        app.post_bearer("/auth", &token(&other.body, "access"))
            .await
            .status,
        StatusCode::OK
    );
}

async fn refresh_refusals(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = app.register("ada@example.com").await;
    let refresh = token(&body, "refresh");
    for bad in [
        "garbage".to_owned(),
        String::new(),
        token(&body, "access"),
        expired_copy(&refresh, TokenKind::Refresh),
    ] {
        let reply = app
            .post("/auth/refresh-tokens", json!({"refreshToken": bad}))
            .await;
        if bad.is_empty() {
            assert_error(&reply, 400, "\"refreshToken\" is not allowed to be empty");
        } else {
            assert_error(&reply, 401, "Please authenticate");
        }
    }
    assert_error(
        &app.post("/auth/refresh-tokens", json!({})).await,
        400,
        "\"refreshToken\" is required",
    );
    assert_error(
        &app.post_raw("/auth/refresh-tokens", "{").await,
        400,
        "Malformed JSON body",
    );
    // After logout, the refresh token is revoked.
    let logout = app
        .post("/auth/logout", json!({"refreshToken": refresh}))
        .await;
    assert_eq!(logout.status, StatusCode::OK);
    assert_error(
        &app.post("/auth/refresh-tokens", json!({"refreshToken": refresh}))
            .await,
        401,
        "Please authenticate",
    );
}

async fn concurrent_refreshes_with_one_token_give_one_pair(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = app.register("ada@example.com").await;
    let refresh = token(&body, "refresh");
    let replies = futures::future::join_all(
        (0..8).map(|_| app.post("/auth/refresh-tokens", json!({"refreshToken": refresh}))),
    )
    .await;
    let ok = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    assert_eq!(ok, 1, "exactly one rotation wins");
    for reply in replies.iter().filter(|r| r.status != StatusCode::OK) {
        assert_error(reply, 401, "Please authenticate");
    }
}

async fn logout_kills_the_session_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = app.register("ada@example.com").await;
    let other = app.login("ada@example.com", PASSWORD).await;
    let reply = app
        .post(
            "/auth/logout",
            json!({"refreshToken": token(&body, "refresh")}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, json!({"message": "Logout successful"}));
    assert_error(
        &app.post_bearer("/auth", &token(&body, "access")).await,
        401,
        "Please authenticate",
    );
    // Only that session ended.
    assert_eq!(
        app.post_bearer("/auth", &token(&other.body, "access"))
            .await
            .status,
        StatusCode::OK
    );
}

async fn logout_refusals(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = app.register("ada@example.com").await;
    let refresh = token(&body, "refresh");
    let rotated = app
        .post("/auth/refresh-tokens", json!({"refreshToken": refresh}))
        .await;
    let cases = [
        json!({}),
        json!({"refreshToken": 42}),
        json!({"refreshToken": ""}),
        json!({"refreshToken": "garbage"}),
        json!({"refreshToken": token(&body, "access")}),
        json!({"refreshToken": expired_copy(&token(&rotated.body, "refresh"), TokenKind::Refresh)}),
        // Already used by the rotation above.
        json!({"refreshToken": refresh}),
    ];
    for case in cases {
        assert_error(
            &app.post("/auth/logout", case).await,
            400,
            "Invalid refresh token",
        );
    }
    // Presenting the used token revoked the session: the rotated token is dead now too.
    assert_error(
        &app.post(
            "/auth/logout",
            json!({"refreshToken": token(&rotated.body, "refresh")}),
        )
        .await,
        400,
        "Invalid refresh token",
    );
    assert_eq!(
        app.post_raw("/auth/logout", "{").await.status,
        StatusCode::BAD_REQUEST
    );
}

async fn forgot_password_says_the_same_either_way(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada@example.com").await;
    let known = app
        .post("/auth/forgot-password", json!({"email": "ADA@example.com"}))
        .await;
    let unknown = app
        .post(
            "/auth/forgot-password",
            json!({"email": "ghost@example.com"}),
        )
        .await;
    for reply in [&known, &unknown] {
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(
            reply.body,
            json!({"message": "If that email is registered, a reset link has been sent"})
        );
    }
    assert_eq!(
        app.mailer.count(),
        1,
        "only the registered address is mailed"
    );
    assert!(app.mailer.last_secret_for("ada@example.com").is_some());
}

async fn forgot_password_body_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_error(
        &app.post("/auth/forgot-password", json!({})).await,
        400,
        "\"email\" is required",
    );
    assert_error(
        &app.post("/auth/forgot-password", json!({"email": "nope"}))
            .await,
        400,
        "Email must be a valid email address",
    );
    assert_error(
        &app.post_raw("/auth/forgot-password", "nope").await,
        400,
        "Malformed JSON body",
    );
}

async fn reset_password_sets_the_password_and_ends_every_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let first = app.register("ada@example.com").await;
    let second = app.login("ada@example.com", PASSWORD).await.body;
    app.post("/auth/forgot-password", json!({"email": "ada@example.com"}))
        .await;
    let secret = app.mailer.last_secret_for("ada@example.com").unwrap();
    let reply = app
        .post(
            &format!("/auth/reset-password?token={secret}"),
            json!({"password": "a brand new secret"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body, json!({"message": "Password reset successful"}));
    for body in [&first, &second] {
        assert_error(
            &app.post_bearer("/auth", &token(body, "access")).await,
            401,
            "Please authenticate",
        );
        assert_error(
            &app.post(
                "/auth/refresh-tokens",
                json!({"refreshToken": token(body, "refresh")}),
            )
            .await,
            401,
            "Please authenticate",
        );
    }
    assert_error(
        &app.login("ada@example.com", PASSWORD).await,
        401,
        "Incorrect email or password",
    );
    assert_eq!(
        app.login("ada@example.com", "a brand new secret")
            .await
            .status,
        StatusCode::OK
    );
    // Single use.
    let again = app
        .post(
            &format!("/auth/reset-password?token={secret}"),
            json!({"password": "yet another secret"}),
        )
        .await;
    assert_error(&again, 401, "Password reset failed");
}

async fn reset_password_refusals(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("PORTCULLIS_RESET_TOKEN_TTL_SECS", "1")]).await;
    app.register("ada@example.com").await;
    assert_error(
        &app.post(
            "/auth/reset-password",
            json!({"password": "long enough pw"}),
        )
        .await,
        400,
        "\"token\" is required",
    );
    assert_error(
        &app.post(
            "/auth/reset-password?token=",
            json!({"password": "long enough pw"}),
        )
        .await,
        400,
        "\"token\" is required",
    );
    assert_error(
        &app.post(
            "/auth/reset-password?token=unknown",
            json!({"password": "long enough pw"}),
        )
        .await,
        401,
        "Password reset failed",
    );
    app.post("/auth/forgot-password", json!({"email": "ada@example.com"}))
        .await;
    let secret = app.mailer.last_secret_for("ada@example.com").unwrap();
    let path = format!("/auth/reset-password?token={secret}");
    assert_error(
        &app.post(&path, json!({"password": "short"})).await,
        400,
        "Password must be at least 8 characters",
    );
    assert_error(
        &app.post(&path, json!({})).await,
        400,
        "\"password\" is required",
    );
    assert_error(
        &app.post(&path, json!({"password": "ada@example.com"}))
            .await,
        400,
        "Password must not be the same as the email or username",
    );
    // A newer link replaces the older one.
    app.post("/auth/forgot-password", json!({"email": "ada@example.com"}))
        .await;
    let newer = app.mailer.last_secret_for("ada@example.com").unwrap();
    assert_error(
        &app.post(&path, json!({"password": "long enough pw"})).await,
        401,
        "Password reset failed",
    );
    // An expired link (the TTL here is one second).
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_error(
        &app.post(
            &format!("/auth/reset-password?token={newer}"),
            json!({"password": "long enough pw"}),
        )
        .await,
        401,
        "Password reset failed",
    );
    // The password was never changed by any of these.
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
}

async fn health_endpoints(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.body, json!({"status": "ok"}));
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.body, json!({"status": "ready"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_when_the_database_is_gone() {
    let app = TestApp::spawn(Backend::Postgres).await;
    assert_eq!(app.get("/readyz").await.status, StatusCode::OK);
    let TestApp {
        base,
        client,
        database,
        ..
    } = app;
    drop_database(database).await;
    let reply = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(reply.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        reply.json::<Value>().await.unwrap(),
        json!({"status": "unavailable"})
    );
    // Liveness is unaffected, and a use case fails cleanly with the dialect's 500.
    assert_eq!(
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let login = client
        .post(format!("{base}/auth/login"))
        .json(&json!({"email": "ada@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        login.json::<Value>().await.unwrap(),
        json!({"code": 500, "message": "Internal server error"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_413_on_every_endpoint() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let huge = format!("{{\"x\": \"{}\"}}", "x".repeat(16 * 1024));
    for path in [
        "/auth/register",
        "/auth/login",
        "/auth/logout",
        "/auth/refresh-tokens",
        "/auth/forgot-password",
        "/auth/reset-password?token=t",
    ] {
        assert_error(
            &app.post_raw(path, huge.clone()).await,
            413,
            "Request body too large (limit 16384 bytes)",
        );
    }
}
