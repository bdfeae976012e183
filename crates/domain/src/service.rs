//! The use cases.

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use serde_json::{Map, Value};

use crate::config::AuthConfig;
use crate::error::{
    AuthenticateError, ClientAuthError, FieldError, InternalError, LoginError, LogoutError,
    RefreshError, RegisterClientError, RegisterError, RequestResetError, ResetPasswordError,
    ValidationErrors,
};
use crate::event::{AuthEvent, Client, EventKind, EventOutcome};
use crate::mail::{DeliveryRound, QueuedMail};
use crate::oauth::{self, ClientSecret, Introspection, RegisteredClient};
use crate::ports::{
    ClientRepository, Clock, CompleteResetError, CreateUserError, EndSessionError, EventRepository,
    MailOutbox, Mailer, PasswordHasher, PasswordVerdict, ResetTokenRepository, RotateError,
    SessionRepository, StoreError, ThrottleRepository, TokenCodec, TokenVerifyError,
    UserRepository,
};
use crate::reset::{ResetSecret, ResetTokenHash};
use crate::session::{RefreshTokenRecord, ResetTokenRecord, RevocationReason, Session};
use crate::signing_key::PublishedKey;
use crate::throttle;
use crate::token::{Claims, IssuedToken, TokenKind, TokenPair};
use crate::user::{NewUser, Profile, User};
use crate::values::{
    Bio, ClientId, DisplayName, Email, LoginIdentifier, MailId, Password, PasswordHash, SessionId,
    TokenId, UserId, Username,
};

/// A reset secret just stored for an account, to be delivered to its owner.
#[derive(Debug)]
pub struct IssuedResetSecret {
    /// The secret itself; only its hash is stored.
    pub secret: ResetSecret,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// The adapters a service runs on.
#[derive(Clone)]
pub struct Ports {
    /// The accounts.
    pub users: Arc<dyn UserRepository>,
    /// Sessions and their refresh tokens.
    pub sessions: Arc<dyn SessionRepository>,
    /// Password-reset tokens.
    pub reset_tokens: Arc<dyn ResetTokenRepository>,
    /// Password hashing (argon2id in Portcullis).
    pub hasher: Arc<dyn PasswordHasher>,
    /// Access- and refresh-token encoding (HS256 JWTs in Portcullis).
    pub tokens: Arc<dyn TokenCodec>,
    /// The time every use case judges by.
    pub clock: Arc<dyn Clock>,
    /// Delivers the outbox's messages ([`AuthService::deliver_mail`]).
    pub mailer: Arc<dyn Mailer>,
    /// The outbox's delivery side.
    pub outbox: Arc<dyn MailOutbox>,
    /// The throttles' counters, shared by every instance.
    pub throttles: Arc<dyn ThrottleRepository>,
    /// The security event log (failed and throttled attempts; the others are stored by
    /// the repository that makes the change).
    pub events: Arc<dyn EventRepository>,
    /// The API clients that may introspect and revoke tokens.
    pub clients: Arc<dyn ClientRepository>,
}

/// A registration as a client typed it; [`AuthService::register`] parses it.
#[derive(Clone, Copy, Debug)]
pub struct Registration<'a> {
    /// The display name, as typed (see [`DisplayName`]).
    pub name: &'a str,
    /// A biography, if the form has one (see [`Bio`]).
    pub bio: Option<&'a str>,
    /// The email address, as typed (see [`Email`]), if the form has one. A form
    /// without one must have a username.
    pub email: Option<&'a str>,
    /// A username, if the form has one (see [`Username`]).
    pub username: Option<&'a str>,
    /// The password; checked against the policy.
    pub password: &'a Password,
    /// The repeated password, where the form asks for one.
    pub confirm: Option<&'a Password>,
}

/// Computes claims from the user once known (e.g. a `username` claim).
pub type UserClaims = fn(&User) -> Map<String, Value>;

/// How the tokens of a new session are shaped, for dialects whose clients expect it.
#[derive(Clone, Debug, Default)]
pub struct IssueOptions {
    /// Overrides [`AuthConfig::access_ttl`] for this session's first access token.
    pub access_ttl: Option<TimeDelta>,
    /// Claims added to both tokens, carried over by every rotation.
    pub extra_claims: Map<String, Value>,
    /// Claims computed from the user once known, added to (and overriding)
    /// `extra_claims`.
    pub user_claims: Option<UserClaims>,
}

/// A new session: the user, its id and the first token pair.
#[derive(Clone, Debug)]
pub struct Authenticated {
    /// The account, as stored.
    pub user: User,
    /// The new session.
    pub session_id: SessionId,
    /// Its first access and refresh tokens.
    pub tokens: TokenPair,
}

/// Who an access token speaks for.
#[derive(Clone, Debug)]
pub struct Principal {
    /// The account, as stored now.
    pub user: User,
    /// The token's session, active when checked.
    pub session: Session,
    /// The access token's verified claims.
    pub claims: Claims,
}

/// Conditions a refresh must meet before the presented token is spent. A failed
/// condition is [`RefreshError::Invalid`] and changes nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct RefreshGuard<'a> {
    /// The account the client says it is (an email or a username): the refresh token
    /// must be that account's.
    pub account: Option<&'a str>,
    /// An access token sent along: it must be correctly signed (it may have expired)
    /// and belong to the refresh token's session.
    pub access_token: Option<&'a str>,
}

/// A rotated pair and whose it is.
#[derive(Clone, Debug)]
pub struct Refreshed {
    /// Whose session it is.
    pub user_id: UserId,
    /// The session, the same before and after rotation.
    pub session_id: SessionId,
    /// The new pair; the presented refresh token is spent.
    pub tokens: TokenPair,
    /// Whether the presented token had been rotated moments before (within the grace
    /// period) and this is the successor handed out again, not a new rotation.
    pub within_grace: bool,
}

/// Every use case of the domain, over the [`Ports`].
pub struct AuthService {
    ports: Ports,
    config: AuthConfig,
    /// Verified against when the account does not exist, so that a login for an unknown
    /// account costs what a wrong password costs. Made on first need, with the hasher's
    /// current parameters.
    dummy_hash: OnceLock<PasswordHash>,
}

impl AuthService {
    /// A service on `ports` with `config`. Nothing is called until a use case runs;
    /// one service serves any number of threads.
    pub fn new(ports: Ports, config: AuthConfig) -> Self {
        Self {
            ports,
            config,
            dummy_hash: OnceLock::new(),
        }
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// The public keys that may still verify a live token, for a JWKS
    /// ([`TokenCodec::published_keys`]). May block (the codec may refresh its keys).
    pub fn published_keys(&self) -> Vec<PublishedKey> {
        self.ports.tokens.published_keys(self.now())
    }

    /// [`HashError::Busy`](crate::HashError::Busy) (as an [`InternalError`]) when the
    /// password hasher is at capacity right now. A caller about to run a use case that
    /// hashes (login, registration, reset) can refuse the surplus this way at no cost,
    /// before any storage work; the use case itself still gets `Busy` if capacity runs
    /// out meanwhile.
    pub fn ensure_hashing_capacity(&self) -> Result<(), InternalError> {
        if self.ports.hasher.is_busy() {
            return Err(crate::ports::HashError::Busy.into());
        }
        Ok(())
    }

    /// The current time by the ports' clock: the instant use cases judge by.
    pub fn now(&self) -> DateTime<Utc> {
        self.ports.clock.now()
    }

    /// Self-registration: creates the account and its first session. From an unknown
    /// client, so no per-address limit applies: see [`AuthService::register_from`].
    pub fn register(
        &self,
        form: Registration<'_>,
        options: &IssueOptions,
    ) -> Result<Authenticated, RegisterError> {
        self.register_from(&Client::default(), form, options)
    }

    /// [`AuthService::register`] for a client at `client`: at most
    /// [`crate::ThrottlePolicy::ip_registrations`] accounts per address per hour, refused
    /// before any hashing.
    pub fn register_from(
        &self,
        client: &Client,
        form: Registration<'_>,
        options: &IssueOptions,
    ) -> Result<Authenticated, RegisterError> {
        let policy = &self.config.throttle;
        let throttles = &*self.ports.throttles;
        let now = self.now();
        let client_key = client.ip().map(|ip| throttle::ip_key("register", ip));
        if let Some(key) = &client_key
            && let Err(retry_after) = throttle::count_within(
                throttles,
                key,
                policy.ip_registrations,
                throttle::HOUR,
                now,
            )?
        {
            self.record(AuthEvent::new(
                EventKind::Registration,
                EventOutcome::Throttled,
                now,
                client,
            ))?;
            return Err(RegisterError::Throttled { retry_after });
        }
        // Counted before the work, so parallel registrations cannot all pass the limit;
        // one that creates no account is taken back.
        let created = self.create_registered(client, form);
        if created.is_err()
            && let Some(key) = &client_key
        {
            throttles.release(key)?;
        }
        let user = created?;
        let (session_id, tokens) = self.start_session(&user, options, self.now(), None)?;
        Ok(Authenticated {
            user,
            session_id,
            tokens,
        })
    }

    /// The account a registration form describes, stored.
    fn create_registered(
        &self,
        client: &Client,
        form: Registration<'_>,
    ) -> Result<User, RegisterError> {
        let new = self
            .parse_registration(form)
            .map_err(RegisterError::Invalid)?;
        // Saves an argon2 run for the common case; the unique index decides under a race.
        if let Some(email) = &new.email
            && self.ports.users.find_by_email(email)?.is_some()
        {
            return Err(RegisterError::EmailTaken);
        }
        if let Some(username) = &new.username
            && self.ports.users.find_by_username(username)?.is_some()
        {
            return Err(RegisterError::UsernameTaken);
        }
        self.insert_user(client, new, form.password)
    }

    /// Creates an account without a session (operators, imports). The password must
    /// meet the policy. Recorded as a registration from no client.
    pub fn create_user(&self, new: NewUser, password: &Password) -> Result<User, RegisterError> {
        self.config
            .password_policy
            .check(password, new.email.as_ref(), new.username.as_ref())
            .map_err(|v| {
                RegisterError::Invalid(ValidationErrors::single("password", v.to_string()))
            })?;
        self.insert_user(&Client::default(), new, password)
    }

    /// Password login by email or username, throttled per account only: see
    /// [`AuthService::login_from`].
    pub fn login(
        &self,
        identifier: &str,
        password: &Password,
        options: &IssueOptions,
    ) -> Result<Authenticated, LoginError> {
        self.login_from(&Client::default(), identifier, password, options)
    }

    /// Password login by email or username for a client at `client`.
    ///
    /// Throttled before any password is verified, even a right one: an account (or a
    /// login name no account has) past [`crate::ThrottlePolicy::free_failures`] consecutive
    /// failures waits a delay that doubles with each further failure; a client address
    /// with [`crate::ThrottlePolicy::ip_failures`] failures in [`crate::ThrottlePolicy::ip_window`]
    /// waits for the window to end. A success clears the account's failures.
    pub fn login_from(
        &self,
        client: &Client,
        identifier: &str,
        password: &Password,
        options: &IssueOptions,
    ) -> Result<Authenticated, LoginError> {
        let now = self.now();
        let event = |outcome, account: Option<UserId>| {
            AuthEvent::new(EventKind::Login, outcome, now, client).for_account(account, identifier)
        };
        // No stored password can be this long; refusing here bounds the hashing work a
        // client can ask for.
        if password.char_count() > self.config.password_policy.max_chars {
            self.record(event(EventOutcome::Failure, None))?;
            return Err(LoginError::InvalidCredentials);
        }
        let policy = &self.config.throttle;
        let throttles = &*self.ports.throttles;
        // Both counters count the attempt before its password is verified, so parallel
        // guesses cannot all slip under a limit; a success (or an attempt never judged)
        // is taken back.
        let client_key = client.ip().map(|ip| throttle::ip_key("login", ip));
        if let Some(key) = &client_key
            && let Err(retry_after) =
                throttle::count_within(throttles, key, policy.ip_failures, policy.ip_window, now)?
        {
            self.record(event(EventOutcome::Throttled, None))?;
            return Err(LoginError::Throttled { retry_after });
        }
        let release_client = || match &client_key {
            Some(key) => throttles.release(key),
            None => Ok(()),
        };
        let account = self.find_account(identifier)?;
        let account_id = account.as_ref().map(|u| u.id);
        let account_key = throttle::login_key(account_id, identifier);
        if let Err(retry_after) = throttle::admit_attempt(throttles, policy, &account_key, now)? {
            release_client()?;
            self.record(event(EventOutcome::Throttled, account_id))?;
            return Err(LoginError::Throttled { retry_after });
        }
        let verdict = match &account {
            Some(user) if !user.password_hash.is_unusable() => self
                .ports
                .hasher
                .verify(password, &user.password_hash)
                .map_err(InternalError::from),
            // No account, or one without a password: the same work as a real check, so
            // neither can be told from a wrong password, by the answer or by its time.
            _ => self
                .dummy_hash()
                .and_then(|dummy| Ok(self.ports.hasher.verify(password, dummy)?))
                .map(|_| PasswordVerdict::Invalid),
        };
        let verdict = match verdict {
            Ok(verdict) => verdict,
            // Not judged (the hasher is busy): not a failure of the client's.
            Err(error) => {
                throttles.release(&account_key)?;
                release_client()?;
                return Err(error.into());
            }
        };
        let user = match (account, verdict) {
            (Some(user), PasswordVerdict::Valid | PasswordVerdict::ValidNeedsRehash) => user,
            _ => {
                self.record(event(EventOutcome::Failure, account_id))?;
                return Err(LoginError::InvalidCredentials);
            }
        };
        throttles.clear(&account_key)?;
        release_client()?;
        if verdict == PasswordVerdict::ValidNeedsRehash {
            self.rehash(&user, password);
        }
        let now = self.now();
        let success =
            AuthEvent::new(EventKind::Login, EventOutcome::Success, now, client).for_user(user.id);
        let (session_id, tokens) = self.start_session(&user, options, now, Some(success))?;
        Ok(Authenticated {
            user,
            session_id,
            tokens,
        })
    }

    /// Checks an access token and that its session is still live.
    pub fn authenticate(&self, access_token: &str) -> Result<Principal, AuthenticateError> {
        let now = self.now();
        let claims = self
            .ports
            .tokens
            .verify(access_token, TokenKind::Access, now)
            .map_err(|e| match e {
                TokenVerifyError::Expired(_) => AuthenticateError::Expired,
                TokenVerifyError::Invalid => AuthenticateError::Invalid,
            })?;
        let session = self
            .ports
            .sessions
            .find(claims.session)?
            .filter(|s| s.is_active(now))
            .ok_or(AuthenticateError::SessionInactive)?;
        if session.user_id != claims.subject {
            return Err(AuthenticateError::Invalid);
        }
        let user = self
            .ports
            .users
            .find_by_id(claims.subject)?
            .ok_or(AuthenticateError::UserGone)?;
        if user.credential_version != session.credential_version {
            return Err(AuthenticateError::SessionInactive);
        }
        Ok(Principal {
            user,
            session,
            claims,
        })
    }

    /// Rotation: the presented refresh token is spent and a new pair issued in the same
    /// session. A spent token presented again revokes the whole session.
    pub fn refresh(&self, refresh_token: &str) -> Result<Refreshed, RefreshError> {
        self.refresh_from(&Client::default(), refresh_token, RefreshGuard::default())
    }

    /// [`AuthService::refresh`] for `client`, once `guard`'s conditions hold.
    pub fn refresh_from(
        &self,
        client: &Client,
        refresh_token: &str,
        guard: RefreshGuard<'_>,
    ) -> Result<Refreshed, RefreshError> {
        let now = self.now();
        let claims = self
            .ports
            .tokens
            .verify(refresh_token, TokenKind::Refresh, now)
            .map_err(|e| match e {
                TokenVerifyError::Expired(_) => RefreshError::Expired,
                TokenVerifyError::Invalid => RefreshError::Invalid,
            })?;
        let session = self
            .ports
            .sessions
            .find(claims.session)?
            .ok_or(RefreshError::Invalid)?;
        if session.user_id != claims.subject {
            return Err(RefreshError::Invalid);
        }
        if let Some(access_token) = guard.access_token {
            let access = match self
                .ports
                .tokens
                .verify(access_token, TokenKind::Access, now)
            {
                Ok(access) => access,
                Err(TokenVerifyError::Expired(access)) => *access,
                Err(TokenVerifyError::Invalid) => return Err(RefreshError::Invalid),
            };
            if access.session != claims.session {
                return Err(RefreshError::Invalid);
            }
        }
        if let Some(account) = guard.account {
            let owner = self.find_account(account)?;
            if owner.is_none_or(|user| user.id != claims.subject) {
                return Err(RefreshError::Invalid);
            }
        }
        if !session.is_active(now) || !self.credentials_current(&session)? {
            return Err(RefreshError::SessionInactive);
        }
        // Encoded before the rotation commits, so a signing failure cannot spend the token.
        let (tokens, record) =
            self.issue_pair(&session, claims.extra.clone(), self.config.access_ttl, now)?;
        let refreshed = |tokens, within_grace| Refreshed {
            user_id: session.user_id,
            session_id: session.id,
            tokens,
            within_grace,
        };
        let event = AuthEvent::new(EventKind::Refresh, EventOutcome::Success, now, client)
            .for_user(session.user_id)
            .in_session(session.id);
        match self.ports.sessions.rotate(
            claims.token_id,
            &record,
            now,
            self.config.refresh_grace,
            &event,
        ) {
            Ok(()) => {
                event.trace();
                Ok(refreshed(tokens, false))
            }
            Err(RotateError::RecentlyRotated { successor }) => {
                // The identical successor string (a token is a pure function of its
                // claims and the key), so parallel renewals converge on one family
                // member, with a fresh access token beside it.
                let refresh = IssuedToken {
                    token: self.ports.tokens.issue(&Claims {
                        subject: session.user_id,
                        session: session.id,
                        token_id: successor.id,
                        kind: TokenKind::Refresh,
                        issued_at: successor.issued_at.trunc_subsecs(0),
                        expires_at: successor.expires_at,
                        extra: claims.extra.clone(),
                    })?,
                    expires_at: successor.expires_at,
                };
                Ok(refreshed(
                    TokenPair {
                        access: tokens.access,
                        refresh,
                    },
                    true,
                ))
            }
            Err(RotateError::UnknownToken) => Err(RefreshError::Invalid),
            Err(RotateError::SessionInactive) => Err(RefreshError::SessionInactive),
            Err(RotateError::AlreadyUsed { .. }) => {
                // The adapter revoked the session and stored the event in the
                // transaction that saw the replay.
                event.with_outcome(EventOutcome::ReuseDetected).trace();
                Err(RefreshError::Reused)
            }
            Err(RotateError::Store(e)) => Err(e.into()),
        }
    }

    /// Ends the refresh token's session; its access tokens stop working at once.
    pub fn logout(&self, refresh_token: &str) -> Result<(), LogoutError> {
        self.logout_from(&Client::default(), refresh_token)
    }

    /// [`AuthService::logout`] for `client`.
    pub fn logout_from(&self, client: &Client, refresh_token: &str) -> Result<(), LogoutError> {
        let now = self.now();
        let claims = self
            .ports
            .tokens
            .verify(refresh_token, TokenKind::Refresh, now)
            .map_err(|_| LogoutError::InvalidToken)?;
        // A session made under credentials changed since is dead already.
        let current = match self.ports.sessions.find(claims.session)? {
            Some(session) if session.user_id == claims.subject => {
                self.credentials_current(&session)?
            }
            _ => false,
        };
        if !current {
            return Err(LogoutError::InvalidToken);
        }
        let event = AuthEvent::new(EventKind::Logout, EventOutcome::Success, now, client)
            .for_user(claims.subject)
            .in_session(claims.session);
        match self.ports.sessions.end_by_refresh_token(
            claims.token_id,
            RevocationReason::Logout,
            now,
            &event,
        ) {
            Ok(_) => {
                event.trace();
                Ok(())
            }
            Err(EndSessionError::Store(e)) => Err(e.into()),
            Err(EndSessionError::AlreadyUsed) => {
                event.with_outcome(EventOutcome::ReuseDetected).trace();
                Err(LogoutError::Reused)
            }
            Err(EndSessionError::UnknownToken | EndSessionError::SessionInactive) => {
                Err(LogoutError::InvalidToken)
            }
        }
    }

    /// Queues a reset link for the account's address, if the account exists, in the
    /// transaction that stores its token ([`AuthService::deliver_mail`] sends it). The
    /// caller learns nothing either way, and never waits on the mail server.
    pub fn request_password_reset(&self, email: &Email) -> Result<(), RequestResetError> {
        self.request_password_reset_from(&Client::default(), email)
    }

    /// [`AuthService::request_password_reset`] for a client at `client`: at most
    /// [`crate::ThrottlePolicy::ip_registrations`] requests per address per hour (then
    /// [`RequestResetError::Throttled`]), and at most
    /// [`crate::ThrottlePolicy::resets_per_account`] links per account per hour (further
    /// requests are answered as accepted, and send nothing).
    pub fn request_password_reset_from(
        &self,
        client: &Client,
        email: &Email,
    ) -> Result<(), RequestResetError> {
        let policy = &self.config.throttle;
        let throttles = &*self.ports.throttles;
        let now = self.now();
        let event = |outcome, account: Option<UserId>| {
            AuthEvent::new(EventKind::ResetRequest, outcome, now, client)
                .for_account(account, email.as_str())
        };
        if let Some(ip) = client.ip()
            && let Err(retry_after) = throttle::count_within(
                throttles,
                &throttle::ip_key("reset", ip),
                policy.ip_registrations,
                throttle::HOUR,
                now,
            )?
        {
            self.record(event(EventOutcome::Throttled, None))?;
            return Err(RequestResetError::Throttled { retry_after });
        }
        let Some(user) = self.ports.users.find_by_email(email)? else {
            self.record(event(EventOutcome::Failure, None))?;
            return Ok(());
        };
        let account_key = throttle::reset_key(user.id);
        let limit = policy.resets_per_account;
        if throttle::count_within(throttles, &account_key, limit, throttle::HOUR, now)?.is_err() {
            self.record(event(EventOutcome::Suppressed, Some(user.id)))?;
            return Ok(());
        }
        // Queued with the token, in its transaction; `deliver_mail` sends it.
        self.issue_reset_secret(&user, event(EventOutcome::Success, Some(user.id)), true)?;
        Ok(())
    }

    /// Creates a reset secret for the account without mailing it (for operators);
    /// `None` when no account has this email.
    pub fn create_reset_secret(
        &self,
        email: &Email,
    ) -> Result<Option<IssuedResetSecret>, InternalError> {
        let Some(user) = self.ports.users.find_by_email(email)? else {
            return Ok(None);
        };
        let event = AuthEvent::new(
            EventKind::ResetRequest,
            EventOutcome::Success,
            self.now(),
            &Client::default(),
        )
        .for_user(user.id);
        self.issue_reset_secret(&user, event, false).map(Some)
    }

    /// Stores a new reset secret for `user` with `event`, the request it answers, and,
    /// if `mail`, the message carrying it into the outbox (an account without an email
    /// gets none).
    fn issue_reset_secret(
        &self,
        user: &User,
        event: AuthEvent,
        mail: bool,
    ) -> Result<IssuedResetSecret, InternalError> {
        let now = self.now();
        let secret = ResetSecret::generate()?;
        let expires_at = now + self.config.reset_token_ttl;
        let record = ResetTokenRecord {
            token_hash: ResetTokenHash::of(&secret),
            user_id: user.id,
            created_at: now,
            expires_at,
            used_at: None,
        };
        let queued = match (&user.email, mail) {
            (Some(to), true) => Some(QueuedMail {
                id: MailId::generate(now),
                to: to.clone(),
                secret: secret.clone(),
                link_expires_at: expires_at,
                queued_at: now,
                attempts: 0,
            }),
            _ => None,
        };
        self.ports
            .reset_tokens
            .create(&record, &event, queued.as_ref())?;
        event.trace();
        Ok(IssuedResetSecret { secret, expires_at })
    }

    /// Delivers what the outbox holds that is due: up to `limit` messages, each leased
    /// for [`crate::MailPolicy::lease`] while it is sent through the [`Mailer`]. A
    /// failure is retried after a wait that doubles per attempt; a message whose link
    /// has expired, or that failed [`crate::MailPolicy::max_attempts`] times, is given
    /// up. Blocking: call it from a background task, never from a request.
    pub fn deliver_mail(&self, limit: u32) -> Result<DeliveryRound, StoreError> {
        let policy = self.config.mail;
        let outbox = &*self.ports.outbox;
        let mut round = DeliveryRound::default();
        for mail in outbox.lease_due(self.now(), policy.lease, limit)? {
            let now = self.now();
            if mail.link_expires_at <= now {
                outbox.give_up(
                    mail.id,
                    now,
                    "the link expired before it could be delivered",
                )?;
                round.failed += 1;
                continue;
            }
            match self.ports.mailer.send_password_reset(
                &mail.to,
                &mail.secret,
                mail.link_expires_at,
            ) {
                Ok(()) => {
                    outbox.delivered(mail.id)?;
                    round.sent += 1;
                }
                Err(error) if mail.attempts >= policy.max_attempts => {
                    tracing::warn!(mail = %mail.id, %error, attempts = mail.attempts, "password reset mail given up");
                    outbox.give_up(mail.id, self.now(), &error.to_string())?;
                    round.failed += 1;
                }
                Err(error) => {
                    let retry_at = self.now() + policy.backoff(mail.attempts);
                    tracing::info!(mail = %mail.id, %error, attempts = mail.attempts, "password reset mail not delivered; will retry");
                    outbox.retry_at(mail.id, retry_at, &error.to_string())?;
                    round.retried += 1;
                }
            }
        }
        Ok(round)
    }

    /// Sets a new password with a reset secret (single use, expiring), clears
    /// `must_change_password` and the account's failed logins, and ends every session
    /// of the account; returns how many sessions that ended.
    pub fn reset_password(
        &self,
        secret: &str,
        new_password: &Password,
    ) -> Result<u64, ResetPasswordError> {
        self.reset_password_from(&Client::default(), secret, new_password)
    }

    /// [`AuthService::reset_password`] for `client`.
    pub fn reset_password_from(
        &self,
        client: &Client,
        secret: &str,
        new_password: &Password,
    ) -> Result<u64, ResetPasswordError> {
        let policy = &self.config.password_policy;
        let invalid = |v: crate::config::PolicyViolation| {
            ResetPasswordError::Invalid(ValidationErrors::single("password", v.to_string()))
        };
        policy.check_new(new_password).map_err(invalid)?;
        let now = self.now();
        let hash = ResetTokenHash::of(&ResetSecret::from_presented(secret));
        let event = AuthEvent::new(
            EventKind::ResetCompletion,
            EventOutcome::Success,
            now,
            client,
        );
        let invalid_token = |event: AuthEvent| {
            self.record(event.with_outcome(EventOutcome::Failure))?;
            Err(ResetPasswordError::InvalidToken)
        };
        let Some(record) = self.ports.reset_tokens.find_valid(&hash, now)? else {
            return invalid_token(event);
        };
        let event = event.for_user(record.user_id);
        let Some(user) = self.ports.users.find_by_id(record.user_id)? else {
            return invalid_token(event);
        };
        policy
            .check(new_password, user.email.as_ref(), user.username.as_ref())
            .map_err(invalid)?;
        let new_hash = self.ports.hasher.hash(new_password)?;
        match self
            .ports
            .reset_tokens
            .complete_reset(&hash, &new_hash, now, &event)
        {
            Ok(completed) => {
                event.trace();
                // The owner proved control of the mailbox: a guessing run on the old
                // password no longer makes them wait.
                self.ports
                    .throttles
                    .clear(&throttle::login_key(Some(user.id), ""))?;
                Ok(completed.sessions_revoked)
            }
            // A concurrent reset with the same secret won.
            Err(CompleteResetError::InvalidToken) => invalid_token(event),
            Err(CompleteResetError::Store(e)) => Err(e.into()),
        }
    }

    fn parse_registration(&self, form: Registration<'_>) -> Result<NewUser, ValidationErrors> {
        let mut errors = Vec::new();
        let mut field = |name: &'static str, message: String| {
            errors.push(FieldError {
                field: name,
                message,
            })
        };
        let name = DisplayName::parse(form.name)
            .map_err(|e| field("name", e.to_string()))
            .ok();
        let bio = match form.bio {
            Some(text) => Bio::parse(text)
                .map(Some)
                .map_err(|e| field("bio", e.to_string()))
                .ok(),
            None => Some(None),
        };
        let email = match form.email {
            Some(text) => Email::parse(text)
                .map(Some)
                .map_err(|e| field("email", e.to_string()))
                .ok(),
            None if form.username.is_none() => {
                field("email", "An email or a username is required".into());
                None
            }
            None => Some(None),
        };
        let username = match form.username {
            Some(text) => Username::parse(text)
                .map(Some)
                .map_err(|e| field("username", e.to_string()))
                .ok(),
            None => Some(None),
        };
        let policy = &self.config.password_policy;
        let password_check = match (&email, &username) {
            (Some(email), Some(username)) => {
                policy.check(form.password, email.as_ref(), username.as_ref())
            }
            _ => policy.check_new(form.password),
        };
        if let Err(violation) = password_check {
            field("password", violation.to_string());
        }
        if form.confirm.is_some_and(|confirm| confirm != form.password) {
            field("confirm", "Passwords don't match".into());
        }
        if let Some(errors) = ValidationErrors::from_vec(errors) {
            return Err(errors);
        }
        match (name, bio, email, username) {
            (Some(name), Some(bio), Some(email), Some(username)) => Ok(NewUser {
                email,
                username,
                name,
                bio,
                must_change_password: false,
                profile: Profile::default(),
            }),
            // Every `None` above pushed an error, so this arm is never taken.
            _ => Err(ValidationErrors::single("form", "Invalid registration")),
        }
    }

    /// Hashes the password and stores the account, with its registration event.
    fn insert_user(
        &self,
        client: &Client,
        new: NewUser,
        password: &Password,
    ) -> Result<User, RegisterError> {
        let password_hash = self.ports.hasher.hash(password)?;
        let now = self.now();
        let user = User {
            id: UserId::generate(now),
            email: new.email,
            username: new.username,
            name: new.name,
            bio: new.bio,
            email_verified: false,
            must_change_password: new.must_change_password,
            profile: new.profile,
            password_hash,
            password_changed_at: now,
            credential_version: 0,
            created_at: now,
            updated_at: now,
        };
        let event = AuthEvent::new(EventKind::Registration, EventOutcome::Success, now, client)
            .for_user(user.id);
        match self.ports.users.create(&user, &event) {
            Ok(()) => {
                event.trace();
                Ok(user)
            }
            Err(CreateUserError::EmailTaken) => Err(RegisterError::EmailTaken),
            Err(CreateUserError::UsernameTaken) => Err(RegisterError::UsernameTaken),
            Err(CreateUserError::Store(e)) => Err(e.into()),
        }
    }

    /// Registers an API client named `name` (1 to 100 characters, no control
    /// characters); its secret is returned this once, only its hash is kept.
    pub fn register_client(
        &self,
        name: &str,
    ) -> Result<(RegisteredClient, ClientSecret), RegisterClientError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(RegisterClientError::InvalidName);
        }
        let now = self.now();
        let secret = ClientSecret::generate().map_err(InternalError::from)?;
        let client = RegisteredClient {
            id: ClientId::generate(now),
            name: name.to_owned(),
            secret_hash: ClientSecret::hash(secret.expose()),
            created_at: now,
        };
        self.ports
            .clients
            .create_client(&client)
            .map_err(InternalError::from)?;
        Ok((client, secret))
    }

    /// The client whose id and secret these are (HTTP Basic credentials).
    pub fn authenticate_client(
        &self,
        id: &str,
        secret: &str,
    ) -> Result<RegisteredClient, ClientAuthError> {
        let Ok(id) = ClientId::parse(id) else {
            return Err(ClientAuthError::Invalid);
        };
        let client = self
            .ports
            .clients
            .find_client(id)
            .map_err(InternalError::from)?
            .ok_or(ClientAuthError::Invalid)?;
        let presented = ClientSecret::hash(secret);
        if !oauth::constant_time_eq(presented.as_bytes(), client.secret_hash.as_bytes()) {
            return Err(ClientAuthError::Invalid);
        }
        Ok(client)
    }

    /// Whether `token` (an access or a refresh token) is usable right now, and its
    /// claims if so (RFC 7662): well signed, unexpired, its session live and made under
    /// the account's current password, and a refresh token not yet spent.
    pub fn introspect(&self, token: &str) -> Result<Introspection, InternalError> {
        let now = self.now();
        for kind in [TokenKind::Access, TokenKind::Refresh] {
            let Ok(claims) = self.ports.tokens.verify(token, kind, now) else {
                continue;
            };
            let live = self
                .ports
                .sessions
                .find(claims.session)?
                .filter(|session| session.is_active(now) && session.user_id == claims.subject);
            let Some(session) = live else {
                return Ok(Introspection::Inactive);
            };
            if !self.credentials_current(&session)? {
                return Ok(Introspection::Inactive);
            }
            if kind == TokenKind::Refresh {
                let unspent = self
                    .ports
                    .sessions
                    .refresh_token(claims.token_id)?
                    .is_some_and(|record| {
                        record.used_at.is_none() && record.session_id == session.id
                    });
                if !unspent {
                    return Ok(Introspection::Inactive);
                }
            }
            return Ok(Introspection::Active(Box::new(claims)));
        }
        Ok(Introspection::Inactive)
    }

    /// Ends the session of `token` (an access or a refresh token) for `client` (RFC
    /// 7009); a token that is not usable is ignored, as the RFC asks.
    pub fn revoke_token(&self, client: &Client, token: &str) -> Result<(), InternalError> {
        let Introspection::Active(claims) = self.introspect(token)? else {
            return Ok(());
        };
        let now = self.now();
        self.ports
            .sessions
            .revoke(claims.session, RevocationReason::Logout, now)?;
        self.record(
            AuthEvent::new(EventKind::Logout, EventOutcome::Success, now, client)
                .for_user(claims.subject)
                .in_session(claims.session),
        )?;
        Ok(())
    }

    /// Stores an event that goes with no change (a refusal) and emits it.
    fn record(&self, event: AuthEvent) -> Result<(), StoreError> {
        self.ports.events.record(&event)?;
        event.trace();
        Ok(())
    }

    /// The account an email or username names, if any.
    fn find_account(&self, identifier: &str) -> Result<Option<User>, StoreError> {
        match LoginIdentifier::parse(identifier) {
            Some(LoginIdentifier::Email(email)) => self.ports.users.find_by_email(&email),
            Some(LoginIdentifier::Username(name)) => self.ports.users.find_by_username(&name),
            None => Ok(None),
        }
    }

    fn dummy_hash(&self) -> Result<&PasswordHash, InternalError> {
        if let Some(hash) = self.dummy_hash.get() {
            return Ok(hash);
        }
        // The value is irrelevant (the result is ignored); only the cost matters.
        let hash = self
            .ports
            .hasher
            .hash(&Password::new("portcullis-timing-equaliser"))?;
        Ok(self.dummy_hash.get_or_init(|| hash))
    }

    /// Upgrades an outdated hash after a successful login. A failure only costs the
    /// upgrade, not the login.
    /// Whether the session was made under its user's current credentials (no password
    /// change since); a user gone counts as no.
    fn credentials_current(&self, session: &Session) -> Result<bool, StoreError> {
        Ok(self
            .ports
            .users
            .find_by_id(session.user_id)?
            .is_some_and(|user| user.credential_version == session.credential_version))
    }

    fn rehash(&self, user: &User, password: &Password) {
        let result = self
            .ports
            .hasher
            .hash(password)
            .map_err(InternalError::from)
            .and_then(|hash| {
                self.ports
                    .users
                    .replace_password_hash(user.id, &user.password_hash, &hash, self.now())
                    .map_err(InternalError::from)
            });
        if let Err(error) = result {
            tracing::warn!(user = %user.id, %error, "password re-hash failed");
        }
    }

    /// Starts a session for `user`, storing `event` (the login), completed with the
    /// session's id, in the same transaction.
    fn start_session(
        &self,
        user: &User,
        options: &IssueOptions,
        now: DateTime<Utc>,
        event: Option<AuthEvent>,
    ) -> Result<(SessionId, TokenPair), InternalError> {
        let session = Session {
            id: SessionId::generate(now),
            user_id: user.id,
            created_at: now,
            expires_at: now + self.config.session_lifetime,
            last_refreshed_at: None,
            revoked_at: None,
            revocation_reason: None,
            credential_version: user.credential_version,
        };
        let mut extra = options.extra_claims.clone();
        if let Some(user_claims) = options.user_claims {
            extra.extend(user_claims(user));
        }
        let access_ttl = options.access_ttl.unwrap_or(self.config.access_ttl);
        let (tokens, record) = self.issue_pair(&session, extra, access_ttl, now)?;
        let event = event.map(|event| event.in_session(session.id));
        self.ports
            .sessions
            .create(&session, &record, event.as_ref())?;
        if let Some(event) = &event {
            event.trace();
        }
        Ok((session.id, tokens))
    }

    /// Encodes an access and a refresh token for `session`, neither outliving it, and
    /// the refresh token's record.
    fn issue_pair(
        &self,
        session: &Session,
        extra: Map<String, Value>,
        access_ttl: TimeDelta,
        now: DateTime<Utc>,
    ) -> Result<(TokenPair, RefreshTokenRecord), InternalError> {
        let issued_at = now.trunc_subsecs(0);
        let expiry = |ttl: TimeDelta| (now + ttl).min(session.expires_at).trunc_subsecs(0);
        let claims = |kind, expires_at| Claims {
            subject: session.user_id,
            session: session.id,
            token_id: TokenId::generate(now),
            kind,
            issued_at,
            expires_at,
            extra: extra.clone(),
        };
        let access = claims(TokenKind::Access, expiry(access_ttl));
        let refresh = claims(TokenKind::Refresh, expiry(self.config.refresh_ttl));
        let record = RefreshTokenRecord {
            id: refresh.token_id,
            session_id: session.id,
            issued_at: now,
            expires_at: refresh.expires_at,
            used_at: None,
        };
        let tokens = TokenPair {
            access: IssuedToken {
                token: self.ports.tokens.issue(&access)?,
                expires_at: access.expires_at,
            },
            refresh: IssuedToken {
                token: self.ports.tokens.issue(&refresh)?,
                expires_at: refresh.expires_at,
            },
        };
        Ok((tokens, record))
    }
}
