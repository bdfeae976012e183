//! End-to-end tests of the `portcullis` binary live in `tests/`; their shared harness is
//! `tests/support/mod.rs`. This library is empty on purpose: the harness needs the
//! dev-dependencies only, so building the workspace never builds it.
