//! Raw argon2id verifications per second: what the cores can hash with the server's
//! parameters, with nothing else around (no HTTP, no database, no queue). Each thread
//! keeps its own argon2 memory, as the server's hashing threads do.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use portcullis_crypto::Argon2Params;
use serde_json::json;

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// How long to hash, in seconds
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Hashing threads (default: one per core)
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
    /// argon2id memory cost, in KiB (the server's setting and default)
    #[arg(long, env = "PORTCULLIS_ARGON2_MEMORY_KIB",
          default_value_t = Argon2Params::default().memory_kib)]
    memory_kib: u32,
    /// argon2id time cost (the server's setting and default)
    #[arg(long, env = "PORTCULLIS_ARGON2_ITERATIONS",
          default_value_t = Argon2Params::default().iterations)]
    iterations: u32,
    /// argon2id lanes (the server's setting and default)
    #[arg(long, env = "PORTCULLIS_ARGON2_PARALLELISM",
          default_value_t = Argon2Params::default().parallelism)]
    parallelism: u32,
}

/// The password every verification checks; its value does not matter.
const PASSWORD: &[u8] = b"correct horse battery staple";
const OUTPUT_LEN: usize = 32;

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    if !(args.seconds.is_finite() && args.seconds > 0.0 && args.seconds <= 3600.0) {
        bail!("--seconds must be in (0, 3600]");
    }
    let params = Params::new(
        args.memory_kib,
        args.iterations,
        args.parallelism,
        Some(OUTPUT_LEN),
    )
    .map_err(|e| anyhow::anyhow!("invalid argon2 parameters: {e}"))?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("no randomness for a salt: {e}"))?;
    // The stored hash every verification recomputes and compares with.
    let mut expected = [0u8; OUTPUT_LEN];
    argon2
        .hash_password_into(PASSWORD, &salt, &mut expected)
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;

    let threads = args.threads.map_or_else(crate::cores, usize::from);
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.seconds);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let argon2 = argon2.clone();
            let blocks = params.block_count();
            std::thread::spawn(move || -> anyhow::Result<(u64, Instant)> {
                let mut memory = vec![Block::default(); blocks];
                let mut out = [0u8; OUTPUT_LEN];
                let mut done = 0u64;
                while Instant::now() < deadline {
                    argon2
                        .hash_password_into_with_memory(PASSWORD, &salt, &mut out, &mut memory)
                        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
                    if out != expected {
                        bail!("a verification did not match");
                    }
                    done += 1;
                }
                Ok((done, Instant::now()))
            })
        })
        .collect();
    let mut verifications = 0u64;
    let mut finished = started;
    for handle in handles {
        let (done, at) = handle
            .join()
            .map_err(|_| anyhow::anyhow!("a hashing thread panicked"))?
            .context("hashing")?;
        verifications += done;
        finished = finished.max(at);
    }
    let elapsed = finished.duration_since(started).as_secs_f64();
    let per_second = if elapsed > 0.0 {
        verifications as f64 / elapsed
    } else {
        0.0
    };
    crate::print_json(&json!({
        "benchmark": "argon2id-verify",
        "threads": threads,
        "seconds": elapsed,
        "verifications": verifications,
        "per_second": per_second,
        "ms_per_verification_per_thread": if verifications > 0 {
            elapsed * 1000.0 * threads as f64 / verifications as f64
        } else {
            0.0
        },
        "params": {
            "memory_kib": args.memory_kib,
            "iterations": args.iterations,
            "parallelism": args.parallelism,
        },
    }))
}
