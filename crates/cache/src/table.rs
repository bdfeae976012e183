//! A bounded, sharded map whose fills cannot resurrect what an invalidation removed.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Shards keep lock contention low on many cores; a power of two.
const SHARDS: usize = 16;

struct Shard<K, V> {
    entries: HashMap<K, (V, Instant)>,
    /// Bumped by every removal, so a fill that read the store before it is refused.
    epoch: u64,
}

/// Where a fill started: the epoch of the key's shard before the store was read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FillTicket {
    shard: usize,
    epoch: u64,
}

pub(crate) struct Table<K, V> {
    shards: Box<[Mutex<Shard<K, V>>]>,
    hasher: RandomState,
    per_shard: usize,
    ttl: Duration,
}

impl<K: Hash + Eq + Copy, V: Clone> Table<K, V> {
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Self {
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    entries: HashMap::new(),
                    epoch: 0,
                })
            })
            .collect();
        Self {
            shards,
            hasher: RandomState::new(),
            per_shard: capacity.div_ceil(SHARDS),
            ttl,
        }
    }

    fn shard_of(&self, key: &K) -> usize {
        // Truncation is the point: the low bits pick the shard.
        (self.hasher.hash_one(key) as usize) % SHARDS
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, Shard<K, V>> {
        // A panic while holding the lock leaves a consistent map (every change is one
        // HashMap call), so a poisoned lock is still usable.
        self.shards[shard]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The entry if it is younger than the time to live.
    pub(crate) fn get(&self, key: &K) -> Option<V> {
        let shard = self.lock(self.shard_of(key));
        shard
            .entries
            .get(key)
            .filter(|(_, stored)| stored.elapsed() < self.ttl)
            .map(|(value, _)| value.clone())
    }

    /// Taken before reading the store, for [`Table::fill`].
    pub(crate) fn ticket(&self, key: &K) -> FillTicket {
        let shard = self.shard_of(key);
        FillTicket {
            shard,
            epoch: self.lock(shard).epoch,
        }
    }

    /// Stores what the store returned, unless an invalidation reached the key's shard
    /// since `ticket` was taken: then the value may predate it, and is dropped.
    pub(crate) fn fill(&self, key: K, value: V, ticket: FillTicket) {
        let mut shard = self.lock(ticket.shard);
        if shard.epoch != ticket.epoch {
            return;
        }
        if shard.entries.len() >= self.per_shard
            && !shard.entries.contains_key(&key)
            && let Some(victim) = shard.entries.keys().next().copied()
        {
            // Full: an arbitrary entry makes room, at once (a scan for expired ones would
            // cost every fill of a full shard its whole length, under the lock).
            shard.entries.remove(&victim);
        }
        shard.entries.insert(key, (value, Instant::now()));
    }

    /// Changes the entry in place, if there is one. For fields no decision reads: a
    /// fill in flight may still store the value it read before.
    pub(crate) fn update(&self, key: &K, change: impl FnOnce(&mut V)) {
        let mut shard = self.lock(self.shard_of(key));
        if let Some((value, _)) = shard.entries.get_mut(key) {
            change(value);
        }
    }

    pub(crate) fn remove(&self, key: &K) {
        let mut shard = self.lock(self.shard_of(key));
        shard.epoch = shard.epoch.wrapping_add(1);
        shard.entries.remove(key);
    }

    /// Removes every entry `doomed` picks, in every shard.
    pub(crate) fn remove_where(&self, doomed: impl Fn(&V) -> bool) {
        for index in 0..SHARDS {
            let mut shard = self.lock(index);
            shard.epoch = shard.epoch.wrapping_add(1);
            shard.entries.retain(|_, (value, _)| !doomed(value));
        }
    }

    pub(crate) fn clear(&self) {
        self.remove_where(|_| true);
    }

    pub(crate) fn len(&self) -> usize {
        (0..SHARDS)
            .map(|index| self.lock(index).entries.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(3600);

    #[test]
    fn a_fill_returns_what_was_stored() {
        let table = Table::new(100, LONG);
        let ticket = table.ticket(&1);
        table.fill(1, "one", ticket);
        assert_eq!(table.get(&1), Some("one"));
        assert_eq!(table.get(&2), None);
    }

    #[test]
    fn a_fill_that_raced_an_invalidation_is_dropped() {
        let table = Table::new(100, LONG);
        let ticket = table.ticket(&1);
        // The store was read, then the key was invalidated before the fill landed.
        table.remove(&1);
        table.fill(1, "stale", ticket);
        assert_eq!(table.get(&1), None);
        // A fill that starts after the invalidation is kept.
        let ticket = table.ticket(&1);
        table.fill(1, "fresh", ticket);
        assert_eq!(table.get(&1), Some("fresh"));
    }

    #[test]
    fn a_bulk_removal_refuses_fills_in_flight_and_spares_the_rest() {
        let table = Table::new(100, LONG);
        for key in 0..10 {
            let ticket = table.ticket(&key);
            table.fill(key, key, ticket);
        }
        let in_flight = table.ticket(&42);
        table.remove_where(|value| value % 2 == 0);
        table.fill(42, 42, in_flight);
        assert_eq!(table.len(), 5);
        assert_eq!(table.get(&3), Some(3));
        assert_eq!(table.get(&4), None);
        assert_eq!(table.get(&42), None);
    }

    #[test]
    fn entries_expire_after_their_time_to_live() {
        let table = Table::new(100, Duration::ZERO);
        let ticket = table.ticket(&1);
        table.fill(1, "one", ticket);
        assert_eq!(table.get(&1), None);
    }

    #[test]
    fn the_table_never_holds_more_than_its_capacity() {
        let capacity = 64;
        let table = Table::new(capacity, LONG);
        for key in 0..10_000 {
            let ticket = table.ticket(&key);
            table.fill(key, key, ticket);
        }
        assert!(table.len() <= capacity, "{} entries", table.len());
        assert!(table.len() >= capacity / 2, "{} entries", table.len());
    }
}
