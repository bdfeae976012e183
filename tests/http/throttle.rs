//! Throttling (issue 8, "Throttling"), over HTTP: failed logins slow an account (or a
//! login name no account has) and a client address down, whichever dialect they come
//! through; registrations and reset requests are limited per address, reset links per
//! account; every refusal is a 429 with `Retry-After` in the dialect's own format; the
//! counters live in the database, so two instances on one database share them.
//!
//! The only clock checks are on `Retry-After` values. Waits are the `Retry-After` the
//! server asked for, with delays of one or two seconds; everything else runs with delays
//! so long that a slow machine cannot outrun them.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;
use serde_json::{Value, json};

use crate::support::app::{NewUserSpec, PASSWORD, TestApp, create_user};
use crate::support::backend::Backend;
use crate::support::client::{Api, Reply};
use crate::support::logins::{
    EVERY_PATH, Outcome, Via, assert_throttled, attempt, attempt_from, login_with, outcome,
};
use Outcome::{LoggedIn, Refused, Throttled};

crate::on_backends! {
    both: [
        every_login_path_answers_429_in_its_dialects_format,
        failures_through_one_dialect_throttle_the_account_in_every_dialect,
        the_owner_logs_in_once_the_wait_is_over_and_the_count_starts_afresh,
        unknown_accounts_are_throttled_exactly_like_known_ones,
        failures_from_one_address_throttle_it_for_every_account,
        behind_a_trusted_proxy_each_forwarded_client_has_its_own_count,
        registrations_per_address_are_limited_in_each_dialect,
        reset_links_per_account_are_limited_silently,
        reset_requests_per_address_are_limited,
        two_instances_on_one_database_share_the_counters,
        a_reset_ends_the_accounts_wait,
        wrong_passwords_at_once_get_no_more_than_the_free_failures,
        failures_at_once_from_one_address_stop_at_its_limit,
        registrations_at_once_stop_at_the_limit,
        reset_requests_at_once_mail_no_more_than_three_links,
    ],
}

const WRONG: &str = "not the password at all";

/// Delays no test outlives: a throttled attempt stays throttled for the whole test.
const LONG_DELAY: u64 = 60;

/// Asserts a `Retry-After` for a delay of `delay` seconds that began during the test:
/// at most the delay, and not much less (the test takes far less than a tenth of it).
#[track_caller]
fn assert_waits_about(outcome: &Outcome, delay: u64) {
    match outcome {
        Throttled(seconds) => assert!(
            *seconds <= delay && *seconds > delay - delay / 10,
            "Retry-After {seconds} for a delay of {delay} s"
        ),
        other => panic!("expected a 429, got {other:?}"),
    }
}

async fn wait(seconds: u64) {
    tokio::time::sleep(Duration::from_secs(seconds)).await;
}

/// An account with an email and a username, whose password is [`PASSWORD`].
async fn account(app: &TestApp, email: &str, username: &str) {
    create_user(app, NewUserSpec::new(email).with_username(username)).await;
}

fn delay_secs(value: u64) -> String {
    value.to_string()
}

// --- Per account ----------------------------------------------------------------------

/// Every login path, on an account past its free failure: 429, the dialect's body,
/// `Retry-After` the configured delay, even with the right password.
async fn every_login_path_answers_429_in_its_dialects_format(backend: Backend) {
    let delay = delay_secs(LONG_DELAY);
    let app = TestApp::spawn_with(
        backend,
        &[
            ("PORTCULLIS_THROTTLE_FREE_FAILURES", "1"),
            ("PORTCULLIS_THROTTLE_BASE_DELAY_SECS", &delay),
        ],
    )
    .await;
    for (i, via) in EVERY_PATH.into_iter().enumerate() {
        let (email, username) = (format!("user{i}@example.com"), format!("user{i}"));
        account(&app, &email, &username).await;
        assert_eq!(
            attempt(&app, via, &username, WRONG).await,
            Refused,
            "{via:?}"
        );
        let throttled = attempt(&app, via, &username, PASSWORD).await;
        assert_waits_about(&throttled, LONG_DELAY);
        // And still, after a throttled attempt (which counts as no failure).
        let again = attempt(&app, via, &email, PASSWORD).await;
        assert_waits_about(&again, LONG_DELAY);
    }
}

/// The account is the resolved user: failures by email through one dialect and by
/// username through another add up, and throttle the right password on every path.
async fn failures_through_one_dialect_throttle_the_account_in_every_dialect(backend: Backend) {
    let delay = delay_secs(LONG_DELAY);
    let app = TestApp::spawn_with(
        backend,
        &[
            ("PORTCULLIS_THROTTLE_FREE_FAILURES", "2"),
            ("PORTCULLIS_THROTTLE_BASE_DELAY_SECS", &delay),
        ],
    )
    .await;
    account(&app, "ada@example.com", "ada_l").await;
    account(&app, "bob@example.com", "bob").await;
    assert_eq!(
        attempt(&app, Via::Authapi, "ada@example.com", WRONG).await,
        Refused
    );
    // One failure: the right password still logs in, through another dialect.
    assert_eq!(
        attempt(&app, Via::Cbs, "ada_l", PASSWORD).await,
        LoggedIn,
        "one failure of two free"
    );
    // The success cleared the count: two more failures, by username, in another case.
    assert_eq!(
        attempt(&app, Via::IoweyouApi, "ADA_L", WRONG).await,
        Refused
    );
    assert_eq!(
        attempt(&app, Via::Pocketbase, "Ada@Example.com", WRONG).await,
        Refused
    );
    for via in EVERY_PATH {
        for login in ["ada@example.com", "ada_l"] {
            let throttled = attempt(&app, via, login, PASSWORD).await;
            assert_waits_about(&throttled, LONG_DELAY);
        }
    }
    // Another account is not concerned.
    assert_eq!(attempt(&app, Via::Cbs, "bob", PASSWORD).await, LoggedIn);
}

/// Delays double from the base up to the cap; once the wait is over the owner logs in
/// with the right password, and the count starts again from nothing.
async fn the_owner_logs_in_once_the_wait_is_over_and_the_count_starts_afresh(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("PORTCULLIS_THROTTLE_FREE_FAILURES", "2"),
            ("PORTCULLIS_THROTTLE_BASE_DELAY_SECS", "1"),
            ("PORTCULLIS_THROTTLE_MAX_DELAY_SECS", "2"),
        ],
    )
    .await;
    account(&app, "ada@example.com", "ada_l").await;
    let ada = "ada@example.com";
    assert_eq!(attempt(&app, Via::Authapi, ada, WRONG).await, Refused);
    assert_eq!(attempt(&app, Via::Cbs, "ada_l", WRONG).await, Refused);
    // The base delay.
    assert_eq!(
        attempt(&app, Via::Pocketbase, ada, PASSWORD).await,
        Throttled(1)
    );
    wait(1).await;
    assert_eq!(attempt(&app, Via::IoweyouUsers, ada, WRONG).await, Refused);
    // Doubled.
    assert_eq!(
        attempt(&app, Via::Authapi, ada, PASSWORD).await,
        Throttled(2)
    );
    wait(2).await;
    assert_eq!(attempt(&app, Via::Cbs, ada, WRONG).await, Refused);
    // Doubled again, to 4 s, but capped at 2 s.
    let capped = attempt(&app, Via::IoweyouApi, ada, PASSWORD).await;
    assert_eq!(capped, Throttled(2));
    wait(2).await;
    // The owner, with the right password.
    assert_eq!(attempt(&app, Via::Cbs, "ada_l", PASSWORD).await, LoggedIn);
    // Counted from nothing: two free failures again (with the old count the second
    // would be a 429), then the base delay, not the doubled one.
    assert_eq!(attempt(&app, Via::Authapi, ada, WRONG).await, Refused);
    assert_eq!(attempt(&app, Via::Pocketbase, ada, WRONG).await, Refused);
    assert_eq!(
        attempt(&app, Via::Authapi, ada, PASSWORD).await,
        Throttled(1)
    );
}

/// An unknown login name goes through the same answers as a known account, byte for
/// byte, in every dialect; unknown names are counted by their normalised form, each
/// apart.
async fn unknown_accounts_are_throttled_exactly_like_known_ones(backend: Backend) {
    let delay = delay_secs(LONG_DELAY);
    let app = TestApp::spawn_with(
        backend,
        &[
            ("PORTCULLIS_THROTTLE_FREE_FAILURES", "2"),
            ("PORTCULLIS_THROTTLE_BASE_DELAY_SECS", &delay),
        ],
    )
    .await;
    for (i, via) in EVERY_PATH.into_iter().enumerate() {
        let known = format!("user{i}@example.com");
        account(&app, &known, &format!("user{i}")).await;
        let unknown = format!("ghost{i}@example.com");
        let mut answers = Vec::new();
        for name in [&known, &unknown] {
            let mut replies = Vec::new();
            for password in [WRONG, WRONG, PASSWORD] {
                replies.push(login_with(&app, via, name, password, &[]).await);
            }
            answers.push(replies);
        }
        let (known_replies, unknown_replies) = (&answers[0], &answers[1]);
        let outcomes: Vec<Outcome> = known_replies
            .iter()
            .map(|r| outcome(via, &app, r))
            .collect();
        assert_eq!(outcomes[..2], [Refused, Refused], "{via:?}");
        assert_waits_about(&outcomes[2], LONG_DELAY);
        for (k, u) in known_replies.iter().zip(unknown_replies) {
            assert_eq!(
                (k.status, &k.text),
                (u.status, &u.text),
                "{via:?}: an unknown account answers as a known one"
            );
            assert_eq!(
                k.headers.get(RETRY_AFTER).is_some(),
                u.headers.get(RETRY_AFTER).is_some()
            );
        }
        let throttled = outcome(via, &app, &unknown_replies[2]);
        assert_waits_about(&throttled, LONG_DELAY);
        // The same name in another case and with spaces is the same count.
        let variant = format!("  GHOST{i}@Example.COM ");
        let throttled = attempt(&app, via, &variant, PASSWORD).await;
        assert_waits_about(&throttled, LONG_DELAY);
        // Another unknown name has its own count.
        let other = format!("phantom{i}@example.com");
        assert_eq!(attempt(&app, via, &other, PASSWORD).await, Refused);
    }
}

// --- Per client address ---------------------------------------------------------------

const IP_WINDOW: u64 = 600;

/// `PORTCULLIS_THROTTLE_IP_FAILURES` failures from one address, spread over accounts
/// (known or not) and dialects, throttle that address for every account, even one never
/// tried, until the window ends. A client's own `X-Forwarded-For` changes nothing when
/// no proxy is trusted.
async fn failures_from_one_address_throttle_it_for_every_account(backend: Backend) {
    let window = delay_secs(IP_WINDOW);
    let app = TestApp::spawn_with(
        backend,
        &[
            ("PORTCULLIS_THROTTLE_IP_FAILURES", "3"),
            ("PORTCULLIS_THROTTLE_IP_WINDOW_SECS", &window),
        ],
    )
    .await;
    for (email, username) in [
        ("ada@example.com", "ada"),
        ("bob@example.com", "bob"),
        ("cy@example.com", "cy"),
    ] {
        account(&app, email, username).await;
    }
    assert_eq!(attempt(&app, Via::Authapi, "ada", WRONG).await, Refused);
    assert_eq!(attempt(&app, Via::Cbs, "bob", WRONG).await, Refused);
    // A success does not clear the address's count.
    assert_eq!(attempt(&app, Via::Cbs, "bob", PASSWORD).await, LoggedIn);
    assert_eq!(
        attempt(&app, Via::Pocketbase, "ghost", WRONG).await,
        Refused
    );
    // Three failures: each account has failed once at most (five are free), yet.
    for via in EVERY_PATH {
        for login in ["ada", "cy@example.com", "ghost"] {
            let throttled = attempt(&app, via, login, PASSWORD).await;
            assert_waits_about(&throttled, IP_WINDOW);
        }
    }
    // Without a trusted proxy, the header is the client's own claim.
    for header in ["x-forwarded-for", "forwarded"] {
        let value = if header == "forwarded" {
            "for=198.51.100.9"
        } else {
            "198.51.100.9"
        };
        let throttled = attempt_from(&app, Via::Authapi, "cy", PASSWORD, &[(header, value)]).await;
        assert_waits_about(&throttled, IP_WINDOW);
    }
}

/// Behind a trusted proxy (the tests' 127.0.0.1), the client is the nearest forwarded
/// address that is not a proxy: one client's failures throttle that client, not the
/// others, and a client cannot get away by prepending addresses of its own.
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_count(backend: Backend) {
    let window = delay_secs(IP_WINDOW);
    let app = TestApp::spawn_with(
        backend,
        &[
            ("PORTCULLIS_THROTTLE_IP_FAILURES", "3"),
            ("PORTCULLIS_THROTTLE_IP_WINDOW_SECS", &window),
            ("PORTCULLIS_TRUSTED_PROXIES", "127.0.0.1/32"),
        ],
    )
    .await;
    account(&app, "ada@example.com", "ada").await;
    let attacker = [("x-forwarded-for", "203.0.113.1")];
    for login in ["bob", "cy", "dan"] {
        assert_eq!(
            attempt_from(&app, Via::Authapi, login, WRONG, &attacker).await,
            Refused
        );
    }
    let throttled = attempt_from(&app, Via::Cbs, "ada", PASSWORD, &attacker).await;
    assert_waits_about(&throttled, IP_WINDOW);
    // The same client named by `Forwarded`, or behind a second proxy hop, or with an
    // address of its choosing in front.
    for header in [
        ("forwarded", "for=203.0.113.1"),
        ("x-forwarded-for", "203.0.113.1, 127.0.0.1"),
        ("x-forwarded-for", "198.51.100.77, 203.0.113.1"),
    ] {
        let throttled = attempt_from(&app, Via::IoweyouApi, "ada", PASSWORD, &[header]).await;
        assert_waits_about(&throttled, IP_WINDOW);
    }
    // Other clients of the same proxy log in, and so does the proxy itself (no header).
    for headers in [
        &[("x-forwarded-for", "203.0.113.2")][..],
        &[("forwarded", "for=\"[2001:db8::1]:4711\"")][..],
        &[][..],
    ] {
        assert_eq!(
            attempt_from(&app, Via::Pocketbase, "ada", PASSWORD, headers).await,
            LoggedIn,
            "{headers:?}"
        );
    }
}

// --- Registrations and reset requests -----------------------------------------------

const HOUR: u64 = 3600;

fn authapi_registration(email: &str) -> Value {
    json!({"name": "Ada Lovelace", "email": email, "password": PASSWORD, "confirm": PASSWORD})
}

fn ioweyou_signup(username: &str) -> Value {
    json!({"username": username, "displayName": "Ada Lovelace", "password": PASSWORD})
}

async fn post_from(api: &Api, path: &str, body: &Value, headers: &[(&str, &str)]) -> Reply {
    let mut request = api.client.post(api.url(path)).json(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    api.send(request).await
}

/// `PORTCULLIS_THROTTLE_IP_REGISTRATIONS` registrations per address and hour, counted
/// across dialects: the next is 429 in the registering dialect's format, creates
/// nothing, and another address may still register.
async fn registrations_per_address_are_limited_in_each_dialect(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("PORTCULLIS_THROTTLE_IP_REGISTRATIONS", "2"),
            ("PORTCULLIS_TRUSTED_PROXIES", "127.0.0.1/32"),
        ],
    )
    .await;
    let registered = app
        .post("/auth/register", authapi_registration("ada@example.com"))
        .await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.text
    );
    let signed_up = app.post("/api/signup", ioweyou_signup("bob")).await;
    assert_eq!(signed_up.status, StatusCode::CREATED, "{}", signed_up.text);

    let authapi = app
        .post("/auth/register", authapi_registration("cy@example.com"))
        .await;
    let seconds = assert_throttled(
        &authapi,
        &json!({"code": 429, "message": "Too many attempts, try again later"}),
    );
    assert_waits_about(&Throttled(seconds), HOUR);
    let ioweyou = app.post("/api/signup", ioweyou_signup("dan")).await;
    let seconds = assert_throttled(
        &ioweyou,
        &json!({"errors": ["Too many attempts, try again later"]}),
    );
    assert_waits_about(&Throttled(seconds), HOUR);

    // The refused ones created nothing: the same names register from another client.
    let other = [("x-forwarded-for", "203.0.113.5")];
    let reply = post_from(
        &app,
        "/auth/register",
        &authapi_registration("cy@example.com"),
        &other,
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let reply = post_from(&app, "/api/signup", &ioweyou_signup("dan"), &other).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
}

const FORGOT: &str = "/auth/forgot-password";

/// At most three reset links per account and hour: further requests are answered as an
/// accepted one, byte for byte, and neither mail a link nor make one (the third link
/// still works, which a newer link would have replaced). Other accounts are not
/// concerned.
async fn reset_links_per_account_are_limited_silently(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada@example.com").await;
    app.register("bob@example.com").await;
    let mut replies = Vec::new();
    let mut third_link = None;
    for n in 1..=5 {
        let reply = app.post(FORGOT, json!({"email": "ada@example.com"})).await;
        assert_eq!(
            app.mail().await.count(),
            n.min(3),
            "links mailed after {n} requests"
        );
        if n == 3 {
            third_link = app.mail().await.last_secret_for("ada@example.com");
        }
        replies.push(reply);
    }
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert_eq!(
            reply.body,
            json!({"message": "If that email is registered, a reset link has been sent"})
        );
        assert_eq!(reply.text, replies[0].text);
        assert_eq!(reply.headers.get(RETRY_AFTER), None);
    }
    assert_eq!(
        app.mail().await.last_secret_for("ada@example.com"),
        third_link,
        "the last mailed link is the third"
    );
    // Bob's first request is mailed.
    app.post(FORGOT, json!({"email": "bob@example.com"}))
        .await
        .expect(200);
    assert_eq!(app.mail().await.count(), 4);
    // The third link is still the account's newest: no link was made after it.
    let reset = app
        .post(
            &format!("/auth/reset-password?token={}", third_link.unwrap()),
            json!({"password": "a brand new secret"}),
        )
        .await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.text);
    assert_eq!(
        attempt(&app, Via::Authapi, "ada@example.com", "a brand new secret").await,
        LoggedIn
    );
}

/// Reset requests count per address too, known address or not, apart from
/// registrations but with the same limit: the next is 429 and mails nothing.
async fn reset_requests_per_address_are_limited(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("PORTCULLIS_THROTTLE_IP_REGISTRATIONS", "2")]).await;
    // Two registrations: the address's registration count is full, its reset count not.
    app.register("ada@example.com").await;
    app.register("bob@example.com").await;
    for email in ["ada@example.com", "ghost@example.com"] {
        app.post(FORGOT, json!({ "email": email }))
            .await
            .expect(200);
    }
    assert_eq!(app.mail().await.count(), 1);
    let refused = app.post(FORGOT, json!({"email": "bob@example.com"})).await;
    let seconds = assert_throttled(
        &refused,
        &json!({"code": 429, "message": "Too many attempts, try again later"}),
    );
    assert_waits_about(&Throttled(seconds), HOUR);
    assert_eq!(
        app.mail().await.count(),
        1,
        "a throttled request mails nothing"
    );
    assert_eq!(app.mail().await.last_secret_for("bob@example.com"), None);
    // And the registration count was full all along.
    let registration = app
        .post("/auth/register", authapi_registration("cy@example.com"))
        .await;
    assert_eq!(registration.status, StatusCode::TOO_MANY_REQUESTS);
}

// --- Several instances ----------------------------------------------------------------

/// Two servers on one database: failures through one throttle the account, and add up
/// to the address's limit, on the other.
async fn two_instances_on_one_database_share_the_counters(backend: Backend) {
    let delay = delay_secs(LONG_DELAY);
    let window = delay_secs(IP_WINDOW);
    let overrides = [
        ("PORTCULLIS_THROTTLE_FREE_FAILURES", "2"),
        ("PORTCULLIS_THROTTLE_BASE_DELAY_SECS", delay.as_str()),
        ("PORTCULLIS_THROTTLE_IP_FAILURES", "3"),
        ("PORTCULLIS_THROTTLE_IP_WINDOW_SECS", window.as_str()),
    ];
    let a = TestApp::spawn_with(backend, &overrides).await;
    let b = a.spawn_beside(&overrides).await;
    assert_ne!(a.base, b.base, "two servers");
    a.register("ada@example.com").await;
    a.register("bob@example.com").await;
    // One database: an account made on A logs in on B.
    assert_eq!(
        attempt(&b, Via::Authapi, "ada@example.com", PASSWORD).await,
        LoggedIn
    );
    for _ in 0..2 {
        assert_eq!(
            attempt(&a, Via::Authapi, "ada@example.com", WRONG).await,
            Refused
        );
    }
    for via in [Via::Authapi, Via::Cbs] {
        let throttled = attempt(&b, via, "ada@example.com", PASSWORD).await;
        assert_waits_about(&throttled, LONG_DELAY);
    }
    let throttled = attempt(&a, Via::Cbs, "ada@example.com", PASSWORD).await;
    assert_waits_about(&throttled, LONG_DELAY);
    // Two failures of this address on A, a third on B: the address is throttled on A.
    assert_eq!(attempt(&b, Via::Pocketbase, "ghost", WRONG).await, Refused);
    let throttled = attempt(&a, Via::Authapi, "bob@example.com", PASSWORD).await;
    assert_waits_about(&throttled, IP_WINDOW);
}

/// A password reset proves the owner controls the mailbox: the account's failed logins
/// are forgotten, so the owner logs in with the new password at once, while a guessing
/// run would otherwise keep them waiting.
async fn a_reset_ends_the_accounts_wait(backend: Backend) {
    let delay = delay_secs(LONG_DELAY);
    let app = TestApp::spawn_with(
        backend,
        &[
            ("PORTCULLIS_THROTTLE_FREE_FAILURES", "1"),
            ("PORTCULLIS_THROTTLE_BASE_DELAY_SECS", &delay),
        ],
    )
    .await;
    app.register("ada@example.com").await;
    assert_eq!(
        attempt(&app, Via::Authapi, "ada@example.com", WRONG).await,
        Refused
    );
    let throttled = attempt(&app, Via::Authapi, "ada@example.com", PASSWORD).await;
    assert_waits_about(&throttled, LONG_DELAY);
    app.post(FORGOT, json!({"email": "ada@example.com"}))
        .await
        .expect(200);
    let secret = app.mail().await.last_secret_for("ada@example.com").unwrap();
    let new_password = "a brand new secret";
    app.post(
        "/auth/reset-password",
        json!({"token": secret, "password": new_password}),
    )
    .await
    .expect(200);
    assert_eq!(
        attempt(&app, Via::Cbs, "ada@example.com", new_password).await,
        LoggedIn
    );
}

// --- Requests at once ----------------------------------------------------------------------
//
// Each limit counts an attempt in the same atomic step that judges it, so requests sent
// at once cannot all pass a check before any is counted: the limits hold exactly.

/// Requests at once: no waiting at the hash queue (503) may blur the count.
const AT_ONCE: usize = 20;
const ROOMY_HASH_QUEUE: (&str, &str) = ("PORTCULLIS_HASH_QUEUE", "100");

/// Sends the requests `requests` builds, all at once; returns the statuses.
async fn all_at_once(
    app: &std::sync::Arc<TestApp>,
    requests: impl Iterator<Item = (&'static str, Value)>,
) -> Vec<u16> {
    let tasks: Vec<_> = requests
        .map(|(path, body)| {
            let app = app.clone();
            tokio::spawn(async move { app.post(path, body).await.status.as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

async fn wrong_passwords_at_once_get_no_more_than_the_free_failures(backend: Backend) {
    let delay = delay_secs(LONG_DELAY);
    let app = std::sync::Arc::new(
        TestApp::spawn_with(
            backend,
            &[
                ("PORTCULLIS_THROTTLE_FREE_FAILURES", "2"),
                ("PORTCULLIS_THROTTLE_BASE_DELAY_SECS", &delay),
                ROOMY_HASH_QUEUE,
            ],
        )
        .await,
    );
    app.register("ada@example.com").await;
    let body = Via::Authapi.body("ada@example.com", WRONG);
    let statuses = all_at_once(&app, (0..AT_ONCE).map(|_| ("/auth/login", body.clone()))).await;
    assert_eq!(
        count(&statuses, 401) + count(&statuses, 429),
        AT_ONCE,
        "{statuses:?}"
    );
    assert!(
        count(&statuses, 401) <= 2,
        "2 free failures, yet {} passwords were checked: {statuses:?}",
        count(&statuses, 401)
    );
}

async fn failures_at_once_from_one_address_stop_at_its_limit(backend: Backend) {
    let app = std::sync::Arc::new(
        TestApp::spawn_with(
            backend,
            &[("PORTCULLIS_THROTTLE_IP_FAILURES", "3"), ROOMY_HASH_QUEUE],
        )
        .await,
    );
    let statuses = all_at_once(
        &app,
        (0..AT_ONCE).map(|i| {
            let body = Via::Authapi.body(&format!("ghost{i}@example.com"), WRONG);
            ("/auth/login", body)
        }),
    )
    .await;
    assert_eq!(
        count(&statuses, 401) + count(&statuses, 429),
        AT_ONCE,
        "{statuses:?}"
    );
    assert!(
        count(&statuses, 401) <= 3,
        "3 failures per address, yet {} passwords were checked: {statuses:?}",
        count(&statuses, 401)
    );
}

async fn registrations_at_once_stop_at_the_limit(backend: Backend) {
    let app = std::sync::Arc::new(
        TestApp::spawn_with(
            backend,
            &[
                ("PORTCULLIS_THROTTLE_IP_REGISTRATIONS", "2"),
                ROOMY_HASH_QUEUE,
            ],
        )
        .await,
    );
    let statuses = all_at_once(
        &app,
        (0..10).map(|i| {
            let body = authapi_registration(&format!("user{i}@example.com"));
            ("/auth/register", body)
        }),
    )
    .await;
    assert_eq!(
        count(&statuses, 201) + count(&statuses, 429),
        10,
        "{statuses:?}"
    );
    assert!(
        count(&statuses, 201) <= 2,
        "2 registrations per address, yet {} accounts were made: {statuses:?}",
        count(&statuses, 201)
    );
}

async fn reset_requests_at_once_mail_no_more_than_three_links(backend: Backend) {
    let app = std::sync::Arc::new(TestApp::spawn(backend).await);
    app.register("ada@example.com").await;
    let body = json!({"email": "ada@example.com"});
    let statuses = all_at_once(&app, (0..AT_ONCE).map(|_| (FORGOT, body.clone()))).await;
    assert_eq!(count(&statuses, 200), AT_ONCE, "{statuses:?}");
    assert!(
        app.mail().await.count() <= 3,
        "3 links per account and hour, yet {} were mailed",
        app.mail().await.count()
    );
}
