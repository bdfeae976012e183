//! The pocketbase dialect (`002_*`): every row and error cell, over HTTP.

use chrono::{DateTime, Utc};
use portcullis_crypto::{Argon2Hasher, Argon2Params};
use portcullis_domain::{
    AuthEvent, Client, EventKind, EventOutcome, Password, PasswordHasher, Profile, User, UserId,
    UserRepository,
};
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

use crate::support::app::{
    NOW_TOLERANCE_SECS, NewUserSpec, PASSWORD, TestApp, drop_database, jwt_payload, parse_utc,
    token,
};
use crate::support::backend::Backend;
use crate::support::client::Reply;
use crate::support::uri::{decode_uri_component, encode_uri_component};

crate::on_backends! {
    both: [
        login_by_username_returns_the_record_and_a_token,
        login_by_email_in_any_case,
        a_registered_user_gets_the_defaults,
        profile_values_override_the_defaults,
    ],
    sqlite: [
        the_body_needs_no_content_type,
        the_token_carries_pocketbases_claims,
        the_token_lifetime_is_configurable,
        the_token_is_a_session_access_token,
        the_cookie_is_the_sdks_export,
        the_cookie_is_not_secure_when_configured_so,
        an_oversized_cookie_carries_the_stripped_record,
        no_cookie_when_switched_off,
        wrong_credentials_fail_alike,
        field_errors_on_the_shared_path,
        field_errors_on_an_owned_path,
        malformed_json_on_an_owned_path,
        a_body_over_the_limit_is_413,
    ],
}

const EMAIL: &str = "ada@example.com";
const USERNAME: &str = "ada_l";
const TTL_DEFAULT_SECS: i64 = 1_209_600;

const FAILED_TO_AUTHENTICATE: &str = "Failed to authenticate.";
const SOMETHING_WENT_WRONG: &str = "Something went wrong while processing your request.";

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Reading a login's body.
impl Reply {
    fn token(&self) -> String {
        self.body["token"].as_str().unwrap().to_owned()
    }

    /// The record exactly as it appears in the body text.
    fn raw_record(&self) -> &str {
        let start = self.text.find(r#"{"record":"#).unwrap() + r#"{"record":"#.len();
        let end = self.text.rfind(r#","token":""#).unwrap();
        &self.text[start..end]
    }
}

/// `POST path` with `text` as the body and the given content type, or none.
async fn post_text(app: &TestApp, path: &str, text: &str, content_type: Option<&str>) -> Reply {
    let mut request = app.client.post(app.url(path)).body(text.to_owned());
    if let Some(content_type) = content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    app.send(request).await
}

async fn pb_login(app: &TestApp, username: &str, password: &str) -> Reply {
    app.post(
        "/auth/login",
        json!({"username": username, "password": password}),
    )
    .await
}

/// An account stored through the repository, so that it can have a username, a
/// verified email, a profile and chosen timestamps. Its password is [`PASSWORD`].
struct NewAccount {
    email: &'static str,
    username: Option<&'static str>,
    verified: bool,
    profile: Value,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl Default for NewAccount {
    fn default() -> Self {
        Self {
            email: EMAIL,
            username: Some(USERNAME),
            verified: true,
            profile: json!({}),
            created_at: parse_utc("2024-01-26T15:05:23.262Z"),
            updated_at: parse_utc("2024-02-01T08:00:00.5Z"),
        }
    }
}

async fn insert_user(app: &TestApp, account: NewAccount) -> User {
    let database = app.database.database().clone();
    tokio::task::spawn_blocking(move || {
        let hasher = Argon2Hasher::new(Argon2Params {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap();
        let Value::Object(profile) = account.profile else {
            panic!("a profile is a JSON object");
        };
        let new = NewUserSpec {
            email: account.email,
            username: account.username,
            must_change_password: false,
            profile: Profile::from_map(profile),
        }
        .new_user();
        let user = User {
            id: UserId::generate(account.created_at),
            email: new.email,
            username: new.username,
            name: new.name,
            bio: new.bio,
            email_verified: account.verified,
            must_change_password: new.must_change_password,
            profile: new.profile,
            password_hash: hasher.hash(&Password::new(PASSWORD)).unwrap(),
            password_changed_at: account.created_at,
            created_at: account.created_at,
            updated_at: account.updated_at,
            credential_version: 0,
        };
        let imported = AuthEvent::new(
            EventKind::Registration,
            EventOutcome::Success,
            user.created_at,
            &Client::default(),
        )
        .for_user(user.id);
        database.create(&user, &imported).unwrap();
        user
    })
    .await
    .unwrap()
}

/// The JSON that the SDK's `ClientResponseError` serialises to, plus PocketBase's own
/// error keys at the top level (so the SDK's `err.response.message` reads it).
fn client_response_error(url: &str, status: u16, message: &str, data: Value) -> Value {
    json!({
        "url": url,
        "status": status,
        "response": {"code": status, "message": message, "data": data},
        "isAbort": false,
        "originalError": {
            "url": url,
            "status": status,
            "data": {"code": status, "message": message, "data": data},
        },
        "name": format!("ClientResponseError {status}"),
        "code": status,
        "message": message,
        "data": data,
    })
}

#[track_caller]
fn assert_pb_error(reply: &Reply, url: &str, status: u16, message: &str, data: Value) {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.text);
    assert_eq!(
        reply.body,
        client_response_error(url, status, message, data),
        "{}",
        reply.text
    );
    assert!(
        reply.set_cookies().is_empty(),
        "no cookie on a failure: {:?}",
        reply.set_cookies()
    );
}

fn blank() -> Value {
    json!({"code": "validation_required", "message": "Cannot be blank."})
}

/// `{"<field>": blank}` for each field.
fn blank_fields(fields: &[&str]) -> Value {
    Value::Object(fields.iter().map(|f| ((*f).to_owned(), blank())).collect())
}

fn http_date(seconds: i64) -> String {
    DateTime::from_timestamp(seconds, 0)
        .unwrap()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// The `pb_auth` cookie of a login: its decoded JSON text and its attributes.
fn pb_auth_cookie(reply: &Reply) -> (String, String) {
    let cookies = reply.set_cookies();
    assert_eq!(cookies.len(), 1, "one cookie: {cookies:?}");
    let (pair, attributes) = cookies[0].split_once("; ").unwrap();
    let value = pair.strip_prefix("pb_auth=").unwrap();
    // encodeURIComponent leaves nothing a cookie value may not hold.
    assert!(
        value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.!~*'()%".contains(&b)),
        "{value}"
    );
    (decode_uri_component(value), attributes.to_owned())
}

fn is_pocketbase_date(text: &str) -> bool {
    // 2024-01-26 15:05:23.262Z
    text.len() == 24
        && DateTime::parse_from_str(&text.replace('Z', "+0000"), "%Y-%m-%d %H:%M:%S%.3f%z").is_ok()
}

// ---------------------------------------------------------------------------------------
// Success
// ---------------------------------------------------------------------------------------

async fn login_by_username_returns_the_record_and_a_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = insert_user(&app, NewAccount::default()).await;
    let reply = pb_login(&app, USERNAME, PASSWORD).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.headers[CONTENT_TYPE], "application/json",
        "{:?}",
        reply.headers
    );
    let token = reply.token();
    // Exactly the document's record: every key, in alphabetical order, with the
    // defaults of an empty profile.
    let expected = format!(
        concat!(
            r#"{{"record":{{"avatar":"","collectionId":"_pb_users_auth_","collectionName":"users","#,
            r#""created":"2024-01-26 15:05:23.262Z","email":"ada@example.com","emailVisibility":false,"#,
            r#""id":"{id}","language":"en","location":{{"lat":0,"lon":0,"name":""}},"token":"","#,
            r#""unit":"metric","updated":"2024-02-01 08:00:00.500Z","username":"ada_l","verified":true}},"#,
            r#""token":"{token}"}}"#
        ),
        id = user.id,
        token = token
    );
    assert_eq!(reply.text, expected);
    assert_eq!(jwt_payload(&token)["id"], user.id.to_string());
}

async fn login_by_email_in_any_case(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = insert_user(&app, NewAccount::default()).await;
    let by_username = pb_login(&app, USERNAME, PASSWORD).await;
    for identity in [EMAIL, "ADA@Example.COM"] {
        let reply = pb_login(&app, identity, PASSWORD).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert_eq!(reply.body["record"], by_username.body["record"]);
        assert_eq!(reply.body["record"]["id"], user.id.to_string());
        assert_eq!(reply.body["record"]["email"], EMAIL);
        assert_ne!(
            reply.token(),
            by_username.token(),
            "a new session each time"
        );
    }
}

async fn a_registered_user_gets_the_defaults(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let before = Utc::now();
    let registered = app.register("Grace@Example.com").await;
    let reply = pb_login(&app, "grace@example.com", PASSWORD).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let record = &reply.body["record"];
    let keys: Vec<&str> = record
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted);
    assert_eq!(
        keys,
        [
            "avatar",
            "collectionId",
            "collectionName",
            "created",
            "email",
            "emailVisibility",
            "id",
            "language",
            "location",
            "token",
            "unit",
            "updated",
            "username",
            "verified"
        ]
    );
    assert_eq!(record["id"], registered["user"]["id"]);
    assert_eq!(record["email"], "grace@example.com");
    assert_eq!(record["username"], "", "no username");
    assert_eq!(record["verified"], false, "an unverified email");
    assert_eq!(record["emailVisibility"], false);
    assert_eq!(record["avatar"], "");
    assert_eq!(record["language"], "en");
    assert_eq!(record["location"], json!({"lat": 0, "lon": 0, "name": ""}));
    assert_eq!(record["token"], "");
    assert_eq!(record["unit"], "metric");
    for field in ["created", "updated"] {
        let text = record[field].as_str().unwrap();
        assert!(is_pocketbase_date(text), "{field}: {text}");
        let when = parse_utc(&text.replacen(' ', "T", 1));
        assert!((when - before).num_seconds().abs() < NOW_TOLERANCE_SECS);
    }
    // The raw text has the keys in that order too.
    assert!(
        reply.raw_record().starts_with(
            r#"{"avatar":"","collectionId":"_pb_users_auth_","collectionName":"users","created":""#
        ),
        "{}",
        reply.text
    );
}

async fn profile_values_override_the_defaults(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = insert_user(
        &app,
        NewAccount {
            username: None,
            verified: false,
            profile: json!({
                "avatar": "ada_portrait.png",
                "emailVisibility": true,
                "language": "de",
                "location": {"lat": 52.52, "lon": 13.405, "name": "Berlin"},
                "token": "pref-token",
                "unit": "imperial",
                "unrelated": "not shown",
            }),
            ..NewAccount::default()
        },
    )
    .await;
    let reply = pb_login(&app, EMAIL, PASSWORD).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.raw_record(),
        format!(
            concat!(
                r#"{{"avatar":"ada_portrait.png","collectionId":"_pb_users_auth_","collectionName":"users","#,
                r#""created":"2024-01-26 15:05:23.262Z","email":"ada@example.com","emailVisibility":true,"#,
                r#""id":"{id}","language":"de","location":{{"lat":52.52,"lon":13.405,"name":"Berlin"}},"#,
                r#""token":"pref-token","unit":"imperial","updated":"2024-02-01 08:00:00.500Z","#,
                r#""username":"","verified":false}}"#
            ),
            id = user.id
        )
    );
    // Values of the wrong type, and a partial location, fall back to the defaults.
    insert_user(
        &app,
        NewAccount {
            email: "bo@example.com",
            username: Some("bo_b"),
            profile: json!({
                "avatar": 5, "emailVisibility": "yes", "language": null,
                "location": {"name": "Paris"}, "token": false, "unit": ["si"],
            }),
            ..NewAccount::default()
        },
    )
    .await;
    let reply = pb_login(&app, "bo_b", PASSWORD).await;
    let record = &reply.body["record"];
    assert_eq!(record["avatar"], "");
    assert_eq!(record["emailVisibility"], false);
    assert_eq!(record["language"], "en");
    assert_eq!(
        record["location"],
        json!({"lat": 0, "lon": 0, "name": "Paris"})
    );
    assert_eq!(record["token"], "");
    assert_eq!(record["unit"], "metric");
}

async fn the_body_needs_no_content_type(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    insert_user(&app, NewAccount::default()).await;
    let body = format!(r#"{{"username": "{USERNAME}", "password": "{PASSWORD}"}}"#);
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let reply = post_text(&app, "/auth/login", &body, content_type).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{content_type:?}: {}",
            reply.text
        );
        assert_eq!(reply.body["record"]["username"], USERNAME);
    }
    // Errors too.
    let wrong = format!(r#"{{"username": "{USERNAME}", "password": "not it"}}"#);
    let reply = post_text(&app, "/auth/login", &wrong, None).await;
    assert_pb_error(
        &reply,
        &app.url("/auth/login"),
        400,
        FAILED_TO_AUTHENTICATE,
        json!({}),
    );
}

async fn the_token_carries_pocketbases_claims(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = insert_user(&app, NewAccount::default()).await;
    let now = Utc::now().timestamp();
    let reply = pb_login(&app, USERNAME, PASSWORD).await;
    let claims = jwt_payload(&reply.token());
    assert_eq!(claims["id"], user.id.to_string());
    assert_eq!(claims["collectionId"], "_pb_users_auth_");
    assert_eq!(claims["type"], "authRecord");
    assert_eq!(
        claims["sub"],
        user.id.to_string(),
        "Portcullis's own claims"
    );
    assert_eq!(claims["typ"], "access");
    let exp = claims["exp"].as_i64().unwrap();
    assert!(
        (exp - now - TTL_DEFAULT_SECS).abs() < NOW_TOLERANCE_SECS,
        "exp {exp}, now {now}"
    );
    // The cookie expires with the token.
    let (_, attributes) = pb_auth_cookie(&reply);
    assert!(
        attributes.contains(&format!("Expires={};", http_date(exp))),
        "{attributes}"
    );
}

async fn the_token_lifetime_is_configurable(backend: Backend) {
    let app =
        TestApp::spawn_with(backend, &[("PORTCULLIS_POCKETBASE_TOKEN_TTL_SECS", "600")]).await;
    insert_user(&app, NewAccount::default()).await;
    let now = Utc::now().timestamp();
    let reply = pb_login(&app, USERNAME, PASSWORD).await;
    let exp = jwt_payload(&reply.token())["exp"].as_i64().unwrap();
    assert!(
        (exp - now - 600).abs() < NOW_TOLERANCE_SECS,
        "exp {exp}, now {now}"
    );
    let (_, attributes) = pb_auth_cookie(&reply);
    assert!(attributes.contains(&http_date(exp)), "{attributes}");
    // authapi's tokens keep their own lifetime.
    let authapi = app.login(EMAIL, PASSWORD).await;
    let access = token(&authapi.body, "access");
    let authapi_exp = jwt_payload(&access)["exp"].as_i64().unwrap();
    assert!((authapi_exp - now - 1800).abs() < NOW_TOLERANCE_SECS);
}

async fn the_token_is_a_session_access_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    insert_user(&app, NewAccount::default()).await;
    let first = pb_login(&app, USERNAME, PASSWORD).await.token();
    let second = pb_login(&app, EMAIL, PASSWORD).await.token();
    for token in [&first, &second] {
        let welcome = app.post_bearer("/auth", token).await;
        assert_eq!(welcome.status, StatusCode::OK, "{}", welcome.body);
        assert_eq!(welcome.body["user"]["email"], EMAIL);
    }
    // A password reset ends every session: the tokens stop working at once.
    app.post("/auth/forgot-password", json!({"email": EMAIL}))
        .await;
    let secret = app.mail().await.last_secret_for(EMAIL).unwrap();
    let reset = app
        .post(
            &format!("/auth/reset-password?token={secret}"),
            json!({"password": "a brand new secret"}),
        )
        .await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.body);
    for token in [&first, &second] {
        assert_eq!(
            app.post_bearer("/auth", token).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_pb_error(
        &pb_login(&app, USERNAME, PASSWORD).await,
        &app.url("/auth/login"),
        400,
        FAILED_TO_AUTHENTICATE,
        json!({}),
    );
    let fresh = pb_login(&app, USERNAME, "a brand new secret").await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.text);
    assert_eq!(
        app.post_bearer("/auth", &fresh.token()).await.status,
        StatusCode::OK
    );
}

async fn the_cookie_is_the_sdks_export(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    insert_user(&app, NewAccount::default()).await;
    let reply = pb_login(&app, USERNAME, PASSWORD).await;
    let token = reply.token();
    let exp = jwt_payload(&token)["exp"].as_i64().unwrap();
    let (json_text, attributes) = pb_auth_cookie(&reply);
    // JSON.stringify({token, model: record}): compact, the record exactly as served.
    assert_eq!(
        json_text,
        format!(r#"{{"token":"{token}","model":{}}}"#, reply.raw_record())
    );
    let cookie: Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(
        cookie,
        json!({"token": token, "model": reply.body["record"]})
    );
    // The SDK's attribute order; Secure by default; not HttpOnly.
    assert_eq!(
        attributes,
        format!(
            "Path=/; Expires={}; Secure; SameSite=Strict",
            http_date(exp)
        )
    );
    // The whole header, byte for byte.
    let expected = format!("pb_auth={}; {attributes}", encode_uri_component(&json_text));
    assert_eq!(reply.set_cookies(), [expected]);
}

async fn the_cookie_is_not_secure_when_configured_so(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("PORTCULLIS_COOKIE_SECURE", "false")]).await;
    insert_user(&app, NewAccount::default()).await;
    let reply = pb_login(&app, USERNAME, PASSWORD).await;
    let exp = jwt_payload(&reply.token())["exp"].as_i64().unwrap();
    let (_, attributes) = pb_auth_cookie(&reply);
    assert_eq!(
        attributes,
        format!("Path=/; Expires={}; SameSite=Strict", http_date(exp))
    );
}

async fn an_oversized_cookie_carries_the_stripped_record(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = insert_user(
        &app,
        NewAccount {
            profile: json!({"avatar": "a".repeat(3000)}),
            ..NewAccount::default()
        },
    )
    .await;
    let reply = pb_login(&app, USERNAME, PASSWORD).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.body["record"]["avatar"],
        "a".repeat(3000),
        "the body is whole"
    );
    let (json_text, _) = pb_auth_cookie(&reply);
    let token = reply.token();
    // Over 4096 bytes the SDK keeps id and email, then collectionId, collectionName and
    // verified in the record's order.
    assert_eq!(
        json_text,
        format!(
            r#"{{"token":"{token}","model":{{"id":"{}","email":"{EMAIL}","collectionId":"_pb_users_auth_","collectionName":"users","verified":true}}}}"#,
            user.id
        )
    );
    assert!(reply.set_cookies()[0].len() <= 4096);
}

async fn no_cookie_when_switched_off(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("PORTCULLIS_POCKETBASE_COOKIE", "false")]).await;
    insert_user(&app, NewAccount::default()).await;
    let reply = pb_login(&app, USERNAME, PASSWORD).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert!(reply.set_cookies().is_empty(), "{:?}", reply.headers);
    assert_eq!(reply.body["record"]["username"], USERNAME);
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

async fn wrong_credentials_fail_alike(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    insert_user(&app, NewAccount::default()).await;
    let url = app.url("/auth/login");
    let wrong = pb_login(&app, USERNAME, "not the password").await;
    // The full shape, byte for byte, in the document's key order.
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        wrong.text,
        format!(
            concat!(
                r#"{{"url":"{url}","status":400,"#,
                r#""response":{{"code":400,"message":"Failed to authenticate.","data":{{}}}},"#,
                r#""isAbort":false,"#,
                r#""originalError":{{"url":"{url}","status":400,"#,
                r#""data":{{"code":400,"message":"Failed to authenticate.","data":{{}}}}}},"#,
                r#""name":"ClientResponseError 400","#,
                r#""code":400,"message":"Failed to authenticate.","data":{{}}}}"#
            ),
            url = url
        )
    );
    assert_eq!(wrong.headers[CONTENT_TYPE], "application/json");
    let too_long = "x".repeat(300);
    for (username, password) in [
        (EMAIL, "not the password"),
        ("ghost", PASSWORD),
        ("ghost@example.com", PASSWORD),
        ("not an identifier!", PASSWORD),
        ("   ", PASSWORD),
        (USERNAME, too_long.as_str()),
        (USERNAME, " "),
    ] {
        let reply = pb_login(&app, username, password).await;
        assert_pb_error(&reply, &url, 400, FAILED_TO_AUTHENTICATE, json!({}));
        assert_eq!(reply.text, wrong.text, "{username:?}");
    }
    // The URL is the one called, query string included.
    let reply = app
        .post(
            "/auth/login?expand=profile",
            json!({"username": USERNAME, "password": "nope"}),
        )
        .await;
    assert_pb_error(
        &reply,
        &app.url("/auth/login?expand=profile"),
        400,
        FAILED_TO_AUTHENTICATE,
        json!({}),
    );
}

async fn field_errors_on_the_shared_path(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    insert_user(&app, NewAccount::default()).await;
    let url = app.url("/auth/login");
    // Every body here has `username`, so it is pocketbase's.
    let cases = [
        (json!({"username": ""}), &["password", "username"][..]),
        (json!({"username": "", "password": PASSWORD}), &["username"]),
        (
            json!({"username": null, "password": PASSWORD}),
            &["username"],
        ),
        (json!({"username": 42, "password": PASSWORD}), &["username"]),
        (
            json!({"username": ["ada_l"], "password": PASSWORD}),
            &["username"],
        ),
        (
            json!({"username": {"a": 1}, "password": PASSWORD}),
            &["username"],
        ),
        (json!({"username": USERNAME}), &["password"]),
        (json!({"username": USERNAME, "password": ""}), &["password"]),
        (
            json!({"username": USERNAME, "password": null}),
            &["password"],
        ),
        (
            json!({"username": USERNAME, "password": 12345678}),
            &["password"],
        ),
        (
            json!({"username": true, "password": false}),
            &["password", "username"],
        ),
        (
            json!({"username": "", "password": ""}),
            &["password", "username"],
        ),
    ];
    for (body, fields) in cases {
        let reply = app.post("/auth/login", body.clone()).await;
        assert_pb_error(
            &reply,
            &url,
            400,
            SOMETHING_WENT_WRONG,
            blank_fields(fields),
        );
        assert!(
            reply.text.contains(
                r#""data":{"code":400,"message":"Something went wrong while processing your request.","data":{"#
            ),
            "{body}: {}",
            reply.text
        );
    }
    // A body without `username` is authapi's (the path's owner), whatever else it has.
    let authapi = app.post("/auth/login", json!({"password": PASSWORD})).await;
    assert_eq!(authapi.status, StatusCode::BAD_REQUEST);
    assert_eq!(authapi.body["message"], "\"email\" is required");
    // And one with both keys too: authapi claims `email` first.
    let both = app
        .post(
            "/auth/login",
            json!({"email": EMAIL, "username": USERNAME, "password": PASSWORD}),
        )
        .await;
    assert_eq!(both.status, StatusCode::OK);
    assert!(both.body.get("tokens").is_some(), "{}", both.text);
}

async fn field_errors_on_an_owned_path(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("PORTCULLIS_POCKETBASE_PREFIX", "/pb")]).await;
    insert_user(&app, NewAccount::default()).await;
    let url = app.url("/pb/auth/login");
    for (body, fields) in [
        (json!({"password": PASSWORD}), &["username"][..]),
        (json!({}), &["password", "username"]),
        (json!({"email": EMAIL}), &["password", "username"]),
    ] {
        let reply = app.post("/pb/auth/login", body).await;
        assert_pb_error(
            &reply,
            &url,
            400,
            SOMETHING_WENT_WRONG,
            blank_fields(fields),
        );
    }
    // An empty body reads as `{}`.
    for content_type in [None, Some("application/json")] {
        let reply = post_text(&app, "/pb/auth/login", "", content_type).await;
        assert_pb_error(
            &reply,
            &url,
            400,
            SOMETHING_WENT_WRONG,
            blank_fields(&["password", "username"]),
        );
    }
    // The prefixed login works.
    let reply = app
        .post(
            "/pb/auth/login",
            json!({"username": USERNAME, "password": PASSWORD}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["record"]["username"], USERNAME);
    // The unprefixed path is authapi's alone now.
    let authapi = pb_login(&app, USERNAME, PASSWORD).await;
    assert_eq!(authapi.body["message"], "\"email\" is required");
}

async fn malformed_json_on_an_owned_path(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("PORTCULLIS_POCKETBASE_PREFIX", "/pb")]).await;
    let url = app.url("/pb/auth/login");
    for text in [
        "{oops",
        "{\"username\": ",
        "nope",
        "[1, 2]",
        "\"ada\"",
        "42",
    ] {
        for content_type in [None, Some("application/json")] {
            let reply = post_text(&app, "/pb/auth/login", text, content_type).await;
            assert_pb_error(&reply, &url, 400, "Invalid json", json!({}));
        }
    }
    // On the shared path a malformed body is authapi's, the path's owner.
    let shared = post_text(&app, "/auth/login", "{oops", Some("application/json")).await;
    assert_eq!(
        shared.body,
        json!({"code": 400, "message": "Malformed JSON body"})
    );
    // With pocketbase alone, it owns `/auth/login`.
    let alone = TestApp::spawn_with(backend, &[("PORTCULLIS_DIALECTS", "pocketbase")]).await;
    insert_user(&alone, NewAccount::default()).await;
    let reply = post_text(&alone, "/auth/login", "{oops", None).await;
    assert_pb_error(
        &reply,
        &alone.url("/auth/login"),
        400,
        "Invalid json",
        json!({}),
    );
    let reply = alone
        .post("/auth/login", json!({"email": EMAIL, "password": PASSWORD}))
        .await;
    assert_pb_error(
        &reply,
        &alone.url("/auth/login"),
        400,
        SOMETHING_WENT_WRONG,
        blank_fields(&["username"]),
    );
    assert_eq!(
        pb_login(&alone, USERNAME, PASSWORD).await.status,
        StatusCode::OK
    );
}

async fn a_body_over_the_limit_is_413(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("PORTCULLIS_POCKETBASE_PREFIX", "/pb")]).await;
    let huge = format!(
        r#"{{"username": "{}", "password": "x"}}"#,
        "x".repeat(16 * 1024)
    );
    let reply = post_text(&app, "/pb/auth/login", &huge, Some("application/json")).await;
    assert_pb_error(
        &reply,
        &app.url("/pb/auth/login"),
        413,
        "Request entity too large",
        json!({}),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_internal_failure_is_a_500_in_the_same_shape() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let url = app.url("/auth/login");
    let TestApp { api, database, .. } = app;
    drop_database(database).await;
    let reply = api
        .post(
            "/auth/login",
            json!({"username": USERNAME, "password": PASSWORD}),
        )
        .await;
    assert_pb_error(&reply, &url, 500, SOMETHING_WENT_WRONG, json!({}));
}
