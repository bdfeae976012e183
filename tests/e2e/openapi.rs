//! The OpenAPI documents (issue 12): one per dialect, listed by `/openapi.json`, each
//! valid by an independent validator (`openapi-spec-validator`), and the live server
//! conforming to each, as Schemathesis finds by fuzzing it with the documents: no
//! server error, no undocumented status, content type, body or header.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::backend::Backend;
use crate::support::process::{Server, TestDb};

crate::on_backends! {
    both: [],
    sqlite: [every_dialect_is_described_and_the_server_keeps_to_it],
}

/// The checks the issue names.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_schema_conformance,response_headers_conformance";

fn venv_tool(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let tool = root.join("tests/py/.venv/bin").join(name);
    assert!(
        tool.exists(),
        "{} is missing: run `make test-py` (part of `make test`)",
        tool.display()
    );
    tool
}

/// Runs `command` in `dir`; its output, or a failure showing it.
#[track_caller]
fn succeeds(command: &mut Command, dir: &Path) -> String {
    let output = command.current_dir(dir).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{command:?} failed:\n{text}");
    text
}

async fn every_dialect_is_described_and_the_server_keeps_to_it(backend: Backend) {
    let db = TestDb::new(backend);
    let server = Server::start(&db);
    let api = server.api();
    let index = api.get("/openapi.json").await;
    assert_eq!(index.status, 200);
    let documents = index.body["documents"].as_array().unwrap();
    let names: Vec<&str> = documents
        .iter()
        .map(|d| d["dialect"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["authapi", "ioweyou", "cbs", "pocketbase"]);

    // An account, so the authenticated operations are fuzzed past their 401 too.
    let registered = api
        .register(
            "Schema Thesis",
            "fuzz@example.com",
            "a fuzzer's own password",
        )
        .await;
    assert_eq!(registered.status, 201, "{}", registered.text);
    let bearer = format!(
        "Authorization: Bearer {}",
        registered.body["tokens"]["access"]["token"]
            .as_str()
            .unwrap()
    );
    let signup = api
        .post(
            "/api/signup",
            serde_json::json!({"username": "fuzzer", "displayName": "Fuzzer", "password": "a fuzzer's own password"}),
        )
        .await;
    assert_eq!(signup.status, 201, "{}", signup.text);
    let cookie = signup.set_cookies()[0]
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    for document in documents {
        let dialect = document["dialect"].as_str().unwrap();
        let url = document["url"].as_str().unwrap();
        let reply = api.get(url).await;
        assert_eq!(reply.status, 200, "{url}");
        let paths: Vec<&String> = reply.body["paths"].as_object().unwrap().keys().collect();
        let expected: &[&str] = match dialect {
            "authapi" => &[
                "/auth",
                "/auth/forgot-password",
                "/auth/login",
                "/auth/logout",
                "/auth/refresh-tokens",
                "/auth/register",
                "/auth/reset-password",
            ],
            "ioweyou" => &[
                "/api/login",
                "/api/logout",
                "/api/signup",
                "/api/user",
                "/users/login",
            ],
            "cbs" => &["/api/v1/auth/login", "/api/v1/auth/refresh"],
            "pocketbase" => &["/auth/login"],
            other => panic!("no such dialect {other}"),
        };
        let mut paths: Vec<&str> = paths.iter().map(|p| p.as_str()).collect();
        paths.sort_unstable();
        assert_eq!(paths, expected, "{dialect}");
        assert_eq!(reply.body["openapi"].as_str().map(|v| &v[..3]), Some("3.1"));
        for (path, item) in reply.body["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let summary = operation["summary"].as_str().unwrap_or_default();
                assert!(!summary.is_empty(), "{dialect} {method} {path}: no summary");
                let statuses: Vec<&String> =
                    operation["responses"].as_object().unwrap().keys().collect();
                for status in ["400", "413", "429", "503"] {
                    assert!(
                        statuses.iter().any(|s| *s == status),
                        "{dialect} {method} {path}: {status} undocumented"
                    );
                }
                let throttled = &operation["responses"]["429"]["headers"];
                assert!(throttled.get("Retry-After").is_some(), "{throttled}");
            }
        }

        let file = dir.path().join(format!("{dialect}.json"));
        std::fs::write(&file, &reply.text).unwrap();
        succeeds(
            Command::new(venv_tool("openapi-spec-validator")).arg(&file),
            dir.path(),
        );
        let report = succeeds(
            Command::new(venv_tool("schemathesis"))
                .arg("run")
                .arg(&file)
                .args(["--url", &server.base_url()])
                .args(["--checks", CHECKS])
                .args([
                    "--header",
                    &bearer,
                    "--header",
                    &format!("Cookie: {cookie}"),
                ])
                .args(["--max-examples", "25", "--seed", "1"])
                .args(["--no-color"]),
            dir.path(),
        );
        assert!(
            report.contains("passed") && !report.contains("FAILURES"),
            "{dialect}: {report}"
        );
    }
}

/// The documents are JSON objects an OpenAPI tool reads: also through the prefix a
/// dialect is mounted under.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_is_in_the_document_paths() {
    let db = TestDb::new(Backend::Sqlite);
    let server = Server::start_with(&db, &[("PORTCULLIS_POCKETBASE_PREFIX", "/api/v1")]);
    let reply = server.api().get("/openapi/pocketbase.json").await;
    assert_eq!(reply.status, 200);
    let paths: Vec<&String> = reply.body["paths"].as_object().unwrap().keys().collect();
    assert_eq!(paths, ["/api/v1/auth/login"]);
    let owner: &Value = &reply.body["paths"]["/api/v1/auth/login"]["post"]["responses"]["400"];
    let schema = &owner["content"]["application/json"]["schema"];
    assert!(
        schema.get("anyOf").is_some(),
        "cbs owns the path: an unclaimed body gets its error too: {schema}"
    );
}
