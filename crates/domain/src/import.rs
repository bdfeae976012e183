//! Moving accounts in from another application (`portcullis import`): records as an
//! export gives them are validated one by one, checked against the accounts already
//! stored, and written in batches, each in one transaction, with their password hashes
//! as they are (no hashing here: a foreign hash is re-hashed at the account's first
//! login). Running the same import again changes nothing, so an interrupted one is
//! resumed by running it again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasher, RandomState};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::event::{AuthEvent, Client, EventKind, EventOutcome};
use crate::ports::{
    AccountUpdate, Clock, HashScheme, ImportWriteError, PasswordHasher, StoreError,
    UserImportRepository,
};
use crate::user::{Profile, User};
use crate::values::{Bio, DisplayName, Email, PasswordHash, UserId, Username};

/// The name reports give accounts imported without a password.
pub const NO_PASSWORD: &str = "none";

/// How many times a batch is read and planned again when the accounts it touches
/// change while it is written (a registration racing the import).
const WRITE_ATTEMPTS: usize = 5;

/// One account as an export gives it, every field still text. Blank text counts as
/// absent.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ImportRecord {
    /// The address; an account needs an email, a username or both.
    pub email: Option<String>,
    /// The login name.
    pub username: Option<String>,
    /// The name shown; absent, a new account is named by its username, else by its
    /// email's local part.
    pub name: Option<String>,
    /// The stored hash, in a format the hasher reads. Absent: a new account gets no
    /// password (it cannot log in until a reset), an updated one keeps its own.
    pub password_hash: Option<String>,
    /// When the account was created, RFC 3339; absent, the time of the import.
    pub created_at: Option<String>,
    /// Absent: `false` for a new account, unchanged for an updated one.
    pub must_change_password: Option<bool>,
    /// Whether the address was verified; absent like `must_change_password`.
    pub email_verified: Option<bool>,
    /// A short biography; absent, none for a new account, unchanged for an updated one.
    pub bio: Option<String>,
    /// Application attributes dialects show (PocketBase's `avatar`, `language`,
    /// `location`, `unit`, `emailVisibility`, ...): set on the account, each replacing
    /// the attribute of its name.
    pub profile: Map<String, Value>,
}

impl fmt::Debug for ImportRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImportRecord")
            .field("email", &self.email)
            .field("username", &self.username)
            .field("name", &self.name)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "<redacted>"),
            )
            .field("created_at", &self.created_at)
            .field("must_change_password", &self.must_change_password)
            .field("email_verified", &self.email_verified)
            .field("bio", &self.bio)
            .field("profile", &self.profile)
            .finish()
    }
}

/// What an import does with a record whose email or username is already stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExistingAccounts {
    /// Leaves the account as it is and reports the record skipped.
    #[default]
    Skip,
    /// Updates the account from the record. A password already in the hasher's current
    /// format (set here, or upgraded at a login here) is kept: the account has used
    /// Portcullis since the export was made.
    Update,
}

/// How an import runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportOptions {
    /// Skip or update accounts already stored.
    pub existing: ExistingAccounts,
    /// Validate and plan everything, write nothing.
    pub dry_run: bool,
    /// Records per transaction, at least 1.
    pub batch_size: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            existing: ExistingAccounts::Skip,
            dry_run: false,
            batch_size: 1000,
        }
    }
}

/// What became of one record (in a dry run: what would have).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordOutcome {
    /// A new account.
    Imported(UserId),
    /// The stored account was updated from the record.
    Updated {
        /// The account.
        id: UserId,
        /// Its password was left as it was (see [`ExistingAccounts::Update`]).
        password_kept: bool,
    },
    /// The stored account already matches the record.
    Unchanged {
        /// The account.
        id: UserId,
        /// The record's password differs but the account's own was kept.
        password_kept: bool,
    },
    /// An account with the record's email or username is stored; the import leaves it.
    Skipped {
        /// That account.
        existing: UserId,
        /// Which of the record's fields it shares.
        reason: String,
    },
    /// Invalid, a duplicate, or in conflict with the stored accounts: nothing was
    /// written for it.
    Rejected(String),
}

/// The totals of an import.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// New accounts.
    pub imported: u64,
    /// Accounts updated from their record.
    pub updated: u64,
    /// Accounts that already matched their record.
    pub unchanged: u64,
    /// Records whose account was stored and left alone.
    pub skipped: u64,
    /// Records refused.
    pub rejected: u64,
    /// Accounts whose own, current password was kept over the record's.
    pub passwords_kept: u64,
    /// The password-hash formats written (new accounts, and updated ones whose
    /// password was replaced), by the hasher's name for them; [`NO_PASSWORD`] for
    /// accounts without one.
    pub hash_formats: BTreeMap<&'static str, u64>,
}

/// Why an import stopped before its end. Batches written before it stay written;
/// running the import again resumes it.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The accounts of one batch kept changing under the import.
    #[error("the accounts kept changing while the import wrote them ({WRITE_ATTEMPTS} attempts)")]
    KeptChanging,
}

/// A record that passed validation.
struct Candidate {
    location: String,
    email: Option<Email>,
    username: Option<Username>,
    name: Option<DisplayName>,
    /// A new account's name when the record has none.
    default_name: DisplayName,
    password: Option<(PasswordHash, HashScheme)>,
    created_at: Option<DateTime<Utc>>,
    must_change_password: Option<bool>,
    email_verified: Option<bool>,
    bio: Option<Bio>,
    profile: Map<String, Value>,
}

/// The emails and usernames of the records taken so far, as 128-bit keyed digests: 32
/// bytes a record instead of the records, so memory stays small on large imports, with
/// a chance of a false duplicate below 10⁻²⁰ at a billion records.
struct SeenKeys {
    keys: [RandomState; 2],
    seen: HashSet<u128>,
}

impl SeenKeys {
    fn new() -> Self {
        Self {
            keys: [RandomState::new(), RandomState::new()],
            seen: HashSet::new(),
        }
    }

    fn digest(&self, kind: u8, key: &str) -> u128 {
        let [high, low] = &self.keys;
        (u128::from(high.hash_one((kind, key))) << 64) | u128::from(low.hash_one((kind, key)))
    }
}

/// An import in progress: [`add`](Self::add) each record, then [`finish`](Self::finish).
/// Every record's outcome is passed to the `report` callback with its location: a
/// rejection at once, the others when their batch is written.
pub struct AccountImport<'a> {
    store: &'a dyn UserImportRepository,
    hasher: &'a dyn PasswordHasher,
    clock: &'a dyn Clock,
    options: ImportOptions,
    seen: SeenKeys,
    pending: Vec<Candidate>,
    summary: ImportSummary,
}

impl<'a> AccountImport<'a> {
    /// An import into `store`, checking hashes with `hasher`.
    pub fn new(
        store: &'a dyn UserImportRepository,
        hasher: &'a dyn PasswordHasher,
        clock: &'a dyn Clock,
        options: ImportOptions,
    ) -> Self {
        let options = ImportOptions {
            batch_size: options.batch_size.max(1),
            ..options
        };
        Self {
            store,
            hasher,
            clock,
            options,
            seen: SeenKeys::new(),
            pending: Vec::with_capacity(options.batch_size),
            summary: ImportSummary::default(),
        }
    }

    /// Takes the record found at `location` (e.g. `line 12`), or the reason it could
    /// not be read; writes a batch when one is full.
    pub fn add(
        &mut self,
        location: String,
        record: Result<ImportRecord, String>,
        report: &mut dyn FnMut(&str, &RecordOutcome),
    ) -> Result<(), ImportError> {
        match record.and_then(|record| self.parse(&record)) {
            Ok(mut candidate) => {
                candidate.location = location;
                self.pending.push(candidate);
                if self.pending.len() >= self.options.batch_size {
                    self.write_batch(report)?;
                }
            }
            Err(reason) => {
                self.summary.rejected += 1;
                report(&location, &RecordOutcome::Rejected(reason));
            }
        }
        Ok(())
    }

    /// Writes the last batch and returns the totals.
    pub fn finish(
        mut self,
        report: &mut dyn FnMut(&str, &RecordOutcome),
    ) -> Result<ImportSummary, ImportError> {
        self.write_batch(report)?;
        Ok(self.summary)
    }

    fn parse(&mut self, record: &ImportRecord) -> Result<Candidate, String> {
        let text = |field: &Option<String>| {
            field
                .as_deref()
                .map(str::trim)
                .filter(|text| !text.is_empty())
                .map(str::to_owned)
        };
        let field_error = |field: &str, why: &dyn fmt::Display| format!("{field}: {why}");
        let email = text(&record.email)
            .map(|raw| Email::parse(&raw).map_err(|e| field_error("email", &e)))
            .transpose()?;
        let username = text(&record.username)
            .map(|raw| Username::parse(&raw).map_err(|e| field_error("username", &e)))
            .transpose()?;
        if email.is_none() && username.is_none() {
            return Err("an email or a username is required".into());
        }
        let name = text(&record.name)
            .map(|raw| DisplayName::parse(&raw).map_err(|e| field_error("name", &e)))
            .transpose()?;
        let bio = text(&record.bio)
            .map(|raw| Bio::parse(&raw).map_err(|e| field_error("bio", &e)))
            .transpose()?;
        let default_name = default_name(email.as_ref(), username.as_ref())
            .ok_or("name: required, and neither the username nor the email can stand in")?;
        let password = match text(&record.password_hash) {
            None => None,
            Some(raw) => {
                let hash = PasswordHash::new(raw);
                let scheme = self.hasher.scheme(&hash).ok_or_else(|| {
                    "password_hash: not a hash format Portcullis can verify, or damaged".to_owned()
                })?;
                Some((hash, scheme))
            }
        };
        let created_at = text(&record.created_at)
            .map(|raw| {
                let at = DateTime::parse_from_rfc3339(&raw)
                    .map_err(|e| field_error("created_at", &format!("not RFC 3339: {e}")))?
                    .with_timezone(&Utc);
                if at > self.clock.now() {
                    return Err("created_at: in the future".to_owned());
                }
                Ok(at)
            })
            .transpose()?;
        self.claim_keys(email.as_ref(), username.as_ref())?;
        Ok(Candidate {
            location: String::new(),
            email,
            username,
            name,
            default_name,
            password,
            created_at,
            must_change_password: record.must_change_password,
            email_verified: record.email_verified,
            bio,
            profile: record.profile.clone(),
        })
    }

    /// Refuses a record whose email or username an earlier valid record had; else
    /// remembers them.
    fn claim_keys(
        &mut self,
        email: Option<&Email>,
        username: Option<&Username>,
    ) -> Result<(), String> {
        let email = email.map(|email| self.seen.digest(b'e', email.as_str()));
        let username =
            username.map(|name| self.seen.digest(b'u', &name.as_str().to_ascii_lowercase()));
        if email.is_some_and(|key| self.seen.seen.contains(&key)) {
            return Err("duplicate: an earlier record has this email".into());
        }
        if username.is_some_and(|key| self.seen.seen.contains(&key)) {
            return Err("duplicate: an earlier record has this username".into());
        }
        self.seen.seen.extend(email.into_iter().chain(username));
        Ok(())
    }

    /// Plans the pending batch against the stored accounts and writes it in one
    /// transaction, planning again if the accounts changed meanwhile.
    fn write_batch(
        &mut self,
        report: &mut dyn FnMut(&str, &RecordOutcome),
    ) -> Result<(), ImportError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        for _ in 0..WRITE_ATTEMPTS {
            let plan = self.plan()?;
            let nothing_to_write = plan.events.is_empty();
            if !self.options.dry_run && !nothing_to_write {
                match self
                    .store
                    .write_import(&plan.created, &plan.updated, &plan.events)
                {
                    Ok(()) => {}
                    Err(ImportWriteError::Changed) => continue,
                    Err(ImportWriteError::Store(e)) => return Err(e.into()),
                }
            }
            for (candidate, outcome) in self.pending.drain(..).zip(&plan.outcomes) {
                report(&candidate.location, outcome);
            }
            self.count(plan);
            return Ok(());
        }
        Err(ImportError::KeptChanging)
    }

    fn count(&mut self, plan: Plan) {
        let summary = &mut self.summary;
        for outcome in &plan.outcomes {
            match outcome {
                RecordOutcome::Imported(_) => summary.imported += 1,
                RecordOutcome::Updated { password_kept, .. } => {
                    summary.updated += 1;
                    summary.passwords_kept += u64::from(*password_kept);
                }
                RecordOutcome::Unchanged { password_kept, .. } => {
                    summary.unchanged += 1;
                    summary.passwords_kept += u64::from(*password_kept);
                }
                RecordOutcome::Skipped { .. } => summary.skipped += 1,
                RecordOutcome::Rejected(_) => summary.rejected += 1,
            }
        }
        for format in plan.hash_formats {
            *summary.hash_formats.entry(format).or_default() += 1;
        }
    }

    fn plan(&self) -> Result<Plan, StoreError> {
        let emails: Vec<Email> = self
            .pending
            .iter()
            .filter_map(|c| c.email.clone())
            .collect();
        let usernames: Vec<Username> = self
            .pending
            .iter()
            .filter_map(|c| c.username.clone())
            .collect();
        let stored = self.store.find_accounts(&emails, &usernames)?;
        let by_email: HashMap<&str, &User> = stored
            .iter()
            .filter_map(|user| user.email.as_ref().map(|email| (email.as_str(), user)))
            .collect();
        let by_username: HashMap<String, &User> = stored
            .iter()
            .filter_map(|user| {
                let name = user.username.as_ref()?;
                Some((name.as_str().to_ascii_lowercase(), user))
            })
            .collect();
        let now = self.clock.now();
        let mut plan = Plan::default();
        let mut touched = HashSet::new();
        for candidate in &self.pending {
            let by_email = candidate
                .email
                .as_ref()
                .and_then(|email| by_email.get(email.as_str()).copied());
            let by_username = candidate.username.as_ref().and_then(|name| {
                by_username
                    .get(&name.as_str().to_ascii_lowercase())
                    .copied()
            });
            let outcome = match (by_email, by_username) {
                (None, None) => plan.create(candidate, now),
                (Some(a), Some(b)) if a.id != b.id => match self.options.existing {
                    ExistingAccounts::Skip => skipped(a, "an account with this email exists"),
                    ExistingAccounts::Update => RecordOutcome::Rejected(
                        "its email belongs to one stored account and its username to another"
                            .into(),
                    ),
                },
                (Some(account), _) | (None, Some(account)) => match self.options.existing {
                    ExistingAccounts::Skip if by_email.is_some() => {
                        skipped(account, "an account with this email exists")
                    }
                    ExistingAccounts::Skip => {
                        skipped(account, "an account with this username exists")
                    }
                    ExistingAccounts::Update if !touched.insert(account.id) => {
                        RecordOutcome::Rejected(
                            "an earlier record of this batch updates the same account".into(),
                        )
                    }
                    ExistingAccounts::Update => plan.update(self.hasher, account, candidate, now),
                },
            };
            plan.outcomes.push(outcome);
        }
        Ok(plan)
    }
}

fn skipped(existing: &User, reason: &str) -> RecordOutcome {
    RecordOutcome::Skipped {
        existing: existing.id,
        reason: reason.to_owned(),
    }
}

/// What one batch writes, and each record's outcome, in input order.
#[derive(Default)]
struct Plan {
    created: Vec<User>,
    updated: Vec<AccountUpdate>,
    events: Vec<AuthEvent>,
    outcomes: Vec<RecordOutcome>,
    hash_formats: Vec<&'static str>,
}

impl Plan {
    fn event(&mut self, user: UserId, now: DateTime<Utc>) {
        self.events.push(
            AuthEvent::new(
                EventKind::UserImported,
                EventOutcome::Success,
                now,
                &Client::default(),
            )
            .for_user(user),
        );
    }

    fn create(&mut self, candidate: &Candidate, now: DateTime<Utc>) -> RecordOutcome {
        let (password_hash, format) = match &candidate.password {
            Some((hash, scheme)) => (hash.clone(), scheme.name),
            None => (PasswordHash::unusable(), NO_PASSWORD),
        };
        let user = User {
            id: UserId::generate(now),
            email: candidate.email.clone(),
            username: candidate.username.clone(),
            name: candidate
                .name
                .clone()
                .unwrap_or_else(|| candidate.default_name.clone()),
            bio: candidate.bio.clone(),
            email_verified: candidate.email_verified.unwrap_or(false),
            must_change_password: candidate.must_change_password.unwrap_or(false),
            profile: Profile::from_map(candidate.profile.clone()),
            password_hash,
            password_changed_at: now,
            credential_version: 0,
            created_at: candidate.created_at.unwrap_or(now),
            updated_at: now,
        };
        let id = user.id;
        self.event(id, now);
        self.hash_formats.push(format);
        self.created.push(user);
        RecordOutcome::Imported(id)
    }

    fn update(
        &mut self,
        hasher: &dyn PasswordHasher,
        stored: &User,
        candidate: &Candidate,
        now: DateTime<Utc>,
    ) -> RecordOutcome {
        let mut user = stored.clone();
        user.email = candidate.email.clone().or(user.email);
        user.username = candidate.username.clone().or(user.username);
        if let Some(name) = &candidate.name {
            user.name = name.clone();
        }
        if let Some(bio) = &candidate.bio {
            user.bio = Some(bio.clone());
        }
        for (key, value) in &candidate.profile {
            user.profile.set(key.clone(), value.clone());
        }
        if let Some(created_at) = candidate.created_at {
            user.created_at = created_at;
        }
        user.must_change_password = candidate
            .must_change_password
            .unwrap_or(user.must_change_password);
        user.email_verified = candidate.email_verified.unwrap_or(user.email_verified);
        let mut password_kept = false;
        let mut new_format = None;
        if let Some((hash, scheme)) = &candidate.password
            && *hash != stored.password_hash
        {
            if hasher
                .scheme(&stored.password_hash)
                .is_some_and(|own| own.current)
            {
                password_kept = true;
            } else {
                // A new password: sessions made under the old one end.
                user.password_hash = hash.clone();
                user.password_changed_at = now;
                user.credential_version += 1;
                new_format = Some(scheme.name);
            }
        }
        if user == *stored {
            return RecordOutcome::Unchanged {
                id: stored.id,
                password_kept,
            };
        }
        user.updated_at = now;
        self.event(user.id, now);
        self.hash_formats.extend(new_format);
        self.updated.push(AccountUpdate {
            user,
            read_updated_at: stored.updated_at,
        });
        RecordOutcome::Updated {
            id: stored.id,
            password_kept,
        }
    }
}

/// A new account's name when the record has none: its username, else its email's
/// local part (cut to fit).
fn default_name(email: Option<&Email>, username: Option<&Username>) -> Option<DisplayName> {
    let from = |text: &str| {
        let cut: String = text.chars().take(DisplayName::MAX_LEN).collect();
        DisplayName::parse(&cut).ok()
    };
    username.and_then(|name| from(name.as_str())).or_else(|| {
        let (local, _) = email?.as_str().rsplit_once('@')?;
        from(local)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::{Arc, Mutex};

    use chrono::TimeDelta;

    use super::*;
    use crate::ports::{MockClock, MockPasswordHasher, MockUserImportRepository};

    const CURRENT: &str = "$argon2id$current";
    const BCRYPT: &str = "$2b$10$old";

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn hasher() -> MockPasswordHasher {
        let mut hasher = MockPasswordHasher::new();
        hasher.expect_scheme().returning(|hash| {
            let (name, current) = match hash.as_str() {
                CURRENT => ("argon2id", true),
                text if text.starts_with("$2b$") => ("bcrypt", false),
                text if text.starts_with("pbkdf2_sha256$") => ("pbkdf2_sha256", false),
                _ => return None,
            };
            Some(HashScheme { name, current })
        });
        hasher
    }

    fn clock() -> MockClock {
        let mut clock = MockClock::new();
        clock.expect_now().returning(at);
        clock
    }

    fn record(email: &str) -> ImportRecord {
        ImportRecord {
            email: Some(email.into()),
            password_hash: Some(BCRYPT.into()),
            ..ImportRecord::default()
        }
    }

    fn stored(email: &str, username: Option<&str>, hash: &str) -> User {
        User {
            id: UserId::generate(at()),
            email: Some(Email::parse(email).unwrap()),
            username: username.map(|name| Username::parse(name).unwrap()),
            name: DisplayName::parse("Stored").unwrap(),
            bio: None,
            email_verified: false,
            must_change_password: false,
            profile: Profile::default(),
            password_hash: PasswordHash::new(hash.into()),
            password_changed_at: at() - TimeDelta::days(9),
            credential_version: 3,
            created_at: at() - TimeDelta::days(9),
            updated_at: at() - TimeDelta::days(1),
        }
    }

    /// What the store was asked to write, call by call.
    type Writes = Arc<Mutex<Vec<(Vec<User>, Vec<AccountUpdate>, Vec<AuthEvent>)>>>;

    /// A store holding `existing` that records every write and answers each with the
    /// next of `answers` (then `Ok`).
    fn store_with(existing: Vec<User>, answers: Vec<bool>) -> (MockUserImportRepository, Writes) {
        let mut store = MockUserImportRepository::new();
        store
            .expect_find_accounts()
            .returning(move |_, _| Ok(existing.clone()));
        let writes = Writes::default();
        let log = writes.clone();
        let answers = Mutex::new(answers.into_iter());
        store.expect_write_import().returning(move |c, u, e| {
            log.lock()
                .unwrap()
                .push((c.to_vec(), u.to_vec(), e.to_vec()));
            match answers.lock().unwrap().next() {
                Some(false) => Err(ImportWriteError::Changed),
                _ => Ok(()),
            }
        });
        (store, writes)
    }

    /// Runs an import of `records` (located `line 1`, `line 2`, ...): the reports in
    /// order, and the summary.
    fn run(
        store: &MockUserImportRepository,
        options: ImportOptions,
        records: Vec<Result<ImportRecord, String>>,
    ) -> (
        Vec<(String, RecordOutcome)>,
        Result<ImportSummary, ImportError>,
    ) {
        let (hasher, clock) = (hasher(), clock());
        let mut import = AccountImport::new(store, &hasher, &clock, options);
        let mut reports = Vec::new();
        let mut report = |location: &str, outcome: &RecordOutcome| {
            reports.push((location.to_owned(), outcome.clone()));
        };
        for (line, record) in records.into_iter().enumerate() {
            if let Err(e) = import.add(format!("line {}", line + 1), record, &mut report) {
                return (reports, Err(e));
            }
        }
        let summary = import.finish(&mut report);
        (reports, summary)
    }

    fn rejection(reports: &[(String, RecordOutcome)], location: &str) -> String {
        match reports.iter().find(|(at, _)| at == location) {
            Some((_, RecordOutcome::Rejected(reason))) => reason.clone(),
            other => panic!("{location}: {other:?}"),
        }
    }

    #[test]
    fn invalid_records_are_rejected_with_their_location_and_reason() {
        let (store, writes) = store_with(vec![], vec![]);
        let with = |change: fn(&mut ImportRecord)| {
            let mut record = record("ok@example.com");
            change(&mut record);
            Ok(record)
        };
        let records = vec![
            Ok(record("not-an-email")),
            with(|r| r.email = None),
            with(|r| r.username = Some("no spaces".into())),
            with(|r| r.password_hash = Some("md5$abc".into())),
            with(|r| r.created_at = Some("yesterday".into())),
            with(|r| r.created_at = Some("2999-01-01T00:00:00Z".into())),
            with(|r| r.name = Some("a\u{202E}b".into())),
            with(|r| r.bio = Some("x".repeat(501))),
            Err("not JSON: expected value".into()),
            Ok(record("first@example.com")),
            Ok(record("FIRST@example.com")),
        ];
        let (reports, summary) = run(&store, ImportOptions::default(), records);
        let summary = summary.unwrap();
        assert!(rejection(&reports, "line 1").starts_with("email: "));
        assert_eq!(
            rejection(&reports, "line 2"),
            "an email or a username is required"
        );
        assert!(rejection(&reports, "line 3").starts_with("username: "));
        assert!(rejection(&reports, "line 4").starts_with("password_hash: "));
        assert!(rejection(&reports, "line 5").starts_with("created_at: not RFC 3339"));
        assert_eq!(rejection(&reports, "line 6"), "created_at: in the future");
        assert!(rejection(&reports, "line 7").starts_with("name: "));
        assert!(rejection(&reports, "line 8").starts_with("bio: "));
        assert_eq!(rejection(&reports, "line 9"), "not JSON: expected value");
        assert_eq!(
            rejection(&reports, "line 11"),
            "duplicate: an earlier record has this email"
        );
        assert_eq!(summary.rejected, 10);
        assert_eq!(summary.imported, 1);
        let writes = writes.lock().unwrap();
        assert_eq!(writes.len(), 1);
        assert_eq!(writes[0].0.len(), 1);
    }

    #[test]
    fn new_accounts_are_written_in_batches_with_an_event_each() {
        let (store, writes) = store_with(vec![], vec![]);
        let records = vec![
            Ok(ImportRecord {
                username: Some("Ada".into()),
                name: Some("Ada Lovelace".into()),
                created_at: Some("2020-02-03T04:05:06.789+01:00".into()),
                must_change_password: Some(true),
                email_verified: Some(true),
                bio: Some("Wrote the first program.".into()),
                profile: Map::from_iter([("language".to_owned(), Value::from("en"))]),
                ..record("ada@example.com")
            }),
            Ok(ImportRecord {
                password_hash: None,
                ..record("grace.hopper@example.com")
            }),
            Ok(ImportRecord {
                email: None,
                username: Some("alan".into()),
                password_hash: Some("pbkdf2_sha256$1$s$h".into()),
                ..ImportRecord::default()
            }),
        ];
        let options = ImportOptions {
            batch_size: 2,
            ..ImportOptions::default()
        };
        let (reports, summary) = run(&store, options, records);
        let summary = summary.unwrap();
        assert_eq!(summary.imported, 3);
        assert_eq!(
            summary.hash_formats,
            BTreeMap::from([("bcrypt", 1), (NO_PASSWORD, 1), ("pbkdf2_sha256", 1)])
        );
        let writes = writes.lock().unwrap();
        assert_eq!(writes.len(), 2, "two batches");
        let users: Vec<&User> = writes.iter().flat_map(|w| &w.0).collect();
        let (ada, grace, alan) = (users[0], users[1], users[2]);
        assert_eq!(ada.name.as_str(), "Ada Lovelace");
        assert_eq!(ada.username.as_ref().unwrap().as_str(), "Ada");
        assert_eq!(ada.password_hash.as_str(), BCRYPT);
        assert_eq!(ada.created_at.to_rfc3339(), "2020-02-03T03:05:06.789+00:00");
        assert!(ada.must_change_password && ada.email_verified);
        assert_eq!(
            ada.bio.as_ref().unwrap().as_str(),
            "Wrote the first program."
        );
        assert_eq!(ada.profile.get_str("language"), Some("en"));
        assert_eq!((ada.credential_version, ada.updated_at), (0, at()));
        assert!(grace.password_hash.is_unusable());
        assert_eq!(grace.name.as_str(), "grace.hopper");
        assert_eq!(grace.created_at, at());
        assert!(!grace.must_change_password && !grace.email_verified);
        assert_eq!(alan.name.as_str(), "alan");
        assert_eq!(alan.email, None);
        let events: Vec<&AuthEvent> = writes.iter().flat_map(|w| &w.2).collect();
        for (user, event) in users.iter().zip(&events) {
            assert_eq!(event.kind, EventKind::UserImported);
            assert_eq!(event.user_id, Some(user.id));
        }
        assert_eq!(events.len(), 3);
        let imported: Vec<_> = reports.iter().map(|(_, outcome)| outcome.clone()).collect();
        assert_eq!(
            imported,
            users
                .iter()
                .map(|u| RecordOutcome::Imported(u.id))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn existing_accounts_are_skipped_by_email_or_username() {
        let ada = stored("ada@example.com", Some("ada"), BCRYPT);
        let (store, writes) = store_with(vec![ada.clone()], vec![]);
        let records = vec![
            Ok(record("ADA@example.com")),
            Ok(ImportRecord {
                username: Some("ADA".into()),
                ..record("other@example.com")
            }),
        ];
        let (reports, summary) = run(&store, ImportOptions::default(), records);
        assert_eq!(summary.unwrap().skipped, 2);
        assert_eq!(
            reports[1].1,
            RecordOutcome::Skipped {
                existing: ada.id,
                reason: "an account with this username exists".into()
            }
        );
        assert!(writes.lock().unwrap().is_empty(), "nothing to write");
    }

    #[test]
    fn updates_keep_a_current_password_and_replace_a_foreign_one() {
        let foreign = stored("foreign@example.com", None, BCRYPT);
        let current = stored("current@example.com", None, CURRENT);
        let same = stored("same@example.com", None, BCRYPT);
        let existing = vec![foreign.clone(), current.clone(), same.clone()];
        let (store, writes) = store_with(existing, vec![]);
        let new_hash = "$2b$10$new";
        let records = vec![
            Ok(ImportRecord {
                password_hash: Some(new_hash.into()),
                username: Some("renamed".into()),
                profile: Map::from_iter([("unit".to_owned(), Value::from("imperial"))]),
                ..record("foreign@example.com")
            }),
            Ok(ImportRecord {
                password_hash: Some(new_hash.into()),
                must_change_password: Some(true),
                ..record("current@example.com")
            }),
            Ok(record("same@example.com")),
        ];
        let options = ImportOptions {
            existing: ExistingAccounts::Update,
            ..ImportOptions::default()
        };
        let (reports, summary) = run(&store, options, records);
        let summary = summary.unwrap();
        assert_eq!((summary.updated, summary.unchanged), (2, 1));
        assert_eq!(summary.passwords_kept, 1);
        assert_eq!(summary.hash_formats, BTreeMap::from([("bcrypt", 1)]));
        assert_eq!(
            reports[2].1,
            RecordOutcome::Unchanged {
                id: same.id,
                password_kept: false
            }
        );
        let writes = writes.lock().unwrap();
        let updates = &writes[0].1;
        assert_eq!(updates.len(), 2);
        let replaced = &updates[0];
        assert_eq!(replaced.read_updated_at, foreign.updated_at);
        assert_eq!(replaced.user.password_hash.as_str(), new_hash);
        assert_eq!(replaced.user.credential_version, 4);
        assert_eq!(replaced.user.password_changed_at, at());
        assert_eq!(replaced.user.username.as_ref().unwrap().as_str(), "renamed");
        assert_eq!(replaced.user.name, foreign.name, "no name given: kept");
        assert_eq!(replaced.user.profile.get_str("unit"), Some("imperial"));
        let kept = &updates[1].user;
        assert_eq!(kept.password_hash.as_str(), CURRENT);
        assert_eq!(kept.credential_version, 3);
        assert!(kept.must_change_password);
        assert_eq!(writes[0].2.len(), 2, "an event per updated account");
    }

    #[test]
    fn an_update_matching_two_accounts_or_one_twice_is_rejected() {
        let ada = stored("ada@example.com", Some("ada"), BCRYPT);
        let grace = stored("grace@example.com", Some("grace"), BCRYPT);
        let alan = stored("alan@example.com", Some("alan"), BCRYPT);
        let (store, writes) = store_with(vec![ada, grace, alan], vec![]);
        let records = vec![
            Ok(ImportRecord {
                username: Some("grace".into()),
                ..record("ada@example.com")
            }),
            Ok(ImportRecord {
                name: Some("Alan Turing".into()),
                ..record("alan@example.com")
            }),
            Ok(ImportRecord {
                username: Some("ALAN".into()),
                ..record("new@example.com")
            }),
        ];
        let options = ImportOptions {
            existing: ExistingAccounts::Update,
            ..ImportOptions::default()
        };
        let (reports, summary) = run(&store, options, records);
        assert!(rejection(&reports, "line 1").contains("one stored account"));
        assert_eq!(
            rejection(&reports, "line 3"),
            "an earlier record of this batch updates the same account"
        );
        assert_eq!(summary.unwrap().updated, 1);
        assert_eq!(writes.lock().unwrap()[0].1.len(), 1);
    }

    #[test]
    fn a_batch_whose_accounts_changed_is_planned_again_then_given_up() {
        let (store, writes) = store_with(vec![], vec![false, true]);
        let (_, summary) = run(
            &store,
            ImportOptions::default(),
            vec![Ok(record("a@example.com"))],
        );
        assert_eq!(summary.unwrap().imported, 1);
        assert_eq!(writes.lock().unwrap().len(), 2);

        let (store, _) = store_with(vec![], vec![false; WRITE_ATTEMPTS]);
        let (reports, summary) = run(
            &store,
            ImportOptions::default(),
            vec![Ok(record("a@example.com"))],
        );
        assert!(matches!(summary, Err(ImportError::KeptChanging)));
        assert!(reports.is_empty(), "nothing reported as done");
    }

    #[test]
    fn a_dry_run_plans_and_reports_but_writes_nothing() {
        let ada = stored("ada@example.com", None, BCRYPT);
        let (store, writes) = store_with(vec![ada.clone()], vec![]);
        let options = ImportOptions {
            dry_run: true,
            ..ImportOptions::default()
        };
        let records = vec![Ok(record("ada@example.com")), Ok(record("new@example.com"))];
        let (reports, summary) = run(&store, options, records);
        let summary = summary.unwrap();
        assert_eq!((summary.imported, summary.skipped), (1, 1));
        assert!(matches!(reports[1].1, RecordOutcome::Imported(_)));
        assert!(writes.lock().unwrap().is_empty());
    }

    #[test]
    fn a_record_debug_hides_the_hash() {
        let text = format!("{:?}", record("a@example.com"));
        assert!(
            !text.contains(BCRYPT) && text.contains("<redacted>"),
            "{text}"
        );
    }
}
