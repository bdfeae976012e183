//! The HTTP crate's own tests: a fifth dialect added as one module and one line, and
//! every dialect fed arbitrary input. The service runs on the in-memory store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod arbitrary_input;
mod fifth_dialect;

use std::sync::Arc;

use portcullis_crypto::{Argon2Hasher, Argon2Params, JwtCodec, JwtConfig, JwtSecret};
use portcullis_domain::{AuthConfig, AuthService, Ports, SystemClock};
use portcullis_http::Readiness;
use portcullis_memory::MemoryStore;

pub struct AlwaysReady;

impl Readiness for AlwaysReady {
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

pub fn service() -> AuthService {
    let store = MemoryStore::new();
    let cheap = Argon2Params {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    };
    let secret = JwtSecret::from_bytes(vec![7; 32]).unwrap();
    let ports = Ports {
        users: Arc::new(store.clone()),
        sessions: Arc::new(store.clone()),
        reset_tokens: Arc::new(store.clone()),
        throttles: Arc::new(store.clone()),
        events: Arc::new(store.clone()),
        outbox: Arc::new(store.clone()),
        clients: Arc::new(store),
        hasher: Arc::new(Argon2Hasher::new(cheap).unwrap()),
        tokens: Arc::new(JwtCodec::new(JwtConfig::new(secret, "toy", "toy")).unwrap()),
        clock: Arc::new(SystemClock),
        mailer: Arc::new(portcullis_domain::MockMailer::new()),
    };
    AuthService::new(ports, AuthConfig::default())
}
