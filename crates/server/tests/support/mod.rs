//! The production application on a fresh database per test, driven over real HTTP.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use portcullis_crypto::{JwtCodec, JwtConfig, JwtSecret};
use portcullis_domain::{
    AuthService, Claims, Clock, DisplayName, Email, MailError, Mailer, NewUser, Password, Profile,
    ResetSecret, SystemClock, TokenCodec, TokenKind, User, Username,
};
use portcullis_persistence::testing::TestDatabase;
use portcullis_server::{Application, Config};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A fixed signing key, so tests can mint tokens the server accepts (e.g. expired ones).
pub const JWT_SECRET_B64: &str = "dGVzdC1vbmx5LXNpZ25pbmcta2V5LTAxMjM0NTY3ODlhYmNkZWY=";
pub const PASSWORD: &str = "correct horse battery";
/// How far a server-set time may be from the test's clock.
pub const NOW_TOLERANCE_SECS: i64 = 60;

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// Reset secrets the server "mailed".
#[derive(Default)]
pub struct CapturingMailer(Mutex<Vec<(String, String)>>);

impl CapturingMailer {
    pub fn last_secret_for(&self, email: &str) -> Option<String> {
        let sent = self.0.lock().unwrap();
        sent.iter()
            .rev()
            .find(|(to, _)| to == email)
            .map(|(_, s)| s.clone())
    }

    pub fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

impl Mailer for CapturingMailer {
    fn send_password_reset(
        &self,
        to: &Email,
        secret: &ResetSecret,
        _: DateTime<Utc>,
    ) -> Result<(), MailError> {
        self.0
            .lock()
            .unwrap()
            .push((to.as_str().to_owned(), secret.expose().to_owned()));
        Ok(())
    }
}

/// The environment every test server starts from, on the database at `database_url`.
fn default_vars(database_url: &str) -> HashMap<String, String> {
    [
        ("DATABASE_URL", database_url),
        ("PORTCULLIS_BIND", "127.0.0.1:0"),
        ("PORTCULLIS_WORKERS", "2"),
        ("PORTCULLIS_JWT_SECRET", JWT_SECRET_B64),
        ("PORTCULLIS_JWT_LEEWAY_SECS", "0"),
        // Cheap hashing keeps the suite fast; the parameters' effect is the crypto
        // crate's concern.
        ("PORTCULLIS_ARGON2_MEMORY_KIB", "1024"),
        ("PORTCULLIS_ARGON2_ITERATIONS", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub mailer: Arc<CapturingMailer>,
    pub database: TestDatabase,
}

/// A response: status and JSON body (`Value::Null` when the body is not JSON).
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, &[]).await
    }

    /// Spawns with extra environment variables on top of the test defaults.
    pub async fn spawn_with(backend: Backend, overrides: &[(&str, &str)]) -> Self {
        let database = tokio::task::spawn_blocking(move || match backend {
            Backend::Postgres => TestDatabase::postgres(),
            Backend::Sqlite => TestDatabase::sqlite(),
        })
        .await
        .unwrap();
        let mut vars = default_vars(database.url());
        for (k, v) in overrides {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
        let config = Config::from_lookup(|name| vars.get(name).cloned()).unwrap();
        let mailer = Arc::new(CapturingMailer::default());
        let app = Application::build(config, mailer.clone()).await.unwrap();
        let base = format!("http://{}", app.local_addr());
        tokio::spawn(app.run());
        Self {
            base,
            client: reqwest::Client::new(),
            mailer,
            database,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        reply_of(
            self.client
                .post(self.url(path))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> Reply {
        let request = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body);
        reply_of(request.send().await.unwrap()).await
    }

    pub async fn post_bearer(&self, path: &str, token: &str) -> Reply {
        reply_of(
            self.client
                .post(self.url(path))
                .bearer_auth(token)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post_with_header(&self, path: &str, name: &str, value: &str) -> Reply {
        reply_of(
            self.client
                .post(self.url(path))
                .header(name, value)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Reply {
        reply_of(self.client.get(self.url(path)).send().await.unwrap()).await
    }

    /// Registers through authapi and returns the 201 body.
    pub async fn register(&self, email: &str) -> Value {
        let reply = self
            .post(
                "/auth/register",
                json!({"name": "Ada Lovelace", "bio": "Analyst", "email": email,
                       "password": PASSWORD, "confirm": PASSWORD}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body
    }

    pub async fn login(&self, email: &str, password: &str) -> Reply {
        self.post("/auth/login", json!({"email": email, "password": password}))
            .await
    }
}

/// A response as a [`Reply`].
pub async fn reply_of(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        body,
        headers,
    }
}

/// `body["tokens"]["access"]["token"]` and the like.
pub fn token(body: &Value, kind: &str) -> String {
    let tokens = body.get("tokens").unwrap_or(body);
    tokens[kind]["token"].as_str().unwrap().to_owned()
}

/// Asserts an authapi error body.
pub fn assert_error(reply: &Reply, status: u16, message: &str) {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.body);
    assert_eq!(reply.body["code"], json!(status), "{}", reply.body);
    assert_eq!(reply.body["message"], json!(message), "{}", reply.body);
}

/// Drops `database` (it blocks). Dropping the test database terminates the pool's
/// connections and removes it.
pub async fn drop_database(database: TestDatabase) {
    tokio::task::spawn_blocking(move || drop(database))
        .await
        .unwrap();
}

/// An RFC 3339 time, in UTC.
pub fn parse_utc(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

// --- Accounts -------------------------------------------------------------------------

/// The server configuration `TestApp` starts from (without `spawn_with`'s overrides),
/// for a second service on `app`'s database.
pub fn config_for(app: &TestApp) -> Config {
    let vars = default_vars(app.database.url());
    Config::from_lookup(|name| vars.get(name).cloned()).unwrap()
}

/// The domain service over `app`'s database, signing as `app` does.
pub async fn service_for(app: &TestApp) -> Arc<AuthService> {
    let config = config_for(app);
    let database = app.database.database().clone();
    let mailer = app.mailer.clone();
    let service = tokio::task::spawn_blocking(move || {
        portcullis_server::build_service(&config, &database, mailer)
    })
    .await
    .unwrap()
    .unwrap();
    Arc::new(service)
}

/// An account to create, named "Ada Lovelace", with no bio; its password is
/// [`PASSWORD`].
#[derive(Clone, Debug, Default)]
pub struct NewUserSpec<'a> {
    pub email: &'a str,
    pub username: Option<&'a str>,
    pub must_change_password: bool,
    pub profile: Profile,
}

impl<'a> NewUserSpec<'a> {
    /// An account with `email` only: no username, no flag, an empty profile.
    pub fn new(email: &'a str) -> Self {
        Self {
            email,
            ..Self::default()
        }
    }

    pub fn with_username(self, username: &'a str) -> Self {
        Self {
            username: Some(username),
            ..self
        }
    }

    /// Flagged to change its password at the next login.
    pub fn must_change_password(self) -> Self {
        Self {
            must_change_password: true,
            ..self
        }
    }

    /// The domain's `NewUser` for this account.
    pub fn new_user(&self) -> NewUser {
        NewUser {
            email: Email::parse(self.email).unwrap(),
            username: self.username.map(|u| Username::parse(u).unwrap()),
            name: DisplayName::parse("Ada Lovelace").unwrap(),
            bio: None,
            must_change_password: self.must_change_password,
            profile: self.profile.clone(),
        }
    }
}

/// Creates an account as `portcullis user create` does, through the domain's
/// `create_user` on `app`'s database (authapi's register sets no username or flag).
pub async fn create_user(app: &TestApp, spec: NewUserSpec<'_>) -> User {
    let service = service_for(app).await;
    let new = spec.new_user();
    tokio::task::spawn_blocking(move || service.create_user(new, &Password::new(PASSWORD)))
        .await
        .unwrap()
        .unwrap()
}

// --- Tokens ---------------------------------------------------------------------------

/// A codec signing with `secret_b64`, as the server does with its own key (no leeway).
pub fn codec_with(secret_b64: &str) -> JwtCodec {
    let secret = JwtSecret::from_config_str(secret_b64).unwrap();
    let mut config = JwtConfig::new(secret, "portcullis", "portcullis");
    config.leeway_seconds = 0;
    JwtCodec::new(config).unwrap()
}

/// A codec with the test server's key ([`JWT_SECRET_B64`]).
pub fn test_codec() -> JwtCodec {
    codec_with(JWT_SECRET_B64)
}

/// The claims of a token the server issued (signature and expiry checked).
pub fn claims_of(token: &str, kind: TokenKind) -> Claims {
    test_codec().verify(token, kind, SystemClock.now()).unwrap()
}

/// A correctly signed copy of `token` that expired a minute ago.
pub fn expired_copy(token: &str, kind: TokenKind) -> String {
    let codec = test_codec();
    let mut claims: Claims = codec.verify(token, kind, SystemClock.now()).unwrap();
    claims.issued_at -= TimeDelta::hours(2);
    claims.expires_at = SystemClock.now() - TimeDelta::minutes(1);
    codec.issue(&claims).unwrap()
}

/// `token` with the last character of its signature changed.
pub fn tampered(token: &str) -> String {
    let mut tampered = token.to_owned();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    tampered
}

/// The decoded payload of a JWT.
pub fn jwt_payload(token: &str) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWT: {token}");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap()
}

// --- URI components -------------------------------------------------------------------

/// JavaScript's `encodeURIComponent`.
pub fn encode_uri_component(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// JavaScript's `decodeURIComponent`, for well-formed input. Written here rather than
/// taken from the product, whose encoding the tests check.
pub fn decode_uri_component(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Runs each listed async test body once on PostgreSQL and once on SQLite.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Postgres).await;
                }
            )+
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Sqlite).await;
                }
            )+
        }
    };
}
