//! Rows as both backends return them, and their checked conversion into domain types:
//! a stored value that no longer parses is a [`StoreError`], never a panic.

use chrono::{DateTime, Utc};
use diesel::Queryable;
use portcullis_domain::{
    AuthEvent, Bio, DisplayName, Email, EventKind, EventOutcome, KeyAlgorithm, PasswordHash,
    Profile, ResetTokenHash, ResetTokenRecord, RevocationReason, Session, SessionId,
    SigningKeyRecord, StoreError, User, UserId, Username,
};

use crate::types::{DbJson, DbUuid};

fn corrupt(column: &str, why: impl std::fmt::Display) -> StoreError {
    StoreError::new(format!("stored {column} is invalid: {why}"))
}

/// What `users.email` holds for an account without an email (see the migration
/// `optional_email`).
pub(crate) const NO_EMAIL: &str = "";

/// `users`, in column order.
#[derive(Queryable)]
pub(crate) struct UserRow {
    id: DbUuid,
    email: String,
    username: Option<String>,
    name: String,
    bio: Option<String>,
    email_verified: bool,
    must_change_password: bool,
    profile: DbJson,
    password_hash: String,
    password_changed_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    credential_version: i64,
}

impl UserRow {
    pub(crate) fn into_domain(self) -> Result<User, StoreError> {
        let profile = match self.profile.0 {
            serde_json::Value::Object(map) => Profile::from_map(map),
            _ => return Err(corrupt("users.profile", "not a JSON object")),
        };
        Ok(User {
            id: UserId::from_uuid(self.id.0),
            email: match self.email.as_str() {
                NO_EMAIL => None,
                stored => Some(Email::parse(stored).map_err(|e| corrupt("users.email", e))?),
            },
            username: self
                .username
                .as_deref()
                .map(Username::parse)
                .transpose()
                .map_err(|e| corrupt("users.username", e))?,
            name: DisplayName::parse(&self.name).map_err(|e| corrupt("users.name", e))?,
            bio: self
                .bio
                .as_deref()
                .map(Bio::parse)
                .transpose()
                .map_err(|e| corrupt("users.bio", e))?,
            email_verified: self.email_verified,
            must_change_password: self.must_change_password,
            profile,
            password_hash: PasswordHash::new(self.password_hash),
            password_changed_at: self.password_changed_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
            credential_version: self.credential_version,
        })
    }
}

/// `sessions`, in column order.
#[derive(Queryable)]
pub(crate) struct SessionRow {
    id: DbUuid,
    user_id: DbUuid,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    last_refreshed_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    revocation_reason: Option<String>,
    credential_version: i64,
}

impl SessionRow {
    pub(crate) fn into_domain(self) -> Result<Session, StoreError> {
        let revocation_reason = self
            .revocation_reason
            .map(|text| {
                RevocationReason::parse(&text).ok_or_else(|| {
                    corrupt(
                        "sessions.revocation_reason",
                        format!("unknown reason {text:?}"),
                    )
                })
            })
            .transpose()?;
        Ok(Session {
            id: SessionId::from_uuid(self.id.0),
            user_id: UserId::from_uuid(self.user_id.0),
            created_at: self.created_at,
            expires_at: self.expires_at,
            last_refreshed_at: self.last_refreshed_at,
            revoked_at: self.revoked_at,
            revocation_reason,
            credential_version: self.credential_version,
        })
    }
}

/// `password_reset_tokens`, in column order.
#[derive(Queryable)]
pub(crate) struct ResetTokenRow {
    token_hash: String,
    user_id: DbUuid,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
}

impl ResetTokenRow {
    pub(crate) fn into_domain(self) -> Result<ResetTokenRecord, StoreError> {
        Ok(ResetTokenRecord {
            token_hash: ResetTokenHash::from_hex(&self.token_hash).ok_or_else(|| {
                corrupt(
                    "password_reset_tokens.token_hash",
                    "not 64 lower-case hex digits",
                )
            })?,
            user_id: UserId::from_uuid(self.user_id.0),
            created_at: self.created_at,
            expires_at: self.expires_at,
            used_at: self.used_at,
        })
    }
}

/// `auth_events` without its `id`, in column order.
#[derive(Queryable)]
pub(crate) struct EventRow {
    at: DateTime<Utc>,
    kind: String,
    outcome: String,
    user_id: Option<DbUuid>,
    identifier_hash: Option<String>,
    session_id: Option<DbUuid>,
    ip: Option<String>,
    user_agent: Option<String>,
    dialect: Option<String>,
}

impl EventRow {
    pub(crate) fn into_domain(self) -> Result<AuthEvent, StoreError> {
        Ok(AuthEvent {
            at: self.at,
            kind: EventKind::parse(&self.kind)
                .ok_or_else(|| corrupt("auth_events.kind", &self.kind))?,
            outcome: EventOutcome::parse(&self.outcome)
                .ok_or_else(|| corrupt("auth_events.outcome", &self.outcome))?,
            user_id: self.user_id.map(|id| UserId::from_uuid(id.0)),
            identifier_hash: self.identifier_hash,
            session_id: self.session_id.map(|id| SessionId::from_uuid(id.0)),
            ip: self
                .ip
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|e| corrupt("auth_events.ip", e))?,
            user_agent: self.user_agent,
            dialect: self.dialect,
        })
    }
}

/// `signing_keys`, in column order.
#[derive(Queryable)]
pub(crate) struct SigningKeyRow {
    id: String,
    algorithm: String,
    private_key: Vec<u8>,
    public_key: Option<Vec<u8>>,
    legacy: bool,
    created_at: DateTime<Utc>,
    activated_at: Option<DateTime<Utc>>,
    retired_at: Option<DateTime<Utc>>,
}

impl SigningKeyRow {
    pub(crate) fn into_domain(self) -> Result<SigningKeyRecord, StoreError> {
        Ok(SigningKeyRecord {
            algorithm: KeyAlgorithm::parse(&self.algorithm)
                .ok_or_else(|| corrupt("signing_keys.algorithm", &self.algorithm))?,
            kid: self.id,
            sealed_private_key: self.private_key,
            public_key: self.public_key,
            legacy: self.legacy,
            created_at: self.created_at,
            activated_at: self.activated_at,
            retired_at: self.retired_at,
        })
    }
}
