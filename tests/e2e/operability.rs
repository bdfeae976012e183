//! What operators run Portcullis with (issue 12): a request id on every response and in
//! every log line of its request, JSON log lines, and Prometheus metrics on a listener
//! of their own, parsed by Python's `prometheus_client` as a scraper would.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::header::HeaderValue;
use serde_json::{Value, json};

use crate::support::backend::Backend;
use crate::support::client::{Api, Reply};
use crate::support::process::{Server, TestDb, field};

crate::on_backends! {
    both: [metrics_count_requests_and_their_outcomes],
    sqlite: [
        every_response_carries_a_request_id,
        json_logs_are_one_object_per_line_with_the_request_id,
    ],
}

const PASSWORD: &str = "operators like numbers";

fn request_id(reply: &Reply) -> String {
    reply
        .headers
        .get("x-request-id")
        .unwrap_or_else(|| panic!("no X-Request-Id: {} {}", reply.status, reply.text))
        .to_str()
        .unwrap()
        .to_owned()
}

fn is_generated(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

async fn get_with_id(api: &Api, path: &str, id: HeaderValue) -> Reply {
    api.send(api.client.get(api.url(path)).header("x-request-id", id))
        .await
}

async fn every_response_carries_a_request_id(backend: Backend) {
    let db = TestDb::new(backend);
    let server = Server::start(&db);
    let api = server.api();

    let made = request_id(&api.get("/healthz").await);
    assert!(is_generated(&made), "{made}");
    assert_ne!(
        made,
        request_id(&api.get("/healthz").await),
        "ids are fresh"
    );

    let sane = "client-7f3a:trace/1";
    let echoed = get_with_id(&api, "/healthz", HeaderValue::from_static(sane)).await;
    assert_eq!(request_id(&echoed), sane);

    for insane in [
        HeaderValue::from_str(&"x".repeat(129)).unwrap(),
        HeaderValue::from_static("two words"),
        HeaderValue::from_bytes("caf\u{e9}".as_bytes()).unwrap(),
        HeaderValue::from_static(""),
    ] {
        let replaced = request_id(&get_with_id(&api, "/healthz", insane.clone()).await);
        assert!(is_generated(&replaced), "{insane:?} gave {replaced}");
    }
    let longest = "y".repeat(128);
    let kept = get_with_id(&api, "/healthz", HeaderValue::from_str(&longest).unwrap()).await;
    assert_eq!(request_id(&kept), longest);

    // A dialect's refusal and a path nobody serves carry one too, and the log line of
    // the request names it.
    let refused = api.login("nobody@example.com", "wrong password").await;
    assert_eq!(refused.status, 401);
    let id = request_id(&refused);
    assert!(is_generated(&id));
    let unmatched = api.get("/no/such/path").await;
    assert_eq!(unmatched.status, 404);
    assert!(is_generated(&request_id(&unmatched)));
    let line = server
        .logs()
        .wait_for_after(0, "the refused login's log line", |l| {
            l.contains(&id) && l.contains("served")
        });
    assert!(line.contains("dialect=authapi"), "{line}");
    assert!(line.contains("path=/auth/login"), "{line}");
}

async fn json_logs_are_one_object_per_line_with_the_request_id(backend: Backend) {
    let db = TestDb::new(backend);
    let server = Server::start_with(&db, &[("PORTCULLIS_LOG_FORMAT", "json")]);
    let api = server.api();
    let registered = api
        .register("Grace Hopper", "grace@example.com", PASSWORD)
        .await;
    assert_eq!(registered.status, 201, "{}", registered.text);
    let refresh = registered.body["tokens"]["refresh"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let traced = api
        .send(
            api.client
                .post(api.url("/auth/login"))
                .header("x-request-id", "trace-me-1")
                .json(&json!({"email": "grace@example.com", "password": "not it at all"})),
        )
        .await;
    assert_eq!(traced.status, 401);
    assert_eq!(request_id(&traced), "trace-me-1");
    let logs = server.logs().clone();
    server.stop();

    let lines: Vec<Value> = logs
        .text()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    assert!(lines.len() > 5, "{lines:?}");
    for line in &lines {
        for key in ["timestamp", "level", "target"] {
            assert!(line[key].is_string(), "no {key}: {line}");
        }
        let text = line.to_string();
        assert!(
            !text.contains(PASSWORD) && !text.contains("not it at all"),
            "{text}"
        );
        assert!(!text.contains(&refresh), "a token reached the log: {text}");
    }
    let of_request: Vec<&Value> = lines
        .iter()
        .filter(|line| line["span"]["request_id"] == "trace-me-1")
        .collect();
    let served = of_request
        .iter()
        .find(|line| line["message"] == "served")
        .unwrap_or_else(|| panic!("no served line for the request: {of_request:?}"));
    assert_eq!(served["span"]["method"], "POST");
    assert_eq!(served["span"]["path"], "/auth/login");
    assert_eq!(served["span"]["dialect"], "authapi");
    assert_eq!(served["status"], 401);
    assert!(served["latency_ms"].as_f64().is_some(), "{served}");
    let audit = of_request
        .iter()
        .find(|line| line["target"] == "portcullis::audit")
        .unwrap_or_else(|| panic!("no audit event in the request: {of_request:?}"));
    assert_eq!(
        (&audit["kind"], &audit["outcome"]),
        (&json!("login"), &json!("failure"))
    );
}

/// `GET /metrics` from the metrics listener, parsed by `tests/py/parse_metrics.py`.
async fn scrape(address: SocketAddr) -> Scrape {
    let reply = reqwest::get(format!("http://{address}/metrics"))
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let content_type = reply.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = reply.text().await.unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join("tests/py/.venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make test-py` (part of `make test`)",
        python.display()
    );
    let mut child = Command::new(python)
        .arg(root.join("tests/py/parse_metrics.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "prometheus_client refused the exposition: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    Scrape(serde_json::from_slice(&output.stdout).unwrap())
}

struct Scrape(Value);

impl Scrape {
    fn kind(&self, family: &str) -> Option<&str> {
        self.0["families"][family].as_str()
    }

    /// Every sample named `name` whose labels include `labels`, summed (0 if none).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples(name)
            .filter(|sample| {
                labels
                    .iter()
                    .all(|(key, value)| sample["labels"][*key] == *value)
            })
            .map(|sample| sample["value"].as_f64().unwrap_or(f64::NAN))
            .sum()
    }

    fn samples<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Value> {
        self.0["samples"]
            .as_array()
            .unwrap()
            .iter()
            .filter(move |sample| sample["name"] == name)
    }
}

async fn metrics_count_requests_and_their_outcomes(backend: Backend) {
    let db = TestDb::new(backend);
    let server = Server::start_with(&db, &[("PORTCULLIS_METRICS_BIND", "127.0.0.1:0")]);
    let line = server
        .logs()
        .wait_for_after(0, "the metrics listener", |l| {
            l.contains("metrics listening")
        });
    let address: SocketAddr = field(&line, "address").unwrap().parse().unwrap();
    assert!(address.ip().is_loopback());
    let api = server.api();
    assert_eq!(
        api.get("/metrics").await.status,
        404,
        "never on the public listener"
    );

    let before = scrape(address).await;
    let registered = api.register("Ada", "ada@example.com", PASSWORD).await;
    assert_eq!(registered.status, 201);
    assert_eq!(api.login("ada@example.com", PASSWORD).await.status, 200);
    let wrong = api
        .post(
            "/auth/login",
            json!({"username": "ada", "password": "wrong one"}),
        )
        .await;
    assert_eq!(wrong.status, 400, "pocketbase's refusal");
    let first = registered.body["tokens"]["refresh"]["token"].clone();
    let rotated = api
        .post("/auth/refresh-tokens", json!({"refreshToken": first}))
        .await;
    assert_eq!(rotated.status, 200);
    let replayed = api
        .post("/auth/refresh-tokens", json!({"refreshToken": first}))
        .await;
    assert_eq!(replayed.status, 401);
    let session = api.login("ada@example.com", PASSWORD).await;
    let refresh = session.body["tokens"]["refresh"]["token"].clone();
    let logout = api
        .post("/auth/logout", json!({"refreshToken": refresh}))
        .await;
    assert_eq!(logout.status, 200);
    // A logout with a token already rotated away: a replay, which revokes the session.
    let third = api.login("ada@example.com", PASSWORD).await;
    let spent = third.body["tokens"]["refresh"]["token"].clone();
    let renewed = api
        .post("/auth/refresh-tokens", json!({"refreshToken": spent}))
        .await;
    assert_eq!(renewed.status, 200);
    let replayed_logout = api
        .post("/auth/logout", json!({"refreshToken": spent}))
        .await;
    assert_eq!(replayed_logout.status, 400);
    assert_eq!(api.get("/no/such/path").await.status, 404);
    let after = scrape(address).await;

    let delta = |name: &str, labels: &[(&str, &str)]| {
        after.value(name, labels) - before.value(name, labels)
    };
    let requests = "portcullis_http_requests_total";
    let expected: BTreeMap<(&str, &str, &str), f64> = [
        (("authapi", "/auth/register", "201"), 1.0),
        (("authapi", "/auth/login", "200"), 3.0),
        (("pocketbase", "/auth/login", "400"), 1.0),
        (("authapi", "/auth/refresh-tokens", "200"), 2.0),
        (("authapi", "/auth/refresh-tokens", "401"), 1.0),
        (("authapi", "/auth/logout", "200"), 1.0),
        (("authapi", "/auth/logout", "400"), 1.0),
        (("none", "unmatched", "404"), 1.0),
    ]
    .into();
    for ((dialect, endpoint, status), count) in &expected {
        let labels = [
            ("dialect", *dialect),
            ("endpoint", *endpoint),
            ("status", *status),
        ];
        assert_eq!(delta(requests, &labels), *count, "{labels:?}");
    }
    assert_eq!(after.kind("portcullis_http_requests"), Some("counter"));
    assert_eq!(
        after.kind("portcullis_http_request_duration_seconds"),
        Some("histogram")
    );
    let login_route = [("dialect", "authapi"), ("endpoint", "/auth/login")];
    assert_eq!(
        delta(
            "portcullis_http_request_duration_seconds_count",
            &login_route
        ),
        3.0
    );
    assert!(delta("portcullis_http_request_duration_seconds_sum", &login_route) > 0.0);

    let logins = "portcullis_logins_total";
    assert_eq!(
        delta(logins, &[("dialect", "authapi"), ("outcome", "success")]),
        3.0
    );
    assert_eq!(
        delta(logins, &[("dialect", "pocketbase"), ("outcome", "failure")]),
        1.0
    );
    let refreshes = "portcullis_refreshes_total";
    assert_eq!(delta(refreshes, &[("outcome", "rotated")]), 2.0);
    assert_eq!(delta(refreshes, &[("outcome", "reuse_revoked")]), 1.0);
    let revoked = "portcullis_sessions_revoked_total";
    // The replayed refresh and the replayed logout.
    assert_eq!(delta(revoked, &[("reason", "refresh_reuse")]), 2.0);
    assert_eq!(delta(revoked, &[("reason", "logout")]), 1.0);

    for gauge in [
        "portcullis_hash_in_flight",
        "portcullis_hash_queue_depth",
        "portcullis_db_pool_connections",
        "process_resident_memory_bytes",
        "process_open_fds",
    ] {
        assert_eq!(after.kind(gauge), Some("gauge"), "{gauge}");
    }
    let pool = after.value("portcullis_db_pool_connections", &[("state", "idle")])
        + after.value("portcullis_db_pool_connections", &[("state", "in_use")]);
    assert!(pool >= 1.0, "{pool}");
    assert!(after.value("process_resident_memory_bytes", &[]) > 1_000_000.0);
    assert!(after.value("process_open_fds", &[]) > 3.0);
    assert!(after.value("process_cpu_seconds_total", &[]) > 0.0);
    assert!(
        after.value("portcullis_cache_hits_total", &[])
            + after.value("portcullis_cache_misses_total", &[])
            > 0.0,
        "the cache was consulted"
    );

    // Label values are bounded: templates and names, never a path or an identity.
    for sample in after.0["samples"].as_array().unwrap() {
        let labels = sample["labels"].as_object().unwrap();
        for value in labels.values() {
            let value = value.as_str().unwrap();
            assert!(
                !value.contains('@') && !value.contains("no/such"),
                "{sample}"
            );
        }
    }
    // Scrapes are cheap to repeat and stay parseable.
    tokio::time::sleep(Duration::from_millis(10)).await;
    scrape(address).await;
}
