//! One error enum per use case. Each says what the client did wrong, distinctly from
//! [`InternalError`] failures that are never the client's fault.

use chrono::TimeDelta;

use crate::ports::{HashError, StoreError, TokenIssueError};

/// One field's problem, fit to show to the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The form field at fault, as the request names it (`email`, `password`, ...).
    pub field: &'static str,
    /// What is wrong with it, fit to show to the client.
    pub message: String,
}

/// Every field problem of one request, in the order of the form's fields. Never empty.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.summary())]
pub struct ValidationErrors(Vec<FieldError>);

impl ValidationErrors {
    /// One problem with one field.
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

    /// Every problem, in the form's field order.
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
pub enum InternalError {
    /// A repository failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The password hasher failed.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// Signing a token failed.
    #[error(transparent)]
    TokenIssue(#[from] TokenIssueError),
    /// The operating system's random source failed (drawing a reset secret).
    #[error("system random source failed: {0}")]
    Random(#[from] getrandom::Error),
}

impl InternalError {
    /// Whether the failure is temporary capacity, not a defect: the password hasher is
    /// busy ([`HashError::Busy`]) or the store is unreachable
    /// ([`StoreError::is_unavailable`]). Servers answer it with "try again later"
    /// (HTTP 503 with `Retry-After`) rather than as their own fault.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Store(error) => error.is_unavailable(),
            Self::Hash(error) => matches!(error, HashError::Busy),
            Self::TokenIssue(_) | Self::Random(_) => false,
        }
    }
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

/// Why [`AuthService::register`](crate::AuthService::register) or
/// [`AuthService::create_user`](crate::AuthService::create_user) refused.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// Too many registrations from this client address; nothing was checked or hashed.
    #[error("too many registrations; retry after {retry_after}")]
    Throttled {
        /// How long the client must wait.
        retry_after: TimeDelta,
    },
    /// Fields are malformed or the password breaks the policy; every problem is listed.
    #[error("invalid registration: {0}")]
    Invalid(ValidationErrors),
    /// Another account has this email (compared case-insensitively).
    #[error("email already taken")]
    EmailTaken,
    /// Another account has this username (compared case-insensitively).
    #[error("username already taken")]
    UsernameTaken,
    /// Not the client's fault.
    #[error(transparent)]
    Internal(#[from] InternalError),
}

/// Why [`AuthService::login`](crate::AuthService::login) refused.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Too many failures of this account, login name or client address: no password
    /// was verified. The client may try again after `retry_after`.
    #[error("too many attempts; retry after {retry_after}")]
    Throttled {
        /// How long the client must wait.
        retry_after: TimeDelta,
    },
    /// Unknown account or wrong password: deliberately one case.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Not the client's fault.
    #[error(transparent)]
    Internal(#[from] InternalError),
}

/// Why [`AuthService::authenticate`](crate::AuthService::authenticate) refused an access
/// token.
#[derive(Debug, thiserror::Error)]
pub enum AuthenticateError {
    /// Correctly signed but past its expiry: the client should refresh.
    #[error("access token expired")]
    Expired,
    /// Malformed, wrongly signed or not an access token, or its subject is not its
    /// session's user.
    #[error("access token invalid")]
    Invalid,
    /// Its session was revoked (logout, refresh-token reuse, password reset) or is past
    /// its absolute expiry.
    #[error("session revoked or expired")]
    SessionInactive,
    /// The token and its session are fine but the account no longer exists.
    #[error("user no longer exists")]
    UserGone,
    /// Not the client's fault.
    #[error(transparent)]
    Internal(#[from] InternalError),
}

/// Why [`AuthService::refresh`](crate::AuthService::refresh) or
/// [`AuthService::refresh_guarded`](crate::AuthService::refresh_guarded) refused.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// Malformed, wrongly signed, not a refresh token, unknown, or a
    /// [`RefreshGuard`](crate::RefreshGuard) condition failed. Nothing was changed.
    #[error("refresh token invalid")]
    Invalid,
    /// Correctly signed but past its expiry. Nothing was changed.
    #[error("refresh token expired")]
    Expired,
    /// Its session was revoked or is past its absolute expiry. Nothing was changed.
    #[error("session revoked or expired")]
    SessionInactive,
    /// A used token came back: the session has been revoked.
    #[error("refresh token reused; session revoked")]
    Reused,
    /// Not the client's fault.
    #[error(transparent)]
    Internal(#[from] InternalError),
}

/// Why [`AuthService::logout`](crate::AuthService::logout) refused.
#[derive(Debug, thiserror::Error)]
pub enum LogoutError {
    /// Malformed, unknown, expired, or its session already ended.
    #[error("invalid refresh token")]
    InvalidToken,
    /// Already used: a replay, taken as proof the family is stolen, so the session was
    /// revoked ([`crate::RevocationReason::RefreshReuse`]). Dialects answer it as
    /// [`LogoutError::InvalidToken`].
    #[error("refresh token already used")]
    Reused,
    /// Not the client's fault.
    #[error(transparent)]
    Internal(#[from] InternalError),
}

/// Why [`AuthService::request_password_reset`](crate::AuthService::request_password_reset)
/// failed: only ever internally, as the caller must learn nothing about the account.
#[derive(Debug, thiserror::Error)]
pub enum RequestResetError {
    /// Too many reset requests from this client address.
    #[error("too many reset requests; retry after {retry_after}")]
    Throttled {
        /// How long the client must wait.
        retry_after: TimeDelta,
    },
    /// Not the client's fault.
    #[error(transparent)]
    Internal(#[from] InternalError),
}

/// Why [`AuthService::reset_password`](crate::AuthService::reset_password) refused.
#[derive(Debug, thiserror::Error)]
pub enum ResetPasswordError {
    /// Unknown, expired or used.
    #[error("invalid reset token")]
    InvalidToken,
    /// The new password breaks the policy. The token was not spent.
    #[error("invalid password: {0}")]
    Invalid(ValidationErrors),
    /// Not the client's fault.
    #[error(transparent)]
    Internal(#[from] InternalError),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_busy_hasher_or_an_unreachable_store_is_unavailable() {
        let unavailable = [
            InternalError::from(HashError::Busy),
            InternalError::from(StoreError::unavailable("connection refused")),
        ];
        for error in &unavailable {
            assert!(error.is_unavailable(), "{error}");
        }
        let faults = [
            InternalError::from(HashError::Failed("unreadable hash".into())),
            InternalError::from(StoreError::new("syntax error")),
            InternalError::from(TokenIssueError("no key".into())),
        ];
        for error in &faults {
            assert!(!error.is_unavailable(), "{error}");
        }
        // Carried through a use case's error unchanged.
        let LoginError::Internal(carried) = LoginError::from(HashError::Busy) else {
            panic!("not internal");
        };
        assert!(carried.is_unavailable());
        assert_eq!(
            StoreError::unavailable("gone").to_string(),
            "storage unavailable: gone"
        );
        assert_eq!(StoreError::new("bad").to_string(), "storage failure: bad");
    }
}

/// Why [`AuthService::register_client`](crate::AuthService::register_client) refused.
#[derive(Debug, thiserror::Error)]
pub enum RegisterClientError {
    /// Empty, longer than 100 characters, or holding control characters.
    #[error("a client name is 1 to 100 characters, without control characters")]
    InvalidName,
    /// Not the caller's fault.
    #[error(transparent)]
    Internal(#[from] InternalError),
}

/// Why [`AuthService::authenticate_client`](crate::AuthService::authenticate_client)
/// refused.
#[derive(Debug, thiserror::Error)]
pub enum ClientAuthError {
    /// Unknown client, or a wrong secret: deliberately one case.
    #[error("invalid client credentials")]
    Invalid,
    /// Not the caller's fault.
    #[error(transparent)]
    Internal(#[from] InternalError),
}
