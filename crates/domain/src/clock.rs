//! The system clock, the one `Clock` every deployment uses.

use chrono::{DateTime, SubsecRound, Utc};

use crate::ports::Clock;

/// Reads the system time, truncated to microseconds: the precision PostgreSQL keeps,
/// so a stored instant reads back equal to the one written.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}
