//! One server, four dialects, one user store and one session model, against the real
//! binary on PostgreSQL: every account logs in through every dialect, refresh tokens
//! cross dialects, and a logout anywhere ends the session everywhere.

use serde_json::{Value, json};

use crate::support::backend::Backend;
use crate::support::client::{Api, Reply};
use crate::support::process::{Server, TestDb, run_cli};
use crate::support::uri::decode_uri_component;

const PASSWORD: &str = "one store to rule them";

/// `(status, body, Set-Cookie)` of a reply whose body may be anything.
fn parts(reply: Reply) -> (u16, Value, Option<String>) {
    let cookie = reply.set_cookies().into_iter().next();
    (reply.status.as_u16(), reply.body, cookie)
}

/// `POST path` with a JSON body.
async fn post(api: &Api, path: &str, body: Value) -> (u16, Value, Option<String>) {
    parts(api.post(path, body).await)
}

/// `GET path` with a `Cookie` header.
async fn get_with_cookie(api: &Api, path: &str, cookie: &str) -> (u16, Value, Option<String>) {
    parts(
        api.send(api.client.get(api.url(path)).header("cookie", cookie))
            .await,
    )
}

/// `access_tokens=<value>` of a Set-Cookie header, and the two tokens it carries,
/// decoded as cookie-parser decodes it.
fn ioweyou_cookie(set_cookie: &str) -> (String, String, String) {
    let pair = set_cookie.split(';').next().unwrap();
    let value = pair.strip_prefix("access_tokens=").unwrap();
    let decoded = decode_uri_component(value);
    let json: Value = serde_json::from_str(decoded.strip_prefix("j:").unwrap()).unwrap();
    (
        pair.to_owned(),
        json["access_token"].as_str().unwrap().to_owned(),
        json["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// Logs `login` in through each of the four dialects; returns the cbs token pair.
async fn login_everywhere(api: &Api, login: &str, email: &str) -> (String, String) {
    let (status, body, _) = post(
        api,
        "/auth/login",
        json!({"email": login, "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 200, "authapi login as {login}: {body}");
    assert_eq!(body["user"]["email"], email);

    let (status, body, cookie) = post(
        api,
        "/users/login",
        json!({"username": login, "password": PASSWORD}),
    )
    .await;
    assert_eq!(
        (status, &body),
        (200, &json!({})),
        "ioweyou login as {login}"
    );
    assert!(cookie.unwrap().starts_with("access_tokens=j%3A"));

    let (status, body, cookie) = post(
        api,
        "/auth/login",
        json!({"username": login, "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 200, "pocketbase login as {login}: {body}");
    assert_eq!(body["record"]["email"], email);
    assert!(cookie.unwrap().starts_with("pb_auth="));

    let (status, body, _) = post(
        api,
        "/api/v1/auth/login",
        json!({"user": login, "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 200, "cbs login as {login}: {body}");
    assert_eq!(body["code"], 0);
    (
        body["result"]["access_token"].as_str().unwrap().to_owned(),
        body["result"]["refresh_token"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn four_dialects_share_one_store_and_one_session_model() {
    let db = TestDb::new(Backend::Postgres);
    // An operator-made account with a username, before the server starts.
    run_cli(
        &db,
        &[
            "user",
            "create",
            "--email",
            "grace@example.com",
            "--name",
            "Grace",
            "--username",
            "grace",
        ],
        &format!("{PASSWORD}\n"),
        &[],
    )
    .assert_success();
    let server = Server::start_with(&db, &[("PORTCULLIS_COOKIE_SECURE", "false")]);
    let api = server.api();
    api.register("Ada", "ada@example.com", PASSWORD)
        .await
        .expect(201);

    // Every account logs in through every dialect, by email and by username.
    login_everywhere(&api, "ada@example.com", "ada@example.com").await;
    login_everywhere(&api, "grace", "grace@example.com").await;
    let (cbs_access, cbs_refresh) =
        login_everywhere(&api, "GRACE@example.com", "grace@example.com").await;

    // A cbs refresh token refreshes through authapi, and the result through cbs.
    let (status, authapi_pair, _) = post(
        &api,
        "/auth/refresh-tokens",
        json!({"refreshToken": cbs_refresh}),
    )
    .await;
    assert_eq!(status, 200, "{authapi_pair}");
    let authapi_refresh = authapi_pair["refresh"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body, _) = post(
        &api,
        "/api/v1/auth/refresh",
        json!({"refresh_token": authapi_refresh}),
    )
    .await;
    assert_eq!(
        (status, &body["result"]["code"]),
        (200, &json!(0)),
        "{body}"
    );
    let cbs_refresh = body["result"]["refresh_token"].as_str().unwrap().to_owned();
    // The cbs access token from the first login still authenticates on authapi.
    api.welcome(&cbs_access).await.expect(200);

    // A logout through authapi ends the cbs-started session everywhere.
    api.logout(&cbs_refresh).await.expect(200);
    api.welcome(&cbs_access)
        .await
        .expect_error(401, "Please authenticate");
    let (status, body, _) = post(
        &api,
        "/api/v1/auth/refresh",
        json!({"refresh_token": cbs_refresh}),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["result"]["code"], 1004);

    // An ioweyou session: its tokens work on authapi and cbs; its logout ends them.
    let (_, _, set_cookie) = post(
        &api,
        "/users/login",
        json!({"username": "ada@example.com", "password": PASSWORD}),
    )
    .await;
    let (cookie, access, refresh) = ioweyou_cookie(&set_cookie.unwrap());
    api.welcome(&access).await.expect(200);
    let (status, user, _) = get_with_cookie(&api, "/api/user", &cookie).await;
    assert_eq!(status, 200);
    assert_eq!(user["display_name"], "Ada");
    let (status, _, _) = get_with_cookie(&api, "/api/logout", &cookie).await;
    assert_eq!(status, 200);
    api.welcome(&access)
        .await
        .expect_error(401, "Please authenticate");
    let (status, body, _) = post(
        &api,
        "/api/v1/auth/refresh",
        json!({"refresh_token": refresh}),
    )
    .await;
    assert_eq!(
        (status, &body["result"]["code"]),
        (401, &json!(1004)),
        "{body}"
    );

    // A pocketbase token is an access token of a live session: accepted by authapi
    // until the password reset ends every session of the account.
    let (_, body, _) = post(
        &api,
        "/auth/login",
        json!({"username": "grace", "password": PASSWORD}),
    )
    .await;
    let pocketbase_token = body["token"].as_str().unwrap().to_owned();
    api.welcome(&pocketbase_token).await.expect(200);
    let mark = server.logs().mark();
    api.forgot_password("grace@example.com").await.expect(200);
    let reset = server.logs().reset_token_after(mark, "grace@example.com");
    api.reset_password(&reset, "a brand new password")
        .await
        .expect(200);
    api.welcome(&pocketbase_token)
        .await
        .expect_error(401, "Please authenticate");
    let (status, body, _) = post(
        &api,
        "/api/v1/auth/login",
        json!({"user": "grace", "password": "a brand new password"}),
    )
    .await;
    assert_eq!((status, &body["code"]), (200, &json!(0)), "{body}");
}
