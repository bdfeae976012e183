//! A fresh PostgreSQL database for one benchmark run, made and dropped through the
//! admin URL of the tests (`TEST_DATABASE_URL`, a role with `CREATEDB`), as
//! `portcullis_persistence::testing` does it.

use std::time::Duration;

use anyhow::{Context, bail};
use diesel::{Connection, PgConnection, RunQueryDsl};
use serde_json::json;

/// The tests' default admin URL (`scripts/test-db.sh` creates the role).
const DEFAULT_ADMIN_URL: &str = "postgres://portcullis_test:portcullis_test@127.0.0.1:5432/postgres?sslmode=disable&gssencmode=disable";

#[derive(clap::Args, Debug)]
pub(crate) struct CreateArgs {
    /// The admin URL (a role that may create databases)
    #[arg(long, env = "TEST_DATABASE_URL", default_value = DEFAULT_ADMIN_URL, hide_env_values = true, hide_default_value = true)]
    admin_url: String,
    /// The new database's name is this prefix, `_` and a random hex string
    #[arg(long, default_value = "pc_bench", value_parser = identifier)]
    prefix: String,
}

#[derive(clap::Args, Debug)]
pub(crate) struct DropArgs {
    /// The admin URL (a role that may create databases)
    #[arg(long, env = "TEST_DATABASE_URL", default_value = DEFAULT_ADMIN_URL, hide_env_values = true, hide_default_value = true)]
    admin_url: String,
    /// The database to drop
    #[arg(long, value_parser = identifier)]
    name: String,
}

/// A plain lower-case SQL identifier, so it can be spliced into DDL as it is.
fn identifier(text: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && text.len() <= 63
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !text.starts_with(|c: char| c.is_ascii_digit());
    if valid {
        Ok(text.to_owned())
    } else {
        Err("must be 1 to 63 of a-z, 0-9 and _, not starting with a digit".into())
    }
}

fn admin(url: &str) -> anyhow::Result<PgConnection> {
    PgConnection::establish(url).context(
        "PostgreSQL is unreachable at TEST_DATABASE_URL (start it with scripts/test-db.sh)",
    )
}

pub(crate) fn create(args: &CreateArgs) -> anyhow::Result<()> {
    let mut admin = admin(&args.admin_url)?;
    let name = format!("{}_{}", args.prefix, uuid::Uuid::new_v4().simple());
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .with_context(|| format!("cannot create database {name}"))?;
    crate::print_json(&json!({
        "name": name,
        "url": with_database(&args.admin_url, &name),
    }))
}

pub(crate) fn drop(args: &DropArgs) -> anyhow::Result<()> {
    // FORCE ends connections still open; an autovacuum worker (which PostgreSQL 15 may
    // not signal for a non-superuser) is gone after a moment, so retry for a while.
    let mut last = String::new();
    for _ in 0..50 {
        let dropped = admin(&args.admin_url).and_then(|mut admin| {
            diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                args.name
            ))
            .execute(&mut admin)
            .map(|_| ())
            .map_err(anyhow::Error::from)
        });
        match dropped {
            Ok(()) => return Ok(()),
            Err(error) => last = format!("{error:#}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("cannot drop database {}: {last}", args.name)
}

/// `url` with its database (the path) replaced by `name`, keeping any query string.
fn with_database(url: &str, name: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url
        .get(authority_start..)
        .and_then(|rest| rest.find(['/', '?']))
        .map_or(url.len(), |i| authority_start + i);
    let (head, tail) = url.split_at(authority_end);
    let query = tail.find('?').map_or("", |i| &tail[i..]);
    format!("{head}/{name}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_database_replaces_only_the_path() {
        assert_eq!(
            with_database("postgres://u:p@127.0.0.1:5432/postgres", "pc_x"),
            "postgres://u:p@127.0.0.1:5432/pc_x"
        );
        assert_eq!(
            with_database("postgresql://u@h/postgres?sslmode=disable", "pc_x"),
            "postgresql://u@h/pc_x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "pc_x"),
            "postgres://h:5432/pc_x"
        );
    }

    #[test]
    fn names_are_plain_identifiers() {
        assert!(identifier("pc_bench_0a1b").is_ok());
        for bad in ["", "1abc", "a-b", "a;drop", "A", &"a".repeat(64)] {
            assert!(identifier(bad).is_err(), "{bad}");
        }
    }
}
