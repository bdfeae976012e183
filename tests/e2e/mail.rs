//! Password-reset mail over real SMTP: the binary delivers to a local SMTP sink (an
//! aiosmtpd process, `tests/py`, readied by `make test-py`); the mailed link resets the
//! password; an outage of the mail server delays the message but loses none; no reset
//! secret reaches the log; and a server facing the network refuses to start without a
//! mailer.

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::backend::Backend;
use crate::support::process::{Server, TestDb, assert_no_secrets_in, run_cli};

const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "analytical engine 1843";
const NEW_PASSWORD: &str = "difference engine 1822";
const RESET_URL: &str = "https://app.example/reset?token={token}";
/// How long a test waits for a message to arrive.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(20);

crate::on_backends! {
    both: [a_mailed_link_resets_the_password],
}

/// A local SMTP server writing each message it accepts to a file in its directory.
struct SmtpSink {
    child: Child,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    fn start(port: u16) -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let python = root.join("tests/py/.venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run `make test-py` (part of `make test`)",
            python.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(python)
            .arg(root.join("tests/py/smtp_sink.py"))
            .args(["127.0.0.1", &port.to_string()])
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("listening"), "the SMTP sink said {line:?}");
        Self { child, dir }
    }

    /// The messages received so far.
    fn messages(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
            .collect()
    }

    /// Waits for the `n`th message and returns it, raw.
    fn wait_for(&self, n: usize) -> String {
        let deadline = Instant::now() + DELIVERY_TIMEOUT;
        loop {
            let messages = self.messages();
            if messages.len() >= n {
                let mut messages = messages;
                messages.sort_by_key(|path| std::fs::metadata(path).unwrap().modified().unwrap());
                return std::fs::read_to_string(&messages[n - 1]).unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "no message {n} within {DELIVERY_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The reset secret in a message's link, after undoing quoted-printable encoding (soft
/// line breaks, `=3D`) as a mail client would.
fn token_in(message: &str) -> String {
    let decoded = message
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    let marker = "reset?token=";
    let at = decoded
        .find(marker)
        .unwrap_or_else(|| panic!("no reset link in the message:\n{message}"));
    decoded[at + marker.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

fn mail_env(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("PORTCULLIS_MAILER", format!("smtp://127.0.0.1:{port}")),
        (
            "PORTCULLIS_MAIL_FROM",
            "Portcullis <noreply@example.com>".into(),
        ),
        ("PORTCULLIS_RESET_URL", RESET_URL.into()),
        ("PORTCULLIS_MAIL_RETRY_BASE_SECS", "1".into()),
        ("PORTCULLIS_MAIL_RETRY_MAX_SECS", "2".into()),
    ]
}

fn start_server<'db>(db: &'db TestDb, env: &[(&'static str, String)]) -> Server<'db> {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Server::start_with(db, &env)
}

/// Registers Ada and asks for a reset link.
async fn register_and_forget(server: &Server<'_>) {
    let api = server.api();
    api.register("Ada Lovelace", EMAIL, PASSWORD)
        .await
        .expect(201);
    api.forgot_password(EMAIL).await.expect(200);
}

async fn reset_with(server: &Server<'_>, token: &str) {
    let api = server.api();
    api.post(
        "/auth/reset-password",
        json!({"token": token, "password": NEW_PASSWORD}),
    )
    .await
    .expect(200);
    api.login(EMAIL, NEW_PASSWORD).await.expect(200);
}

async fn a_mailed_link_resets_the_password(backend: Backend) {
    let db = TestDb::new(backend);
    let port = free_port();
    let sink = SmtpSink::start(port);
    let server = start_server(&db, &mail_env(port));
    register_and_forget(&server).await;
    let message = sink.wait_for(1);
    assert!(
        message.contains("Subject: Reset your password"),
        "{message}"
    );
    assert!(message.contains("To: ada@example.com"), "{message}");
    assert!(
        message.contains("From: Portcullis <noreply@example.com>"),
        "{message}"
    );
    assert!(
        message.contains("text/plain") && message.contains("text/html"),
        "{message}"
    );
    let token = token_in(&message);
    assert_eq!(token.len(), 43, "{message}");
    reset_with(&server, &token).await;
    // Delivered: the outbox is empty.
    let status = run_cli(&db, &["mail", "status"], "", &[]);
    status.assert_success();
    assert_eq!(status.stdout, "0 pending, 0 failed\n");
    let logs = server.logs().clone();
    assert!(server.stop().success());
    let logs = logs.text();
    assert!(
        !logs.contains("development mailer"),
        "the log mailer was used:\n{logs}"
    );
    assert_no_secrets_in(&logs, &[token, PASSWORD.into(), NEW_PASSWORD.into()]);
}

/// With the mail server down, the message waits in the outbox (`mail status` shows the
/// error) and arrives once the server is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_survives_a_mail_server_outage() {
    let db = TestDb::new(Backend::Sqlite);
    let port = free_port();
    let server = start_server(&db, &mail_env(port));
    register_and_forget(&server).await;
    // Let a few attempts fail.
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    let pending = loop {
        let status = run_cli(&db, &["mail", "status", "--json"], "", &[]);
        status.assert_success();
        let entries: Vec<Value> = status
            .stdout
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        if entries
            .first()
            .is_some_and(|e| e["attempts"].as_u64() >= Some(2))
        {
            break entries;
        }
        assert!(
            Instant::now() < deadline,
            "no failed attempt: {}",
            status.stdout
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0]["state"], "pending");
    assert_eq!(pending[0]["to"], EMAIL);
    assert!(pending[0]["last_error"].is_string(), "{pending:?}");
    let sink = SmtpSink::start(port);
    let token = token_in(&sink.wait_for(1));
    reset_with(&server, &token).await;
    assert!(server.stop().success());
    assert!(
        sink.messages().len() == 1,
        "the message was sent more than once"
    );
}

/// Bound to a non-loopback address without `PORTCULLIS_MAILER`, the server does not
/// start: reset links would go to its log.
#[test]
fn a_server_facing_the_network_needs_a_mailer() {
    let db = TestDb::new(Backend::Sqlite);
    let refused = run_cli(&db, &["serve"], "", &[("PORTCULLIS_BIND", "0.0.0.0:0")]);
    refused.assert_failure();
    assert!(
        refused.stderr.contains("PORTCULLIS_MAILER"),
        "{}",
        refused.stderr
    );
    let smtp_without_sender = run_cli(
        &db,
        &["serve"],
        "",
        &[("PORTCULLIS_MAILER", "smtp://127.0.0.1:25")],
    );
    smtp_without_sender.assert_failure();
    assert!(
        smtp_without_sender.stderr.contains("PORTCULLIS_MAIL_FROM"),
        "{}",
        smtp_without_sender.stderr
    );
}
