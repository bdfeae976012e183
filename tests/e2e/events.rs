//! The security event log, end to end: every kind of event driven over HTTP against the
//! real binary, then read back with `portcullis events`; neither the stored events nor
//! the server's log hold a password, a token or a reset secret.

use serde_json::{Value, json};

use crate::support::backend::Backend;
use crate::support::process::{
    RESET_TOKEN_LINE, Server, Session, TestDb, Tokens, assert_no_secrets_in, run_cli,
};

const NAME: &str = "Ada Lovelace";
const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "analytical engine 1843";
const WRONG_PASSWORD: &str = "babbage was here 1834";
const NEW_PASSWORD: &str = "difference engine 1822";
const GHOST: &str = "ghost@example.com";
const USER_AGENT: &str = "EventsTest/1.0 (e2e)";

crate::on_backends! {
    both: [every_event_kind_is_recorded_without_secrets],
}

/// `portcullis events ARGS --json`, one object per line.
fn events(db: &TestDb, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["events", "--json"];
    all.extend_from_slice(args);
    let run = run_cli(db, &all, "", &[]);
    run.assert_success();
    run.stdout
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n{}", run.stdout))
        })
        .collect()
}

fn kind_outcome(event: &Value) -> (String, String) {
    let text = |key: &str| event[key].as_str().unwrap_or_default().to_owned();
    (text("kind"), text("outcome"))
}

async fn every_event_kind_is_recorded_without_secrets(backend: Backend) {
    let db = TestDb::new(backend);
    // One free failure, so a second attempt on one name is throttled at once.
    let server = Server::start_with(&db, &[("PORTCULLIS_THROTTLE_FREE_FAILURES", "1")]);
    let api = server.api();
    let client = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .build()
        .unwrap();
    let post = |path: &str, body: Value| {
        client
            .post(format!("{}{path}", server.base_url()))
            .json(&body)
            .send()
    };
    let mut secrets: Vec<String> =
        vec![PASSWORD.into(), WRONG_PASSWORD.into(), NEW_PASSWORD.into()];

    let registered = post(
        "/auth/register",
        json!({"name": NAME, "email": EMAIL, "password": PASSWORD, "confirm": PASSWORD}),
    )
    .await
    .unwrap();
    assert_eq!(registered.status(), 201);
    let registered: Value = registered.json().await.unwrap();
    let session = Session::from_body(&registered, NAME, None, EMAIL);
    secrets.extend(session.tokens.secrets());

    let login = |email: &str, password: &str| {
        post("/auth/login", json!({"email": email, "password": password}))
    };
    let signed_in = login(EMAIL, PASSWORD).await.unwrap();
    assert_eq!(signed_in.status(), 200);
    let signed_in = Session::from_body(&signed_in.json().await.unwrap(), NAME, None, EMAIL);
    secrets.extend(signed_in.tokens.secrets());
    assert_eq!(login(EMAIL, WRONG_PASSWORD).await.unwrap().status(), 401);
    assert_eq!(login(GHOST, WRONG_PASSWORD).await.unwrap().status(), 401);
    assert_eq!(login(GHOST, WRONG_PASSWORD).await.unwrap().status(), 429);

    let refreshed = post(
        "/auth/refresh-tokens",
        json!({"refreshToken": signed_in.tokens.refresh}),
    )
    .await
    .unwrap();
    assert_eq!(refreshed.status(), 200);
    secrets.extend(Tokens::from_body(&refreshed.json().await.unwrap()).secrets());
    // The spent token again: reuse, and the session is revoked.
    let replayed = post(
        "/auth/refresh-tokens",
        json!({"refreshToken": signed_in.tokens.refresh}),
    )
    .await
    .unwrap();
    assert_eq!(replayed.status(), 401);

    let logged_out = post(
        "/auth/logout",
        json!({"refreshToken": session.tokens.refresh}),
    )
    .await
    .unwrap();
    assert_eq!(logged_out.status(), 200);

    let mark = server.logs().mark();
    let forgot = post("/auth/forgot-password", json!({"email": EMAIL}))
        .await
        .unwrap();
    assert_eq!(forgot.status(), 200);
    let reset_token = server.logs().reset_token_after(mark, EMAIL);
    let bogus = api
        .post(
            "/auth/reset-password",
            json!({"token": "not-a-reset-token", "password": NEW_PASSWORD}),
        )
        .await;
    bogus.expect_error(401, "Password reset failed");
    let reset = post(
        "/auth/reset-password",
        json!({"token": reset_token, "password": NEW_PASSWORD}),
    )
    .await
    .unwrap();
    assert_eq!(reset.status(), 200);

    // Newest first, each kind with its outcome, from this client through authapi.
    let all = events(&db, &[]);
    let mut seen: Vec<(String, String)> = all.iter().map(kind_outcome).collect();
    seen.reverse();
    let expected: Vec<(String, String)> = [
        ("registration", "success"),
        ("login", "success"),
        ("login", "failure"),
        ("login", "failure"),
        ("login", "throttled"),
        ("refresh", "success"),
        ("refresh", "reuse_detected"),
        ("logout", "success"),
        ("reset_request", "success"),
        ("reset_completion", "failure"),
        ("reset_completion", "success"),
    ]
    .iter()
    .map(|(k, o)| ((*k).to_owned(), (*o).to_owned()))
    .collect();
    assert_eq!(seen, expected, "{all:#?}");
    let times: Vec<&str> = all.iter().map(|e| e["time"].as_str().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "not newest first: {times:?}"
    );
    for event in &all {
        assert_eq!(event["dialect"], "authapi", "{event}");
        assert_eq!(event["ip"], "127.0.0.1", "{event}");
        // Every client but the one without a user agent (the bogus reset) sent ours.
        if event["outcome"] != "failure" || event["kind"] != "reset_completion" {
            assert_eq!(event["user_agent"], USER_AGENT, "{event}");
        }
    }
    // The ghost is known by a hash of its name only; Ada by her id.
    let ghost: Vec<&Value> = all
        .iter()
        .filter(|e| e["kind"] == "login" && e["user_id"].is_null())
        .collect();
    assert_eq!(ghost.len(), 2, "{all:#?}");
    assert!(
        ghost
            .iter()
            .all(|e| e["identifier_hash"].as_str().is_some_and(|h| h.len() == 64))
    );
    let adas = events(&db, &["--user", EMAIL]);
    assert_eq!(adas.len(), all.len() - 3, "{adas:#?}");
    assert!(
        adas.iter()
            .all(|e| e["user_id"] == session.user_id.as_str())
    );
    let by_id = events(&db, &["--user", &session.user_id]);
    assert_eq!(by_id, adas);
    let sessions: Vec<&Value> = all
        .iter()
        .filter(|e| matches!(e["kind"].as_str(), Some("login" | "refresh" | "logout")))
        .filter(|e| e["outcome"] == "success")
        .collect();
    assert!(
        sessions.iter().all(|e| e["session_id"].is_string()),
        "{sessions:#?}"
    );
    assert_eq!(events(&db, &["--limit", "2"]), all[..2].to_vec());
    assert_eq!(events(&db, &["--since", "1h"]), all);
    let text = run_cli(&db, &["events", "--since", "1h"], "", &[]);
    text.assert_success();
    assert_eq!(text.stdout.lines().count(), all.len(), "{}", text.stdout);
    assert!(
        text.stdout
            .lines()
            .last()
            .is_some_and(|l| l.contains("registration") && l.contains("dialect=authapi")),
        "{}",
        text.stdout
    );
    run_cli(&db, &["events", "--user", "nobody@example.com"], "", &[]).assert_failure();

    // Nothing secret in the stored events (every column is printed) or in the log,
    // which carries each event too; the development mailer's line is the one place a
    // reset secret is allowed, and it is left out of the search.
    let stored = serde_json::to_string(&all).unwrap();
    let mut with_reset = secrets.clone();
    with_reset.push(reset_token.clone());
    assert_no_secrets_in(&stored, &with_reset);
    assert!(
        !stored.contains(GHOST) && !stored.contains(EMAIL),
        "{stored}"
    );
    let logs = server.logs().clone();
    assert!(server.stop().success());
    let logs = logs.text();
    let audit_lines = logs.lines().filter(|l| l.contains("auth event")).count();
    assert_eq!(audit_lines, all.len(), "{logs}");
    let outside_mailer: String = logs
        .lines()
        .filter(|l| !l.contains(RESET_TOKEN_LINE))
        .collect::<Vec<_>>()
        .join("\n");
    assert_no_secrets_in(&outside_mailer, &with_reset);
}
