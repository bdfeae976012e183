//! The domain's tunables. Every field has a production default.

use std::collections::HashSet;
use std::sync::OnceLock;

use chrono::TimeDelta;

use crate::mail::MailPolicy;
use crate::throttle::ThrottlePolicy;
use crate::values::{Email, Password, Username};

/// Lifetimes and the password policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthConfig {
    /// Access-token lifetime. Default 30 minutes.
    pub access_ttl: TimeDelta,
    /// Refresh-token lifetime; each rotation starts a new one. Default 14 days.
    pub refresh_ttl: TimeDelta,
    /// Absolute session lifetime: no rotation extends a session past it. Default 30 days.
    pub session_lifetime: TimeDelta,
    /// Password-reset link lifetime. Default 30 minutes.
    pub reset_token_ttl: TimeDelta,
    /// How long after a rotation the spent refresh token still buys the same successor
    /// (and a fresh access token) instead of counting as reuse, so a client's parallel
    /// requests renewing at once do not revoke its session (RFC 9700 §4.14.2).
    /// Default 10 s; zero turns it off.
    pub refresh_grace: TimeDelta,
    /// What a new password must meet.
    pub password_policy: PasswordPolicy,
    /// How many failed logins, registrations and reset requests are allowed.
    pub throttle: ThrottlePolicy,
    /// How queued mail is retried.
    pub mail: MailPolicy,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            access_ttl: TimeDelta::seconds(1800),
            refresh_ttl: TimeDelta::days(14),
            session_lifetime: TimeDelta::days(30),
            reset_token_ttl: TimeDelta::minutes(30),
            refresh_grace: TimeDelta::seconds(10),
            password_policy: PasswordPolicy::default(),
            throttle: ThrottlePolicy::default(),
            mail: MailPolicy::default(),
        }
    }
}

/// NIST SP 800-63B style: length only, no composition rules, not the account's own
/// name. Lengths count Unicode characters after NFKC normalisation. The maximum bounds
/// what a client can make the hasher chew on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Fewest characters a password may have. Default 8.
    pub min_chars: usize,
    /// Most characters a password may have; a longer login attempt is refused before
    /// any hashing. Default 256.
    pub max_chars: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_chars: 8,
            max_chars: 256,
        }
    }
}

/// How a password breaks the policy; `Display` is fit for the client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    /// Fewer characters than the policy's minimum.
    #[error("Password must be at least {min} characters")]
    TooShort {
        /// [`PasswordPolicy::min_chars`].
        min: usize,
    },
    /// More characters than the policy's maximum.
    #[error("Password must be at most {max} characters")]
    TooLong {
        /// [`PasswordPolicy::max_chars`].
        max: usize,
    },
    /// The password is on the list of common passwords (`data/common-passwords.txt`),
    /// ignoring case.
    #[error("Password is too common")]
    TooCommon,
    /// The password is the account's email or username, ignoring case.
    #[error("Password must not be the same as the email or username")]
    MatchesIdentity,
}

/// The 30,000 most common passwords, lower case (see `data/README.md` for the source
/// and its licence).
const COMMON_PASSWORDS: &str = include_str!("../data/common-passwords.txt");

/// Whether `password` (already NFKC-normalised, as [`Password`] is) is a common one,
/// ignoring case.
fn is_common(password: &Password) -> bool {
    static COMMON: OnceLock<HashSet<&'static str>> = OnceLock::new();
    let common = COMMON.get_or_init(|| COMMON_PASSWORDS.lines().collect());
    common.contains(password.expose().to_lowercase().as_str())
}

impl PasswordPolicy {
    /// The length rules alone, as a login checks a presented password before hashing
    /// it.
    pub fn check_length(&self, password: &Password) -> Result<(), PolicyViolation> {
        let count = password.char_count();
        if count < self.min_chars {
            return Err(PolicyViolation::TooShort {
                min: self.min_chars,
            });
        }
        if count > self.max_chars {
            return Err(PolicyViolation::TooLong {
                max: self.max_chars,
            });
        }
        Ok(())
    }

    /// The rules for a new password that need no account: length, then not a common
    /// password.
    pub fn check_new(&self, password: &Password) -> Result<(), PolicyViolation> {
        self.check_length(password)?;
        if is_common(password) {
            return Err(PolicyViolation::TooCommon);
        }
        Ok(())
    }

    /// Every rule, for a new password of the account named by `email` and `username`.
    pub fn check(
        &self,
        password: &Password,
        email: Option<&Email>,
        username: Option<&Username>,
    ) -> Result<(), PolicyViolation> {
        self.check_new(password)?;
        let candidate = password.expose().to_lowercase();
        let matches_email = email.is_some_and(|e| e.as_str() == candidate);
        let matches_username = username.is_some_and(|u| u.as_str().to_lowercase() == candidate);
        if matches_email || matches_username {
            return Err(PolicyViolation::MatchesIdentity);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> Email {
        Email::parse("ada@example.com").unwrap()
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        let policy = PasswordPolicy::default();
        // Eight two-byte characters pass, seven do not.
        assert!(policy.check_length(&Password::new("éééééééé")).is_ok());
        assert_eq!(
            policy.check_length(&Password::new("ééééééé")),
            Err(PolicyViolation::TooShort { min: 8 })
        );
        assert_eq!(
            policy.check_length(&Password::new(&"x".repeat(257))),
            Err(PolicyViolation::TooLong { max: 256 })
        );
    }

    #[test]
    fn common_passwords_are_refused_ignoring_case_and_width() {
        let policy = PasswordPolicy::default();
        assert!(COMMON_PASSWORDS.lines().count() >= 10_000);
        for common in [
            "password1",
            "PassWord1",
            "ｐａｓｓｗｏｒｄ１",
            "qwertyuiop",
            "iloveyou",
        ] {
            assert_eq!(
                policy.check_new(&Password::new(common)),
                Err(PolicyViolation::TooCommon),
                "{common}"
            );
        }
        // Too short is said first; a login's length check does not consult the list.
        assert_eq!(
            policy.check_new(&Password::new("123456")),
            Err(PolicyViolation::TooShort { min: 8 })
        );
        assert!(policy.check_length(&Password::new("password1")).is_ok());
        assert!(
            policy
                .check_new(&Password::new("correct horse battery"))
                .is_ok()
        );
    }

    #[test]
    fn no_composition_rules() {
        let policy = PasswordPolicy::default();
        assert!(
            policy
                .check(&Password::new("zqxjkvbw"), Some(&email()), None)
                .is_ok()
        );
    }

    #[test]
    fn password_may_not_be_the_account_name() {
        let policy = PasswordPolicy::default();
        let username = Username::parse("adalovelace").unwrap();
        assert_eq!(
            policy.check(&Password::new("ADA@example.com"), Some(&email()), None),
            Err(PolicyViolation::MatchesIdentity)
        );
        assert_eq!(
            policy.check(
                &Password::new("AdaLovelace"),
                Some(&email()),
                Some(&username)
            ),
            Err(PolicyViolation::MatchesIdentity)
        );
    }
}
