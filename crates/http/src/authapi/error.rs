//! authapi's error body: `{"code": <status>, "message": "...", "details"?: [...]}`.

use std::fmt;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use portcullis_domain::{
    AuthenticateError, LoginError, LogoutError, RefreshError, RegisterError, RequestResetError,
    ResetPasswordError, ValidationErrors,
};
use serde::Serialize;

use crate::body::{BodyError, FieldProblem, joi_message};
use crate::dialect::{Refusal, set_retry_after};

pub(crate) const PLEASE_AUTHENTICATE: &str = "Please authenticate";
pub(crate) const INVALID_REFRESH_TOKEN: &str = "Invalid refresh token";

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Detail {
    field: String,
    message: String,
}

/// An authapi error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    details: Vec<Detail>,
    /// `Retry-After`, for a refusal the client may retry.
    retry_after: Option<Duration>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            details: Vec::new(),
            retry_after: None,
        }
    }

    /// authapi's wording of a refusal.
    pub(crate) fn refused(refusal: &Refusal) -> Self {
        let message = match refusal {
            Refusal::MethodNotAllowed => "Method not allowed".to_owned(),
            Refusal::UnreadableBody(error) => error.message(),
            Refusal::TooManyRequests { .. } => "Too many attempts, try again later".into(),
            Refusal::Busy { .. } => "Service unavailable, please try again later".into(),
            Refusal::Forbidden => "Forbidden".into(),
        };
        Self {
            retry_after: refusal.retry_after(),
            ..Self::new(refusal.status(), message)
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// Logs the cause and hides it from the client.
    pub(crate) fn internal(cause: &dyn fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
    }

    fn with_details(mut self, details: impl IntoIterator<Item = (String, String)>) -> Self {
        self.details = details
            .into_iter()
            .map(|(field, message)| Detail { field, message })
            .collect();
        self
    }

    /// A 400 listing each field problem, worded as Joi (which the original used) words them.
    pub(crate) fn fields(problems: Vec<(&'static str, FieldProblem)>) -> Self {
        let details: Vec<(String, String)> = problems
            .into_iter()
            .map(|(field, problem)| (field.to_owned(), joi_message(field, problem)))
            .collect();
        let message = join_messages(&details);
        Self::bad_request(message).with_details(details)
    }

    pub(crate) fn validation(errors: &ValidationErrors) -> Self {
        Self::bad_request(errors.summary()).with_details(
            errors
                .fields()
                .iter()
                .map(|e| (e.field.to_owned(), e.message.clone())),
        )
    }
}

fn join_messages(details: &[(String, String)]) -> String {
    details
        .iter()
        .map(|(_, message)| message.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

/// `{"code": <status>, "message": "...", "details"?: [{"field", "message"}]}`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody<'a> {
    code: u16,
    message: &'a str,
    #[serde(skip_serializing_if = "<[Detail]>::is_empty")]
    details: &'a [Detail],
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status).json(ErrorBody {
            code: self.status.as_u16(),
            message: &self.message,
            details: &self.details,
        });
        set_retry_after(&mut response, self.retry_after);
        response
    }
}

impl From<BodyError> for ApiError {
    fn from(error: BodyError) -> Self {
        Self::refused(&Refusal::UnreadableBody(error))
    }
}

internal_failures!(ApiError);

impl From<RegisterError> for ApiError {
    fn from(error: RegisterError) -> Self {
        match error {
            RegisterError::Throttled { retry_after } => {
                Self::refused(&Refusal::throttled(retry_after))
            }
            RegisterError::Invalid(errors) => Self::validation(&errors),
            RegisterError::EmailTaken => Self::bad_request("Email already taken"),
            RegisterError::UsernameTaken => Self::bad_request("Username already taken"),
            RegisterError::Internal(e) => e.into(),
        }
    }
}

impl From<LoginError> for ApiError {
    fn from(error: LoginError) -> Self {
        match error {
            LoginError::InvalidCredentials => Self::unauthorized("Incorrect email or password"),
            LoginError::Throttled { retry_after } => {
                Self::refused(&Refusal::throttled(retry_after))
            }
            LoginError::Internal(e) => e.into(),
        }
    }
}

impl From<AuthenticateError> for ApiError {
    fn from(error: AuthenticateError) -> Self {
        match error {
            AuthenticateError::Internal(e) => e.into(),
            AuthenticateError::Expired
            | AuthenticateError::Invalid
            | AuthenticateError::SessionInactive
            | AuthenticateError::UserGone => Self::unauthorized(PLEASE_AUTHENTICATE),
        }
    }
}

impl From<RefreshError> for ApiError {
    fn from(error: RefreshError) -> Self {
        match error {
            RefreshError::Internal(e) => e.into(),
            RefreshError::Invalid
            | RefreshError::Expired
            | RefreshError::SessionInactive
            | RefreshError::Reused => Self::unauthorized(PLEASE_AUTHENTICATE),
        }
    }
}

impl From<LogoutError> for ApiError {
    fn from(error: LogoutError) -> Self {
        match error {
            LogoutError::InvalidToken | LogoutError::Reused => {
                Self::bad_request(INVALID_REFRESH_TOKEN)
            }
            LogoutError::Internal(e) => e.into(),
        }
    }
}

impl From<RequestResetError> for ApiError {
    fn from(error: RequestResetError) -> Self {
        match error {
            RequestResetError::Throttled { retry_after } => {
                Self::refused(&Refusal::throttled(retry_after))
            }
            RequestResetError::Internal(e) => e.into(),
        }
    }
}

impl From<ResetPasswordError> for ApiError {
    fn from(error: ResetPasswordError) -> Self {
        match error {
            ResetPasswordError::InvalidToken => Self::unauthorized("Password reset failed"),
            ResetPasswordError::Invalid(errors) => Self::validation(&errors),
            ResetPasswordError::Internal(e) => e.into(),
        }
    }
}
