//! Reading the accounts of a PocketBase auth collection straight from its SQLite file
//! (`pb_data/data.db`), for `portcullis import pocketbase`. The file is opened
//! read-only: nothing in it changes. Columns are those of PocketBase 0.21's auth
//! collections (`id`, `email`, `username`, `name`, `passwordHash`, `verified`,
//! `created`); `name`, `username`, `verified` and `created` may be missing.

use std::collections::VecDeque;
use std::path::Path;

use diesel::SqliteConnection;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Nullable, Text};
use portcullis_domain::ImportRecord;

/// Records read per query.
const PAGE: i64 = 1000;

/// Why a PocketBase file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum PocketBaseError {
    /// The file cannot be opened read-only as SQLite.
    #[error("cannot open {path} read-only: {reason}")]
    Open {
        /// The file.
        path: String,
        /// SQLite's reason.
        reason: String,
    },
    /// The file has no `_collections` table.
    #[error("not a PocketBase data.db: it has no _collections table")]
    NotPocketBase,
    /// No auth collection has this name.
    #[error("no auth collection is named {0:?}")]
    NoSuchCollection(String),
    /// The collection's table lacks a column Portcullis needs.
    #[error("the {collection:?} table has no {column} column")]
    MissingColumn {
        /// The collection.
        collection: String,
        /// The column.
        column: &'static str,
    },
    /// A query failed.
    #[error("reading the PocketBase file failed: {0}")]
    Query(#[from] diesel::result::Error),
}

/// The accounts of one auth collection, read in pages of [`PAGE`] ordered by id, so
/// memory stays flat however many there are. Each item is the record's id and the
/// account as an [`ImportRecord`].
pub struct PocketBaseAccounts {
    conn: SqliteConnection,
    select: String,
    after: String,
    page: VecDeque<PocketBaseRow>,
    exhausted: bool,
}

#[derive(QueryableByName)]
struct PocketBaseRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    email: String,
    #[diesel(sql_type = Nullable<Text>)]
    username: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    name: Option<String>,
    #[diesel(sql_type = Text)]
    password_hash: String,
    #[diesel(sql_type = Bool)]
    verified: bool,
    #[diesel(sql_type = Nullable<Text>)]
    created: Option<String>,
}

#[derive(QueryableByName)]
struct Named {
    #[diesel(sql_type = Text)]
    name: String,
}

/// SQLite's quoting of an identifier: in double quotes, a double quote doubled.
fn quoted(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// `path` as an SQLite URI opening it read-only (`%`, `?` and `#` escaped).
fn read_only_uri(path: &Path) -> String {
    let text = path.to_string_lossy();
    let escaped = text
        .replace('%', "%25")
        .replace('?', "%3f")
        .replace('#', "%23");
    format!("file:{escaped}?mode=ro")
}

impl PocketBaseAccounts {
    /// Opens `path` read-only and checks that `collection` is an auth collection with
    /// the columns needed.
    pub fn open(path: &Path, collection: &str) -> Result<Self, PocketBaseError> {
        let open_error = |reason: String| PocketBaseError::Open {
            path: path.display().to_string(),
            reason,
        };
        if !path.is_file() {
            return Err(open_error("no such file".into()));
        }
        let mut conn = SqliteConnection::establish(&read_only_uri(path))
            .map_err(|e| open_error(e.to_string()))?;
        diesel::sql_query("PRAGMA query_only = ON").execute(&mut conn)?;
        let tables = diesel::sql_query(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_collections'",
        )
        .load::<Named>(&mut conn)
        .map_err(|e| open_error(e.to_string()))?;
        if tables.is_empty() {
            return Err(PocketBaseError::NotPocketBase);
        }
        let auth =
            diesel::sql_query("SELECT name FROM _collections WHERE name = ? AND type = 'auth'")
                .bind::<Text, _>(collection)
                .load::<Named>(&mut conn)?;
        if auth.is_empty() {
            return Err(PocketBaseError::NoSuchCollection(collection.to_owned()));
        }
        let columns: Vec<String> = diesel::sql_query("SELECT name FROM pragma_table_info(?)")
            .bind::<Text, _>(collection)
            .load::<Named>(&mut conn)?
            .into_iter()
            .map(|column| column.name)
            .collect();
        let has = |column: &str| columns.iter().any(|c| c == column);
        for column in ["id", "email", "passwordHash"] {
            if !has(column) {
                return Err(PocketBaseError::MissingColumn {
                    collection: collection.to_owned(),
                    column,
                });
            }
        }
        let or = |column: &str, absent: &str| {
            if has(column) {
                quoted(column)
            } else {
                absent.to_owned()
            }
        };
        let select = format!(
            "SELECT id, email, {username} AS username, {name} AS name, \
             passwordHash AS password_hash, \
             coalesce({verified}, 0) <> 0 AS verified, {created} AS created \
             FROM {table} WHERE id > ? ORDER BY id LIMIT {PAGE}",
            username = or("username", "NULL"),
            name = or("name", "NULL"),
            verified = or("verified", "0"),
            created = or("created", "NULL"),
            table = quoted(collection),
        );
        Ok(Self {
            conn,
            select,
            after: String::new(),
            page: VecDeque::new(),
            exhausted: false,
        })
    }

    fn next_page(&mut self) -> Result<(), diesel::result::Error> {
        let rows = diesel::sql_query(&self.select)
            .bind::<Text, _>(&self.after)
            .load::<PocketBaseRow>(&mut self.conn)?;
        self.exhausted = rows.len() < PAGE as usize;
        if let Some(last) = rows.last() {
            self.after.clone_from(&last.id);
        }
        self.page.extend(rows);
        Ok(())
    }
}

impl Iterator for PocketBaseAccounts {
    type Item = Result<(String, ImportRecord), PocketBaseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.page.is_empty()
            && !self.exhausted
            && let Err(error) = self.next_page()
        {
            self.exhausted = true;
            return Some(Err(error.into()));
        }
        let row = self.page.pop_front()?;
        let present = |text: String| (!text.is_empty()).then_some(text);
        let record = ImportRecord {
            email: present(row.email),
            username: row.username.and_then(present),
            name: row.name.and_then(present),
            password_hash: present(row.password_hash),
            // PocketBase writes `2024-01-02 03:04:05.678Z`: RFC 3339 with a space.
            created_at: row
                .created
                .and_then(present)
                .map(|at| at.replacen(' ', "T", 1)),
            must_change_password: None,
            email_verified: Some(row.verified),
        };
        Some(Ok((row.id, record)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_paths_are_escaped() {
        assert_eq!(quoted("users"), "\"users\"");
        assert_eq!(quoted("a\"b"), "\"a\"\"b\"");
        assert_eq!(
            read_only_uri(Path::new("/tmp/100%?#.db")),
            "file:/tmp/100%25%3f%23.db?mode=ro"
        );
    }
}
