//! Input an attacker or a careless client sends: common passwords wherever a new
//! password is chosen (authapi's registration and reset; ioweyou's sign-up is in
//! `ioweyou_signup`), and control, bidirectional and zero-width characters in names,
//! bios and emails, refused in the dialect's validation format before any hashing or
//! storage (PostgreSQL cannot store a NUL in text, so these run on both databases).
//! Logins never consult the password list: an account whose password is on it (set
//! before the list existed, or imported) still logs in.

use serde_json::json;

use crate::support::app::{NewUserSpec, PASSWORD, TestApp, create_user};
use crate::support::backend::Backend;

crate::on_backends! {
    both: [
        hidden_characters_in_a_registration_are_400s,
    ],
    sqlite: [
        authapi_registration_refuses_a_common_password,
        authapi_reset_refuses_a_common_password,
        a_login_name_that_would_reach_a_claim_is_length_bounded,
    ],
}

const TOO_COMMON: &str = "Password is too common";

async fn authapi_registration_refuses_a_common_password(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for common in ["password1", "Password1", "QWERTYUIOP", "ｉｌｏｖｅｙｏｕ１"] {
        app.post(
            "/auth/register",
            json!({"name": "Ada", "email": "ada@example.com", "password": common, "confirm": common}),
        )
        .await
        .expect_error(400, TOO_COMMON);
    }
    app.register("ada@example.com").await;
}

async fn authapi_reset_refuses_a_common_password(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    create_user(&app, NewUserSpec::new("ada@example.com")).await;
    app.post("/auth/forgot-password", json!({"email": "ada@example.com"}))
        .await
        .expect(200);
    let secret = app.mail().await.last_secret_for("ada@example.com").unwrap();
    let path = format!("/auth/reset-password?token={secret}");
    app.post(&path, json!({"password": "iloveyou1"}))
        .await
        .expect_error(400, TOO_COMMON);
    // The token is not spent by the refusal; the old password still works.
    app.login("ada@example.com", PASSWORD).await.expect(200);
    app.post(&path, json!({"password": "a fine new passphrase"}))
        .await
        .expect(200);
}

async fn hidden_characters_in_a_registration_are_400s(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let register = |name: &str, bio: &str, email: &str| json!({"name": name, "bio": bio, "email": email, "password": PASSWORD, "confirm": PASSWORD});
    let name_error = "Name must not contain control or bidirectional formatting characters";
    let bio_error = "Bio must not contain control or bidirectional formatting characters";
    let email_error = "Email must be a valid email address";
    for (body, message) in [
        (register("Ada\u{0}", "", "ada@example.com"), name_error),
        (
            register("Ada \u{202E}ecalevoL", "", "ada@example.com"),
            name_error,
        ),
        (
            register("Ada", "nul \u{0} inside", "ada@example.com"),
            bio_error,
        ),
        (
            register("Ada", "\u{2066}isolated", "ada@example.com"),
            bio_error,
        ),
        (register("Ada", "", "a\u{200B}da@example.com"), email_error),
        (register("Ada", "", "ada@exam\u{0}ple.com"), email_error),
    ] {
        app.post("/auth/register", body.clone())
            .await
            .expect_error(400, message);
    }
    // Nothing was stored: the address is still free, and a bio with line breaks is fine.
    let created = app
        .post(
            "/auth/register",
            register("Ada", "Line one\nLine two", "ada@example.com"),
        )
        .await;
    assert_eq!(created.expect(201)["user"]["bio"], "Line one\nLine two");
}

/// A name longer than any account's is refused before any lookup, so it never reaches
/// a token claim (cbs used to copy a 15,000-character `user` into `identifier`).
async fn a_login_name_that_would_reach_a_claim_is_length_bounded(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let huge = "a".repeat(15_000);
    let cbs = app
        .post(
            "/api/v1/auth/login",
            json!({"user": huge, "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        (cbs.status.as_u16(), &cbs.body),
        (
            400,
            &json!({"code": 1001, "error": "invalid_request",
                    "desc": "\"user\" length must be less than or equal to 254 characters long"})
        )
    );
    let ioweyou = app
        .post(
            "/api/login",
            json!({"username": huge, "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        (ioweyou.status.as_u16(), &ioweyou.body),
        (
            400,
            &json!({"errors": ["\"username\" length must be less than or equal to 254 characters long"]})
        )
    );
}
