//! The authapi dialect (`001_*`): register, login, logout, refresh and password reset
//! with bearer access tokens. Errors are `{"code": <status>, "message": "..."}`.

mod error;
mod request;
mod response;

use std::collections::HashMap;

use std::sync::Arc;

use actix_web::http::Method;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use portcullis_domain::{IssueOptions, Registration};

pub use error::ApiError;
use error::PLEASE_AUTHENTICATE;
use request::{
    ForgotPasswordRequest, LoginRequest, RefreshTokenRequest, RegisterRequest, ResetPasswordRequest,
};
use response::{AuthBody, MessageBody, TokensBody, WelcomeBody};

use crate::bearer::bearer_token;
use crate::body::BodyError;
use crate::dialect::{Call, Dialect, Endpoint, Refusal};
use crate::openapi::{BodySchema, Credential, EndpointDoc};
use crate::settings::{DialectSpec, no_settings};

/// The authapi dialect; it has no settings of its own.
pub const DIALECT: DialectSpec = DialectSpec {
    name: "authapi",
    settings: no_settings,
    build: |_| Ok(Arc::new(Authapi)),
};

struct Authapi;

impl Dialect for Authapi {
    fn name(&self) -> &'static str {
        DIALECT.name
    }

    /// Its login claims bodies with an `email`.
    fn endpoints(&self) -> Vec<Endpoint> {
        endpoints()
    }

    fn refusal(&self, _: &HttpRequest, refusal: &Refusal) -> HttpResponse {
        ApiError::refused(refusal).error_response()
    }

    fn error_schema(&self) -> BodySchema {
        BodySchema::of::<error::ErrorBody<'static>>()
    }
}

fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(Method::POST, "/auth", welcome).documented(
            EndpointDoc::new("The authenticated user")
                .with(Credential::Bearer)
                .answers::<WelcomeBody>(200, "The access token's user")
                .fails(
                    401,
                    "No, an invalid or an expired access token, or a revoked session",
                ),
        ),
        Endpoint::new(Method::POST, "/auth/register", register).documented(
            EndpointDoc::new("Create an account and log it in")
                .body::<RegisterRequest>()
                .answers::<AuthBody>(201, "Created and logged in"),
        ),
        Endpoint::new(Method::POST, "/auth/login", login)
            .claiming("email")
            .documented(
                EndpointDoc::new("Log in with an email (or username) and a password")
                    .body::<LoginRequest>()
                    .answers::<AuthBody>(200, "Logged in")
                    .fails(401, "Incorrect email or password"),
            ),
        Endpoint::new(Method::POST, "/auth/logout", logout).documented(
            EndpointDoc::new("End the refresh token's session")
                .body::<RefreshTokenRequest>()
                .answers::<MessageBody>(200, "Logged out"),
        ),
        Endpoint::new(Method::POST, "/auth/refresh-tokens", refresh_tokens).documented(
            EndpointDoc::new("Rotate a refresh token into a new pair")
                .body::<RefreshTokenRequest>()
                .answers::<TokensBody>(200, "The new pair; the presented token is spent")
                .fails(401, "Invalid, expired, spent or revoked refresh token"),
        ),
        Endpoint::new(Method::POST, "/auth/forgot-password", forgot_password).documented(
            EndpointDoc::new("Mail a password-reset link, if the email is registered")
                .body::<ForgotPasswordRequest>()
                .answers::<MessageBody>(200, "Accepted, whether or not the email is registered"),
        ),
        Endpoint::new(Method::POST, "/auth/reset-password", reset_password).documented(
            EndpointDoc::new("Set a new password with a reset token")
                .query(
                    "token",
                    "The reset token, when the body has none (the link's form)",
                )
                .body::<ResetPasswordRequest>()
                .answers::<MessageBody>(200, "Password set; every session ended")
                .fails(401, "Invalid, expired or used reset token"),
        ),
    ]
}

async fn register(call: Call) -> Result<HttpResponse, ApiError> {
    let client = call.client();
    let request = RegisterRequest::try_from(&call.body?)?;
    let done = call
        .state
        .run_hashing(move |auth| {
            auth.register_from(
                &client,
                Registration {
                    name: &request.name,
                    bio: request.bio.as_deref(),
                    email: Some(&request.email),
                    username: None,
                    password: &request.password,
                    confirm: Some(&request.confirm),
                },
                &IssueOptions::default(),
            )
        })
        .await??;
    Ok(HttpResponse::Created().json(AuthBody::from(&done)))
}

async fn login(call: Call) -> Result<HttpResponse, ApiError> {
    let request = LoginRequest::try_from(call.body.as_ref().map_err(Clone::clone)?)?;
    let done = call
        .login(request.email, request.password, IssueOptions::default())
        .await??;
    Ok(HttpResponse::Ok().json(AuthBody::from(&done)))
}

async fn logout(call: Call) -> Result<HttpResponse, ApiError> {
    // The document's only logout error is this one, whatever is wrong with the request.
    let invalid = || ApiError::bad_request(error::INVALID_REFRESH_TOKEN);
    let body = match &call.body {
        Ok(body) => body,
        Err(too_large @ BodyError::TooLarge { .. }) => return Err(too_large.clone().into()),
        Err(_) => return Err(invalid()),
    };
    let request = RefreshTokenRequest::try_from(body).map_err(|_| invalid())?;
    call.logout(request.refresh_token).await??;
    Ok(HttpResponse::Ok().json(MessageBody {
        message: "Logout successful",
    }))
}

async fn refresh_tokens(call: Call) -> Result<HttpResponse, ApiError> {
    let request = RefreshTokenRequest::try_from(call.body.as_ref().map_err(Clone::clone)?)?;
    let refreshed = call.refresh(request.refresh_token, None, None).await??;
    Ok(HttpResponse::Ok().json(TokensBody::from(&refreshed.tokens)))
}

async fn forgot_password(call: Call) -> Result<HttpResponse, ApiError> {
    let client = call.client();
    let request = ForgotPasswordRequest::try_from(&call.body?)?;
    call.state
        .run(move |auth| auth.request_password_reset_from(&client, &request.email))
        .await??;
    Ok(HttpResponse::Ok().json(MessageBody {
        message: "If that email is registered, a reset link has been sent",
    }))
}

/// The token comes from the body's `token`, else from the query string's (the
/// document's form).
async fn reset_password(call: Call) -> Result<HttpResponse, ApiError> {
    let query = web::Query::<HashMap<String, String>>::from_query(call.request.query_string())
        .map_err(|_| ApiError::bad_request("Malformed query string"))?;
    let mut request = ResetPasswordRequest::try_from(call.body.as_ref().map_err(Clone::clone)?)?;
    let token = request
        .token
        .take()
        .or_else(|| query.get("token").filter(|t| !t.is_empty()).cloned())
        .ok_or_else(|| ApiError::bad_request("\"token\" is required"))?;
    call.reset_password(token, request.password).await??;
    Ok(HttpResponse::Ok().json(MessageBody {
        message: "Password reset successful",
    }))
}

async fn welcome(call: Call) -> Result<HttpResponse, ApiError> {
    let token = bearer_token(&call.request, &AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized(PLEASE_AUTHENTICATE))?
        .to_owned();
    let principal = call
        .state
        .run_read_only(move |auth| auth.authenticate(&token))
        .await??;
    Ok(HttpResponse::Ok().json(WelcomeBody {
        message: "Welcome authenticated user",
        user: (&principal.user).into(),
    }))
}
