//! The ioweyou dialect (`000_*`): a cookie session for a web client.
//!
//! `POST /users/login` (the document's path) and `POST /api/login` (the path the
//! application's web client calls) log in with a password, or renew the session from
//! the `access_tokens` cookie; `POST /api/signup`, `GET /api/user` and
//! `GET /api/logout` are the web client's. Errors are `{"errors": ["<message>"]}`.
//!
//! The session lives in the `access_tokens` cookie, written as Express writes
//! `res.cookie("access_tokens", {access_token, refresh_token})`, so services of the
//! original stack read it unchanged. Embedding services protect their own routes with
//! the same cookie through the [`require_user`] middleware and the [`IoweyouUser`]
//! extractor.

mod auth;
mod error;
mod request;
mod response;
mod session_cookie;

use std::sync::Arc;

use actix_web::http::Method;
use actix_web::http::header::SET_COOKIE;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use portcullis_domain::{IssueOptions, LogoutError, Registration, User};
use serde_json::{Map, Value};

pub use auth::{IoweyouUser, require_user};
pub use error::IoweyouError;
pub use session_cookie::COOKIE_NAME;

use auth::{Renewal, authenticate_cookie};
use request::{LoginRequest, SignupRequest, joi};
use response::{EmptyBody, UserBody};

use crate::body::FieldProblem;
use crate::dialect::{Call, Dialect, Endpoint, Refusal};
use crate::openapi::{BodySchema, Credential, EndpointDoc};
use crate::settings::{DialectSpec, no_settings};

use session_cookie::COOKIE_NAME as COOKIE;

/// `POST /users/login` and `POST /api/login`, which are one handler.
fn login_doc() -> EndpointDoc {
    EndpointDoc::new("Log in with a username and password, or renew with the session cookie")
        .body::<LoginRequest>()
        .answers_with_cookie::<EmptyBody>(200, "Logged in; the session cookie is set", COOKIE)
        .fails(401, "Username or password was incorrect")
}

/// The ioweyou dialect; it has no settings of its own.
pub const DIALECT: DialectSpec = DialectSpec {
    name: "ioweyou",
    settings: no_settings,
    build: |_| Ok(Arc::new(Ioweyou)),
};

struct Ioweyou;

impl Dialect for Ioweyou {
    fn name(&self) -> &'static str {
        DIALECT.name
    }

    /// It shares no path with another dialect.
    fn endpoints(&self) -> Vec<Endpoint> {
        endpoints()
    }

    fn refusal(&self, _: &HttpRequest, refusal: &Refusal) -> HttpResponse {
        IoweyouError::refused(refusal).error_response()
    }

    fn error_schema(&self) -> BodySchema {
        BodySchema::of::<error::ErrorBody<'static>>()
    }
}

fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(Method::POST, "/users/login", login)
            .with_session_cookie()
            .documented(login_doc()),
        Endpoint::new(Method::POST, "/api/login", login)
            .with_session_cookie()
            .documented(login_doc()),
        Endpoint::new(Method::POST, "/api/signup", signup)
            .with_session_cookie()
            .documented(
                EndpointDoc::new("Create an account and log it in")
                    .body::<SignupRequest>()
                    .answers_nothing(201, "Created; the session cookie is set", COOKIE)
                    .fails(422, "The username or email is taken"),
            ),
        Endpoint::new(Method::GET, "/api/user", current_user)
            .with_session_cookie()
            .documented(
                EndpointDoc::new("The session cookie's user")
                    .with(Credential::Cookie(COOKIE))
                    .answers_with_cookie::<UserBody>(
                        200,
                        "The user; a renewed cookie when the access token had expired",
                        COOKIE,
                    )
                    .fails(401, "Not authenticated"),
            ),
        Endpoint::new(Method::GET, "/api/logout", logout)
            .with_session_cookie()
            .documented(
                EndpointDoc::new("End the session and clear the cookie")
                    .with(Credential::Cookie(COOKIE))
                    .answers_with_cookie::<EmptyBody>(
                        200,
                        "Logged out; the cookie is cleared",
                        COOKIE,
                    ),
            ),
    ]
}

/// The `username` claim the original's tokens carried, in the account's stored form
/// (never as the client sent it): its username, else its email.
fn issue_options() -> IssueOptions {
    IssueOptions {
        user_claims: Some(account_username_claim),
        ..IssueOptions::default()
    }
}

fn account_username_claim(user: &User) -> Map<String, Value> {
    let stored = user
        .username
        .as_ref()
        .map(|username| username.as_str())
        .or(user.email.as_ref().map(|email| email.as_str()));
    let mut claims = Map::new();
    if let Some(name) = stored {
        claims.insert("username".into(), Value::String(name.to_owned()));
    }
    claims
}

async fn login(call: Call) -> Result<HttpResponse, IoweyouError> {
    let body = call.body.as_ref().map_err(Clone::clone)?;
    let password_max = call.state.auth.config().password_policy.max_chars;
    let LoginRequest { username, password } = LoginRequest::parse(body, password_max)?;
    let tokens = match password {
        Some(password) => {
            call.login(username, password, issue_options())
                .await??
                .tokens
        }
        None => {
            // No password: the cookie's refresh token, which must be the named account's.
            let refresh = session_cookie::read(&call.request)
                .and_then(|tokens| tokens.refresh_token)
                .ok_or_else(|| joi("password", FieldProblem::Missing))?;
            call.refresh(refresh, Some(username), None).await??.tokens
        }
    };
    let cookie = session_cookie::set_cookie(&call.state, &tokens)?;
    Ok(HttpResponse::Ok()
        .insert_header((SET_COOKIE, cookie))
        .json(EmptyBody {}))
}

/// Creates the account and logs it in: 201, an empty body and the new session's cookie.
async fn signup(call: Call) -> Result<HttpResponse, IoweyouError> {
    let client = call.client();
    let request = SignupRequest::parse(&call.body?)?;
    let options = issue_options();
    let done = call
        .state
        .run_hashing(move |auth| {
            auth.register_from(
                &client,
                Registration {
                    name: &request.display_name,
                    bio: None,
                    email: None,
                    username: Some(&request.username),
                    password: &request.password,
                    confirm: None,
                },
                &options,
            )
        })
        .await??;
    let cookie = session_cookie::set_cookie(&call.state, &done.tokens)?;
    Ok(HttpResponse::Created()
        .insert_header((SET_COOKIE, cookie))
        .finish())
}

async fn current_user(call: Call) -> Result<HttpResponse, IoweyouError> {
    let session = authenticate_cookie(&call.state, &call.request, Renewal::Allowed).await?;
    let mut response = HttpResponse::Ok();
    if let Some(cookie) = session.renewed {
        response.insert_header((SET_COOKIE, cookie));
    }
    Ok(response.json(UserBody::from(&session.principal.user)))
}

async fn logout(call: Call) -> Result<HttpResponse, IoweyouError> {
    if let Some(refresh) = session_cookie::read(&call.request).and_then(|t| t.refresh_token) {
        // The client is logged out whatever happens here; a failure is only logged.
        match call.logout(refresh).await {
            Ok(Ok(()) | Err(LogoutError::InvalidToken | LogoutError::Reused)) => {}
            // The database is unreachable: the client must retry, so its cookie is
            // kept rather than the session left live behind a cleared one.
            Ok(Err(LogoutError::Internal(error))) if error.is_unavailable() => {
                return Err(error.into());
            }
            Ok(Err(LogoutError::Internal(error))) => {
                tracing::error!(%error, "ioweyou logout: session not revoked");
            }
            Err(_) => tracing::error!("ioweyou logout: blocking task failed"),
        }
    }
    Ok(HttpResponse::Ok()
        .insert_header((SET_COOKIE, session_cookie::cleared()))
        .json(EmptyBody {}))
}
