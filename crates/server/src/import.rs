//! `portcullis import`: moving an application's accounts in, password hashes and all.
//! This module reads the sources (JSON Lines, CSV, a PocketBase `data.db`) as a stream
//! of records and prints the outcome; the domain's [`AccountImport`] validates, plans
//! and writes them.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use portcullis_crypto::Argon2Hasher;
use portcullis_domain::{
    AccountImport, ExistingAccounts, ImportOptions, ImportRecord, ImportSummary, RecordOutcome,
    SystemClock,
};
use portcullis_persistence::PocketBaseAccounts;
use serde_json::{Map, Value};

use crate::{Config, open_database};

/// The longest line of a JSON Lines file, in bytes; a longer one is rejected, unread.
const MAX_LINE_BYTES: usize = 1 << 20;

/// The field names a file's records may have; any other is ignored (and listed).
const FIELDS: [&str; 9] = [
    "email",
    "username",
    "name",
    "password_hash",
    "created_at",
    "must_change_password",
    "email_verified",
    "bio",
    "profile",
];

/// At most this many ignored field names are listed.
const IGNORED_LISTED: usize = 20;

/// Where the accounts come from.
#[derive(Subcommand)]
pub enum ImportCommand {
    /// Import accounts from a JSON Lines or CSV file (docs/migrating.md).
    ///
    /// JSON Lines: one object per line; CSV: a header row, then one account per row.
    /// Fields: email (required), username, name,
    /// password_hash (argon2 PHC, bcrypt $2a$/$2b$/$2y$, Django pbkdf2_sha256; empty or
    /// null: no password until a reset), created_at (RFC 3339), must_change_password,
    /// email_verified, bio, profile (a JSON object of application attributes). Other
    /// fields are ignored and listed. Rejected records are
    /// reported with their line; the rest are imported. Exit status 1 if any was
    /// rejected. Running it again changes nothing, so an interrupted import resumes.
    Users {
        /// The file; `-` reads standard input.
        file: PathBuf,
        /// The file's format (default: csv for a `.csv` file, else jsonl).
        #[arg(long, value_enum)]
        format: Option<FileFormat>,
        #[command(flatten)]
        flags: ImportFlags,
    },
    /// Import the accounts of a PocketBase auth collection from its data.db.
    ///
    /// The SQLite file (pb_data/data.db) is opened read-only: nothing in it changes.
    /// Records are reported by their PocketBase id; accounts get new ids.
    Pocketbase {
        /// The PocketBase data file (pb_data/data.db).
        data_db: PathBuf,
        /// The auth collection.
        #[arg(long, default_value = "users")]
        collection: String,
        #[command(flatten)]
        flags: ImportFlags,
    },
}

/// What every import takes.
#[derive(Args)]
pub struct ImportFlags {
    /// Validate everything and report what would happen; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Update accounts that already exist (same email or username) instead of skipping
    /// them. A password already upgraded to argon2id here is kept.
    #[arg(long)]
    update: bool,
}

/// A file's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FileFormat {
    /// JSON Lines: one JSON object per line.
    Jsonl,
    /// Comma-separated values with a header row.
    Csv,
}

/// One record read: where it was, and the record or why it could not be read.
type Item = (String, Result<ImportRecord, String>);

/// Runs the import `command` describes against `config`'s database: reports each
/// rejected or skipped record on stderr and the totals on stdout. Exit status 1 when a
/// record was rejected.
pub fn run(config: &Config, command: ImportCommand) -> anyhow::Result<ExitCode> {
    let database = open_database(config)?;
    let hasher = Argon2Hasher::new(config.argon2).context("PORTCULLIS_ARGON2_*")?;
    let (flags, mut ignored) = match &command {
        ImportCommand::Users { flags, .. } | ImportCommand::Pocketbase { flags, .. } => {
            (flags, Ignored::default())
        }
    };
    let options = ImportOptions {
        existing: if flags.update {
            ExistingAccounts::Update
        } else {
            ExistingAccounts::Skip
        },
        dry_run: flags.dry_run,
        ..ImportOptions::default()
    };
    let mut import = AccountImport::new(&database, &hasher, &SystemClock, options);
    let mut errors = io::stderr().lock();
    let mut report = |location: &str, outcome: &RecordOutcome| {
        if let Some(line) = report_line(location, outcome) {
            // A closed stderr must not stop the import.
            let _ = writeln!(errors, "{line}");
        }
    };
    let mut feed = |item: Item| import.add(item.0, item.1, &mut report);
    match &command {
        ImportCommand::Users { file, format, .. } => {
            let format = format.unwrap_or_else(|| guess_format(file));
            let input = open_input(file)?;
            match format {
                FileFormat::Jsonl => read_json_lines(input, &mut ignored, &mut feed)?,
                FileFormat::Csv => read_csv(input, &mut ignored, &mut feed)?,
            }
        }
        ImportCommand::Pocketbase {
            data_db,
            collection,
            ..
        } => {
            for account in PocketBaseAccounts::open(data_db, collection)? {
                let (id, record) = account?;
                feed((format!("record {}", id.escape_debug()), Ok(record)))?;
            }
        }
    }
    let summary = import.finish(&mut report)?;
    print_summary(&mut io::stdout().lock(), &summary, options.dry_run)?;
    if !ignored.names.is_empty() {
        let names: Vec<&str> = ignored.names.iter().map(String::as_str).collect();
        eprintln!("ignored fields: {}", names.join(", "));
    }
    Ok(if summary.rejected > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn guess_format(file: &Path) -> FileFormat {
    let csv = file
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("csv"));
    if csv {
        FileFormat::Csv
    } else {
        FileFormat::Jsonl
    }
}

fn open_input(file: &Path) -> anyhow::Result<Box<dyn BufRead>> {
    if file.as_os_str() == "-" {
        return Ok(Box::new(BufReader::new(io::stdin())));
    }
    let opened = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    Ok(Box::new(BufReader::new(opened)))
}

/// What the operator sees of one record: rejections, skips and kept passwords.
fn report_line(location: &str, outcome: &RecordOutcome) -> Option<String> {
    match outcome {
        RecordOutcome::Rejected(reason) => Some(format!("{location}: rejected: {reason}")),
        RecordOutcome::Skipped { existing, reason } => {
            Some(format!("{location}: skipped: {reason} (id {existing})"))
        }
        RecordOutcome::Updated {
            id,
            password_kept: true,
        }
        | RecordOutcome::Unchanged {
            id,
            password_kept: true,
        } => Some(format!(
            "{location}: kept the account's own password, already upgraded here (id {id})"
        )),
        _ => None,
    }
}

fn print_summary(out: &mut dyn Write, summary: &ImportSummary, dry_run: bool) -> io::Result<()> {
    if dry_run {
        writeln!(out, "dry run: nothing was written")?;
    }
    writeln!(out, "imported: {}", summary.imported)?;
    writeln!(out, "updated: {}", summary.updated)?;
    writeln!(out, "unchanged: {}", summary.unchanged)?;
    writeln!(out, "skipped: {}", summary.skipped)?;
    writeln!(out, "rejected: {}", summary.rejected)?;
    if summary.passwords_kept > 0 {
        writeln!(out, "passwords kept: {}", summary.passwords_kept)?;
    }
    let formats: Vec<String> = summary
        .hash_formats
        .iter()
        .map(|(format, count)| format!("{format} {count}"))
        .collect();
    let formats = if formats.is_empty() {
        "-".to_owned()
    } else {
        formats.join(", ")
    };
    writeln!(out, "password hashes: {formats}")
}

/// The field names met that are not [`FIELDS`], the first [`IGNORED_LISTED`].
#[derive(Default)]
struct Ignored {
    names: BTreeSet<String>,
}

impl Ignored {
    fn note(&mut self, name: &str) {
        if !FIELDS.contains(&name) && self.names.len() < IGNORED_LISTED {
            self.names.insert(name.chars().take(64).collect());
        }
    }
}

/// Reads JSON Lines: every non-blank line one object.
fn read_json_lines<E>(
    mut input: impl BufRead,
    ignored: &mut Ignored,
    feed: &mut dyn FnMut(Item) -> Result<(), E>,
) -> anyhow::Result<()>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let read = input
            .by_ref()
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
            .context("reading the file")?;
        if read == 0 {
            return Ok(());
        }
        number += 1;
        let location = format!("line {number}");
        if line.len() > MAX_LINE_BYTES && line.last() != Some(&b'\n') {
            skip_rest_of_line(&mut input)?;
            let reason = format!("longer than {MAX_LINE_BYTES} bytes");
            feed((location, Err(reason)))?;
            continue;
        }
        let text = match std::str::from_utf8(&line) {
            Ok(text) => text.trim(),
            Err(_) => {
                feed((location, Err("not UTF-8".into())))?;
                continue;
            }
        };
        if text.is_empty() {
            continue;
        }
        let record = serde_json::from_str::<Value>(text)
            .map_err(|e| format!("not JSON: {e}"))
            .and_then(|value| match value {
                Value::Object(object) => json_record(&object, ignored),
                _ => Err("not a JSON object".into()),
            });
        feed((location, record))?;
    }
}

fn skip_rest_of_line(input: &mut impl BufRead) -> anyhow::Result<()> {
    loop {
        let buffer = input.fill_buf().context("reading the file")?;
        if buffer.is_empty() {
            return Ok(());
        }
        match buffer.iter().position(|&b| b == b'\n') {
            Some(end) => {
                input.consume(end + 1);
                return Ok(());
            }
            None => {
                let all = buffer.len();
                input.consume(all);
            }
        }
    }
}

fn json_record(object: &Map<String, Value>, ignored: &mut Ignored) -> Result<ImportRecord, String> {
    for name in object.keys() {
        ignored.note(name);
    }
    let text = |field: &str| match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(format!("{field}: must be a string or null")),
    };
    let flag = |field: &str| match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(flag)) => Ok(Some(*flag)),
        Some(_) => Err(format!("{field}: must be true, false or null")),
    };
    let profile = match object.get("profile") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(profile)) => profile.clone(),
        Some(_) => return Err("profile: must be a JSON object or null".into()),
    };
    file_record(ImportRecord {
        email: text("email")?,
        username: text("username")?,
        name: text("name")?,
        password_hash: text("password_hash")?,
        created_at: text("created_at")?,
        must_change_password: flag("must_change_password")?,
        email_verified: flag("email_verified")?,
        bio: text("bio")?,
        profile,
    })
}

/// A file's records must have an email (a PocketBase collection's need not).
fn file_record(record: ImportRecord) -> Result<ImportRecord, String> {
    if record
        .email
        .as_deref()
        .is_none_or(|email| email.trim().is_empty())
    {
        return Err("email: required".into());
    }
    Ok(record)
}

/// Reads CSV with a header row naming the fields; an empty cell is an absent value.
fn read_csv<E>(
    input: impl Read,
    ignored: &mut Ignored,
    feed: &mut dyn FnMut(Item) -> Result<(), E>,
) -> anyhow::Result<()>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(input);
    let headers: Vec<String> = reader
        .headers()
        .context("reading the CSV header row")?
        .iter()
        .map(|name| name.trim().trim_start_matches('\u{feff}').to_owned())
        .collect();
    if !headers.iter().any(|name| name == "email") {
        anyhow::bail!("the CSV header row has no email column");
    }
    for name in &headers {
        ignored.note(name);
    }
    let column = |field: &str| headers.iter().position(|name| name == field);
    let columns = FIELDS.map(column);
    let mut row = csv::StringRecord::new();
    loop {
        let line = reader.position().line() + 1;
        let location = format!("line {line}");
        match reader.read_record(&mut row) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                let location = format!("line {}", row.position().map_or(line, |p| p.line()));
                feed((location, csv_record(&row, &columns, headers.len())))?;
            }
            Err(error) if error.is_io_error() => {
                return Err(error).context("reading the file");
            }
            Err(error) => {
                let reason = match error.kind() {
                    csv::ErrorKind::Utf8 { .. } => "not UTF-8".to_owned(),
                    _ => error.to_string(),
                };
                feed((location, Err(reason)))?;
            }
        }
    }
}

fn csv_record(
    row: &csv::StringRecord,
    columns: &[Option<usize>; FIELDS.len()],
    width: usize,
) -> Result<ImportRecord, String> {
    if row.len() != width {
        return Err(format!("{} fields where the header has {width}", row.len()));
    }
    let cell = |index: usize| {
        columns[index]
            .and_then(|column| row.get(column))
            .map(str::trim)
            .filter(|text| !text.is_empty())
    };
    let text = |index: usize| cell(index).map(str::to_owned);
    let flag = |index: usize| -> Result<Option<bool>, String> {
        let Some(value) = cell(index) else {
            return Ok(None);
        };
        match value.to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "1" => Ok(Some(true)),
            "false" | "f" | "no" | "0" => Ok(Some(false)),
            _ => Err(format!("{}: must be true or false", FIELDS[index])),
        }
    };
    let profile = match cell(8) {
        None => Map::new(),
        Some(json) => match serde_json::from_str(json) {
            Ok(Value::Object(profile)) => profile,
            _ => return Err("profile: must be a JSON object".into()),
        },
    };
    file_record(ImportRecord {
        email: text(0),
        username: text(1),
        name: text(2),
        password_hash: text(3),
        created_at: text(4),
        must_change_password: flag(5)?,
        email_verified: flag(6)?,
        bio: text(7),
        profile,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn json(text: &str) -> (Vec<Item>, Ignored) {
        let mut ignored = Ignored::default();
        let mut items = Vec::new();
        read_json_lines(text.as_bytes(), &mut ignored, &mut |item| {
            items.push(item);
            Ok::<(), io::Error>(())
        })
        .unwrap();
        (items, ignored)
    }

    fn csv(text: &str) -> anyhow::Result<(Vec<Item>, Ignored)> {
        let mut ignored = Ignored::default();
        let mut items = Vec::new();
        read_csv(text.as_bytes(), &mut ignored, &mut |item| {
            items.push(item);
            Ok::<(), io::Error>(())
        })?;
        Ok((items, ignored))
    }

    #[test]
    fn json_lines_are_read_with_their_line_numbers() {
        let text = concat!(
            r#"{"email": "a@example.com", "password_hash": null, "must_change_password": true, "_id": 1}"#,
            "\n\n",
            "not json\n",
            "[1]\n",
            r#"{"email": 5}"#,
            "\n",
            r#"{"email": "b@example.com", "email_verified": "yes"}"#,
            "\n",
            r#"{"username": "c"}"#,
        );
        let (items, ignored) = json(text);
        let locations: Vec<&str> = items.iter().map(|(at, _)| at.as_str()).collect();
        assert_eq!(
            locations,
            ["line 1", "line 3", "line 4", "line 5", "line 6", "line 7"]
        );
        let first = items[0].1.as_ref().unwrap();
        assert_eq!(first.email.as_deref(), Some("a@example.com"));
        assert_eq!(first.password_hash, None);
        assert_eq!(first.must_change_password, Some(true));
        let reasons: Vec<&str> = items[1..]
            .iter()
            .map(|(_, r)| r.as_ref().unwrap_err().as_str())
            .collect();
        assert!(reasons[0].starts_with("not JSON"));
        assert_eq!(reasons[1], "not a JSON object");
        assert_eq!(reasons[2], "email: must be a string or null");
        assert_eq!(reasons[3], "email_verified: must be true, false or null");
        assert_eq!(reasons[4], "email: required");
        assert_eq!(ignored.names, BTreeSet::from(["_id".to_owned()]));
    }

    #[test]
    fn an_overlong_line_is_rejected_and_the_next_read() {
        let text = format!(
            "{{\"email\": \"{}\"}}\n{{\"email\": \"b@example.com\"}}\n",
            "x".repeat(MAX_LINE_BYTES)
        );
        let (items, _) = json(&text);
        assert_eq!(items.len(), 2);
        assert!(items[0].1.as_ref().unwrap_err().starts_with("longer than"));
        assert_eq!(items[1].0, "line 2");
        assert!(items[1].1.is_ok());
    }

    #[test]
    fn csv_rows_are_read_with_their_line_numbers() {
        let text = "\u{feff}email,password_hash,must_change_password,extra,profile\n\
                    a@example.com,$2b$10$x,yes,1,\"{\"\"unit\"\": \"\"metric\"\"}\"\n\
                    \"b@exa\nmple.com\",,,,\n\
                    c@example.com,,maybe,,\n\
                    ,,,,\n\
                    d@example.com\n";
        let (items, ignored) = csv(text).unwrap();
        let locations: Vec<&str> = items.iter().map(|(at, _)| at.as_str()).collect();
        assert_eq!(
            locations,
            ["line 2", "line 3", "line 5", "line 6", "line 7"]
        );
        let first = items[0].1.as_ref().unwrap();
        assert_eq!(first.password_hash.as_deref(), Some("$2b$10$x"));
        assert_eq!(first.must_change_password, Some(true));
        assert_eq!(first.profile["unit"], "metric");
        assert_eq!(items[1].1.as_ref().unwrap().password_hash, None);
        let reason = |i: usize| items[i].1.as_ref().unwrap_err().clone();
        assert_eq!(reason(2), "must_change_password: must be true or false");
        assert_eq!(reason(3), "email: required");
        assert_eq!(reason(4), "1 fields where the header has 5");
        assert_eq!(ignored.names, BTreeSet::from(["extra".to_owned()]));
    }

    #[test]
    fn a_csv_without_an_email_column_is_refused() {
        assert!(csv("mail,name\nx,y\n").is_err());
    }

    #[test]
    fn reports_name_the_record_and_never_a_hash() {
        let line = report_line("line 3", &RecordOutcome::Rejected("email: required".into()));
        assert_eq!(line.as_deref(), Some("line 3: rejected: email: required"));
        let imported =
            RecordOutcome::Imported(portcullis_domain::UserId::generate(chrono::Utc::now()));
        assert_eq!(report_line("line 4", &imported), None);
    }

    #[test]
    fn the_summary_lists_the_formats() {
        let summary = ImportSummary {
            imported: 3,
            rejected: 1,
            hash_formats: [("bcrypt", 2), ("none", 1)].into(),
            ..ImportSummary::default()
        };
        let mut out = Vec::new();
        print_summary(&mut out, &summary, true).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("dry run: nothing was written\nimported: 3\n"),
            "{text}"
        );
        assert!(
            text.ends_with("rejected: 1\npassword hashes: bcrypt 2, none 1\n"),
            "{text}"
        );
    }
}
