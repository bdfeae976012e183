//! Tokens as the domain sees them: claims in, an opaque string out.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::values::{SessionId, TokenId, UserId};

/// Access tokens authenticate requests; refresh tokens only buy a new pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Refresh => "refresh",
        }
    }
}

/// What a token says. The codec adds its own issuer and audience; `extra` carries the
/// claims a dialect's clients expect (a `username`, PocketBase's `collectionId`, ...),
/// and survives rotation unchanged.
#[derive(Clone, Debug, PartialEq)]
pub struct Claims {
    pub subject: UserId,
    pub session: SessionId,
    pub token_id: TokenId,
    pub kind: TokenKind,
    /// Whole seconds, as a JWT carries them.
    pub issued_at: DateTime<Utc>,
    /// Whole seconds, as a JWT carries them.
    pub expires_at: DateTime<Utc>,
    pub extra: Map<String, Value>,
}

/// An encoded token and when it stops working. `Debug` hides the token.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The pair a login, registration or refresh hands out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenPair {
    pub access: IssuedToken,
    pub refresh: IssuedToken,
}

/// A password-reset secret as sent to the user: 256 random bits, base64url. Only its
/// hash is stored. `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct ResetSecret(String);

impl ResetSecret {
    /// Draws 256 bits from the operating system's generator.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Wraps a secret a client presented; it is checked only by hash lookup.
    pub fn from_presented(text: &str) -> Self {
        Self(text.to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ResetSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResetSecret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_secrets_are_long_random_and_hidden() {
        let a = ResetSecret::generate().unwrap();
        let b = ResetSecret::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 43, "32 bytes in unpadded base64url");
        assert_eq!(format!("{a:?}"), "ResetSecret(<redacted>)");
    }

    #[test]
    fn issued_token_debug_hides_the_token() {
        let issued = IssuedToken {
            token: "secret.jwt.value".into(),
            expires_at: DateTime::from_timestamp(0, 0).unwrap(),
        };
        assert!(!format!("{issued:?}").contains("secret.jwt.value"));
    }
}
