//! The one way handlers run blocking work (argon2, Diesel, pool checkout).

use actix_web::web;

/// The blocking task did not finish: it panicked or the pool shut down.
#[derive(Debug)]
pub struct BlockingFailed;

/// Runs `work` on the blocking thread pool inside the caller's tracing span, so its logs
/// carry the request's context.
pub async fn run_blocking<T, F>(work: F) -> Result<T, BlockingFailed>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let span = tracing::Span::current();
    web::block(move || span.in_scope(work))
        .await
        .map_err(|_| BlockingFailed)
}
