//! What other services need to check Portcullis tokens without holding a key: registered
//! API clients, token introspection (RFC 7662) and revocation (RFC 7009).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::token::Claims;
use crate::values::ClientId;

/// A service allowed to introspect and revoke tokens. Only its secret's hash is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredClient {
    /// Its id, the HTTP Basic user name.
    pub id: ClientId,
    /// What the operator called it.
    pub name: String,
    /// The SHA-256 (hex) of its secret: the secret is 256 random bits, so a fast hash
    /// is as good as a slow one, and checking it costs no argon2 run.
    pub secret_hash: String,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

/// A client's secret, shown once when the client is registered. `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl ClientSecret {
    /// Draws 256 bits from the operating system's generator.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// The secret's text, to show the operator once. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Its stored form.
    pub(crate) fn hash(secret: &str) -> String {
        hex::encode(Sha256::digest(secret.as_bytes()))
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

/// Equality that takes as long whatever the inputs share, so a client learns nothing
/// from the time a wrong secret takes to refuse.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What introspection says of a token.
#[derive(Clone, Debug, PartialEq)]
pub enum Introspection {
    /// Usable right now: well signed, unexpired, its session live and made under the
    /// account's current password, and (a refresh token) not yet spent.
    Active(Box<Claims>),
    /// Anything else: forged, malformed, expired, revoked, spent, unknown.
    Inactive,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_hidden() {
        let secret = ClientSecret::generate().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(secret.expose().len(), 43);
        assert_ne!(
            secret,
            ClientSecret::generate().unwrap_or_else(|e| panic!("{e}"))
        );
        assert!(!format!("{secret:?}").contains(secret.expose()));
        assert_eq!(ClientSecret::hash(secret.expose()).len(), 64);
    }

    #[test]
    fn constant_time_equality_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
