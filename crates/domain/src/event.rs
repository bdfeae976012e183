//! The security event log: every login, registration, refresh, logout and password
//! reset, with who and where from, stored through the repository ports (in the same
//! transaction as the change it records, where there is one) and emitted as a
//! `tracing` event on the `portcullis::audit` target. An event never holds a password,
//! a token, a reset secret or a login name as typed.

use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::values::{LoginIdentifier, SessionId, UserId};

/// What was attempted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A password login.
    Login,
    /// An account created: self-registration, or by an operator.
    Registration,
    /// A refresh-token rotation.
    Refresh,
    /// A session ended by its owner.
    Logout,
    /// A password-reset link asked for.
    ResetRequest,
    /// A password set with a reset secret.
    ResetCompletion,
    /// An account moved in from another application, or updated from its export
    /// (`portcullis import`).
    UserImported,
}

/// How it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventOutcome {
    /// Done: signed in, created, rotated, ended, link sent, password set.
    Success,
    /// Refused: wrong credentials, an unknown account, an invalid reset secret.
    Failure,
    /// Refused before any check, by a throttle.
    Throttled,
    /// A spent refresh token presented again: its session was revoked.
    ReuseDetected,
    /// Answered as accepted but not carried out (a reset request over the account's
    /// hourly limit: nothing was sent).
    Suppressed,
}

/// Names as stored and printed, parsed back by `parse`.
macro_rules! names {
    ($type:ident { $($variant:ident => $name:literal),* $(,)? }) => {
        impl $type {
            /// Every value, in declaration order.
            pub const ALL: &[Self] = &[$(Self::$variant),*];

            /// The stored name, `snake_case`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name),*
                }
            }

            /// The value a stored name stands for.
            pub fn parse(name: &str) -> Option<Self> {
                match name {
                    $($name => Some(Self::$variant),)*
                    _ => None,
                }
            }
        }

        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

names!(EventKind {
    Login => "login",
    Registration => "registration",
    Refresh => "refresh",
    Logout => "logout",
    ResetRequest => "reset_request",
    ResetCompletion => "reset_completion",
    UserImported => "user_imported",
});

names!(EventOutcome {
    Success => "success",
    Failure => "failure",
    Throttled => "throttled",
    ReuseDetected => "reuse_detected",
    Suppressed => "suppressed",
});

/// The longest user agent kept, in characters; the rest is cut.
pub const USER_AGENT_MAX_CHARS: usize = 256;

/// Who is asking, as far as the caller knows: recorded with every event, and the
/// address the throttles count by. `Client::default()` knows nothing (an operator's
/// command, an embedding service without a network peer).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Client {
    ip: Option<IpAddr>,
    user_agent: Option<String>,
    dialect: Option<&'static str>,
}

impl Client {
    /// A client at `ip` (`None` when unknown).
    pub fn at(ip: Option<IpAddr>) -> Self {
        Self {
            ip,
            ..Self::default()
        }
    }

    /// With the `User-Agent` it sent: control characters are dropped and it is cut to
    /// [`USER_AGENT_MAX_CHARS`], as it is the client's own claim and lands in logs.
    pub fn with_user_agent(mut self, user_agent: &str) -> Self {
        let cleaned: String = user_agent
            .chars()
            .filter(|c| !c.is_control())
            .take(USER_AGENT_MAX_CHARS)
            .collect();
        self.user_agent = (!cleaned.is_empty()).then_some(cleaned);
        self
    }

    /// Through which API it came (the HTTP layer's dialect name).
    pub fn via(mut self, dialect: &'static str) -> Self {
        self.dialect = Some(dialect);
        self
    }

    /// Its address, when known.
    pub fn ip(&self) -> Option<IpAddr> {
        self.ip
    }
}

/// One entry of the security event log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthEvent {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What was attempted.
    pub kind: EventKind,
    /// How it ended.
    pub outcome: EventOutcome,
    /// The account, when one is known.
    pub user_id: Option<UserId>,
    /// When no account is known: the SHA-256 (hex) of the login name or email as
    /// normalised, so that attempts on one name can be grouped without storing it.
    pub identifier_hash: Option<String>,
    /// The session it started, rotated or ended.
    pub session_id: Option<SessionId>,
    /// The client's address, when known.
    pub ip: Option<IpAddr>,
    /// The client's `User-Agent`, cleaned (see [`Client::with_user_agent`]).
    pub user_agent: Option<String>,
    /// The API it came through.
    pub dialect: Option<String>,
}

impl AuthEvent {
    /// An event of `kind` ending in `outcome` at `at`, from `client`, about no account
    /// yet.
    pub fn new(kind: EventKind, outcome: EventOutcome, at: DateTime<Utc>, client: &Client) -> Self {
        Self {
            at,
            kind,
            outcome,
            user_id: None,
            identifier_hash: None,
            session_id: None,
            ip: client.ip,
            user_agent: client.user_agent.clone(),
            dialect: client.dialect.map(str::to_owned),
        }
    }

    /// About this account.
    pub fn for_user(mut self, user: UserId) -> Self {
        self.user_id = Some(user);
        self
    }

    /// About the account `user` if known, else about the name `identifier` (hashed).
    pub fn for_account(self, user: Option<UserId>, identifier: &str) -> Self {
        match user {
            Some(user) => self.for_user(user),
            None => Self {
                identifier_hash: Some(identifier_hash(identifier)),
                ..self
            },
        }
    }

    /// About this session.
    pub fn in_session(mut self, session: SessionId) -> Self {
        self.session_id = Some(session);
        self
    }

    /// The same event, ending in `outcome` instead.
    pub fn with_outcome(mut self, outcome: EventOutcome) -> Self {
        self.outcome = outcome;
        self
    }

    /// Emits it as a structured `tracing` event (target `portcullis::audit`): at INFO,
    /// or WARN for what an operator should look at (throttling, token reuse).
    pub(crate) fn trace(&self) {
        let user_id = self.user_id.map(tracing::field::display);
        let session_id = self.session_id.map(tracing::field::display);
        let ip = self.ip.map(tracing::field::display);
        macro_rules! emit {
            ($level:ident) => {
                tracing::$level!(
                    target: "portcullis::audit",
                    kind = self.kind.as_str(),
                    outcome = self.outcome.as_str(),
                    user_id,
                    identifier_hash = self.identifier_hash.as_deref(),
                    session_id,
                    ip,
                    user_agent = self.user_agent.as_deref(),
                    dialect = self.dialect.as_deref(),
                    "auth event"
                )
            };
        }
        match self.outcome {
            EventOutcome::Throttled | EventOutcome::ReuseDetected => emit!(warn),
            _ => emit!(info),
        }
    }
}

/// The hash an unknown login name is recorded (and throttled) by: SHA-256, hex, of its
/// normalised form (an email as parsed, a username lower-cased, anything else trimmed
/// and lower-cased), so every spelling of one name maps to one value.
pub fn identifier_hash(identifier: &str) -> String {
    let normalised = match LoginIdentifier::parse(identifier) {
        Some(LoginIdentifier::Email(email)) => email.as_str().to_owned(),
        Some(LoginIdentifier::Username(name)) => name.as_str().to_ascii_lowercase(),
        None => identifier.trim().to_lowercase(),
    };
    hex::encode(Sha256::digest(normalised.as_bytes()))
}

/// Which events [`crate::EventRepository::list`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventFilter {
    /// Only this account's.
    pub user: Option<UserId>,
    /// Only those at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// At most this many, the newest.
    pub limit: u32,
}

impl Default for EventFilter {
    fn default() -> Self {
        Self {
            user: None,
            since: None,
            limit: 100,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_distinct() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(*kind));
        }
        for outcome in EventOutcome::ALL {
            assert_eq!(EventOutcome::parse(outcome.as_str()), Some(*outcome));
        }
        assert_eq!(EventKind::parse("Login"), None);
    }

    #[test]
    fn a_user_agent_loses_control_characters_and_is_bounded() {
        let client = Client::default().with_user_agent("curl/8\u{0}\n\u{1b}[31m");
        assert_eq!(client.user_agent.as_deref(), Some("curl/8[31m"));
        let long = Client::default().with_user_agent(&"x".repeat(10_000));
        assert_eq!(
            long.user_agent.map(|ua| ua.len()),
            Some(USER_AGENT_MAX_CHARS)
        );
        assert_eq!(Client::default().with_user_agent("\n").user_agent, None);
    }

    #[test]
    fn every_spelling_of_a_name_hashes_alike_and_the_name_is_not_kept() {
        let hash = identifier_hash("Ada@Example.COM ");
        assert_eq!(hash, identifier_hash("ada@example.com"));
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains("ada"));
        assert_eq!(identifier_hash("AdaL"), identifier_hash("adal"));
        let event = AuthEvent::new(
            EventKind::Login,
            EventOutcome::Failure,
            DateTime::UNIX_EPOCH,
            &Client::default(),
        )
        .for_account(None, "ada@example.com");
        assert_eq!(event.identifier_hash, Some(hash));
        assert_eq!(event.user_id, None);
    }
}
