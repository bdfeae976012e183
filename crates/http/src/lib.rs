//! Portcullis's HTTP layer.
//!
//! One module per API dialect ([`authapi`], ...): its request types, handlers, error
//! shapes and settings, described by the one [`DialectSpec`] it exports. [`DIALECTS`]
//! lists them; routing, middleware and the server's configuration ask each dialect
//! what they need ([`Dialect`]) and never name one. Dialects share only the plumbing:
//! [`body`] (bounded JSON reading), [`blocking`] (running use cases off the async
//! runtime) and [`bearer`]. A new dialect is a new module and a line in [`DIALECTS`];
//! the domain does not change (see `docs/architecture.md`).

/// `From` the failures no client causes (a use case's [`portcullis_domain::InternalError`], a
/// blocking task that did not finish) for a dialect's error type, through its
/// `internal(&dyn Display)` constructor, which logs the cause and hides it.
macro_rules! internal_failures {
    ($error:ty) => {
        impl From<$crate::blocking::BlockingFailed> for $error {
            fn from(_: $crate::blocking::BlockingFailed) -> Self {
                Self::internal(&"blocking task failed")
            }
        }

        impl From<portcullis_domain::InternalError> for $error {
            fn from(error: portcullis_domain::InternalError) -> Self {
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
pub mod dialect;
mod health;
pub mod ioweyou;
pub mod pocketbase;
mod routing;
pub mod settings;

use std::sync::Arc;

use actix_web::web;
use portcullis_domain::AuthService;

pub use dialect::{Call, Dialect, DialectSpec, Endpoint, Refusal};
pub use settings::{DialectMount, DialectSettings, SettingsError};

/// Every dialect Portcullis speaks. The order is also the order of ownership of a path
/// two dialects share: authapi owns `POST /auth/login` over pocketbase, cbs owns
/// `POST /api/v1/auth/login` over a pocketbase mounted at `/api/v1`.
pub const DIALECTS: &[&DialectSpec] = &[
    &authapi::DIALECT,
    &ioweyou::DIALECT,
    &cbs::DIALECT,
    &pocketbase::DIALECT,
];

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
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit: 16 * 1024,
            dialects: all_dialects_with_defaults(),
            cookie_secure: true,
        }
    }
}

/// Every dialect with its default settings, at its documented paths. A dialect whose
/// defaults do not build is left out and logged: a defect the tests catch.
fn all_dialects_with_defaults() -> Vec<DialectMount> {
    DIALECTS
        .iter()
        .filter_map(|spec| {
            DialectMount::with_defaults(spec)
                .map_err(|error| tracing::error!(%error, "dialect left out"))
                .ok()
        })
        .collect()
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
