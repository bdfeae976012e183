//! The authapi dialect (`001_*`): register, login, logout, refresh and password reset
//! with bearer access tokens. Errors are `{"code": <status>, "message": "..."}`.

mod error;
mod request;
mod response;

use std::collections::HashMap;

use actix_web::http::Method;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{HttpResponse, web};
use portcullis_domain::{IssueOptions, Registration};

pub use error::ApiError;
use error::PLEASE_AUTHENTICATE;
use request::{
    ForgotPasswordRequest, LoginRequest, RefreshTokenRequest, RegisterRequest, ResetPasswordRequest,
};
use response::{AuthBody, MessageBody, TokensBody, WelcomeBody};

use crate::bearer::bearer_token;
use crate::blocking::run_blocking;
use crate::body::BodyError;
use crate::routing::{Call, Endpoint};

/// authapi's endpoints; its login claims bodies with an `email`.
pub(crate) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(Method::POST, "/auth", welcome),
        Endpoint::new(Method::POST, "/auth/register", register),
        Endpoint::new(Method::POST, "/auth/login", login).claiming("email"),
        Endpoint::new(Method::POST, "/auth/logout", logout),
        Endpoint::new(Method::POST, "/auth/refresh-tokens", refresh_tokens),
        Endpoint::new(Method::POST, "/auth/forgot-password", forgot_password),
        Endpoint::new(Method::POST, "/auth/reset-password", reset_password),
    ]
}

async fn register(call: Call) -> Result<HttpResponse, ApiError> {
    let request = RegisterRequest::try_from(&call.body?)?;
    let auth = call.state.auth.clone();
    let done = run_blocking(move || {
        auth.register(
            Registration {
                name: &request.name,
                bio: request.bio.as_deref(),
                email: &request.email,
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
    let request = LoginRequest::try_from(&call.body?)?;
    let auth = call.state.auth.clone();
    let done = run_blocking(move || {
        auth.login(&request.email, &request.password, &IssueOptions::default())
    })
    .await??;
    Ok(HttpResponse::Ok().json(AuthBody::from(&done)))
}

async fn logout(call: Call) -> Result<HttpResponse, ApiError> {
    // The document's only logout error is this one, whatever is wrong with the request.
    let invalid = || ApiError::bad_request(error::INVALID_REFRESH_TOKEN);
    let body = match call.body {
        Ok(body) => body,
        Err(too_large @ BodyError::TooLarge { .. }) => return Err(too_large.into()),
        Err(_) => return Err(invalid()),
    };
    let request = RefreshTokenRequest::try_from(&body).map_err(|_| invalid())?;
    let auth = call.state.auth.clone();
    run_blocking(move || auth.logout(&request.refresh_token)).await??;
    Ok(HttpResponse::Ok().json(MessageBody {
        message: "Logout successful",
    }))
}

async fn refresh_tokens(call: Call) -> Result<HttpResponse, ApiError> {
    let request = RefreshTokenRequest::try_from(&call.body?)?;
    let auth = call.state.auth.clone();
    let refreshed = run_blocking(move || auth.refresh(&request.refresh_token)).await??;
    Ok(HttpResponse::Ok().json(TokensBody::from(&refreshed.tokens)))
}

async fn forgot_password(call: Call) -> Result<HttpResponse, ApiError> {
    let request = ForgotPasswordRequest::try_from(&call.body?)?;
    let auth = call.state.auth.clone();
    run_blocking(move || auth.request_password_reset(&request.email)).await??;
    Ok(HttpResponse::Ok().json(MessageBody {
        message: "If that email is registered, a reset link has been sent",
    }))
}

async fn reset_password(call: Call) -> Result<HttpResponse, ApiError> {
    let query = web::Query::<HashMap<String, String>>::from_query(call.request.query_string())
        .map_err(|_| ApiError::bad_request("Malformed query string"))?;
    let token = query
        .get("token")
        .filter(|t| !t.is_empty())
        .cloned()
        .ok_or_else(|| ApiError::bad_request("\"token\" is required"))?;
    let request = ResetPasswordRequest::try_from(&call.body?)?;
    let auth = call.state.auth.clone();
    run_blocking(move || auth.reset_password(&token, &request.password)).await??;
    Ok(HttpResponse::Ok().json(MessageBody {
        message: "Password reset successful",
    }))
}

async fn welcome(call: Call) -> Result<HttpResponse, ApiError> {
    let token = bearer_token(&call.request, &AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized(PLEASE_AUTHENTICATE))?
        .to_owned();
    let auth = call.state.auth.clone();
    let principal = run_blocking(move || auth.authenticate(&token)).await??;
    Ok(HttpResponse::Ok().json(WelcomeBody {
        message: "Welcome authenticated user",
        user: (&principal.user).into(),
    }))
}

/// A known path asked with a method it does not serve.
pub(crate) fn method_not_allowed(_: &actix_web::HttpRequest) -> HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::method_not_allowed())
}
