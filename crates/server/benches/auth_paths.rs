//! The domain's hot paths on the production adapters, as ratios against baselines
//! measured in the same run (so the figures hold on any machine):
//!
//! - `authenticate` (JWT verify + session and user lookups) against a bare JWT verify;
//! - `login` (user lookup, argon2id verify, session insert, two JWTs) against one
//!   argon2id hash with the same parameters;
//! - `refresh` (verify, session lookup, atomic rotation, two JWTs) against a bare JWT
//!   verify.
//!
//! Each on SQLite and on PostgreSQL (`TEST_DATABASE_URL`, see `scripts/test-db.sh`).
//! Run with `make bench`. Each figure is the median of several timed batches.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_crypto::{Argon2Hasher, Argon2Params};
use portcullis_domain::{
    AuthService, Clock, IssueOptions, Password, PasswordHasher, Registration, SystemClock,
    TokenKind,
};
use portcullis_persistence::testing::TestDatabase;
use portcullis_server::{Config, LogMailer, build_service};

const BATCHES: usize = 7;

/// Median time per operation of `op`, over `BATCHES` batches of `per_batch` calls.
/// A fixed secrets key for the benchmarks' databases (PostgreSQL needs one).
const BENCH_SECRETS_KEY: &str = "YmVuY2gtb25seS1zZWNyZXRzLWtleS0wMTIzNDU2Nzg=";

fn per_op(per_batch: u32, mut op: impl FnMut()) -> Duration {
    for _ in 0..per_batch.min(10) {
        op();
    }
    let mut samples: Vec<Duration> = (0..BATCHES)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..per_batch {
                op();
            }
            started.elapsed() / per_batch
        })
        .collect();
    samples.sort();
    samples[BATCHES / 2]
}

fn show(name: &str, time: Duration, baseline: Duration, baseline_name: &str) {
    println!(
        "{name:<34} {:>12.1} µs   {:>8.2}× {baseline_name}",
        time.as_secs_f64() * 1e6,
        time.as_secs_f64() / baseline.as_secs_f64()
    );
}

fn service_on(database: &TestDatabase) -> AuthService {
    let url = database.url().to_owned();
    let config = Config::from_lookup(|name| match name {
        "DATABASE_URL" => Some(url.clone()),
        "PORTCULLIS_SECRETS_KEY" => Some(BENCH_SECRETS_KEY.to_owned()),
        _ => None,
    })
    .unwrap();
    build_service(&config, database.database(), Arc::new(LogMailer)).unwrap()
}

fn bench_backend(
    label: &str,
    database: &TestDatabase,
    codec_baseline: Duration,
    hash_baseline: Duration,
) {
    let service = service_on(database);
    let password = Password::new("correct horse battery");
    let registered = service
        .register(
            Registration {
                name: "Bench",
                bio: None,
                email: Some("bench@example.com"),
                username: None,
                password: &password,
                confirm: None,
            },
            &IssueOptions::default(),
        )
        .unwrap();
    let access = registered.tokens.access.token.clone();
    let authenticate = per_op(2000, || {
        service.authenticate(&access).unwrap();
    });
    show(
        &format!("authenticate ({label})"),
        authenticate,
        codec_baseline,
        "jwt verify",
    );

    let mut refresh_token = registered.tokens.refresh.token.clone();
    let refresh = per_op(200, || {
        refresh_token = service
            .refresh(&refresh_token)
            .unwrap()
            .tokens
            .refresh
            .token;
    });
    show(
        &format!("refresh ({label})"),
        refresh,
        codec_baseline,
        "jwt verify",
    );

    let login = per_op(10, || {
        service
            .login("bench@example.com", &password, &IssueOptions::default())
            .unwrap();
    });
    show(
        &format!("login ({label})"),
        login,
        hash_baseline,
        "argon2id hash",
    );
}

fn main() {
    let sqlite = TestDatabase::sqlite();
    let postgres = TestDatabase::postgres();
    let service = service_on(&sqlite);
    // Baselines, with the production adapters and parameters.
    let registered = service
        .register(
            Registration {
                name: "Baseline",
                bio: None,
                email: Some("baseline@example.com"),
                username: None,
                password: &Password::new("correct horse battery"),
                confirm: None,
            },
            &IssueOptions::default(),
        )
        .unwrap();
    // The same codec the service uses: the secret generated into this database.
    let url = sqlite.url().to_owned();
    let config = Config::from_lookup(|name| match name {
        "DATABASE_URL" => Some(url.clone()),
        "PORTCULLIS_SECRETS_KEY" => Some(BENCH_SECRETS_KEY.to_owned()),
        _ => None,
    })
    .unwrap();
    let codec = portcullis_server::app::token_codec(&config, sqlite.database()).unwrap();
    let access = registered.tokens.access.token.clone();
    let jwt_verify = per_op(20_000, || {
        codec
            .verify(&access, TokenKind::Access, SystemClock.now())
            .unwrap();
    });
    let hasher = Argon2Hasher::new(Argon2Params::default()).unwrap();
    let password = Password::new("correct horse battery");
    let argon2_hash = per_op(10, || {
        hasher.hash(&password).unwrap();
    });
    println!("{:<34} {:>15}   {:>9}", "path", "median per op", "ratio");
    show(
        "jwt verify (baseline)",
        jwt_verify,
        jwt_verify,
        "jwt verify",
    );
    show(
        "argon2id hash (baseline)",
        argon2_hash,
        argon2_hash,
        "argon2id hash",
    );
    bench_backend("sqlite", &sqlite, jwt_verify, argon2_hash);
    bench_backend("postgres", &postgres, jwt_verify, argon2_hash);
}
