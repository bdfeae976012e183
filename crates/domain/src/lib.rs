//! Portcullis's authentication domain.
//!
//! Users, credentials, sessions and the token lifecycle, written against the port
//! traits in [`ports`]. The crate does no I/O of its own: storage, hashing, token
//! encoding, time and mail are adapters handed in through [`Ports`]. Every use case
//! is a synchronous method of [`AuthService`]; adapters are expected to block (Diesel,
//! argon2), so async callers run them on a blocking thread.
//!
//! With the `mocks` feature every port has a mockall mock (`MockUserRepository`, ...)
//! for unit tests of code that embeds the domain.

pub mod clock;
pub mod config;
pub mod error;
pub mod ports;
pub mod service;
pub mod session;
pub mod token;
pub mod user;
pub mod values;

pub use clock::SystemClock;
pub use config::PolicyViolation;
pub use config::{AuthConfig, PasswordPolicy};
pub use error::{
    AuthenticateError, FieldError, Internal, LoginError, LogoutError, RefreshError, RegisterError,
    RequestResetError, ResetPasswordError, ValidationErrors,
};
pub use ports::{
    Clock, CompleteResetError, CreateUserError, EndSessionError, HashError, MailError, Mailer,
    PasswordHasher, PasswordVerdict, ResetTokenRepository, RotateError, SessionRepository,
    StoreError, TokenCodec, TokenIssueError, TokenVerifyError, UserRepository,
};
pub use service::{
    AuthService, Authenticated, IssueOptions, Ports, Principal, Refreshed, Registration, UserClaims,
};
pub use session::{RefreshTokenRecord, ResetTokenRecord, RevocationReason, Session};
pub use token::{Claims, IssuedToken, ResetSecret, TokenKind, TokenPair};
pub use user::{NewUser, Profile, User};
pub use values::{
    Bio, DisplayName, Email, LoginIdentifier, Password, PasswordHash, ResetTokenHash, SessionId,
    TokenId, UserId, Username,
};

#[cfg(feature = "mocks")]
pub use ports::{
    MockClock, MockMailer, MockPasswordHasher, MockResetTokenRepository, MockSessionRepository,
    MockTokenCodec, MockUserRepository,
};
