//! The cbs dialect (`003_*`): password login and refresh-token rotation under
//! `/api/v1/auth`, answering with numeric result codes. Login errors are
//! `{"code": N, "desc": "...", "error": "..."}`; refresh answers in the document's
//! common result model, `{"result": {"code": N, "desc": "...", ...}}`.
//!
//! The document's refresh example posts `{refresh_token}` to the login path, so a login
//! body with a `refresh_token` and no `user` is a refresh, answered exactly as
//! `/api/v1/auth/refresh` answers it.

mod error;
mod request;
mod response;

use std::sync::Arc;

use actix_web::http::Method;
use actix_web::http::header::{AUTHORIZATION, HeaderName};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use portcullis_domain::{IssueOptions, LoginIdentifier, User, UserClaims};
use serde_json::{Map, Value};

pub use error::{CbsError, ResultCode};
use request::{LoginRequest, RefreshRequest};
use response::{Lifetimes, LoginBody, RefreshBody, TokensBody};

use crate::bearer::bearer_token;
use crate::dialect::{Call, Dialect, Endpoint, Refusal};
use crate::openapi::{BodySchema, Credential, EndpointDoc};
use crate::settings::{DialectSpec, no_settings};

/// The claim both tokens of a cbs login carry: the login name, in the account's stored
/// form.
pub const IDENTIFIER_CLAIM: &str = "identifier";

/// The header name the document's refresh example spells, accepted like
/// `Authorization`.
const ATHORIZATION: &str = "athorization";

/// The cbs dialect; it has no settings of its own.
pub const DIALECT: DialectSpec = DialectSpec {
    name: "cbs",
    settings: no_settings,
    build: |_| Ok(Arc::new(Cbs)),
};

struct Cbs;

impl Dialect for Cbs {
    fn name(&self) -> &'static str {
        DIALECT.name
    }

    /// Its login claims bodies with a `user`.
    fn endpoints(&self) -> Vec<Endpoint> {
        endpoints()
    }

    /// In the result model on the refresh path, as its other errors; flat on the login
    /// path, and for a wrong method on any path (as documented since it was first
    /// served).
    fn refusal(&self, request: &HttpRequest, refusal: &Refusal) -> HttpResponse {
        let error = CbsError::refused(refusal);
        let flat = request.path().ends_with(LOGIN_PATH) || *refusal == Refusal::MethodNotAllowed;
        if flat {
            error.error_response()
        } else {
            error.in_result().error_response()
        }
    }

    fn error_schema(&self) -> BodySchema {
        BodySchema::of::<error::AnyErrorBody<'static>>()
    }
}

const LOGIN_PATH: &str = "/api/v1/auth/login";

fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(Method::POST, LOGIN_PATH, login)
            .claiming("user")
            .documented(
                EndpointDoc::new("Log in with a user id (email or username) and a password")
                    .body::<LoginRequest>()
                    .answers::<LoginBody>(200, "Logged in; `redirect` says a new password is due")
                    .fails(401, "Invalid user or password"),
            ),
        Endpoint::new(Method::POST, "/api/v1/auth/refresh", refresh).documented(
            EndpointDoc::new("Rotate a refresh token, with the session's access token")
                .with(Credential::Bearer)
                .body::<RefreshRequest>()
                .answers::<RefreshBody>(200, "The new pair")
                .fails(401, "Invalid, expired, spent or revoked token"),
        ),
    ]
}

async fn login(call: Call) -> Result<HttpResponse, CbsError> {
    if call.body.as_ref().is_ok_and(RefreshRequest::is_refresh) {
        return refresh(call).await;
    }
    let arrived = call.state.auth.now();
    let request = LoginRequest::try_from(call.body.as_ref().map_err(Clone::clone)?)?;
    let options = IssueOptions {
        user_claims: identifier_claim(&request.user),
        ..IssueOptions::default()
    };
    let done = call
        .login(request.user, request.password, options)
        .await??;
    let lifetimes = Lifetimes::new(arrived, call.state.auth.config());
    Ok(HttpResponse::Ok().json(LoginBody::new(
        TokensBody::new(&done.tokens, lifetimes),
        done.user.must_change_password,
    )))
}

/// The `identifier` claim: the login name in the account's stored form (its email
/// lower-cased, its username as registered), never as the client sent it. `None` for a
/// name that can be no account's: that login fails anyway.
fn identifier_claim(login_name: &str) -> Option<UserClaims> {
    fn claim(stored: Option<&str>) -> Map<String, Value> {
        let mut claims = Map::new();
        if let Some(name) = stored {
            claims.insert(IDENTIFIER_CLAIM.to_owned(), Value::String(name.to_owned()));
        }
        claims
    }
    fn by_email(user: &User) -> Map<String, Value> {
        claim(user.email.as_ref().map(|email| email.as_str()))
    }
    fn by_username(user: &User) -> Map<String, Value> {
        claim(user.username.as_ref().map(|username| username.as_str()))
    }
    match LoginIdentifier::parse(login_name)? {
        LoginIdentifier::Email(_) => Some(by_email),
        LoginIdentifier::Username(_) => Some(by_username),
    }
}

/// Rotation, with errors in the common result model.
async fn refresh(call: Call) -> Result<HttpResponse, CbsError> {
    rotate(call).await.map_err(CbsError::in_result)
}

async fn rotate(call: Call) -> Result<HttpResponse, CbsError> {
    let arrived = call.state.auth.now();
    let request = RefreshRequest::try_from(call.body.as_ref().map_err(Clone::clone)?)?;
    let access_token = access_token(&call.request)?;
    let refreshed = call
        .refresh(request.refresh_token, None, access_token)
        .await??;
    let lifetimes = Lifetimes::new(arrived, call.state.auth.config());
    Ok(HttpResponse::Ok().json(RefreshBody::new(TokensBody::new(
        &refreshed.tokens,
        lifetimes,
    ))))
}

/// The access token sent along with a refresh, if any: from `Authorization` or
/// `Athorization`. A header that is present must hold `Bearer <token>`, and when both
/// are present they must hold the same token; otherwise the token is invalid.
fn access_token(request: &HttpRequest) -> Result<Option<String>, CbsError> {
    let mut found: Option<&str> = None;
    for header in [AUTHORIZATION, HeaderName::from_static(ATHORIZATION)] {
        if !request.headers().contains_key(&header) {
            continue;
        }
        let token = bearer_token(request, &header).ok_or_else(CbsError::invalid_token)?;
        if found.is_some_and(|other| other != token) {
            return Err(CbsError::invalid_token());
        }
        found = Some(token);
    }
    Ok(found.map(str::to_owned))
}
