//! One server, four dialects: shared paths go by the body's marker key, and otherwise to
//! the path's owner; configuration enables dialects and mounts them under prefixes.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::app::{PASSWORD, TestApp};
use crate::support::backend::Backend;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_login_goes_by_the_body_key() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.register("ada@example.com").await;

    // `email`: authapi.
    let authapi = app.login("ada@example.com", PASSWORD).await;
    assert_eq!(authapi.status, StatusCode::OK);
    assert!(
        authapi.body["tokens"]["access"]["token"].is_string(),
        "{}",
        authapi.body
    );

    // `username`: pocketbase.
    let pocketbase = app
        .post(
            "/auth/login",
            json!({"username": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(pocketbase.status, StatusCode::OK, "{}", pocketbase.body);
    assert_eq!(pocketbase.body["record"]["email"], "ada@example.com");
    assert!(pocketbase.body["token"].is_string());

    // Both keys: the owner's (authapi) wins.
    let both = app
        .post(
            "/auth/login",
            json!({"email": "ada@example.com", "username": "x", "password": PASSWORD}),
        )
        .await;
    assert!(both.body["tokens"].is_object(), "{}", both.body);

    // No key, an empty body, malformed JSON: the owner's errors.
    app.post("/auth/login", json!({"password": PASSWORD}))
        .await
        .expect_error(400, "\"email\" is required");
    app.post_raw("/auth/login", "")
        .await
        .expect_error(400, "\"email\" is required, \"password\" is required");
    app.post_raw("/auth/login", "{nope")
        .await
        .expect_error(400, "Malformed JSON body");

    // pocketbase's failures keep its own shape.
    let wrong = app
        .post(
            "/auth/login",
            json!({"username": "ada@example.com", "password": "wrong pass"}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert_eq!(wrong.body["response"]["message"], "Failed to authenticate.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cbs_and_a_prefixed_pocketbase_share_api_v1() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[("PORTCULLIS_POCKETBASE_PREFIX", "/api/v1")],
    )
    .await;
    app.register("ada@example.com").await;
    let path = "/api/v1/auth/login";

    let cbs = app
        .post(
            path,
            json!({"user": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(cbs.status, StatusCode::OK, "{}", cbs.body);
    assert_eq!(cbs.body["code"], 0);
    assert_eq!(cbs.body["result"]["token_type"], "Bearer");

    let pocketbase = app
        .post(
            path,
            json!({"username": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(pocketbase.status, StatusCode::OK, "{}", pocketbase.body);
    assert_eq!(pocketbase.body["record"]["email"], "ada@example.com");

    // No key, empty, malformed: cbs owns the path.
    for reply in [
        app.post(path, json!({"password": PASSWORD})).await,
        app.post_raw(path, "").await,
        app.post_raw(path, "{nope").await,
    ] {
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
        assert_eq!(reply.body["code"], 1001, "{}", reply.body);
    }

    // pocketbase left `/auth/login`, which authapi now has alone.
    let moved = app
        .post(
            "/auth/login",
            json!({"username": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    moved.expect_error(400, "\"email\" is required");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_enabled_dialects_are_served() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("PORTCULLIS_DIALECTS", "authapi"),
            ("PORTCULLIS_AUTHAPI_PREFIX", "/v2"),
        ],
    )
    .await;
    for path in [
        "/users/login",
        "/api/login",
        "/api/v1/auth/login",
        "/auth/register",
    ] {
        let reply = app.post(path, json!({})).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
    }
    let reply = app
        .post(
            "/v2/auth/register",
            json!({"name": "Ada", "email": "ada@example.com", "password": PASSWORD, "confirm": PASSWORD}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    // pocketbase is off: a `username` body at authapi's login is authapi's.
    let reply = app
        .post(
            "/v2/auth/login",
            json!({"username": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    reply.expect_error(400, "\"email\" is required");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pocketbase_alone_owns_auth_login() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("PORTCULLIS_DIALECTS", "pocketbase")]).await;
    let reply = app.post_raw("/auth/login", "{nope").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body["response"]["message"], "Invalid json",
        "{}",
        reply.body
    );
    let reply = app
        .post(
            "/auth/login",
            json!({"email": "a@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body["response"]["data"]["username"]["code"], "validation_required",
        "{}",
        reply.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_method_is_405_in_the_path_owners_format() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let send =
        |method: reqwest::Method, path: &str| app.client.request(method, app.url(path)).send();

    // authapi owns /auth/login (shared with pocketbase).
    let reply = send(reqwest::Method::GET, "/auth/login").await.unwrap();
    assert_eq!(reply.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.headers()["allow"], "POST");
    assert_eq!(
        reply.json::<serde_json::Value>().await.unwrap(),
        json!({"code": 405, "message": "Method not allowed"})
    );

    // ioweyou: GET-only and POST-only paths.
    let reply = send(reqwest::Method::POST, "/api/user").await.unwrap();
    assert_eq!(reply.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.headers()["allow"], "GET");
    assert_eq!(
        reply.json::<serde_json::Value>().await.unwrap(),
        json!({"errors": ["Method not allowed"]})
    );

    // cbs.
    let reply = send(reqwest::Method::DELETE, "/api/v1/auth/refresh")
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        reply.json::<serde_json::Value>().await.unwrap(),
        json!({"code": 1001, "desc": "Method not allowed", "error": "invalid_request"})
    );

    // Unknown paths stay plain 404s: no dialect owns them.
    let reply = send(reqwest::Method::GET, "/nowhere").await.unwrap();
    assert_eq!(reply.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_method_on_a_pocketbase_path_is_the_sdk_shape() {
    let app =
        TestApp::spawn_with(Backend::Sqlite, &[("PORTCULLIS_POCKETBASE_PREFIX", "/pb")]).await;
    let reply = app
        .client
        .get(app.url("/pb/auth/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body = reply.json::<serde_json::Value>().await.unwrap();
    assert_eq!(body["status"], 405);
    assert_eq!(body["name"], "ClientResponseError 405");
    assert_eq!(body["response"]["message"], "Method not allowed.");
    assert!(body["url"].as_str().unwrap().ends_with("/pb/auth/login"));
}
