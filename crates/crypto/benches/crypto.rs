//! What a login and an authenticated request cost in this crate: one argon2id hash
//! with the production defaults, and one JWT issue and verify.
//!
//! `cargo bench -p portcullis-crypto` runs in about half a minute.
#![allow(
    clippy::unwrap_used,
    reason = "a benchmark has no caller to report to; a failure should stop it loudly"
)]

use std::hint::black_box;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_crypto::{Argon2Hasher, Argon2Params, JwtCodec, JwtConfig, JwtSecret};
use portcullis_domain::{Claims, TokenKind};
use portcullis_domain::{Password, SessionId, TokenId, UserId};
use portcullis_domain::{PasswordHasher as _, TokenCodec as _};
use serde_json::{Map, json};

fn argon2id(c: &mut Criterion) {
    let hasher = Argon2Hasher::new(Argon2Params::default()).unwrap();
    let password = Password::new("correct horse battery staple");
    // Each hash takes tens of milliseconds: a few samples suffice.
    let mut group = c.benchmark_group("argon2id");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    group.bench_function("hash_default_params", |b| {
        b.iter(|| hasher.hash(black_box(&password)).unwrap())
    });
    group.finish();
}

fn jwt(c: &mut Criterion) {
    let codec = JwtCodec::new(JwtConfig::new(
        JwtSecret::generate().unwrap(),
        "https://auth.example.com",
        "example-api",
    ))
    .unwrap();
    let now = Utc::now();
    let mut extra = Map::new();
    extra.insert("username".into(), json!("ada"));
    let claims = Claims {
        subject: UserId::generate(now),
        session: SessionId::generate(now),
        token_id: TokenId::generate(now),
        kind: TokenKind::Access,
        issued_at: whole_seconds(now),
        expires_at: whole_seconds(now + TimeDelta::minutes(15)),
        extra,
    };
    let token = codec.issue(&claims).unwrap();

    let mut group = c.benchmark_group("jwt");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("issue", |b| {
        b.iter(|| codec.issue(black_box(&claims)).unwrap())
    });
    group.bench_function("verify", |b| {
        b.iter(|| {
            codec
                .verify(black_box(&token), TokenKind::Access, now)
                .unwrap()
        })
    });
    group.finish();
}

fn whole_seconds(time: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(time.timestamp(), 0).unwrap()
}

criterion_group!(benches, argon2id, jwt);
criterion_main!(benches);
