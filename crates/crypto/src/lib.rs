//! Portcullis's crypto adapters: the domain's [`PasswordHasher`] port as argon2id
//! ([`Argon2Hasher`], run on a bounded [`HashPool`] of threads) and its [`TokenCodec`]
//! port as JWTs: [`KeyRing`] (rotating Ed25519 or HS256 keys, sealed at rest under a
//! [`SecretsKey`]) or [`JwtCodec`] (one fixed HS256 key).
//!
//! [`PasswordHasher`]: portcullis_domain::PasswordHasher
//! [`TokenCodec`]: portcullis_domain::TokenCodec

mod foreign;
mod jwt;
mod keyring;
mod password;
mod pool;
mod secrets;

pub use jwt::{JwtCodec, JwtConfig, JwtSecret};
pub use keyring::{
    KEY_REFRESH_INTERVAL, KeyRing, KeyRingConfig, KeyRingError, KeyState, KeyStatus,
};
pub use password::{Argon2Hasher, Argon2Params};
pub use pool::{HashPool, HashPoolConfig};
pub use secrets::{SecretsError, SecretsKey};

/// A JWT secret or codec setting that cannot be used. The messages never contain the
/// secret, so they are safe to log and to show an operator.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Fewer than [`JwtSecret::MIN_BYTES`] key bytes.
    #[error("the JWT secret must be at least {min} bytes (256 bits); it has {bytes}", min = JwtSecret::MIN_BYTES)]
    SecretTooShort { bytes: usize },
    /// The configured secret is not base64 in either alphabet.
    #[error(
        "the JWT secret must be base64 (standard or URL-safe alphabet, padding optional) of at least {min} random bytes",
        min = JwtSecret::MIN_BYTES
    )]
    SecretNotBase64,
    /// [`JwtSecret::generate`] could not get randomness.
    #[error("the operating system's random generator failed: {0}")]
    Random(#[source] getrandom::Error),
    /// [`JwtConfig::issuer`] is empty.
    #[error("the JWT issuer must not be empty")]
    EmptyIssuer,
    /// [`JwtConfig::audience`] is empty.
    #[error("the JWT audience must not be empty")]
    EmptyAudience,
    /// [`JwtConfig::leeway_seconds`] is over [`JwtConfig::MAX_LEEWAY_SECONDS`].
    #[error("the JWT leeway is {seconds} s; at most {max} s is allowed")]
    LeewayTooLarge { seconds: u64, max: u64 },
}
