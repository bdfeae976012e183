//! Parallel renewals: a refresh token presented again less than
//! `PORTCULLIS_REFRESH_GRACE_SECS` after its rotation buys the same successor (the
//! identical string) and a fresh access token, in every dialect's refresh path, instead
//! of revoking the session as reuse. After the window, or with it at 0, reuse revokes.

use std::sync::Arc;
use std::time::Duration;

use portcullis_domain::TokenKind;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};

use crate::support::app::{NewUserSpec, PASSWORD, TestApp, create_user, expired_copy};
use crate::support::backend::Backend;
use crate::support::client::Reply;

crate::on_backends! {
    both: [
        parallel_refreshes_within_the_window_share_one_successor,
        without_a_window_exactly_one_parallel_refresh_wins,
        reuse_after_the_window_revokes_the_session,
    ],
    sqlite: [
        parallel_cookie_renewals_all_succeed,
    ],
}

const PARALLEL: usize = 5;

async fn refresh(app: &TestApp, token: &str) -> Reply {
    app.post("/auth/refresh-tokens", json!({ "refreshToken": token }))
        .await
}

/// Sends `PARALLEL` refreshes of `token` at once.
async fn parallel_refreshes(app: &Arc<TestApp>, token: &str) -> Vec<Reply> {
    let tasks: Vec<_> = (0..PARALLEL)
        .map(|_| {
            let (app, token) = (app.clone(), token.to_owned());
            tokio::spawn(async move { refresh(&app, &token).await })
        })
        .collect();
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await.unwrap());
    }
    replies
}

async fn parallel_refreshes_within_the_window_share_one_successor(backend: Backend) {
    let app =
        Arc::new(TestApp::spawn_with(backend, &[("PORTCULLIS_REFRESH_GRACE_SECS", "10")]).await);
    let registered = app.register("ada@example.com").await;
    let first = registered["tokens"]["refresh"]["token"].as_str().unwrap();
    let replies = parallel_refreshes(&app, first).await;
    let successors: Vec<&str> = replies
        .iter()
        .map(|reply| reply.expect(200)["refresh"]["token"].as_str().unwrap())
        .collect();
    assert!(
        successors.iter().all(|s| *s == successors[0]),
        "one successor: {successors:?}"
    );
    // Each answer's access token works; the session lives on.
    for reply in &replies {
        let access = reply.body["access"]["token"].as_str().unwrap();
        app.post_bearer("/auth", access).await.expect(200);
    }
    let next = refresh(&app, successors[0]).await;
    next.expect(200);
    // cbs's refresh path shares the window: the spent first token, again, through cbs.
    let cbs = app
        .post("/api/v1/auth/refresh", json!({ "refresh_token": first }))
        .await;
    assert_eq!(cbs.expect(200)["result"]["refresh_token"], successors[0]);
}

async fn without_a_window_exactly_one_parallel_refresh_wins(backend: Backend) {
    let app = Arc::new(TestApp::spawn(backend).await);
    let registered = app.register("ada@example.com").await;
    let first = registered["tokens"]["refresh"]["token"].as_str().unwrap();
    let replies = parallel_refreshes(&app, first).await;
    let mut statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 401, 401, 401, 401]);
    // The losers were reuse: the winner's successor is dead too.
    let winner = replies.iter().find(|r| r.status.as_u16() == 200).unwrap();
    let successor = winner.body["refresh"]["token"].as_str().unwrap();
    refresh(&app, successor)
        .await
        .expect_error(401, "Please authenticate");
}

async fn reuse_after_the_window_revokes_the_session(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("PORTCULLIS_REFRESH_GRACE_SECS", "1")]).await;
    let registered = app.register("ada@example.com").await;
    let first = registered["tokens"]["refresh"]["token"].as_str().unwrap();
    let successor = refresh(&app, first).await.expect(200)["refresh"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    refresh(&app, first)
        .await
        .expect_error(401, "Please authenticate");
    refresh(&app, &successor)
        .await
        .expect_error(401, "Please authenticate");
}

/// The dialect's own web client fires four API calls at once on load; with an expired
/// access token all four renew, and every cookie they set works.
async fn parallel_cookie_renewals_all_succeed(backend: Backend) {
    let app =
        Arc::new(TestApp::spawn_with(backend, &[("PORTCULLIS_REFRESH_GRACE_SECS", "10")]).await);
    create_user(
        &app,
        NewUserSpec::new("ada@example.com").with_username("ada"),
    )
    .await;
    let login = app
        .post(
            "/api/login",
            json!({"username": "ada", "password": PASSWORD}),
        )
        .await;
    let cookie = cookie_tokens(&login);
    let stale = encode_cookie(&expired_copy(&cookie.0, TokenKind::Access), &cookie.1);
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (app, stale) = (app.clone(), stale.clone());
            tokio::spawn(async move {
                app.send(app.client.get(app.url("/api/user")).header(COOKIE, stale))
                    .await
            })
        })
        .collect();
    let mut renewed = Vec::new();
    for task in tasks {
        let reply = task.await.unwrap();
        assert_eq!(reply.expect(200)["username"], "ada");
        renewed.push(cookie_tokens(&reply));
    }
    assert!(renewed.iter().all(|(_, refresh)| *refresh == renewed[0].1));
    for (access, refresh) in &renewed {
        let me = app
            .send(
                app.client
                    .get(app.url("/api/user"))
                    .header(COOKIE, encode_cookie(access, refresh)),
            )
            .await;
        assert_eq!(me.expect(200)["username"], "ada");
    }
}

/// The (access, refresh) tokens of the reply's `access_tokens` cookie.
fn cookie_tokens(reply: &Reply) -> (String, String) {
    let set = reply.headers[SET_COOKIE].to_str().unwrap();
    let raw = set
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("access_tokens=")
        .unwrap();
    let decoded = crate::support::uri::decode_uri_component(raw);
    let tokens: Value = serde_json::from_str(decoded.strip_prefix("j:").unwrap()).unwrap();
    (
        tokens["access_token"].as_str().unwrap().to_owned(),
        tokens["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// A `Cookie` header carrying `access` and `refresh` as Express writes them.
fn encode_cookie(access: &str, refresh: &str) -> String {
    let json = json!({"access_token": access, "refresh_token": refresh}).to_string();
    format!(
        "access_tokens={}",
        crate::support::uri::encode_uri_component(&format!("j:{json}"))
    )
}
