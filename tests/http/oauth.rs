//! Token introspection (RFC 7662) and revocation (RFC 7009) for registered clients:
//! HTTP Basic client authentication, the live/spent/revoked/forged verdicts, and a
//! revocation ending the session in every dialect.

use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, WWW_AUTHENTICATE};
use serde_json::{Value, json};

use crate::support::app::{TestApp, service_for, tampered, token};
use crate::support::backend::Backend;
use crate::support::client::Reply;

crate::on_backends! {
    both: [
        live_tokens_are_active_and_dead_ones_are_not,
        revocation_ends_the_session,
    ],
    sqlite: [
        clients_must_authenticate,
        bad_requests_get_oauth_errors,
    ],
}

const INTROSPECT: &str = "/oauth/introspect";
const REVOKE: &str = "/oauth/revoke";

/// A registered client's id and secret.
async fn client(app: &TestApp) -> (String, String) {
    let service = service_for(app).await;
    let (client, secret) =
        tokio::task::spawn_blocking(move || service.register_client("billing").unwrap())
            .await
            .unwrap();
    (client.id.to_string(), secret.expose().to_owned())
}

async fn call(
    app: &TestApp,
    path: &str,
    credentials: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> Reply {
    let mut request = app.client.post(app.url(path)).form(form);
    if let Some((id, secret)) = credentials {
        request = request.basic_auth(id, Some(secret));
    }
    app.send(request).await
}

async fn introspect(app: &TestApp, client: &(String, String), token: &str) -> Value {
    let reply = call(
        app,
        INTROSPECT,
        Some((&client.0, &client.1)),
        &[("token", token)],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.headers.get(CACHE_CONTROL).unwrap(), "no-store");
    reply.body
}

async fn live_tokens_are_active_and_dead_ones_are_not(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = client(&app).await;
    let registered = app.register("ada@example.com").await;
    let access = token(&registered, "access");
    let refresh = token(&registered, "refresh");
    let user_id = registered["user"]["id"].as_str().unwrap().to_owned();

    let active = introspect(&app, &client, &access).await;
    assert_eq!(active["active"], true, "{active}");
    assert_eq!(active["sub"], user_id.as_str());
    assert_eq!(active["token_type"], "access_token");
    assert_eq!(active["iss"], "portcullis");
    assert_eq!(active["aud"], "portcullis");
    for key in ["sid", "jti"] {
        assert!(active[key].is_string(), "{active}");
    }
    for key in ["exp", "iat"] {
        assert!(active[key].as_i64().is_some(), "{active}");
    }
    let active_refresh = introspect(&app, &client, &refresh).await;
    assert_eq!(active_refresh["active"], true, "{active_refresh}");
    assert_eq!(active_refresh["token_type"], "refresh_token");
    assert_eq!(active_refresh["sid"], active["sid"]);

    // Forged, garbage: inactive, and nothing else said.
    for dead in [tampered(&access), "not a token".to_owned()] {
        assert_eq!(
            introspect(&app, &client, &dead).await,
            json!({"active": false})
        );
    }
    // A spent refresh token is inactive; its successor is active.
    let rotated = app
        .post("/auth/refresh-tokens", json!({"refreshToken": refresh}))
        .await
        .expect(200)
        .clone();
    assert_eq!(
        introspect(&app, &client, &refresh).await,
        json!({"active": false})
    );
    let successor = rotated["refresh"]["token"].as_str().unwrap();
    assert_eq!(introspect(&app, &client, successor).await["active"], true);
    // After logout, both of the session's tokens are inactive at once.
    app.post("/auth/logout", json!({"refreshToken": successor}))
        .await
        .expect(200);
    assert_eq!(
        introspect(&app, &client, &access).await,
        json!({"active": false})
    );
    assert_eq!(
        introspect(&app, &client, successor).await,
        json!({"active": false})
    );
}

async fn revocation_ends_the_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = client(&app).await;
    let registered = app.register("ada@example.com").await;
    let access = token(&registered, "access");
    let refresh = token(&registered, "refresh");
    let revoked = call(
        &app,
        REVOKE,
        Some((&client.0, &client.1)),
        &[("token", &access)],
    )
    .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text);
    assert_eq!(revoked.text, "");
    assert_eq!(
        introspect(&app, &client, &refresh).await,
        json!({"active": false})
    );
    app.post_bearer("/auth", &access)
        .await
        .expect_error(401, "Please authenticate");
    app.post("/auth/refresh-tokens", json!({"refreshToken": refresh}))
        .await
        .expect_error(401, "Please authenticate");
    // An unknown or spent token is answered alike (RFC 7009 §2.2).
    let again = call(
        &app,
        REVOKE,
        Some((&client.0, &client.1)),
        &[("token", &access)],
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    let junk = call(
        &app,
        REVOKE,
        Some((&client.0, &client.1)),
        &[("token", "junk")],
    )
    .await;
    assert_eq!(junk.status, StatusCode::OK, "{}", junk.text);
}

fn assert_invalid_client(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    assert_eq!(
        reply.headers.get(WWW_AUTHENTICATE).unwrap(),
        r#"Basic realm="portcullis""#
    );
    assert_eq!(reply.body["error"], "invalid_client", "{}", reply.text);
}

async fn clients_must_authenticate(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (id, secret) = client(&app).await;
    let registered = app.register("ada@example.com").await;
    let access = token(&registered, "access");
    for path in [INTROSPECT, REVOKE] {
        let form = [("token", access.as_str())];
        assert_invalid_client(&call(&app, path, None, &form).await);
        assert_invalid_client(&call(&app, path, Some((&id, "wrong secret")), &form).await);
        assert_invalid_client(&call(&app, path, Some(("not-an-id", &secret)), &form).await);
        let other = uuid_like();
        assert_invalid_client(&call(&app, path, Some((&other, &secret)), &form).await);
        let bearer = app
            .send(
                app.client
                    .post(app.url(path))
                    .bearer_auth(&access)
                    .form(&form),
            )
            .await;
        assert_invalid_client(&bearer);
    }
    // The session is untouched by the refused revocations.
    app.post_bearer("/auth", &access).await.expect(200);
}

/// A well-formed client id no client has.
fn uuid_like() -> String {
    "01900000-0000-7000-8000-000000000000".to_owned()
}

async fn bad_requests_get_oauth_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (id, secret) = client(&app).await;
    for path in [INTROSPECT, REVOKE] {
        let missing = call(
            &app,
            path,
            Some((&id, &secret)),
            &[("token_type_hint", "access_token")],
        )
        .await;
        assert_eq!(missing.status, StatusCode::BAD_REQUEST, "{}", missing.text);
        assert_eq!(missing.body["error"], "invalid_request");
        let json_body = app
            .send(
                app.client
                    .post(app.url(path))
                    .basic_auth(&id, Some(&secret))
                    .header("content-type", "application/json")
                    .body(r#"{"token":"x"}"#),
            )
            .await;
        assert_eq!(
            json_body.status,
            StatusCode::BAD_REQUEST,
            "{}",
            json_body.text
        );
        assert_eq!(json_body.body["error"], "invalid_request");
        let get = app.get(path).await;
        assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED, "{}", get.text);
        assert_eq!(get.headers.get("allow").unwrap(), "POST");
    }
}
