//! The authapi dialect (`001_*`): every row and error cell, over HTTP.

use chrono::{TimeDelta, Utc};
use portcullis_domain::TokenKind;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::app::{
    NOW_TOLERANCE_SECS, PASSWORD, TestApp, drop_database, expired_copy, parse_utc, tampered, token,
};
use crate::support::backend::Backend;
use crate::support::client::{is_uuid, sorted_keys};

crate::on_backends! {
    both: [
        register_rejects_a_taken_email_in_any_case,
        concurrent_registrations_of_one_email_give_one_account,
        login_by_email_in_any_case,
        refresh_rotates_the_pair,
        refresh_reuse_kills_the_session,
        concurrent_refreshes_with_one_token_give_one_pair,
        logout_refusals,
        reset_password_sets_the_password_and_ends_every_session,
        reset_password_refusals,
        health_endpoints,
    ],
    sqlite: [
        register_returns_the_user_and_a_token_pair,
        register_validation_errors,
        register_body_errors,
        login_failures_look_the_same,
        login_body_errors,
        welcome_needs_a_live_access_token,
        refresh_refusals,
        logout_kills_the_session_at_once,
        forgot_password_says_the_same_either_way,
        forgot_password_body_errors,
    ],
}

async fn register_returns_the_user_and_a_token_pair(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let before = Utc::now();
    let body = app.register("Ada@Example.com").await;
    let user = body["user"].as_object().unwrap();
    let keys: Vec<_> = user.keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 4, "exactly id, name, bio, email: {user:?}");
    assert!(is_uuid(body["user"]["id"].as_str().unwrap()));
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
        reply.expect_error(400, message);
        assert_eq!(reply.body["details"][0]["field"], field, "{}", reply.body);
        assert_eq!(reply.body["details"][0]["message"], message);
    }
    // A password equal to the email is refused.
    let mut body = valid.clone();
    body["password"] = json!("ada@example.com");
    body["confirm"] = json!("ada@example.com");
    app.post("/auth/register", body).await.expect_error(
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
    reply.expect_error(400, "\"name\" is required, \"email\" is required, \"password\" is required, \"confirm\" is required");
    assert_eq!(reply.body["details"].as_array().unwrap().len(), 4);
    let reply = app
        .post(
            "/auth/register",
            json!({"name": 5, "email": "a@example.com", "password": PASSWORD, "confirm": PASSWORD}),
        )
        .await;
    reply.expect_error(400, "\"name\" must be a string");
    app.post_raw("/auth/register", "{\"name\": ")
        .await
        .expect_error(400, "Malformed JSON body");
    app.post_raw("/auth/register", "[1, 2]")
        .await
        .expect_error(400, "Request body must be a JSON object");
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(17 * 1024));
    app.post_raw("/auth/register", huge)
        .await
        .expect_error(413, "Request body too large (limit 16384 bytes)");
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
        reply.expect_error(400, "Email already taken");
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
        reply.expect_error(400, "Email already taken");
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
        reply.expect_error(401, "Incorrect email or password");
    }
    assert_eq!(wrong.body, unknown.body);
}

async fn login_body_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.post("/auth/login", json!({"email": "a@example.com"}))
        .await
        .expect_error(400, "\"password\" is required");
    app.post("/auth/login", json!({"email": 1, "password": PASSWORD}))
        .await
        .expect_error(400, "\"email\" must be a string");
    app.post("/auth/login", json!({"email": "", "password": PASSWORD}))
        .await
        .expect_error(400, "\"email\" is not allowed to be empty");
    app.post_raw("/auth/login", "{oops")
        .await
        .expect_error(400, "Malformed JSON body");
    app.post_raw("/auth/login", "")
        .await
        .expect_error(400, "\"email\" is required, \"password\" is required");
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
    app.send(app.client.post(app.url("/auth")))
        .await
        .expect_error(401, "Please authenticate");
    for header in [
        "Bearer",
        "Bearer ",
        "Token abc",
        &access,
        &format!("Basic {access}"),
    ] {
        app.post_with_header("/auth", "Authorization", header)
            .await
            .expect_error(401, "Please authenticate");
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
        app.post_bearer("/auth", &bad)
            .await
            .expect_error(401, "Please authenticate");
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
    assert_eq!(sorted_keys(&reply.body), ["access", "refresh"]);
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
    replay.expect_error(401, "Please authenticate");
    // The whole family is dead: the newest refresh token and every access token.
    let newest = app
        .post(
            "/auth/refresh-tokens",
            json!({"refreshToken": token(&rotated.body, "refresh")}),
        )
        .await;
    newest.expect_error(401, "Please authenticate");
    app.post_bearer("/auth", &token(&rotated.body, "access"))
        .await
        .expect_error(401, "Please authenticate");
    app.post_bearer("/auth", &token(&body, "access"))
        .await
        .expect_error(401, "Please authenticate");
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
            reply.expect_error(400, "\"refreshToken\" is not allowed to be empty");
        } else {
            reply.expect_error(401, "Please authenticate");
        }
    }
    app.post("/auth/refresh-tokens", json!({}))
        .await
        .expect_error(400, "\"refreshToken\" is required");
    app.post_raw("/auth/refresh-tokens", "{")
        .await
        .expect_error(400, "Malformed JSON body");
    // After logout, the refresh token is revoked.
    let logout = app
        .post("/auth/logout", json!({"refreshToken": refresh}))
        .await;
    assert_eq!(logout.status, StatusCode::OK);
    app.post("/auth/refresh-tokens", json!({"refreshToken": refresh}))
        .await
        .expect_error(401, "Please authenticate");
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
        reply.expect_error(401, "Please authenticate");
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
    app.post_bearer("/auth", &token(&body, "access"))
        .await
        .expect_error(401, "Please authenticate");
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
        app.post("/auth/logout", case)
            .await
            .expect_error(400, "Invalid refresh token");
    }
    // Presenting the used token revoked the session: the rotated token is dead now too.
    app.post(
        "/auth/logout",
        json!({"refreshToken": token(&rotated.body, "refresh")}),
    )
    .await
    .expect_error(400, "Invalid refresh token");
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
        app.mail().await.count(),
        1,
        "only the registered address is mailed"
    );
    assert!(
        app.mail()
            .await
            .last_secret_for("ada@example.com")
            .is_some()
    );
}

async fn forgot_password_body_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.post("/auth/forgot-password", json!({}))
        .await
        .expect_error(400, "\"email\" is required");
    app.post("/auth/forgot-password", json!({"email": "nope"}))
        .await
        .expect_error(400, "Email must be a valid email address");
    app.post_raw("/auth/forgot-password", "nope")
        .await
        .expect_error(400, "Malformed JSON body");
}

async fn reset_password_sets_the_password_and_ends_every_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let first = app.register("ada@example.com").await;
    let second = app.login("ada@example.com", PASSWORD).await.body;
    app.post("/auth/forgot-password", json!({"email": "ada@example.com"}))
        .await;
    let secret = app.mail().await.last_secret_for("ada@example.com").unwrap();
    let reply = app
        .post(
            &format!("/auth/reset-password?token={secret}"),
            json!({"password": "a brand new secret"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body, json!({"message": "Password reset successful"}));
    for body in [&first, &second] {
        app.post_bearer("/auth", &token(body, "access"))
            .await
            .expect_error(401, "Please authenticate");
        app.post(
            "/auth/refresh-tokens",
            json!({"refreshToken": token(body, "refresh")}),
        )
        .await
        .expect_error(401, "Please authenticate");
    }
    app.login("ada@example.com", PASSWORD)
        .await
        .expect_error(401, "Incorrect email or password");
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
    again.expect_error(401, "Password reset failed");
}

async fn reset_password_refusals(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("PORTCULLIS_RESET_TOKEN_TTL_SECS", "1")]).await;
    app.register("ada@example.com").await;
    app.post(
        "/auth/reset-password",
        json!({"password": "long enough pw"}),
    )
    .await
    .expect_error(400, "\"token\" is required");
    app.post(
        "/auth/reset-password?token=",
        json!({"password": "long enough pw"}),
    )
    .await
    .expect_error(400, "\"token\" is required");
    app.post(
        "/auth/reset-password?token=unknown",
        json!({"password": "long enough pw"}),
    )
    .await
    .expect_error(401, "Password reset failed");
    app.post("/auth/forgot-password", json!({"email": "ada@example.com"}))
        .await;
    let secret = app.mail().await.last_secret_for("ada@example.com").unwrap();
    let path = format!("/auth/reset-password?token={secret}");
    app.post(&path, json!({"password": "short"}))
        .await
        .expect_error(400, "Password must be at least 8 characters");
    app.post(&path, json!({}))
        .await
        .expect_error(400, "\"password\" is required");
    app.post(&path, json!({"password": "ada@example.com"}))
        .await
        .expect_error(
            400,
            "Password must not be the same as the email or username",
        );
    // A newer link replaces the older one.
    app.post("/auth/forgot-password", json!({"email": "ada@example.com"}))
        .await;
    let newer = app.mail().await.last_secret_for("ada@example.com").unwrap();
    app.post(&path, json!({"password": "long enough pw"}))
        .await
        .expect_error(401, "Password reset failed");
    // An expired link (the TTL here is one second).
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    app.post(
        &format!("/auth/reset-password?token={newer}"),
        json!({"password": "long enough pw"}),
    )
    .await
    .expect_error(401, "Password reset failed");
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
    let TestApp { api, database, .. } = app;
    drop_database(database).await;
    let ready = api.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.body, json!({"status": "unavailable"}));
    // Liveness is unaffected, and a use case fails cleanly with the dialect's 500.
    assert_eq!(api.get("/healthz").await.status, StatusCode::OK);
    api.login("ada@example.com", PASSWORD)
        .await
        .expect_error(500, "Internal server error");
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
        app.post_raw(path, huge.clone())
            .await
            .expect_error(413, "Request body too large (limit 16384 bytes)");
    }
}
