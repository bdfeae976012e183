//! One error enum per use case. Each says what the client did wrong, distinctly from
//! [`Internal`] failures that are never the client's fault.

use crate::ports::{HashError, StoreError, TokenIssueError};

/// One field's problem, fit to show to the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

/// Every field problem of one request, in the order of the form's fields. Never empty.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.summary())]
pub struct ValidationErrors(Vec<FieldError>);

impl ValidationErrors {
    pub fn single(field: &'static str, message: impl Into<String>) -> Self {
        Self(vec![FieldError {
            field,
            message: message.into(),
        }])
    }

    /// `None` when `errors` is empty.
    pub fn from_vec(errors: Vec<FieldError>) -> Option<Self> {
        (!errors.is_empty()).then_some(Self(errors))
    }

    pub fn fields(&self) -> &[FieldError] {
        &self.0
    }

    /// All messages, joined with ", ".
    pub fn summary(&self) -> String {
        self.0
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A failure of the machinery, not of the request: storage, hashing, signing, the
/// system's random source. Adapters' details are kept as the source for logs.
#[derive(Debug, thiserror::Error)]
pub enum Internal {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    TokenIssue(#[from] TokenIssueError),
    #[error("system random source failed: {0}")]
    Random(#[from] getrandom::Error),
}

/// Lets `?` lift every internal failure straight into a use-case error.
macro_rules! internal_from {
    ($($error:ty),+) => {$(
        impl From<StoreError> for $error {
            fn from(e: StoreError) -> Self { Self::Internal(e.into()) }
        }
        impl From<HashError> for $error {
            fn from(e: HashError) -> Self { Self::Internal(e.into()) }
        }
        impl From<TokenIssueError> for $error {
            fn from(e: TokenIssueError) -> Self { Self::Internal(e.into()) }
        }
        impl From<getrandom::Error> for $error {
            fn from(e: getrandom::Error) -> Self { Self::Internal(e.into()) }
        }
    )+};
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("invalid registration: {0}")]
    Invalid(ValidationErrors),
    #[error("email already taken")]
    EmailTaken,
    #[error("username already taken")]
    UsernameTaken,
    #[error(transparent)]
    Internal(#[from] Internal),
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown account or wrong password: deliberately one case.
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error(transparent)]
    Internal(#[from] Internal),
}

#[derive(Debug, thiserror::Error)]
pub enum AuthenticateError {
    #[error("access token expired")]
    Expired,
    #[error("access token invalid")]
    Invalid,
    #[error("session revoked or expired")]
    SessionInactive,
    #[error("user no longer exists")]
    UserGone,
    #[error(transparent)]
    Internal(#[from] Internal),
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("refresh token invalid")]
    Invalid,
    #[error("refresh token expired")]
    Expired,
    #[error("session revoked or expired")]
    SessionInactive,
    /// A used token came back: the session has been revoked.
    #[error("refresh token reused; session revoked")]
    Reused,
    #[error(transparent)]
    Internal(#[from] Internal),
}

#[derive(Debug, thiserror::Error)]
pub enum LogoutError {
    /// Malformed, unknown, expired, already used, or its session already ended.
    #[error("invalid refresh token")]
    InvalidToken,
    #[error(transparent)]
    Internal(#[from] Internal),
}

#[derive(Debug, thiserror::Error)]
pub enum RequestResetError {
    #[error(transparent)]
    Internal(#[from] Internal),
}

#[derive(Debug, thiserror::Error)]
pub enum ResetPasswordError {
    /// Unknown, expired or used.
    #[error("invalid reset token")]
    InvalidToken,
    #[error("invalid password: {0}")]
    Invalid(ValidationErrors),
    #[error(transparent)]
    Internal(#[from] Internal),
}

internal_from!(
    RegisterError,
    LoginError,
    AuthenticateError,
    RefreshError,
    LogoutError,
    RequestResetError,
    ResetPasswordError
);
