//! The server's configuration, declared once: every setting is a clap argument with its
//! environment variable, default and range, so `portcullis serve --help` is the
//! reference. A flag overrides its variable. The dialects' settings come from the HTTP
//! crate ([`portcullis_http::settings`]), derived from each dialect's name.

use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use chrono::TimeDelta;
use clap::builder::BoolishValueParser;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{ArgAction, ArgMatches, Args, Command, FromArgMatches, value_parser};
use ipnet::IpNet;
use lettre::message::Mailbox;
use portcullis_crypto::{Argon2Params, HashPoolConfig, JwtSecret, SecretsKey};
use portcullis_domain::{AuthConfig, KeyAlgorithm, MailPolicy, PasswordPolicy, ThrottlePolicy};

use crate::logging::LogFormat;
use crate::mailer::MailerSetting;
use portcullis_http::{DialectMount, HttpConfig};

/// Longest lifetime any token, session or link may be given: ten years.
const MAX_TTL_SECS: i64 = 315_360_000;
/// The password policy's ceiling: what a client can make argon2 chew on.
const MAX_PASSWORD_CHARS: usize = 4096;

// Every setting as it comes from the command line and environment. (A plain comment: a
// doc comment would become the about text of every command that takes the settings.)
#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "Server")]
pub struct Settings {
    /// Listen address
    #[arg(long, env = "PORTCULLIS_BIND", default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// HTTP worker threads, 1 to 512 (default: one per core)
    #[arg(long, env = "PORTCULLIS_WORKERS", value_parser = value_parser!(u16).range(1..=512))]
    workers: Option<u16>,
    /// Grace period for in-flight requests on SIGINT/SIGTERM, in seconds (0 to 3600)
    #[arg(long, env = "PORTCULLIS_SHUTDOWN_TIMEOUT_SECS", default_value_t = 30,
          value_parser = value_parser!(u64).range(0..=3600))]
    shutdown_timeout_secs: u64,
    /// Log filter, in tracing's EnvFilter syntax; logs go to stderr
    #[arg(long = "log", env = "RUST_LOG", default_value = "info", value_parser = log_filter)]
    log_filter: String,
    /// How log lines are written: `text` for people, `json` for a log pipeline (one JSON
    /// object per line, with the request's span fields and id)
    #[arg(
        long,
        env = "PORTCULLIS_LOG_FORMAT",
        default_value = "text",
        value_enum
    )]
    log_format: LogFormat,
    /// Where Prometheus scrapes `GET /metrics`, a listener of its own (e.g.
    /// 127.0.0.1:9091), never the public one. Unset: no metrics are kept
    #[arg(long, env = "PORTCULLIS_METRICS_BIND")]
    metrics_bind: Option<SocketAddr>,
    /// Whether every cookie Portcullis sets carries Secure; false only for plain-HTTP
    /// development
    #[arg(long, env = "PORTCULLIS_COOKIE_SECURE", default_value = "true",
          action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    cookie_secure: bool,
    /// How long a request body may take to arrive once its headers have, in seconds
    /// (1 to 300); a slower one gets 408 and its connection is closed
    #[arg(long, env = "PORTCULLIS_BODY_TIMEOUT_SECS", default_value_t = 10,
          value_parser = value_parser!(u64).range(1..=300))]
    body_timeout_secs: u64,
    /// Open connections each HTTP worker serves at most (1 to 65535); more wait in the
    /// kernel's backlog. Keep workers × this under the process's file limit
    #[arg(long, env = "PORTCULLIS_MAX_CONNECTIONS_PER_WORKER", default_value_t = 1024,
          value_parser = value_parser!(u16).range(1..))]
    max_connections_per_worker: u16,
    /// Origins (https://app.example) whose pages may call the cookie endpoints across
    /// sites, with CORS and credentials; comma-separated. Default none: such requests
    /// are refused with 403
    #[arg(long, env = "PORTCULLIS_ALLOWED_ORIGINS", value_name = "ORIGINS",
          value_delimiter = ',', value_parser = parse_origin)]
    allowed_origins: Vec<String>,
    /// Proxies (CIDR ranges or addresses, comma-separated) whose Forwarded and
    /// X-Forwarded-* headers are believed. Default none: those headers are ignored
    #[arg(long, env = "PORTCULLIS_TRUSTED_PROXIES", value_name = "CIDRS",
          value_delimiter = ',', value_parser = parse_network)]
    trusted_proxies: Vec<IpNet>,

    /// postgres:// or postgresql:// for PostgreSQL; sqlite://PATH, sqlite:PATH or a
    /// plain path for SQLite
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "portcullis.db",
        hide_env_values = true,
        help_heading = "Database"
    )]
    database_url: String,
    /// Database connections per instance (1 to 1000)
    #[arg(long, env = "PORTCULLIS_DB_POOL_SIZE", default_value_t = 10,
          value_parser = value_parser!(u32).range(1..=1000), help_heading = "Database")]
    db_pool_size: u32,
    /// How long a database operation waits for a connection, in milliseconds (10 to
    /// 600000); past it the request is answered 503 with Retry-After
    #[arg(long, env = "PORTCULLIS_DB_TIMEOUT_MS", default_value_t = 2000,
          value_parser = value_parser!(u64).range(10..=600_000), help_heading = "Database")]
    db_timeout_ms: u64,
    /// Threads per HTTP worker for blocking work (database calls, and callers waiting for
    /// a hash), 1 to 4096 (default: pool size + hash concurrency + hash queue)
    #[arg(long, env = "PORTCULLIS_DB_BLOCKING_THREADS",
          value_parser = value_parser!(u16).range(1..=4096), help_heading = "Database")]
    db_blocking_threads: Option<u16>,
    /// Sessions (and as many users) kept in memory, so an authenticated request needs no
    /// database round trip; 0 turns the cache off. Changes reach it at once in this
    /// process and, on PostgreSQL, from every other within 750 ms (docs/architecture.md)
    #[arg(long, env = "PORTCULLIS_CACHE_CAPACITY", default_value_t = 100_000,
          value_parser = value_parser!(u32).range(0..=10_000_000), help_heading = "Database")]
    cache_capacity: u32,
    /// The longest a cached session or user is served, in seconds; the only bound on
    /// changes made by another process on one SQLite file
    #[arg(long, env = "PORTCULLIS_CACHE_TTL_SECS", default_value_t = 60,
          value_parser = value_parser!(u64).range(1..=86_400), help_heading = "Database")]
    cache_ttl_secs: u64,
    /// How often the server deletes expired sessions, refresh tokens and used or expired
    /// reset tokens, in seconds (0 turns it off; `portcullis purge` does it on demand)
    #[arg(long, env = "PORTCULLIS_PURGE_INTERVAL_SECS", default_value_t = 3600,
          value_parser = value_parser!(u64).range(0..=604_800), help_heading = "Database")]
    purge_interval_secs: u64,
    /// How many days security events are kept before a purge deletes them
    #[arg(long, env = "PORTCULLIS_EVENT_RETENTION_DAYS", default_value_t = 90,
          value_parser = value_parser!(u32).range(1..=36_500), help_heading = "Database")]
    event_retention_days: u32,
    /// Run pending migrations at start-up
    #[arg(long, env = "PORTCULLIS_MIGRATE_ON_START", default_value = "true",
          action = ArgAction::Set, value_parser = BoolishValueParser::new(), help_heading = "Database")]
    migrate_on_start: bool,

    /// HS256 signing key: base64 of at least 32 random bytes (openssl rand -base64 32).
    /// Unset: generated on first start and kept in the database, shared by every
    /// instance. Prefer the variable: a flag shows in the process list
    #[arg(long, env = "PORTCULLIS_JWT_SECRET", hide_env_values = true,
          value_parser = parse_jwt_secret, help_heading = "Tokens")]
    jwt_secret: Option<JwtSecret>,
    /// Algorithm of the signing keys Portcullis generates: EdDSA (Ed25519, published in
    /// /.well-known/jwks.json) or HS256 (never published). If the active key has the
    /// other one, start-up rotates to a new key. Not used with PORTCULLIS_JWT_SECRET
    #[arg(long, env = "PORTCULLIS_JWT_ALG", default_value = "EdDSA",
          value_parser = parse_jwt_alg, help_heading = "Tokens")]
    jwt_alg: KeyAlgorithm,
    /// Key that encrypts the signing keys in the database: base64 of 32 random bytes
    /// (openssl rand -base64 32). Required on PostgreSQL unless PORTCULLIS_JWT_SECRET
    /// is set; on SQLite, unset, it is generated into <database>.key (mode 0600)
    #[arg(long, env = "PORTCULLIS_SECRETS_KEY", hide_env_values = true,
          value_parser = parse_secrets_key, conflicts_with = "secrets_key_file",
          help_heading = "Tokens")]
    secrets_key: Option<SecretsKey>,
    /// A file holding PORTCULLIS_SECRETS_KEY (base64, surrounding whitespace ignored),
    /// e.g. a mounted secret
    #[arg(
        long,
        env = "PORTCULLIS_SECRETS_KEY_FILE",
        value_name = "PATH",
        help_heading = "Tokens"
    )]
    secrets_key_file: Option<PathBuf>,
    /// The iss claim written and required
    #[arg(long, env = "PORTCULLIS_JWT_ISSUER", default_value = "portcullis",
          value_parser = non_blank, help_heading = "Tokens")]
    jwt_issuer: String,
    /// The aud claim written and required
    #[arg(long, env = "PORTCULLIS_JWT_AUDIENCE", default_value = "portcullis",
          value_parser = non_blank, help_heading = "Tokens")]
    jwt_audience: String,
    /// Clock skew forgiven on exp, in seconds (0 to 300)
    #[arg(long, env = "PORTCULLIS_JWT_LEEWAY_SECS", default_value_t = 5,
          value_parser = value_parser!(u64).range(0..=300), help_heading = "Tokens")]
    jwt_leeway_secs: u64,
    /// Access-token lifetime, in seconds (1 to 10 years)
    #[arg(long, env = "PORTCULLIS_ACCESS_TOKEN_TTL_SECS",
          default_value_t = AuthConfig::default().access_ttl.num_seconds(),
          value_parser = value_parser!(i64).range(1..=MAX_TTL_SECS), help_heading = "Tokens")]
    access_token_ttl_secs: i64,
    /// Refresh-token lifetime, in seconds, 1 to 10 years (each rotation starts a new one)
    #[arg(long, env = "PORTCULLIS_REFRESH_TOKEN_TTL_SECS",
          default_value_t = AuthConfig::default().refresh_ttl.num_seconds(),
          value_parser = value_parser!(i64).range(1..=MAX_TTL_SECS), help_heading = "Tokens")]
    refresh_token_ttl_secs: i64,
    /// Absolute session lifetime, in seconds, 1 to 10 years; no rotation extends a
    /// session past it
    #[arg(long, env = "PORTCULLIS_SESSION_TTL_SECS",
          default_value_t = AuthConfig::default().session_lifetime.num_seconds(),
          value_parser = value_parser!(i64).range(1..=MAX_TTL_SECS), help_heading = "Tokens")]
    session_ttl_secs: i64,
    /// Password-reset link lifetime, in seconds (1 to 10 years)
    #[arg(long, env = "PORTCULLIS_RESET_TOKEN_TTL_SECS",
          default_value_t = AuthConfig::default().reset_token_ttl.num_seconds(),
          value_parser = value_parser!(i64).range(1..=MAX_TTL_SECS), help_heading = "Tokens")]
    reset_token_ttl_secs: i64,
    /// How long after a rotation the spent refresh token still buys the same successor
    /// instead of counting as reuse (parallel renewals), in seconds, 0 to 300; 0 turns
    /// it off
    #[arg(long, env = "PORTCULLIS_REFRESH_GRACE_SECS",
          default_value_t = AuthConfig::default().refresh_grace.num_seconds(),
          value_parser = value_parser!(i64).range(0..=300), help_heading = "Tokens")]
    refresh_grace_secs: i64,

    /// Fewest characters a password may have, after NFKC normalisation (1 to the
    /// maximum)
    #[arg(long, env = "PORTCULLIS_PASSWORD_MIN_LENGTH",
          default_value_t = PasswordPolicy::default().min_chars,
          value_parser = password_length, help_heading = "Passwords")]
    password_min_length: usize,
    /// Most characters a password may have (the minimum to 4096)
    #[arg(long, env = "PORTCULLIS_PASSWORD_MAX_LENGTH",
          default_value_t = PasswordPolicy::default().max_chars,
          value_parser = password_length, help_heading = "Passwords")]
    password_max_length: usize,
    /// Consecutive failed logins of one account (or login name) that cost nothing
    #[arg(long, env = "PORTCULLIS_THROTTLE_FREE_FAILURES",
          default_value_t = ThrottlePolicy::default().free_failures,
          value_parser = value_parser!(i64).range(0..=1000), help_heading = "Throttling")]
    throttle_free_failures: i64,
    /// The wait after the first failure past the free ones, in seconds; it doubles with
    /// each further failure (1 to 3600)
    #[arg(long, env = "PORTCULLIS_THROTTLE_BASE_DELAY_SECS",
          default_value_t = ThrottlePolicy::default().base_delay.num_seconds(),
          value_parser = value_parser!(i64).range(1..=3600), help_heading = "Throttling")]
    throttle_base_delay_secs: i64,
    /// The longest wait between failed logins of one account, in seconds (1 to 86400);
    /// there is no permanent lockout
    #[arg(long, env = "PORTCULLIS_THROTTLE_MAX_DELAY_SECS",
          default_value_t = ThrottlePolicy::default().max_delay.num_seconds(),
          value_parser = value_parser!(i64).range(1..=86_400), help_heading = "Throttling")]
    throttle_max_delay_secs: i64,
    /// Failed logins one client address may make per window (1 to 1000000)
    #[arg(long, env = "PORTCULLIS_THROTTLE_IP_FAILURES",
          default_value_t = ThrottlePolicy::default().ip_failures,
          value_parser = value_parser!(i64).range(1..=1_000_000), help_heading = "Throttling")]
    throttle_ip_failures: i64,
    /// The window of PORTCULLIS_THROTTLE_IP_FAILURES, in seconds (1 to 86400)
    #[arg(long, env = "PORTCULLIS_THROTTLE_IP_WINDOW_SECS",
          default_value_t = ThrottlePolicy::default().ip_window.num_seconds(),
          value_parser = value_parser!(i64).range(1..=86_400), help_heading = "Throttling")]
    throttle_ip_window_secs: i64,
    /// Registrations, and separately reset requests, one client address may make per
    /// hour (1 to 100000)
    #[arg(long, env = "PORTCULLIS_THROTTLE_IP_REGISTRATIONS",
          default_value_t = ThrottlePolicy::default().ip_registrations,
          value_parser = value_parser!(i64).range(1..=100_000), help_heading = "Throttling")]
    throttle_ip_registrations: i64,

    /// argon2id memory cost, in KiB (8 × parallelism to 4 GiB)
    #[arg(long, env = "PORTCULLIS_ARGON2_MEMORY_KIB",
          default_value_t = Argon2Params::default().memory_kib,
          value_parser = value_parser!(u32).range(8..=4 * 1024 * 1024), help_heading = "Passwords")]
    argon2_memory_kib: u32,
    /// argon2id time cost: passes over the memory (1 to 64)
    #[arg(long, env = "PORTCULLIS_ARGON2_ITERATIONS",
          default_value_t = Argon2Params::default().iterations,
          value_parser = value_parser!(u32).range(1..=64), help_heading = "Passwords")]
    argon2_iterations: u32,
    /// argon2id lanes (1 to 64)
    #[arg(long, env = "PORTCULLIS_ARGON2_PARALLELISM",
          default_value_t = Argon2Params::default().parallelism,
          value_parser = value_parser!(u32).range(1..=64), help_heading = "Passwords")]
    argon2_parallelism: u32,
    /// Password hashes run at once, each on its own thread with its own argon2 memory,
    /// 1 to 1024 (default: one per core)
    #[arg(long, env = "PORTCULLIS_HASH_CONCURRENCY",
          value_parser = value_parser!(u16).range(1..=1024), help_heading = "Passwords")]
    hash_concurrency: Option<u16>,
    /// Password hashes that may wait for a hashing thread, 0 to 65536 (default: 4 ×
    /// the concurrency); a request that finds the queue full is answered 503 with
    /// Retry-After: 1 at once
    #[arg(long, env = "PORTCULLIS_HASH_QUEUE",
          value_parser = value_parser!(u32).range(0..=65_536), help_heading = "Passwords")]
    hash_queue: Option<u32>,
    /// Run the hashing threads at the lowest CPU priority (nice 19): under a login
    /// flood, requests that need no hash keep their latency and hashing gets the rest
    #[arg(long, env = "PORTCULLIS_HASH_LOW_PRIORITY", default_value = "true",
          action = ArgAction::Set, value_parser = BoolishValueParser::new(), help_heading = "Passwords")]
    hash_low_priority: bool,
    /// Where password-reset messages go: an SMTP URL (smtp://user:pass@host:587?tls=required
    /// for STARTTLS, smtps://…:465 for TLS, smtp://host:25 for a local relay) or `log`
    /// (development: the log; the default, allowed only on a loopback PORTCULLIS_BIND)
    #[arg(long, env = "PORTCULLIS_MAILER", value_parser = MailerSetting::parse,
          hide_env_values = true, help_heading = "Mail")]
    mailer: Option<MailerSetting>,
    /// The sender of password-reset messages, e.g. "Example <noreply@example.com>"
    /// (required with SMTP)
    #[arg(long, env = "PORTCULLIS_MAIL_FROM", value_parser = parse_mailbox, help_heading = "Mail")]
    mail_from: Option<Mailbox>,
    /// The reset link, `{token}` standing for the secret, e.g.
    /// https://app.example/reset?token={token} (required with SMTP)
    #[arg(long, env = "PORTCULLIS_RESET_URL", value_parser = parse_reset_url, help_heading = "Mail")]
    reset_url: Option<String>,
    /// A directory whose reset-subject.txt, reset.txt and reset.html replace the
    /// built-in message ({link}, {email} and {expires_at} are filled in)
    #[arg(long, env = "PORTCULLIS_MAIL_TEMPLATES", help_heading = "Mail")]
    mail_templates: Option<PathBuf>,
    /// How often the sender looks for due messages, in milliseconds
    #[arg(long, env = "PORTCULLIS_MAIL_POLL_MS", default_value_t = 1000,
          value_parser = value_parser!(u64).range(10..=60_000), help_heading = "Mail")]
    mail_poll_ms: u64,
    /// The wait after a failed delivery, in seconds; it doubles with each further failure
    #[arg(long, env = "PORTCULLIS_MAIL_RETRY_BASE_SECS",
          default_value_t = MailPolicy::default().retry_base.num_seconds(),
          value_parser = value_parser!(i64).range(1..=3600), help_heading = "Mail")]
    mail_retry_base_secs: i64,
    /// The longest wait between delivery attempts, in seconds
    #[arg(long, env = "PORTCULLIS_MAIL_RETRY_MAX_SECS",
          default_value_t = MailPolicy::default().retry_max.num_seconds(),
          value_parser = value_parser!(i64).range(1..=86_400), help_heading = "Mail")]
    mail_retry_max_secs: i64,
    /// Delivery attempts before a message is given up
    #[arg(long, env = "PORTCULLIS_MAIL_RETRY_ATTEMPTS",
          default_value_t = MailPolicy::default().max_attempts,
          value_parser = value_parser!(u32).range(1..=1000), help_heading = "Mail")]
    mail_retry_attempts: u32,
}

fn parse_mailbox(text: &str) -> Result<Mailbox, String> {
    text.parse().map_err(|e| format!("not a mailbox: {e}"))
}

fn parse_reset_url(text: &str) -> Result<String, String> {
    if !text.contains("{token}") {
        return Err("the link must contain {token}".into());
    }
    if !(text.starts_with("https://") || text.starts_with("http://")) {
        return Err("the link must start with https:// or http://".into());
    }
    Ok(text.to_owned())
}

fn parse_jwt_secret(text: &str) -> Result<JwtSecret, String> {
    JwtSecret::from_config_str(text).map_err(|e| e.to_string())
}

fn parse_secrets_key(text: &str) -> Result<SecretsKey, String> {
    SecretsKey::from_config_str(text).map_err(|e| e.to_string())
}

fn parse_jwt_alg(text: &str) -> Result<KeyAlgorithm, String> {
    KeyAlgorithm::parse(text.trim())
        .ok_or_else(|| format!("{text:?} is not EdDSA or HS256 (spelled so)"))
}

fn log_filter(text: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(text).map_err(|e| e.to_string())?;
    Ok(text.to_owned())
}

/// An origin as a browser sends it: `http` or `https`, `://`, a host and an optional
/// port; no path. Lower-cased, as origins compare.
fn parse_origin(text: &str) -> Result<String, String> {
    let origin = text.trim().to_ascii_lowercase();
    let host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    match host {
        Some(host)
            if !host.is_empty()
                && !host.contains(['/', '?', '#', '@'])
                && !host.contains(char::is_whitespace) =>
        {
            Ok(origin)
        }
        _ => Err(format!(
            "cannot use {text:?}: an origin is http(s)://host[:port], with no path"
        )),
    }
}

/// A CIDR range (`10.0.0.0/8`, `fd00::/8`) or a single address.
fn parse_network(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("cannot use {text:?}: expected a CIDR range or an IP address"))
}

fn non_blank(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("must not be blank".into());
    }
    Ok(text.to_owned())
}

fn password_length(text: &str) -> Result<usize, String> {
    let length: usize = text.trim().parse().map_err(|e| format!("{e}"))?;
    if !(1..=MAX_PASSWORD_CHARS).contains(&length) {
        return Err(format!("{length} is not in 1..={MAX_PASSWORD_CHARS}"));
    }
    Ok(length)
}

/// The server's configuration, typed and checked.
#[derive(Clone, Debug)]
pub struct Config {
    /// Listen address.
    pub bind: SocketAddr,
    /// The database URL (PostgreSQL or SQLite).
    pub database_url: String,
    /// Connections per instance.
    pub pool_size: u32,
    /// How long a database operation waits for a connection.
    pub db_timeout: Duration,
    /// The blocking-thread limit of each HTTP worker (database calls run there).
    pub db_blocking_threads: usize,
    /// Sessions and users cached in memory (0: no cache).
    pub cache_capacity: usize,
    /// The longest a cache entry is served.
    pub cache_ttl: Duration,
    /// Whether pending migrations run at start-up.
    pub migrate_on_start: bool,
    /// The configured signing key; `None`: generated once and kept in the database.
    pub jwt_secret: Option<JwtSecret>,
    /// The algorithm of generated signing keys.
    pub jwt_alg: KeyAlgorithm,
    /// The key sealing the signing keys, if configured by value.
    pub secrets_key: Option<SecretsKey>,
    /// The file holding it, if configured so.
    pub secrets_key_file: Option<PathBuf>,
    /// The `iss` claim.
    pub issuer: String,
    /// The `aud` claim.
    pub audience: String,
    /// Clock skew forgiven on `exp`, in seconds.
    pub jwt_leeway_seconds: u64,
    /// Lifetimes and the password policy.
    pub auth: AuthConfig,
    /// argon2id cost.
    pub argon2: Argon2Params,
    /// Hashing threads and the queue in front of them.
    pub hash_pool: HashPoolConfig,
    /// HTTP worker threads; `None`: one per core.
    pub workers: Option<usize>,
    /// How long in-flight requests get to finish after SIGINT/SIGTERM.
    pub shutdown_timeout: Duration,
    /// Open connections each worker serves at most.
    pub max_connections_per_worker: usize,
    /// How often expired rows are purged; `None`: never (but by `portcullis purge`).
    pub purge_interval: Option<Duration>,
    /// How long security events are kept.
    pub event_retention: TimeDelta,
    /// Where password-reset messages go (see [`Config::mail_delivery`]).
    pub mail: MailConfig,
    /// The log filter.
    pub log_filter: String,
    /// Text or JSON log lines.
    pub log_format: LogFormat,
    /// The metrics listener's address, if metrics are kept.
    pub metrics_bind: Option<SocketAddr>,
    /// The HTTP limits and the cookie switch.
    pub http: HttpConfig,
    /// The dialects served, built from their settings, with their prefixes.
    pub dialects: Vec<DialectMount>,
}

impl Config {
    /// The longest lifetime any token may be given: access and refresh tokens (a
    /// refresh token never outlives its session, but the larger bound is the safe one)
    /// and every dialect's own (pocketbase's token). A superseded signing key keeps
    /// verifying this long.
    pub fn longest_token_ttl(&self) -> TimeDelta {
        self.dialects
            .iter()
            .filter_map(|mount| mount.dialect.longest_token_ttl())
            .chain([
                self.auth.access_ttl,
                self.auth.refresh_ttl,
                self.auth.session_lifetime,
            ])
            .max()
            .unwrap_or(self.auth.session_lifetime)
    }
}

/// A configuration that cannot be used: the message names the variable (and flag) at
/// fault. Exits with status 2, as every command-line error does.
pub type ConfigError = clap::Error;

/// The arguments of every setting (the server's and the dialects'), for a command that
/// takes them.
pub fn with_settings(command: Command) -> Command {
    Settings::augment_args(command).args(portcullis_http::settings::args(portcullis_http::DIALECTS))
}

impl Config {
    /// The configuration in `matches`, parsed by a command built [`with_settings`].
    pub fn from_matches(command: &Command, matches: &ArgMatches) -> Result<Self, ConfigError> {
        let settings =
            Settings::from_arg_matches(matches).map_err(|e| naming_variable(command, e))?;
        let mounts = portcullis_http::settings::mounts(portcullis_http::DIALECTS, matches)
            .map_err(|e| command.clone().error(ErrorKind::ValueValidation, e))?;
        settings.into_config(command, mounts)
    }

    /// Parses `args` (flags, without the program name) and the process environment.
    pub fn try_parse_from<I, T>(args: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let command = with_settings(Command::new("portcullis").no_binary_name(true));
        let matches = command
            .clone()
            .try_get_matches_from(args)
            .map_err(|e| naming_variable(&command, e))?;
        Self::from_matches(&command, &matches)
    }

    /// The configuration from variables given by `lookup` instead of the process
    /// environment (tests pass a map): each variable set becomes its flag.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let command = with_settings(Command::new("portcullis").no_binary_name(true));
        let mut args = Vec::new();
        for arg in command.get_arguments() {
            let (Some(variable), Some(long)) = (arg.get_env(), arg.get_long()) else {
                continue;
            };
            if let Some(value) = variable.to_str().and_then(&lookup) {
                args.push(format!("--{long}={value}"));
            }
        }
        let matches = command
            .clone()
            .mut_args(|arg| arg.env(None::<&str>))
            .try_get_matches_from(&args)
            .map_err(|e| naming_variable(&command, e))?;
        Self::from_matches(&command, &matches)
    }
}

impl Settings {
    fn into_config(
        self,
        command: &Command,
        dialects: Vec<DialectMount>,
    ) -> Result<Config, ConfigError> {
        if self.password_min_length > self.password_max_length {
            return Err(command.clone().error(
                ErrorKind::ValueValidation,
                format!(
                    "PORTCULLIS_PASSWORD_MIN_LENGTH ({}) must not exceed PORTCULLIS_PASSWORD_MAX_LENGTH ({})",
                    self.password_min_length, self.password_max_length
                ),
            ));
        }
        if self.argon2_memory_kib < 8 * self.argon2_parallelism {
            return Err(command.clone().error(
                ErrorKind::ValueValidation,
                "PORTCULLIS_ARGON2_MEMORY_KIB must be at least 8 × PORTCULLIS_ARGON2_PARALLELISM",
            ));
        }
        let hash_pool = match self.hash_concurrency {
            Some(threads) => HashPoolConfig::with_threads(threads.into()),
            None => HashPoolConfig::default(),
        };
        let hash_pool = HashPoolConfig {
            queue: self
                .hash_queue
                .map_or(hash_pool.queue, |queue| queue as usize),
            low_priority: self.hash_low_priority,
            ..hash_pool
        };
        let db_blocking_threads = self.db_blocking_threads.map_or(
            self.db_pool_size as usize + hash_pool.threads + hash_pool.queue,
            usize::from,
        );
        Ok(Config {
            bind: self.bind,
            database_url: self.database_url,
            pool_size: self.db_pool_size,
            db_timeout: Duration::from_millis(self.db_timeout_ms),
            db_blocking_threads,
            cache_capacity: self.cache_capacity as usize,
            cache_ttl: Duration::from_secs(self.cache_ttl_secs),
            migrate_on_start: self.migrate_on_start,
            jwt_secret: self.jwt_secret,
            jwt_alg: self.jwt_alg,
            secrets_key: self.secrets_key,
            secrets_key_file: self.secrets_key_file,
            issuer: self.jwt_issuer.clone(),
            audience: self.jwt_audience.clone(),
            jwt_leeway_seconds: self.jwt_leeway_secs,
            auth: AuthConfig {
                access_ttl: TimeDelta::seconds(self.access_token_ttl_secs),
                refresh_ttl: TimeDelta::seconds(self.refresh_token_ttl_secs),
                session_lifetime: TimeDelta::seconds(self.session_ttl_secs),
                reset_token_ttl: TimeDelta::seconds(self.reset_token_ttl_secs),
                refresh_grace: TimeDelta::seconds(self.refresh_grace_secs),
                password_policy: PasswordPolicy {
                    min_chars: self.password_min_length,
                    max_chars: self.password_max_length,
                },
                throttle: ThrottlePolicy {
                    free_failures: self.throttle_free_failures,
                    base_delay: TimeDelta::seconds(self.throttle_base_delay_secs),
                    max_delay: TimeDelta::seconds(self.throttle_max_delay_secs),
                    ip_failures: self.throttle_ip_failures,
                    ip_window: TimeDelta::seconds(self.throttle_ip_window_secs),
                    ip_registrations: self.throttle_ip_registrations,
                    ..ThrottlePolicy::default()
                },
                mail: MailPolicy {
                    retry_base: TimeDelta::seconds(self.mail_retry_base_secs),
                    retry_max: TimeDelta::seconds(self.mail_retry_max_secs),
                    max_attempts: self.mail_retry_attempts,
                    ..MailPolicy::default()
                },
            },
            argon2: Argon2Params {
                memory_kib: self.argon2_memory_kib,
                iterations: self.argon2_iterations,
                parallelism: self.argon2_parallelism,
            },
            hash_pool,
            workers: self.workers.map(usize::from),
            shutdown_timeout: Duration::from_secs(self.shutdown_timeout_secs),
            log_filter: self.log_filter,
            log_format: self.log_format,
            metrics_bind: self.metrics_bind,
            max_connections_per_worker: usize::from(self.max_connections_per_worker),
            purge_interval: (self.purge_interval_secs > 0)
                .then(|| Duration::from_secs(self.purge_interval_secs)),
            event_retention: TimeDelta::days(i64::from(self.event_retention_days)),
            mail: MailConfig {
                mailer: self.mailer,
                from: self.mail_from,
                reset_url: self.reset_url,
                templates: self.mail_templates,
                poll: Duration::from_millis(self.mail_poll_ms),
            },
            http: HttpConfig {
                body_timeout: Duration::from_secs(self.body_timeout_secs),
                cookie_secure: self.cookie_secure,
                allowed_origins: self.allowed_origins,
                trusted_proxies: self.trusted_proxies,
                token_issuer: self.jwt_issuer.clone(),
                token_audience: self.jwt_audience.clone(),
                ..HttpConfig::default()
            },
            dialects,
        })
    }
}

/// Where password-reset messages go, as configured.
#[derive(Clone, Debug)]
pub struct MailConfig {
    /// `PORTCULLIS_MAILER`; `None`: not set.
    pub mailer: Option<MailerSetting>,
    /// `PORTCULLIS_MAIL_FROM`.
    pub from: Option<Mailbox>,
    /// `PORTCULLIS_RESET_URL`.
    pub reset_url: Option<String>,
    /// `PORTCULLIS_MAIL_TEMPLATES`.
    pub templates: Option<PathBuf>,
    /// How often the sender looks for due messages.
    pub poll: Duration,
}

/// `error` with the environment variable of the argument at fault in front, so a bad
/// value read from the environment names its variable, not only its flag.
pub fn naming_variable(command: &Command, error: clap::Error) -> clap::Error {
    let Some(ContextValue::String(shown)) = error.get(ContextKind::InvalidArg) else {
        return error;
    };
    let Some(variable) = every_argument(command)
        .into_iter()
        .find(|arg| {
            arg.get_long().is_some_and(|long| {
                shown.starts_with(&format!("--{long} ")) || *shown == format!("--{long}")
            })
        })
        .and_then(|arg| arg.get_env())
        .and_then(|variable| variable.to_str())
    else {
        return error;
    };
    let rendered = error.to_string();
    let first_line = rendered.lines().next().unwrap_or_default();
    let reason = first_line.strip_prefix("error: ").unwrap_or(first_line);
    command
        .clone()
        .error(error.kind(), format!("{variable}: {reason}"))
}

/// The arguments of `command` and of all its subcommands, at any depth.
fn every_argument(command: &Command) -> Vec<&clap::Arg> {
    command
        .get_arguments()
        .chain(command.get_subcommands().flat_map(every_argument))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    fn mounted(config: &Config) -> Vec<(&'static str, String)> {
        config
            .dialects
            .iter()
            .map(|m| (m.dialect.name(), m.prefix.clone()))
            .collect()
    }

    #[test]
    fn defaults_need_no_configuration() {
        let config = config(&[]).unwrap();
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(config.database_url, "portcullis.db");
        assert!(config.jwt_secret.is_none());
        assert_eq!(config.jwt_alg, KeyAlgorithm::EdDSA);
        assert!(config.secrets_key.is_none() && config.secrets_key_file.is_none());
        assert!(config.migrate_on_start);
        assert_eq!(config.auth, AuthConfig::default());
        assert_eq!(config.argon2, Argon2Params::default());
        assert_eq!(config.db_timeout, Duration::from_millis(2000));
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(
            config.hash_pool,
            HashPoolConfig {
                threads: cores,
                queue: 4 * cores,
                low_priority: true,
            }
        );
        assert_eq!(config.db_blocking_threads, 10 + 5 * cores);
        assert_eq!(config.workers, None);
        assert_eq!(config.log_filter, "info");
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(config.metrics_bind, None);
        assert!(config.http.cookie_secure);
        let all: Vec<_> = portcullis_http::DIALECTS
            .iter()
            .map(|d| (d.name, String::new()))
            .collect();
        assert_eq!(mounted(&config), all);
    }

    #[test]
    fn values_override_defaults() {
        let config = config(&[
            ("PORTCULLIS_BIND", "0.0.0.0:9000"),
            ("DATABASE_URL", "postgres://u:p@db/auth"),
            ("PORTCULLIS_ACCESS_TOKEN_TTL_SECS", "60"),
            ("PORTCULLIS_MIGRATE_ON_START", "false"),
            ("PORTCULLIS_WORKERS", "3"),
            ("PORTCULLIS_PASSWORD_MAX_LENGTH", "64"),
            (
                "PORTCULLIS_JWT_SECRET",
                "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            ),
        ])
        .unwrap();
        assert_eq!(config.bind.port(), 9000);
        assert_eq!(config.auth.access_ttl, TimeDelta::seconds(60));
        assert_eq!(config.auth.password_policy.max_chars, 64);
        assert!(!config.migrate_on_start);
        assert_eq!(config.workers, Some(3));
        assert!(config.jwt_secret.is_some());
    }

    #[test]
    fn capacity_settings() {
        let sized = config(&[
            ("PORTCULLIS_HASH_CONCURRENCY", "3"),
            ("PORTCULLIS_DB_TIMEOUT_MS", "250"),
            ("PORTCULLIS_DB_POOL_SIZE", "4"),
        ])
        .unwrap();
        assert_eq!(
            sized.hash_pool,
            HashPoolConfig {
                threads: 3,
                queue: 12,
                low_priority: true,
            }
        );
        assert_eq!(sized.db_timeout, Duration::from_millis(250));
        assert_eq!(sized.db_blocking_threads, 4 + 3 + 12);
        let small = config(&[
            ("PORTCULLIS_HASH_CONCURRENCY", "1"),
            ("PORTCULLIS_HASH_QUEUE", "0"),
            ("PORTCULLIS_DB_BLOCKING_THREADS", "7"),
            ("PORTCULLIS_HASH_LOW_PRIORITY", "false"),
        ])
        .unwrap();
        assert_eq!(
            small.hash_pool,
            HashPoolConfig {
                threads: 1,
                queue: 0,
                low_priority: false,
            }
        );
        assert_eq!(small.db_blocking_threads, 7);
    }

    #[test]
    fn flags_set_values() {
        let config =
            Config::try_parse_from(["--bind", "127.0.0.1:7000", "--db-pool-size", "4"]).unwrap();
        assert_eq!(config.bind.port(), 7000);
        assert_eq!(config.pool_size, 4);
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (name, value) in [
            ("PORTCULLIS_BIND", "nowhere"),
            ("PORTCULLIS_ACCESS_TOKEN_TTL_SECS", "-5"),
            ("PORTCULLIS_ACCESS_TOKEN_TTL_SECS", "0"),
            ("PORTCULLIS_DB_POOL_SIZE", "0"),
            ("PORTCULLIS_MIGRATE_ON_START", "maybe"),
            ("PORTCULLIS_JWT_SECRET", "c2hvcnQ="),
            ("PORTCULLIS_JWT_LEEWAY_SECS", "301"),
            ("PORTCULLIS_ARGON2_MEMORY_KIB", "lots"),
            ("PORTCULLIS_HASH_CONCURRENCY", "0"),
            ("PORTCULLIS_HASH_QUEUE", "-1"),
            ("PORTCULLIS_DB_TIMEOUT_MS", "0"),
            ("PORTCULLIS_DB_BLOCKING_THREADS", "0"),
            ("PORTCULLIS_WORKERS", "0"),
            ("PORTCULLIS_WORKERS", "513"),
            ("PORTCULLIS_PASSWORD_MIN_LENGTH", "0"),
            ("PORTCULLIS_PASSWORD_MAX_LENGTH", "0"),
            ("PORTCULLIS_PASSWORD_MAX_LENGTH", "5000"),
            ("PORTCULLIS_PASSWORD_MAX_LENGTH", "many"),
            ("PORTCULLIS_DIALECTS", "authapi,soap"),
            ("PORTCULLIS_CBS_PREFIX", "api"),
            ("PORTCULLIS_COOKIE_SECURE", "sometimes"),
            ("PORTCULLIS_POCKETBASE_TOKEN_TTL_SECS", "0"),
            ("PORTCULLIS_POCKETBASE_COOKIE", "perhaps"),
            ("RUST_LOG", "info,[=bad"),
            ("PORTCULLIS_ALLOWED_ORIGINS", "https://app.example/login"),
            ("PORTCULLIS_ALLOWED_ORIGINS", "app.example"),
            ("PORTCULLIS_REFRESH_GRACE_SECS", "301"),
            ("PORTCULLIS_BODY_TIMEOUT_SECS", "0"),
            ("PORTCULLIS_PURGE_INTERVAL_SECS", "-1"),
            ("PORTCULLIS_THROTTLE_BASE_DELAY_SECS", "0"),
            ("PORTCULLIS_THROTTLE_IP_FAILURES", "0"),
            ("PORTCULLIS_TRUSTED_PROXIES", "10.0.0.0/33"),
            ("PORTCULLIS_TRUSTED_PROXIES", "proxy.internal"),
            ("PORTCULLIS_MAX_CONNECTIONS_PER_WORKER", "0"),
            ("PORTCULLIS_REFRESH_GRACE_SECS", "-1"),
            ("PORTCULLIS_JWT_ALG", "none"),
            ("PORTCULLIS_JWT_ALG", "RS256"),
            ("PORTCULLIS_SECRETS_KEY", "c2hvcnQ="),
        ] {
            let error = config(&[(name, value)]).unwrap_err();
            let message = error.to_string();
            assert!(
                message.contains(&format!("{name}:")),
                "{name}={value}: {message}"
            );
            assert_eq!(error.exit_code(), 2, "{name}={value}");
        }
    }

    #[test]
    fn a_minimum_over_the_maximum_names_both() {
        let message = config(&[
            ("PORTCULLIS_PASSWORD_MIN_LENGTH", "30"),
            ("PORTCULLIS_PASSWORD_MAX_LENGTH", "20"),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            message.contains("PORTCULLIS_PASSWORD_MIN_LENGTH (30)"),
            "{message}"
        );
        assert!(
            message.contains("PORTCULLIS_PASSWORD_MAX_LENGTH (20)"),
            "{message}"
        );
    }

    #[test]
    fn trusted_proxies_are_ranges_or_addresses() {
        let config =
            config(&[("PORTCULLIS_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7,::1")]).unwrap();
        let shown: Vec<String> = config
            .http
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(shown, ["10.0.0.0/8", "192.0.2.7/32", "::1/128"]);
    }

    #[test]
    fn allowed_origins_are_a_list_of_origins() {
        let config = config(&[(
            "PORTCULLIS_ALLOWED_ORIGINS",
            "https://App.Example, http://localhost:3000",
        )])
        .unwrap();
        assert_eq!(
            config.http.allowed_origins,
            ["https://app.example", "http://localhost:3000"]
        );
        assert!(self::config(&[]).unwrap().http.allowed_origins.is_empty());
    }

    #[test]
    fn dialects_and_their_settings() {
        let some = config(&[
            ("PORTCULLIS_DIALECTS", "pocketbase, AUTHAPI"),
            ("PORTCULLIS_POCKETBASE_PREFIX", "/api/v1/"),
            ("PORTCULLIS_COOKIE_SECURE", "false"),
        ])
        .unwrap();
        assert_eq!(
            mounted(&some),
            [
                ("authapi", String::new()),
                ("pocketbase", "/api/v1".to_owned())
            ]
        );
        assert!(!some.http.cookie_secure);
    }

    /// The README's configuration table and `--help` name the same variables.
    #[test]
    fn the_readme_table_lists_every_variable() {
        let readme = include_str!("../../../README.md");
        let section = readme
            .split("## Configuration")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .unwrap();
        let mut documented: Vec<String> = section
            .lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .filter_map(|row| row.split(" | ").next())
            .flat_map(|cell| cell.split(", "))
            .map(|name| name.trim_matches('`').to_owned())
            .collect();
        documented.sort();
        let command = with_settings(Command::new("portcullis"));
        let mut declared: Vec<String> = command
            .get_arguments()
            .filter_map(|arg| arg.get_env())
            .map(|variable| variable.to_string_lossy().into_owned())
            .collect();
        declared.sort();
        assert_eq!(documented, declared);
    }

    #[test]
    fn signing_key_settings() {
        let config = config(&[
            ("PORTCULLIS_JWT_ALG", "HS256"),
            (
                "PORTCULLIS_SECRETS_KEY",
                "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            ),
        ])
        .unwrap();
        assert_eq!(config.jwt_alg, KeyAlgorithm::HS256);
        assert!(config.secrets_key.is_some());
        let shown = format!("{config:?}");
        assert!(!shown.contains("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"));
        let both = self::config(&[
            (
                "PORTCULLIS_SECRETS_KEY",
                "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            ),
            ("PORTCULLIS_SECRETS_KEY_FILE", "/run/secrets/portcullis"),
        ]);
        assert!(both.is_err());
    }

    #[test]
    fn a_secret_never_shows_in_debug_output() {
        let config = config(&[(
            "PORTCULLIS_JWT_SECRET",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        )])
        .unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"));
        assert!(!shown.contains("0123456789abcdef"));
    }
}
