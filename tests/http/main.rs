//! The in-process suite: the production application (`portcullis_server::Application`)
//! on a fresh database per test, driven over real HTTP. One module per dialect, plus
//! the routing between them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// The support both suites share (`tests/support`), and the in-process harness.
#[path = "../support"]
mod support {
    pub mod app;
    pub mod backend;
    pub mod client;
    pub mod logins;
    pub mod uri;
}

mod authapi;
mod cbs;
mod cross_site;
mod dispatch;
mod foreign_hashes;
mod hostile_input;
mod hygiene;
mod ioweyou;
mod ioweyou_signup;
mod oauth;
mod overload;
mod pocketbase;
mod refresh_grace;
mod throttle;
