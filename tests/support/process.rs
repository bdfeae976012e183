//! The end-to-end harness: runs the real `portcullis` binary as a child process, on a
//! fresh database, and talks to it over HTTP on 127.0.0.1.
//!
//! Every wait is bounded. The server's stderr is drained on a thread into a shared
//! buffer (so the pipe never fills), which tests search for log lines.

use std::io::{BufRead, BufReader, Read, Write};
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use portcullis_persistence::testing::TestDatabase;
use serde_json::{Value, json};
use tempfile::TempDir;

use super::backend::{Backend, server_env};
use super::client::{Api, Reply, sorted_keys};
use super::uri::encode_uri_component;

/// How long a server may take from spawn to its listening line.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an expected log line may take to appear.
const LOG_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a stopped server may take to exit after SIGTERM/SIGINT.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a command-line run (`migrate`, `user ...`) may take.
const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// The marker of the development mailer's log line.
pub const RESET_TOKEN_LINE: &str = "password reset token issued (development mailer)";
const LISTENING_LINE: &str = "portcullis listening";

/// The binary under test: the one Cargo built for this test run, whatever the profile
/// or target directory.
const BINARY: &str = env!("CARGO_BIN_EXE_portcullis");

// ---------------------------------------------------------------------------------------
// Databases
// ---------------------------------------------------------------------------------------

/// A fresh database for one test, deleted when dropped. Declare it before the
/// [`Server`] using it, so the server stops first.
pub enum TestDb {
    Postgres(TestDatabase),
    Sqlite {
        dir: TempDir,
        path: PathBuf,
        url: String,
    },
}

impl TestDb {
    /// A fresh database: a PostgreSQL one (see `scripts/test-db.sh`), or a SQLite file,
    /// not yet created, in a fresh directory, with `DATABASE_URL` `sqlite://PATH`.
    pub fn new(backend: Backend) -> Self {
        match backend {
            Backend::Postgres => Self::Postgres(TestDatabase::postgres()),
            Backend::Sqlite => Self::new_sqlite(|path| format!("sqlite://{}", path.display())),
        }
    }

    /// A SQLite database like [`TestDb::new`]'s, but `DATABASE_URL` is the plain path.
    pub fn sqlite_plain_path() -> Self {
        Self::new_sqlite(|path| path.display().to_string())
    }

    fn new_sqlite(url: impl FnOnce(&Path) -> String) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("portcullis-e2e-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        let path = dir.path().join("portcullis.db");
        let url = url(&path);
        Self::Sqlite { dir, path, url }
    }

    /// The `DATABASE_URL` the binary gets.
    pub fn url(&self) -> String {
        match self {
            Self::Postgres(db) => db.url().to_owned(),
            Self::Sqlite { url, .. } => url.clone(),
        }
    }

    /// Runs one SQL statement on the database (PostgreSQL only), with
    /// `CURRENT_DATABASE_NAME` replaced by the database's quoted name.
    pub fn execute(&self, sql: &str) -> usize {
        let Self::Postgres(db) = self else {
            panic!("TestDb::execute is for PostgreSQL databases");
        };
        let name = db
            .url()
            .rsplit('/')
            .next()
            .and_then(|rest| rest.split('?').next())
            .unwrap_or_default();
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "unexpected database name in {}",
            db.url()
        );
        db.execute(&sql.replace("CURRENT_DATABASE_NAME", &format!("\"{name}\"")))
    }

    /// The SQLite file, if this is SQLite.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Self::Postgres(_) => None,
            Self::Sqlite { path, .. } => Some(path),
        }
    }

    /// A working directory for the child: the SQLite directory, else the system's.
    fn work_dir(&self) -> PathBuf {
        match self {
            Self::Postgres(_) => std::env::temp_dir(),
            Self::Sqlite { dir, .. } => dir.path().to_owned(),
        }
    }
}

/// The environment every child gets (and nothing else from ours): the common test
/// environment, few connections so parallel tests do not exhaust PostgreSQL, and a
/// short grace period on shutdown.
fn base_command(db: &TestDb) -> Command {
    let mut command = Command::new(BINARY);
    command
        .env_clear()
        .current_dir(db.work_dir())
        .envs(server_env(&db.url()))
        .env("PORTCULLIS_DB_POOL_SIZE", "4")
        .env("PORTCULLIS_SHUTDOWN_TIMEOUT_SECS", "5")
        .env("RUST_LOG", "info");
    if let Some(backtrace) = std::env::var_os("RUST_BACKTRACE") {
        command.env("RUST_BACKTRACE", backtrace);
    }
    command
}

// ---------------------------------------------------------------------------------------
// Captured stderr
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct LogState {
    lines: Vec<String>,
    /// The child closed its stderr (it exited).
    closed: bool,
}

/// A child's stderr, line by line, filled by a reader thread.
#[derive(Clone, Default)]
pub struct Logs(Arc<(Mutex<LogState>, Condvar)>);

impl Logs {
    fn capture(stderr: ChildStderr) -> Self {
        let logs = Self::default();
        let sink = logs.clone();
        thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&line);
                        sink.push(text.trim_end_matches(['\n', '\r']).to_owned());
                    }
                }
            }
            sink.close();
        });
        logs
    }

    fn state(&self) -> MutexGuard<'_, LogState> {
        // A panicking test thread cannot leave the log half-written: recover it.
        self.0
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn push(&self, line: String) {
        self.state().lines.push(line);
        self.0.1.notify_all();
    }

    fn close(&self) {
        self.state().closed = true;
        self.0.1.notify_all();
    }

    /// Waits (at most `timeout`) until the child has closed its stderr and every line
    /// has been captured.
    pub fn wait_closed(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut state = self.state();
        while !state.closed {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            state = self
                .0
                .1
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    /// Everything captured so far.
    pub fn text(&self) -> String {
        self.state().lines.join("\n")
    }

    /// How many lines have been captured: a mark for [`Logs::wait_for_after`].
    pub fn mark(&self) -> usize {
        self.state().lines.len()
    }

    /// The first line from line `from` on that satisfies `matches`, waiting for it at
    /// most `timeout`. `None` if it does not come in time or the child has exited.
    pub fn find_after(
        &self,
        from: usize,
        timeout: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut state = self.state();
        let mut seen = from;
        loop {
            if let Some(line) = state.lines.iter().skip(seen).find(|l| matches(l)) {
                return Some(line.clone());
            }
            seen = state.lines.len().max(from);
            let now = Instant::now();
            if state.closed || now >= deadline {
                return None;
            }
            state = self
                .0
                .1
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    /// Like [`Logs::find_after`], but a missing line fails the test, showing the log.
    #[track_caller]
    pub fn wait_for_after(
        &self,
        from: usize,
        what: &str,
        matches: impl Fn(&str) -> bool,
    ) -> String {
        self.find_after(from, LOG_TIMEOUT, matches)
            .unwrap_or_else(|| {
                panic!(
                    "no log line {what} within {LOG_TIMEOUT:?}; the log:\n{}",
                    self.text()
                )
            })
    }

    /// Waits for the development mailer's line for `email` (from line `from` on) and
    /// returns its token.
    #[track_caller]
    pub fn reset_token_after(&self, from: usize, email: &str) -> String {
        let email_field = format!("email={email}");
        let line = self.wait_for_after(from, &format!("with a reset token for {email}"), |l| {
            l.contains(RESET_TOKEN_LINE) && l.split_whitespace().any(|w| w == email_field)
        });
        field(&line, "token")
            .unwrap_or_else(|| panic!("no token= field in the mailer's line: {line}"))
    }
}

/// The value of ` name=value` in a text log line (values without spaces), or of the
/// field `name` (the event's, else its span's) in a JSON one.
pub fn field(line: &str, name: &str) -> Option<String> {
    if let Ok(serde_json::Value::Object(object)) = serde_json::from_str(line.trim()) {
        // A JSON log line (PORTCULLIS_LOG_FORMAT=json): the event's field, else the
        // span's.
        let value = object
            .get(name)
            .or_else(|| object.get("span").and_then(|span| span.get(name)))?;
        return match value {
            serde_json::Value::String(text) => Some(text.clone()),
            other => Some(other.to_string()),
        };
    }
    let prefix = format!("{name}=");
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(&prefix))
        .map(|value| value.trim_matches('"').to_owned())
        .filter(|value| !value.is_empty())
}

// ---------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------

/// A running `portcullis serve`, stopped (SIGTERM, then SIGKILL) when dropped. It
/// borrows its database, so the database cannot be deleted under it.
pub struct Server<'db> {
    child: Option<Child>,
    logs: Logs,
    address: SocketAddr,
    database: PhantomData<&'db TestDb>,
}

impl<'db> Server<'db> {
    /// Starts the server on `db` and waits for it to listen.
    pub fn start(db: &'db TestDb) -> Self {
        Self::start_with(db, &[])
    }

    /// Starts the server with extra environment variables.
    pub fn start_with(db: &'db TestDb, env: &[(&str, &str)]) -> Self {
        Self::start_adjusted(db, |command| {
            command.envs(env.iter().copied());
        })
    }

    /// Starts the server with its command changed by `adjust` (e.g. a variable of the
    /// test environment removed).
    pub fn start_adjusted(db: &'db TestDb, adjust: impl FnOnce(&mut Command)) -> Self {
        let mut command = base_command(db);
        command.arg("serve");
        adjust(&mut command);
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BINARY}: {e}"));
        let logs = match child.stderr.take() {
            Some(stderr) => Logs::capture(stderr),
            None => panic!("the child's stderr was not captured"),
        };
        let mut server = Self {
            child: Some(child),
            logs,
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
            database: PhantomData,
        };
        server.address = server.wait_until_listening();
        server
    }

    fn wait_until_listening(&mut self) -> SocketAddr {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let found = self.logs.find_after(0, Duration::from_millis(100), |l| {
                l.contains(LISTENING_LINE)
            });
            if let Some(line) = found {
                let address: SocketAddr = field(&line, "address")
                    .and_then(|a| a.parse().ok())
                    .unwrap_or_else(|| panic!("no address=IP:PORT in the listening line: {line}"));
                assert!(
                    address.ip().is_loopback() && address.port() != 0,
                    "the server listens on {address}, not on a port of 127.0.0.1"
                );
                return address;
            }
            if let Some(status) = self.try_wait() {
                panic!(
                    "the server exited ({status}) before listening; its log:\n{}",
                    self.logs.text()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "the server did not log {LISTENING_LINE:?} within {STARTUP_TIMEOUT:?}; its log:\n{}",
                    self.logs.text()
                );
            }
        }
    }

    fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// A client for this server.
    pub fn api(&self) -> Api {
        Api::new(self.base_url())
    }

    pub fn logs(&self) -> &Logs {
        &self.logs
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn stop(mut self) -> ExitStatus {
        self.stop_with("TERM")
    }

    /// Sends SIGINT and waits (bounded) for the exit status.
    pub fn interrupt(mut self) -> ExitStatus {
        self.stop_with("INT")
    }

    fn stop_with(&mut self, signal: &str) -> ExitStatus {
        let Some(mut child) = self.child.take() else {
            panic!("the server was already stopped");
        };
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the server had already exited ({status}) before SIG{signal}; its log:\n{}",
                self.logs.text()
            );
        }
        if !send_signal(&child, signal) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("cannot send SIG{signal} to the server (`kill` failed); killed it");
        }
        match wait_bounded(&mut child, SHUTDOWN_TIMEOUT) {
            Some(status) => {
                // The reader thread sees EOF once the child is gone: let it catch up.
                self.logs.wait_closed(Duration::from_secs(5));
                status
            }
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the server did not exit within {SHUTDOWN_TIMEOUT:?} of SIG{signal}; its log:\n{}",
                    self.logs.text()
                );
            }
        }
    }
}

impl Drop for Server<'_> {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(None) = child.try_wait() {
                let sent = send_signal(&child, "TERM");
                if !sent || wait_bounded(&mut child, Duration::from_secs(10)).is_none() {
                    let _ = child.kill();
                }
            }
            let _ = child.wait();
        }
    }
}

/// `kill -SIGNAL pid`; whether it was sent.
fn send_signal(child: &Child, signal: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            Ok(None) | Err(_) => return None,
        }
    }
}

// ---------------------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------------------

/// What a command-line run left behind.
#[derive(Debug)]
pub struct CliRun {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CliRun {
    /// Fails the test, showing the output, unless the command succeeded.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(
            self.status.success(),
            "expected success, got {}\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Fails the test, showing the output, unless the command failed.
    #[track_caller]
    pub fn assert_failure(&self) -> &Self {
        assert!(
            !self.status.success(),
            "expected a failure, got {}\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Runs `portcullis ARGS...` on `db` with the test environment (plus `env`), writing
/// `stdin` to its standard input. Bounded by [`CLI_TIMEOUT`].
pub fn run_cli(db: &TestDb, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> CliRun {
    run_cli_adjusted(db, args, stdin, |command| {
        command.envs(env.iter().copied());
    })
}

/// [`run_cli`] with the command changed by `adjust` (e.g. a variable of the test
/// environment removed).
pub fn run_cli_adjusted(
    db: &TestDb,
    args: &[&str],
    stdin: &str,
    adjust: impl FnOnce(&mut Command),
) -> CliRun {
    let mut command = base_command(db);
    command.args(args);
    adjust(&mut command);
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {BINARY}: {e}"));
    // The child may exit without reading its input: a broken pipe is not our failure.
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin.as_bytes());
    }
    let stdout = child.stdout.take().map(drain);
    let stderr = child.stderr.take().map(drain);
    let Some(status) = wait_bounded(&mut child, CLI_TIMEOUT) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "`portcullis {}` did not finish within {CLI_TIMEOUT:?}",
            args.join(" ")
        );
    };
    let collect = |reader: Option<mpsc::Receiver<String>>| {
        reader
            .and_then(|r| r.recv_timeout(Duration::from_secs(10)).ok())
            .unwrap_or_default()
    };
    CliRun {
        status,
        stdout: collect(stdout),
        stderr: collect(stderr),
    }
}

/// Reads a pipe to its end on a thread, so neither pipe can fill while we wait.
fn drain(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        let _ = sender.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    receiver
}

// ---------------------------------------------------------------------------------------
// authapi calls
// ---------------------------------------------------------------------------------------

/// The authapi calls the end-to-end tests make over and over.
impl Api {
    /// `POST /auth` with `Authorization: Bearer <access>`.
    pub async fn welcome(&self, access: &str) -> Reply {
        self.post_bearer("/auth", access).await
    }

    /// `POST /auth` without credentials.
    pub async fn welcome_anonymous(&self) -> Reply {
        self.send(self.client.post(self.url("/auth"))).await
    }

    pub async fn register(&self, name: &str, email: &str, password: &str) -> Reply {
        self.post(
            "/auth/register",
            json!({"name": name, "email": email, "password": password, "confirm": password}),
        )
        .await
    }

    pub async fn refresh(&self, refresh: &str) -> Reply {
        self.post("/auth/refresh-tokens", json!({"refreshToken": refresh}))
            .await
    }

    pub async fn logout(&self, refresh: &str) -> Reply {
        self.post("/auth/logout", json!({"refreshToken": refresh}))
            .await
    }

    pub async fn forgot_password(&self, email: &str) -> Reply {
        self.post("/auth/forgot-password", json!({"email": email}))
            .await
    }

    pub async fn reset_password(&self, token: &str, password: &str) -> Reply {
        let path = format!("/auth/reset-password?token={}", encode_uri_component(token));
        self.post(&path, json!({"password": password})).await
    }
}

// ---------------------------------------------------------------------------------------
// authapi bodies
// ---------------------------------------------------------------------------------------

/// An access/refresh pair from a `Tokens` object, checked for shape.
#[derive(Clone, Debug)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

impl Tokens {
    /// Parses `{"access": {"token", "expires"}, "refresh": {"token", "expires"}}`.
    #[track_caller]
    pub fn from_body(tokens: &Value) -> Self {
        let object = tokens
            .as_object()
            .unwrap_or_else(|| panic!("tokens is not an object: {tokens}"));
        assert_eq!(
            sorted_keys(tokens),
            ["access", "refresh"],
            "unexpected tokens object: {tokens}"
        );
        let token = |kind: &str| {
            let entry = &object[kind];
            assert_eq!(
                sorted_keys(entry),
                ["expires", "token"],
                "unexpected {kind} token: {entry}"
            );
            let expires = entry["expires"].as_str().unwrap_or_default();
            assert!(
                is_utc_timestamp(expires),
                "{kind}.expires is not an RFC 3339 UTC timestamp: {entry}"
            );
            let token = entry["token"].as_str().unwrap_or_default();
            assert!(!token.is_empty(), "{kind}.token is empty: {entry}");
            token.to_owned()
        };
        let pair = Self {
            access: token("access"),
            refresh: token("refresh"),
        };
        assert_ne!(
            pair.access, pair.refresh,
            "access and refresh tokens are the same"
        );
        pair
    }

    /// Every token string, for checking that the logs never show one.
    pub fn secrets(&self) -> [String; 2] {
        [self.access.clone(), self.refresh.clone()]
    }
}

/// What register and login return: `{"user": {...}, "tokens": {...}}`.
#[derive(Clone, Debug)]
pub struct Session {
    pub user_id: String,
    pub tokens: Tokens,
}

impl Session {
    /// Parses a register/login body and checks that its user is exactly
    /// `{"id", "name", "bio", "email"}` with the given name, bio and email.
    #[track_caller]
    pub fn from_body(body: &Value, name: &str, bio: Option<&str>, email: &str) -> Self {
        assert_eq!(
            sorted_keys(body),
            ["tokens", "user"],
            "unexpected auth body: {body}"
        );
        let user = &body["user"];
        let user_id = user["id"].as_str().unwrap_or_default().to_owned();
        assert!(!user_id.is_empty(), "no user id: {body}");
        assert_eq!(
            user,
            &json!({"id": user_id, "name": name, "bio": bio, "email": email}),
            "unexpected user object"
        );
        Self {
            user_id,
            tokens: Tokens::from_body(&body["tokens"]),
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fff]Z`, roughly: digits where digits belong, a `Z` at the end.
pub fn is_utc_timestamp(text: &str) -> bool {
    let bytes = text.as_bytes();
    let digits_at = |positions: &[usize]| {
        positions
            .iter()
            .all(|&i| bytes.get(i).is_some_and(u8::is_ascii_digit))
    };
    bytes.len() >= 20
        && digits_at(&[0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18])
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b'T'
        && bytes[13] == b':'
        && bytes[16] == b':'
        && text.ends_with('Z')
}

/// Fails the test if `logs` contain any of `secrets` (or, for a JWT, its signature).
#[track_caller]
pub fn assert_no_secrets_in(logs: &str, secrets: &[String]) {
    assert!(!secrets.is_empty(), "no secrets to look for");
    for secret in secrets {
        assert!(!secret.is_empty(), "an empty secret would match anything");
        assert!(
            !logs.contains(secret.as_str()),
            "the log shows a secret ({secret}):\n{logs}"
        );
        if let Some((_, signature)) = secret.rsplit_once('.') {
            assert!(
                signature.len() < 16 || !logs.contains(signature),
                "the log shows a token's signature ({signature}):\n{logs}"
            );
        }
    }
}
