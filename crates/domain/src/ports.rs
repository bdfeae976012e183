//! The ports: every capability the domain needs from outside, in one place.
//!
//! Each method documents what an adapter MUST return in each case. The ports are
//! synchronous: the reference adapters (Diesel, argon2) block, and the HTTP layer runs
//! every use case on a blocking thread. An adapter MUST NOT panic on bad data it reads;
//! it reports [`StoreError`] instead.

use chrono::{DateTime, TimeDelta, Utc};

use crate::event::{AuthEvent, EventFilter};
use crate::mail::{OutboxStatus, QueuedMail};
use crate::oauth::RegisteredClient;
use crate::reset::{ResetSecret, ResetTokenHash};
use crate::session::{RefreshTokenRecord, ResetTokenRecord, RevocationReason, Session};
use crate::signing_key::{PublishedKey, SigningKeyRecord};
use crate::token::{Claims, TokenKind};
use crate::user::User;
use crate::values::{
    ClientId, Email, MailId, Password, PasswordHash, SessionId, TokenId, UserId, Username,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The storage behind a port failed: unreachable, timed out, a query or transaction
/// failed, or a stored row no longer parses. Never a client's mistake.
///
/// Every repository method's `StoreError` MUST be [`StoreError::unavailable`] when the
/// storage could not be reached in time (no connection could be checked out or opened
/// within the adapter's timeout, or the connection was lost before the outcome was
/// known), and [`StoreError::new`] for everything else. The distinction decides what a
/// client is told: an unavailable store is a temporary condition it may retry (HTTP 503
/// with `Retry-After`), any other failure is the server's fault (500). An adapter MUST
/// NOT wait without bound for an unreachable store.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", self.kind())]
pub struct StoreError {
    #[source]
    source: BoxError,
    unavailable: bool,
}

impl StoreError {
    /// Wraps the adapter's own error (or a message), kept as the source for logs.
    pub fn new(source: impl Into<BoxError>) -> Self {
        Self {
            source: source.into(),
            unavailable: false,
        }
    }

    /// The storage could not be reached in time; the operation may be retried later.
    /// Nothing was changed, or (a connection lost mid-commit) the adapter cannot know.
    pub fn unavailable(source: impl Into<BoxError>) -> Self {
        Self {
            source: source.into(),
            unavailable: true,
        }
    }

    /// Whether this is [`StoreError::unavailable`].
    pub fn is_unavailable(&self) -> bool {
        self.unavailable
    }

    fn kind(&self) -> &'static str {
        if self.unavailable {
            "storage unavailable"
        } else {
            "storage failure"
        }
    }
}

/// Why [`UserRepository::create`] refused.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    /// Another user has this email, compared case-insensitively.
    #[error("email already taken")]
    EmailTaken,
    /// Another user has this username, compared case-insensitively.
    #[error("username already taken")]
    UsernameTaken,
    /// Anything else, a clash of user ids included. Nothing was stored.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The account store.
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait UserRepository: Send + Sync {
    /// Inserts `user`, and stores `event` (its registration) in the same transaction:
    /// both or neither.
    ///
    /// MUST return [`CreateUserError::EmailTaken`] when another user has the same email
    /// (compared case-insensitively) and [`CreateUserError::UsernameTaken`] likewise for
    /// the username, also when a concurrent insert won the race (a unique-constraint
    /// violation), so that of two concurrent registrations exactly one succeeds.
    /// Anything else is [`CreateUserError::Store`].
    fn create(&self, user: &User, event: &AuthEvent) -> Result<(), CreateUserError>;

    /// MUST return `Ok(None)` when no user has this id.
    fn find_by_id(&self, id: UserId) -> Result<Option<User>, StoreError>;

    /// Looks up by email, case-insensitively. MUST return `Ok(None)` when none matches.
    fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreError>;

    /// Looks up by username, case-insensitively. MUST return `Ok(None)` when none matches.
    fn find_by_username(&self, username: &Username) -> Result<Option<User>, StoreError>;

    /// Replaces the stored hash of an unchanged password (a re-hash with current
    /// parameters) with `new`, only if the stored hash is still `verified` (a
    /// conditional update: a password changed meanwhile is never overwritten with the
    /// old one); `password_changed_at` and `credential_version` stay. MUST return
    /// `Ok(false)` when the user no longer exists or its hash is no longer `verified`,
    /// `Ok(true)` when updated.
    fn replace_password_hash(
        &self,
        id: UserId,
        verified: &PasswordHash,
        new: &PasswordHash,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}

/// Why [`UserImportRepository::write_import`] wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportWriteError {
    /// The accounts changed since they were read: a new one clashes with a stored
    /// email, username or id, or one to update was changed or deleted meanwhile.
    /// Nothing was written; reading again and planning anew resolves it.
    #[error("accounts changed while the import wrote them")]
    Changed,
    /// The storage failed. Nothing was written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A stored account's new state, written only over the state it was planned from.
#[derive(Clone, Debug, PartialEq)]
pub struct AccountUpdate {
    /// Every column as it is to be stored; its id names the account.
    pub user: User,
    /// The stored `updated_at` the update was planned from.
    pub read_updated_at: DateTime<Utc>,
}

/// Writes in bulk, for moving accounts in from another application.
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait UserImportRepository: Send + Sync {
    /// Every stored account whose email is one of `emails` or whose username is one of
    /// `usernames`, both compared case-insensitively; each account once, in any order.
    /// MUST return `Ok(vec![])` when none matches.
    fn find_accounts(
        &self,
        emails: &[Email],
        usernames: &[Username],
    ) -> Result<Vec<User>, StoreError>;

    /// In one transaction, all or nothing: inserts `created`, overwrites each of
    /// `updated` whose stored `updated_at` is still its `read_updated_at`, and stores
    /// `events`. MUST return [`ImportWriteError::Changed`], having written nothing,
    /// when an insert clashes with a stored email, username (case-insensitively) or id,
    /// or when an update finds its account changed or gone; anything else is
    /// [`ImportWriteError::Store`], nothing written.
    fn write_import(
        &self,
        created: &[User],
        updated: &[AccountUpdate],
        events: &[AuthEvent],
    ) -> Result<(), ImportWriteError>;
}

/// Why [`SessionRepository::rotate`] refused.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// No refresh token has this `jti` (never issued, or its session was deleted).
    #[error("unknown refresh token")]
    UnknownToken,
    /// The token was already used: a replay, taken as proof the family is stolen. The
    /// adapter has revoked the session with [`RevocationReason::RefreshReuse`] in the
    /// same transaction that detected it; nothing else changed.
    #[error("refresh token already used")]
    AlreadyUsed {
        /// The token's session.
        session: SessionId,
    },
    /// The token's session is revoked or past its absolute expiry. Nothing was changed.
    #[error("session no longer active")]
    SessionInactive,
    /// The token was rotated at most the grace period ago (parallel requests of one
    /// client racing to renew): not a replay. Nothing was changed; `successor` is the
    /// one token it was rotated into, so the caller can hand that out again.
    #[error("refresh token rotated moments ago")]
    RecentlyRotated {
        /// The token the presented one was rotated into.
        successor: RefreshTokenRecord,
    },
    /// The storage failed (storing the successor included). Nothing was changed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why [`SessionRepository::end_by_refresh_token`] refused.
#[derive(Debug, thiserror::Error)]
pub enum EndSessionError {
    /// No refresh token has this `jti`. Nothing was changed.
    #[error("unknown refresh token")]
    UnknownToken,
    /// The token was already used. The adapter has revoked the session with reason
    /// [`RevocationReason::RefreshReuse`], as a replayed token means a stolen family.
    #[error("refresh token already used")]
    AlreadyUsed,
    /// The session was already revoked or expired. Nothing was changed.
    #[error("session no longer active")]
    SessionInactive,
    /// The storage failed. Nothing was changed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Sessions and their refresh-token families.
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait SessionRepository: Send + Sync {
    /// Stores a new session together with its first refresh token and `event` (the
    /// login that started it) if any, atomically: all or nothing. Failures are
    /// [`StoreError`].
    // Named: mockall cannot mock an elided lifetime inside `Option`.
    #[allow(clippy::needless_lifetimes)]
    fn create<'a>(
        &self,
        session: &Session,
        first_token: &RefreshTokenRecord,
        event: Option<&'a AuthEvent>,
    ) -> Result<(), StoreError>;

    /// MUST return `Ok(None)` when no session has this id. Revoked and expired sessions
    /// are returned as they are; the caller judges them.
    fn find(&self, id: SessionId) -> Result<Option<Session>, StoreError>;

    /// The refresh token with this `jti`, spent or not; `Ok(None)` when none has it.
    fn refresh_token(&self, id: TokenId) -> Result<Option<RefreshTokenRecord>, StoreError>;

    /// Rotation, in one transaction: marks the token `presented` used at `now` and
    /// rotated into `successor`, stores `successor` (same session), sets the
    /// session's `last_refreshed_at` to `now` and stores `event`.
    ///
    /// Checked inside that transaction, in this order: the token exists, else
    /// [`RotateError::UnknownToken`]; the token is unused, else: if it was used less
    /// than `grace` before `now` (never, for a zero `grace`) and its session is active, [`RotateError::RecentlyRotated`]
    /// with the record of the token it was rotated into, nothing changed; otherwise (a
    /// replay) the session is revoked with [`RevocationReason::RefreshReuse`] and
    /// `event` stored with outcome [`crate::EventOutcome::ReuseDetected`], committed,
    /// and [`RotateError::AlreadyUsed`] returned; its session is active at
    /// `now` (not revoked, not past `expires_at`), else [`RotateError::SessionInactive`].
    /// Of concurrent calls with one token exactly one MUST succeed and every other MUST
    /// get `RecentlyRotated` (within `grace`) or `AlreadyUsed` (a conditional update on
    /// `used_at IS NULL`, not a read followed by a write; the losers judge the winner's
    /// committed `used_at`). A token has at most one successor. On any other error
    /// nothing changes.
    fn rotate(
        &self,
        presented: TokenId,
        successor: &RefreshTokenRecord,
        now: DateTime<Utc>,
        grace: TimeDelta,
        event: &AuthEvent,
    ) -> Result<(), RotateError>;

    /// Logout by refresh token, in one transaction: if the token is unknown,
    /// [`EndSessionError::UnknownToken`]; if its session is inactive at `now`,
    /// [`EndSessionError::SessionInactive`]; if the token was already used, revokes the
    /// session with [`RevocationReason::RefreshReuse`], stores `event` with outcome
    /// [`crate::EventOutcome::ReuseDetected`] and returns
    /// [`EndSessionError::AlreadyUsed`]; otherwise revokes it with `reason`, stores
    /// `event` and returns the session's id.
    fn end_by_refresh_token(
        &self,
        token: TokenId,
        reason: RevocationReason,
        now: DateTime<Utc>,
        event: &AuthEvent,
    ) -> Result<SessionId, EndSessionError>;

    /// Revokes one session. Idempotent: revoking a revoked session keeps its first
    /// time and reason and returns `Ok`. An unknown id is `Ok` too.
    fn revoke(
        &self,
        id: SessionId,
        reason: RevocationReason,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Revokes every active session of the user; returns how many it revoked.
    fn revoke_all_for_user(
        &self,
        user: UserId,
        reason: RevocationReason,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
}

/// Why [`ResetTokenRepository::complete_reset`] refused.
#[derive(Debug, thiserror::Error)]
pub enum CompleteResetError {
    /// Unknown, already used, or expired at `now`. Nothing was changed.
    #[error("invalid reset token")]
    InvalidToken,
    /// The storage failed. Nothing was changed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Password-reset tokens, stored by hash only.
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait ResetTokenRepository: Send + Sync {
    /// Stores `token`, `event` (the request) and, if any, `mail` (the message carrying
    /// the link, into the outbox, due at once), in one transaction. Outstanding (unused)
    /// tokens of the same user MUST stop working in the same transaction, so only the
    /// newest link sent is live.
    // Named: mockall cannot mock an elided lifetime inside `Option`.
    #[allow(clippy::needless_lifetimes)]
    fn create<'a>(
        &self,
        token: &ResetTokenRecord,
        event: &AuthEvent,
        mail: Option<&'a QueuedMail>,
    ) -> Result<(), StoreError>;

    /// The token with this hash if it is unused and unexpired at `now`, else `Ok(None)`.
    fn find_valid(
        &self,
        hash: &ResetTokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<ResetTokenRecord>, StoreError>;

    /// The whole reset, in one transaction: marks the token used (a conditional update,
    /// so of two concurrent calls one wins and the other gets
    /// [`CompleteResetError::InvalidToken`]), sets the user's password hash,
    /// `password_changed_at = now`, adds one to its `credential_version`, clears
    /// `must_change_password`, and revokes every
    /// active session of the user with [`RevocationReason::PasswordReset`], and stores
    /// `event`. Returns the user's id and how many sessions it revoked. On any error
    /// nothing changes.
    fn complete_reset(
        &self,
        hash: &ResetTokenHash,
        new_password_hash: &PasswordHash,
        now: DateTime<Utc>,
        event: &AuthEvent,
    ) -> Result<CompletedReset, CompleteResetError>;
}

/// What [`ResetTokenRepository::complete_reset`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompletedReset {
    /// Whose password it set.
    pub user: UserId,
    /// How many of the user's active sessions it revoked.
    pub sessions_revoked: u64,
}

/// The password hasher failed, or refused to queue the work.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The hasher is at capacity: every hashing thread is busy and its bounded queue is
    /// full. Returned at once, without hashing and without waiting; the caller may
    /// retry later (HTTP 503 with `Retry-After`).
    #[error("password hasher busy")]
    Busy,
    /// Anything else: a stored hash it cannot read, bad parameters, no randomness for a
    /// salt, a hashing thread that stopped.
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// The outcome of checking a password against a stored hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordVerdict {
    /// The password matches, and the hash has the hasher's current parameters.
    Valid,
    /// Valid, but hashed with other parameters than the hasher's current ones.
    ValidNeedsRehash,
    /// The password does not match.
    Invalid,
}

/// What a hasher makes of a stored hash, read without a password
/// ([`PasswordHasher::scheme`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashScheme {
    /// The format's name as reports show it, e.g. `argon2id`, `bcrypt`.
    pub name: &'static str,
    /// Whether it is the hasher's own format with its current parameters: a login
    /// with it is [`PasswordVerdict::Valid`], never re-hashed.
    pub current: bool,
}

/// One-way password hashing.
///
/// Hashing is the costliest thing a request can ask for, so an adapter that bounds it
/// (a fixed number of hashing threads with a bounded queue in front) MUST return
/// [`HashError::Busy`] at once, without hashing, when it cannot take the work, rather
/// than wait without bound; a caller waiting for a queued hash waits at most for the
/// hashes ahead of it.
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait PasswordHasher: Send + Sync {
    /// Whether a hash asked for now would get [`HashError::Busy`]: a hint (another
    /// caller may take or free the capacity a moment later), so that callers can refuse
    /// the surplus before doing any other work. An unbounded hasher is never busy.
    fn is_busy(&self) -> bool;

    /// Hashes with a fresh salt and the current parameters. [`HashError::Busy`] when at
    /// capacity.
    fn hash(&self, password: &Password) -> Result<PasswordHash, HashError>;

    /// MUST return `Invalid` for a wrong password, [`HashError::Busy`] when at capacity
    /// and [`HashError::Failed`] only when `hash` cannot be read or hashing itself
    /// failed. Comparison MUST be constant-time.
    fn verify(
        &self,
        password: &Password,
        hash: &PasswordHash,
    ) -> Result<PasswordVerdict, HashError>;

    /// The scheme of a stored `hash`, read without hashing. MUST return `None` exactly
    /// when [`verify`](Self::verify) would fail on it with [`HashError::Failed`] for
    /// any password: an unknown format, a damaged hash, parameters out of range
    /// ([`PasswordHash::unusable`] included). Cheap and never busy: an import checks
    /// every record with it.
    fn scheme(&self, hash: &PasswordHash) -> Option<HashScheme>;
}

/// Encoding a token failed (a key problem: never the client's fault).
#[derive(Debug, thiserror::Error)]
#[error("token encoding failed: {0}")]
pub struct TokenIssueError(pub String);

/// Why a presented token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenVerifyError {
    /// Well-formed and correctly signed for this issuer, audience and kind, but past its
    /// expiry. The claims are carried because a signed claim set is still evidence of
    /// which session it belonged to.
    #[error("token expired")]
    Expired(Box<Claims>),
    /// Anything else: malformed, bad signature, wrong algorithm, issuer, audience or
    /// kind (a refresh token presented as an access token), missing claims.
    #[error("token invalid")]
    Invalid,
}

/// Signs and checks tokens.
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait TokenCodec: Send + Sync {
    /// Encodes `claims`, adding the codec's issuer and audience.
    fn issue(&self, claims: &Claims) -> Result<String, TokenIssueError>;

    /// Verifies `token` as a token of `kind`, judging expiry against `now` (with the
    /// codec's small leeway), and returns its claims. See [`TokenVerifyError`].
    fn verify(
        &self,
        token: &str,
        kind: TokenKind,
        now: DateTime<Utc>,
    ) -> Result<Claims, TokenVerifyError>;

    /// The public keys that may still verify a token this codec issued and that has not
    /// expired as of `now`, for publication (a JWKS), so other services can verify
    /// tokens without being able to mint them.
    ///
    /// MUST NOT contain a symmetric key (HS256) or any private material. MAY be empty
    /// (a codec with only symmetric keys). A key that [`TokenCodec::verify`] would no
    /// longer accept MUST NOT be listed. Never fails: an adapter that cannot refresh
    /// its keys answers from what it last knew.
    fn published_keys(&self, now: DateTime<Utc>) -> Vec<PublishedKey> {
        let _ = now;
        Vec::new()
    }
}

/// Where token-signing keys are kept, shared by every instance. Used by the token
/// adapter (not by the use cases): it seals private keys before they get here, so an
/// adapter stores and returns the bytes it is given and never sees a usable key.
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait SigningKeyRepository: Send + Sync {
    /// Every key, retired ones included, oldest first (by `created_at`, then `kid`).
    fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError>;

    /// The key `kid`, if stored (retired or not).
    fn find_signing_key(&self, kid: &str) -> Result<Option<SigningKeyRecord>, StoreError>;

    /// Stores `key`. When `only_if_none_active`, stores it only if no stored key is
    /// active (activated and not retired), and says whether it did: of instances
    /// starting together on an empty store exactly one stores its first key. MUST be
    /// atomic with respect to concurrent calls; a clash of `kid`s is a [`StoreError`].
    fn insert_signing_key(
        &self,
        key: &SigningKeyRecord,
        only_if_none_active: bool,
    ) -> Result<bool, StoreError>;

    /// Sets `retired_at` of the key `kid` to `at` unless it is already retired; says
    /// whether it changed a key (false: no such key, or retired already, whose first
    /// retirement time is kept).
    fn retire_signing_key(&self, kid: &str, at: DateTime<Utc>) -> Result<bool, StoreError>;
}

/// The time. Tests control it; production reads the system clock.
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait Clock: Send + Sync {
    /// The current instant. MUST have at most microsecond precision, what PostgreSQL
    /// keeps, so that an instant stored reads back equal to the one written.
    fn now(&self) -> DateTime<Utc>;
}

/// Delivering a message failed.
#[derive(Debug, thiserror::Error)]
#[error("mail delivery failed: {0}")]
pub struct MailError(pub String);

/// Outgoing mail.
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait Mailer: Send + Sync {
    /// Delivers a password-reset secret to `to`. A failure is reported, never retried
    /// here; the caller decides what the client sees.
    fn send_password_reset(
        &self,
        to: &Email,
        secret: &ResetSecret,
        expires_at: DateTime<Utc>,
    ) -> Result<(), MailError>;
}

/// A throttle's counter: how many events in its current window, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottleRecord {
    /// Events counted since `window_started_at`.
    pub count: i64,
    /// When the current window began: the first event after the previous one ended.
    pub window_started_at: DateTime<Utc>,
    /// The latest event.
    pub last_at: DateTime<Utc>,
}

/// Counters of failed logins, registrations and reset requests, per account, login name
/// and client address, shared by every instance (so the limits hold across a fleet).
/// Keys are opaque strings the domain builds; they never hold a password or a token.
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait ThrottleRepository: Send + Sync {
    /// The counter of `key`; `Ok(None)` when there is none.
    fn get(&self, key: &str) -> Result<Option<ThrottleRecord>, StoreError>;

    /// Counts one event at `now`, atomically (concurrent hits MUST all count): a
    /// counter that does not exist, or whose window began at or before `now - window`,
    /// restarts at 1 with its window beginning at `now`; otherwise its count goes up by
    /// one. `last_at` becomes `now`. Returns the counter after the hit.
    fn hit(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: TimeDelta,
    ) -> Result<ThrottleRecord, StoreError>;

    /// Counts one event at `now`, as [`ThrottleRepository::hit`] does, only if the
    /// counter is still `seen` (`None`: there is none): a compare-and-set on `count`,
    /// `window_started_at` and `last_at`, atomic. Returns the counter after the event,
    /// or `Ok(None)` when it had changed since `seen` and nothing was counted.
    fn claim(
        &self,
        key: &str,
        seen: Option<ThrottleRecord>,
        now: DateTime<Utc>,
        window: TimeDelta,
    ) -> Result<Option<ThrottleRecord>, StoreError>;

    /// Takes back one counted event whose attempt turned out not to count (a login
    /// that succeeded, a registration that was refused): the count goes down by one,
    /// never below zero; the window and `last_at` stay. A missing counter is `Ok(())`.
    fn release(&self, key: &str) -> Result<(), StoreError>;

    /// Removes the counter of `key` (a success ends a run of failures). Removing one
    /// that does not exist is `Ok(())`.
    fn clear(&self, key: &str) -> Result<(), StoreError>;
}

/// The security event log. Events that go with a change are stored by the repository
/// method that makes it, in the same transaction; this port stores the others (failed
/// and throttled attempts) and reads them back.
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait EventRepository: Send + Sync {
    /// Stores `event`.
    fn record(&self, event: &AuthEvent) -> Result<(), StoreError>;

    /// The events `filter` selects, newest first (by `at`; of events at one instant,
    /// the later stored first), at most `filter.limit`.
    fn list(&self, filter: &EventFilter) -> Result<Vec<AuthEvent>, StoreError>;
}

/// The mail outbox's delivery side (messages enter it with their reset token: see
/// [`ResetTokenRepository::create`]). Several senders (instances) may work on one
/// outbox: a message is leased to one of them at a time.
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait MailOutbox: Send + Sync {
    /// Leases up to `limit` pending messages whose next attempt is due at `now`
    /// (oldest first): atomically, each one's next attempt moves to `now + lease` and
    /// its attempts go up by one, so no other caller gets it before the lease ends.
    /// Returns them with their attempts after the increment. Given-up messages are
    /// never returned.
    fn lease_due(
        &self,
        now: DateTime<Utc>,
        lease: TimeDelta,
        limit: u32,
    ) -> Result<Vec<QueuedMail>, StoreError>;

    /// The message was delivered: removes it, secret and all. An unknown id is `Ok`.
    fn delivered(&self, id: MailId) -> Result<(), StoreError>;

    /// The attempt failed with `error`: the next one is due at `retry_at`.
    fn retry_at(&self, id: MailId, retry_at: DateTime<Utc>, error: &str) -> Result<(), StoreError>;

    /// Gives the message up at `now` with `error`: it is never leased again and its
    /// secret is erased; it stays listed as failed.
    fn give_up(&self, id: MailId, now: DateTime<Utc>, error: &str) -> Result<(), StoreError>;

    /// Pending and failed messages, oldest first, without secrets.
    fn status(&self) -> Result<OutboxStatus, StoreError>;
}

/// The API clients allowed to introspect and revoke tokens.
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait ClientRepository: Send + Sync {
    /// Stores `client`. A clash of ids is [`StoreError`].
    fn create_client(&self, client: &RegisteredClient) -> Result<(), StoreError>;

    /// MUST return `Ok(None)` when no client has this id.
    fn find_client(&self, id: ClientId) -> Result<Option<RegisteredClient>, StoreError>;

    /// Every client, oldest first.
    fn list_clients(&self) -> Result<Vec<RegisteredClient>, StoreError>;

    /// Removes the client; whether there was one.
    fn delete_client(&self, id: ClientId) -> Result<bool, StoreError>;
}

/// Sealing failed, or sealed bytes did not open (another key sealed them, or they were
/// altered).
#[derive(Debug, thiserror::Error)]
#[error("sealed secret: {0}")]
pub struct SealError(pub String);

/// Seals a secret that storage must hold for a while (a queued message's reset secret)
/// so that a copy of the database does not yield it.
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait SecretSealer: Send + Sync {
    /// `secret` encrypted and authenticated, bound to `context` (e.g. the row's id, so
    /// sealed values cannot be swapped between rows).
    fn seal(&self, context: &str, secret: &str) -> Result<Vec<u8>, SealError>;

    /// What [`SecretSealer::seal`] sealed with this `context`; MUST fail for anything
    /// else.
    fn open(&self, context: &str, sealed: &[u8]) -> Result<String, SealError>;
}
