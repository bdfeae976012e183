//! The end-to-end suite: the real `portcullis` binary, run as a child process on a
//! fresh database, driven over HTTP and its command line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// The support both suites share (`tests/support`), and the child-process harness.
#[path = "../support"]
mod support {
    pub mod backend;
    pub mod client;
    pub mod logins;
    pub mod process;
    pub mod uri;
}

mod cache;
mod cli;
mod dialects;
mod events;
mod expiry;
mod import;
mod journey;
mod keys;
mod mail;
mod openapi;
mod operability;
mod pocketbase_sdk;
mod protocol_errors;
mod restart;
mod startup;
