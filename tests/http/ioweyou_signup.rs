//! ioweyou's `POST /api/signup`, as the dialect's web client calls it: the account it
//! creates (a username, no email) lands logged in and logs in through every dialect.

use std::sync::Arc;

use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};

use crate::support::app::{NewUserSpec, PASSWORD, TestApp, create_user};
use crate::support::backend::Backend;
use crate::support::client::Reply;

crate::on_backends! {
    both: [
        signup_lands_logged_in_and_logs_in_everywhere,
        a_taken_username_is_422_whatever_its_case,
        concurrent_signups_for_one_username_exactly_one_wins,
    ],
    sqlite: [
        signup_validation_reports_the_first_problem,
        signup_body_errors,
    ],
}

/// The `access_tokens` cookie a 201 set, as a `Cookie` header value.
fn session_cookie(reply: &Reply) -> String {
    assert_eq!(reply.status.as_u16(), 201, "{}", reply.text);
    let cookies: Vec<&str> = reply
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let cookie = cookies[0];
    assert!(cookie.starts_with("access_tokens=j%3A"), "{cookie}");
    assert!(cookie.contains("; HttpOnly"), "{cookie}");
    assert!(cookie.contains("; Path=/"), "{cookie}");
    cookie.split(';').next().unwrap().to_owned()
}

async fn signup(app: &TestApp, body: Value) -> Reply {
    app.post("/api/signup", body).await
}

fn ioweyou_error(reply: &Reply, status: u16, message: &str) {
    assert_eq!(
        (reply.status.as_u16(), &reply.body),
        (status, &json!({ "errors": [message] })),
        "{}",
        reply.text
    );
}

async fn signup_lands_logged_in_and_logs_in_everywhere(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let reply = signup(
        &app,
        json!({"username": "Ada", "displayName": "  Ada Lovelace ", "password": PASSWORD}),
    )
    .await;
    assert_eq!(reply.text, "", "201 with an empty body");
    let cookie = session_cookie(&reply);

    let me = app
        .send(app.client.get(app.url("/api/user")).header(COOKIE, &cookie))
        .await;
    assert_eq!(
        me.expect(200),
        &json!({"username": "Ada", "display_name": "Ada Lovelace"})
    );

    // ioweyou, by any case of the username.
    let ioweyou = app
        .post(
            "/api/login",
            json!({"username": "ada", "password": PASSWORD}),
        )
        .await;
    assert_eq!(ioweyou.status.as_u16(), 200, "{}", ioweyou.text);
    // authapi, whose login field takes a username too; the account has no email.
    let authapi = app.login("ADA", PASSWORD).await;
    assert_eq!(authapi.expect(200)["user"]["email"], Value::Null);
    assert_eq!(authapi.body["user"]["name"], "Ada Lovelace");
    // pocketbase: PocketBase's "" for no email.
    let pocketbase = app
        .post(
            "/auth/login",
            json!({"username": "ada", "password": PASSWORD}),
        )
        .await;
    let record = &pocketbase.expect(200)["record"];
    assert_eq!(
        (&record["username"], &record["email"]),
        (&json!("Ada"), &json!(""))
    );
    // cbs.
    let cbs = app
        .post(
            "/api/v1/auth/login",
            json!({"user": "ada", "password": PASSWORD}),
        )
        .await;
    assert_eq!(cbs.expect(200)["code"], 0);
}

async fn a_taken_username_is_422_whatever_its_case(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    create_user(
        &app,
        NewUserSpec::new("grace@example.com").with_username("grace"),
    )
    .await;
    for taken in ["grace", "GRACE", "Grace"] {
        let reply = signup(
            &app,
            json!({"username": taken, "displayName": "Grace", "password": PASSWORD}),
        )
        .await;
        ioweyou_error(&reply, 422, "Username already taken.");
        assert!(reply.headers.get(SET_COOKIE).is_none());
    }
    // Two accounts without email coexist.
    for name in ["first", "second"] {
        let reply = signup(
            &app,
            json!({"username": name, "displayName": name, "password": PASSWORD}),
        )
        .await;
        session_cookie(&reply);
    }
}

async fn concurrent_signups_for_one_username_exactly_one_wins(backend: Backend) {
    let app = Arc::new(TestApp::spawn(backend).await);
    let attempts: Vec<_> = (0..6)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                signup(
                    &app,
                    json!({"username": "race", "displayName": format!("Racer {i}"), "password": PASSWORD}),
                )
                .await
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for attempt in attempts {
        let reply = attempt.await.unwrap();
        if reply.status.as_u16() == 422 {
            ioweyou_error(&reply, 422, "Username already taken.");
        }
        statuses.push(reply.status.as_u16());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 422, 422, 422, 422, 422]);
}

async fn signup_validation_reports_the_first_problem(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let long = "a".repeat(17);
    let ok = |extra: Value| {
        let mut body = json!({"username": "ada", "displayName": "Ada", "password": PASSWORD});
        for (key, value) in extra.as_object().unwrap() {
            if value.is_null() && key.starts_with('-') {
                body.as_object_mut().unwrap().remove(&key[1..]);
            } else {
                body[key] = value.clone();
            }
        }
        body
    };
    let cases = [
        (json!({}), "\"username\" is required"),
        (
            json!({"username": 5, "password": 7}),
            "\"username\" must be a string",
        ),
        (
            ok(json!({"username": null})),
            "\"username\" must be a string",
        ),
        (
            ok(json!({"username": ""})),
            "\"username\" is not allowed to be empty",
        ),
        (
            ok(json!({"username": "ada!"})),
            "\"username\" must only contain alpha-numeric characters",
        ),
        (
            ok(json!({"username": "ada lovelace"})),
            "\"username\" must only contain alpha-numeric characters",
        ),
        (
            ok(json!({"username": "a"})),
            "\"username\" length must be at least 2 characters long",
        ),
        (
            ok(json!({"username": long})),
            "\"username\" length must be less than or equal to 16 characters long",
        ),
        (
            ok(json!({"-displayName": null})),
            "\"displayName\" is required",
        ),
        (
            ok(json!({"displayName": 7})),
            "\"displayName\" must be a string",
        ),
        (
            ok(json!({"displayName": "   "})),
            "\"displayName\" is not allowed to be empty",
        ),
        (
            ok(json!({"displayName": "Ada!"})),
            "Display name can only contain letters, numbers and spaces",
        ),
        (
            ok(json!({"displayName": " A "})),
            "\"displayName\" length must be at least 2 characters long",
        ),
        (
            ok(json!({"displayName": long})),
            "\"displayName\" length must be less than or equal to 16 characters long",
        ),
        (ok(json!({"-password": null})), "\"password\" is required"),
        (
            ok(json!({"password": null})),
            "\"password\" must be a string",
        ),
        (
            ok(json!({"password": ""})),
            "\"password\" is not allowed to be empty",
        ),
        (
            ok(json!({"password": "short"})),
            "Password must be at least 8 characters",
        ),
        (
            ok(json!({"password": "x".repeat(257)})),
            "Password must be at most 256 characters",
        ),
        (
            ok(json!({"password": "Password1"})),
            "Password is too common",
        ),
        (
            ok(json!({"username": "zebra42x", "password": "ZEBRA42X"})),
            "Password must not be the same as the email or username",
        ),
    ];
    for (body, message) in cases {
        let reply = signup(&app, body.clone()).await;
        assert_eq!(
            (reply.status.as_u16(), &reply.body),
            (400, &json!({ "errors": [message] })),
            "{body}: {}",
            reply.text
        );
        assert!(reply.headers.get(SET_COOKIE).is_none(), "{body}");
    }
    // No composition rule: a long lower-case password is fine; 16 characters of
    // letters, digits and spaces are fine.
    let reply = signup(
        &app,
        json!({"username": "a1b2c3d4e5f6g7h8", "displayName": "Ada Lovelace 1st", "password": "all lower case words"}),
    )
    .await;
    session_cookie(&reply);
}

async fn signup_body_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    ioweyou_error(
        &app.post_raw("/api/signup", "{\"username\":").await,
        400,
        "Malformed JSON body",
    );
    ioweyou_error(
        &app.post_raw("/api/signup", "[1]").await,
        400,
        "Request body must be a JSON object",
    );
    ioweyou_error(
        &app.post_raw("/api/signup", "x".repeat(20_000)).await,
        413,
        "Request body too large (limit 16384 bytes)",
    );
    let wrong = app.send(app.client.get(app.url("/api/signup"))).await;
    ioweyou_error(&wrong, 405, "Method not allowed");
    assert_eq!(wrong.headers["allow"], "POST");
}
