//! The pocketbase dialect against its real client: the PocketBase JS SDK, run by
//! `tests/js/pocketbase-sdk.mjs` (Node) against the real binary. The script logs in
//! through `pb.send`, checks the record and token, the `ClientResponseError` of a wrong
//! password and of a blank field, and loads the `pb_auth` cookie into an auth store.
//!
//! Needs Node.js and the SDK installed: `npm ci --prefix tests/js` (`make test` does).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::support::backend::Backend;
use crate::support::process::{Server, TestDb, run_cli};

const NAME: &str = "Ada Lovelace";
const EMAIL: &str = "ada@example.com";
const USERNAME: &str = "ada_l";
const PASSWORD: &str = "analytical engine 1843";

/// How long one run of the script may take.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

/// `tests/js`, with the SDK installed, or a failure saying how to install it.
fn js_dir() -> PathBuf {
    // The manifest is the server package's, crates/server.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/js");
    let sdk = dir.join("node_modules/pocketbase/package.json");
    assert!(
        sdk.is_file(),
        "the PocketBase JS SDK is not installed ({} is missing): run `npm ci` in tests/js (make test does)",
        sdk.display()
    );
    dir
}

/// Runs the SDK script against `server` and fails the test, showing its output, unless
/// every check passed.
async fn run_sdk_script(server: &Server<'_>, identity: &str, secure_cookie: bool) {
    let script = js_dir().join("pocketbase-sdk.mjs");
    let base = server.base_url();
    let secure = if secure_cookie { "true" } else { "false" };
    let child = tokio::process::Command::new("node")
        .arg(&script)
        .args([base.as_str(), identity, PASSWORD, EMAIL, secure])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `node {}` ({e}): install Node.js 20 or later",
                script.display()
            )
        });
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("the SDK script did not finish within {SCRIPT_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("the SDK script could not be waited for: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the PocketBase SDK script failed ({}).\nstdout:\n{stdout}\nstderr:\n{stderr}\nserver log:\n{}",
        output.status,
        server.logs().text()
    );
    assert!(
        stdout.contains("checks passed"),
        "the script exited 0 without finishing:\n{stdout}"
    );
}

/// An account registered through authapi, logged in with its email.
#[tokio::test]
async fn pocketbase_sdk_logs_in_by_email_on_postgres() {
    js_dir();
    let db = TestDb::new(Backend::Postgres);
    let server = Server::start(&db);
    server
        .api()
        .register(NAME, EMAIL, PASSWORD)
        .await
        .expect(201);
    run_sdk_script(&server, EMAIL, true).await;
}

/// An account created on the command line with a username, logged in with it; the
/// cookie without `Secure`, as for plain-HTTP development.
#[tokio::test]
async fn pocketbase_sdk_logs_in_by_username_on_sqlite() {
    js_dir();
    let db = TestDb::new(Backend::Sqlite);
    run_cli(
        &db,
        &[
            "user",
            "create",
            "--email",
            EMAIL,
            "--name",
            NAME,
            "--username",
            USERNAME,
        ],
        &format!("{PASSWORD}\n"),
        &[],
    )
    .assert_success();
    let server = Server::start_with(&db, &[("PORTCULLIS_COOKIE_SECURE", "false")]);
    run_sdk_script(&server, USERNAME, false).await;
}
