//! Start-up, probes and shutdown of `portcullis serve`.

use serde_json::json;

use crate::support::backend::Backend;
use crate::support::process::{Server, TestDb, run_cli};

crate::on_backends! {
    both: [health_and_readiness_probes_answer],
}

async fn health_and_readiness_probes_answer(backend: Backend) {
    let db = TestDb::new(backend);
    let server = Server::start(&db);
    let api = server.api();
    assert_eq!(
        api.get("/healthz").await.expect(200),
        &json!({"status": "ok"})
    );
    assert_eq!(
        api.get("/readyz").await.expect(200),
        &json!({"status": "ready"})
    );
    // Not a terminal: no colour codes in the log.
    let logs = server.logs().text();
    assert!(
        !logs.contains('\u{1b}'),
        "ANSI escapes in a non-terminal log:\n{logs}"
    );
}

#[test]
fn a_bad_bind_address_stops_start_up_and_names_the_variable() {
    let db = TestDb::new(Backend::Sqlite);
    // No subcommand: `serve` is the default.
    let run = run_cli(&db, &[], "", &[("PORTCULLIS_BIND", "nowhere")]);
    run.assert_failure();
    assert!(
        run.stderr.contains("PORTCULLIS_BIND"),
        "stderr does not name PORTCULLIS_BIND:\n{}",
        run.stderr
    );
}

#[tokio::test]
async fn sigint_shuts_down_gracefully() {
    let db = TestDb::new(Backend::Sqlite);
    let server = Server::start(&db);
    server.api().get("/healthz").await.expect(200);
    let logs = server.logs().clone();
    let status = server.interrupt();
    assert!(
        status.success(),
        "SIGINT: the server exited with {status}; log:\n{}",
        logs.text()
    );
    assert!(
        logs.text().contains("portcullis stopped"),
        "no graceful-shutdown line in the log:\n{}",
        logs.text()
    );
}

#[tokio::test]
async fn readiness_fails_while_the_database_refuses_connections() {
    let db = TestDb::new(Backend::Postgres);
    let server = Server::start(&db);
    let api = server.api();
    assert_eq!(
        api.get("/readyz").await.expect(200),
        &json!({"status": "ready"})
    );

    // The database stops accepting connections and drops the server's (and the test
    // pool's other) connections. Deleting the database on drop still works: it uses
    // the admin database and FORCE.
    db.execute("ALTER DATABASE CURRENT_DATABASE_NAME CONNECTION LIMIT 0");
    db.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    );

    let reply = api.get("/readyz").await;
    assert_eq!(reply.expect(503), &json!({"status": "unavailable"}));
    // Liveness does not depend on the database.
    assert_eq!(
        api.get("/healthz").await.expect(200),
        &json!({"status": "ok"})
    );
}
