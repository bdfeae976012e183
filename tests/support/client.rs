//! Talking to a test server over HTTP, and reading its answers.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::{Value, json};

/// How long one HTTP request may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// A client for one server, on loopback, never through a proxy.
#[derive(Clone)]
pub struct Api {
    pub client: reqwest::Client,
    pub base: String,
}

impl Api {
    /// A client for the server at `base` (`http://127.0.0.1:PORT`).
    pub fn new(base: String) -> Self {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(HTTP_TIMEOUT)
            .build()
            .unwrap_or_else(|e| panic!("cannot build an HTTP client: {e}"));
        Self { client, base }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request built on [`Api::client`] and reads the response.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("request to {} failed: {e}", self.base));
        Reply::read(response).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.client.get(self.url(path))).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(self.client.post(self.url(path)).json(&body))
            .await
    }

    /// `POST path` with `Authorization: Bearer <token>` and no body.
    pub async fn post_bearer(&self, path: &str, token: &str) -> Reply {
        self.send(self.client.post(self.url(path)).bearer_auth(token))
            .await
    }

    /// authapi's login.
    pub async fn login(&self, login: &str, password: &str) -> Reply {
        self.post("/auth/login", json!({"email": login, "password": password}))
            .await
    }
}

/// A response: status, headers, the body's text and the body as JSON (`Value::Null`
/// when it is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Reply {
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response
            .text()
            .await
            .unwrap_or_else(|e| panic!("cannot read a response body: {e}"));
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            text,
            body,
        }
    }

    /// Fails the test unless the status is `status` and the body JSON; returns the body.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text
        );
        assert!(
            !self.body.is_null(),
            "status {status}: the body is not JSON: {:?}",
            self.text
        );
        &self.body
    }

    /// Fails the test unless this is the authapi error `{"code": status, "message":
    /// message}`, with `details` when the message lists field problems: one
    /// `{"field", "message"}` per problem, their messages making up `message`.
    #[track_caller]
    pub fn expect_error(&self, status: u16, message: &str) {
        let mut body = self.body.clone();
        if let Some(details) = body.as_object_mut().and_then(|o| o.remove("details")) {
            let messages: Vec<&str> = details
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    assert_eq!(sorted_keys(d), ["field", "message"], "{}", self.text);
                    d["message"].as_str().unwrap_or_default()
                })
                .collect();
            assert!(!messages.is_empty(), "empty details: {}", self.text);
            assert_eq!(messages.join(", "), message, "{}", self.text);
        }
        assert_eq!(
            (self.status.as_u16(), &body),
            (status, &json!({"code": status, "message": message})),
            "unexpected error response: {}",
            self.text
        );
    }

    /// Every `Set-Cookie` header.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| {
                v.to_str()
                    .unwrap_or_else(|e| panic!("a Set-Cookie header is not text: {e}"))
                    .to_owned()
            })
            .collect()
    }
}

/// The keys of a JSON object, sorted (empty for anything else).
pub fn sorted_keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

/// A UUID in its canonical text form (8-4-4-4-12 hex digits).
pub fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
}
