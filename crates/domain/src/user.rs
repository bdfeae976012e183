//! The user entity.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::values::{Bio, DisplayName, Email, PasswordHash, UserId, Username};

/// Application attributes a dialect may show (avatar, language, location, unit, ...):
/// one general per-user key/value store, so a new dialect never needs a new column.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Profile(Map<String, Value>);

impl Profile {
    pub fn from_map(map: Map<String, Value>) -> Self {
        Self(map)
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    pub fn set(&mut self, key: impl Into<String>, value: Value) {
        self.0.insert(key.into(), value);
    }

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }
}

/// A stored account. Every field is already valid: the types say so.
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub username: Option<Username>,
    pub name: DisplayName,
    pub bio: Option<Bio>,
    pub email_verified: bool,
    pub must_change_password: bool,
    pub profile: Profile,
    pub password_hash: PasswordHash,
    pub password_changed_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What it takes to create an account outside self-registration (operators, imports).
#[derive(Clone, Debug)]
pub struct NewUser {
    pub email: Email,
    pub username: Option<Username>,
    pub name: DisplayName,
    pub bio: Option<Bio>,
    pub must_change_password: bool,
    pub profile: Profile,
}
