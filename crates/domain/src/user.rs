//! The user entity.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::values::{Bio, DisplayName, Email, PasswordHash, UserId, Username};

/// Application attributes a dialect may show (avatar, language, location, unit, ...):
/// one general per-user key/value store, so a new dialect never needs a new column.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Profile(Map<String, Value>);

impl Profile {
    /// A profile holding these attributes.
    pub fn from_map(map: Map<String, Value>) -> Self {
        Self(map)
    }

    /// The attribute `key`, if set.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// The attribute `key`, if set to a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    /// Sets the attribute `key`, replacing any previous value.
    pub fn set(&mut self, key: impl Into<String>, value: Value) {
        self.0.insert(key.into(), value);
    }

    /// Every attribute.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }
}

/// A stored account. Every field is already valid: the types say so. It has an email,
/// a username or both.
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    /// The account's id, the `sub` of its tokens.
    pub id: UserId,
    /// Unique among accounts that have one, case-insensitively. An account without
    /// one (signed up with a username alone) cannot reset its password by email.
    pub email: Option<Email>,
    /// Unique among accounts that have one, case-insensitively.
    pub username: Option<Username>,
    /// The name shown for the account.
    pub name: DisplayName,
    /// A short biography, if given.
    pub bio: Option<Bio>,
    /// Whether the address is known to be the user's. Stored and shown; no use case
    /// sets it yet.
    pub email_verified: bool,
    /// Whether the user must choose a new password (set by operators, cleared by a
    /// password reset); dialects that can, say so at login.
    pub must_change_password: bool,
    /// Application attributes dialects may show.
    pub profile: Profile,
    /// The password as the hasher encoded it.
    pub password_hash: PasswordHash,
    /// When the password was last set; a re-hash of the same password keeps it.
    pub password_changed_at: DateTime<Utc>,
    /// Moves forward with every password change (a reset). A session records the
    /// version it was made under, and one made under an older version is dead, even if
    /// it was created after the change by a login that raced it.
    pub credential_version: i64,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
    /// When the stored account last changed.
    pub updated_at: DateTime<Utc>,
}

/// What it takes to create an account outside self-registration (operators, imports).
#[derive(Clone, Debug)]
pub struct NewUser {
    /// See [`User::email`].
    pub email: Option<Email>,
    /// See [`User::username`].
    pub username: Option<Username>,
    /// See [`User::name`].
    pub name: DisplayName,
    /// See [`User::bio`].
    pub bio: Option<Bio>,
    /// See [`User::must_change_password`].
    pub must_change_password: bool,
    /// See [`User::profile`].
    pub profile: Profile,
}
