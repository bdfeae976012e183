//! What every handler shares: the service, the readiness probe and the HTTP limits.

use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use portcullis_domain::AuthService;

use crate::telemetry::Metrics;

/// Reports whether the server can serve: its database answers.
pub trait Readiness: Send + Sync {
    /// Blocking; run on the blocking pool. SHOULD give up within
    /// [`READINESS_DEADLINE`](crate::READINESS_DEADLINE) (`/readyz` answers "not ready"
    /// then anyway). `Err` carries a reason for the log.
    fn check(&self) -> Result<(), String>;
}

/// Limits and switches of the HTTP layer.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes. Default 16 KiB.
    pub body_limit: usize,
    /// How long a request body may take to arrive once the headers have; then 408 and
    /// the connection is closed. Default 10 s.
    pub body_timeout: Duration,
    /// Whether every cookie Portcullis sets carries `Secure`. Default true; off only for
    /// plain-HTTP development.
    pub cookie_secure: bool,
    /// Origins (`https://app.example`) whose pages may call the cookie endpoints and
    /// read the answers (CORS, with credentials). Default none: cross-site requests to
    /// cookie endpoints are refused and no CORS header is sent.
    pub allowed_origins: Vec<String>,
    /// The proxies whose forwarding headers (`Forwarded`, `X-Forwarded-*`) are believed.
    /// Default none: a client's own claims about the host it called are ignored.
    pub trusted_proxies: Vec<IpNet>,
    /// The tokens' `iss`, as introspection reports it. Default `portcullis`.
    pub token_issuer: String,
    /// The tokens' `aud`, as introspection reports it. Default `portcullis`.
    pub token_audience: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit: 16 * 1024,
            body_timeout: Duration::from_secs(10),
            cookie_secure: true,
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            token_issuer: "portcullis".into(),
            token_audience: "portcullis".into(),
        }
    }
}

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    /// The use cases.
    pub auth: Arc<AuthService>,
    /// Whether the database answers, for `/readyz`.
    pub readiness: Arc<dyn Readiness>,
    /// Limits and switches every dialect shares.
    pub config: HttpConfig,
    /// Where requests and outcomes are counted; `None` counts nothing (no metrics
    /// listener).
    pub metrics: Option<Arc<Metrics>>,
}
