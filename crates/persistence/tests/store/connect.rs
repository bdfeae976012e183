//! `Database::connect`'s URL handling and errors, and `TestDatabase` itself.

use std::path::Path;

use portcullis_persistence::testing::TestDatabase;
use portcullis_persistence::{Backend, ConnectError, Database};

#[test]
fn sqlite_accepts_every_url_form_and_creates_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let path = path.to_str().unwrap();
    for url in [
        path.to_owned(),
        format!("sqlite://{path}"),
        format!("sqlite:{path}"),
    ] {
        let db = Database::connect(&url, 2).unwrap();
        assert_eq!(db.backend(), Backend::Sqlite);
        db.ping().unwrap();
        assert!(Path::new(path).is_file(), "{url}");
    }
}

#[test]
fn sqlite_in_a_missing_directory_is_a_connect_error() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/missing/a.db", dir.path().display());
    let error = Database::connect(&url, 2).unwrap_err();
    assert!(
        matches!(
            error,
            ConnectError::Connect {
                backend: Backend::Sqlite,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn unusable_urls_and_sizes_are_refused() {
    assert!(matches!(
        Database::connect("mysql://root:pw@localhost/auth", 2),
        Err(ConnectError::UnsupportedScheme { scheme }) if scheme == "mysql"
    ));
    assert!(matches!(
        Database::connect("sqlite::memory:", 2),
        Err(ConnectError::InMemorySqlite)
    ));
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/a.db", dir.path().display());
    assert!(matches!(
        Database::connect(&url, 0),
        Err(ConnectError::ZeroPoolSize)
    ));
}

#[test]
fn unreachable_postgres_fails_fast_without_showing_the_password() {
    // Nothing listens on port 1: refused at once.
    let started = std::time::Instant::now();
    let error = Database::connect("postgres://ada:hunter2-secret@127.0.0.1:1/auth", 2).unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(
        matches!(
            error,
            ConnectError::Connect {
                backend: Backend::Postgres,
                ..
            }
        ),
        "{error}"
    );
    let text = format!("{error} {error:?}");
    assert!(!text.contains("hunter2-secret"), "{text}");
    assert!(
        text.contains("postgres://ada:***@127.0.0.1:1/auth"),
        "{text}"
    );
}

#[test]
fn postgres_test_database_is_dropped_with_it() {
    let test = TestDatabase::postgres();
    let url = test.url().to_owned();
    let extra = Database::connect(&url, 1).unwrap();
    extra.ping().unwrap();
    // Dropped even though another pool is still connected to it.
    drop(test);
    let error = Database::connect(&url, 1).unwrap_err();
    assert!(error.to_string().contains("does not exist"), "{error}");
}

#[test]
fn sqlite_test_database_is_deleted_with_it() {
    let test = TestDatabase::sqlite();
    let path = test.url().strip_prefix("sqlite://").unwrap().to_owned();
    assert!(Path::new(&path).is_file());
    drop(test);
    assert!(!Path::new(&path).exists());
    assert!(!Path::new(&path).parent().unwrap().exists());
}

#[test]
fn test_databases_are_of_the_backend_asked_for() {
    let [pg, lite] = TestDatabase::each();
    assert_eq!(pg.backend(), Backend::Postgres);
    assert!(pg.url().starts_with("postgres"));
    assert_eq!(lite.backend(), Backend::Sqlite);
    assert!(lite.url().starts_with("sqlite://"));
    // Debug output is safe to log: no password.
    assert!(!format!("{pg:?}").contains(":portcullis_test@"), "{pg:?}");
}
