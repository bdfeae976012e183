//! Running a use case where blocking is not allowed (an async worker thread), for when
//! every port can answer from memory, so the request saves the hop to a blocking
//! thread. Adapters cooperate: one that would block (wait for a connection, a query, a
//! hash) while [`is_forbidden`] instead fails with [`refuse`], and [`attempt`] then
//! reports that the use case must be run again where blocking is allowed.
//!
//! Only read-only use cases may be attempted this way: a use case that changed
//! something before an adapter refused would change it twice.

use std::cell::Cell;

use crate::StoreError;

#[derive(Clone, Copy, Default)]
struct State {
    forbidden: bool,
    refused: bool,
}

thread_local! {
    static STATE: Cell<State> = const { Cell::new(State { forbidden: false, refused: false }) };
}

/// Runs `f` on this thread with blocking forbidden: `Some` of its result, or `None` if
/// an adapter refused to block (the result is then meaningless and dropped).
pub fn attempt<R>(f: impl FnOnce() -> R) -> Option<R> {
    let outer = STATE.replace(State {
        forbidden: true,
        refused: false,
    });
    // Restored on the way out, unwinding included.
    struct Restore(State);
    impl Drop for Restore {
        fn drop(&mut self) {
            STATE.set(self.0);
        }
    }
    let restore = Restore(outer);
    let result = f();
    let refused = STATE.get().refused;
    drop(restore);
    (!refused).then_some(result)
}

/// Whether this thread is inside [`attempt`]: an adapter about to block MUST call
/// [`refuse`] instead.
pub fn is_forbidden() -> bool {
    STATE.get().forbidden
}

/// Marks the current [`attempt`] refused, and returns the error the refusing adapter
/// fails with (unavailable: nothing was done).
pub fn refuse() -> StoreError {
    STATE.set(State {
        forbidden: true,
        refused: true,
    });
    StoreError::unavailable("would block on a thread that must not")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_without_refusal_returns_its_result() {
        assert!(!is_forbidden());
        assert_eq!(attempt(is_forbidden), Some(true));
        assert!(!is_forbidden());
    }

    #[test]
    fn a_refusal_voids_the_attempt_and_nothing_after_it() {
        let result: Option<Result<(), StoreError>> = attempt(|| Err(refuse()));
        assert!(result.is_none());
        assert!(!is_forbidden());
        assert_eq!(attempt(|| 7), Some(7), "the next attempt starts clean");
    }

    #[test]
    fn outside_an_attempt_nothing_is_forbidden() {
        assert!(!is_forbidden());
    }
}
