//! Every password login path of the four dialects, and each one's answers (a login, a
//! refusal, a 429) told apart exactly, so a test can log in "through every dialect"
//! and know what it got.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use serde_json::{Value, json};

use crate::support::client::{Api, Reply};

/// Every password login path, each in the dialect that owns it (`POST /auth/login` goes
/// to authapi with `email`, to pocketbase with `username`: docs/dialects/README.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// authapi, `POST /auth/login` `{"email", "password"}` (email or username).
    Authapi,
    /// pocketbase, `POST /auth/login` `{"username", "password"}`.
    Pocketbase,
    /// ioweyou, `POST /users/login` `{"username", "password"}`.
    IoweyouUsers,
    /// ioweyou, `POST /api/login`.
    IoweyouApi,
    /// cbs, `POST /api/v1/auth/login` `{"user", "password"}`.
    Cbs,
}

pub const EVERY_PATH: [Via; 5] = [
    Via::Authapi,
    Via::Pocketbase,
    Via::IoweyouUsers,
    Via::IoweyouApi,
    Via::Cbs,
];

impl Via {
    pub fn path(self) -> &'static str {
        match self {
            Self::Authapi | Self::Pocketbase => "/auth/login",
            Self::IoweyouUsers => "/users/login",
            Self::IoweyouApi => "/api/login",
            Self::Cbs => "/api/v1/auth/login",
        }
    }

    pub fn body(self, login: &str, password: &str) -> Value {
        let key = match self {
            Self::Authapi => "email",
            Self::Pocketbase | Self::IoweyouUsers | Self::IoweyouApi => "username",
            Self::Cbs => "user",
        };
        json!({ key: login, "password": password })
    }

    /// The dialect's answer to a wrong password or an unknown account.
    pub fn refused(self, api: &Api) -> (u16, Value) {
        match self {
            Self::Authapi => (
                401,
                json!({"code": 401, "message": "Incorrect email or password"}),
            ),
            Self::Pocketbase => (400, pocketbase_error(api, 400, "Failed to authenticate.")),
            Self::IoweyouUsers | Self::IoweyouApi => (
                401,
                json!({"errors": ["Username or password was incorrect"]}),
            ),
            Self::Cbs => (
                401,
                json!({"code": 1002, "desc": "Invalid user or password",
                       "error": "invalid_credentials"}),
            ),
        }
    }

    /// The dialect's 429 body, as issue 8 and docs/dialects/README.md give it.
    pub fn throttled(self, api: &Api) -> Value {
        match self {
            Self::Authapi => {
                json!({"code": 429, "message": "Too many attempts, try again later"})
            }
            Self::Pocketbase => pocketbase_error(api, 429, "Too many requests."),
            Self::IoweyouUsers | Self::IoweyouApi => {
                json!({"errors": ["Too many attempts, try again later"]})
            }
            Self::Cbs => {
                json!({"code": 1005, "desc": "Too many attempts", "error": "too_many_attempts"})
            }
        }
    }

    /// Whether `reply` is this dialect's successful login.
    pub fn logged_in(self, reply: &Reply) -> bool {
        reply.status == StatusCode::OK
            && match self {
                Self::Authapi => reply.body["tokens"]["access"]["token"].is_string(),
                Self::Pocketbase => reply.body["token"].is_string(),
                Self::IoweyouUsers | Self::IoweyouApi => reply
                    .set_cookies()
                    .iter()
                    .any(|c| c.starts_with("access_tokens=")),
                Self::Cbs => reply.body["code"] == 0,
            }
    }
}

/// pocketbase's `ClientResponseError` for a request to its `/auth/login`.
pub fn pocketbase_error(api: &Api, status: u16, message: &str) -> Value {
    let url = api.url("/auth/login");
    json!({
        "url": url,
        "status": status,
        "response": {"code": status, "message": message, "data": {}},
        "isAbort": false,
        "originalError": {
            "url": url,
            "status": status,
            "data": {"code": status, "message": message, "data": {}},
        },
        "name": format!("ClientResponseError {status}"),
        "code": status,
        "message": message,
        "data": {},
    })
}

/// What a login attempt came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    LoggedIn,
    /// Wrong password or unknown account, in the dialect's words.
    Refused,
    /// 429 in the dialect's words, with this `Retry-After`.
    Throttled(u64),
}

use Outcome::{LoggedIn, Refused, Throttled};

/// `Retry-After` in whole seconds, at least 1.
#[track_caller]
pub fn retry_after(reply: &Reply) -> u64 {
    let value = reply
        .headers
        .get(RETRY_AFTER)
        .unwrap_or_else(|| panic!("no Retry-After: {} {}", reply.status, reply.text))
        .to_str()
        .unwrap();
    let seconds: u64 = value
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After is not whole seconds: {value:?}"));
    assert!(seconds >= 1, "Retry-After: {seconds}");
    seconds
}

/// Asserts that `reply` is a 429 with `body` exactly, JSON, with `Retry-After` and no
/// cookie; returns `Retry-After`.
#[track_caller]
pub fn assert_throttled(reply: &Reply, body: &Value) -> u64 {
    assert_eq!(
        (reply.status.as_u16(), &reply.body),
        (429, body),
        "not the dialect's 429: {}",
        reply.text
    );
    assert!(
        reply.headers[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "{:?}",
        reply.headers
    );
    assert!(
        reply.set_cookies().is_empty(),
        "a refusal sets no cookie: {:?}",
        reply.set_cookies()
    );
    retry_after(reply)
}

/// Classifies `reply` to a login through `via`, asserting that a refusal or a 429 is
/// exactly the dialect's (and anything else a failure).
#[track_caller]
pub fn outcome(via: Via, api: &Api, reply: &Reply) -> Outcome {
    if via.logged_in(reply) {
        return LoggedIn;
    }
    if reply.status == StatusCode::TOO_MANY_REQUESTS {
        return Throttled(assert_throttled(reply, &via.throttled(api)));
    }
    let (status, body) = via.refused(api);
    assert_eq!(
        (reply.status.as_u16(), &reply.body),
        (status, &body),
        "{via:?}: neither a login, a refusal nor a 429: {}",
        reply.text
    );
    assert!(
        reply.headers.get(RETRY_AFTER).is_none(),
        "a plain refusal has no Retry-After"
    );
    Refused
}

/// A login through `via`, with extra request headers (e.g. `X-Forwarded-For`).
pub async fn login_with(
    api: &Api,
    via: Via,
    login: &str,
    password: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let mut request = api
        .client
        .post(api.url(via.path()))
        .json(&via.body(login, password));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    api.send(request).await
}

/// A login through `via`, classified.
pub async fn attempt(api: &Api, via: Via, login: &str, password: &str) -> Outcome {
    attempt_from(api, via, login, password, &[]).await
}

/// [`attempt`] with extra request headers.
pub async fn attempt_from(
    api: &Api,
    via: Via,
    login: &str,
    password: &str,
    headers: &[(&str, &str)],
) -> Outcome {
    let reply = login_with(api, via, login, password, headers).await;
    outcome(via, api, &reply)
}
