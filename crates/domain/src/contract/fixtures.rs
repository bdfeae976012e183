//! Builders of the records the contract's cases store, for an adapter's own further
//! tests. Each `stored_*` stores what it builds and panics if the store refuses.

use chrono::{DateTime, TimeDelta, Utc};

use crate::{
    AuthEvent, Client, Clock, DisplayName, Email, EventKind, EventOutcome, PasswordHash, Profile,
    RefreshTokenRecord, ResetSecret, ResetTokenHash, ResetTokenRecord, Session, SessionId,
    SessionRepository, SystemClock, TokenId, User, UserId, UserRepository, Username,
};

/// A user, not yet stored, named Ada Lovelace, with `email` and `username`, created
/// now.
///
/// # Panics
///
/// When `email` or `username` does not parse.
pub fn new_user(email: &str, username: Option<&str>) -> User {
    let now = SystemClock.now();
    User {
        id: UserId::generate(now),
        email: Some(Email::parse(email).expect("a valid email")),
        username: username.map(|name| Username::parse(name).expect("a valid username")),
        name: DisplayName::parse("Ada Lovelace").expect("a valid name"),
        bio: None,
        email_verified: false,
        must_change_password: false,
        profile: Profile::default(),
        password_hash: PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$b2xk".into()),
        password_changed_at: now,
        created_at: now,
        updated_at: now,
        credential_version: 0,
    }
}

/// A stored [`new_user`] with `email` and no username.
pub fn stored_user<S: UserRepository + ?Sized>(store: &S, email: &str) -> User {
    let user = new_user(email, None);
    UserRepository::create(store, &user, &event(EventKind::Registration))
        .expect("the user is stored");
    user
}

/// An unused refresh token of `session`, issued at `issued_at`, valid for a day.
pub fn token_for(session: SessionId, issued_at: DateTime<Utc>) -> RefreshTokenRecord {
    RefreshTokenRecord {
        id: TokenId::generate(issued_at),
        session_id: session,
        issued_at,
        expires_at: issued_at + TimeDelta::hours(24),
        used_at: None,
    }
}

/// A stored session of `user`, created at `created_at` and lasting `ttl`, and its
/// first token ([`token_for`] it, issued at `created_at`).
pub fn stored_session<S: SessionRepository + ?Sized>(
    store: &S,
    user: &User,
    created_at: DateTime<Utc>,
    ttl: TimeDelta,
) -> (Session, RefreshTokenRecord) {
    let session = Session {
        id: SessionId::generate(created_at),
        user_id: user.id,
        created_at,
        expires_at: created_at + ttl,
        last_refreshed_at: None,
        revoked_at: None,
        revocation_reason: None,
        credential_version: user.credential_version,
    };
    let token = token_for(session.id, created_at);
    SessionRepository::create(store, &session, &token, None).expect("the session is stored");
    (session, token)
}

/// An unused reset token of `user` for the secret `secret`, created at `created_at`
/// and lasting `ttl`; not yet stored.
pub fn reset_record(
    user: &User,
    secret: &str,
    created_at: DateTime<Utc>,
    ttl: TimeDelta,
) -> ResetTokenRecord {
    ResetTokenRecord {
        token_hash: ResetTokenHash::of(&ResetSecret::from_presented(secret)),
        user_id: user.id,
        created_at,
        expires_at: created_at + ttl,
        used_at: None,
    }
}

/// A successful event of `kind` from no client, now, about no account: what a
/// repository method that records its change is handed.
pub fn event(kind: EventKind) -> AuthEvent {
    AuthEvent::new(
        kind,
        EventOutcome::Success,
        SystemClock.now(),
        &Client::default(),
    )
}
