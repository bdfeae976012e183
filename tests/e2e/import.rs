//! `portcullis import` as an operator moving an application in runs it (issue 11): the
//! export files are made by `tests/py/import_files.py`, with password hashes from
//! Python's `bcrypt` and Django's PBKDF2 formula; one command imports them; every user
//! then logs in with their old password through every dialect, and that first login
//! leaves an argon2id hash in place of the foreign one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use portcullis_domain::{Email, User, UserRepository as _, Username};
use portcullis_persistence::Database;
use serde_json::Value;
use tempfile::TempDir;

use crate::support::backend::Backend;
use crate::support::logins::{EVERY_PATH, Outcome, Via, attempt};
use crate::support::process::{CliRun, Server, TestDb, run_cli};

crate::on_backends! {
    both: [
        exported_accounts_move_in_and_log_in_with_their_old_passwords,
        a_pocketbase_data_file_moves_in_and_stays_as_it_was,
    ],
}

const WRONG: &str = "certainly not the password";

/// Wrong passwords on purpose: more than the throttles' defaults allow.
const LENIENT: [(&str, &str); 2] = [
    ("PORTCULLIS_THROTTLE_IP_FAILURES", "1000"),
    ("PORTCULLIS_THROTTLE_FREE_FAILURES", "100"),
];

/// An account the exports hold, as `accounts.json` lists it.
struct Account {
    login: String,
    password: String,
    file: String,
    format: String,
}

/// The files `import_files.py` wrote, in a directory deleted when dropped.
struct Exports {
    dir: TempDir,
    accounts: Vec<Account>,
}

impl Exports {
    fn make() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let python = root.join("tests/py/.venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run `make test-py` (part of `make test`)",
            python.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("portcullis-import-")
            .tempdir()
            .unwrap();
        let output = Command::new(python)
            .arg(root.join("tests/py/import_files.py"))
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "import_files.py failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let listed: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("accounts.json")).unwrap())
                .unwrap();
        let field = |account: &Value, name: &str| account[name].as_str().unwrap().to_owned();
        let accounts = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|account| Account {
                login: field(account, "login"),
                password: field(account, "password"),
                file: field(account, "file"),
                format: field(account, "format"),
            })
            .collect();
        Self { dir, accounts }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    fn from<'a>(&'a self, files: &'a [&str]) -> impl Iterator<Item = &'a Account> {
        self.accounts
            .iter()
            .filter(move |account| files.contains(&account.file.as_str()))
    }
}

fn import(db: &TestDb, args: &[&str]) -> CliRun {
    let mut all = vec!["import"];
    all.extend_from_slice(args);
    run_cli(db, &all, "", &[])
}

/// The `name: value` lines of an import's summary.
fn summary(run: &CliRun) -> BTreeMap<String, String> {
    run.stdout
        .lines()
        .filter_map(|line| line.split_once(": "))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

#[track_caller]
fn assert_counts(run: &CliRun, expected: &[(&str, &str)]) {
    let summary = summary(run);
    for (name, value) in expected {
        assert_eq!(
            summary.get(*name).map(String::as_str),
            Some(*value),
            "{name} in\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
}

/// The stored account `login` names (an email or a username), read with the storage
/// adapter itself.
fn stored(db: &TestDb, login: &str) -> Option<User> {
    let database = Database::connect(&db.url(), 1).unwrap();
    if login.contains('@') {
        database
            .find_by_email(&Email::parse(login).unwrap())
            .unwrap()
    } else {
        database
            .find_by_username(&Username::parse(login).unwrap())
            .unwrap()
    }
}

#[track_caller]
fn stored_hash(db: &TestDb, login: &str) -> String {
    let user = stored(db, login).unwrap_or_else(|| panic!("{login} is not stored"));
    user.password_hash.as_str().to_owned()
}

/// The prefix a hash of `format` starts with.
fn prefix(format: &str) -> &'static str {
    match format {
        "bcrypt" => "$2",
        "pbkdf2_sha256" => "pbkdf2_sha256$",
        other => panic!("no format {other}"),
    }
}

/// Logs each of `accounts` in: a wrong password first (refused, the hash unchanged),
/// then the right one through every path of `paths`; the first success leaves argon2id.
async fn every_account_logs_in(
    db: &TestDb,
    server: &Server<'_>,
    accounts: &[&Account],
    paths: &[Via],
) {
    let api = server.api();
    for account in accounts {
        let login = account.login.as_str();
        let before = stored_hash(db, login);
        assert!(
            before.starts_with(prefix(&account.format)),
            "{login}: {before:.12}…"
        );
        assert_eq!(
            attempt(&api, paths[0], login, WRONG).await,
            Outcome::Refused
        );
        assert_eq!(
            stored_hash(db, login),
            before,
            "a wrong password changed {login}"
        );
        for via in paths {
            assert_eq!(
                attempt(&api, *via, login, &account.password).await,
                Outcome::LoggedIn,
                "{login} through {via:?}"
            );
        }
        let after = stored_hash(db, login);
        assert!(
            after.starts_with("$argon2id$"),
            "{login} still {after:.12}…"
        );
    }
}

async fn exported_accounts_move_in_and_log_in_with_their_old_passwords(backend: Backend) {
    let exports = Exports::make();
    let db = TestDb::new(backend);
    let users = exports.path("users.jsonl");
    let users = users.to_str().unwrap();

    let dry = import(&db, &["users", users, "--dry-run"]);
    dry.assert_success();
    assert!(
        dry.stdout.starts_with("dry run: nothing was written\n"),
        "{}",
        dry.stdout
    );
    assert_counts(&dry, &[("imported", "5"), ("rejected", "0")]);
    assert!(stored(&db, "ada@example.com").is_none(), "a dry run wrote");

    let first = import(&db, &["users", users]);
    first.assert_success();
    assert_counts(
        &first,
        &[
            ("imported", "5"),
            ("skipped", "0"),
            ("rejected", "0"),
            ("password hashes", "bcrypt 3, none 1, pbkdf2_sha256 1"),
        ],
    );
    assert!(
        first.stderr.contains("ignored fields: legacy_id"),
        "{}",
        first.stderr
    );
    let ada = stored(&db, "ada@example.com").unwrap();
    assert_eq!(ada.name.as_str(), "Ada Lovelace");
    assert_eq!(ada.created_at.to_rfc3339(), "2019-03-04T05:06:07+00:00");

    let again = import(&db, &["users", users]);
    again.assert_success();
    assert_counts(
        &again,
        &[("imported", "0"), ("skipped", "5"), ("rejected", "0")],
    );
    assert_eq!(
        stored(&db, "ada@example.com").unwrap(),
        ada,
        "a re-run changed an account"
    );
    assert!(
        again
            .stderr
            .contains("line 1: skipped: an account with this email exists"),
        "{}",
        again.stderr
    );

    let csv = import(&db, &["users", exports.path("users.csv").to_str().unwrap()]);
    csv.assert_success();
    assert_counts(
        &csv,
        &[
            ("imported", "2"),
            ("password hashes", "bcrypt 1, pbkdf2_sha256 1"),
        ],
    );
    let barbara = stored(&db, "barbara@example.com").unwrap();
    assert_eq!(barbara.name.as_str(), "Liskov, Barbara");

    let rejects = import(
        &db,
        &["users", exports.path("rejects.jsonl").to_str().unwrap()],
    );
    rejects.assert_failure();
    assert_eq!(rejects.status.code(), Some(1));
    assert_counts(&rejects, &[("imported", "1"), ("rejected", "4")]);
    for expected in [
        "line 2: rejected: email: ",
        "line 3: rejected: password_hash: ",
        "line 4: rejected: duplicate: ",
        "line 5: rejected: email: required",
    ] {
        assert!(
            rejects.stderr.contains(expected),
            "{expected} in\n{}",
            rejects.stderr
        );
    }

    let server = Server::start_with(&db, &LENIENT);
    let moved: Vec<&Account> = exports
        .from(&["users.jsonl", "users.csv", "rejects.jsonl"])
        .collect();
    assert_eq!(moved.len(), 7);
    every_account_logs_in(&db, &server, &moved, &EVERY_PATH).await;

    // Moved in without a password: refused as a wrong password is, everywhere.
    let api = server.api();
    for via in EVERY_PATH {
        for password in ["!", WRONG] {
            assert_eq!(
                attempt(&api, via, "nopass@example.com", password).await,
                Outcome::Refused,
                "{via:?}"
            );
        }
    }

    // An update from the same export keeps the passwords the users now have here.
    let update = import(&db, &["users", users, "--update"]);
    update.assert_success();
    assert_counts(
        &update,
        &[
            ("updated", "0"),
            ("unchanged", "5"),
            ("passwords kept", "4"),
        ],
    );
    for account in exports.from(&["users.jsonl"]) {
        assert_eq!(
            attempt(&api, Via::Cbs, &account.login, &account.password).await,
            Outcome::LoggedIn,
            "{} after --update",
            account.login
        );
    }
}

async fn a_pocketbase_data_file_moves_in_and_stays_as_it_was(backend: Backend) {
    let exports = Exports::make();
    let db = TestDb::new(backend);
    let data = exports.path("data.db");
    let before = std::fs::read(&data).unwrap();

    let wrong = import(
        &db,
        &[
            "pocketbase",
            data.to_str().unwrap(),
            "--collection",
            "posts",
        ],
    );
    wrong.assert_failure();
    assert!(
        wrong
            .stderr
            .contains("no auth collection is named \"posts\""),
        "{}",
        wrong.stderr
    );
    let run = import(&db, &["pocketbase", data.to_str().unwrap()]);
    run.assert_success();
    assert_counts(
        &run,
        &[
            ("imported", "3"),
            ("rejected", "0"),
            ("password hashes", "bcrypt 3"),
        ],
    );
    assert!(
        std::fs::read(&data).unwrap() == before,
        "the PocketBase file changed"
    );
    let again = import(&db, &["pocketbase", data.to_str().unwrap()]);
    again.assert_success();
    assert_counts(&again, &[("imported", "0"), ("skipped", "3")]);

    let hiker = stored(&db, "hiker").unwrap();
    assert!(hiker.email_verified, "PocketBase's verified flag");
    assert_eq!(
        Value::Object(hiker.profile.as_map().clone()),
        serde_json::json!({
            "emailVisibility": true,
            "language": "de",
            "location": {"lat": 47.17, "lon": 8.52, "name": "Zug"},
            "unit": "imperial",
        })
    );
    assert_eq!(hiker.name.as_str(), "Trail Hiker");
    assert_eq!(
        hiker.created_at.to_rfc3339(),
        "2024-01-15T10:20:30.123+00:00"
    );
    let summit = stored(&db, "summit_only").unwrap();
    assert_eq!(summit.email, None, "a PocketBase account without an email");
    assert_eq!(summit.name.as_str(), "summit_only");

    let server = Server::start_with(&db, &LENIENT);
    let moved: Vec<&Account> = exports.from(&["data.db"]).collect();
    assert_eq!(moved.len(), 3);
    every_account_logs_in(&db, &server, &moved, &[Via::Pocketbase]).await;

    // The application sees the record it had: its settings came along.
    let hiker = moved.iter().find(|a| a.login == "hiker").unwrap();
    let login = serde_json::json!({"username": "hiker", "password": hiker.password});
    let reply = server.api().post("/auth/login", login).await;
    let record = &reply.expect(200)["record"];
    assert_eq!(
        (
            &record["email"],
            &record["verified"],
            &record["emailVisibility"]
        ),
        (
            &Value::from("hiker@example.com"),
            &Value::from(true),
            &Value::from(true)
        )
    );
    assert_eq!(
        (&record["language"], &record["unit"]),
        (&Value::from("de"), &Value::from("imperial"))
    );
    assert_eq!(record["location"]["name"], "Zug");
    assert_eq!(record["created"], "2024-01-15 10:20:30.123Z");
}
