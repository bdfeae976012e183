//! A user's whole life over authapi, against the real binary: register, log in,
//! authenticate, rotate refresh tokens (and get caught reusing one), log out, forget
//! the password and reset it. Once on PostgreSQL, once on SQLite; the same body.

use serde_json::json;

use crate::support::backend::Backend;
use crate::support::client::Api;
use crate::support::process::{
    RESET_TOKEN_LINE, Server, Session, TestDb, Tokens, assert_no_secrets_in,
};

const NAME: &str = "Ada Lovelace";
const BIO: &str = "Wrote the first program";
const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "analytical engine 1843";
const NEW_PASSWORD: &str = "difference engine 1822";
const WRONG_PASSWORD: &str = "babbage was here 1834";

const PLEASE_AUTHENTICATE: &str = "Please authenticate";
const INCORRECT_CREDENTIALS: &str = "Incorrect email or password";
const INVALID_REFRESH_TOKEN: &str = "Invalid refresh token";

crate::on_backends! {
    both: [full_journey, concurrent_refreshes_rotate_once],
}

async fn login(api: &Api, password: &str) -> Session {
    let reply = api.login(EMAIL, password).await;
    Session::from_body(reply.expect(200), NAME, Some(BIO), EMAIL)
}

async fn assert_authenticated(api: &Api, access: &str) {
    let reply = api.welcome(access).await;
    assert_eq!(
        reply.expect(200),
        &json!({
            "message": "Welcome authenticated user",
            "user": {"name": NAME, "bio": BIO, "email": EMAIL},
        })
    );
}

async fn assert_refused(api: &Api, access: &str) {
    api.welcome(access)
        .await
        .expect_error(401, PLEASE_AUTHENTICATE);
}

async fn full_journey(backend: Backend) {
    let db = TestDb::new(backend);
    let server = Server::start(&db);
    let api = server.api();
    // Every password and token the journey handles; none may reach the log.
    let mut secrets: Vec<String> =
        vec![PASSWORD.into(), NEW_PASSWORD.into(), WRONG_PASSWORD.into()];

    // Register: 201 with the user (never a hash) and a first session.
    let reply = api
        .post(
            "/auth/register",
            json!({
                "name": NAME, "bio": BIO, "email": EMAIL,
                "password": PASSWORD, "confirm": PASSWORD,
            }),
        )
        .await;
    let registered = Session::from_body(reply.expect(201), NAME, Some(BIO), EMAIL);
    secrets.extend(registered.tokens.secrets());
    assert_authenticated(&api, &registered.tokens.access).await;

    // The email is taken now.
    api.register("Someone Else", EMAIL, "another long password")
        .await
        .expect_error(400, "Email already taken");
    secrets.push("another long password".into());

    // Log in: a wrong password is refused, the right one opens a second session.
    api.login(EMAIL, WRONG_PASSWORD)
        .await
        .expect_error(401, INCORRECT_CREDENTIALS);
    api.login("nobody@example.com", PASSWORD)
        .await
        .expect_error(401, INCORRECT_CREDENTIALS);
    let first = login(&api, PASSWORD).await;
    secrets.extend(first.tokens.secrets());
    assert_eq!(first.user_id, registered.user_id);
    assert_ne!(first.tokens.access, registered.tokens.access);

    // POST /auth: the access token authenticates; nothing or garbage does not.
    assert_authenticated(&api, &first.tokens.access).await;
    api.welcome_anonymous()
        .await
        .expect_error(401, PLEASE_AUTHENTICATE);
    assert_refused(&api, "not-a-token").await;
    // A refresh token is not an access token.
    assert_refused(&api, &first.tokens.refresh).await;

    // Refresh: a new pair, which works.
    let reply = api.refresh(&first.tokens.refresh).await;
    let rotated = Tokens::from_body(reply.expect(200));
    secrets.extend(rotated.secrets());
    assert_ne!(rotated.refresh, first.tokens.refresh);
    assert_ne!(rotated.access, first.tokens.access);
    assert_authenticated(&api, &rotated.access).await;

    // Reusing the spent refresh token is detected ...
    api.refresh(&first.tokens.refresh)
        .await
        .expect_error(401, PLEASE_AUTHENTICATE);
    // ... and the whole session is revoked: its newest refresh token and its access
    // tokens (old and new) are dead.
    api.refresh(&rotated.refresh)
        .await
        .expect_error(401, PLEASE_AUTHENTICATE);
    assert_refused(&api, &rotated.access).await;
    assert_refused(&api, &first.tokens.access).await;
    // Only that session: the registration's session lives on.
    assert_authenticated(&api, &registered.tokens.access).await;

    // Log in again, then log out: that session's access token is refused at once.
    let second = login(&api, PASSWORD).await;
    secrets.extend(second.tokens.secrets());
    assert_authenticated(&api, &second.tokens.access).await;
    let reply = api.logout(&second.tokens.refresh).await;
    assert_eq!(reply.expect(200), &json!({"message": "Logout successful"}));
    assert_refused(&api, &second.tokens.access).await;
    // Its refresh token cannot log out again, nor refresh.
    api.logout(&second.tokens.refresh)
        .await
        .expect_error(400, INVALID_REFRESH_TOKEN);
    api.refresh(&second.tokens.refresh)
        .await
        .expect_error(401, PLEASE_AUTHENTICATE);
    api.logout("not-a-token")
        .await
        .expect_error(400, INVALID_REFRESH_TOKEN);
    // The revoked session's rotated refresh token cannot log out either.
    api.logout(&rotated.refresh)
        .await
        .expect_error(400, INVALID_REFRESH_TOKEN);

    // A live session to be ended by the reset below.
    let third = login(&api, PASSWORD).await;
    secrets.extend(third.tokens.secrets());
    assert_authenticated(&api, &third.tokens.access).await;

    // Forgot password: the same answer for a stranger and for the user; only the
    // user gets a token (the development mailer writes it to the log).
    let forgot = json!({"message": "If that email is registered, a reset link has been sent"});
    let mark = server.logs().mark();
    let reply = api.forgot_password("stranger@example.com").await;
    assert_eq!(reply.expect(200), &forgot);
    let reply = api.forgot_password(EMAIL).await;
    assert_eq!(reply.expect(200), &forgot);
    let reset_token = server.logs().reset_token_after(mark, EMAIL);
    let stranger_line = server
        .logs()
        .text()
        .lines()
        .skip(mark)
        .any(|l| l.contains(RESET_TOKEN_LINE) && l.contains("stranger@example.com"));
    assert!(
        !stranger_line,
        "a reset token was issued for an unknown email"
    );

    // A password the policy refuses does not spend the token.
    let reply = api.reset_password(&reset_token, "short").await;
    assert_eq!(reply.expect(400)["code"], 400, "{}", reply.body);

    // Reset: every older session is dead, the old password is refused, the new one works.
    let reply = api.reset_password(&reset_token, NEW_PASSWORD).await;
    assert_eq!(
        reply.expect(200),
        &json!({"message": "Password reset successful"})
    );
    assert_refused(&api, &registered.tokens.access).await;
    assert_refused(&api, &third.tokens.access).await;
    api.refresh(&registered.tokens.refresh)
        .await
        .expect_error(401, PLEASE_AUTHENTICATE);
    api.refresh(&third.tokens.refresh)
        .await
        .expect_error(401, PLEASE_AUTHENTICATE);
    api.login(EMAIL, PASSWORD)
        .await
        .expect_error(401, INCORRECT_CREDENTIALS);
    let after_reset = login(&api, NEW_PASSWORD).await;
    secrets.extend(after_reset.tokens.secrets());
    assert_eq!(after_reset.user_id, registered.user_id);
    assert_authenticated(&api, &after_reset.tokens.access).await;

    // The reset token is single use; an unknown one fails the same way.
    api.reset_password(&reset_token, "yet another new password")
        .await
        .expect_error(401, "Password reset failed");
    api.reset_password("not-a-reset-token", "yet another new password")
        .await
        .expect_error(401, "Password reset failed");
    secrets.push("yet another new password".into());
    api.login(EMAIL, NEW_PASSWORD).await.expect(200);

    // A refresh token spent by a rotation cannot log out.
    let reply = api.refresh(&after_reset.tokens.refresh).await;
    secrets.extend(Tokens::from_body(reply.expect(200)).secrets());
    api.logout(&after_reset.tokens.refresh)
        .await
        .expect_error(400, INVALID_REFRESH_TOKEN);

    // The log recorded the requests (so the search below searched something) but no
    // password and no access or refresh token; the reset token is the one exception.
    let logs = server.logs().clone();
    let status = server.stop();
    assert!(status.success(), "SIGTERM: the server exited with {status}");
    let logs = logs.text();
    assert!(
        logs.contains("/auth/refresh-tokens") && logs.contains("/auth/reset-password"),
        "the requests were not logged:\n{logs}"
    );
    assert!(
        logs.contains(&reset_token),
        "the search below would not find a token in this log:\n{logs}"
    );
    assert_no_secrets_in(&logs, &secrets);
}

/// Several clients race to rotate the same refresh token: exactly one wins; the others
/// are reuses, which revoke the session, so the winner's new tokens die too.
async fn concurrent_refreshes_rotate_once(backend: Backend) {
    let db = TestDb::new(backend);
    let server = Server::start(&db);
    let api = server.api();
    let reply = api.register(NAME, EMAIL, PASSWORD).await;
    let session = Session::from_body(reply.expect(201), NAME, None, EMAIL);

    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (api, refresh) = (api.clone(), session.tokens.refresh.clone());
        racers.spawn(async move { api.refresh(&refresh).await });
    }
    let replies = racers.join_all().await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    let winners: Vec<_> = replies.iter().filter(|r| r.status == 200).collect();
    assert_eq!(winners.len(), 1, "statuses: {statuses:?}");
    for loser in replies.iter().filter(|r| r.status != 200) {
        loser.expect_error(401, PLEASE_AUTHENTICATE);
    }
    let rotated = Tokens::from_body(&winners[0].body);
    assert_refused(&api, &rotated.access).await;
    api.refresh(&rotated.refresh)
        .await
        .expect_error(401, PLEASE_AUTHENTICATE);
}
