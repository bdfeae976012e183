//! The mail outbox: a password-reset message is queued in the transaction that stores
//! its reset token, and delivered later, with retries, by
//! [`crate::AuthService::deliver_mail`]. A request never waits on the mail server, an
//! outage or a crash loses no message, and the answer's timing does not depend on
//! delivery.

use chrono::{DateTime, TimeDelta, Utc};

use crate::reset::ResetSecret;
use crate::values::{Email, MailId};

/// How queued mail is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MailPolicy {
    /// The wait after the first failed attempt; it doubles with each further one.
    /// Default 5 s.
    pub retry_base: TimeDelta,
    /// The longest wait between attempts. Default 10 minutes.
    pub retry_max: TimeDelta,
    /// Attempts before a message is given up as failed. Default 10.
    pub max_attempts: u32,
    /// How long an attempt holds a message, so that no other sender (another instance)
    /// takes it meanwhile; longer than any delivery takes. Default 60 s.
    pub lease: TimeDelta,
}

impl Default for MailPolicy {
    fn default() -> Self {
        Self {
            retry_base: TimeDelta::seconds(5),
            retry_max: TimeDelta::minutes(10),
            max_attempts: 10,
            lease: TimeDelta::seconds(60),
        }
    }
}

impl MailPolicy {
    /// The wait after the `attempts`-th failed attempt: the base, doubled per further
    /// attempt, capped.
    pub(crate) fn backoff(&self, attempts: u32) -> TimeDelta {
        let doublings = attempts.saturating_sub(1).min(30);
        self.retry_base
            .checked_mul(1_i32 << doublings)
            .unwrap_or(self.retry_max)
            .min(self.retry_max)
    }
}

/// A password-reset message in the outbox, as a sender takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedMail {
    /// Its id.
    pub id: MailId,
    /// The account's address.
    pub to: Email,
    /// The reset link's secret. It stays in the outbox only until the message is
    /// delivered or given up.
    pub secret: ResetSecret,
    /// When the link stops working: a message not delivered by then is given up.
    pub link_expires_at: DateTime<Utc>,
    /// When it was queued.
    pub queued_at: DateTime<Utc>,
    /// Attempts made so far, the one it was just taken for included.
    pub attempts: u32,
}

/// A message as `portcullis mail status` shows it: no secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Its id.
    pub id: MailId,
    /// The account's address.
    pub to: Email,
    /// When it was queued.
    pub queued_at: DateTime<Utc>,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (pending), or when it was given up (failed).
    pub at: DateTime<Utc>,
    /// Why the last attempt failed, if one did.
    pub last_error: Option<String>,
}

/// The outbox's contents, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutboxStatus {
    /// Messages still to be delivered.
    pub pending: Vec<OutboxEntry>,
    /// Messages given up: their link expired, or every attempt failed.
    pub failed: Vec<OutboxEntry>,
}

/// What one [`crate::AuthService::deliver_mail`] round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeliveryRound {
    /// Delivered, and removed from the outbox.
    pub sent: usize,
    /// Failed this time; to be tried again.
    pub retried: usize,
    /// Given up.
    pub failed: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_from_the_base_up_to_the_cap() {
        let policy = MailPolicy::default();
        let waits: Vec<i64> = (1..=9).map(|n| policy.backoff(n).num_seconds()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 320, 600, 600]);
        assert_eq!(policy.backoff(u32::MAX), policy.retry_max);
    }
}
