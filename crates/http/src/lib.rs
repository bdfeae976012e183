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
/// `internal(&dyn Display)` constructor, which logs the cause and hides it. An internal
/// error that is only temporary capacity (the hasher busy, the database unreachable:
/// [`portcullis_domain::InternalError::is_unavailable`]) is the dialect's
/// [`Refusal::Busy`] instead (`refused(&Refusal)`: 503 with `Retry-After`).
macro_rules! internal_failures {
    ($error:ty) => {
        impl From<$crate::blocking::BlockingFailed> for $error {
            fn from(_: $crate::blocking::BlockingFailed) -> Self {
                Self::internal(&"blocking task failed")
            }
        }

        impl From<portcullis_domain::InternalError> for $error {
            fn from(error: portcullis_domain::InternalError) -> Self {
                if !error.is_unavailable() {
                    return Self::internal(&error);
                }
                if matches!(error, portcullis_domain::InternalError::Store(_)) {
                    tracing::warn!(%error, "refused: database unavailable");
                } else {
                    tracing::debug!(%error, "refused: password hasher busy");
                }
                Self::refused(&$crate::dialect::Refusal::Busy {
                    retry_after: $crate::dialect::UNAVAILABLE_RETRY_AFTER,
                })
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
mod cross_site;
pub mod dialect;
mod health;
pub mod ioweyou;
mod jwks;
mod oauth;
pub mod openapi;
mod origin;
pub mod pocketbase;
mod routing;
pub mod settings;
mod state;
pub mod telemetry;

use actix_web::web;

pub use dialect::{Call, Dialect, Endpoint, Refusal, UNAVAILABLE_RETRY_AFTER};
pub use health::READINESS_DEADLINE;
pub use jwks::JWKS_PATH;
pub use settings::{DialectMount, DialectSettings, DialectSpec, SettingsError};
pub use state::{AppState, HttpConfig, Readiness};
pub use telemetry::{Metrics, Probe, observe};

/// Every dialect Portcullis speaks. The order is also the order of ownership of a path
/// two dialects share: authapi owns `POST /auth/login` over pocketbase, cbs owns
/// `POST /api/v1/auth/login` over a pocketbase mounted at `/api/v1`.
pub const DIALECTS: &[&DialectSpec] = &[
    &authapi::DIALECT,
    &ioweyou::DIALECT,
    &cbs::DIALECT,
    &pocketbase::DIALECT,
];

/// Every dialect with its default settings, at its documented paths (the server builds
/// its mounts from its configuration instead). A dialect whose defaults do not build is
/// left out and logged: a defect the tests catch.
pub fn all_dialects() -> Vec<DialectMount> {
    DIALECTS
        .iter()
        .filter_map(|spec| {
            DialectMount::with_defaults(spec)
                .map_err(|error| tracing::error!(%error, "dialect left out"))
                .ok()
        })
        .collect()
}

/// Headers every response carries, whoever answers it (unknown paths included): wrap
/// the app in it. `X-Content-Type-Options: nosniff`, so a browser never runs an answer
/// as anything but the type it says.
pub fn default_headers() -> actix_web::middleware::DefaultHeaders {
    actix_web::middleware::DefaultHeaders::new().add(("X-Content-Type-Options", "nosniff"))
}

/// Mounts every route: health checks, the key set ([`JWKS_PATH`]) and the `dialects`
/// (in their order, that of [`DIALECTS`], which decides who owns a shared path).
pub fn configure(
    state: AppState,
    dialects: Vec<DialectMount>,
) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::new(state));
        health::routes(cfg);
        jwks::routes(cfg);
        oauth::routes(cfg);
        openapi::routes(cfg, &dialects);
        routing::mount(cfg, &dialects);
    }
}
