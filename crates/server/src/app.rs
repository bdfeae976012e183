//! Wiring: adapters into the domain service, the service into the HTTP server.

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use anyhow::bail;
use chrono::TimeDelta;
use portcullis_cache::{
    CacheConfig, CachedResetTokens, CachedSessions, CachedUsers, Freshness, StateCache,
};
use portcullis_crypto::{
    Argon2Hasher, HashPool, JwtCodec, JwtConfig, KeyRing, KeyRingConfig, SecretsKey,
};
use portcullis_domain::{
    AuthService, Clock as _, DeliveryRound, Mailer, Ports, ResetTokenRepository, SessionRepository,
    StoreError, SystemClock, TokenCodec, UserRepository,
};
use portcullis_http::telemetry::{METRICS_CONTENT_TYPE, process_probes};
use portcullis_http::{AppState, Metrics, Probe, READINESS_DEADLINE, Readiness};
use portcullis_persistence::{
    Backend, Change, ChangeListener, ChangeSink, Database, PoolOptions, Purged, sqlite_path,
};

use crate::config::Config;
use crate::mailer::{LogMailer, MailerSetting, ResetTemplates, SmtpMailer};

/// The name under which older versions kept a generated HS256 key, in the clear, in
/// `server_secrets`; imported into `signing_keys` (sealed) and deleted at start-up.
pub const LEGACY_SECRET_NAME: &str = "jwt_hs256";

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
/// `config.hash_pool` threads, without a cache (for one-off commands). Blocking (it
/// may read or create the JWT secret in the database).
pub fn build_service(
    config: &Config,
    database: &Database,
    mailer: Arc<dyn Mailer>,
) -> anyhow::Result<AuthService> {
    build_service_with(config, database, mailer, None, None)
}

/// [`build_service`], looking sessions and users up through `cache` if given, with the
/// hashing pool's load among `metrics` if given.
pub fn build_service_with(
    config: &Config,
    database: &Database,
    mailer: Arc<dyn Mailer>,
    cache: Option<Arc<StateCache>>,
    metrics: Option<&Metrics>,
) -> anyhow::Result<AuthService> {
    let hasher = Arc::new(
        HashPool::new(
            Argon2Hasher::new(config.argon2).context("PORTCULLIS_ARGON2_*")?,
            config.hash_pool,
        )
        .context("starting the password-hashing threads")?,
    );
    if let Some(metrics) = metrics {
        let running = hasher.clone();
        metrics.probe(Probe::gauge(
            "portcullis_hash_in_flight",
            "Password hashes running now",
            move || running.load().0 as f64,
        ));
        let queued = hasher.clone();
        metrics.probe(Probe::gauge(
            "portcullis_hash_queue_depth",
            "Password hashes waiting for a hashing thread",
            move || queued.load().1 as f64,
        ));
    }
    let tokens = token_codec(config, database)?;
    let sealed = sealing(config, database.clone());
    let database = Arc::new(sealed.clone());
    let (users, sessions, reset_tokens): (
        Arc<dyn UserRepository>,
        Arc<dyn SessionRepository>,
        Arc<dyn ResetTokenRepository>,
    ) = match cache {
        Some(cache) => (
            Arc::new(CachedUsers::new(sealed.clone(), cache.clone())),
            Arc::new(CachedSessions::new(sealed.clone(), cache.clone())),
            Arc::new(CachedResetTokens::new(sealed, cache)),
        ),
        None => (database.clone(), database.clone(), database.clone()),
    };
    let ports = Ports {
        users,
        sessions,
        reset_tokens,
        hasher,
        tokens,
        clock: Arc::new(SystemClock),
        mailer,
        throttles: database.clone(),
        events: database.clone(),
        outbox: database.clone(),
        clients: database,
    };
    Ok(AuthService::new(ports, config.auth.clone()))
}

/// How long a cache over a shared PostgreSQL serves entries after its listener last
/// proved itself current: the worst staleness of a change whose notification is lost.
/// Three probe intervals, so one late probe does not suspend the cache.
pub const CACHE_LEASE: Duration = Duration::from_millis(750);

/// The session and user cache `config` asks for (`None`: turned off), and on PostgreSQL
/// the listener that keeps it current; it is dropped (and stopped) with the listener.
/// Blocking.
pub fn state_cache(
    config: &Config,
    database: &Database,
) -> anyhow::Result<(Option<Arc<StateCache>>, Option<ChangeListener>)> {
    if config.cache_capacity == 0 {
        return Ok((None, None));
    }
    let freshness = match database.backend() {
        Backend::Postgres => Freshness::Leased(CACHE_LEASE),
        Backend::Sqlite => Freshness::Local,
    };
    let cache = StateCache::new(CacheConfig {
        capacity: config.cache_capacity,
        ttl: config.cache_ttl,
        freshness,
    });
    let listener = database
        .listen_for_changes(Arc::new(CacheInvalidation(cache.clone())))
        .context("starting the change listener")?;
    Ok((Some(cache), listener))
}

/// Applies the database's change notifications to the cache.
struct CacheInvalidation(Arc<StateCache>);

impl ChangeSink for CacheInvalidation {
    fn changed(&self, change: Change) {
        match change {
            Change::Session(id) => self.0.invalidate_session(id),
            Change::User(id) => self.0.invalidate_user(id),
            Change::Everything => self.0.flush(),
        }
    }

    fn confirmed(&self, sent_at: Instant) {
        self.0.confirm(sent_at);
    }

    fn lost(&self) {
        self.0.suspend();
    }
}

/// `database`, sealing the reset secrets of queued mail under the secrets key. Without
/// one (a fixed `PORTCULLIS_JWT_SECRET` on PostgreSQL and no `PORTCULLIS_SECRETS_KEY`),
/// they are stored as they are until delivered, and the log says so.
fn sealing(config: &Config, database: Database) -> Database {
    match secrets_key(config) {
        Ok(key) => database.sealing_secrets_with(Arc::new(key)),
        Err(_) => {
            tracing::warn!(
                "no PORTCULLIS_SECRETS_KEY: the reset links of queued mail are stored unsealed until delivered"
            );
            database
        }
    }
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

/// The token codec the configuration asks for: the fixed `PORTCULLIS_JWT_SECRET`, or
/// the key ring over the database's sealed signing keys ([`key_ring`]). Blocking.
pub fn token_codec(config: &Config, database: &Database) -> anyhow::Result<Arc<dyn TokenCodec>> {
    match &config.jwt_secret {
        Some(secret) => {
            let mut jwt = JwtConfig::new(
                secret.clone(),
                config.issuer.clone(),
                config.audience.clone(),
            );
            jwt.leeway_seconds = config.jwt_leeway_seconds;
            Ok(Arc::new(JwtCodec::new(jwt).context("PORTCULLIS_JWT_*")?))
        }
        None => Ok(Arc::new(key_ring(config, database)?)),
    }
}

/// The key ring over the database's signing keys, ready to sign: a plaintext key left
/// in `server_secrets` by an older version is imported (sealed, with its own kid, still
/// verifying the tokens it signed) and deleted, and a key of `PORTCULLIS_JWT_ALG` is
/// made if none of that algorithm is active. Blocking.
pub fn key_ring(config: &Config, database: &Database) -> anyhow::Result<KeyRing> {
    let secrets = secrets_key(config)?;
    let imported = database
        .import_legacy_secret(LEGACY_SECRET_NAME, |secret, stored_at| {
            KeyRing::legacy_record(&secrets, secret, stored_at).map_err(Into::into)
        })
        .context("importing the plaintext JWT key into signing_keys")?;
    if let Some(imported) = imported {
        tracing::info!(
            kid = imported.kid,
            "the plaintext HS256 key is now sealed in signing_keys; it keeps verifying the tokens it signed"
        );
    }
    let ring = KeyRing::open(
        Arc::new(database.clone()),
        secrets,
        KeyRingConfig {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            leeway_seconds: config.jwt_leeway_seconds,
            algorithm: config.jwt_alg,
            longest_token_ttl: config.longest_token_ttl(),
        },
    )
    .context("loading the signing keys")?;
    if let Some(kid) = ring
        .ensure_signing_key(SystemClock.now())
        .context("creating a signing key")?
    {
        tracing::info!(kid, algorithm = %config.jwt_alg, "new signing key active");
    }
    Ok(ring)
}

/// The key that seals the signing keys: `PORTCULLIS_SECRETS_KEY`, else the file of
/// `PORTCULLIS_SECRETS_KEY_FILE`, else (SQLite only, so that a development set-up needs
/// no configuration) `<database>.key`, generated on first start. Never kept in the
/// database: a copy of the database alone cannot mint tokens.
pub fn secrets_key(config: &Config) -> anyhow::Result<SecretsKey> {
    if let Some(key) = &config.secrets_key {
        return Ok(key.clone());
    }
    if let Some(path) = &config.secrets_key_file {
        return read_key_file(path).with_context(|| {
            format!("PORTCULLIS_SECRETS_KEY_FILE: cannot use {}", path.display())
        });
    }
    match sqlite_path(&config.database_url).context("DATABASE_URL")? {
        Some(database) => {
            let path = PathBuf::from(format!("{database}.key"));
            key_file_beside_database(&path)
                .with_context(|| format!("the generated secrets key {}", path.display()))
        }
        None => bail!(
            "PORTCULLIS_SECRETS_KEY or PORTCULLIS_SECRETS_KEY_FILE must be set with PostgreSQL: \
             it encrypts the token-signing keys in the database (make one with `openssl rand -base64 32`)"
        ),
    }
}

fn read_key_file(path: &Path) -> anyhow::Result<SecretsKey> {
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path)?);
    Ok(SecretsKey::from_config_str(&text)?)
}

/// Reads the key file at `path`, or creates it (mode 0600, so only the server's user
/// can read it) with a fresh key. Of processes starting together, the first to create
/// the file wins and the others read it.
fn key_file_beside_database(path: &Path) -> anyhow::Result<SecretsKey> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            let key = SecretsKey::generate()?;
            let text = key.to_config_string();
            file.write_all(text.as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            tracing::warn!(
                path = %path.display(),
                "generated the secrets key that encrypts the signing keys; back it up with the database: without it the keys are lost"
            );
            Ok(key)
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            // A process that created it a moment ago may not have written it yet.
            for _ in 0..50 {
                if std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            read_key_file(path)
        }
        Err(error) => Err(error.into()),
    }
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
    /// Keeps the cache current; stopped when the application is dropped.
    _changes: Option<ChangeListener>,
    metrics: Option<MetricsServer>,
}

impl Application {
    /// Opens the database, wires the service and binds `config.bind` (port 0 picks a
    /// free port: see [`Application::local_addr`]).
    pub async fn build(config: Config, mailer: Arc<dyn Mailer>) -> anyhow::Result<Self> {
        let purging = PurgeConfig::of(&config);
        let blocking_config = config.clone();
        let metrics = config.metrics_bind.map(|_| Arc::new(Metrics::new()));
        let wiring_metrics = metrics.clone();
        let (database, service, changes, cache) = tokio::task::spawn_blocking(move || {
            let database = open_database(&blocking_config)?;
            let (cache, changes) = state_cache(&blocking_config, &database)?;
            let service = build_service_with(
                &blocking_config,
                &database,
                mailer,
                cache.clone(),
                wiring_metrics.as_deref(),
            )?;
            anyhow::Ok((database, service, changes, cache))
        })
        .await
        .context("start-up task failed")??;
        let metrics_server = match (&metrics, config.metrics_bind) {
            (Some(metrics), Some(bind)) => {
                probe_storage(metrics, &database, cache.as_ref());
                Some(MetricsServer::bind(metrics.clone(), bind)?)
            }
            _ => None,
        };
        let auth = Arc::new(service);
        let state = AppState {
            auth: auth.clone(),
            readiness: Arc::new(DatabaseReadiness(database.clone())),
            config: config.http.clone(),
            metrics,
        };
        let listener = TcpListener::bind(config.bind)
            .with_context(|| format!("PORTCULLIS_BIND: cannot listen on {}", config.bind))?;
        let local_addr = listener.local_addr()?;
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(portcullis_http::default_headers())
                .wrap(from_fn(portcullis_http::observe))
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
            _changes: changes,
            metrics: metrics_server,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where the metrics listener listens, if there is one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|metrics| metrics.local_addr)
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
        let metrics = self.metrics.map(|metrics| {
            let handle = metrics.server.handle();
            (handle, tokio::spawn(metrics.server))
        });
        let served = self.server.await;
        if let Some((handle, task)) = metrics {
            handle.stop(true).await;
            let _ = task.await;
        }
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

/// The database pool's and the cache's readings, and the process's, among `metrics`.
fn probe_storage(metrics: &Metrics, database: &Database, cache: Option<&Arc<StateCache>>) {
    let pool = database.clone();
    metrics.probe(Probe::labelled_gauge(
        "portcullis_db_pool_connections",
        "Database connections of this instance's pool, by state (idle, in_use)",
        "state",
        move || {
            let (idle, in_use) = pool.pool_connections();
            vec![("idle", f64::from(idle)), ("in_use", f64::from(in_use))]
        },
    ));
    if let Some(cache) = cache {
        let hits = cache.clone();
        metrics.probe(Probe::counter(
            "portcullis_cache_hits",
            "Session and user lookups answered from the cache",
            move || hits.stats().hits as f64,
        ));
        let misses = cache.clone();
        metrics.probe(Probe::counter(
            "portcullis_cache_misses",
            "Session and user lookups the cache passed to the database",
            move || misses.stats().misses as f64,
        ));
    }
    for probe in process_probes() {
        metrics.probe(probe);
    }
}

/// The metrics listener (`PORTCULLIS_METRICS_BIND`): `GET /metrics` on an address of
/// its own, one worker, so scrapes never share the public listener.
struct MetricsServer {
    server: Server,
    local_addr: SocketAddr,
}

impl MetricsServer {
    fn bind(metrics: Arc<Metrics>, bind: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(bind)
            .with_context(|| format!("PORTCULLIS_METRICS_BIND: cannot listen on {bind}"))?;
        let local_addr = listener.local_addr()?;
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::from(metrics.clone()))
                .route("/metrics", web::get().to(scrape))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run();
        tracing::info!(address = %local_addr, "metrics listening");
        Ok(Self { server, local_addr })
    }
}

async fn scrape(metrics: web::Data<Metrics>) -> HttpResponse {
    match metrics.encode() {
        Ok(text) => HttpResponse::Ok()
            .content_type(METRICS_CONTENT_TYPE)
            .body(text),
        Err(error) => {
            tracing::error!(%error, "metrics could not be encoded");
            HttpResponse::InternalServerError().finish()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use portcullis_persistence::testing::TestDatabase;

    use super::*;

    #[test]
    fn the_generated_key_file_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portcullis.db.key");
        let first = key_file_beside_database(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        }
        let again = key_file_beside_database(&path).unwrap();
        assert_eq!(
            first.to_config_string().as_str(),
            again.to_config_string().as_str()
        );
    }

    #[test]
    fn postgres_without_a_secrets_key_names_both_variables() {
        let config = Config::from_lookup(|name| {
            (name == "DATABASE_URL").then(|| "postgres://u@127.0.0.1/none".to_owned())
        })
        .unwrap();
        let message = format!("{:#}", secrets_key(&config).unwrap_err());
        assert!(message.contains("PORTCULLIS_SECRETS_KEY "), "{message}");
        assert!(message.contains("PORTCULLIS_SECRETS_KEY_FILE"), "{message}");
    }

    #[test]
    fn a_legacy_plaintext_key_is_imported_sealed_and_deleted() {
        let test_db = TestDatabase::sqlite();
        let legacy = b"the old plaintext key, 32 bytes!".to_vec();
        test_db
            .database()
            .load_or_create_secret(LEGACY_SECRET_NAME, || legacy.clone())
            .unwrap();
        let config = Config::from_lookup(|name| match name {
            "DATABASE_URL" => Some(test_db.url().to_owned()),
            _ => None,
        })
        .unwrap();
        token_codec(&config, test_db.database()).unwrap();
        // The plaintext row is gone; a new one would be whatever the caller gives.
        let now = test_db
            .database()
            .load_or_create_secret(LEGACY_SECRET_NAME, || b"fresh".to_vec())
            .unwrap();
        assert_eq!(now, b"fresh");
    }
}
