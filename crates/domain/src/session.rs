//! Sessions, refresh-token records and password-reset records.

use chrono::{DateTime, Utc};

use crate::values::{ResetTokenHash, SessionId, TokenId, UserId};

/// Why a session ended early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevocationReason {
    Logout,
    /// A used refresh token was presented again: the family is assumed stolen.
    RefreshReuse,
    PasswordReset,
}

impl RevocationReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::RefreshReuse => "refresh_reuse",
            Self::PasswordReset => "password_reset",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "logout" => Some(Self::Logout),
            "refresh_reuse" => Some(Self::RefreshReuse),
            "password_reset" => Some(Self::PasswordReset),
            _ => None,
        }
    }
}

/// One login: the family of refresh tokens it starts, and the access tokens they buy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub created_at: DateTime<Utc>,
    /// No refresh extends a session past this instant.
    pub expires_at: DateTime<Utc>,
    pub last_refreshed_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revocation_reason: Option<RevocationReason>,
}

impl Session {
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// A refresh token's server-side record, keyed by its `jti`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    pub id: TokenId,
    pub session_id: SessionId,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

/// A password-reset token's server-side record (the secret itself is never stored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResetTokenRecord {
    pub token_hash: ResetTokenHash,
    pub user_id: UserId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}
