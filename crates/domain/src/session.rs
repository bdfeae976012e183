//! Sessions, refresh-token records and password-reset records.

use chrono::{DateTime, Utc};

use crate::reset::ResetTokenHash;
use crate::values::{SessionId, TokenId, UserId};

/// Why a session ended early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevocationReason {
    /// The user logged out.
    Logout,
    /// A used refresh token was presented again: the family is assumed stolen.
    RefreshReuse,
    /// The account's password was reset, which ends every session.
    PasswordReset,
}

impl RevocationReason {
    /// The stored name: `logout`, `refresh_reuse` or `password_reset`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::RefreshReuse => "refresh_reuse",
            Self::PasswordReset => "password_reset",
        }
    }

    /// The reason a stored name denotes; `None` for any other text.
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
    /// The session's id, the `sid` of its tokens.
    pub id: SessionId,
    /// Whose login it is.
    pub user_id: UserId,
    /// When the login happened.
    pub created_at: DateTime<Utc>,
    /// No refresh extends a session past this instant.
    pub expires_at: DateTime<Utc>,
    /// The last successful rotation; `None` before the first.
    pub last_refreshed_at: Option<DateTime<Utc>>,
    /// When it was ended early; `None` while not revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Why it was ended early: set exactly when `revoked_at` is.
    pub revocation_reason: Option<RevocationReason>,
    /// The user's [`crate::User::credential_version`] when the session was made; the
    /// session works only while the user's is still this one.
    pub credential_version: i64,
}

impl Session {
    /// Whether its tokens still work at `now`: not revoked, and `now` before
    /// `expires_at`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// A refresh token's server-side record, keyed by its `jti`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    /// The token's `jti`.
    pub id: TokenId,
    /// The session whose family it belongs to.
    pub session_id: SessionId,
    /// When it was issued, to the microsecond (the token's `iat` has whole seconds).
    pub issued_at: DateTime<Utc>,
    /// The token's `exp`: whole seconds, never after its session's expiry. The codec
    /// judges it when the token is presented; stores keep it for the record.
    pub expires_at: DateTime<Utc>,
    /// When a rotation spent it; `None` while unused.
    pub used_at: Option<DateTime<Utc>>,
}

/// A password-reset token's server-side record (the secret itself is never stored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResetTokenRecord {
    /// The SHA-256 of the secret mailed to the user: its key in the store.
    pub token_hash: ResetTokenHash,
    /// The account it resets.
    pub user_id: UserId,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// It works strictly before this instant.
    pub expires_at: DateTime<Utc>,
    /// When it was used; `None` while unused.
    pub used_at: Option<DateTime<Utc>>,
}
