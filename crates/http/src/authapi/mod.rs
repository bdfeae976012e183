//! The authapi dialect (`001_*`): register, login, logout, refresh and password reset
//! with bearer access tokens. Errors are `{"code": <status>, "message": "..."}`.

mod error;
mod request;
mod response;

use std::collections::HashMap;

use actix_web::http::header::AUTHORIZATION;
use actix_web::{HttpRequest, HttpResponse, web};
use portcullis_domain::{IssueOptions, Registration};

pub use error::ApiError;
use error::PLEASE_AUTHENTICATE;
use request::{
    ForgotPasswordRequest, LoginRequest, RefreshTokenRequest, RegisterRequest, ResetPasswordRequest,
};
use response::{AuthBody, MessageBody, TokensBody, WelcomeBody};

use crate::AppState;
use crate::bearer::bearer_token;
use crate::blocking::run_blocking;
use crate::body::{JsonObject, read_json_object};

pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth", web::post().to(welcome))
        .route("/auth/register", web::post().to(register))
        .route("/auth/login", web::post().to(login))
        .route("/auth/logout", web::post().to(logout))
        .route("/auth/refresh-tokens", web::post().to(refresh_tokens))
        .route("/auth/forgot-password", web::post().to(forgot_password))
        .route("/auth/reset-password", web::post().to(reset_password));
}

async fn body(state: &AppState, payload: web::Payload) -> Result<JsonObject, ApiError> {
    Ok(read_json_object(payload, state.config.body_limit).await?)
}

async fn register(
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let request = RegisterRequest::try_from(&body(&state, payload).await?)?;
    let auth = state.auth.clone();
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

async fn login(
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let request = LoginRequest::try_from(&body(&state, payload).await?)?;
    let auth = state.auth.clone();
    let done = run_blocking(move || {
        auth.login(&request.email, &request.password, &IssueOptions::default())
    })
    .await??;
    Ok(HttpResponse::Ok().json(AuthBody::from(&done)))
}

async fn logout(
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // The document's only logout error is this one, whatever is wrong with the token.
    let request = RefreshTokenRequest::try_from(&body(&state, payload).await?)
        .map_err(|_| ApiError::bad_request(error::INVALID_REFRESH_TOKEN))?;
    let auth = state.auth.clone();
    run_blocking(move || auth.logout(&request.refresh_token)).await??;
    Ok(HttpResponse::Ok().json(MessageBody {
        message: "Logout successful",
    }))
}

async fn refresh_tokens(
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let request = RefreshTokenRequest::try_from(&body(&state, payload).await?)?;
    let auth = state.auth.clone();
    let refreshed = run_blocking(move || auth.refresh(&request.refresh_token)).await??;
    Ok(HttpResponse::Ok().json(TokensBody::from(&refreshed.tokens)))
}

async fn forgot_password(
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let request = ForgotPasswordRequest::try_from(&body(&state, payload).await?)?;
    let auth = state.auth.clone();
    run_blocking(move || auth.request_password_reset(&request.email)).await??;
    Ok(HttpResponse::Ok().json(MessageBody {
        message: "If that email is registered, a reset link has been sent",
    }))
}

async fn reset_password(
    state: web::Data<AppState>,
    http: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let query = web::Query::<HashMap<String, String>>::from_query(http.query_string())
        .map_err(|_| ApiError::bad_request("Malformed query string"))?;
    let token = query
        .get("token")
        .filter(|t| !t.is_empty())
        .cloned()
        .ok_or_else(|| ApiError::bad_request("\"token\" is required"))?;
    let request = ResetPasswordRequest::try_from(&body(&state, payload).await?)?;
    let auth = state.auth.clone();
    run_blocking(move || auth.reset_password(&token, &request.password)).await??;
    Ok(HttpResponse::Ok().json(MessageBody {
        message: "Password reset successful",
    }))
}

async fn welcome(state: web::Data<AppState>, http: HttpRequest) -> Result<HttpResponse, ApiError> {
    let token = bearer_token(&http, &AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized(PLEASE_AUTHENTICATE))?
        .to_owned();
    let auth = state.auth.clone();
    let principal = run_blocking(move || auth.authenticate(&token)).await??;
    Ok(HttpResponse::Ok().json(WelcomeBody {
        message: "Welcome authenticated user",
        user: (&principal.user).into(),
    }))
}
