//! Tokens as the domain sees them: claims in, an opaque string out.

use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::values::{SessionId, TokenId, UserId};

/// Access tokens authenticate requests; refresh tokens only buy a new pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// Sent with every request; short-lived.
    Access,
    /// Exchanged once for a new pair; longer-lived.
    Refresh,
}

impl TokenKind {
    /// The `typ` claim's value: `access` or `refresh`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Refresh => "refresh",
        }
    }

    /// The JOSE header `typ`: `at+jwt` for access tokens (RFC 9068), `rt+jwt` for
    /// refresh tokens, so a verifier that reads only the header cannot take one for
    /// the other.
    pub fn header_typ(self) -> &'static str {
        match self {
            Self::Access => "at+jwt",
            Self::Refresh => "rt+jwt",
        }
    }
}

/// What a token says. The codec adds its own issuer and audience; `extra` carries the
/// claims a dialect's clients expect (a `username`, PocketBase's `collectionId`, ...),
/// and survives rotation unchanged.
#[derive(Clone, Debug, PartialEq)]
pub struct Claims {
    /// `sub`: the user.
    pub subject: UserId,
    /// `sid`: the session the token belongs to.
    pub session: SessionId,
    /// `jti`: unique per token; a refresh token's key in the store.
    pub token_id: TokenId,
    /// `typ`: what the token may be used for.
    pub kind: TokenKind,
    /// Whole seconds, as a JWT carries them.
    pub issued_at: DateTime<Utc>,
    /// Whole seconds, as a JWT carries them.
    pub expires_at: DateTime<Utc>,
    /// Further claims, written at the token's top level.
    pub extra: Map<String, Value>,
}

/// An encoded token and when it stops working. `Debug` hides the token.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The encoded token, for the client.
    pub token: String,
    /// Its `exp` (whole seconds).
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
    /// Authenticates requests.
    pub access: IssuedToken,
    /// Buys the next pair, once.
    pub refresh: IssuedToken,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_token_debug_hides_the_token() {
        let issued = IssuedToken {
            token: "secret.jwt.value".into(),
            expires_at: DateTime::from_timestamp(0, 0).unwrap(),
        };
        assert!(!format!("{issued:?}").contains("secret.jwt.value"));
    }
}
