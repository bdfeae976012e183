//! Portcullis's authentication domain.
//!
//! Users, credentials, sessions and the token lifecycle, written against port traits
//! ([`UserRepository`], [`SessionRepository`], [`ResetTokenRepository`],
//! [`PasswordHasher`], [`TokenCodec`], [`Clock`], [`Mailer`]). The crate does no I/O
//! of its own: storage, hashing, token encoding, time and mail are adapters handed in
//! through [`Ports`]. Every use case is a synchronous method of [`AuthService`];
//! adapters are expected to block (Diesel, argon2), so async callers run them on a
//! blocking thread. Everything public is exported at the crate root.
//!
//! With the `mocks` feature every port has a mockall mock (`MockUserRepository`, ...)
//! for unit tests of code that embeds the domain. With the `contract` feature, the
//! `contract` module is the repository ports' contract as a test suite that any storage
//! adapter runs with one `repository_contract!` line.
//!
//! # Embedding
//!
//! Build [`Ports`] from your adapters (Portcullis's own live in the `portcullis-crypto`
//! and `portcullis-persistence` crates) and call the use cases. Here the ports are
//! mocks, as in a unit test of an embedding service:
//!
#![cfg_attr(feature = "mocks", doc = "```")]
#![cfg_attr(not(feature = "mocks"), doc = "```ignore")]
//! use std::sync::Arc;
//! use portcullis_domain::*;
//!
//! let mut users = MockUserRepository::new();
//! users.expect_find_by_email().returning(|_| Ok(None));
//! // No failures counted yet; the attempt is counted before the password is checked.
//! let mut throttles = MockThrottleRepository::new();
//! throttles.expect_get().returning(|_| Ok(None));
//! throttles.expect_claim().returning(|_, _, now, _| {
//!     Ok(Some(ThrottleRecord { count: 1, window_started_at: now, last_at: now }))
//! });
//! let mut hasher = MockPasswordHasher::new();
//! hasher.expect_hash().returning(|_| Ok(PasswordHash::new("$argon2id$...".into())));
//! hasher.expect_verify().returning(|_, _| Ok(PasswordVerdict::Invalid));
//! // The failure goes to the security event log.
//! let mut events = MockEventRepository::new();
//! events
//!     .expect_record()
//!     .withf(|event| event.kind == EventKind::Login && event.outcome == EventOutcome::Failure)
//!     .times(1)
//!     .returning(|_| Ok(()));
//!
//! let ports = Ports {
//!     users: Arc::new(users),
//!     sessions: Arc::new(MockSessionRepository::new()),
//!     reset_tokens: Arc::new(MockResetTokenRepository::new()),
//!     hasher: Arc::new(hasher),
//!     tokens: Arc::new(MockTokenCodec::new()),
//!     clock: Arc::new(SystemClock),
//!     mailer: Arc::new(MockMailer::new()),
//!     throttles: Arc::new(throttles),
//!     events: Arc::new(events),
//!     outbox: Arc::new(MockMailOutbox::new()),
//!     clients: Arc::new(MockClientRepository::new()),
//! };
//! let service = AuthService::new(ports, AuthConfig::default());
//!
//! // An unknown account: refused like a wrong password, after a dummy verification.
//! let outcome = service.login("ada@example.com", &Password::new("hunter22"), &IssueOptions::default());
//! assert!(matches!(outcome, Err(LoginError::InvalidCredentials)));
//! ```

#![warn(missing_docs)]

mod clock;
mod config;
#[cfg(feature = "contract")]
pub mod contract;
mod error;
mod event;
mod import;
mod mail;
pub mod nonblocking;
mod oauth;
mod ports;
mod reset;
mod service;
mod session;
mod signing_key;
mod throttle;
mod token;
mod user;
mod values;

pub use clock::SystemClock;
pub use config::PolicyViolation;
pub use config::{AuthConfig, PasswordPolicy};
pub use error::{
    AuthenticateError, ClientAuthError, FieldError, InternalError, LoginError, LogoutError,
    RefreshError, RegisterClientError, RegisterError, RequestResetError, ResetPasswordError,
    ValidationErrors,
};
pub use event::{
    AuthEvent, Client, EventFilter, EventKind, EventOutcome, USER_AGENT_MAX_CHARS, identifier_hash,
};
pub use import::{
    AccountImport, ExistingAccounts, ImportError, ImportOptions, ImportRecord, ImportSummary,
    NO_PASSWORD, RecordOutcome,
};
pub use mail::{DeliveryRound, MailPolicy, OutboxEntry, OutboxStatus, QueuedMail};
pub use oauth::{ClientSecret, Introspection, RegisteredClient};
pub use ports::{
    AccountUpdate, ClientRepository, Clock, CompleteResetError, CompletedReset, CreateUserError,
    EndSessionError, EventRepository, HashError, HashScheme, ImportWriteError, MailError,
    MailOutbox, Mailer, PasswordHasher, PasswordVerdict, ResetTokenRepository, RotateError,
    SealError, SecretSealer, SessionRepository, SigningKeyRepository, StoreError, ThrottleRecord,
    ThrottleRepository, TokenCodec, TokenIssueError, TokenVerifyError, UserImportRepository,
    UserRepository,
};
pub use reset::{ResetSecret, ResetTokenHash};
pub use service::{
    AuthService, Authenticated, IssueOptions, IssuedResetSecret, Ports, Principal, RefreshGuard,
    Refreshed, Registration, UserClaims,
};
pub use session::{RefreshTokenRecord, ResetTokenRecord, RevocationReason, Session};
pub use signing_key::{KeyAlgorithm, PublishedKey, SigningKeyRecord};
pub use throttle::ThrottlePolicy;
pub use token::{Claims, IssuedToken, TokenKind, TokenPair};
pub use user::{NewUser, Profile, User};
pub use values::{
    Bio, ClientId, DisplayName, Email, LoginIdentifier, MailId, ParseError, Password, PasswordHash,
    SessionId, TokenId, UserId, Username,
};

#[cfg(feature = "mocks")]
pub use ports::{
    MockClientRepository, MockClock, MockEventRepository, MockMailOutbox, MockMailer,
    MockPasswordHasher, MockResetTokenRepository, MockSessionRepository, MockSigningKeyRepository,
    MockThrottleRepository, MockTokenCodec, MockUserImportRepository, MockUserRepository,
};

/// Compiles the README's Rust examples, so the README cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
