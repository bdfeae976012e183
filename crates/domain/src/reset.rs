//! Password-reset secrets: the random secret mailed to the user, and the hash that is
//! all the store keeps of it.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

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

    /// The secret's text, for the link sent to the user. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ResetSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResetSecret(<redacted>)")
    }
}

/// The SHA-256 of a password-reset secret, hex-encoded: all the store ever sees, so a
/// leaked table does not yield usable reset links.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResetTokenHash(String);

impl ResetTokenHash {
    /// The hash of `secret`, as stored and looked up.
    pub fn of(secret: &ResetSecret) -> Self {
        Self(hex::encode(Sha256::digest(secret.expose().as_bytes())))
    }

    /// Rebuilds a stored hash; `None` unless it is 64 lower-case hex digits.
    pub fn from_hex(stored: &str) -> Option<Self> {
        let well_formed = stored.len() == 64
            && stored
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
        well_formed.then(|| Self(stored.to_owned()))
    }

    /// The 64 lower-case hex digits, for the store.
    pub fn as_str(&self) -> &str {
        &self.0
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
    fn reset_token_hash_round_trips_only_well_formed_hex() {
        let hash = ResetTokenHash::of(&ResetSecret::from_presented("abc"));
        assert_eq!(ResetTokenHash::from_hex(hash.as_str()), Some(hash));
        assert_eq!(ResetTokenHash::from_hex("xyz"), None);
    }
}
