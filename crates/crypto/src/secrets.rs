//! The secrets key: the key-encryption key that seals signing keys at rest.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use portcullis_domain::{KeyAlgorithm, SealError, SecretSealer};
use zeroize::{Zeroize, Zeroizing};

use crate::jwt::{STANDARD_ANY_PADDING, URL_SAFE_ANY_PADDING};

/// The first byte of a sealed key: the format, so that a later one can be told apart.
const SEALED_V1: u8 = 1;
const NONCE_LEN: usize = 24;
/// Domain separation for the associated data: a sealed key opens only as the key it
/// was sealed as (same kid, same algorithm), so rows cannot be swapped or relabelled.
const AAD_PREFIX: &[u8] = b"portcullis signing key v1\0";

/// Why a secrets key or a sealed key cannot be used. Messages never contain key
/// material.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The configured text is not base64 of exactly 32 bytes.
    #[error("the secrets key must be base64 of exactly 32 random bytes (openssl rand -base64 32)")]
    Malformed,
    /// The operating system's generator failed.
    #[error("the operating system's random generator failed: {0}")]
    Random(#[source] getrandom::Error),
    /// Sealing failed (never expected: the cipher accepts any input size we give it).
    #[error("sealing a key failed")]
    Seal,
    /// The sealed bytes do not open under this secrets key for this kid and algorithm:
    /// another secrets key sealed them, or they were altered.
    #[error(
        "signing key {kid:?} cannot be decrypted: the secrets key is not the one it was sealed with, or the stored key was altered"
    )]
    Open { kid: String },
}

/// The 256-bit key-encryption key (from `PORTCULLIS_SECRETS_KEY`, a file, or generated
/// for SQLite). Seals private signing keys with XChaCha20-Poly1305 (random 192-bit
/// nonces, so no nonce bookkeeping is needed). `Debug` never shows it; it is wiped
/// from memory when dropped.
#[derive(Clone)]
pub struct SecretsKey([u8; 32]);

impl SecretsKey {
    /// Its length in bytes.
    pub const LEN: usize = 32;

    /// Wraps raw key bytes; exactly [`Self::LEN`] of them.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SecretsError> {
        <[u8; 32]>::try_from(bytes)
            .map(Self)
            .map_err(|_| SecretsError::Malformed)
    }

    /// Parses the configuration form: base64 (either alphabet, padding optional,
    /// surrounding whitespace ignored) of exactly 32 bytes. Errors never quote the text.
    pub fn from_config_str(text: &str) -> Result<Self, SecretsError> {
        let text = text.trim();
        let bytes = Zeroizing::new(
            STANDARD_ANY_PADDING
                .decode(text)
                .or_else(|_| URL_SAFE_ANY_PADDING.decode(text))
                .map_err(|_| SecretsError::Malformed)?,
        );
        Self::from_bytes(&bytes)
    }

    /// A fresh key from the operating system's generator.
    pub fn generate() -> Result<Self, SecretsError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(SecretsError::Random)?;
        Ok(Self(bytes))
    }

    /// The configuration form (standard base64, padded), e.g. for a key file.
    pub fn to_config_string(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.0))
    }

    fn aad(kid: &str, algorithm: KeyAlgorithm) -> Vec<u8> {
        [
            AAD_PREFIX,
            kid.as_bytes(),
            b"\0",
            algorithm.as_str().as_bytes(),
        ]
        .concat()
    }

    /// `plaintext` encrypted and authenticated, bound to `kid` and `algorithm`:
    /// version byte, nonce, ciphertext with tag.
    pub fn seal(
        &self,
        kid: &str,
        algorithm: KeyAlgorithm,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, SecretsError> {
        self.seal_bound(&Self::aad(kid, algorithm), plaintext)
    }

    /// `plaintext` encrypted and authenticated, bound to `aad`.
    fn seal_bound(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SecretsError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(SecretsError::Random)?;
        let ciphertext = XChaCha20Poly1305::new((&self.0).into())
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| SecretsError::Seal)?;
        Ok([&[SEALED_V1][..], &nonce, &ciphertext].concat())
    }

    /// What [`SecretsKey::seal`] sealed for this `kid` and `algorithm`; any other key,
    /// kid, algorithm or a changed byte is [`SecretsError::Open`].
    pub fn open(
        &self,
        kid: &str,
        algorithm: KeyAlgorithm,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
        self.open_bound(&Self::aad(kid, algorithm), sealed)
            .ok_or_else(|| SecretsError::Open {
                kid: kid.to_owned(),
            })
    }

    /// What [`SecretsKey::seal_bound`] sealed with `aad`; `None` for anything else.
    fn open_bound(&self, aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let rest = match sealed.split_first() {
            Some((&SEALED_V1, rest)) if rest.len() > NONCE_LEN => rest,
            _ => return None,
        };
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        XChaCha20Poly1305::new((&self.0).into())
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .ok()
            .map(Zeroizing::new)
    }
}

/// Domain separation for secrets sealed through [`SecretSealer`]: they never open as a
/// signing key, nor one as the other.
const SECRET_AAD_PREFIX: &[u8] = b"portcullis sealed secret v1\0";

impl SecretSealer for SecretsKey {
    fn seal(&self, context: &str, secret: &str) -> Result<Vec<u8>, SealError> {
        let aad = [SECRET_AAD_PREFIX, context.as_bytes()].concat();
        self.seal_bound(&aad, secret.as_bytes())
            .map_err(|e| SealError(e.to_string()))
    }

    fn open(&self, context: &str, sealed: &[u8]) -> Result<String, SealError> {
        let aad = [SECRET_AAD_PREFIX, context.as_bytes()].concat();
        let opened = self
            .open_bound(&aad, sealed)
            .ok_or_else(|| SealError("does not open under this secrets key".into()))?;
        String::from_utf8(opened.to_vec()).map_err(|_| SealError("not text".into()))
    }
}

impl Drop for SecretsKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretsKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KID: &str = "0123456789abcdef";

    #[test]
    fn sealed_secrets_open_only_with_their_context_and_key() {
        let key = SecretsKey::generate().unwrap();
        let sealed = SecretSealer::seal(&key, "mail-1", "reset-secret-text").unwrap();
        assert!(!sealed.windows(5).any(|w| w == b"reset"));
        assert_eq!(
            SecretSealer::open(&key, "mail-1", &sealed).unwrap(),
            "reset-secret-text"
        );
        assert!(SecretSealer::open(&key, "mail-2", &sealed).is_err());
        let other = SecretsKey::generate().unwrap();
        assert!(SecretSealer::open(&other, "mail-1", &sealed).is_err());
        // Never opens as a signing key, whatever kid it is presented under.
        assert!(key.open("mail-1", KeyAlgorithm::EdDSA, &sealed).is_err());
    }

    #[test]
    fn seal_and_open_round_trip() {
        let key = SecretsKey::generate().unwrap();
        let sealed = key
            .seal(KID, KeyAlgorithm::EdDSA, b"private key bytes")
            .unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"private"));
        assert_eq!(
            key.open(KID, KeyAlgorithm::EdDSA, &sealed)
                .unwrap()
                .as_slice(),
            b"private key bytes"
        );
        // A fresh nonce every time.
        assert_ne!(
            sealed,
            key.seal(KID, KeyAlgorithm::EdDSA, b"private key bytes")
                .unwrap()
        );
    }

    #[test]
    fn a_wrong_key_kid_algorithm_or_byte_fails_cleanly() {
        let key = SecretsKey::generate().unwrap();
        let sealed = key.seal(KID, KeyAlgorithm::HS256, b"hmac key").unwrap();
        let other = SecretsKey::generate().unwrap();
        let error = other.open(KID, KeyAlgorithm::HS256, &sealed).unwrap_err();
        assert!(matches!(&error, SecretsError::Open { kid } if kid == KID));
        assert!(error.to_string().contains("secrets key"), "{error}");
        assert!(key.open("another", KeyAlgorithm::HS256, &sealed).is_err());
        assert!(key.open(KID, KeyAlgorithm::EdDSA, &sealed).is_err());
        for at in [0, 1, sealed.len() - 1] {
            let mut changed = sealed.clone();
            changed[at] ^= 1;
            assert!(
                key.open(KID, KeyAlgorithm::HS256, &changed).is_err(),
                "{at}"
            );
        }
        for short in [&[][..], &[SEALED_V1][..], &sealed[..NONCE_LEN + 1]] {
            assert!(key.open(KID, KeyAlgorithm::HS256, short).is_err());
        }
    }

    #[test]
    fn config_strings_must_be_32_bytes_of_base64() {
        let key = SecretsKey::generate().unwrap();
        let text = key.to_config_string();
        let parsed = SecretsKey::from_config_str(&format!(" {}\n", text.as_str())).unwrap();
        let sealed = key.seal(KID, KeyAlgorithm::EdDSA, b"x").unwrap();
        assert!(parsed.open(KID, KeyAlgorithm::EdDSA, &sealed).is_ok());
        for bad in [
            "",
            "not base64!!",
            &STANDARD.encode([1u8; 31]),
            &STANDARD.encode([1u8; 33]),
        ] {
            let error = SecretsKey::from_config_str(bad).unwrap_err();
            assert!(error.to_string().contains("32"), "{error}");
        }
        assert_eq!(format!("{key:?}"), "SecretsKey(<redacted>)");
    }
}
