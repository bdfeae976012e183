//! What a purge removes, and the lock that keeps instances from purging at once.

/// The PostgreSQL advisory lock that lets one instance purge at a time ("purge").
pub(crate) const PURGE_LOCK_KEY: i64 = 0x0070_7572_6765;

/// The PostgreSQL advisory lock that serializes changes to `signing_keys` ("keys").
pub(crate) const KEYS_LOCK_KEY: i64 = 0x6b65_7973;

/// How many rows of each kind a [`Database::purge`] deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    /// Sessions past their absolute expiry.
    pub sessions: usize,
    /// Refresh tokens expired, or of those sessions.
    pub refresh_tokens: usize,
    /// Reset tokens used or expired.
    pub reset_tokens: usize,
    /// Security events older than the retention period.
    pub events: usize,
    /// Throttle counters no limit looks at any more.
    pub throttles: usize,
    /// Given-up messages of the mail outbox, as old as the events purged.
    pub failed_mail: usize,
}
