//! Overload and outage (issue 8: "Hashing as a bounded resource", "Database outages"):
//! a full hash queue and an unreachable database are answered 503 with `Retry-After`
//! in each dialect's format, promptly, and the server recovers by itself.
//!
//! No assertion here is about speed. The only clock checks are hang detectors with
//! limits many times the configured timeouts: a request that waits without bound fails
//! them, a slow machine does not.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use portcullis_domain::{Email, UserRepository};
use portcullis_persistence::testing::TestDatabase;
use portcullis_server::{Application, Config};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, RETRY_AFTER};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::support::app::{CapturingMailer, JWT_SECRET_B64, PASSWORD, TestApp, token};
use crate::support::backend::{Backend, server_env};
use crate::support::client::{Api, Reply};

#[path = "../support/proxy.rs"]
mod proxy;

use proxy::{Proxy, host_port};

/// One hashing thread, one queue place, and an argon2 cost that keeps a hash running
/// long enough for the requests behind it to find the queue full.
const ONE_SLOW_HASHER: &[(&str, &str)] = &[
    ("PORTCULLIS_HASH_CONCURRENCY", "1"),
    ("PORTCULLIS_HASH_QUEUE", "1"),
    ("PORTCULLIS_ARGON2_MEMORY_KIB", "16384"),
    ("PORTCULLIS_ARGON2_ITERATIONS", "64"),
];

/// A hang, not slowness: far beyond any timeout these servers are configured with.
const HANG: Duration = Duration::from_secs(20);

// --- Answers ----------------------------------------------------------------------------

/// A login (or sign-up) through each dialect that hashes a password, and how the
/// dialect words "busy".
struct HashingPath {
    name: &'static str,
    path: &'static str,
    body: Value,
    busy: fn(&Reply),
}

fn retry_after(reply: &Reply) -> &str {
    reply
        .headers
        .get(RETRY_AFTER)
        .unwrap_or_else(|| panic!("no Retry-After: {reply:?}"))
        .to_str()
        .unwrap()
}

#[track_caller]
fn authapi_busy(reply: &Reply) {
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.text
    );
    assert_eq!(
        reply.body,
        json!({"code": 503, "message": "Service unavailable, please try again later"})
    );
}

#[track_caller]
fn ioweyou_busy(reply: &Reply) {
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.text
    );
    assert_eq!(
        reply.body,
        json!({"errors": ["Service unavailable, please try again later."]})
    );
}

/// cbs's login answers flat; its refresh in the result model.
#[track_caller]
fn cbs_busy(reply: &Reply) {
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.text
    );
    let busy =
        json!({"code": 1006, "desc": "Server busy, try again later", "error": "server_busy"});
    assert!(
        reply.body == busy || reply.body == json!({ "result": busy }),
        "{}",
        reply.text
    );
}

#[track_caller]
fn pocketbase_busy(reply: &Reply) {
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.text
    );
    assert_eq!(reply.body["status"], 503, "{}", reply.text);
    assert_eq!(reply.body["code"], 503, "{}", reply.text);
    assert_eq!(
        reply.body["message"], "Service Unavailable.",
        "{}",
        reply.text
    );
    assert_eq!(
        reply.body["name"], "ClientResponseError 503",
        "{}",
        reply.text
    );
}

fn hashing_paths(email: &str) -> Vec<HashingPath> {
    vec![
        HashingPath {
            name: "authapi login",
            path: "/auth/login",
            body: json!({"email": email, "password": PASSWORD}),
            busy: authapi_busy,
        },
        HashingPath {
            name: "authapi register",
            path: "/auth/register",
            body: json!({"name": "Busy", "email": "busy@example.com",
                         "password": PASSWORD, "confirm": PASSWORD}),
            busy: authapi_busy,
        },
        HashingPath {
            name: "ioweyou login",
            path: "/api/login",
            body: json!({"username": email, "password": PASSWORD}),
            busy: ioweyou_busy,
        },
        HashingPath {
            name: "cbs login",
            path: "/api/v1/auth/login",
            body: json!({"user": email, "password": PASSWORD}),
            busy: cbs_busy,
        },
        HashingPath {
            name: "pocketbase login",
            path: "/auth/login",
            body: json!({"username": email, "password": PASSWORD}),
            busy: pocketbase_busy,
        },
    ]
}

fn login_body(email: &str) -> Value {
    json!({"email": email, "password": PASSWORD})
}

/// `n` logins sent at once, in the background.
fn logins(app: &Api, email: &str, n: usize) -> Vec<JoinHandle<Reply>> {
    (0..n)
        .map(|_| {
            let app = app.clone();
            let body = login_body(email);
            tokio::spawn(async move { app.post("/auth/login", body).await })
        })
        .collect()
}

// --- Hashing as a bounded resource --------------------------------------------------------

/// With the one hashing thread and the one queue place taken, every dialect's hashing
/// path is answered 503 with `Retry-After: 1` in its own format, while the hashes
/// ahead of it are still running: the refusal does not wait for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_hash_queue_is_refused_in_every_dialect() {
    let app = TestApp::spawn_with(Backend::Sqlite, ONE_SLOW_HASHER).await;
    let email = "ada@example.com";
    app.register(email).await;
    let mut pending: Vec<&HashingPath> = Vec::new();
    let paths = hashing_paths(email);
    pending.extend(paths.iter());
    for attempt in 0..10 {
        // Three logins for two places: the pool is full once they have arrived.
        let saturating = logins(&app.api, email, 3);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut still = Vec::new();
        for path in pending {
            let mut body = path.body.clone();
            if path.path == "/auth/register" {
                // A registration that found room took its email.
                body["email"] = json!(format!("busy{attempt}@example.com"));
            }
            let reply = app.post(path.path, body).await;
            if reply.status == StatusCode::SERVICE_UNAVAILABLE {
                (path.busy)(&reply);
                assert_eq!(retry_after(&reply), "1", "{}", path.name);
                assert!(
                    saturating.iter().any(|s| !s.is_finished()),
                    "{}: refused only after the hashes ahead of it had finished",
                    path.name
                );
            } else {
                // It found room (the pool had drained): not refused, so try it again.
                assert!(reply.status.is_success(), "{}: {reply:?}", path.name);
                still.push(path);
            }
        }
        for reply in futures::future::join_all(saturating).await {
            let reply = reply.unwrap();
            assert!(
                [StatusCode::OK, StatusCode::SERVICE_UNAVAILABLE].contains(&reply.status),
                "{reply:?}"
            );
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
    }
    let left: Vec<_> = pending.iter().map(|p| p.name).collect();
    assert!(left.is_empty(), "never refused: {left:?}");
    // Once the flood is over, the server hashes again.
    app.login(email, PASSWORD).await.expect(200);
}

/// Many concurrent logins against one hashing thread: each is answered 200, 503, or
/// 429 (parallel attempts on one account count before their password is verified, so a
/// burst of them is throttled like a burst of guesses), none fails or hangs, and
/// requests that need no hash are served all along.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticated_requests_are_served_while_logins_flood() {
    let app = TestApp::spawn_with(Backend::Sqlite, ONE_SLOW_HASHER).await;
    let email = "ada@example.com";
    let registered = app.register(email).await;
    let access = token(&registered, "access");
    let mut refresh = token(&registered, "refresh");

    let flooding = Arc::new(AtomicBool::new(true));
    let flood: Vec<JoinHandle<Vec<StatusCode>>> = (0..24)
        .map(|_| {
            let (api, flooding) = (app.api.clone(), flooding.clone());
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                while flooding.load(Ordering::SeqCst) {
                    statuses.push(api.post("/auth/login", login_body(email)).await.status);
                }
                statuses
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..20 {
        let started = Instant::now();
        let me = app.post_bearer("/auth", &access).await;
        assert_eq!(me.status, StatusCode::OK, "{}", me.text);
        let rotated = app
            .post("/api/v1/auth/refresh", json!({"refresh_token": refresh}))
            .await;
        assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
        refresh = rotated.body["result"]["refresh_token"]
            .as_str()
            .or_else(|| rotated.body["refresh_token"].as_str())
            .unwrap_or_else(|| panic!("no refresh token: {}", rotated.text))
            .to_owned();
        assert!(started.elapsed() < HANG);
    }
    flooding.store(false, Ordering::SeqCst);
    let mut statuses = Vec::new();
    for task in flood {
        statuses.extend(task.await.unwrap());
    }
    assert!(
        statuses.iter().all(|s| [
            StatusCode::OK,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::TOO_MANY_REQUESTS
        ]
        .contains(s)),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&StatusCode::SERVICE_UNAVAILABLE),
        "never busy"
    );
    assert!(statuses.contains(&StatusCode::OK), "never served");
}

// --- Database outages ---------------------------------------------------------------------

/// The checkout timeout of the outage test's server.
const DB_TIMEOUT_MS: u64 = 1000;

/// A server on a fresh PostgreSQL database reached through a [`Proxy`].
struct ProxiedApp {
    api: Api,
    proxy: Proxy,
    database: TestDatabase,
}

impl ProxiedApp {
    async fn spawn() -> Self {
        let database = tokio::task::spawn_blocking(TestDatabase::postgres)
            .await
            .unwrap();
        let proxy = Proxy::start(&host_port(database.url()));
        let url = proxy.url_through(database.url());
        let timeout = DB_TIMEOUT_MS.to_string();
        let vars: Vec<(String, String)> = server_env(&url)
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .chain(
                [
                    ("PORTCULLIS_JWT_SECRET", JWT_SECRET_B64),
                    ("PORTCULLIS_DB_TIMEOUT_MS", timeout.as_str()),
                    ("PORTCULLIS_DB_POOL_SIZE", "4"),
                ]
                .map(|(name, value)| (name.to_owned(), value.to_owned())),
            )
            .collect();
        let config = Config::from_lookup(|name| {
            vars.iter()
                .find(|(n, _)| n == name)
                .map(|(_, value)| value.clone())
        })
        .unwrap();
        let app = Application::build(config, Arc::new(CapturingMailer::default()))
            .await
            .unwrap();
        let api = Api::new(format!("http://{}", app.local_addr()));
        tokio::spawn(app.run());
        Self {
            api,
            proxy,
            database,
        }
    }

    async fn ready(&self) -> (StatusCode, Duration) {
        let started = Instant::now();
        let reply = self.api.get("/readyz").await;
        (reply.status, started.elapsed())
    }
}

/// What a chain of refreshes saw: each refresh token acknowledged (2xx) must be in the
/// database, so presenting it next must not be refused as unknown, unless an earlier
/// presentation of it went unanswered (503: it may have been spent then).
#[derive(Default, Debug)]
struct Chain {
    rotations: usize,
    /// A 401 after an unanswered presentation of the same token: allowed, ends the chain.
    ended_ambiguously: bool,
    /// The last token's latest presentation went unanswered (503).
    last_unanswered: bool,
}

async fn refresh_chain(api: Api, mut refresh: String, running: Arc<AtomicBool>) -> (Chain, String) {
    let mut chain = Chain::default();
    let mut presented_unanswered = false;
    while running.load(Ordering::SeqCst) {
        let started = Instant::now();
        let reply = api
            .post("/auth/refresh-tokens", json!({"refreshToken": refresh}))
            .await;
        assert!(started.elapsed() < HANG, "a refresh hung: {reply:?}");
        match reply.status {
            StatusCode::OK => {
                refresh = token(&reply.body, "refresh");
                presented_unanswered = false;
                chain.rotations += 1;
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                authapi_busy(&reply);
                assert!(!retry_after(&reply).is_empty());
                presented_unanswered = true;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            StatusCode::UNAUTHORIZED => {
                assert!(
                    presented_unanswered,
                    "an acknowledged refresh token was refused: {reply:?}"
                );
                chain.ended_ambiguously = true;
                return (chain, refresh);
            }
            _ => panic!("unexpected answer to a refresh: {reply:?}"),
        }
    }
    chain.last_unanswered = presented_unanswered;
    (chain, refresh)
}

/// Registrations until stopped: the emails acknowledged (201) and how many were not.
async fn registrations(api: Api, worker: usize, running: Arc<AtomicBool>) -> (Vec<String>, usize) {
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    let mut n = 0;
    while running.load(Ordering::SeqCst) {
        n += 1;
        let email = format!("user{worker}-{n}@example.com");
        let started = Instant::now();
        let reply = api
            .post(
                "/auth/register",
                json!({"name": "Ada", "email": email, "password": PASSWORD,
                       "confirm": PASSWORD}),
            )
            .await;
        assert!(started.elapsed() < HANG, "a registration hung: {reply:?}");
        match reply.status {
            StatusCode::CREATED => acknowledged.push(email),
            StatusCode::SERVICE_UNAVAILABLE => {
                authapi_busy(&reply);
                refused += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            _ => panic!("unexpected answer to a registration: {reply:?}"),
        }
    }
    (acknowledged, refused)
}

/// The database goes away while registrations and refreshes run, and comes back:
/// requests that need it get 503 with `Retry-After` in their dialect's format (no 500,
/// no hang), `/readyz` says so at once, the server recovers by itself, and every
/// acknowledged registration and rotation is in the database afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_503_and_service_recovers() {
    let app = ProxiedApp::spawn().await;
    let api = &app.api;
    assert_eq!(app.ready().await.0, StatusCode::OK);

    // Sessions in each dialect, made while the database is up.
    let ada = api
        .post(
            "/auth/register",
            json!({"name": "Ada", "email": "ada@example.com", "password": PASSWORD,
                   "confirm": PASSWORD}),
        )
        .await;
    let ada = ada.expect(201).clone();
    let cbs = api
        .post(
            "/api/v1/auth/login",
            json!({"user": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    let cbs_refresh = cbs.expect(200)["refresh_token"]
        .as_str()
        .or_else(|| cbs.body["result"]["refresh_token"].as_str())
        .unwrap_or_else(|| panic!("{}", cbs.text))
        .to_owned();
    let ioweyou = api
        .post(
            "/api/login",
            json!({"username": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    ioweyou.expect(200);
    let cookie = ioweyou
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("access_tokens="))
        .unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let mut chains = Vec::new();
    for _ in 0..3 {
        let body = api
            .login("ada@example.com", PASSWORD)
            .await
            .expect(200)
            .clone();
        chains.push(token(&body, "refresh"));
    }

    // Traffic throughout: refresh chains and registrations.
    let running = Arc::new(AtomicBool::new(true));
    let refreshers: Vec<_> = chains
        .into_iter()
        .map(|refresh| tokio::spawn(refresh_chain(api.clone(), refresh, running.clone())))
        .collect();
    let registrars: Vec<_> = (0..2)
        .map(|worker| tokio::spawn(registrations(api.clone(), worker, running.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The database goes away.
    app.proxy.cut();
    let (status, elapsed) = app.ready().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(elapsed < HANG);
    // Give the pool time to notice, then every dialect's request that needs the
    // database is refused with its own "busy".
    tokio::time::sleep(Duration::from_millis(DB_TIMEOUT_MS)).await;
    let started = Instant::now();
    let reply = api.login("ada@example.com", PASSWORD).await;
    authapi_busy(&reply);
    assert!(!retry_after(&reply).is_empty());
    let reply = api.post_bearer("/auth", &token(&ada, "access")).await;
    authapi_busy(&reply);
    let reply = api
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": cbs_refresh}),
        )
        .await;
    cbs_busy(&reply);
    assert!(!retry_after(&reply).is_empty());
    let reply = api
        .send(api.client.get(api.url("/api/user")).header(COOKIE, &cookie))
        .await;
    ioweyou_busy(&reply);
    assert!(!retry_after(&reply).is_empty());
    // A logout that cannot reach the session keeps the cookie, so the client retries.
    let reply = api
        .send(
            api.client
                .get(api.url("/api/logout"))
                .header(COOKIE, &cookie),
        )
        .await;
    ioweyou_busy(&reply);
    assert!(reply.set_cookies().is_empty(), "{reply:?}");
    let reply = api
        .post(
            "/auth/login",
            json!({"username": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    pocketbase_busy(&reply);
    assert!(!retry_after(&reply).is_empty());
    assert!(started.elapsed() < HANG);
    let (status, elapsed) = app.ready().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(elapsed < HANG);

    // It comes back; the server recovers without help.
    app.proxy.restore();
    let deadline = Instant::now() + HANG;
    while app.ready().await.0 != StatusCode::OK {
        assert!(
            Instant::now() < deadline,
            "not ready again after the outage"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    api.login("ada@example.com", PASSWORD).await.expect(200);
    let reply = api
        .send(api.client.get(api.url("/api/user")).header(COOKIE, &cookie))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    tokio::time::sleep(Duration::from_millis(500)).await;
    running.store(false, Ordering::SeqCst);

    // Every acknowledged registration is stored.
    let mut acknowledged = Vec::new();
    for registrar in registrars {
        let (emails, _refused) = registrar.await.unwrap();
        acknowledged.extend(emails);
    }
    assert!(!acknowledged.is_empty());
    let database = app.database.database().clone();
    let missing = tokio::task::spawn_blocking(move || {
        acknowledged
            .into_iter()
            .filter(|email| {
                database
                    .find_by_email(&Email::parse(email).unwrap())
                    .unwrap()
                    .is_none()
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert!(
        missing.is_empty(),
        "acknowledged but not stored: {missing:?}"
    );

    // Every acknowledged rotation is stored: each chain's last acknowledged token
    // still refreshes (the chains checked the earlier ones as they went).
    let mut rotations = 0;
    for refresher in refreshers {
        let (chain, last) = refresher.await.unwrap();
        if chain.ended_ambiguously {
            continue;
        }
        let reply = api
            .post("/auth/refresh-tokens", json!({"refreshToken": last}))
            .await;
        if chain.last_unanswered && reply.status == StatusCode::UNAUTHORIZED {
            // Its last presentation went unanswered: it may have been spent then.
            continue;
        }
        assert_eq!(reply.status, StatusCode::OK, "{chain:?}: {}", reply.text);
        rotations += chain.rotations;
    }
    assert!(rotations > 0);
    drop(app.proxy);
    tokio::task::spawn_blocking(move || drop(app.database))
        .await
        .unwrap();
}
