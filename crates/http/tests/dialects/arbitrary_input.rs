//! Whatever a client sends (any JSON, any bytes, any header value for the token,
//! cookie and forwarding headers), every endpoint answers without panicking, never
//! with a 500, and every refusal in its dialect's own error shape. The inputs come
//! from proptest strategies; the requests go through the whole actix service.

use std::sync::Arc;

use actix_web::http::Method;
use actix_web::http::header::HeaderValue;
use actix_web::{App, test};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value};

use crate::{AlwaysReady, service};
use portcullis_http::{AppState, HttpConfig};

/// Generated inputs per endpoint.
const CASES: usize = 96;

/// The field names the dialects read, so that generated objects reach past "missing".
const KEYS: &[&str] = &[
    "email",
    "password",
    "confirm",
    "name",
    "bio",
    "username",
    "displayName",
    "user",
    "refresh_token",
    "refreshToken",
    "token",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::String),
        "[a-zA-Z0-9@._ -]{0,300}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A value for one of the dialects' fields: mostly a plausible string (an address, a
/// name, a password, a token-like blob), sometimes anything.
fn field_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => "[a-zA-Z0-9]{1,12}(@[a-z]{1,8}\\.[a-z]{2,3})?".prop_map(Value::String),
        2 => "[ -~]{8,40}".prop_map(Value::String),
        1 => "[\\PC]{0,300}".prop_map(Value::String),
        2 => json_value(),
    ]
}

/// An object with some of the dialects' keys.
fn dialect_object() -> impl Strategy<Value = Value> {
    prop::collection::vec((prop::sample::select(KEYS), field_value()), 0..10).prop_map(|pairs| {
        let mut map = Map::new();
        for (key, value) in pairs {
            map.insert(key.to_owned(), value);
        }
        Value::Object(map)
    })
}

/// A request body: JSON built to reach the parsers, any JSON, or any bytes.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => dialect_object().prop_map(|v| v.to_string().into_bytes()),
        2 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..200),
    ]
}

/// Header values a client may send: printable text (often token- or cookie-like) or
/// any bytes a header may carry.
fn header_value() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        Just(None),
        "(Bearer|bearer|Basic|j:|%7B|\"){0,1}[ -~]{0,120}".prop_map(|s| Some(s.into_bytes())),
        prop::collection::vec(0x20u8..=0xff, 0..80).prop_map(Some),
    ]
}

#[derive(Debug)]
struct Input {
    body: Vec<u8>,
    authorization: Option<Vec<u8>>,
    athorization: Option<Vec<u8>>,
    cookie: Option<Vec<u8>>,
    forwarded_host: Option<Vec<u8>>,
}

fn input() -> impl Strategy<Value = Input> {
    (
        body(),
        header_value(),
        header_value(),
        header_value(),
        header_value(),
    )
        .prop_map(
            |(body, authorization, athorization, cookie, forwarded_host)| Input {
                body,
                authorization,
                athorization,
                cookie,
                forwarded_host,
            },
        )
}

/// Which error shape a path's answers have.
#[derive(Clone, Copy, Debug)]
enum Shape {
    Authapi,
    Ioweyou,
    Cbs,
    /// `POST /auth/login`: authapi's, or pocketbase's for a body it claims.
    AuthapiOrPocketbase,
}

fn assert_shape(shape: Shape, status: u16, body: &Value, input: &Input) {
    let authapi = || body["code"] == status && body["message"].is_string();
    let ioweyou = || {
        body["errors"]
            .as_array()
            .is_some_and(|errors| errors.len() == 1 && errors[0].is_string())
    };
    let cbs = || {
        let inner = if body["result"].is_object() {
            &body["result"]
        } else {
            body
        };
        inner["code"].is_u64() && inner["desc"].is_string() && inner["error"].is_string()
    };
    let pocketbase = || body["status"] == status && body["response"]["message"].is_string();
    let fits = match shape {
        Shape::Authapi => authapi(),
        Shape::Ioweyou => ioweyou(),
        Shape::Cbs => cbs(),
        Shape::AuthapiOrPocketbase => authapi() || pocketbase(),
    };
    assert!(fits, "{shape:?} {status}: {body} for {input:?}");
}

#[actix_web::test]
async fn arbitrary_input_gets_the_dialects_own_errors_never_a_500() {
    let state = AppState {
        auth: Arc::new(service()),
        readiness: Arc::new(AlwaysReady),
        config: HttpConfig::default(),
        metrics: None,
    };
    let app = test::init_service(App::new().configure(portcullis_http::configure(
        state,
        portcullis_http::all_dialects(),
    )))
    .await;
    let endpoints = [
        (Method::POST, "/auth/register", Shape::Authapi),
        (Method::POST, "/auth/login", Shape::AuthapiOrPocketbase),
        (Method::POST, "/auth/logout", Shape::Authapi),
        (Method::POST, "/auth/refresh-tokens", Shape::Authapi),
        (Method::POST, "/auth/forgot-password", Shape::Authapi),
        (Method::POST, "/auth/reset-password?token=x", Shape::Authapi),
        (Method::POST, "/auth", Shape::Authapi),
        (Method::POST, "/users/login", Shape::Ioweyou),
        (Method::POST, "/api/login", Shape::Ioweyou),
        (Method::POST, "/api/signup", Shape::Ioweyou),
        (Method::GET, "/api/user", Shape::Ioweyou),
        (Method::POST, "/api/v1/auth/login", Shape::Cbs),
        (Method::POST, "/api/v1/auth/refresh", Shape::Cbs),
    ];
    let mut runner = TestRunner::new(Config::default());
    let strategy = input();
    for (method, path, shape) in endpoints {
        for _ in 0..CASES {
            let input = strategy.new_tree(&mut runner).unwrap().current();
            let mut request = test::TestRequest::default()
                .method(method.clone())
                .uri(path)
                .insert_header(("content-type", "application/json"))
                .set_payload(input.body.clone());
            for (name, value) in [
                ("authorization", &input.authorization),
                ("athorization", &input.athorization),
                ("cookie", &input.cookie),
                ("x-forwarded-host", &input.forwarded_host),
            ] {
                if let Some(value) = value.as_ref().and_then(|v| HeaderValue::from_bytes(v).ok()) {
                    request = request.insert_header((name, value));
                }
            }
            let response = test::call_service(&app, request.to_request()).await;
            let status = response.status().as_u16();
            let bytes = test::read_body(response).await;
            assert!(status < 500, "{path}: {status} for {input:?}");
            if status >= 400 {
                let body: Value = serde_json::from_slice(&bytes)
                    .unwrap_or_else(|_| panic!("{path}: {status}, not JSON, for {input:?}"));
                assert_shape(shape, status, &body, &input);
            }
        }
    }
}
