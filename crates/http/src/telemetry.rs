//! What operators watch: a request id on every request and response, one log span per
//! request (method, path template, dialect, status, latency, request id), and the
//! Prometheus metrics of requests and of the authentication outcomes behind them.
//!
//! Label values are bounded sets: a path is the route's template (an unknown one is
//! `unmatched`), a dialect its name, an outcome one of a fixed list. No user id, login
//! name, token or raw path is ever a label.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage as _, web};
use portcullis_domain::{
    Authenticated, IssueOptions, LoginError, LogoutError, Password, RefreshError, RefreshGuard,
    Refreshed, ResetPasswordError,
};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric as _};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tracing::Instrument as _;
use tracing::field::Empty;

use crate::blocking::BlockingFailed;
use crate::dialect::Call;
use crate::state::AppState;

/// The header that carries a request's id, both ways.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id taken from a client, in bytes.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The `endpoint` of a request no route matched.
const UNMATCHED: &str = "unmatched";

/// The `dialect` of a request no dialect answered (health checks, the key set,
/// introspection, unknown paths).
const NO_DIALECT: &str = "none";

/// The request's own id if the client sent a sane one (1 to [`MAX_REQUEST_ID_LEN`]
/// visible ASCII characters), else a new one.
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            (1..=MAX_REQUEST_ID_LEN).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
        })
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned)
}

/// Which dialect answered, set by routing on the request so the middleware can label
/// the request with it.
#[derive(Clone, Copy)]
pub(crate) struct AnsweredBy(pub(crate) &'static str);

/// Marks the request as answered by `dialect`, in its log span and its metrics.
pub(crate) fn answered_by(request: &actix_web::HttpRequest, dialect: &'static str) {
    tracing::Span::current().record("dialect", tracing::field::display(dialect));
    request.extensions_mut().insert(AnsweredBy(dialect));
}

/// The middleware every request passes: its id (taken or made), its span, one
/// `served` log line, its metrics, and `X-Request-Id` on the response.
pub async fn observe(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = request_id(request.headers());
    let endpoint = request
        .match_pattern()
        .unwrap_or_else(|| UNMATCHED.to_owned());
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %endpoint,
        dialect = Empty,
        request_id = %id,
    );
    let metrics = request
        .app_data::<web::Data<AppState>>()
        .and_then(|state| state.metrics.clone());
    let started = Instant::now();
    let mut response = next.call(request).instrument(span.clone()).await?;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let dialect = response
        .request()
        .extensions()
        .get::<AnsweredBy>()
        .map_or(NO_DIALECT, |answered| answered.0);
    if let Some(metrics) = metrics {
        metrics.request(dialect, &endpoint, status, elapsed.as_secs_f64());
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    span.in_scope(|| {
        tracing::info!(
            status,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "served"
        );
    });
    Ok(response)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    dialect: &'static str,
    endpoint: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    dialect: &'static str,
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    dialect: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// One reading of a probe: its label (name and value), if it has one, and its value.
type Reading = (Option<(&'static str, &'static str)>, f64);

/// A reading taken at scrape time (the hashing pool's queue, the database pool, the
/// cache, the process), with its name, help and kind.
pub struct Probe {
    name: &'static str,
    help: &'static str,
    kind: ProbeKind,
    read: Box<dyn Fn() -> Vec<Reading> + Send + Sync>,
}

#[derive(Clone, Copy, Debug)]
enum ProbeKind {
    Gauge,
    Counter,
}

impl Probe {
    /// A gauge read by `read` at each scrape.
    pub fn gauge(
        name: &'static str,
        help: &'static str,
        read: impl Fn() -> f64 + Send + Sync + 'static,
    ) -> Self {
        Self {
            name,
            help,
            kind: ProbeKind::Gauge,
            read: Box::new(move || vec![(None, read())]),
        }
    }

    /// A counter (a total that only grows) read by `read` at each scrape; the exposition
    /// adds `_total` to `name`.
    pub fn counter(
        name: &'static str,
        help: &'static str,
        read: impl Fn() -> f64 + Send + Sync + 'static,
    ) -> Self {
        Self {
            name,
            help,
            kind: ProbeKind::Counter,
            read: Box::new(move || vec![(None, read())]),
        }
    }

    /// A gauge with one label, `label`, whose values and readings `read` gives.
    pub fn labelled_gauge(
        name: &'static str,
        help: &'static str,
        label: &'static str,
        read: impl Fn() -> Vec<(&'static str, f64)> + Send + Sync + 'static,
    ) -> Self {
        Self {
            name,
            help,
            kind: ProbeKind::Gauge,
            read: Box::new(move || {
                read()
                    .into_iter()
                    .map(|(value, reading)| (Some((label, value)), reading))
                    .collect()
            }),
        }
    }
}

impl fmt::Debug for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Probe").field("name", &self.name).finish()
    }
}

/// The probes, encoded at each scrape.
#[derive(Debug, Default)]
struct Probes(Mutex<Vec<Probe>>);

impl Collector for Probes {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        let probes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for probe in probes.iter() {
            let readings = (probe.read)();
            let metric_type = match probe.kind {
                ProbeKind::Gauge => ConstGauge::new(0.0).metric_type(),
                ProbeKind::Counter => ConstCounter::new(0.0).metric_type(),
            };
            let mut metric =
                encoder.encode_descriptor(probe.name, probe.help, None, metric_type)?;
            for (label, reading) in readings {
                let labels: Vec<(&str, &str)> = label.into_iter().collect();
                let encoder = metric.encode_family(&labels)?;
                match probe.kind {
                    ProbeKind::Gauge => ConstGauge::new(reading).encode(encoder)?,
                    ProbeKind::Counter => ConstCounter::new(reading).encode(encoder)?,
                }
            }
        }
        Ok(())
    }
}

/// The server's metrics, counted with atomics on the request path and read by a scrape
/// ([`Metrics::encode`]).
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram>,
    logins: Family<LoginLabels, Counter>,
    refreshes: Family<OutcomeLabel, Counter>,
    revoked: Family<ReasonLabel, Counter>,
    probes: Arc<Probes>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// The `Content-Type` of [`Metrics::encode`]'s output: Prometheus text, 0.0.4.
pub const METRICS_CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric at zero, with no probe yet.
    pub fn new() -> Self {
        // No registry prefix: it would also prefix the collector's `process_*` metrics.
        let mut registry = Registry::default();
        let requests = Family::default();
        registry.register(
            "portcullis_http_requests",
            "HTTP requests answered, by dialect, endpoint (route template) and status",
            requests.clone(),
        );
        let durations = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            // 0.5 ms to about 16 s.
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "portcullis_http_request_duration_seconds",
            "Time from a request's arrival to its response, by dialect and endpoint",
            durations.clone(),
        );
        let logins = Family::default();
        registry.register(
            "portcullis_logins",
            "Password logins by dialect and outcome (success, failure, throttled, busy)",
            logins.clone(),
        );
        let refreshes = Family::default();
        registry.register(
            "portcullis_refreshes",
            "Refresh-token presentations by outcome (rotated, grace, reuse_revoked, invalid)",
            refreshes.clone(),
        );
        let revoked = Family::default();
        registry.register(
            "portcullis_sessions_revoked",
            "Sessions ended, by reason (logout, refresh_reuse, password_reset)",
            revoked.clone(),
        );
        let probes = Arc::new(Probes::default());
        registry.register_collector(Box::new(probes.clone()));
        Self {
            registry,
            requests,
            durations,
            logins,
            refreshes,
            revoked,
            probes,
        }
    }

    /// Adds a reading taken at each scrape.
    pub fn probe(&self, probe: Probe) {
        self.probes
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(probe);
    }

    /// The whole registry in the Prometheus text format ([`METRICS_CONTENT_TYPE`]).
    pub fn encode(&self) -> Result<String, fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }

    fn request(&self, dialect: &'static str, endpoint: &str, status: u16, seconds: f64) {
        let route = RouteLabels {
            dialect,
            endpoint: endpoint.to_owned(),
        };
        self.durations.get_or_create(&route).observe(seconds);
        let labels = RequestLabels {
            dialect,
            endpoint: route.endpoint,
            status,
        };
        self.requests.get_or_create(&labels).inc();
    }

    /// Counts a password login's outcome.
    pub fn login<T>(&self, dialect: &'static str, result: &Result<T, LoginError>) {
        let outcome = match result {
            Ok(_) => "success",
            Err(LoginError::InvalidCredentials) => "failure",
            Err(LoginError::Throttled { .. }) => "throttled",
            Err(LoginError::Internal(error)) if error.is_unavailable() => "busy",
            // A fault of the server, not an outcome of the attempt.
            Err(LoginError::Internal(_)) => return,
        };
        self.logins
            .get_or_create(&LoginLabels { dialect, outcome })
            .inc();
    }

    /// Counts a refresh's outcome, and the session it ended if it was a replay.
    pub fn refresh(&self, result: &Result<Refreshed, RefreshError>) {
        let outcome = match result {
            Ok(refreshed) if refreshed.within_grace => "grace",
            Ok(_) => "rotated",
            Err(RefreshError::Reused) => {
                self.session_revoked("refresh_reuse", 1);
                "reuse_revoked"
            }
            Err(RefreshError::Invalid | RefreshError::Expired | RefreshError::SessionInactive) => {
                "invalid"
            }
            Err(RefreshError::Internal(_)) => return,
        };
        self.refreshes
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    /// Counts the session a logout ended, or revoked for a replayed token.
    pub fn logout(&self, result: &Result<(), LogoutError>) {
        match result {
            Ok(()) => self.session_revoked("logout", 1),
            Err(LogoutError::Reused) => self.session_revoked("refresh_reuse", 1),
            Err(LogoutError::InvalidToken | LogoutError::Internal(_)) => {}
        }
    }

    /// Counts the sessions a password reset ended.
    pub fn reset(&self, result: &Result<u64, ResetPasswordError>) {
        if let Ok(ended) = result {
            self.session_revoked("password_reset", *ended);
        }
    }

    fn session_revoked(&self, reason: &'static str, count: u64) {
        self.revoked
            .get_or_create(&ReasonLabel { reason })
            .inc_by(count);
    }
}

/// Reads the process's resident memory, open file descriptors and CPU time from
/// `/proc/self` (Linux), as `process_*` like every Prometheus client library.
pub fn process_probes() -> Vec<Probe> {
    vec![
        Probe::gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            || proc_status_kib("VmRSS:").map_or(f64::NAN, |kib| kib * 1024.0),
        ),
        Probe::gauge(
            "process_open_fds",
            "Number of open file descriptors",
            || {
                std::fs::read_dir("/proc/self/fd")
                    .map_or(f64::NAN, |entries| entries.count() as f64)
            },
        ),
        Probe::counter(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            || proc_cpu_seconds().unwrap_or(f64::NAN),
        ),
    ]
}

fn proc_status_kib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime from `/proc/self/stat`, in seconds (clock ticks of 1/100 s, the value
/// of `_SC_CLK_TCK` on every Linux platform Portcullis runs on).
fn proc_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name is in parentheses and may hold spaces: count from after it.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |index: usize| fields.get(index)?.parse::<f64>().ok();
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

/// The use cases whose outcomes are metrics, run as the handlers run them and counted
/// on the way back: every dialect calls these instead of the service directly, so an
/// outcome is counted the same whichever dialect it came through.
impl Call {
    fn count(&self, count: impl FnOnce(&Metrics)) {
        if let Some(metrics) = self.state.metrics.as_deref() {
            count(metrics);
        }
    }

    /// A password login ([`AppState::run_hashing`]), counted by outcome.
    pub async fn login(
        &self,
        login: String,
        password: Password,
        options: IssueOptions,
    ) -> Result<Result<Authenticated, LoginError>, BlockingFailed> {
        let client = self.client();
        let done = self
            .state
            .run_hashing(move |auth| auth.login_from(&client, &login, &password, &options))
            .await?;
        self.count(|metrics| metrics.login(self.dialect, &done));
        Ok(done)
    }

    /// A refresh-token rotation, with the [`RefreshGuard`] conditions `account` and
    /// `access_token`, counted by outcome.
    pub async fn refresh(
        &self,
        refresh_token: String,
        account: Option<String>,
        access_token: Option<String>,
    ) -> Result<Result<Refreshed, RefreshError>, BlockingFailed> {
        let client = self.client();
        let done = self
            .state
            .run(move |auth| {
                let guard = RefreshGuard {
                    account: account.as_deref(),
                    access_token: access_token.as_deref(),
                };
                auth.refresh_from(&client, &refresh_token, guard)
            })
            .await?;
        self.count(|metrics| metrics.refresh(&done));
        Ok(done)
    }

    /// A logout by refresh token, counted when it ends a session.
    pub async fn logout(
        &self,
        refresh_token: String,
    ) -> Result<Result<(), LogoutError>, BlockingFailed> {
        let client = self.client();
        let done = self
            .state
            .run(move |auth| auth.logout_from(&client, &refresh_token))
            .await?;
        self.count(|metrics| metrics.logout(&done));
        Ok(done)
    }

    /// A password reset with a reset secret, counted by the sessions it ended.
    pub async fn reset_password(
        &self,
        secret: String,
        password: Password,
    ) -> Result<Result<u64, ResetPasswordError>, BlockingFailed> {
        let client = self.client();
        let done = self
            .state
            .run_hashing(move |auth| auth.reset_password_from(&client, &secret, &password))
            .await?;
        self.count(|metrics| metrics.reset(&done));
        Ok(done)
    }
}
