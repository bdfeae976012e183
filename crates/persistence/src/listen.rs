//! The change notifications PostgreSQL sends for sessions and users (the triggers of
//! migration `2026-12-01-000000_cache_invalidation`), read by one thread per process
//! for the caches that must drop what changed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::{Connection as _, PgConnection, RunQueryDsl as _};
use portcullis_domain::{SessionId, UserId};
use uuid::Uuid;

/// The channel the triggers notify on.
const CHANNEL: &str = "portcullis_cache";
/// How often the connection is read for notifications: the delay they add.
const POLL: Duration = Duration::from_millis(10);
/// How often the listener proves it is current, by a notification of its own making a
/// round trip through the database's queue behind every change committed before it.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(250);
/// The longest wait between attempts to reconnect.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long [`ChangeListener`]'s drop waits for the thread to leave libpq.
const STOP_WAIT: Duration = Duration::from_secs(3);

/// A committed change to what a cache holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Session(SessionId),
    /// The user and every one of its sessions.
    User(UserId),
    /// Anything (a table was truncated).
    Everything,
}

/// Where a [`ChangeListener`] reports. Called on the listener's own thread.
pub trait ChangeSink: Send + Sync + 'static {
    /// `change` was committed.
    fn changed(&self, change: Change);
    /// Every change committed before `sent_at` has been reported.
    fn confirmed(&self, sent_at: Instant);
    /// The connection is lost, or new: changes may have been missed.
    fn lost(&self);
}

/// The thread listening for [`Change`]s; dropping it stops the thread.
pub struct ChangeListener {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ChangeListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeListener").finish_non_exhaustive()
    }
}

impl ChangeListener {
    pub(crate) fn spawn(url: String, sink: Arc<dyn ChangeSink>) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("portcullis-changes".into())
            .spawn(move || listen(&url, sink.as_ref(), &stopping))?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for ChangeListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Joined (within reason) so that no thread is inside libpq's TLS when the
        // process exits, which OpenSSL's exit handlers can answer with a crash.
        if let Some(thread) = self.thread.take() {
            let deadline = Instant::now() + STOP_WAIT;
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(POLL);
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

/// Why a listening connection ended.
enum Ended {
    Stopped,
    Failed(diesel::result::Error),
}

impl From<diesel::result::Error> for Ended {
    fn from(error: diesel::result::Error) -> Self {
        Self::Failed(error)
    }
}

fn listen(url: &str, sink: &dyn ChangeSink, stop: &AtomicBool) {
    let mut backoff = POLL;
    while !stop.load(Ordering::Acquire) {
        sink.lost();
        let ended = match PgConnection::establish(url) {
            Ok(mut conn) => {
                backoff = POLL;
                serve(&mut conn, sink, stop)
            }
            Err(error) => Err(Ended::Failed(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UnableToSendCommand,
                Box::new(error.to_string()),
            ))),
        };
        match ended {
            Ok(never) => match never {},
            Err(Ended::Stopped) => break,
            Err(Ended::Failed(error)) => {
                tracing::warn!(%error, "change notifications interrupted: the session cache is bypassed until they resume");
            }
        }
        sleep_unless_stopped(backoff, stop);
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    sink.lost();
}

fn sleep_unless_stopped(total: Duration, stop: &AtomicBool) {
    let until = Instant::now() + total;
    while Instant::now() < until && !stop.load(Ordering::Acquire) {
        std::thread::sleep(POLL.min(until.saturating_duration_since(Instant::now())));
    }
}

/// Listens on one connection until it fails or `stop` is set.
fn serve(
    conn: &mut PgConnection,
    sink: &dyn ChangeSink,
    stop: &AtomicBool,
) -> Result<std::convert::Infallible, Ended> {
    diesel::sql_query(format!("LISTEN {CHANNEL}")).execute(conn)?;
    tracing::info!("listening for change notifications: the session cache serves once current");
    // Our own probes carry an id no other listener has, and a sequence number.
    let me = format!("p:{}:", Uuid::new_v4().simple());
    let mut sequence: u64 = 0;
    let mut pending: Option<(u64, Instant)> = None;
    let mut next_probe = Instant::now();
    loop {
        if stop.load(Ordering::Acquire) {
            return Err(Ended::Stopped);
        }
        if Instant::now() >= next_probe && pending.is_none() {
            sequence += 1;
            let sent_at = Instant::now();
            diesel::sql_query("SELECT pg_notify($1, $2)")
                .bind::<diesel::sql_types::Text, _>(CHANNEL)
                .bind::<diesel::sql_types::Text, _>(format!("{me}{sequence}"))
                .execute(conn)?;
            pending = Some((sequence, sent_at));
            next_probe = sent_at + PROBE_INTERVAL;
        }
        for notification in conn.notifications_iter() {
            let payload = notification?.payload;
            if let Some(probe) = payload.strip_prefix(&me) {
                if let Some((awaited, sent_at)) = pending
                    && probe.parse() == Ok(awaited)
                {
                    sink.confirmed(sent_at);
                    pending = None;
                }
            } else if let Some(change) = parse(&payload) {
                sink.changed(change);
            }
        }
        std::thread::sleep(POLL);
    }
}

/// A trigger's payload; `None` for other listeners' probes and anything unknown.
fn parse(payload: &str) -> Option<Change> {
    if payload == "*" {
        return Some(Change::Everything);
    }
    let (kind, id) = payload.split_once(':')?;
    let id = Uuid::parse_str(id).ok()?;
    match kind {
        "s" => Some(Change::Session(SessionId::from_uuid(id))),
        "u" => Some(Change::User(UserId::from_uuid(id))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse_into_changes() {
        let id = Uuid::now_v7();
        assert_eq!(
            parse(&format!("s:{id}")),
            Some(Change::Session(SessionId::from_uuid(id)))
        );
        assert_eq!(
            parse(&format!("u:{id}")),
            Some(Change::User(UserId::from_uuid(id)))
        );
        assert_eq!(parse("*"), Some(Change::Everything));
        for ignored in ["p:12:3", "s:not-a-uuid", "x:", ""] {
            assert_eq!(parse(ignored), None, "{ignored}");
        }
    }
}
