//! The production application on a fresh database per test, driven over real HTTP.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use portcullis_domain::{Email, MailError, Mailer, ResetSecret};
use portcullis_persistence::testing::TestDatabase;
use portcullis_server::{Application, Config};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A fixed signing key, so tests can mint tokens the server accepts (e.g. expired ones).
pub const JWT_SECRET_B64: &str = "dGVzdC1vbmx5LXNpZ25pbmcta2V5LTAxMjM0NTY3ODlhYmNkZWY=";
pub const PASSWORD: &str = "correct horse battery";

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
        let mut vars: HashMap<String, String> = [
            ("DATABASE_URL", database.url()),
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
        .collect();
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

    async fn reply(response: reqwest::Response) -> Reply {
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

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        Self::reply(
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
        Self::reply(request.send().await.unwrap()).await
    }

    pub async fn post_bearer(&self, path: &str, token: &str) -> Reply {
        Self::reply(
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
        Self::reply(
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
        Self::reply(self.client.get(self.url(path)).send().await.unwrap()).await
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
