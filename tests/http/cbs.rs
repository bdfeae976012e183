//! The cbs dialect (`003_*`): every row and error cell, over HTTP.

use portcullis_domain::{Clock, SystemClock, TokenCodec, TokenKind};
use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};

use crate::support::app::{
    NewUserSpec, PASSWORD, TestApp, claims_of, codec_with, create_user, drop_database,
    expired_copy, tampered, token,
};
use crate::support::backend::Backend;
use crate::support::client::Reply;

crate::on_backends! {
    both: [
        login_by_email_returns_the_token_pair,
        login_redirects_until_the_password_is_reset,
        login_tokens_carry_the_identifier_as_stored,
        refresh_rotates_the_pair,
        refresh_reuse_revokes_the_session,
        login_path_with_a_refresh_body_acts_as_refresh,
        refresh_tokens_cross_dialects,
        expires_in_is_cut_short_by_the_session_lifetime,
    ],
    sqlite: [
        login_by_username_returns_the_token_pair,
        login_failures_look_the_same,
        login_body_errors,
        refresh_accepts_the_access_token_of_the_same_session,
        refresh_refuses_a_foreign_or_forged_access_token_and_spends_nothing,
        refresh_refuses_unreadable_authorization_headers,
        refresh_token_errors,
        refresh_after_logout_is_revoked,
        refresh_after_password_reset_is_revoked,
        expires_in_follows_the_configured_lifetimes,
        login_path_shared_with_a_prefixed_pocketbase,
    ],
}

const LOGIN: &str = "/api/v1/auth/login";
const REFRESH: &str = "/api/v1/auth/refresh";
const ACCESS_TTL: i64 = 1800;
const REFRESH_TTL: i64 = 14 * 24 * 3600;
/// Signs forgeries: not the server's key.
const OTHER_SECRET_B64: &str = "b3RoZXItc2lnbmluZy1rZXktZm9yLWZvcmdlcmllcy0wMTIzNDU2Nzg5";

// --- Requests -------------------------------------------------------------------------

/// POSTs `body` to `path` with extra headers.
async fn post(app: &TestApp, path: &str, body: Value, headers: &[(&str, &str)]) -> Reply {
    let mut request = app.client.post(app.url(path)).json(&body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    app.send(request).await
}

async fn login(app: &TestApp, user: &str, password: &str) -> Reply {
    post(app, LOGIN, json!({"user": user, "password": password}), &[]).await
}

async fn refresh(app: &TestApp, refresh_token: &str, headers: &[(&str, &str)]) -> Reply {
    post(
        app,
        REFRESH,
        json!({"refresh_token": refresh_token}),
        headers,
    )
    .await
}

/// A refresh body posted to the login path, as the document's refresh example does.
async fn refresh_via_login(app: &TestApp, refresh_token: &str, headers: &[(&str, &str)]) -> Reply {
    post(app, LOGIN, json!({"refresh_token": refresh_token}), headers).await
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

// --- Accounts -------------------------------------------------------------------------

/// Resets the password through authapi's forgot/reset pair.
async fn reset_password(app: &TestApp, email: &str, new_password: &str) {
    let reply = app
        .post("/auth/forgot-password", json!({"email": email}))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let secret = app.mail().await.last_secret_for(email).unwrap();
    let reply = app
        .post(
            &format!("/auth/reset-password?token={secret}"),
            json!({"password": new_password}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

// --- Tokens ---------------------------------------------------------------------------

/// `token` with the same claims, signed with a key the server does not know.
fn forged_copy(token: &str, kind: TokenKind) -> String {
    codec_with(OTHER_SECRET_B64)
        .issue(&claims_of(token, kind))
        .unwrap()
}

// --- Answers --------------------------------------------------------------------------

/// The pair of a successful answer's token fields.
struct Pair {
    access: String,
    refresh: String,
}

/// Asserts the token fields of `result` (exactly `extra` plus the five token keys) and
/// returns the pair.
fn assert_token_fields(
    result: &Value,
    extra: Value,
    access_expires_in: i64,
    refresh_expires_in: i64,
) -> Pair {
    let access = result["access_token"].as_str().unwrap().to_owned();
    let refresh = result["refresh_token"].as_str().unwrap().to_owned();
    let mut expected = json!({
        "token_type": "Bearer",
        "access_token": access,
        "access_token_expires_in": access_expires_in,
        "refresh_token": refresh,
        "refresh_token_expires_in": refresh_expires_in,
    });
    expected
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    assert_eq!(result, &expected);
    // Real tokens of the right kinds, of one session.
    let (a, r) = (
        claims_of(&access, TokenKind::Access),
        claims_of(&refresh, TokenKind::Refresh),
    );
    assert_eq!(a.session, r.session);
    Pair { access, refresh }
}

/// Asserts a login's 200 body exactly, with the default lifetimes.
fn assert_login_ok(reply: &Reply, redirect: Option<&str>) -> Pair {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let keys: Vec<&str> = reply
        .body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    match redirect {
        Some(redirect) => {
            assert_eq!(keys, ["code", "redirect", "result"], "{}", reply.body);
            assert_eq!(reply.body["redirect"], json!(redirect));
        }
        None => assert_eq!(keys, ["code", "result"], "{}", reply.body),
    }
    assert_eq!(reply.body["code"], json!(0));
    assert_token_fields(&reply.body["result"], json!({}), ACCESS_TTL, REFRESH_TTL)
}

/// Asserts a refresh's 200 body exactly, with the default lifetimes.
fn assert_refresh_ok(reply: &Reply) -> Pair {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let keys: Vec<&str> = reply
        .body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["result"], "{}", reply.body);
    assert_token_fields(
        &reply.body["result"],
        json!({"code": 0, "desc": "Ok"}),
        ACCESS_TTL,
        REFRESH_TTL,
    )
}

/// Asserts a login error: `{"code", "desc", "error"}` exactly.
fn assert_login_error(reply: &Reply, status: u16, code: u16, error: &str, desc: &str) {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({"code": code, "desc": desc, "error": error})
    );
}

/// Asserts a refresh error: `{"result": {"code", "desc", "error"}}` exactly.
fn assert_refresh_error(reply: &Reply, status: u16, code: u16, error: &str, desc: &str) {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({"result": {"code": code, "desc": desc, "error": error}})
    );
}

const INVALID_CREDENTIALS: &str = "Invalid user or password";
const INVALID_TOKEN: &str = "Token is invalid";
const REFRESH_EXPIRED: &str = "Refresh token has expired";
const TOKEN_REVOKED: &str = "Token has been revoked";
const TOKEN_REUSED: &str = "Refresh token was already used; the session is revoked";
const TOO_LARGE: &str = "Request body too large (limit 16384 bytes)";

fn assert_invalid_token(reply: &Reply) {
    assert_refresh_error(reply, 401, 1003, "invalid_token", INVALID_TOKEN);
}

fn assert_revoked(reply: &Reply) {
    assert_refresh_error(reply, 401, 1004, "token_revoked", TOKEN_REVOKED);
}

/// Whether an access token still authenticates (through authapi's `POST /auth`).
async fn access_works(app: &TestApp, access: &str) -> bool {
    app.post_bearer("/auth", access).await.status == StatusCode::OK
}

// --- Login ----------------------------------------------------------------------------

async fn login_by_email_returns_the_token_pair(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada@example.com").await;
    let pair = assert_login_ok(&login(&app, "ada@example.com", PASSWORD).await, None);
    assert!(access_works(&app, &pair.access).await);
    // Any case of the email.
    assert_login_ok(&login(&app, "ADA@Example.com", PASSWORD).await, None);
}

async fn login_by_username_returns_the_token_pair(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    create_user(
        &app,
        NewUserSpec::new("ada@example.com").with_username("ada"),
    )
    .await;
    let by_name = assert_login_ok(&login(&app, "ada", PASSWORD).await, None);
    let by_email = assert_login_ok(&login(&app, "ada@example.com", PASSWORD).await, None);
    assert!(access_works(&app, &by_name.access).await);
    assert_eq!(
        claims_of(&by_name.access, TokenKind::Access).subject,
        claims_of(&by_email.access, TokenKind::Access).subject
    );
}

async fn login_redirects_until_the_password_is_reset(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    create_user(
        &app,
        NewUserSpec::new("ada@example.com")
            .with_username("ada")
            .must_change_password(),
    )
    .await;
    for user in ["ada", "ada@example.com"] {
        let pair = assert_login_ok(&login(&app, user, PASSWORD).await, Some("pw/reset"));
        // The tokens are ordinary: the client is expected to follow the redirect.
        assert!(access_works(&app, &pair.access).await);
    }
    // A wrong password is refused as ever, with no redirect.
    assert_login_error(
        &login(&app, "ada", "wrong password").await,
        401,
        1002,
        "invalid_credentials",
        INVALID_CREDENTIALS,
    );
    reset_password(&app, "ada@example.com", "a brand new secret").await;
    assert_login_ok(&login(&app, "ada", "a brand new secret").await, None);
    assert_login_ok(
        &login(&app, "ada@example.com", "a brand new secret").await,
        None,
    );
    // Accounts never flagged get no redirect.
    create_user(&app, NewUserSpec::new("bo@example.com")).await;
    assert_login_ok(&login(&app, "bo@example.com", PASSWORD).await, None);
}

async fn login_tokens_carry_the_identifier_as_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    create_user(
        &app,
        NewUserSpec::new("ada@example.com").with_username("Ada_L"),
    )
    .await;
    // The stored form of the name logged in with, whatever its case or padding.
    for (sent, user) in [
        ("ada_l", "Ada_L"),
        (" ADA_L ", "Ada_L"),
        ("ADA@Example.com", "ada@example.com"),
    ] {
        let pair = assert_login_ok(&login(&app, sent, PASSWORD).await, None);
        for (token, kind) in [
            (&pair.access, TokenKind::Access),
            (&pair.refresh, TokenKind::Refresh),
        ] {
            assert_eq!(
                Value::Object(claims_of(token, kind).extra),
                json!({"identifier": user})
            );
        }
        // Rotation keeps it, twice over.
        let mut refresh_token = pair.refresh;
        for _ in 0..2 {
            let rotated = assert_refresh_ok(&refresh(&app, &refresh_token, &[]).await);
            for (token, kind) in [
                (&rotated.access, TokenKind::Access),
                (&rotated.refresh, TokenKind::Refresh),
            ] {
                assert_eq!(
                    claims_of(token, kind).extra.get("identifier"),
                    Some(&json!(user))
                );
            }
            refresh_token = rotated.refresh;
        }
    }
}

async fn login_failures_look_the_same(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    create_user(
        &app,
        NewUserSpec::new("ada@example.com").with_username("ada"),
    )
    .await;
    let cases = [
        ("ada@example.com", "wrong password".to_owned()),
        ("ada", "wrong password".to_owned()),
        ("ghost@example.com", PASSWORD.to_owned()),
        ("ghost", PASSWORD.to_owned()),
        ("not an identifier!", PASSWORD.to_owned()),
        ("ada", "p".repeat(300)),
    ];
    for (user, password) in cases {
        assert_login_error(
            &login(&app, user, &password).await,
            401,
            1002,
            "invalid_credentials",
            INVALID_CREDENTIALS,
        );
    }
}

async fn login_body_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let invalid = |reply: Reply, desc: &str| {
        assert_login_error(&reply, 400, 1001, "invalid_request", desc);
    };
    let cases = [
        (json!({"password": PASSWORD}), "\"user\" is required"),
        (json!({"user": "ada"}), "\"password\" is required"),
        (json!({}), "\"user\" is required, \"password\" is required"),
        (
            json!({"user": 5, "password": PASSWORD}),
            "\"user\" must be a string",
        ),
        (
            json!({"user": null, "password": PASSWORD}),
            "\"user\" must be a string",
        ),
        (
            json!({"user": "", "password": PASSWORD}),
            "\"user\" is not allowed to be empty",
        ),
        (
            json!({"user": "ada", "password": ["x"]}),
            "\"password\" must be a string",
        ),
        (
            json!({"user": "ada", "password": ""}),
            "\"password\" is not allowed to be empty",
        ),
        (
            json!({"user": "", "password": 1}),
            "\"user\" is not allowed to be empty, \"password\" must be a string",
        ),
    ];
    for (body, desc) in cases {
        invalid(post(&app, LOGIN, body, &[]).await, desc);
    }
    invalid(
        app.post_raw(LOGIN, "{\"user\": ").await,
        "Malformed JSON body",
    );
    invalid(app.post_raw(LOGIN, "not json").await, "Malformed JSON body");
    invalid(
        app.post_raw(LOGIN, "[1, 2]").await,
        "Request body must be a JSON object",
    );
    invalid(
        app.post_raw(LOGIN, "\"ada\"").await,
        "Request body must be a JSON object",
    );
    invalid(
        app.post_raw(LOGIN, "").await,
        "\"user\" is required, \"password\" is required",
    );
    let huge = format!("{{\"user\": \"{}\"}}", "x".repeat(17 * 1024));
    assert_login_error(
        &app.post_raw(LOGIN, huge).await,
        413,
        1001,
        "invalid_request",
        TOO_LARGE,
    );
}

// --- Refresh --------------------------------------------------------------------------

async fn refresh_rotates_the_pair(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada@example.com").await;
    let first = assert_login_ok(&login(&app, "ada@example.com", PASSWORD).await, None);
    let second = assert_refresh_ok(&refresh(&app, &first.refresh, &[]).await);
    assert_ne!(second.refresh, first.refresh);
    assert_ne!(second.access, first.access);
    let (old, new) = (
        claims_of(&first.refresh, TokenKind::Refresh),
        claims_of(&second.refresh, TokenKind::Refresh),
    );
    assert_eq!(old.session, new.session, "the same session goes on");
    // Both access tokens of the live session work, and the new refresh token rotates.
    assert!(access_works(&app, &second.access).await);
    assert!(access_works(&app, &first.access).await);
    assert_refresh_ok(&refresh(&app, &second.refresh, &[]).await);
}

async fn refresh_accepts_the_access_token_of_the_same_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada@example.com").await;
    let pair = assert_login_ok(&login(&app, "ada@example.com", PASSWORD).await, None);
    let mut refresh_token = pair.refresh.clone();
    let expired = expired_copy(&pair.access, TokenKind::Access);
    let cases: [Vec<(&str, String)>; 6] = [
        vec![("Authorization", bearer(&pair.access))],
        vec![("Athorization", bearer(&pair.access))],
        vec![("Authorization", format!("bearer {}", pair.access))],
        vec![
            ("Authorization", bearer(&pair.access)),
            ("Athorization", bearer(&pair.access)),
        ],
        // Expired but correctly signed: refreshing is what it is for.
        vec![("Authorization", bearer(&expired))],
        vec![("Athorization", bearer(&expired))],
    ];
    for headers in cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let rotated = assert_refresh_ok(&refresh(&app, &refresh_token, &headers).await);
        refresh_token = rotated.refresh;
    }
    // An access token from an earlier rotation of the session is of the session too.
    let rotated = assert_refresh_ok(
        &refresh(
            &app,
            &refresh_token,
            &[("Authorization", &bearer(&pair.access))],
        )
        .await,
    );
    // As is one from a later rotation.
    let again = assert_refresh_ok(
        &refresh(
            &app,
            &rotated.refresh,
            &[("Authorization", &bearer(&rotated.access))],
        )
        .await,
    );
    assert!(access_works(&app, &again.access).await);
}

async fn refresh_refuses_a_foreign_or_forged_access_token_and_spends_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada@example.com").await;
    app.register("bo@example.com").await;
    let mine = assert_login_ok(&login(&app, "ada@example.com", PASSWORD).await, None);
    let my_other_session = assert_login_ok(&login(&app, "ada@example.com", PASSWORD).await, None);
    let theirs = assert_login_ok(&login(&app, "bo@example.com", PASSWORD).await, None);
    let bad_access_tokens = [
        my_other_session.access.clone(),
        expired_copy(&my_other_session.access, TokenKind::Access),
        theirs.access.clone(),
        tampered(&mine.access),
        forged_copy(&mine.access, TokenKind::Access),
        // The session's own refresh token is not an access token.
        mine.refresh.clone(),
        "garbage".to_owned(),
    ];
    for access in &bad_access_tokens[..] {
        for header in ["Authorization", "Athorization"] {
            assert_invalid_token(&refresh(&app, &mine.refresh, &[(header, &bearer(access))]).await);
        }
    }
    // Two headers must agree.
    assert_invalid_token(
        &refresh(
            &app,
            &mine.refresh,
            &[
                ("Authorization", &bearer(&mine.access)),
                ("Athorization", &bearer(&my_other_session.access)),
            ],
        )
        .await,
    );
    assert_invalid_token(
        &refresh(
            &app,
            &mine.refresh,
            &[
                ("Authorization", &bearer(&mine.access)),
                ("Athorization", "garbage"),
            ],
        )
        .await,
    );
    // Nothing was spent: the refresh token still works, and the session is alive.
    assert!(access_works(&app, &mine.access).await);
    assert_refresh_ok(
        &refresh(
            &app,
            &mine.refresh,
            &[("Authorization", &bearer(&mine.access))],
        )
        .await,
    );
}

async fn refresh_refuses_unreadable_authorization_headers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada@example.com").await;
    let pair = assert_login_ok(&login(&app, "ada@example.com", PASSWORD).await, None);
    let access = pair.access.clone();
    let values = [
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
        "".to_owned(),
        "Token abc".to_owned(),
        "garbage".to_owned(),
        format!("Basic {access}"),
        // The token without its scheme.
        access.clone(),
    ];
    for value in &values {
        for header in ["Authorization", "Athorization"] {
            assert_invalid_token(&refresh(&app, &pair.refresh, &[(header, value)]).await);
        }
    }
    // Bytes that are not text.
    for header in ["Authorization", "Athorization"] {
        let request = app
            .client
            .post(app.url(REFRESH))
            .json(&json!({"refresh_token": pair.refresh}))
            .header(
                header,
                HeaderValue::from_bytes(b"Bearer \xfftoken").unwrap(),
            );
        assert_invalid_token(&app.send(request).await);
    }
    // Nothing was spent.
    assert_refresh_ok(&refresh(&app, &pair.refresh, &[]).await);
}

async fn refresh_token_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada@example.com").await;
    let pair = assert_login_ok(&login(&app, "ada@example.com", PASSWORD).await, None);
    // Not a refresh token of ours.
    for bad in [
        "garbage".to_owned(),
        pair.access.clone(),
        tampered(&pair.refresh),
        forged_copy(&pair.refresh, TokenKind::Refresh),
    ] {
        assert_invalid_token(&refresh(&app, &bad, &[]).await);
    }
    // Expired.
    assert_refresh_error(
        &refresh(&app, &expired_copy(&pair.refresh, TokenKind::Refresh), &[]).await,
        401,
        1003,
        "invalid_token",
        REFRESH_EXPIRED,
    );
    // Request errors.
    let invalid = |reply: Reply, desc: &str| {
        assert_refresh_error(&reply, 400, 1001, "invalid_request", desc);
    };
    invalid(
        post(&app, REFRESH, json!({}), &[]).await,
        "\"refresh_token\" is required",
    );
    invalid(
        post(&app, REFRESH, json!({"refreshToken": pair.refresh}), &[]).await,
        "\"refresh_token\" is required",
    );
    invalid(
        post(&app, REFRESH, json!({"refresh_token": 42}), &[]).await,
        "\"refresh_token\" must be a string",
    );
    invalid(
        post(&app, REFRESH, json!({"refresh_token": null}), &[]).await,
        "\"refresh_token\" must be a string",
    );
    invalid(
        post(&app, REFRESH, json!({"refresh_token": ""}), &[]).await,
        "\"refresh_token\" is not allowed to be empty",
    );
    invalid(app.post_raw(REFRESH, "{").await, "Malformed JSON body");
    invalid(
        app.post_raw(REFRESH, "[\"token\"]").await,
        "Request body must be a JSON object",
    );
    invalid(
        app.post_raw(REFRESH, "").await,
        "\"refresh_token\" is required",
    );
    // A body error comes before a header error.
    invalid(
        post(&app, REFRESH, json!({}), &[("Authorization", "garbage")]).await,
        "\"refresh_token\" is required",
    );
    let huge = format!("{{\"refresh_token\": \"{}\"}}", "x".repeat(17 * 1024));
    assert_refresh_error(
        &app.post_raw(REFRESH, huge).await,
        413,
        1001,
        "invalid_request",
        TOO_LARGE,
    );
    // None of these spent the token.
    assert_refresh_ok(&refresh(&app, &pair.refresh, &[]).await);
}

async fn refresh_reuse_revokes_the_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada@example.com").await;
    let first = assert_login_ok(&login(&app, "ada@example.com", PASSWORD).await, None);
    let other = assert_login_ok(&login(&app, "ada@example.com", PASSWORD).await, None);
    let rotated = assert_refresh_ok(&refresh(&app, &first.refresh, &[]).await);
    assert_refresh_error(
        &refresh(&app, &first.refresh, &[]).await,
        401,
        1004,
        "token_revoked",
        TOKEN_REUSED,
    );
    // The whole session is dead: the newest refresh token and every access token.
    assert_revoked(&refresh(&app, &rotated.refresh, &[]).await);
    assert!(!access_works(&app, &rotated.access).await);
    assert!(!access_works(&app, &first.access).await);
    // Presented again, the spent token finds the session already ended.
    assert_revoked(&refresh(&app, &first.refresh, &[]).await);
    // Other sessions of the account are untouched.
    assert!(access_works(&app, &other.access).await);
    assert_refresh_ok(&refresh(&app, &other.refresh, &[]).await);
}

async fn refresh_after_logout_is_revoked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada@example.com").await;
    let pair = assert_login_ok(&login(&app, "ada@example.com", PASSWORD).await, None);
    let logout = app
        .post("/auth/logout", json!({"refreshToken": pair.refresh}))
        .await;
    assert_eq!(logout.status, StatusCode::OK, "{}", logout.body);
    assert_revoked(&refresh(&app, &pair.refresh, &[]).await);
    // With the session's own access token too: the token is fine, the session is not.
    assert_revoked(
        &refresh(
            &app,
            &pair.refresh,
            &[("Authorization", &bearer(&pair.access))],
        )
        .await,
    );
    // And through the login path.
    assert_revoked(&post(&app, LOGIN, json!({"refresh_token": pair.refresh}), &[]).await);
}

async fn refresh_after_password_reset_is_revoked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada@example.com").await;
    let pair = assert_login_ok(&login(&app, "ada@example.com", PASSWORD).await, None);
    reset_password(&app, "ada@example.com", "a brand new secret").await;
    assert_revoked(&refresh(&app, &pair.refresh, &[]).await);
    assert_login_error(
        &login(&app, "ada@example.com", PASSWORD).await,
        401,
        1002,
        "invalid_credentials",
        INVALID_CREDENTIALS,
    );
}

async fn login_path_with_a_refresh_body_acts_as_refresh(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada@example.com").await;
    let pair = assert_login_ok(&login(&app, "ada@example.com", PASSWORD).await, None);
    // The document's example: the refresh token, the access token in `Athorization`.
    let rotated = assert_refresh_ok(
        &refresh_via_login(
            &app,
            &pair.refresh,
            &[("Athorization", &bearer(&pair.access))],
        )
        .await,
    );
    assert!(access_works(&app, &rotated.access).await);
    let rotated = assert_refresh_ok(&refresh_via_login(&app, &rotated.refresh, &[]).await);
    // Its refusals are refresh's, in refresh's shape.
    let other = assert_login_ok(&login(&app, "ada@example.com", PASSWORD).await, None);
    assert_invalid_token(
        &refresh_via_login(
            &app,
            &rotated.refresh,
            &[("Authorization", &bearer(&other.access))],
        )
        .await,
    );
    assert_invalid_token(
        &refresh_via_login(&app, &rotated.refresh, &[("Authorization", "garbage")]).await,
    );
    assert_invalid_token(&refresh_via_login(&app, "garbage", &[]).await);
    assert_refresh_error(
        &refresh_via_login(
            &app,
            &expired_copy(&rotated.refresh, TokenKind::Refresh),
            &[],
        )
        .await,
        401,
        1003,
        "invalid_token",
        REFRESH_EXPIRED,
    );
    for (body, desc) in [
        (
            json!({"refresh_token": ""}),
            "\"refresh_token\" is not allowed to be empty",
        ),
        (
            json!({"refresh_token": 7}),
            "\"refresh_token\" must be a string",
        ),
    ] {
        assert_refresh_error(
            &post(&app, LOGIN, body, &[]).await,
            400,
            1001,
            "invalid_request",
            desc,
        );
    }
    // Not spent by any refusal; spent by its use; reuse revokes the session.
    let last = assert_refresh_ok(&refresh_via_login(&app, &rotated.refresh, &[]).await);
    assert_refresh_error(
        &refresh_via_login(&app, &rotated.refresh, &[]).await,
        401,
        1004,
        "token_revoked",
        TOKEN_REUSED,
    );
    assert_revoked(&refresh_via_login(&app, &last.refresh, &[]).await);
    // A body with a `user` is a login, whatever else it has.
    assert_login_ok(
        &post(
            &app,
            LOGIN,
            json!({"user": "ada@example.com", "password": PASSWORD, "refresh_token": "x"}),
            &[],
        )
        .await,
        None,
    );
    assert_login_error(
        &post(
            &app,
            LOGIN,
            json!({"user": "ada@example.com", "refresh_token": "x"}),
            &[],
        )
        .await,
        400,
        1001,
        "invalid_request",
        "\"password\" is required",
    );
}

async fn refresh_tokens_cross_dialects(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let registered = app.register("ada@example.com").await;
    // authapi's tokens refresh through cbs, its access token accepted as the header.
    let rotated = assert_refresh_ok(
        &refresh(
            &app,
            &token(&registered, "refresh"),
            &[("Authorization", &bearer(&token(&registered, "access")))],
        )
        .await,
    );
    assert!(
        claims_of(&rotated.access, TokenKind::Access)
            .extra
            .is_empty()
    );
    assert!(access_works(&app, &rotated.access).await);
    // cbs's refresh through authapi, keeping the identifier claim.
    let pair = assert_login_ok(&login(&app, "ada@example.com", PASSWORD).await, None);
    let reply = app
        .post(
            "/auth/refresh-tokens",
            json!({"refreshToken": pair.refresh}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        Value::Object(claims_of(&token(&reply.body, "refresh"), TokenKind::Refresh).extra),
        json!({"identifier": "ada@example.com"})
    );
    // And back to cbs.
    assert_refresh_ok(&refresh(&app, &token(&reply.body, "refresh"), &[]).await);
    // Spent through one dialect, reused through the other: the session is revoked.
    assert_refresh_error(
        &refresh(&app, &pair.refresh, &[]).await,
        401,
        1004,
        "token_revoked",
        TOKEN_REUSED,
    );
}

// --- Lifetimes ------------------------------------------------------------------------

async fn expires_in_follows_the_configured_lifetimes(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("PORTCULLIS_ACCESS_TOKEN_TTL_SECS", "60"),
            ("PORTCULLIS_REFRESH_TOKEN_TTL_SECS", "7200"),
        ],
    )
    .await;
    app.register("ada@example.com").await;
    let reply = login(&app, "ada@example.com", PASSWORD).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let pair = assert_token_fields(&reply.body["result"], json!({}), 60, 7200);
    let reply = refresh(&app, &pair.refresh, &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let rotated = assert_token_fields(
        &reply.body["result"],
        json!({"code": 0, "desc": "Ok"}),
        60,
        7200,
    );
    // The numbers are the tokens' own lifetimes.
    for (token, kind, ttl) in [
        (&rotated.access, TokenKind::Access, 60),
        (&rotated.refresh, TokenKind::Refresh, 7200),
    ] {
        let claims = claims_of(token, kind);
        assert_eq!((claims.expires_at - claims.issued_at).num_seconds(), ttl);
    }
}

async fn expires_in_is_cut_short_by_the_session_lifetime(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("PORTCULLIS_ACCESS_TOKEN_TTL_SECS", "60"),
            ("PORTCULLIS_REFRESH_TOKEN_TTL_SECS", "7200"),
            ("PORTCULLIS_SESSION_TTL_SECS", "3600"),
        ],
    )
    .await;
    app.register("ada@example.com").await;
    let reply = login(&app, "ada@example.com", PASSWORD).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let result = &reply.body["result"];
    assert_eq!(result["access_token_expires_in"], json!(60));
    // What the session has left, rounded up from the request's arrival: its full hour,
    // or a second more when the request straddled a second boundary.
    let left = result["refresh_token_expires_in"].as_i64().unwrap();
    assert!((3600..=3601).contains(&left), "{left}");
    let refresh_token = result["refresh_token"].as_str().unwrap().to_owned();
    let reply = refresh(&app, &refresh_token, &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let result = &reply.body["result"];
    assert_eq!(result["access_token_expires_in"], json!(60));
    let left_now = result["refresh_token_expires_in"].as_i64().unwrap();
    assert!((3590..=left).contains(&left_now), "{left_now} after {left}");
    let claims = claims_of(
        result["refresh_token"].as_str().unwrap(),
        TokenKind::Refresh,
    );
    let actual = (claims.expires_at - SystemClock.now()).num_seconds();
    assert!((left_now - actual).abs() <= 2, "{left_now} vs {actual}");
}

// --- Routing --------------------------------------------------------------------------

/// With pocketbase mounted at `/api/v1` the login path is shared: cbs keeps its own
/// bodies and those no dialect claims.
async fn login_path_shared_with_a_prefixed_pocketbase(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("PORTCULLIS_POCKETBASE_PREFIX", "/api/v1")]).await;
    create_user(
        &app,
        NewUserSpec::new("ada@example.com").with_username("ada"),
    )
    .await;
    let pair = assert_login_ok(&login(&app, "ada", PASSWORD).await, None);
    assert_refresh_ok(&post(&app, LOGIN, json!({"refresh_token": pair.refresh}), &[]).await);
    assert_login_error(
        &app.post_raw(LOGIN, "{oops").await,
        400,
        1001,
        "invalid_request",
        "Malformed JSON body",
    );
    assert_login_error(
        &post(&app, LOGIN, json!({"password": PASSWORD}), &[]).await,
        400,
        1001,
        "invalid_request",
        "\"user\" is required",
    );
    assert_login_error(
        &login(&app, "ada", "wrong password").await,
        401,
        1002,
        "invalid_credentials",
        INVALID_CREDENTIALS,
    );
}

// --- Internal errors ------------------------------------------------------------------

/// PostgreSQL only: a SQLite file cannot be taken away from under the pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_database_is_1999() {
    let app = TestApp::spawn(Backend::Postgres).await;
    app.register("ada@example.com").await;
    let pair = assert_login_ok(&login(&app, "ada@example.com", PASSWORD).await, None);
    let TestApp { api, database, .. } = app;
    drop_database(database).await;
    assert_login_error(
        &api.post(
            LOGIN,
            json!({"user": "ada@example.com", "password": PASSWORD}),
        )
        .await,
        500,
        1999,
        "internal_error",
        "Internal server error",
    );
    assert_refresh_error(
        &api.post(REFRESH, json!({"refresh_token": pair.refresh}))
            .await,
        500,
        1999,
        "internal_error",
        "Internal server error",
    );
}
