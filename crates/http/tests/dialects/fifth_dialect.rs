//! A fifth dialect is one module and one line in the list of dialects: this test adds a
//! toy one, with a setting of its own, and serves it over real HTTP beside the four,
//! on one user store. Nothing else in the workspace names it.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::{App, HttpServer};
use clap::Command;
use portcullis_http::{AppState, DialectSpec, HttpConfig, settings};
use serde_json::{Value, json};

use crate::{AlwaysReady, service};

/// The toy dialect: `GET /hello` says its configured greeting; `POST /whoami` with
/// `{"token": <access token>}` names the account. Errors are `{"toy_error": ...}`.
mod toy {
    use std::fmt;
    use std::sync::Arc;

    use actix_web::http::{Method, StatusCode};
    use actix_web::{HttpRequest, HttpResponse, ResponseError};
    use clap::Arg;
    use portcullis_domain::AuthenticateError;
    use portcullis_http::blocking::BlockingFailed;
    use portcullis_http::{
        Call, Dialect, DialectSettings, DialectSpec, Endpoint, Refusal, SettingsError,
    };
    use serde_json::json;

    pub const DIALECT: DialectSpec = DialectSpec {
        name: "toy",
        settings: || {
            vec![
                Arg::new("greeting")
                    .help("What GET /hello says")
                    .default_value("hello"),
            ]
        },
        build: |settings: &DialectSettings| -> Result<Arc<dyn Dialect>, SettingsError> {
            Ok(Arc::new(Toy {
                greeting: settings.get::<String>("greeting")?,
            }))
        },
    };

    struct Toy {
        greeting: String,
    }

    impl Dialect for Toy {
        fn name(&self) -> &'static str {
            DIALECT.name
        }

        fn endpoints(&self) -> Vec<Endpoint> {
            let greeting = self.greeting.clone();
            vec![
                Endpoint::new(Method::GET, "/hello", move |_| {
                    let says = greeting.clone();
                    async move { Ok::<_, ToyError>(HttpResponse::Ok().json(json!({ "says": says }))) }
                }),
                Endpoint::new(Method::POST, "/whoami", whoami),
            ]
        }

        fn refusal(&self, _: &HttpRequest, refusal: &Refusal) -> HttpResponse {
            ToyError(refusal.status(), format!("refused: {refusal:?}")).error_response()
        }
        fn error_schema(&self) -> portcullis_http::openapi::BodySchema {
            portcullis_http::openapi::BodySchema::of::<String>()
        }
    }

    async fn whoami(call: Call) -> Result<HttpResponse, ToyError> {
        let body = call.body.map_err(|e| ToyError(e.status(), e.message()))?;
        let token = body
            .string("token")
            .map_err(|problem| ToyError(StatusCode::BAD_REQUEST, format!("token: {problem:?}")))?
            .to_owned();
        let principal = call
            .state
            .run(move |auth| auth.authenticate(&token))
            .await??;
        Ok(HttpResponse::Ok().json(json!({ "id": principal.user.id.to_string() })))
    }

    #[derive(Debug)]
    pub struct ToyError(StatusCode, String);

    impl fmt::Display for ToyError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{} {}", self.0, self.1)
        }
    }

    impl ResponseError for ToyError {
        fn status_code(&self) -> StatusCode {
            self.0
        }

        fn error_response(&self) -> HttpResponse {
            HttpResponse::build(self.0).json(json!({ "toy_error": self.1 }))
        }
    }

    impl From<AuthenticateError> for ToyError {
        fn from(error: AuthenticateError) -> Self {
            Self(StatusCode::UNAUTHORIZED, error.to_string())
        }
    }

    impl From<BlockingFailed> for ToyError {
        fn from(_: BlockingFailed) -> Self {
            Self(
                StatusCode::INTERNAL_SERVER_ERROR,
                "blocking task failed".into(),
            )
        }
    }
}

/// The list of dialects with the toy's one line added.
const WITH_TOY: &[&DialectSpec] = &[
    &portcullis_http::authapi::DIALECT,
    &portcullis_http::ioweyou::DIALECT,
    &portcullis_http::cbs::DIALECT,
    &portcullis_http::pocketbase::DIALECT,
    &toy::DIALECT,
];

#[actix_web::test]
async fn a_fifth_dialect_is_one_module_and_one_line() {
    let command = Command::new("portcullis")
        .no_binary_name(true)
        .args(settings::args(WITH_TOY));
    let help = command.clone().render_long_help().to_string();
    assert!(help.contains("--toy-greeting"), "{help}");
    assert!(help.contains("PORTCULLIS_TOY_GREETING"), "{help}");
    assert!(help.contains("PORTCULLIS_TOY_PREFIX"), "{help}");
    let matches = command
        .try_get_matches_from(["--toy-greeting", "ahoy", "--toy-prefix", "/toy/"])
        .unwrap();
    let state = AppState {
        auth: Arc::new(service()),
        readiness: Arc::new(AlwaysReady),
        config: HttpConfig::default(),
        metrics: None,
    };
    let dialects = settings::mounts(WITH_TOY, &matches).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = HttpServer::new(move || {
        App::new().configure(portcullis_http::configure(state.clone(), dialects.clone()))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    let client = reqwest::Client::new();

    // Its endpoint, under its prefix, with its setting.
    let hello = client
        .get(format!("{base}/toy/hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(hello.status(), 200);
    assert_eq!(
        hello.json::<Value>().await.unwrap(),
        json!({"says": "ahoy"})
    );

    // Routing asks it for its wording of a wrong method, and adds Allow.
    let wrong = client
        .delete(format!("{base}/toy/hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 405);
    assert_eq!(wrong.headers()["allow"], "GET");
    assert_eq!(
        wrong.json::<Value>().await.unwrap(),
        json!({"toy_error": "refused: MethodNotAllowed"})
    );

    // One user store: an account registered through authapi is the toy's too.
    let registered: Value = client
        .post(format!("{base}/auth/register"))
        .json(&json!({"name": "Ada", "email": "ada@example.com",
                      "password": "correct horse", "confirm": "correct horse"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = registered["tokens"]["access"]["token"].as_str().unwrap();
    let whoami = client
        .post(format!("{base}/toy/whoami"))
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(whoami.status(), 200);
    assert_eq!(
        whoami.json::<Value>().await.unwrap()["id"],
        registered["user"]["id"]
    );

    // The four are unchanged beside it.
    let unknown = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"user": "nobody", "password": "whatever1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 401);
    assert_eq!(unknown.json::<Value>().await.unwrap()["code"], 1002);
}

/// Every dialect words every refusal in its own format, with the refusal's status, and
/// `Retry-After` (whole seconds, rounded up) where the client may retry.
#[actix_web::test]
async fn every_dialect_words_every_refusal() {
    use std::time::Duration;

    use actix_web::body::to_bytes;
    use actix_web::test::TestRequest;
    use portcullis_http::Refusal;
    use portcullis_http::dialect::refuse;

    let throttled = Refusal::TooManyRequests {
        retry_after: Duration::from_millis(1500),
    };
    let busy = Refusal::Busy {
        retry_after: Duration::from_secs(5),
    };
    let expected: [(&str, &Refusal, Value); 12] = [
        (
            "authapi",
            &throttled,
            json!({"code": 429, "message": "Too many attempts, try again later"}),
        ),
        (
            "authapi",
            &busy,
            json!({"code": 503, "message": "Service unavailable, please try again later"}),
        ),
        (
            "authapi",
            &Refusal::Forbidden,
            json!({"code": 403, "message": "Forbidden"}),
        ),
        (
            "ioweyou",
            &throttled,
            json!({"errors": ["Too many attempts, try again later"]}),
        ),
        (
            "ioweyou",
            &busy,
            json!({"errors": ["Service unavailable, please try again later."]}),
        ),
        (
            "ioweyou",
            &Refusal::Forbidden,
            json!({"errors": ["Forbidden."]}),
        ),
        (
            "cbs",
            &throttled,
            json!({"code": 1005, "desc": "Too many attempts", "error": "too_many_attempts"}),
        ),
        (
            "cbs",
            &busy,
            json!({"code": 1006, "desc": "Server busy, try again later", "error": "server_busy"}),
        ),
        (
            "cbs",
            &Refusal::Forbidden,
            json!({"code": 1007, "desc": "Forbidden", "error": "forbidden"}),
        ),
        ("pocketbase", &throttled, json!("Too many requests.")),
        ("pocketbase", &busy, json!("Service Unavailable.")),
        (
            "pocketbase",
            &Refusal::Forbidden,
            json!("You are not allowed to perform this request."),
        ),
    ];
    let request = TestRequest::post()
        .uri("/api/v1/auth/login")
        .insert_header(("host", "auth.example"))
        .to_http_request();
    for (name, refusal, body) in expected {
        let spec = portcullis_http::DIALECTS
            .iter()
            .find(|spec| spec.name == name)
            .unwrap();
        let dialect = portcullis_http::DialectMount::with_defaults(spec)
            .unwrap()
            .dialect;
        let response = refuse(dialect.as_ref(), &request, refusal);
        assert_eq!(response.status(), refusal.status(), "{name} {refusal:?}");
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let want_retry = match refusal {
            Refusal::TooManyRequests { .. } => Some("2".to_owned()),
            Refusal::Busy { .. } => Some("5".to_owned()),
            _ => None,
        };
        assert_eq!(retry_after, want_retry, "{name} {refusal:?}");
        let bytes = to_bytes(response.into_body()).await.unwrap();
        let got: Value = serde_json::from_slice(&bytes).unwrap();
        if name == "pocketbase" {
            // The SDK's ClientResponseError shape, with PocketBase's message.
            let status = refusal.status().as_u16();
            assert_eq!(got["status"], status, "{got}");
            assert_eq!(
                got["name"],
                format!("ClientResponseError {status}"),
                "{got}"
            );
            assert_eq!(got["url"], "http://auth.example/api/v1/auth/login", "{got}");
            assert_eq!(got["response"]["message"], body, "{got}");
        } else {
            assert_eq!(got, body, "{name} {refusal:?}");
        }
    }
}
