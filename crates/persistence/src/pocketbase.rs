//! Reading the accounts of a PocketBase auth collection straight from its SQLite file
//! (`pb_data/data.db`), for `portcullis import pocketbase`. The file is opened
//! read-only: nothing in it changes. Columns are those of PocketBase 0.21's auth
//! collections (`id`, `email`, `username`, `name`, `passwordHash`, `verified`,
//! `created`); `name`, `username`, `verified` and `created` may be missing. The
//! attributes the pocketbase dialect shows (`avatar`, `emailVisibility`, `language`,
//! `location`, `unit`) go into the account's profile when the collection has them.

use std::collections::VecDeque;
use std::path::Path;

use diesel::SqliteConnection;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Nullable, Text};
use portcullis_domain::ImportRecord;
use serde_json::{Map, Value};

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
    #[diesel(sql_type = Nullable<Text>)]
    avatar: Option<String>,
    #[diesel(sql_type = Nullable<Bool>)]
    email_visibility: Option<bool>,
    #[diesel(sql_type = Nullable<Text>)]
    language: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    location: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    unit: Option<String>,
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
        let flag = |column: &str| {
            if has(column) {
                format!("coalesce({}, 0) <> 0", quoted(column))
            } else {
                "NULL".to_owned()
            }
        };
        let select = format!(
            "SELECT id, email, {username} AS username, {name} AS name, \
             passwordHash AS password_hash, {verified} AS verified, \
             {created} AS created, {avatar} AS avatar, {visibility} AS email_visibility, \
             {language} AS language, CAST({location} AS TEXT) AS location, {unit} AS unit \
             FROM {table} WHERE id > ? ORDER BY id LIMIT {PAGE}",
            username = or("username", "NULL"),
            name = or("name", "NULL"),
            verified = if has("verified") {
                flag("verified")
            } else {
                "0".to_owned()
            },
            created = or("created", "NULL"),
            avatar = or("avatar", "NULL"),
            visibility = flag("emailVisibility"),
            language = or("language", "NULL"),
            location = or("location", "NULL"),
            unit = or("unit", "NULL"),
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
            bio: None,
            profile: profile_of(
                row.avatar,
                row.email_visibility,
                row.language,
                row.location,
                row.unit,
            ),
        };
        Some(Ok((row.id, record)))
    }
}

/// The profile attributes of a record: the non-empty texts, the flag, and `location`
/// when it is a JSON object.
fn profile_of(
    avatar: Option<String>,
    email_visibility: Option<bool>,
    language: Option<String>,
    location: Option<String>,
    unit: Option<String>,
) -> Map<String, Value> {
    let mut profile = Map::new();
    for (key, text) in [("avatar", avatar), ("language", language), ("unit", unit)] {
        if let Some(text) = text.filter(|text| !text.is_empty()) {
            profile.insert(key.to_owned(), Value::String(text));
        }
    }
    if let Some(visible) = email_visibility {
        profile.insert("emailVisibility".to_owned(), Value::Bool(visible));
    }
    let location = location.and_then(|json| serde_json::from_str::<Value>(&json).ok());
    if let Some(location @ Value::Object(_)) = location {
        profile.insert("location".to_owned(), location);
    }
    profile
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

    #[test]
    fn the_dialects_attributes_go_to_the_profile() {
        let some = |text: &str| Some(text.to_owned());
        let profile = profile_of(
            some(""),
            Some(true),
            some("de"),
            some(r#"{"lat": 47.1, "lon": 8.2, "name": "Zug"}"#),
            some("metric"),
        );
        assert_eq!(
            Value::Object(profile),
            serde_json::json!({
                "emailVisibility": true,
                "language": "de",
                "location": {"lat": 47.1, "lon": 8.2, "name": "Zug"},
                "unit": "metric",
            })
        );
        let broken = profile_of(None, None, None, some("not json"), None);
        assert!(broken.is_empty());
    }
}
