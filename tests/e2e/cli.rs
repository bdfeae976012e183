//! The operator's command line: `migrate`, `user create`, `user reset-token`, checked
//! through the HTTP API of a server on the same database.

use crate::support::backend::Backend;
use crate::support::client::is_uuid;
use crate::support::process::{CliRun, Server, Session, TestDb, run_cli};

const EMAIL: &str = "grace@example.com";
const NAME: &str = "Grace Hopper";
const USERNAME: &str = "grace";
const PASSWORD: &str = "a ship in port is safe";

fn create_user(db: &TestDb, extra: &[&str], password_line: &str) -> CliRun {
    let mut args = vec!["user", "create", "--email", EMAIL, "--name", NAME];
    args.extend_from_slice(extra);
    run_cli(db, &args, password_line, &[])
}

/// Creates the user and returns the id printed on stdout.
fn create_user_ok(db: &TestDb, extra: &[&str]) -> String {
    let run = create_user(db, extra, &format!("{PASSWORD}\n"));
    run.assert_success();
    let id = run.stdout.trim().to_owned();
    assert!(
        is_uuid(&id),
        "stdout is not the new user's id: {:?}",
        run.stdout
    );
    assert_eq!(
        run.stdout,
        format!("{id}\n"),
        "stdout holds more than the id"
    );
    assert!(
        !run.stderr.contains(PASSWORD),
        "the password reached the log:\n{}",
        run.stderr
    );
    id
}

#[test]
fn migrate_creates_a_fresh_sqlite_database() {
    let db = TestDb::sqlite_plain_path();
    let path = db.sqlite_path().map(ToOwned::to_owned);
    assert!(
        path.as_ref().is_some_and(|p| !p.exists()),
        "the file exists already"
    );
    run_cli(&db, &["migrate"], "", &[]).assert_success();
    assert!(
        path.as_ref().is_some_and(|p| p.is_file()),
        "migrate created no file"
    );
    // Idempotent.
    let again = run_cli(&db, &["migrate"], "", &[]);
    again.assert_success();
    assert!(
        again.stderr.contains("database schema is up to date"),
        "{}",
        again.stderr
    );
}

#[test]
fn purge_prints_what_it_removed() {
    let db = TestDb::sqlite_plain_path();
    run_cli(&db, &["migrate"], "", &[]).assert_success();
    let purged = run_cli(&db, &["purge"], "", &[]);
    purged.assert_success();
    assert_eq!(
        purged.stdout,
        "sessions: 0\nrefresh tokens: 0\nreset tokens: 0\nevents: 0\nthrottle counters: 0\nfailed mail: 0\n",
        "{}",
        purged.stderr
    );
}

/// Every setting is also a flag, and a flag wins over its variable: a bad variable
/// does not matter when the flag is given, and a bad value of either stops the command
/// with status 2 and the variable's name.
#[test]
fn a_flag_overrides_its_variable_and_bad_values_name_it() {
    let db = TestDb::sqlite_plain_path();
    let bad_env = [("PORTCULLIS_DB_POOL_SIZE", "0")];
    run_cli(&db, &["migrate", "--db-pool-size", "2"], "", &bad_env).assert_success();
    let refused = run_cli(&db, &["migrate"], "", &bad_env);
    assert_eq!(refused.status.code(), Some(2), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("PORTCULLIS_DB_POOL_SIZE"),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains("panicked"), "{}", refused.stderr);
    let workers = run_cli(&db, &["serve"], "", &[("PORTCULLIS_WORKERS", "0")]);
    assert_eq!(workers.status.code(), Some(2), "{}", workers.stderr);
    assert!(
        workers.stderr.contains("PORTCULLIS_WORKERS"),
        "{}",
        workers.stderr
    );
    assert!(!workers.stderr.contains("panicked"), "{}", workers.stderr);
}

#[tokio::test]
async fn a_created_user_logs_in_by_email_and_by_username() {
    let db = TestDb::new(Backend::Sqlite);
    let id = create_user_ok(&db, &["--username", USERNAME]);

    let server = Server::start(&db);
    let api = server.api();
    let by_email = Session::from_body(
        api.login(EMAIL, PASSWORD).await.expect(200),
        NAME,
        None,
        EMAIL,
    );
    assert_eq!(by_email.user_id, id);
    // The login field takes a username as well.
    let by_username = Session::from_body(
        api.login(USERNAME, PASSWORD).await.expect(200),
        NAME,
        None,
        EMAIL,
    );
    assert_eq!(by_username.user_id, id);
    api.welcome(&by_username.tokens.access).await.expect(200);
    api.login(USERNAME, "not the password at all")
        .await
        .expect_error(401, "Incorrect email or password");
}

#[tokio::test]
async fn a_user_created_without_a_username_logs_in_by_email() {
    let db = TestDb::new(Backend::Postgres);
    let id = create_user_ok(&db, &[]);
    let server = Server::start(&db);
    let reply = server.api().login(EMAIL, PASSWORD).await;
    assert_eq!(
        Session::from_body(reply.expect(200), NAME, None, EMAIL).user_id,
        id
    );
}

#[test]
fn creating_a_user_with_a_taken_email_fails() {
    let db = TestDb::new(Backend::Sqlite);
    create_user_ok(&db, &[]);
    let run = create_user(&db, &[], "some other password\n");
    run.assert_failure();
    assert!(
        run.stdout.is_empty(),
        "printed an id anyway: {}",
        run.stdout
    );
    assert!(run.stderr.contains("already exists"), "{}", run.stderr);
}

#[test]
fn creating_a_user_with_a_too_short_password_fails() {
    let db = TestDb::new(Backend::Sqlite);
    let run = create_user(&db, &[], "short\n");
    run.assert_failure();
    assert!(
        run.stdout.is_empty(),
        "printed an id anyway: {}",
        run.stdout
    );
}

#[tokio::test]
async fn reset_token_prints_a_token_that_resets_the_password() {
    let db = TestDb::new(Backend::Sqlite);
    create_user_ok(&db, &[]);
    let server = Server::start(&db);
    let api = server.api();
    let before = Session::from_body(
        api.login(EMAIL, PASSWORD).await.expect(200),
        NAME,
        None,
        EMAIL,
    );

    // While the server runs, as an operator would.
    let run = run_cli(&db, &["user", "reset-token", "--email", EMAIL], "", &[]);
    run.assert_success();
    let token = run.stdout.trim();
    assert!(
        !token.is_empty() && !token.contains(char::is_whitespace),
        "{:?}",
        run.stdout
    );

    let new_password = "the most dangerous phrase";
    let reply = api.reset_password(token, new_password).await;
    assert_eq!(
        reply.expect(200),
        &serde_json::json!({"message": "Password reset successful"})
    );
    api.welcome(&before.tokens.access)
        .await
        .expect_error(401, "Please authenticate");
    api.login(EMAIL, PASSWORD)
        .await
        .expect_error(401, "Incorrect email or password");
    api.login(EMAIL, new_password).await.expect(200);
    api.reset_password(token, "yet another password")
        .await
        .expect_error(401, "Password reset failed");
}

#[test]
fn reset_token_for_an_unknown_email_fails() {
    let db = TestDb::new(Backend::Sqlite);
    run_cli(&db, &["migrate"], "", &[]).assert_success();
    let run = run_cli(
        &db,
        &["user", "reset-token", "--email", "nobody@example.com"],
        "",
        &[],
    );
    run.assert_failure();
    assert!(
        run.stdout.is_empty(),
        "printed a token anyway: {}",
        run.stdout
    );
    assert!(
        run.stderr.contains("no user has this email"),
        "{}",
        run.stderr
    );
}

#[test]
fn creating_a_user_who_must_change_the_password_succeeds() {
    let db = TestDb::new(Backend::Sqlite);
    create_user_ok(&db, &["--must-change-password"]);
    // The account exists: the email is taken.
    create_user(&db, &[], &format!("{PASSWORD}\n")).assert_failure();
}

/// `client create --json` prints the credentials once; they introspect tokens until
/// `client delete`; `client list` never shows a secret.
#[tokio::test]
async fn a_created_client_introspects_until_deleted() {
    let db = TestDb::new(Backend::Sqlite);
    let created = run_cli(
        &db,
        &["client", "create", "--name", "billing", "--json"],
        "",
        &[],
    );
    created.assert_success();
    let credentials: serde_json::Value = serde_json::from_str(created.stdout.trim()).unwrap();
    let id = credentials["client_id"].as_str().unwrap().to_owned();
    let secret = credentials["client_secret"].as_str().unwrap().to_owned();
    assert!(is_uuid(&id), "{}", created.stdout);
    assert_eq!(secret.len(), 43, "{}", created.stdout);
    assert!(!created.stderr.contains(&secret), "{}", created.stderr);

    let listed = run_cli(&db, &["client", "list"], "", &[]);
    listed.assert_success();
    assert!(
        listed.stdout.contains(&id) && listed.stdout.contains("billing"),
        "{}",
        listed.stdout
    );
    assert!(!listed.stdout.contains(&secret));

    create_user_ok(&db, &[]);
    let server = Server::start(&db);
    let api = server.api();
    let session = Session::from_body(
        api.login(EMAIL, PASSWORD).await.expect(200),
        NAME,
        None,
        EMAIL,
    );
    let introspect = || {
        api.client
            .post(api.url("/oauth/introspect"))
            .basic_auth(&id, Some(&secret))
            .form(&[("token", session.tokens.access.as_str())])
    };
    let reply = api.send(introspect()).await;
    assert_eq!(reply.expect(200)["active"], true);

    run_cli(&db, &["client", "delete", &id], "", &[]).assert_success();
    let reply = api.send(introspect()).await;
    assert_eq!(reply.status.as_u16(), 401, "{}", reply.text);
    run_cli(&db, &["client", "delete", &id], "", &[]).assert_failure();
    run_cli(&db, &["client", "create", "--name", ""], "", &[]).assert_failure();
}
