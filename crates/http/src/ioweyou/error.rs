//! ioweyou's error body: `{"errors": ["<message>"]}`.

use std::fmt;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use portcullis_domain::{AuthenticateError, LoginError, LogoutError, RefreshError, RegisterError};
use serde::Serialize;

use crate::body::BodyError;
use crate::dialect::{Refusal, set_retry_after};

/// The answer to every failed cookie authentication.
pub(crate) const NOT_AUTHENTICATED: &str = "Not authenticated.";
/// The answer to a wrong password or an unknown account.
pub(crate) const BAD_CREDENTIALS: &str = "Username or password was incorrect";
const INTERNAL: &str = "Internal server error";
/// A sign-up whose username an account already has, in any case.
pub(crate) const USERNAME_TAKEN: &str = "Username already taken.";
/// A sign-up whose email an account already has (the web client sends none; embedders
/// may).
const EMAIL_TAKEN: &str = "Email already taken.";

/// An ioweyou error response: a status and one message, sent as
/// `{"errors": ["<message>"]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoweyouError {
    status: StatusCode,
    message: String,
    /// `Retry-After`, for a refusal the client may retry.
    retry_after: Option<Duration>,
}

impl IoweyouError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// ioweyou's wording of a refusal.
    pub(crate) fn refused(refusal: &Refusal) -> Self {
        let message = match refusal {
            Refusal::MethodNotAllowed => "Method not allowed".to_owned(),
            Refusal::UnreadableBody(error) => error.message(),
            Refusal::TooManyRequests { .. } => "Too many attempts, try again later".into(),
            Refusal::Busy { .. } => "Service unavailable, please try again later.".into(),
            Refusal::Forbidden => "Forbidden.".into(),
        };
        Self {
            retry_after: refusal.retry_after(),
            ..Self::new(refusal.status(), message)
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401 `Not authenticated.`
    pub(crate) fn not_authenticated() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, NOT_AUTHENTICATED)
    }

    /// Logs the cause and hides it from the client.
    pub(crate) fn internal(cause: &dyn fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL)
    }

    /// The HTTP status sent.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The one message of the `errors` array.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for IoweyouError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

/// `{"errors": ["..."]}`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody<'a> {
    #[schema(value_type = Vec<String>, min_items = 1, max_items = 1)]
    errors: [&'a str; 1],
}

impl ResponseError for IoweyouError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status).json(ErrorBody {
            errors: [&self.message],
        });
        set_retry_after(&mut response, self.retry_after);
        response
    }
}

impl From<BodyError> for IoweyouError {
    fn from(error: BodyError) -> Self {
        Self::refused(&Refusal::UnreadableBody(error))
    }
}

internal_failures!(IoweyouError);

impl From<RegisterError> for IoweyouError {
    fn from(error: RegisterError) -> Self {
        match error {
            // The original reported one problem at a time.
            RegisterError::Invalid(errors) => Self::bad_request(
                errors
                    .fields()
                    .first()
                    .map_or_else(|| errors.summary(), |e| e.message.clone()),
            ),
            RegisterError::Throttled { retry_after } => {
                Self::refused(&Refusal::throttled(retry_after))
            }
            RegisterError::UsernameTaken => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, USERNAME_TAKEN)
            }
            RegisterError::EmailTaken => Self::new(StatusCode::UNPROCESSABLE_ENTITY, EMAIL_TAKEN),
            RegisterError::Internal(e) => e.into(),
        }
    }
}

impl From<LoginError> for IoweyouError {
    fn from(error: LoginError) -> Self {
        match error {
            LoginError::InvalidCredentials => Self::new(StatusCode::UNAUTHORIZED, BAD_CREDENTIALS),
            LoginError::Throttled { retry_after } => {
                Self::refused(&Refusal::throttled(retry_after))
            }
            LoginError::Internal(e) => e.into(),
        }
    }
}

impl From<AuthenticateError> for IoweyouError {
    fn from(error: AuthenticateError) -> Self {
        match error {
            AuthenticateError::Internal(e) => e.into(),
            AuthenticateError::Expired
            | AuthenticateError::Invalid
            | AuthenticateError::SessionInactive
            | AuthenticateError::UserGone => Self::not_authenticated(),
        }
    }
}

impl From<RefreshError> for IoweyouError {
    fn from(error: RefreshError) -> Self {
        match error {
            RefreshError::Internal(e) => e.into(),
            RefreshError::Invalid
            | RefreshError::Expired
            | RefreshError::SessionInactive
            | RefreshError::Reused => Self::not_authenticated(),
        }
    }
}

impl From<LogoutError> for IoweyouError {
    fn from(error: LogoutError) -> Self {
        match error {
            LogoutError::InvalidToken | LogoutError::Reused => Self::not_authenticated(),
            LogoutError::Internal(e) => e.into(),
        }
    }
}
