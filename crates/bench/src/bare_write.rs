//! The bare write endpoint: `POST /write` inserts one row (a random UUID and a
//! timestamp) into its own table, one single-statement write transaction per request,
//! through Diesel and an r2d2 pool on actix's blocking threads: the floor under a
//! refresh, which is a write transaction on the same database. SQLite connections get
//! the server's pragmas (WAL, `synchronous = NORMAL`, `busy_timeout`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::{Context, bail};
use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
use diesel::sql_types::{Text, Timestamptz, Uuid as SqlUuid};
use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};
use serde_json::json;

/// The same pragmas as `crates/persistence/src/connect.rs`.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; \
     PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = NORMAL; \
     PRAGMA foreign_keys = ON;";

/// How long filling the pool at start-up may take.
const FILL_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Listen address (port 0 picks a free one; the address is printed)
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: SocketAddr,
    /// postgres:// or postgresql:// for PostgreSQL; sqlite://PATH, sqlite:PATH or a
    /// plain path for SQLite (created if missing)
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database: String,
    /// Database connections (Portcullis's default: 10)
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pool_size: u32,
    /// How long a request waits for a connection, in milliseconds (Portcullis's
    /// default: 2000); past it the answer is 503
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(10..=600_000))]
    timeout_ms: u64,
    /// HTTP worker threads (default: one per core, as the server)
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=512))]
    workers: Option<u16>,
}

#[derive(Clone, Copy, Debug)]
struct SqlitePragmas;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(SQLITE_PRAGMAS)
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

enum Store {
    Postgres(Pool<ConnectionManager<PgConnection>>),
    Sqlite(Pool<ConnectionManager<SqliteConnection>>),
}

#[derive(Debug)]
enum WriteError {
    /// No connection within the timeout.
    Busy(String),
    Failed(String),
}

impl Store {
    fn open(url: &str, pool_size: u32) -> anyhow::Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            PgConnection::establish(url).context("cannot connect to PostgreSQL")?;
            let pool = Pool::builder()
                .max_size(pool_size)
                .connection_timeout(FILL_TIMEOUT)
                .build(ConnectionManager::<PgConnection>::new(url))
                .context("cannot fill the PostgreSQL pool")?;
            let mut conn = pool.get().context("no PostgreSQL connection")?;
            conn.batch_execute(
                "CREATE TABLE IF NOT EXISTS bench_writes (\
                     id UUID PRIMARY KEY NOT NULL, \
                     created_at TIMESTAMPTZ NOT NULL)",
            )
            .context("cannot create bench_writes")?;
            return Ok(Self::Postgres(pool));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() || path.contains(":memory:") || path.contains("mode=memory") {
            bail!("the database must be a SQLite file or a PostgreSQL URL");
        }
        let mut probe = SqliteConnection::establish(path)
            .with_context(|| format!("cannot open SQLite database {path}"))?;
        SqlitePragmas
            .on_acquire(&mut probe)
            .context("cannot apply the SQLite pragmas")?;
        probe
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS bench_writes (\
                     id TEXT PRIMARY KEY NOT NULL, \
                     created_at TEXT NOT NULL) STRICT",
            )
            .context("cannot create bench_writes")?;
        let pool = Pool::builder()
            .max_size(pool_size)
            .connection_timeout(FILL_TIMEOUT)
            .connection_customizer(Box::new(SqlitePragmas))
            .build(ConnectionManager::new(path))
            .context("cannot fill the SQLite pool")?;
        Ok(Self::Sqlite(pool))
    }

    fn backend(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "postgres",
            Self::Sqlite(_) => "sqlite",
        }
    }

    /// One INSERT, its own transaction (autocommit).
    fn write(&self, timeout: Duration) -> Result<(), WriteError> {
        let id = uuid::Uuid::new_v4();
        let now = chrono::Utc::now();
        let failed = |e: &dyn std::fmt::Display| WriteError::Failed(e.to_string());
        let inserted = match self {
            Self::Postgres(pool) => {
                let mut conn = pool
                    .get_timeout(timeout)
                    .map_err(|e| WriteError::Busy(e.to_string()))?;
                diesel::sql_query("INSERT INTO bench_writes (id, created_at) VALUES ($1, $2)")
                    .bind::<SqlUuid, _>(id)
                    .bind::<Timestamptz, _>(now)
                    .execute(&mut *conn)
                    .map_err(|e| failed(&e))?
            }
            Self::Sqlite(pool) => {
                let mut conn = pool
                    .get_timeout(timeout)
                    .map_err(|e| WriteError::Busy(e.to_string()))?;
                diesel::sql_query("INSERT INTO bench_writes (id, created_at) VALUES (?, ?)")
                    .bind::<Text, _>(id.hyphenated().to_string())
                    .bind::<Text, _>(now.to_rfc3339())
                    .execute(&mut *conn)
                    .map_err(|e| failed(&e))?
            }
        };
        if inserted == 1 {
            Ok(())
        } else {
            Err(WriteError::Failed(format!("inserted {inserted} rows")))
        }
    }
}

struct State {
    store: Store,
    timeout: Duration,
}

async fn write(state: web::Data<State>) -> HttpResponse {
    let state = state.into_inner();
    let done = web::block(move || state.store.write(state.timeout)).await;
    match done {
        Ok(Ok(())) => HttpResponse::Ok().json(json!({ "written": 1 })),
        Ok(Err(WriteError::Busy(why))) => {
            eprintln!("bare-write: no connection: {why}");
            HttpResponse::ServiceUnavailable()
                .insert_header(("Retry-After", "1"))
                .json(json!({ "error": "busy" }))
        }
        Ok(Err(WriteError::Failed(why))) => {
            eprintln!("bare-write: write failed: {why}");
            HttpResponse::InternalServerError().json(json!({ "error": "write failed" }))
        }
        Err(error) => {
            eprintln!("bare-write: blocking task failed: {error}");
            HttpResponse::InternalServerError().json(json!({ "error": "internal" }))
        }
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

pub(crate) fn serve(args: &Args) -> anyhow::Result<()> {
    let store = Store::open(&args.database, args.pool_size)?;
    let backend = store.backend();
    let state = web::Data::from(Arc::new(State {
        store,
        timeout: Duration::from_millis(args.timeout_ms),
    }));
    let workers = args.workers.map_or_else(crate::cores, usize::from);
    let pool_size = usize::try_from(args.pool_size).unwrap_or(usize::MAX);
    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .route("/write", web::post().to(write))
                .route("/healthz", web::get().to(healthz))
        })
        .workers(workers)
        // As the server: a worker's blocking threads are its database calls.
        .worker_max_blocking_threads(pool_size)
        .shutdown_timeout(1)
        .bind(args.bind)
        .with_context(|| format!("cannot listen on {}", args.bind))?;
        let addrs: Vec<String> = server.addrs().iter().map(ToString::to_string).collect();
        crate::print_json(&json!({
            "server": "bare-write",
            "backend": backend,
            "listening": addrs,
            "workers": workers,
            "pool_size": pool_size,
        }))?;
        server.run().await.context("serving")
    })
}
