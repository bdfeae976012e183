//! Password hashing as a bounded resource: a fixed number of hashing threads, each
//! reusing its own argon2 memory, behind a bounded queue that refuses at once when full.
//!
//! argon2id is deliberately expensive (the default cost is 19 MiB and ~25 ms per hash).
//! Run on a general-purpose blocking pool, every concurrent login allocates its own
//! memory and takes its own thread, so a login flood grows memory and threads with the
//! number of requests and starves the database calls sharing that pool. A [`HashPool`]
//! bounds all three: at most `threads` hashes run at once, each in memory its thread
//! allocated once; at most `queue` more wait; any further request gets
//! [`HashError::Busy`] without hashing and without waiting.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use thread_priority::{ThreadPriority, set_current_thread_priority};

use portcullis_domain::{
    HashError, HashScheme, Password, PasswordHash, PasswordHasher, PasswordVerdict, nonblocking,
};

use crate::password::{Argon2Hasher, Memory};

/// One piece of work for a hashing thread, run with the thread's hasher and memory.
type Job = Box<dyn FnOnce(&Argon2Hasher, &mut Memory) + Send>;

/// The size of a [`HashPool`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashPoolConfig {
    /// Hashing threads: how many hashes run at once. At least 1.
    pub threads: usize,
    /// How many hashes may wait for a thread; a hash that finds this many waiting is
    /// refused with [`HashError::Busy`]. 0: none wait.
    pub queue: usize,
    /// Whether the hashing threads run at the lowest CPU priority (nice 19), so that
    /// when hashes compete with request handling for the cores (a login flood) the
    /// requests that need no hash keep their latency and hashing takes what is left.
    pub low_priority: bool,
}

impl HashPoolConfig {
    /// `threads` threads (at least 1) and a queue of 4 × `threads`.
    pub fn with_threads(threads: usize) -> Self {
        let threads = threads.max(1);
        Self {
            threads,
            queue: 4 * threads,
            low_priority: true,
        }
    }
}

impl Default for HashPoolConfig {
    /// One thread per core, a queue of 4 × that, at low priority.
    fn default() -> Self {
        Self::with_threads(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

/// The [`PasswordHasher`] port on a fixed pool of hashing threads (see the module
/// documentation). Hashing memory is at most `threads` × the configured argon2 memory
/// cost, plus, while an old hash made with a larger cost is verified, that hash's cost.
///
/// The caller's thread blocks while its hash waits and runs: at most `queue` hashes
/// ahead of it, so the wait is bounded by `(queue / threads + 1)` hash times. Dropping
/// the pool stops its threads once their current hash is done.
pub struct HashPool {
    jobs: SyncSender<Job>,
    /// Callers whose hash is queued or running.
    pending: AtomicUsize,
    config: HashPoolConfig,
    /// The threads' hasher, for reading stored hashes without hashing.
    hasher: Argon2Hasher,
}

impl std::fmt::Debug for HashPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashPool")
            .field("config", &self.config)
            .field("memory_kib", &self.hasher.params().memory_kib)
            .finish_non_exhaustive()
    }
}

impl HashPool {
    /// Starts `config.threads` hashing threads (named `argon2-N`), each hashing with
    /// `hasher`'s parameters. Each allocates its argon2 memory at its first hash and
    /// keeps it.
    pub fn new(hasher: Argon2Hasher, config: HashPoolConfig) -> Result<Self, HashError> {
        let config = HashPoolConfig {
            threads: config.threads.max(1),
            ..config
        };
        let (jobs, receiver) = sync_channel::<Job>(config.queue);
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..config.threads {
            let hasher = hasher.clone();
            let receiver = receiver.clone();
            let low_priority = config.low_priority;
            std::thread::Builder::new()
                .name(format!("argon2-{index}"))
                .spawn(move || {
                    if low_priority {
                        lower_priority();
                    }
                    work(&hasher, &receiver)
                })
                .map_err(|e| HashError::Failed(format!("cannot start a hashing thread: {e}")))?;
        }
        Ok(Self {
            jobs,
            pending: AtomicUsize::new(0),
            config,
            hasher,
        })
    }

    /// Its size.
    pub fn config(&self) -> HashPoolConfig {
        self.config
    }

    /// Hashes running now, and hashes waiting for a thread.
    pub fn load(&self) -> (usize, usize) {
        let pending = self.pending.load(Ordering::SeqCst);
        let running = pending.min(self.config.threads);
        (running, pending - running)
    }

    /// Queues `job` and waits for its result; [`HashError::Busy`] at once when the
    /// queue is full.
    fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Argon2Hasher, &mut Memory) -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        if nonblocking::is_forbidden() {
            // Waiting for a hash is blocking: the caller runs the use case again where
            // it may wait.
            return Err(HashError::Failed(nonblocking::refuse().to_string()));
        }
        let (reply, result) = sync_channel(1);
        let job: Job = Box::new(move |hasher, memory| {
            // The caller may have gone; then nobody needs the answer.
            let _ = reply.send(job(hasher, memory));
        });
        self.pending.fetch_add(1, Ordering::SeqCst);
        let outcome = self.submit(job).and_then(|()| {
            result
                .recv()
                .map_err(|_| HashError::Failed("the hashing thread failed".into()))?
        });
        self.pending.fetch_sub(1, Ordering::SeqCst);
        outcome
    }

    /// Queues `job` without waiting for it.
    fn submit(&self, job: Job) -> Result<(), HashError> {
        match self.jobs.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(HashError::Busy),
            Err(TrySendError::Disconnected(_)) => {
                Err(HashError::Failed("the hashing threads have stopped".into()))
            }
        }
    }
}

/// Makes the current thread yield the cores to every normal-priority thread. Lowering
/// a priority needs no privilege; should the system refuse anyway, hashing still works
/// at normal priority.
fn lower_priority() {
    if let Err(error) = set_current_thread_priority(ThreadPriority::Min) {
        tracing::warn!(?error, "hashing thread keeps normal priority");
    }
}

/// A hashing thread: takes jobs until the pool is dropped, with one [`Memory`] for all.
fn work(hasher: &Argon2Hasher, jobs: &Mutex<Receiver<Job>>) {
    let mut memory = Memory::default();
    loop {
        let job = {
            let jobs = jobs.lock().unwrap_or_else(PoisonError::into_inner);
            jobs.recv()
        };
        let Ok(job) = job else {
            return;
        };
        // A panicking hash loses its answer (the caller sees a failure), not the thread.
        if catch_unwind(AssertUnwindSafe(|| job(hasher, &mut memory))).is_err() {
            memory = Memory::default();
        }
    }
}

impl PasswordHasher for HashPool {
    /// Every thread is hashing and the queue is full (by a count of the callers
    /// waiting, so a moment's hint: `hash` and `verify` still decide).
    fn is_busy(&self) -> bool {
        self.pending.load(Ordering::SeqCst) >= self.config.threads + self.config.queue
    }

    fn hash(&self, password: &Password) -> Result<PasswordHash, HashError> {
        let password = password.clone();
        self.run(move |hasher, memory| hasher.hash_in(&password, memory))
    }

    fn verify(
        &self,
        password: &Password,
        hash: &PasswordHash,
    ) -> Result<PasswordVerdict, HashError> {
        let password = password.clone();
        let hash = hash.clone();
        self.run(move |hasher, memory| hasher.verify_in(&password, &hash, memory))
    }

    /// Read on the caller's thread: no hashing.
    fn scheme(&self, hash: &PasswordHash) -> Option<HashScheme> {
        self.hasher.scheme_of(hash)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::mpsc::channel;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::Argon2Params;

    const FAST: Argon2Params = Argon2Params {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    };

    fn pool(threads: usize, queue: usize) -> HashPool {
        HashPool::new(
            Argon2Hasher::new(FAST).unwrap(),
            HashPoolConfig {
                threads,
                queue,
                low_priority: false,
            },
        )
        .unwrap()
    }

    /// Occupies one hashing thread until the returned sender is dropped or sent to;
    /// returns once the thread has started on it.
    /// With no queue, a job is taken only by a thread already waiting for one, which a
    /// thread that just started or just finished may not be yet: retry while busy.
    fn occupy(pool: &HashPool) -> std::sync::mpsc::Sender<()> {
        let (release, released) = channel::<()>();
        let released = Arc::new(Mutex::new(released));
        let (started, running) = channel::<()>();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (started, released) = (started.clone(), released.clone());
            match pool.submit(Box::new(move |_, _| {
                started.send(()).unwrap();
                let _ = released.lock().unwrap().recv();
            })) {
                Ok(()) => break,
                Err(HashError::Busy) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("{e}"),
            }
        }
        running.recv().unwrap();
        release
    }

    /// Reports each memory's allocation count through `counts`.
    fn count_allocations(pool: &HashPool, counts: &std::sync::mpsc::Sender<usize>) {
        let counts = counts.clone();
        pool.run(move |_, memory| {
            counts.send(memory.allocations).unwrap();
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn hashes_and_verifies_like_the_plain_hasher() {
        let pool = pool(2, 8);
        let password = Password::new("correct horse");
        let hash = pool.hash(&password).unwrap();
        assert!(hash.as_str().starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert_eq!(
            pool.verify(&password, &hash).unwrap(),
            PasswordVerdict::Valid
        );
        assert_eq!(
            pool.verify(&Password::new("wrong"), &hash).unwrap(),
            PasswordVerdict::Invalid
        );
        // Interchangeable with the plain hasher's hashes, both ways.
        let plain = Argon2Hasher::new(FAST).unwrap();
        assert_eq!(
            plain.verify(&password, &hash).unwrap(),
            PasswordVerdict::Valid
        );
        let other = plain.hash(&password).unwrap();
        assert_eq!(
            pool.verify(&password, &other).unwrap(),
            PasswordVerdict::Valid
        );
        assert!(
            pool.verify(&password, &PasswordHash::new("junk".into()))
                .is_err()
        );
    }

    #[test]
    fn busy_while_every_thread_and_queue_place_is_taken() {
        let pool = Arc::new(pool(1, 1));
        assert!(!pool.is_busy());
        let (release, released) = channel::<()>();
        let released = Arc::new(Mutex::new(released));
        // One caller's job runs (and blocks until released), the other's waits queued.
        let callers: Vec<_> = (0..2)
            .map(|_| {
                let (pool, released) = (pool.clone(), released.clone());
                // A job is refused while the thread has not yet taken the one before
                // it from the queue: try again.
                std::thread::spawn(move || {
                    loop {
                        let released = released.clone();
                        match pool.run(move |_, _| {
                            let _ = released.lock().unwrap().recv();
                            Ok(())
                        }) {
                            Err(HashError::Busy) => std::thread::sleep(Duration::from_millis(5)),
                            done => return done,
                        }
                    }
                })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pool.is_busy() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(pool.is_busy());
        drop(release);
        for caller in callers {
            caller.join().unwrap().unwrap();
        }
        assert!(!pool.is_busy());
    }

    #[test]
    fn a_full_queue_refuses_at_once_without_hashing() {
        let pool = pool(1, 1);
        let release = occupy(&pool);
        // The one queue place, taken by a hash that must not run before the release.
        let (ran, hashed) = channel::<()>();
        pool.submit(Box::new(move |_, _| ran.send(()).unwrap()))
            .unwrap();
        let started = Instant::now();
        let refused = pool.hash(&Password::new("correct horse"));
        assert!(matches!(refused, Err(HashError::Busy)), "{refused:?}");
        let refused = pool.verify(
            &Password::new("x"),
            &PasswordHash::new("$argon2id$v=19$m=1024,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$c29tZXNhbHRzb21lc2FsdHNvbWVzYWx0c29tZXNhbHQ".into()),
        );
        assert!(matches!(refused, Err(HashError::Busy)), "{refused:?}");
        // Refused without waiting for the thread (which is blocked until released).
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(hashed.try_recv().is_err(), "the queued job ran early");
        drop(release);
        hashed.recv().unwrap();
        // Room again: hashing works.
        pool.hash(&Password::new("correct horse")).unwrap();
    }

    #[test]
    fn a_zero_queue_takes_only_what_idle_threads_can_run() {
        let pool = pool(1, 0);
        let release = occupy(&pool);
        assert!(matches!(
            pool.hash(&Password::new("pw")),
            Err(HashError::Busy)
        ));
        drop(release);
        // The thread is idle again once it has finished; retry until it waits for work.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match pool.hash(&Password::new("pw")) {
                Ok(_) => break,
                Err(HashError::Busy) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn each_thread_allocates_its_memory_once() {
        let pool = pool(1, 4);
        let password = Password::new("correct horse");
        let (counts, seen) = channel();
        count_allocations(&pool, &counts);
        assert_eq!(seen.recv().unwrap(), 0, "nothing allocated before a hash");
        let mut hashes = Vec::new();
        for _ in 0..5 {
            hashes.push(pool.hash(&password).unwrap());
        }
        for hash in &hashes {
            assert_eq!(
                pool.verify(&password, hash).unwrap(),
                PasswordVerdict::Valid
            );
        }
        count_allocations(&pool, &counts);
        assert_eq!(seen.recv().unwrap(), 1, "ten hashes, one allocation");
    }

    #[test]
    fn a_larger_stored_cost_gets_a_buffer_of_its_own() {
        let pool = pool(1, 4);
        let password = Password::new("correct horse");
        let bigger = Argon2Hasher::new(Argon2Params {
            memory_kib: 4096,
            ..FAST
        })
        .unwrap()
        .hash(&password)
        .unwrap();
        pool.hash(&password).unwrap();
        assert_eq!(
            pool.verify(&password, &bigger).unwrap(),
            PasswordVerdict::ValidNeedsRehash
        );
        pool.hash(&password).unwrap();
        let (counts, seen) = channel();
        count_allocations(&pool, &counts);
        // Its own buffer, once; the thread's memory stayed at the configured size.
        assert_eq!(seen.recv().unwrap(), 2);
        let kept = pool
            .run(|hasher, memory| Ok(memory_len(memory) == hasher.block_count()))
            .unwrap();
        assert!(kept);
    }

    fn memory_len(memory: &Memory) -> usize {
        memory.len()
    }

    #[test]
    fn threads_run_hashes_in_parallel_up_to_their_number() {
        let pool = pool(2, 0);
        let first = occupy(&pool);
        let second = occupy(&pool);
        assert!(matches!(
            pool.hash(&Password::new("pw")),
            Err(HashError::Busy)
        ));
        drop((first, second));
    }

    /// The calling thread's niceness, from `/proc/thread-self/stat`.
    #[cfg(target_os = "linux")]
    fn own_nice() -> i64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // After the parenthesised name: state is field 3, nice field 19.
        let after_name = stat.rsplit_once(')').unwrap().1;
        after_name
            .split_whitespace()
            .nth(16)
            .unwrap()
            .parse()
            .unwrap()
    }

    /// The niceness of the thread running a hash.
    #[cfg(target_os = "linux")]
    fn hashing_thread_nice(pool: &HashPool) -> i64 {
        pool.run(|_, _| Ok(own_nice())).unwrap()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn low_priority_threads_hash_at_nice_19() {
        let low = HashPool::new(
            Argon2Hasher::new(FAST).unwrap(),
            HashPoolConfig::with_threads(1),
        )
        .unwrap();
        assert_eq!(hashing_thread_nice(&low), 19);
        // A normal-priority pool keeps the niceness it was started with.
        assert_eq!(hashing_thread_nice(&pool(1, 1)), own_nice());
    }

    #[test]
    fn default_sizes_follow_the_cores() {
        let config = HashPoolConfig::default();
        assert!(config.threads >= 1);
        assert_eq!(config.queue, 4 * config.threads);
        assert_eq!(
            HashPoolConfig::with_threads(0),
            HashPoolConfig {
                threads: 1,
                queue: 4,
                low_priority: true,
            }
        );
    }
}
