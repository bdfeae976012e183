//! Liveness and readiness probes.

use std::time::Duration;

use actix_web::http::header::ALLOW;
use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::blocking::run_blocking;
use crate::state::AppState;

pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/healthz")
            .route(web::get().to(healthz))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/readyz")
            .route(web::get().to(readyz))
            .default_service(web::to(method_not_allowed)),
    );
}

/// A probe asked with another method than GET.
async fn method_not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((ALLOW, "GET"))
        .json(json!({"status": "method not allowed"}))
}

/// The process is up and serving.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The longest `/readyz` takes to answer, whatever the database does: a probe that
/// outlasts its own timeout tells a load balancer nothing.
pub const READINESS_DEADLINE: Duration = Duration::from_millis(750);

/// The database answers within [`READINESS_DEADLINE`]; 503 otherwise, so a load balancer
/// stops routing here.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let readiness = state.readiness.clone();
    // The check should give up by the deadline itself (its connection checkout); the
    // timeout around it also covers a wait for a blocking thread or a query that hangs
    // on a dead connection.
    let check = run_blocking(move || readiness.check());
    let reason = match actix_web::rt::time::timeout(READINESS_DEADLINE, check).await {
        Ok(Ok(Ok(()))) => return HttpResponse::Ok().json(json!({"status": "ready"})),
        Ok(Ok(Err(reason))) => reason,
        Ok(Err(_)) => "the readiness check failed".to_owned(),
        Err(_) => format!("no answer within {READINESS_DEADLINE:?}"),
    };
    tracing::warn!(%reason, "not ready");
    HttpResponse::ServiceUnavailable().json(json!({"status": "unavailable"}))
}
