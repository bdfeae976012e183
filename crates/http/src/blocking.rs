//! The one way handlers run blocking work (argon2, Diesel, pool checkout).

use actix_web::web;
use portcullis_domain::{AuthService, InternalError, nonblocking};

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

    /// `use_case` right here on the async worker, if every port can answer it without
    /// blocking (the session and user cached, the signing keys loaded): `None` when
    /// one would have had to block. Spares the hop to a blocking thread, which costs
    /// more than the whole use case when it is answered from memory. Read-only use
    /// cases only (see [`nonblocking`]).
    pub fn try_in_memory<T>(&self, use_case: impl FnOnce(&AuthService) -> T) -> Option<T> {
        nonblocking::attempt(|| use_case(&self.auth))
    }

    /// A read-only `use_case`, answered from memory if it can be
    /// ([`AppState::try_in_memory`]), else run as [`AppState::run`] runs it.
    pub async fn run_read_only<T, E>(
        &self,
        use_case: impl Fn(&AuthService) -> Result<T, E> + Send + 'static,
    ) -> Result<Result<T, E>, BlockingFailed>
    where
        T: Send + 'static,
        E: Send + 'static,
    {
        if let Some(done) = self.try_in_memory(&use_case) {
            return Ok(done);
        }
        self.run(use_case).await
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
