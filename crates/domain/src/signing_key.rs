//! Token-signing keys as the ports see them: the stored form (private half sealed by the
//! adapter that made it) and the published form (public half only).

use std::fmt;

use chrono::{DateTime, Utc};

/// The JWS algorithm of a signing key. A key signs and verifies with its own algorithm
/// only: a token whose header names another is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// Ed25519 signatures (RFC 8037). The public half can be published.
    EdDSA,
    /// HMAC-SHA-256. Symmetric: never published.
    HS256,
}

impl KeyAlgorithm {
    /// The JOSE `alg` name: `EdDSA` or `HS256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::HS256 => "HS256",
        }
    }

    /// The algorithm named `name` (exactly as [`KeyAlgorithm::as_str`] writes it).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "EdDSA" => Some(Self::EdDSA),
            "HS256" => Some(Self::HS256),
            _ => None,
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signing key as stored. The private key is sealed (encrypted and authenticated) by
/// the token adapter before it reaches a repository, so a store never holds it in the
/// clear. `Debug` shows neither half.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// The key id, written as the `kid` header of every token it signs.
    pub kid: String,
    /// What it signs with.
    pub algorithm: KeyAlgorithm,
    /// The private key (the HMAC key for HS256), sealed by the token adapter.
    pub sealed_private_key: Vec<u8>,
    /// The public key (32 bytes for Ed25519); `None` for HS256.
    pub public_key: Option<Vec<u8>>,
    /// Whether it also accepts tokens without a `kid`: only the HS256 key imported from
    /// before keys had ids, so that tokens issued then keep working.
    pub legacy: bool,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it became the key that signs; `None` while it never has.
    pub activated_at: Option<DateTime<Utc>>,
    /// When it stopped verifying; `None` while it still does.
    pub retired_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("legacy", &self.legacy)
            .field("created_at", &self.created_at)
            .field("activated_at", &self.activated_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

/// A public key that may still verify a live token, for publication (a JWKS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedKey {
    /// The `kid` of the tokens it verifies.
    pub kid: String,
    /// Always an asymmetric algorithm: symmetric keys are never published.
    pub algorithm: KeyAlgorithm,
    /// The raw public key (32 bytes for Ed25519).
    pub public_key: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithms_round_trip_by_name_only_exactly() {
        for algorithm in [KeyAlgorithm::EdDSA, KeyAlgorithm::HS256] {
            assert_eq!(KeyAlgorithm::parse(algorithm.as_str()), Some(algorithm));
        }
        for other in ["none", "hs256", "RS256", "", "EDDSA"] {
            assert_eq!(KeyAlgorithm::parse(other), None, "{other}");
        }
    }

    #[test]
    fn debug_hides_the_keys() {
        let record = SigningKeyRecord {
            kid: "k1".into(),
            algorithm: KeyAlgorithm::EdDSA,
            sealed_private_key: b"sealed-secret-bytes".to_vec(),
            public_key: Some(b"public-bytes".to_vec()),
            legacy: false,
            created_at: DateTime::from_timestamp(0, 0).unwrap(),
            activated_at: None,
            retired_at: None,
        };
        let shown = format!("{record:?}");
        assert!(shown.contains("k1"));
        assert!(!shown.contains("115, 101"), "{shown}");
    }
}
