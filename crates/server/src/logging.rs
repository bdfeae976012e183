//! The log on stderr, filtered by `RUST_LOG`: human-readable lines, or one JSON object
//! per line (`PORTCULLIS_LOG_FORMAT=json`) with the event's fields at the top level and
//! the request span's fields (method, path template, dialect, request id) under
//! `span`.
//!
//! ERROR is kept for the server's own faults. actix-http logs a connection's "stream
//! error" (a malformed request line or header, a peer that vanished mid-request) at
//! ERROR, though it is the client's doing and the client already got its 400, so any
//! client on the internet could fill the log with ERROR lines; those events are logged
//! at INFO instead, under `portcullis::http`.

use std::fmt;
use std::io::{self, IsTerminal};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

/// Where actix-http reports a connection's errors.
const DISPATCHER: &str = "actix_http::h1::dispatcher";
/// How it words those caused by the peer.
const STREAM_ERROR: &str = "stream error: ";

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people (colours on a terminal).
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the process's subscriber with `filter` (`RUST_LOG` syntax) writing
/// `format`.
pub fn init(filter: &str, format: LogFormat) {
    let registry = tracing_subscriber::registry()
        .with(ClientStreamErrors)
        .with(EnvFilter::new(filter));
    let lines = tracing_subscriber::fmt::layer().with_writer(io::stderr);
    match format {
        LogFormat::Text => registry
            .with(lines.with_ansi(io::stderr().is_terminal()))
            .init(),
        LogFormat::Json => registry
            .with(
                lines
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .init(),
    }
}

/// Suppresses actix-http's ERROR about a client's broken stream and logs it again at
/// INFO.
struct ClientStreamErrors;

impl<S: Subscriber> Layer<S> for ClientStreamErrors {
    fn event_enabled(&self, event: &Event<'_>, _: Context<'_, S>) -> bool {
        let metadata = event.metadata();
        if metadata.target() != DISPATCHER || *metadata.level() != Level::ERROR {
            return true;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        let Some(error) = message.0.strip_prefix(STREAM_ERROR) else {
            return true;
        };
        // The global subscriber takes events emitted while it handles one.
        tracing::info!(target: "portcullis::http", error, "client connection error");
        false
    }
}

/// The `message` field of an event.
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.0);
        }
    }
}
