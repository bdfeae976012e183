//! The one way handlers run blocking work (argon2, Diesel, pool checkout).

use actix_web::web;
use portcullis_domain::{AuthService, InternalError};

use crate::state::AppState;

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

impl AppState {
    /// Runs `use_case` on the service on the blocking thread pool (see [`run_blocking`]).
    /// Handlers map both failures into their dialect's error with `.await??`.
    pub async fn run<T, E>(
        &self,
        use_case: impl FnOnce(&AuthService) -> Result<T, E> + Send + 'static,
    ) -> Result<Result<T, E>, BlockingFailed>
    where
        T: Send + 'static,
        E: Send + 'static,
    {
        let auth = self.auth.clone();
        run_blocking(move || use_case(&auth)).await
    }

    /// [`AppState::run`] for a use case that hashes a password: when the hasher is at
    /// capacity it is refused at once (`Busy`, the dialect's 503), without a blocking
    /// thread or any storage work, so the surplus of a login flood costs next to nothing.
    pub async fn run_hashing<T, E>(
        &self,
        use_case: impl FnOnce(&AuthService) -> Result<T, E> + Send + 'static,
    ) -> Result<Result<T, E>, BlockingFailed>
    where
        T: Send + 'static,
        E: From<InternalError> + Send + 'static,
    {
        if let Err(busy) = self.auth.ensure_hashing_capacity() {
            return Ok(Err(busy.into()));
        }
        self.run(use_case).await
    }
}
