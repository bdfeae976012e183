//! Wiring: adapters into the domain service, the service into the HTTP server.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpServer};
use anyhow::Context;
use chrono::TimeDelta;
use portcullis_crypto::{
    Argon2Hasher, ConfigError as JwtConfigError, HashPool, JwtCodec, JwtConfig, JwtSecret,
};
use portcullis_domain::{
    AuthService, Clock as _, DeliveryRound, Mailer, Ports, StoreError, SystemClock,
};
use portcullis_http::{AppState, READINESS_DEADLINE, Readiness};
use portcullis_persistence::{Database, PoolOptions, Purged};
use tracing::Instrument;

use crate::config::Config;
use crate::mailer::{LogMailer, MailerSetting, ResetTemplates, SmtpMailer};

/// The name under which a generated JWT secret is kept in the database.
const JWT_SECRET_NAME: &str = "jwt_hs256";

/// Opens the database and, unless disabled, brings its schema up to date. Blocking.
pub fn open_database(config: &Config) -> anyhow::Result<Database> {
    let options = PoolOptions {
        size: config.pool_size,
        checkout_timeout: config.db_timeout,
    };
    let database = Database::connect_with(&config.database_url, options)
        .context("DATABASE_URL: cannot open the database")?;
    if config.migrate_on_start {
        database
            .run_migrations()
            .context("running database migrations")?;
    }
    Ok(database)
}

/// The domain service over the production adapters, hashing on a [`HashPool`] of
/// `config.hash_pool` threads. Blocking (it may read or create the JWT secret in the
/// database).
pub fn build_service(
    config: &Config,
    database: &Database,
    mailer: Arc<dyn Mailer>,
) -> anyhow::Result<AuthService> {
    let tokens = token_codec(config, database)?;
    let database = Arc::new(database.clone());
    let ports = Ports {
        users: database.clone(),
        sessions: database.clone(),
        reset_tokens: database.clone(),
        hasher: Arc::new(
            HashPool::new(
                Argon2Hasher::new(config.argon2).context("PORTCULLIS_ARGON2_*")?,
                config.hash_pool,
            )
            .context("starting the password-hashing threads")?,
        ),
        tokens: Arc::new(tokens),
        clock: Arc::new(SystemClock),
        mailer,
        throttles: database.clone(),
        events: database.clone(),
        outbox: database,
    };
    Ok(AuthService::new(ports, config.auth.clone()))
}

/// The mailer `PORTCULLIS_MAILER` names. Unset, reset links go to the log, which is
/// allowed only while the server binds to a loopback address: anywhere else, whoever
/// reads the log could take over any account.
pub fn mailer_for(config: &Config) -> anyhow::Result<Arc<dyn Mailer>> {
    let mail = &config.mail;
    match &mail.mailer {
        Some(MailerSetting::Smtp(url)) => {
            let from = mail
                .from
                .clone()
                .context("PORTCULLIS_MAIL_FROM must be set with an SMTP PORTCULLIS_MAILER")?;
            let reset_url = mail
                .reset_url
                .clone()
                .context("PORTCULLIS_RESET_URL must be set with an SMTP PORTCULLIS_MAILER")?;
            let templates = ResetTemplates::load(mail.templates.as_deref())
                .context("PORTCULLIS_MAIL_TEMPLATES: cannot read the templates")?;
            let mailer = SmtpMailer::new(url, from, reset_url, templates)
                .context("PORTCULLIS_MAILER: not a usable SMTP URL")?;
            Ok(Arc::new(mailer))
        }
        Some(MailerSetting::Log) => {
            tracing::warn!(
                "PORTCULLIS_MAILER=log: password-reset tokens are written to this log (development only)"
            );
            Ok(Arc::new(LogMailer))
        }
        None if config.bind.ip().is_loopback() => {
            tracing::warn!(
                "PORTCULLIS_MAILER is not set: password-reset tokens are written to this log (development only; allowed on a loopback address)"
            );
            Ok(Arc::new(LogMailer))
        }
        None => anyhow::bail!(
            "PORTCULLIS_MAILER is not set, and the server binds to {}, not a loopback address: \
             reset links would go to the log, where any reader could take over accounts. Set \
             PORTCULLIS_MAILER to an SMTP URL (or to `log` to accept that, for development)",
            config.bind
        ),
    }
}

/// The JWT codec with the configured secret, or the one generated once and kept in the
/// database. Blocking.
pub fn token_codec(config: &Config, database: &Database) -> anyhow::Result<JwtCodec> {
    signing_codec(config, database, JwtSecret::generate)
}

fn signing_codec(
    config: &Config,
    database: &Database,
    generate: impl FnOnce() -> Result<JwtSecret, JwtConfigError>,
) -> anyhow::Result<JwtCodec> {
    let secret = match &config.jwt_secret {
        Some(secret) => secret.clone(),
        None => {
            // Generated once and shared through the database, so every instance signs
            // with the same key and tokens survive restarts. The candidate is made
            // before the database is touched: a failure stores nothing, and whichever
            // instance stores first wins.
            let candidate = generate().context("generating a JWT secret")?;
            let bytes = database
                .load_or_create_secret(JWT_SECRET_NAME, || candidate.as_bytes().to_vec())
                .context("loading the JWT secret from the database")?;
            JwtSecret::from_bytes(bytes).context("the JWT secret stored in the database")?
        }
    };
    let mut jwt = JwtConfig::new(secret, config.issuer.clone(), config.audience.clone());
    jwt.leeway_seconds = config.jwt_leeway_seconds;
    JwtCodec::new(jwt).context("PORTCULLIS_JWT_*")
}

struct DatabaseReadiness(Database);

impl Readiness for DatabaseReadiness {
    fn check(&self) -> Result<(), String> {
        self.0
            .ping_within(READINESS_DEADLINE)
            .map_err(|e| e.to_string())
    }
}

/// A bound, not yet running, HTTP server.
pub struct Application {
    server: Server,
    local_addr: SocketAddr,
    database: Database,
    purge_interval: Option<Duration>,
    purging: PurgeConfig,
    auth: Arc<AuthService>,
    mail_poll: Duration,
}

impl Application {
    /// Opens the database, wires the service and binds `config.bind` (port 0 picks a
    /// free port: see [`Application::local_addr`]).
    pub async fn build(config: Config, mailer: Arc<dyn Mailer>) -> anyhow::Result<Self> {
        let purging = PurgeConfig::of(&config);
        let blocking_config = config.clone();
        let (database, service) = tokio::task::spawn_blocking(move || {
            let database = open_database(&blocking_config)?;
            let service = build_service(&blocking_config, &database, mailer)?;
            anyhow::Ok((database, service))
        })
        .await
        .context("start-up task failed")??;
        let auth = Arc::new(service);
        let state = AppState {
            auth: auth.clone(),
            readiness: Arc::new(DatabaseReadiness(database.clone())),
            config: config.http.clone(),
        };
        let listener = TcpListener::bind(config.bind)
            .with_context(|| format!("PORTCULLIS_BIND: cannot listen on {}", config.bind))?;
        let local_addr = listener.local_addr()?;
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(portcullis_http::default_headers())
                .wrap(from_fn(log_request))
                .configure(portcullis_http::configure(
                    state.clone(),
                    config.dialects.clone(),
                ))
        })
        .shutdown_timeout(config.shutdown_timeout.as_secs())
        // Each worker's runtime runs database calls (and callers waiting for a hash) on
        // its own blocking pool; actix's default would be 512 / cores threads each.
        .worker_max_blocking_threads(config.db_blocking_threads)
        .max_connections(config.max_connections_per_worker);
        if let Some(workers) = config.workers {
            server = server.workers(workers);
        }
        let server = server.listen(listener)?.run();
        Ok(Self {
            server,
            local_addr,
            database,
            purge_interval: config.purge_interval,
            purging,
            auth,
            mail_poll: config.mail.poll,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until SIGINT or SIGTERM, then lets in-flight requests finish. Meanwhile
    /// delivers the mail outbox and purges the database every `purge_interval`.
    pub async fn run(self) -> std::io::Result<()> {
        let mailing = tokio::spawn(deliver_periodically(self.auth.clone(), self.mail_poll));
        let purging = self.purge_interval.map(|every| {
            tokio::spawn(purge_periodically(
                self.database.clone(),
                every,
                self.purging,
            ))
        });
        let served = self.server.await;
        mailing.abort();
        if let Some(task) = purging {
            task.abort();
        }
        served
    }
}

/// Deletes what has expired, security events older than the retention period and
/// throttle counters no limit looks at any more, now. `Ok(None)` when another instance
/// is purging. Blocking.
pub fn purge(database: &Database, config: &PurgeConfig) -> Result<Option<Purged>, StoreError> {
    let now = SystemClock.now();
    database.purge(
        now,
        now - config.event_retention,
        now - config.throttle_memory,
    )
}

/// How old what a purge deletes must be.
#[derive(Clone, Copy, Debug)]
pub struct PurgeConfig {
    /// Security events older than this go.
    pub event_retention: TimeDelta,
    /// Throttle counters last hit longer ago than this go
    /// (`ThrottlePolicy::memory`).
    pub throttle_memory: TimeDelta,
}

impl PurgeConfig {
    /// From the server's configuration.
    pub fn of(config: &Config) -> Self {
        Self {
            event_retention: config.event_retention,
            throttle_memory: config.auth.throttle.memory(),
        }
    }
}

/// Messages one delivery round takes at most.
const MAIL_BATCH: u32 = 32;

/// Delivers the outbox's due messages every `every`; a round that found a full batch
/// goes on at once. Failures are logged and the next tick tries again.
async fn deliver_periodically(auth: Arc<AuthService>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        loop {
            let auth = auth.clone();
            match tokio::task::spawn_blocking(move || auth.deliver_mail(MAIL_BATCH)).await {
                Ok(Ok(round)) => {
                    if round != DeliveryRound::default() {
                        tracing::info!(
                            sent = round.sent,
                            retried = round.retried,
                            failed = round.failed,
                            "mail delivery round"
                        );
                    }
                    let handled = round.sent + round.retried + round.failed;
                    if handled < MAIL_BATCH as usize {
                        break;
                    }
                }
                Ok(Err(error)) => {
                    tracing::warn!(%error, "mail delivery failed");
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, "mail delivery task failed");
                    break;
                }
            }
        }
    }
}

/// Purges every `every`, the first time one interval after start-up; a failure is
/// logged and the next tick tries again.
async fn purge_periodically(database: Database, every: Duration, purging: PurgeConfig) {
    let mut ticks = tokio::time::interval(every);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let database = database.clone();
        match tokio::task::spawn_blocking(move || purge(&database, &purging)).await {
            Ok(Ok(Some(purged))) => tracing::info!(
                sessions = purged.sessions,
                refresh_tokens = purged.refresh_tokens,
                reset_tokens = purged.reset_tokens,
                events = purged.events,
                throttles = purged.throttles,
                "purged expired rows"
            ),
            Ok(Ok(None)) => tracing::debug!("purge skipped: another instance is purging"),
            Ok(Err(error)) => tracing::warn!(%error, "purge failed"),
            Err(error) => tracing::warn!(%error, "purge task failed"),
        }
    }
}

/// One log line per request: method, path (never the query string, which may carry a
/// reset token), status and duration.
async fn log_request(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.path(),
    );
    let started = Instant::now();
    let response = next.call(request).instrument(span.clone()).await?;
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "served"
        )
    });
    Ok(response)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use portcullis_persistence::testing::TestDatabase;

    use super::*;

    #[test]
    fn a_failed_key_generation_stores_nothing() {
        let test_db = TestDatabase::sqlite();
        let config = Config::from_lookup(|_| None).unwrap();
        let failed = signing_codec(&config, test_db.database(), || {
            Err(JwtConfigError::SecretTooShort { bytes: 0 })
        });
        assert!(failed.is_err());
        let stored = test_db
            .database()
            .load_or_create_secret(JWT_SECRET_NAME, || {
                b"the next start's own key, 32 bytes+".to_vec()
            })
            .unwrap();
        assert_eq!(stored, b"the next start's own key, 32 bytes+");
        token_codec(&config, test_db.database()).unwrap();
    }
}
