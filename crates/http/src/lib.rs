//! Portcullis's HTTP layer.
//!
//! One module set per API dialect ([`authapi`], ...): its request types, handlers and
//! error mapping. Dialects share only the plumbing: [`body`] (bounded JSON reading),
//! [`blocking`] (running use cases off the async runtime) and [`bearer`]. A new dialect
//! is a new module here; the domain does not change.

/// `From` the failures no client causes (a use case's [`portcullis_domain::Internal`], a
/// blocking task that did not finish) for a dialect's error type, through its
/// `internal(&dyn Display)` constructor, which logs the cause and hides it.
macro_rules! internal_failures {
    ($error:ty) => {
        impl From<$crate::blocking::BlockingFailed> for $error {
            fn from(_: $crate::blocking::BlockingFailed) -> Self {
                Self::internal(&"blocking task failed")
            }
        }

        impl From<portcullis_domain::Internal> for $error {
            fn from(error: portcullis_domain::Internal) -> Self {
                Self::internal(&error)
            }
        }
    };
}

pub mod authapi;
pub mod bearer;
pub mod blocking;
pub mod body;
pub mod cbs;
pub mod cookie;
mod health;
pub mod ioweyou;
pub mod pocketbase;
pub mod routing;

use std::sync::Arc;

use actix_web::web;
use chrono::TimeDelta;
use portcullis_domain::AuthService;
pub use routing::{DialectMount, DialectName};

/// Reports whether the server can serve: its database answers.
pub trait Readiness: Send + Sync {
    /// Blocking; run on the blocking pool. `Err` carries a reason for the log.
    fn check(&self) -> Result<(), String>;
}

/// Limits and switches of the HTTP layer.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes. Default 16 KiB.
    pub body_limit: usize,
    /// The dialects served and their path prefixes. Default: all, at their documented
    /// paths.
    pub dialects: Vec<DialectMount>,
    /// Whether every cookie Portcullis sets carries `Secure`. Default true; off only for
    /// plain-HTTP development.
    pub cookie_secure: bool,
    pub pocketbase: PocketbaseConfig,
}

/// Switches of the pocketbase dialect.
#[derive(Clone, Debug)]
pub struct PocketbaseConfig {
    /// Lifetime of the token a pocketbase login returns. Default 1209600 s (14 days),
    /// PocketBase's own default.
    pub token_ttl: TimeDelta,
    /// Whether a pocketbase login also sets the `pb_auth` cookie. Default true.
    pub cookie: bool,
}

impl Default for PocketbaseConfig {
    fn default() -> Self {
        Self {
            token_ttl: TimeDelta::seconds(1_209_600),
            cookie: true,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit: 16 * 1024,
            dialects: DialectMount::all_at_documented_paths(),
            cookie_secure: true,
            pocketbase: PocketbaseConfig::default(),
        }
    }
}

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    pub auth: Arc<AuthService>,
    pub readiness: Arc<dyn Readiness>,
    pub config: HttpConfig,
}

/// Mounts every route: health checks and all dialects.
pub fn configure(state: AppState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        let dialects = state.config.dialects.clone();
        cfg.app_data(web::Data::new(state));
        health::routes(cfg);
        routing::mount(cfg, &dialects);
    }
}
