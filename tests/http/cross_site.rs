//! Cross-site requests to the endpoints that read or set a cookie (ioweyou's, and
//! pocketbase's login) are refused with 403 in the dialect's format before anything
//! happens: no login CSRF, no logout from a link, no renewal from a cross-site
//! navigation. Allowed origins get CORS with credentials instead.

use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::{Method, RequestBuilder};
use serde_json::json;

use crate::support::app::{NewUserSpec, PASSWORD, TestApp, create_user};
use crate::support::backend::Backend;
use crate::support::client::Reply;

crate::on_backends! {
    both: [],
    sqlite: [
        cookie_endpoints_refuse_cross_site_requests,
        a_cross_site_logout_or_renewal_changes_nothing,
        same_site_and_header_less_requests_pass,
        bearer_endpoints_are_not_concerned,
        allowed_origins_get_cors_with_credentials,
    ],
}

const EVIL: &str = "https://evil.example";
const APP: &str = "https://app.example";

fn ioweyou_forbidden(reply: &Reply) {
    assert_eq!(
        (reply.status.as_u16(), &reply.body),
        (403, &json!({"errors": ["Forbidden."]})),
        "{}",
        reply.text
    );
    assert!(
        reply.headers.get(SET_COOKIE).is_none(),
        "{:?}",
        reply.headers
    );
}

/// The `access_tokens` cookie of a fresh session of ada, as a `Cookie` header value.
async fn logged_in(app: &TestApp) -> String {
    let reply = app
        .post(
            "/api/login",
            json!({"username": "ada", "password": PASSWORD}),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    let cookie = reply.headers[SET_COOKIE].to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

fn cross_site_variants(request: impl Fn() -> RequestBuilder) -> Vec<RequestBuilder> {
    vec![
        // A browser that says so.
        request().header("sec-fetch-site", "cross-site"),
        request()
            .header("sec-fetch-site", "cross-site")
            .header("origin", EVIL),
        // One that sends only Origin.
        request().header("origin", EVIL),
        request().header("origin", "null"),
    ]
}

async fn cookie_endpoints_refuse_cross_site_requests(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    create_user(
        &app,
        NewUserSpec::new("ada@example.com").with_username("ada"),
    )
    .await;
    let login = json!({"username": "ada", "password": PASSWORD});
    for path in ["/users/login", "/api/login"] {
        for request in cross_site_variants(|| app.client.post(app.url(path)).json(&login)) {
            ioweyou_forbidden(&app.send(request).await);
        }
    }
    let signup = json!({"username": "mallory", "displayName": "Mallory", "password": PASSWORD});
    for request in cross_site_variants(|| app.client.post(app.url("/api/signup")).json(&signup)) {
        ioweyou_forbidden(&app.send(request).await);
    }
    // Nothing was created by the refused sign-ups.
    let created = app.post("/api/signup", signup.clone()).await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);

    // pocketbase's login sets pb_auth: refused in its ClientResponseError shape.
    for request in cross_site_variants(|| {
        app.client
            .post(app.url("/auth/login"))
            .json(&json!({"username": "ada", "password": PASSWORD}))
    }) {
        let reply = app.send(request).await;
        assert_eq!(reply.status.as_u16(), 403, "{}", reply.text);
        assert_eq!(reply.body["name"], "ClientResponseError 403");
        assert_eq!(
            reply.body["response"]["message"],
            "You are not allowed to perform this request."
        );
        assert!(reply.headers.get(SET_COOKIE).is_none());
    }
}

async fn a_cross_site_logout_or_renewal_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    create_user(
        &app,
        NewUserSpec::new("ada@example.com").with_username("ada"),
    )
    .await;
    let cookie = logged_in(&app).await;
    for request in cross_site_variants(|| {
        app.client
            .get(app.url("/api/logout"))
            .header(COOKIE, &cookie)
    }) {
        ioweyou_forbidden(&app.send(request).await);
    }
    for request in
        cross_site_variants(|| app.client.get(app.url("/api/user")).header(COOKIE, &cookie))
    {
        ioweyou_forbidden(&app.send(request).await);
    }
    // The session lives on.
    let me = app
        .send(app.client.get(app.url("/api/user")).header(COOKIE, &cookie))
        .await;
    assert_eq!(me.expect(200)["username"], "ada");
}

async fn same_site_and_header_less_requests_pass(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    create_user(
        &app,
        NewUserSpec::new("ada@example.com").with_username("ada"),
    )
    .await;
    let login = json!({"username": "ada", "password": PASSWORD});
    let own_origin = app.base.clone();
    let passing = [
        app.client.post(app.url("/api/login")).json(&login),
        app.client
            .post(app.url("/api/login"))
            .header("sec-fetch-site", "same-origin")
            .json(&login),
        app.client
            .post(app.url("/api/login"))
            .header("sec-fetch-site", "same-site")
            .header("origin", "https://other.sub.example")
            .json(&login),
        app.client
            .post(app.url("/api/login"))
            .header("sec-fetch-site", "none")
            .json(&login),
        app.client
            .post(app.url("/api/login"))
            .header("origin", own_origin.as_str())
            .json(&login),
    ];
    for request in passing {
        let reply = app.send(request).await;
        assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
        assert!(reply.headers.get(SET_COOKIE).is_some());
        // No CORS for origins nobody allowed.
        assert!(reply.headers.get("access-control-allow-origin").is_none());
    }
}

async fn bearer_endpoints_are_not_concerned(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada@example.com").await;
    // authapi and cbs use no cookie: a page elsewhere may call them (and cannot read
    // the answer without CORS).
    let authapi = app
        .send(
            app.client
                .post(app.url("/auth/login"))
                .header("sec-fetch-site", "cross-site")
                .header("origin", EVIL)
                .json(&json!({"email": "ada@example.com", "password": PASSWORD})),
        )
        .await;
    assert_eq!(authapi.status.as_u16(), 200, "{}", authapi.text);
    let cbs = app
        .send(
            app.client
                .post(app.url("/api/v1/auth/login"))
                .header("origin", EVIL)
                .json(&json!({"user": "ada@example.com", "password": PASSWORD})),
        )
        .await;
    assert_eq!(cbs.expect(200)["code"], 0);
}

async fn allowed_origins_get_cors_with_credentials(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("PORTCULLIS_ALLOWED_ORIGINS", APP)]).await;
    create_user(
        &app,
        NewUserSpec::new("ada@example.com").with_username("ada"),
    )
    .await;

    // The preflight a browser sends before a credentialed JSON POST.
    let preflight = app
        .send(
            app.client
                .request(Method::OPTIONS, app.url("/api/login"))
                .header("origin", APP)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "content-type"),
        )
        .await;
    assert_eq!(preflight.status.as_u16(), 204, "{}", preflight.text);
    let header = |reply: &Reply, name: &str| {
        reply
            .headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(
        header(&preflight, "access-control-allow-origin").as_deref(),
        Some(APP)
    );
    assert_eq!(
        header(&preflight, "access-control-allow-credentials").as_deref(),
        Some("true")
    );
    assert_eq!(
        header(&preflight, "access-control-allow-methods").as_deref(),
        Some("POST")
    );
    assert_eq!(
        header(&preflight, "access-control-allow-headers").as_deref(),
        Some("content-type")
    );

    // The request itself, cross-site from the allowed origin: served, with CORS.
    let login = app
        .send(
            app.client
                .post(app.url("/api/login"))
                .header("sec-fetch-site", "cross-site")
                .header("origin", APP)
                .json(&json!({"username": "ada", "password": PASSWORD})),
        )
        .await;
    assert_eq!(login.status.as_u16(), 200, "{}", login.text);
    assert!(login.headers.get(SET_COOKIE).is_some());
    assert_eq!(
        header(&login, "access-control-allow-origin").as_deref(),
        Some(APP)
    );
    assert_eq!(
        header(&login, "access-control-allow-credentials").as_deref(),
        Some("true")
    );

    // Any other origin: no preflight answer (405, no CORS), and 403 for the request.
    let other = app
        .send(
            app.client
                .request(Method::OPTIONS, app.url("/api/login"))
                .header("origin", EVIL)
                .header("access-control-request-method", "POST"),
        )
        .await;
    assert_eq!(other.status.as_u16(), 405, "{}", other.text);
    assert!(other.headers.get("access-control-allow-origin").is_none());
    let refused = app
        .send(
            app.client
                .post(app.url("/api/login"))
                .header("origin", EVIL)
                .json(&json!({"username": "ada", "password": PASSWORD})),
        )
        .await;
    ioweyou_forbidden(&refused);
}
