//! Throttling: how many failed logins, registrations and reset requests an account,
//! a login name or a client address may make, and how long it then waits. The counters
//! live behind [`ThrottleRepository`], so every instance sees the same ones.

use std::net::IpAddr;

use crate::event::identifier_hash;
use crate::ports::{StoreError, ThrottleRecord, ThrottleRepository};
use crate::values::UserId;
use chrono::{DateTime, TimeDelta, Utc};

/// The limits. Every default is the one the configuration documents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Consecutive failed logins of one account (or login name) that cost nothing.
    /// Default 5.
    pub free_failures: i64,
    /// The wait after the first failure past the free ones; it doubles with each
    /// further failure. Default 1 s.
    pub base_delay: TimeDelta,
    /// The longest wait. Default 900 s. There is no permanent lockout.
    pub max_delay: TimeDelta,
    /// Failed logins one client address may make per `ip_window`. Default 100.
    pub ip_failures: i64,
    /// Default 900 s.
    pub ip_window: TimeDelta,
    /// Registrations (and, separately, reset requests) one client address may make per
    /// hour. Default 20.
    pub ip_registrations: i64,
    /// Reset requests per account per hour; further ones are answered as accepted and
    /// send nothing. Default 3.
    pub resets_per_account: i64,
}

impl ThrottlePolicy {
    /// How long a counter can matter after its last event: past this, every limit
    /// treats it as absent, so a purge may delete it.
    pub fn memory(&self) -> TimeDelta {
        FAILURE_MEMORY
            .max(HOUR)
            .max(self.ip_window)
            .max(self.max_delay)
    }
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            free_failures: 5,
            base_delay: TimeDelta::seconds(1),
            max_delay: TimeDelta::seconds(900),
            ip_failures: 100,
            ip_window: TimeDelta::seconds(900),
            ip_registrations: 20,
            resets_per_account: 3,
        }
    }
}

/// How long a run of failures counts: a day after it began, the count starts afresh.
pub(crate) const FAILURE_MEMORY: TimeDelta = TimeDelta::days(1);
/// The window of the hourly limits.
pub(crate) const HOUR: TimeDelta = TimeDelta::hours(1);

/// The counter of an account's (or, when none matches, a login name's) failed logins.
/// Unknown names are counted by a hash of their normalised form, so the answers are
/// the same whether an account exists, and no name is stored as typed.
pub(crate) fn login_key(account: Option<UserId>, identifier: &str) -> String {
    match account {
        Some(id) => format!("login:user:{id}"),
        None => format!("login:name:{}", identifier_hash(identifier)),
    }
}

/// The counter of one kind of event from one client address.
pub(crate) fn ip_key(kind: &str, ip: IpAddr) -> String {
    format!("{kind}:ip:{ip}")
}

/// The counter of an account's reset requests.
pub(crate) fn reset_key(account: UserId) -> String {
    format!("reset:user:{account}")
}

/// How long an account with these failures must still wait at `now`, if at all.
pub(crate) fn failure_wait(
    policy: &ThrottlePolicy,
    record: Option<ThrottleRecord>,
    now: DateTime<Utc>,
) -> Option<TimeDelta> {
    let record = record?;
    // The wait after the last free failure is the base delay; with no free failures,
    // the first failure is the one it follows.
    let beyond_free = record.count - policy.free_failures.max(1);
    if beyond_free < 0 {
        return None;
    }
    // 2^n saturates long before i64 does: the cap is reached by then.
    let factor = 1_i32
        .checked_shl(beyond_free.min(30) as u32)
        .unwrap_or(i32::MAX);
    let delay = policy
        .base_delay
        .checked_mul(factor)
        .unwrap_or(policy.max_delay)
        .min(policy.max_delay);
    remaining(record.last_at + delay, now)
}

/// How long a counter that has reached `limit` in its `window` still blocks at `now`.
pub(crate) fn window_wait(
    limit: i64,
    window: TimeDelta,
    record: Option<ThrottleRecord>,
    now: DateTime<Utc>,
) -> Option<TimeDelta> {
    let record = record.filter(|r| r.count >= limit)?;
    remaining(record.window_started_at + window, now)
}

fn remaining(until: DateTime<Utc>, now: DateTime<Utc>) -> Option<TimeDelta> {
    (until > now).then(|| until - now)
}

/// Whether an attempt may go ahead, and if not how long until it may.
pub(crate) type Admission = Result<(), TimeDelta>;

/// Counts one event on the window counter `key` unless `limit` events are counted in
/// its `window` already; then how long until the window ends. Race-free: the atomic
/// count decides, not a read before it, so concurrent attempts cannot all slip under
/// the limit.
pub(crate) fn count_within(
    throttles: &dyn ThrottleRepository,
    key: &str,
    limit: i64,
    window: TimeDelta,
    now: DateTime<Utc>,
) -> Result<Admission, StoreError> {
    // A full counter is refused with a read alone, so a flood of refused attempts
    // writes nothing.
    if let Some(wait) = window_wait(limit, window, throttles.get(key)?, now) {
        return Ok(Err(wait));
    }
    let after = throttles.hit(key, now, window)?;
    let before = ThrottleRecord {
        count: after.count - 1,
        ..after
    };
    match window_wait(limit, window, Some(before), now) {
        Some(wait) => Ok(Err(wait)),
        None => Ok(Ok(())),
    }
}

/// How often [`admit_attempt`] re-reads a counter that others changed meanwhile.
const CLAIM_ROUNDS: usize = 4;

/// Counts a login attempt on the account counter `key` before its password is
/// verified (a success clears the counter), unless the account must wait. A
/// compare-and-set on the counter as read, so every verified attempt was judged on the
/// counter as it stood; an account whose counter keeps changing under it (a burst of
/// parallel guesses) is told to wait.
pub(crate) fn admit_attempt(
    throttles: &dyn ThrottleRepository,
    policy: &ThrottlePolicy,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Admission, StoreError> {
    for _ in 0..CLAIM_ROUNDS {
        let seen = throttles.get(key)?;
        if let Some(wait) = failure_wait(policy, seen, now) {
            return Ok(Err(wait));
        }
        if throttles.claim(key, seen, now, FAILURE_MEMORY)?.is_some() {
            return Ok(Ok(()));
        }
    }
    Ok(Err(policy.base_delay.max(TimeDelta::seconds(1))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(count: i64, at: DateTime<Utc>) -> Option<ThrottleRecord> {
        Some(ThrottleRecord {
            count,
            window_started_at: at,
            last_at: at,
        })
    }

    #[test]
    fn failures_past_the_free_ones_wait_twice_as_long_each_up_to_the_cap() {
        let policy = ThrottlePolicy::default();
        let at = DateTime::from_timestamp(1_000_000, 0).unwrap();
        assert_eq!(failure_wait(&policy, None, at), None);
        assert_eq!(failure_wait(&policy, record(4, at), at), None);
        assert_eq!(
            failure_wait(&policy, record(5, at), at),
            Some(TimeDelta::seconds(1))
        );
        assert_eq!(
            failure_wait(&policy, record(6, at), at),
            Some(TimeDelta::seconds(2))
        );
        assert_eq!(
            failure_wait(&policy, record(9, at), at),
            Some(TimeDelta::seconds(16))
        );
        assert_eq!(
            failure_wait(&policy, record(20, at), at),
            Some(TimeDelta::seconds(900))
        );
        assert_eq!(
            failure_wait(&policy, record(i64::MAX, at), at),
            Some(TimeDelta::seconds(900))
        );
        // Measured from the last failure.
        let later = at + TimeDelta::milliseconds(1500);
        assert_eq!(
            failure_wait(&policy, record(6, at), later),
            Some(TimeDelta::milliseconds(500))
        );
        assert_eq!(failure_wait(&policy, record(5, at), later), None);
    }

    #[test]
    fn without_free_failures_the_first_failure_costs_the_base_delay() {
        let policy = ThrottlePolicy {
            free_failures: 0,
            ..ThrottlePolicy::default()
        };
        let at = DateTime::from_timestamp(1_000_000, 0).unwrap();
        assert_eq!(failure_wait(&policy, None, at), None);
        assert_eq!(failure_wait(&policy, record(0, at), at), None);
        assert_eq!(
            failure_wait(&policy, record(1, at), at),
            Some(TimeDelta::seconds(1))
        );
        assert_eq!(
            failure_wait(&policy, record(2, at), at),
            Some(TimeDelta::seconds(2))
        );
    }

    #[test]
    fn a_full_window_blocks_until_it_ends() {
        let at = DateTime::from_timestamp(1_000_000, 0).unwrap();
        let window = TimeDelta::seconds(900);
        assert_eq!(window_wait(100, window, record(99, at), at), None);
        assert_eq!(
            window_wait(100, window, record(100, at), at + TimeDelta::seconds(100)),
            Some(TimeDelta::seconds(800))
        );
        assert_eq!(window_wait(100, window, record(100, at), at + window), None);
    }

    #[test]
    fn unknown_names_are_keyed_by_their_normalised_hash() {
        assert_eq!(
            login_key(None, "ADA@Example.com"),
            login_key(None, " ada@example.com ")
        );
        assert_eq!(login_key(None, "Ada"), login_key(None, "ada"));
        assert!(!login_key(None, "ada").contains("ada"));
    }
}
