//! The ioweyou dialect (`000_*`): every row and error cell, over HTTP, plus the cookie
//! middleware and extractor on an embedding service's own routes.

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpMessage, HttpRequest, HttpResponse, HttpServer, web};
use chrono::Utc;
use portcullis_domain::{Principal, TokenKind};
use portcullis_http::ioweyou::{IoweyouUser, require_user};
use portcullis_http::{AppState, HttpConfig, Readiness};
use reqwest::StatusCode;
use reqwest::header::COOKIE;
use serde_json::{Value, json};

use crate::support::app::{
    NewUserSpec, PASSWORD, TestApp, create_user, drop_database, expired_copy, jwt_payload,
    service_for, tampered,
};
use crate::support::backend::Backend;
use crate::support::client::{Api, Reply, sorted_keys};
use crate::support::uri::{decode_uri_component, encode_uri_component};

crate::on_backends! {
    both: [
        login_by_username_or_email,
        login_validation_errors,
        login_without_password_renews_from_the_cookie,
        login_cookie_reuse_kills_the_session,
        current_user_renews_an_expired_access_token,
    ],
    sqlite: [
        login_on_both_paths_sets_the_session_cookie,
        login_body_errors,
        login_password_length_follows_the_policy,
        login_failures_look_the_same,
        login_with_a_password_ignores_the_cookie,
        login_without_password_refusals,
        login_with_another_users_cookie_spends_nothing,
        current_user_with_the_cookie,
        current_user_refusals,
        current_user_renewal_refusals,
        logout_clears_the_cookie_and_revokes_the_session,
        logout_without_a_valid_cookie_still_clears_it,
        cookie_secure_can_be_turned_off,
        a_browser_cookie_jar_carries_the_session,
        the_cookie_reads_as_cookie_parser_reads_it,
        middleware_and_extractor_protect_an_embedding_services_routes,
    ],
}

const NOT_AUTHENTICATED: &str = "Not authenticated.";
const BAD_CREDENTIALS: &str = "Username or password was incorrect";
/// The default refresh-token lifetime, the cookie's `Max-Age`.
const REFRESH_TTL_SECS: i64 = 14 * 24 * 3600;
const CLEARED_COOKIE: &str = "access_tokens=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT";

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Reading a reply's session cookie.
impl Reply {
    /// The one `Set-Cookie` header of the reply.
    fn set_cookie(&self) -> String {
        let cookies = self.set_cookies();
        assert_eq!(cookies.len(), 1, "{cookies:?}");
        cookies[0].clone()
    }

    /// The raw (encoded) value of the session cookie of a 200 reply, checking its
    /// attributes.
    fn session_cookie(&self, secure: bool) -> String {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        self.session_cookie_of_any_status(secure)
    }

    /// [`Reply::session_cookie`], whatever the status.
    fn session_cookie_of_any_status(&self, secure: bool) -> String {
        let header = self.set_cookie();
        let value = header
            .strip_prefix("access_tokens=")
            .and_then(|rest| rest.split(';').next())
            .unwrap_or_else(|| panic!("not a session cookie: {header}"));
        assert_eq!(
            header,
            format!(
                "access_tokens={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={REFRESH_TTL_SECS}{}",
                if secure { "; Secure" } else { "" }
            )
        );
        let tokens = CookieTokens::decode(value);
        assert_ne!(tokens.access, tokens.refresh);
        value.to_owned()
    }
}

/// Asserts an ioweyou error: status and exactly `{"errors": [message]}`, no cookie.
fn assert_errors(reply: &Reply, status: u16, message: &str) {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.body);
    assert_eq!(reply.body, json!({ "errors": [message] }));
    assert!(reply.set_cookies().is_empty(), "{:?}", reply.set_cookies());
}

/// Talks to one server, with cookies set by hand.
#[derive(Clone)]
struct Client(Api);

impl Client {
    fn of(app: &TestApp) -> Self {
        Self(app.api.clone())
    }

    /// `POST path` with a JSON body and, if given, `Cookie: access_tokens=<cookie>`.
    async fn post(&self, path: &str, body: Value, cookie: Option<&str>) -> Reply {
        let mut request = self.0.client.post(self.0.url(path)).json(&body);
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, format!("access_tokens={cookie}"));
        }
        self.0.send(request).await
    }

    async fn post_raw(&self, path: &str, body: &str) -> Reply {
        self.0.post_raw(path, body.to_owned()).await
    }

    /// `GET path` with, if given, `Cookie: access_tokens=<cookie>`.
    async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        let mut request = self.0.client.get(self.0.url(path));
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, format!("access_tokens={cookie}"));
        }
        self.0.send(request).await
    }

    /// Logs in with a password on the document's path; the session cookie's raw value.
    async fn login(&self, username: &str) -> String {
        self.post(
            "/users/login",
            json!({"username": username, "password": PASSWORD}),
            None,
        )
        .await
        .session_cookie(true)
    }
}

/// The two tokens of a session cookie.
#[derive(Debug, PartialEq, Eq)]
struct CookieTokens {
    access: String,
    refresh: String,
}

impl CookieTokens {
    /// Reads a raw cookie value as cookie-parser does: URI-decode, strip `j:`, parse JSON.
    fn decode(raw: &str) -> Self {
        let decoded = decode_uri_component(raw);
        let json = decoded
            .strip_prefix("j:")
            .unwrap_or_else(|| panic!("no j: prefix: {decoded}"));
        let object: Value = serde_json::from_str(json).unwrap();
        assert_eq!(
            sorted_keys(&object),
            ["access_token", "refresh_token"],
            "{object}"
        );
        Self {
            access: object["access_token"].as_str().unwrap().to_owned(),
            refresh: object["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    /// Writes a raw cookie value as Express does.
    fn encode(access: &str, refresh: &str) -> String {
        let json = json!({"access_token": access, "refresh_token": refresh});
        encode_uri_component(&format!("j:{json}"))
    }
}

/// `cookie` with its access token replaced by an expired copy.
fn with_expired_access(cookie: &str) -> String {
    let tokens = CookieTokens::decode(cookie);
    CookieTokens::encode(
        &expired_copy(&tokens.access, TokenKind::Access),
        &tokens.refresh,
    )
}

// ---------------------------------------------------------------------------------------
// POST /users/login, POST /api/login
// ---------------------------------------------------------------------------------------

async fn login_on_both_paths_sets_the_session_cookie(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = Client::of(&app);
    app.register("ada@example.com").await;
    for path in ["/users/login", "/api/login"] {
        let reply = client
            .post(
                path,
                // Unknown keys are ignored.
                json!({"username": "ada@example.com", "password": PASSWORD, "remember": true}),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
        assert_eq!(reply.body, json!({}));
        let cookie = reply.session_cookie(true);
        let user = client.get("/api/user", Some(&cookie)).await;
        assert_eq!(user.status, StatusCode::OK, "{}", user.body);
        assert_eq!(
            user.body,
            json!({"username": "ada@example.com", "display_name": "Ada Lovelace"})
        );
        assert!(user.set_cookies().is_empty());
    }
}

async fn login_by_username_or_email(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = Client::of(&app);
    create_user(
        &app,
        NewUserSpec::new("ada@example.com").with_username("ada_l"),
    )
    .await;
    // By username, in any case, and by email: the `username` claim is the account's.
    for name in ["ada_l", "ADA_L", "ada@example.com", "Ada@Example.com"] {
        let reply = client
            .post(
                "/users/login",
                json!({"username": name, "password": PASSWORD}),
                None,
            )
            .await;
        assert_eq!(reply.body, json!({}), "{name}");
        let cookie = reply.session_cookie(true);
        let tokens = CookieTokens::decode(&cookie);
        assert_eq!(jwt_payload(&tokens.access)["username"], "ada_l", "{name}");
        assert_eq!(jwt_payload(&tokens.refresh)["username"], "ada_l", "{name}");
        let user = client.get("/api/user", Some(&cookie)).await;
        assert_eq!(
            user.body,
            json!({"username": "ada_l", "display_name": "Ada Lovelace"})
        );
    }
}

async fn login_validation_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = Client::of(&app);
    app.register("ada@example.com").await;
    let long_name = "a".repeat(255);
    let long_password = "p".repeat(257);
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "\"username\" is required"),
        (json!({"password": PASSWORD}), "\"username\" is required"),
        (
            json!({"username": 5, "password": PASSWORD}),
            "\"username\" must be a string",
        ),
        (
            json!({"username": null, "password": PASSWORD}),
            "\"username\" must be a string",
        ),
        (
            json!({"username": ["ada"], "password": PASSWORD}),
            "\"username\" must be a string",
        ),
        (
            json!({"username": "", "password": PASSWORD}),
            "\"username\" is not allowed to be empty",
        ),
        (
            json!({"username": long_name, "password": PASSWORD}),
            "\"username\" length must be less than or equal to 254 characters long",
        ),
        (
            json!({"username": "ada@example.com", "password": 5}),
            "\"password\" must be a string",
        ),
        (
            json!({"username": "ada@example.com", "password": null}),
            "\"password\" must be a string",
        ),
        (
            json!({"username": "ada@example.com", "password": ""}),
            "\"password\" is not allowed to be empty",
        ),
        (
            json!({"username": "ada@example.com", "password": long_password}),
            "\"password\" length must be less than or equal to 256 characters long",
        ),
        // Only the first failing rule is reported.
        (
            json!({"username": "", "password": 5}),
            "\"username\" is not allowed to be empty",
        ),
        (json!({"password": ""}), "\"username\" is required"),
    ];
    for path in ["/users/login", "/api/login"] {
        for (body, message) in &cases {
            let reply = client.post(path, body.clone(), None).await;
            assert_errors(&reply, 400, message);
        }
    }
    // The limits themselves pass validation (and fail authentication).
    let at_limits = json!({"username": "a".repeat(254), "password": "p".repeat(256)});
    assert_errors(
        &client.post("/users/login", at_limits, None).await,
        401,
        BAD_CREDENTIALS,
    );
    // Lengths count characters, not bytes.
    let multibyte = json!({"username": "é".repeat(254), "password": "é".repeat(256)});
    assert_errors(
        &client.post("/users/login", multibyte, None).await,
        401,
        BAD_CREDENTIALS,
    );
}

async fn login_body_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = Client::of(&app);
    for path in ["/users/login", "/api/login"] {
        assert_errors(
            &client.post_raw(path, "{\"username\": ").await,
            400,
            "Malformed JSON body",
        );
        assert_errors(
            &client.post_raw(path, "[\"ada\"]").await,
            400,
            "Request body must be a JSON object",
        );
        assert_errors(
            &client.post_raw(path, "").await,
            400,
            "\"username\" is required",
        );
        let huge = format!("{{\"username\": \"{}\"}}", "x".repeat(17 * 1024));
        assert_errors(
            &client.post_raw(path, &huge).await,
            413,
            "Request body too large (limit 16384 bytes)",
        );
    }
}

async fn login_password_length_follows_the_policy(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("PORTCULLIS_PASSWORD_MAX_LENGTH", "64")]).await;
    let client = Client::of(&app);
    assert_errors(
        &client
            .post(
                "/users/login",
                json!({"username": "ada", "password": "p".repeat(65)}),
                None,
            )
            .await,
        400,
        "\"password\" length must be less than or equal to 64 characters long",
    );
    assert_errors(
        &client
            .post(
                "/users/login",
                json!({"username": "ada", "password": "p".repeat(64)}),
                None,
            )
            .await,
        401,
        BAD_CREDENTIALS,
    );
}

async fn login_failures_look_the_same(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = Client::of(&app);
    create_user(
        &app,
        NewUserSpec::new("ada@example.com").with_username("ada_l"),
    )
    .await;
    for (username, password) in [
        ("ada@example.com", "wrong password"),
        ("ada_l", "wrong password"),
        ("ghost@example.com", PASSWORD),
        ("ghost", PASSWORD),
        ("not an identifier!", PASSWORD),
    ] {
        for path in ["/users/login", "/api/login"] {
            let reply = client
                .post(
                    path,
                    json!({"username": username, "password": password}),
                    None,
                )
                .await;
            assert_errors(&reply, 401, BAD_CREDENTIALS);
        }
    }
}

async fn login_with_a_password_ignores_the_cookie(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = Client::of(&app);
    app.register("ada@example.com").await;
    let cookie = client.login("ada@example.com").await;
    // A wrong password is refused even with a valid cookie...
    let reply = client
        .post(
            "/users/login",
            json!({"username": "ada@example.com", "password": "wrong password"}),
            Some(&cookie),
        )
        .await;
    assert_errors(&reply, 401, BAD_CREDENTIALS);
    // ...and a right one starts a new session, leaving the cookie's refresh token unspent.
    let reply = client
        .post(
            "/users/login",
            json!({"username": "ada@example.com", "password": PASSWORD}),
            Some(&cookie),
        )
        .await;
    let fresh = reply.session_cookie(true);
    assert_ne!(CookieTokens::decode(&fresh), CookieTokens::decode(&cookie));
    let renewed = client
        .post(
            "/users/login",
            json!({"username": "ada@example.com"}),
            Some(&cookie),
        )
        .await;
    assert_eq!(renewed.body, json!({}));
    renewed.session_cookie(true);
}

async fn login_without_password_renews_from_the_cookie(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = Client::of(&app);
    app.register("ada@example.com").await;
    let mut cookie = client.login("ada@example.com").await;
    let first = CookieTokens::decode(&cookie);
    let mut seen = vec![first.refresh.clone()];
    for path in ["/users/login", "/api/login", "/users/login"] {
        let reply = client
            .post(path, json!({"username": "ada@example.com"}), Some(&cookie))
            .await;
        assert_eq!(reply.body, json!({}), "{path}");
        let renewed = reply.session_cookie(true);
        let tokens = CookieTokens::decode(&renewed);
        assert!(!seen.contains(&tokens.refresh), "a new refresh token");
        seen.push(tokens.refresh.clone());
        // The username claim survives the rotation.
        assert_eq!(jwt_payload(&tokens.access)["username"], "ada@example.com");
        assert_eq!(
            client.get("/api/user", Some(&renewed)).await.status,
            StatusCode::OK
        );
        cookie = renewed;
    }
    // The login name may be spelled differently; it names the same account.
    let reply = client
        .post(
            "/users/login",
            json!({"username": "ADA@example.com", "password": null}),
            Some(&cookie),
        )
        .await;
    assert_errors(&reply, 400, "\"password\" must be a string");
    let reply = client
        .post(
            "/users/login",
            json!({"username": "ADA@example.com"}),
            Some(&cookie),
        )
        .await;
    reply.session_cookie(true);
}

async fn login_cookie_reuse_kills_the_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = Client::of(&app);
    app.register("ada@example.com").await;
    let old = client.login("ada@example.com").await;
    let other_session = client.login("ada@example.com").await;
    let renew = |cookie: String| {
        let client = client.clone();
        async move {
            client
                .post(
                    "/users/login",
                    json!({"username": "ada@example.com"}),
                    Some(&cookie),
                )
                .await
        }
    };
    let new = renew(old.clone()).await.session_cookie(true);
    // The old refresh token is spent: presenting it again is reuse...
    assert_errors(&renew(old.clone()).await, 401, NOT_AUTHENTICATED);
    // ...which ends the whole session: the newest cookie is dead too.
    assert_errors(&renew(new.clone()).await, 401, NOT_AUTHENTICATED);
    assert_errors(
        &client.get("/api/user", Some(&new)).await,
        401,
        NOT_AUTHENTICATED,
    );
    assert_errors(
        &client.get("/api/user", Some(&old)).await,
        401,
        NOT_AUTHENTICATED,
    );
    // Other sessions of the user are untouched.
    assert_eq!(
        client.get("/api/user", Some(&other_session)).await.status,
        StatusCode::OK
    );
    renew(other_session).await.session_cookie(true);
}

async fn login_without_password_refusals(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = Client::of(&app);
    app.register("ada@example.com").await;
    let cookie = client.login("ada@example.com").await;
    let tokens = CookieTokens::decode(&cookie);
    let renew = |cookie: Option<String>| {
        let client = client.clone();
        async move {
            client
                .post(
                    "/users/login",
                    json!({"username": "ada@example.com"}),
                    cookie.as_deref(),
                )
                .await
        }
    };
    // No cookie, or one that does not read (a broken cookie is no cookie).
    let password_required = "\"password\" is required";
    assert_errors(&renew(None).await, 400, password_required);
    for broken in [
        String::new(),
        "garbage".into(),
        "j%3A%7Bnot%20json".into(),
        encode_uri_component("j:[1]"),
        encode_uri_component(&format!("{{\"refresh_token\":\"{}\"}}", tokens.refresh)),
        encode_uri_component(&format!("j:{{\"access_token\":\"{}\"}}", tokens.access)),
    ] {
        assert_errors(&renew(Some(broken)).await, 400, password_required);
    }
    // A cookie that reads but whose refresh token does not work.
    let expired_refresh = expired_copy(&tokens.refresh, TokenKind::Refresh);
    for bad_refresh in ["garbage", tokens.access.as_str(), expired_refresh.as_str()] {
        let bad = CookieTokens::encode(&tokens.access, bad_refresh);
        assert_errors(&renew(Some(bad)).await, 401, NOT_AUTHENTICATED);
    }
    // None of these spent the real refresh token.
    renew(Some(cookie.clone())).await.session_cookie(true);
    // A logged-out session's cookie.
    let logged_out = client.login("ada@example.com").await;
    let logout = client.get("/api/logout", Some(&logged_out)).await;
    assert_eq!(logout.status, StatusCode::OK);
    assert_errors(&renew(Some(logged_out)).await, 401, NOT_AUTHENTICATED);
}

async fn login_with_another_users_cookie_spends_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = Client::of(&app);
    app.register("ada@example.com").await;
    create_user(
        &app,
        NewUserSpec::new("bob@example.com").with_username("bob"),
    )
    .await;
    let ada = client.login("ada@example.com").await;
    for someone_else in ["bob", "bob@example.com", "ghost", "ghost@example.com"] {
        let reply = client
            .post(
                "/users/login",
                json!({"username": someone_else}),
                Some(&ada),
            )
            .await;
        assert_errors(&reply, 401, NOT_AUTHENTICATED);
    }
    // Ada's refresh token was not spent: she renews with it once, normally.
    let reply = client
        .post(
            "/users/login",
            json!({"username": "ada@example.com"}),
            Some(&ada),
        )
        .await;
    let renewed = reply.session_cookie(true);
    assert_eq!(
        client.get("/api/user", Some(&renewed)).await.body,
        json!({"username": "ada@example.com", "display_name": "Ada Lovelace"})
    );
}

// ---------------------------------------------------------------------------------------
// GET /api/user
// ---------------------------------------------------------------------------------------

async fn current_user_with_the_cookie(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = Client::of(&app);
    app.register("ada@example.com").await;
    create_user(
        &app,
        NewUserSpec::new("bob@example.com").with_username("bob.b"),
    )
    .await;
    let ada = client.login("ada@example.com").await;
    let bob = client.login("bob@example.com").await;
    let reply = client.get("/api/user", Some(&ada)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.body,
        json!({"username": "ada@example.com", "display_name": "Ada Lovelace"})
    );
    assert!(reply.set_cookies().is_empty(), "no renewal needed");
    let reply = client.get("/api/user", Some(&bob)).await;
    assert_eq!(
        reply.body,
        json!({"username": "bob.b", "display_name": "Ada Lovelace"})
    );
    // The cookie is found among others.
    let request = app
        .client
        .get(app.url("/api/user"))
        .header(COOKIE, format!("theme=dark; access_tokens={ada}; lang=en"));
    assert_eq!(app.send(request).await.status, StatusCode::OK);
}

async fn current_user_refusals(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = Client::of(&app);
    app.register("ada@example.com").await;
    let cookie = client.login("ada@example.com").await;
    let tokens = CookieTokens::decode(&cookie);
    assert_errors(&client.get("/api/user", None).await, 401, NOT_AUTHENTICATED);
    let tampered = tampered(&tokens.access);
    for bad in [
        String::new(),
        "garbage".into(),
        encode_uri_component("j:{}"),
        encode_uri_component(&format!("j:{{\"refresh_token\":\"{}\"}}", tokens.refresh)),
        CookieTokens::encode("garbage", &tokens.refresh),
        CookieTokens::encode(&tampered, &tokens.refresh),
        CookieTokens::encode(&tokens.refresh, &tokens.refresh),
    ] {
        assert_errors(
            &client.get("/api/user", Some(&bad)).await,
            401,
            NOT_AUTHENTICATED,
        );
    }
    // None of these spent the refresh token.
    client
        .post(
            "/users/login",
            json!({"username": "ada@example.com"}),
            Some(&cookie),
        )
        .await
        .session_cookie(true);
}

async fn current_user_renews_an_expired_access_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = Client::of(&app);
    app.register("ada@example.com").await;
    let cookie = client.login("ada@example.com").await;
    let stale = with_expired_access(&cookie);
    let reply = client.get("/api/user", Some(&stale)).await;
    assert_eq!(
        reply.body,
        json!({"username": "ada@example.com", "display_name": "Ada Lovelace"})
    );
    let renewed = reply.session_cookie(true);
    let new_tokens = CookieTokens::decode(&renewed);
    let old_tokens = CookieTokens::decode(&cookie);
    assert_ne!(new_tokens.refresh, old_tokens.refresh);
    assert_eq!(
        jwt_payload(&new_tokens.access)["username"],
        "ada@example.com"
    );
    // The new cookie works without renewal.
    let again = client.get("/api/user", Some(&renewed)).await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.set_cookies().is_empty());
    // The old refresh token was spent: the stale cookie again is reuse, which ends the
    // session.
    assert_errors(
        &client.get("/api/user", Some(&stale)).await,
        401,
        NOT_AUTHENTICATED,
    );
    assert_errors(
        &client.get("/api/user", Some(&renewed)).await,
        401,
        NOT_AUTHENTICATED,
    );
}

async fn current_user_renewal_refusals(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = Client::of(&app);
    app.register("ada@example.com").await;
    let cookie = client.login("ada@example.com").await;
    let other = client.login("ada@example.com").await;
    let tokens = CookieTokens::decode(&cookie);
    let other_tokens = CookieTokens::decode(&other);
    let expired_access = expired_copy(&tokens.access, TokenKind::Access);
    for bad in [
        // No refresh token to renew with.
        encode_uri_component(&format!("j:{{\"access_token\":\"{expired_access}\"}}")),
        // A refresh token of another session.
        CookieTokens::encode(&expired_access, &other_tokens.refresh),
        // Broken or expired refresh tokens.
        CookieTokens::encode(&expired_access, "garbage"),
        CookieTokens::encode(
            &expired_access,
            &expired_copy(&tokens.refresh, TokenKind::Refresh),
        ),
    ] {
        assert_errors(
            &client.get("/api/user", Some(&bad)).await,
            401,
            NOT_AUTHENTICATED,
        );
    }
    // Neither session's refresh token was spent.
    for live in [&cookie, &other] {
        let reply = client
            .get("/api/user", Some(&with_expired_access(live)))
            .await;
        reply.session_cookie(true);
    }
    // A logged-out session cannot be renewed.
    let gone = client.login("ada@example.com").await;
    client.get("/api/logout", Some(&gone)).await;
    assert_errors(
        &client
            .get("/api/user", Some(&with_expired_access(&gone)))
            .await,
        401,
        NOT_AUTHENTICATED,
    );
}

// ---------------------------------------------------------------------------------------
// GET /api/logout
// ---------------------------------------------------------------------------------------

async fn logout_clears_the_cookie_and_revokes_the_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = Client::of(&app);
    app.register("ada@example.com").await;
    let cookie = client.login("ada@example.com").await;
    let other = client.login("ada@example.com").await;
    let reply = client.get("/api/logout", Some(&cookie)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, json!({}));
    assert_eq!(reply.set_cookie(), CLEARED_COOKIE);
    // The session is over: its access token, its refresh token, renewal.
    assert_errors(
        &client.get("/api/user", Some(&cookie)).await,
        401,
        NOT_AUTHENTICATED,
    );
    assert_errors(
        &client
            .post(
                "/users/login",
                json!({"username": "ada@example.com"}),
                Some(&cookie),
            )
            .await,
        401,
        NOT_AUTHENTICATED,
    );
    assert_errors(
        &client
            .get("/api/user", Some(&with_expired_access(&cookie)))
            .await,
        401,
        NOT_AUTHENTICATED,
    );
    // Only that session.
    assert_eq!(
        client.get("/api/user", Some(&other)).await.status,
        StatusCode::OK
    );
}

async fn logout_without_a_valid_cookie_still_clears_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = Client::of(&app);
    app.register("ada@example.com").await;
    let cookie = client.login("ada@example.com").await;
    client.get("/api/logout", Some(&cookie)).await;
    let cases = [
        None,
        Some(String::new()),
        Some("garbage".to_owned()),
        Some("%FF%FE".to_owned()),
        Some(encode_uri_component("j:{\"refresh_token\": 42}")),
        Some(CookieTokens::encode("garbage", "garbage")),
        // Already logged out.
        Some(cookie.clone()),
    ];
    for case in cases {
        let reply = client.get("/api/logout", case.as_deref()).await;
        assert_eq!(reply.status, StatusCode::OK, "{case:?}");
        assert_eq!(reply.body, json!({}));
        assert_eq!(reply.set_cookie(), CLEARED_COOKIE);
    }
}

// ---------------------------------------------------------------------------------------
// The cookie
// ---------------------------------------------------------------------------------------

async fn cookie_secure_can_be_turned_off(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("PORTCULLIS_COOKIE_SECURE", "false")]).await;
    let client = Client::of(&app);
    app.register("ada@example.com").await;
    let reply = client
        .post(
            "/api/login",
            json!({"username": "ada@example.com", "password": PASSWORD}),
            None,
        )
        .await;
    let cookie = reply.session_cookie(false);
    assert!(!reply.set_cookie().contains("Secure"));
    let renewed = client
        .post(
            "/api/login",
            json!({"username": "ada@example.com"}),
            Some(&cookie),
        )
        .await
        .session_cookie(false);
    let reply = client
        .get("/api/user", Some(&with_expired_access(&renewed)))
        .await;
    reply.session_cookie(false);
    assert!(!reply.set_cookie().contains("Secure"));
    // The default, for contrast, is in every other test: `session_cookie(true)`.
}

async fn a_browser_cookie_jar_carries_the_session(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("PORTCULLIS_COOKIE_SECURE", "false")]).await;
    app.register("ada@example.com").await;
    let browser = Api {
        client: reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap(),
        base: app.base.clone(),
    };
    let login = browser
        .post(
            "/api/login",
            json!({"username": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK);
    let user = browser.get("/api/user").await;
    assert_eq!(
        user.body,
        json!({"username": "ada@example.com", "display_name": "Ada Lovelace"})
    );
    // Renewal from the jar's cookie alone.
    let renewed = browser
        .post("/users/login", json!({"username": "ada@example.com"}))
        .await;
    let renewed_cookie = renewed.session_cookie(false);
    let user = browser.get("/api/user").await;
    assert_eq!(user.status, StatusCode::OK);
    // Logout clears the jar's cookie and ends the session.
    let logout = browser.get("/api/logout").await;
    assert_eq!(logout.status, StatusCode::OK);
    assert_eq!(logout.body, json!({}));
    let after = browser.get("/api/user").await;
    assert_errors(&after, 401, NOT_AUTHENTICATED);
    let again = browser
        .post("/users/login", json!({"username": "ada@example.com"}))
        .await;
    assert_errors(&again, 400, "\"password\" is required");
    // The cookie the jar held is refused too.
    assert_errors(
        &Client::of(&app)
            .get("/api/user", Some(&renewed_cookie))
            .await,
        401,
        NOT_AUTHENTICATED,
    );
}

async fn the_cookie_reads_as_cookie_parser_reads_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = Client::of(&app);
    let registered = app.register("ada@example.com").await;
    let user_id = registered["user"]["id"].as_str().unwrap().to_owned();
    let before = Utc::now().timestamp();
    let reply = client
        .post(
            "/users/login",
            json!({"username": "Ada@Example.com", "password": PASSWORD}),
            None,
        )
        .await;
    let raw = reply.session_cookie(true);
    // Exactly what Express writes: encodeURIComponent("j:" + JSON.stringify(tokens)).
    let decoded = decode_uri_component(&raw);
    assert!(decoded.starts_with("j:{\"access_token\":\""), "{decoded}");
    assert_eq!(encode_uri_component(&decoded), raw);
    let tokens = CookieTokens::decode(&raw);
    assert_eq!(
        CookieTokens::encode(&tokens.access, &tokens.refresh),
        raw,
        "JSON.stringify's compact form"
    );
    let access = jwt_payload(&tokens.access);
    let refresh = jwt_payload(&tokens.refresh);
    for (payload, kind) in [(&access, "access"), (&refresh, "refresh")] {
        assert_eq!(payload["typ"], kind);
        assert_eq!(payload["sub"], user_id.as_str());
        // No username on the account: its email as stored, not as the client sent it.
        assert_eq!(payload["username"], "ada@example.com");
    }
    assert_eq!(access["sid"], refresh["sid"]);
    let refresh_exp = refresh["exp"].as_i64().unwrap();
    assert!((refresh_exp - before - REFRESH_TTL_SECS).abs() < 60);
    let access_exp = access["exp"].as_i64().unwrap();
    assert!((access_exp - before - 1800).abs() < 60);
}

// ---------------------------------------------------------------------------------------
// The middleware and the extractor, on an embedding service's routes
// ---------------------------------------------------------------------------------------

struct AlwaysReady;

impl Readiness for AlwaysReady {
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Behind `require_user`: the principal is in the extensions and the extractor's.
async fn debts(request: HttpRequest, user: IoweyouUser) -> HttpResponse {
    let from_extensions = request
        .extensions()
        .get::<Principal>()
        .and_then(|p| p.user.email.as_ref().map(|e| e.as_str().to_owned()));
    HttpResponse::Ok().json(json!({
        "email": user.user().email.as_ref().map(|e| e.as_str()),
        "from_extensions": from_extensions,
    }))
}

/// The extractor alone.
async fn profile(user: IoweyouUser) -> HttpResponse {
    HttpResponse::Ok()
        .json(json!({"email": user.into_inner().user.email.map(|e| e.as_str().to_owned())}))
}

/// Fails behind the middleware: a renewed cookie must still reach the client.
async fn failing(_: IoweyouUser) -> Result<HttpResponse, actix_web::Error> {
    Err(actix_web::error::ErrorConflict("nope"))
}

/// An inner middleware that fails: the renewed cookie must reach the client here too.
async fn failing_middleware(
    _: ServiceRequest,
    _: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    Err::<ServiceResponse, _>(actix_web::error::ErrorConflict("nope"))
}

async fn middleware_and_extractor_protect_an_embedding_services_routes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada@example.com").await;
    let state = AppState {
        auth: service_for(&app).await,
        readiness: Arc::new(AlwaysReady),
        config: HttpConfig::default(),
        metrics: None,
    };
    let server = HttpServer::new(move || {
        App::new()
            .configure(portcullis_http::configure(
                state.clone(),
                portcullis_http::all_dialects(),
            ))
            .service(
                web::scope("/api/debts")
                    .wrap(from_fn(require_user))
                    .route("", web::get().to(debts))
                    .route("/failing", web::get().to(failing))
                    .service(
                        web::resource("/failing-middleware")
                            .wrap(from_fn(failing_middleware))
                            .route(web::get().to(debts)),
                    ),
            )
            .route("/profile", web::get().to(profile))
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let embedded = Client(Api::new(format!("http://{}", server.addrs()[0])));
    tokio::spawn(server.run());
    let portcullis = Client::of(&app);

    // A cookie from Portcullis's own login is accepted by the embedding service.
    let cookie = portcullis.login("ada@example.com").await;
    let reply = embedded.get("/api/debts", Some(&cookie)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.body,
        json!({"email": "ada@example.com", "from_extensions": "ada@example.com"})
    );
    assert!(reply.set_cookies().is_empty());
    let reply = embedded.get("/profile", Some(&cookie)).await;
    assert_eq!(reply.body, json!({"email": "ada@example.com"}));

    // Unauthenticated requests are answered by the middleware and the extractor alike.
    let tokens = CookieTokens::decode(&cookie);
    for path in [
        "/api/debts",
        "/api/debts/failing",
        "/api/debts/failing-middleware",
        "/profile",
    ] {
        for bad in [
            None,
            Some("garbage".to_owned()),
            Some(CookieTokens::encode("garbage", &tokens.refresh)),
        ] {
            assert_errors(
                &embedded.get(path, bad.as_deref()).await,
                401,
                NOT_AUTHENTICATED,
            );
        }
    }

    // The extractor alone cannot renew (it cannot set the cookie) and spends nothing...
    let stale = with_expired_access(&cookie);
    assert_errors(
        &embedded.get("/profile", Some(&stale)).await,
        401,
        NOT_AUTHENTICATED,
    );
    // ...the middleware renews transparently, adding the new cookie to the response.
    let reply = embedded.get("/api/debts", Some(&stale)).await;
    assert_eq!(
        reply.body,
        json!({"email": "ada@example.com", "from_extensions": "ada@example.com"})
    );
    let renewed = reply.session_cookie(true);
    // The renewed cookie works on Portcullis's own endpoints.
    assert_eq!(
        portcullis.get("/api/user", Some(&renewed)).await.status,
        StatusCode::OK
    );
    let renewed_again = {
        let reply = embedded
            .get("/api/debts/failing", Some(&with_expired_access(&renewed)))
            .await;
        assert_eq!(reply.status, StatusCode::CONFLICT);
        reply.session_cookie_of_any_status(true)
    };
    let renewed_thrice = {
        let reply = embedded
            .get(
                "/api/debts/failing-middleware",
                Some(&with_expired_access(&renewed_again)),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CONFLICT);
        reply.session_cookie_of_any_status(true)
    };
    assert_eq!(
        embedded.get("/profile", Some(&renewed_thrice)).await.status,
        StatusCode::OK
    );
    // The session logged out on Portcullis is refused by the embedding service.
    portcullis.get("/api/logout", Some(&renewed_thrice)).await;
    assert_errors(
        &embedded.get("/api/debts", Some(&renewed_thrice)).await,
        401,
        NOT_AUTHENTICATED,
    );
    assert_errors(
        &embedded.get("/profile", Some(&renewed_thrice)).await,
        401,
        NOT_AUTHENTICATED,
    );

    // Without `AppState` in the app data: a 500, not a panic.
    let bare = HttpServer::new(|| {
        App::new()
            .service(
                web::scope("/api/debts")
                    .wrap(from_fn(require_user))
                    .route("", web::get().to(debts)),
            )
            .route("/profile", web::get().to(profile))
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let bare_client = Client(Api::new(format!("http://{}", bare.addrs()[0])));
    tokio::spawn(bare.run());
    for path in ["/api/debts", "/profile"] {
        assert_errors(
            &bare_client.get(path, Some(&cookie)).await,
            500,
            "Internal server error",
        );
    }
}

// ---------------------------------------------------------------------------------------
// Internal failures
// ---------------------------------------------------------------------------------------

/// PostgreSQL only: a SQLite file cannot be taken away from under the pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_failures_are_500() {
    let app = TestApp::spawn(Backend::Postgres).await;
    app.register("ada@example.com").await;
    let client = Client::of(&app);
    let cookie = client.login("ada@example.com").await;
    let TestApp { database, .. } = app;
    drop_database(database).await;
    let internal = "Internal server error";
    assert_errors(
        &client
            .post(
                "/users/login",
                json!({"username": "ada@example.com", "password": PASSWORD}),
                None,
            )
            .await,
        500,
        internal,
    );
    assert_errors(
        &client
            .post(
                "/api/login",
                json!({"username": "ada@example.com"}),
                Some(&cookie),
            )
            .await,
        500,
        internal,
    );
    assert_errors(&client.get("/api/user", Some(&cookie)).await, 500, internal);
    // Logout still logs the client out.
    let reply = client.get("/api/logout", Some(&cookie)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.set_cookie(), CLEARED_COOKIE);
}
