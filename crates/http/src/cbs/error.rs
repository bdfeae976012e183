//! cbs's result codes and error bodies.
//!
//! Every failure carries a [`ResultCode`], a `desc` for people and the code's short
//! `error` name. Login answers `{"code", "desc", "error"}`; refresh wraps the same
//! three in the document's common result model, `{"result": {...}}`.

use std::fmt;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use portcullis_domain::{LoginError, RefreshError};
use serde::Serialize;

use crate::body::{BodyError, FieldProblem, joi_message};
use crate::dialect::{Refusal, set_retry_after};

/// The `code` of every cbs answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResultCode {
    /// 0: success.
    Ok,
    /// 1001: a field missing or invalid, malformed JSON, a body too large.
    InvalidRequest,
    /// 1002: unknown account or wrong password.
    InvalidCredentials,
    /// 1003: a token malformed, badly signed, of the wrong kind or session, or expired.
    InvalidToken,
    /// 1004: a token whose session was ended (logout, reuse, password reset) or a spent
    /// refresh token presented again.
    TokenRevoked,
    /// 1005: too many attempts: the client is throttled (429, with `Retry-After`).
    TooManyAttempts,
    /// 1006: the server is overloaded or its database is down (503, with
    /// `Retry-After`).
    ServerBusy,
    /// 1007: the request is refused whoever sends it (403).
    Forbidden,
    /// 1999: a failure of the server, never the client's.
    Internal,
}

impl ResultCode {
    pub fn code(self) -> u16 {
        match self {
            Self::Ok => 0,
            Self::InvalidRequest => 1001,
            Self::InvalidCredentials => 1002,
            Self::InvalidToken => 1003,
            Self::TokenRevoked => 1004,
            Self::TooManyAttempts => 1005,
            Self::ServerBusy => 1006,
            Self::Forbidden => 1007,
            Self::Internal => 1999,
        }
    }

    /// The short name sent as `error`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::InvalidRequest => "invalid_request",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidToken => "invalid_token",
            Self::TokenRevoked => "token_revoked",
            Self::TooManyAttempts => "too_many_attempts",
            Self::ServerBusy => "server_busy",
            Self::Forbidden => "forbidden",
            Self::Internal => "internal_error",
        }
    }

    /// The HTTP status that goes with the code (an oversized body aside: 413).
    pub fn status(self) -> StatusCode {
        match self {
            Self::Ok => StatusCode::OK,
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::InvalidCredentials | Self::InvalidToken | Self::TokenRevoked => {
                StatusCode::UNAUTHORIZED
            }
            Self::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            Self::ServerBusy => StatusCode::SERVICE_UNAVAILABLE,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

pub(crate) const INVALID_CREDENTIALS: &str = "Invalid user or password";
pub(crate) const INVALID_TOKEN: &str = "Token is invalid";
pub(crate) const REFRESH_TOKEN_EXPIRED: &str = "Refresh token has expired";
pub(crate) const TOKEN_REVOKED: &str = "Token has been revoked";
pub(crate) const TOKEN_REUSED: &str = "Refresh token was already used; the session is revoked";
pub(crate) const TOO_MANY_ATTEMPTS: &str = "Too many attempts";
pub(crate) const FORBIDDEN: &str = "Forbidden";
pub(crate) const SERVER_BUSY: &str = "Server busy, try again later";
pub(crate) const INTERNAL: &str = "Internal server error";

/// How an error body is wrapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Envelope {
    /// `{"code", "desc", "error"}` (login).
    Flat,
    /// `{"result": {"code", "desc", "error"}}` (refresh).
    Result,
}

/// A cbs error response.
#[derive(Debug)]
pub struct CbsError {
    status: StatusCode,
    code: ResultCode,
    desc: String,
    envelope: Envelope,
    /// `Retry-After`, for a refusal the client may retry.
    retry_after: Option<Duration>,
}

impl CbsError {
    pub fn new(code: ResultCode, desc: impl Into<String>) -> Self {
        Self {
            status: code.status(),
            code,
            desc: desc.into(),
            envelope: Envelope::Flat,
            retry_after: None,
        }
    }

    /// cbs's answer to a refusal: a wrong method or an unreadable body is an invalid
    /// request (1001) with the refusal's status.
    pub(crate) fn refused(refusal: &Refusal) -> Self {
        let error = match refusal {
            Refusal::MethodNotAllowed => Self::invalid_request("Method not allowed"),
            Refusal::UnreadableBody(error) => Self::invalid_request(error.message()),
            Refusal::TooManyRequests { .. } => Self::too_many_attempts(),
            Refusal::Busy { .. } => Self::new(ResultCode::ServerBusy, SERVER_BUSY),
            Refusal::Forbidden => Self::new(ResultCode::Forbidden, FORBIDDEN),
        };
        Self {
            status: refusal.status(),
            retry_after: refusal.retry_after(),
            ..error
        }
    }

    pub(crate) fn invalid_request(desc: impl Into<String>) -> Self {
        Self::new(ResultCode::InvalidRequest, desc)
    }

    pub(crate) fn invalid_token() -> Self {
        Self::new(ResultCode::InvalidToken, INVALID_TOKEN)
    }

    /// For throttling, when it comes: 429, code 1005.
    pub fn too_many_attempts() -> Self {
        Self::new(ResultCode::TooManyAttempts, TOO_MANY_ATTEMPTS)
    }

    /// Logs the cause and hides it from the client.
    pub(crate) fn internal(cause: &dyn fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(ResultCode::Internal, INTERNAL)
    }

    /// A 400 naming each field problem, e.g. `"user" is required`, joined with ", ".
    pub(crate) fn fields(problems: Vec<(&'static str, FieldProblem)>) -> Self {
        let desc = problems
            .into_iter()
            .map(|(field, problem)| joi_message(field, problem))
            .collect::<Vec<_>>()
            .join(", ");
        Self::invalid_request(desc)
    }

    /// The same error in the common result model, `{"result": {...}}`, as refresh
    /// answers.
    pub(crate) fn in_result(mut self) -> Self {
        self.envelope = Envelope::Result;
        self
    }

    pub fn code(&self) -> ResultCode {
        self.code
    }
}

impl fmt::Display for CbsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.status.as_u16(),
            self.code.code(),
            self.desc
        )
    }
}

/// `{"code", "desc", "error"}`: a login's error.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody<'a> {
    code: u16,
    desc: &'a str,
    error: &'static str,
}

/// `{"result": {"code", "desc", "error"}}`: a refresh's error (the common result model).
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ResultErrorBody<'a> {
    result: ErrorBody<'a>,
}

/// Either form, as an endpoint's document gives cbs's errors.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // Only its schema is used.
pub(crate) enum AnyErrorBody<'a> {
    Flat(ErrorBody<'a>),
    InResult(ResultErrorBody<'a>),
}

impl ResponseError for CbsError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let body = ErrorBody {
            code: self.code.code(),
            desc: &self.desc,
            error: self.code.name(),
        };
        let mut response = HttpResponse::build(self.status);
        let mut response = match self.envelope {
            Envelope::Flat => response.json(body),
            Envelope::Result => response.json(ResultErrorBody { result: body }),
        };
        set_retry_after(&mut response, self.retry_after);
        response
    }
}

impl From<BodyError> for CbsError {
    fn from(error: BodyError) -> Self {
        Self::refused(&Refusal::UnreadableBody(error))
    }
}

internal_failures!(CbsError);

impl From<LoginError> for CbsError {
    fn from(error: LoginError) -> Self {
        match error {
            LoginError::InvalidCredentials => {
                Self::new(ResultCode::InvalidCredentials, INVALID_CREDENTIALS)
            }
            LoginError::Throttled { retry_after } => {
                Self::refused(&Refusal::throttled(retry_after))
            }
            LoginError::Internal(e) => e.into(),
        }
    }
}

impl From<RefreshError> for CbsError {
    fn from(error: RefreshError) -> Self {
        match error {
            RefreshError::Invalid => Self::invalid_token(),
            RefreshError::Expired => Self::new(ResultCode::InvalidToken, REFRESH_TOKEN_EXPIRED),
            RefreshError::SessionInactive => Self::new(ResultCode::TokenRevoked, TOKEN_REVOKED),
            RefreshError::Reused => Self::new(ResultCode::TokenRevoked, TOKEN_REUSED),
            RefreshError::Internal(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_number_name_and_status() {
        let table = [
            (ResultCode::Ok, 0, "ok", 200),
            (ResultCode::InvalidRequest, 1001, "invalid_request", 400),
            (
                ResultCode::InvalidCredentials,
                1002,
                "invalid_credentials",
                401,
            ),
            (ResultCode::InvalidToken, 1003, "invalid_token", 401),
            (ResultCode::TokenRevoked, 1004, "token_revoked", 401),
            (ResultCode::TooManyAttempts, 1005, "too_many_attempts", 429),
            (ResultCode::ServerBusy, 1006, "server_busy", 503),
            (ResultCode::Forbidden, 1007, "forbidden", 403),
            (ResultCode::Internal, 1999, "internal_error", 500),
        ];
        for (code, number, name, status) in table {
            assert_eq!(code.code(), number);
            assert_eq!(code.name(), name);
            assert_eq!(code.status().as_u16(), status);
        }
    }

    #[test]
    fn oversized_bodies_are_413_with_code_1001() {
        let error = CbsError::from(BodyError::TooLarge { limit: 10 });
        assert_eq!(error.status_code(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(error.code(), ResultCode::InvalidRequest);
    }

    #[test]
    fn too_many_attempts_is_429() {
        let error = CbsError::too_many_attempts();
        assert_eq!(error.status_code(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(error.code().code(), 1005);
    }
}
