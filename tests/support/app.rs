//! The in-process harness: the production application on a fresh database per test,
//! driven over real HTTP.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use portcullis_crypto::{JwtCodec, JwtConfig, JwtSecret};
use portcullis_domain::{
    AuthService, Claims, Clock, DisplayName, Email, MailError, MailOutbox as _, Mailer, NewUser,
    Password, Profile, ResetSecret, SystemClock, TokenCodec, TokenKind, User, Username,
};
use portcullis_persistence::testing::TestDatabase;
use portcullis_server::{Application, Config};
use serde_json::{Value, json};

use super::backend::{Backend, server_env};
use super::client::{Api, Reply};

/// A fixed signing key, so tests can mint tokens the server accepts (e.g. expired ones).
pub const JWT_SECRET_B64: &str = "dGVzdC1vbmx5LXNpZ25pbmcta2V5LTAxMjM0NTY3ODlhYmNkZWY=";
pub const PASSWORD: &str = "correct horse battery";
/// How far a server-set time may be from the test's clock.
pub const NOW_TOLERANCE_SECS: i64 = 60;

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

/// The environment of an in-process server on the database at `database_url`: the
/// common one plus a known signing key and no leeway, so tests can mint tokens.
fn vars(database_url: &str) -> HashMap<String, String> {
    server_env(database_url)
        .into_iter()
        .chain([
            ("PORTCULLIS_JWT_SECRET", JWT_SECRET_B64.to_owned()),
            ("PORTCULLIS_JWT_LEEWAY_SECS", "0".to_owned()),
        ])
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}

/// Starts the application on the database at `database_url`, with `overrides` on top
/// of the test defaults; returns its client and the mailer it sends through.
async fn start(database_url: &str, overrides: &[(&str, &str)]) -> (Api, Arc<CapturingMailer>) {
    let mut vars = vars(database_url);
    for (k, v) in overrides {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    let config = Config::from_lookup(|name| vars.get(name).cloned()).unwrap();
    let mailer = Arc::new(CapturingMailer::default());
    let app = Application::build(config, mailer.clone()).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run());
    (Api::new(base), mailer)
}

/// A server running in the test's process; used as the [`Api`] client it holds.
pub struct TestApp {
    pub api: Api,
    pub mailer: Arc<CapturingMailer>,
    pub database: TestDatabase,
}

impl Deref for TestApp {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
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
        let (api, mailer) = start(database.url(), overrides).await;
        Self {
            api,
            mailer,
            database,
        }
    }

    /// A second server on this one's database (which stays this one's to drop), with
    /// `overrides` on top of the test defaults: two instances sharing their state.
    pub async fn spawn_beside(&self, overrides: &[(&str, &str)]) -> Api {
        start(self.database.url(), overrides).await.0
    }

    /// The mailer, once the outbox holds nothing pending: the server delivers in the
    /// background, so what was queued has been handed to the mailer (or failed).
    pub async fn mail(&self) -> &CapturingMailer {
        let database = self.database.database().clone();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let db = database.clone();
            let pending = tokio::task::spawn_blocking(move || db.status().unwrap().pending.len())
                .await
                .unwrap();
            if pending == 0 {
                return &self.mailer;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{pending} messages still pending after 10 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Registers through authapi and returns the 201 body.
    pub async fn register(&self, email: &str) -> Value {
        self.post(
            "/auth/register",
            json!({"name": "Ada Lovelace", "bio": "Analyst", "email": email,
                   "password": PASSWORD, "confirm": PASSWORD}),
        )
        .await
        .expect(201)
        .clone()
    }
}

/// The requests only the in-process tests make.
impl Api {
    /// `POST path` with `body` as it is, declared JSON.
    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> Reply {
        let request = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body);
        self.send(request).await
    }

    /// `POST path` with one extra header and no body.
    pub async fn post_with_header(&self, path: &str, name: &str, value: &str) -> Reply {
        self.send(self.client.post(self.url(path)).header(name, value))
            .await
    }
}

/// `body["tokens"]["access"]["token"]` and the like.
pub fn token(body: &Value, kind: &str) -> String {
    let tokens = body.get("tokens").unwrap_or(body);
    tokens[kind]["token"].as_str().unwrap().to_owned()
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

/// The domain service over `app`'s database, signing as `app` does (without
/// `spawn_with`'s overrides).
pub async fn service_for(app: &TestApp) -> Arc<AuthService> {
    let vars = vars(app.database.url());
    let config = Config::from_lookup(|name| vars.get(name).cloned()).unwrap();
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
            email: Some(Email::parse(self.email).unwrap()),
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

/// The claims of a token the server issued (signature and expiry checked).
pub fn claims_of(token: &str, kind: TokenKind) -> Claims {
    codec_with(JWT_SECRET_B64)
        .verify(token, kind, SystemClock.now())
        .unwrap()
}

/// A correctly signed copy of `token` that expired a minute ago.
pub fn expired_copy(token: &str, kind: TokenKind) -> String {
    let mut claims = claims_of(token, kind);
    claims.issued_at -= TimeDelta::hours(2);
    claims.expires_at = SystemClock.now() - TimeDelta::minutes(1);
    codec_with(JWT_SECRET_B64).issue(&claims).unwrap()
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
