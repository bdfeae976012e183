//! The use cases against mockall mocks of every port.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use mockall::predicate::{always, eq};
use portcullis_domain::contract::fixtures::event;
use portcullis_domain::*;
use serde_json::json;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T12:00:00.123456Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// A token codec mock whose tokens are keys into a table of the claims issued, so the
/// tests see exactly what the service asked to sign.
fn codec(issued: Arc<Mutex<HashMap<String, Claims>>>) -> MockTokenCodec {
    let mut codec = MockTokenCodec::new();
    let table = issued.clone();
    codec.expect_issue().returning(move |claims| {
        let token = format!("{}-{}", claims.kind.as_str(), claims.token_id);
        table.lock().unwrap().insert(token.clone(), claims.clone());
        Ok(token)
    });
    codec.expect_verify().returning(move |token, kind, now| {
        let claims = issued
            .lock()
            .unwrap()
            .get(token)
            .cloned()
            .ok_or(TokenVerifyError::Invalid)?;
        if claims.kind != kind {
            return Err(TokenVerifyError::Invalid);
        }
        if claims.expires_at <= now {
            return Err(TokenVerifyError::Expired(Box::new(claims)));
        }
        Ok(claims)
    });
    codec
}

fn user(email: &str, username: Option<&str>) -> User {
    User {
        id: UserId::generate(now()),
        email: Some(Email::parse(email).unwrap()),
        username: username.map(|u| Username::parse(u).unwrap()),
        name: DisplayName::parse("Ada").unwrap(),
        bio: None,
        email_verified: false,
        must_change_password: false,
        profile: Profile::default(),
        password_hash: PasswordHash::new("stored-hash".into()),
        password_changed_at: now(),
        created_at: now(),
        updated_at: now(),
        credential_version: 0,
    }
}

fn session_of(user: &User) -> Session {
    Session {
        id: SessionId::generate(now()),
        user_id: user.id,
        created_at: now(),
        expires_at: now() + TimeDelta::days(30),
        last_refreshed_at: None,
        revoked_at: None,
        revocation_reason: None,
        credential_version: user.credential_version,
    }
}

/// The mocks, configured per test, then turned into a service.
struct Harness {
    users: MockUserRepository,
    sessions: MockSessionRepository,
    resets: MockResetTokenRepository,
    hasher: MockPasswordHasher,
    mailer: MockMailer,
    /// Real: the events a use case records are part of what these tests check.
    events: portcullis_memory::MemoryStore,
    issued: Arc<Mutex<HashMap<String, Claims>>>,
}

impl Harness {
    fn new() -> Self {
        Self {
            users: MockUserRepository::new(),
            sessions: MockSessionRepository::new(),
            resets: MockResetTokenRepository::new(),
            hasher: MockPasswordHasher::new(),
            mailer: MockMailer::new(),
            events: portcullis_memory::MemoryStore::new(),
            issued: Arc::default(),
        }
    }

    fn service(self) -> (AuthService, Arc<Mutex<HashMap<String, Claims>>>) {
        let mut clock = MockClock::new();
        clock.expect_now().returning(now);
        let issued = self.issued.clone();
        let ports = Ports {
            users: Arc::new(self.users),
            sessions: Arc::new(self.sessions),
            reset_tokens: Arc::new(self.resets),
            hasher: Arc::new(self.hasher),
            tokens: Arc::new(codec(self.issued)),
            clock: Arc::new(clock),
            mailer: Arc::new(self.mailer),
            // Real counters: the throttling rules are part of what these tests run.
            throttles: Arc::new(portcullis_memory::MemoryStore::new()),
            events: Arc::new(self.events.clone()),
            outbox: Arc::new(self.events.clone()),
            clients: Arc::new(self.events),
        };
        (AuthService::new(ports, AuthConfig::default()), issued)
    }

    /// Pre-issues a token of `kind` for `session`, as an earlier call would have.
    fn token(
        &self,
        session: &Session,
        kind: TokenKind,
        expires_at: DateTime<Utc>,
    ) -> (String, Claims) {
        let claims = Claims {
            subject: session.user_id,
            session: session.id,
            token_id: TokenId::generate(now()),
            kind,
            issued_at: now() - TimeDelta::minutes(1),
            expires_at,
            extra: serde_json::Map::new(),
        };
        let token = format!("{}-{}", kind.as_str(), claims.token_id);
        self.issued
            .lock()
            .unwrap()
            .insert(token.clone(), claims.clone());
        (token, claims)
    }
}

fn registration<'a>(password: &'a Password, confirm: &'a Password) -> Registration<'a> {
    Registration {
        name: "Ada Lovelace",
        bio: Some("Analyst"),
        email: Some("Ada@Example.com"),
        username: None,
        password,
        confirm: Some(confirm),
    }
}

// ---- register ----

#[test]
fn register_creates_user_and_first_session() {
    let mut h = Harness::new();
    h.users
        .expect_find_by_email()
        .times(1)
        .returning(|_| Ok(None));
    h.hasher
        .expect_hash()
        .times(1)
        .returning(|p| Ok(PasswordHash::new(format!("hashed:{}", p.expose()))));
    h.users
        .expect_create()
        .times(1)
        .withf(|u, _| {
            u.email.as_ref().map(Email::as_str) == Some("ada@example.com")
                && u.password_hash.as_str() == "hashed:correct horse"
        })
        .returning(|_, _| Ok(()));
    let created: Arc<Mutex<Option<(Session, RefreshTokenRecord)>>> = Arc::default();
    let sink = created.clone();
    h.sessions
        .expect_create()
        .times(1)
        .returning(move |s, r, _| {
            *sink.lock().unwrap() = Some((s.clone(), r.clone()));
            Ok(())
        });
    let (service, issued) = h.service();
    let password = Password::new("correct horse");
    let done = service
        .register(registration(&password, &password), &IssueOptions::default())
        .unwrap();

    assert_eq!(done.user.name.as_str(), "Ada Lovelace");
    assert_eq!(done.user.bio.as_ref().unwrap().as_str(), "Analyst");
    let (session, record) = created.lock().unwrap().clone().unwrap();
    assert_eq!(session.user_id, done.user.id);
    assert_eq!(session.expires_at, now() + TimeDelta::days(30));
    assert_eq!(done.session_id, session.id);
    let issued = issued.lock().unwrap();
    let access = &issued[&done.tokens.access.token];
    let refresh = &issued[&done.tokens.refresh.token];
    assert_eq!(access.kind, TokenKind::Access);
    assert_eq!(refresh.kind, TokenKind::Refresh);
    assert_eq!(
        refresh.token_id, record.id,
        "the stored record is the refresh token's jti"
    );
    assert_eq!(access.session, session.id);
    // Whole seconds, as a JWT carries them.
    assert_eq!(
        access.expires_at,
        DateTime::from_timestamp(now().timestamp() + 1800, 0).unwrap()
    );
    assert_eq!(
        refresh.expires_at,
        DateTime::from_timestamp(now().timestamp() + 14 * 86400, 0).unwrap()
    );
    assert_eq!(done.tokens.access.expires_at, access.expires_at);
}

#[test]
fn register_reports_every_invalid_field_without_touching_ports() {
    let (service, _) = Harness::new().service();
    let password = Password::new("short");
    let other = Password::new("different");
    let form = Registration {
        name: "  ",
        bio: Some(&"b".repeat(501)),
        email: Some("not-an-email"),
        username: None,
        password: &password,
        confirm: Some(&other),
    };
    let Err(RegisterError::Invalid(errors)) = service.register(form, &IssueOptions::default())
    else {
        panic!("expected validation errors");
    };
    let fields: Vec<_> = errors.fields().iter().map(|f| f.field).collect();
    assert_eq!(fields, ["name", "bio", "email", "password", "confirm"]);
    assert_eq!(errors.fields()[4].message, "Passwords don't match");
}

#[test]
fn register_rejects_password_equal_to_email() {
    let (service, _) = Harness::new().service();
    let password = Password::new("ada@example.com");
    let Err(RegisterError::Invalid(errors)) =
        service.register(registration(&password, &password), &IssueOptions::default())
    else {
        panic!("expected validation errors");
    };
    assert_eq!(errors.fields()[0].field, "password");
}

#[test]
fn register_with_taken_email_skips_hashing() {
    let mut h = Harness::new();
    h.users
        .expect_find_by_email()
        .returning(|_| Ok(Some(user("ada@example.com", None))));
    h.hasher.expect_hash().never();
    let (service, _) = h.service();
    let password = Password::new("correct horse");
    assert!(matches!(
        service.register(registration(&password, &password), &IssueOptions::default()),
        Err(RegisterError::EmailTaken)
    ));
}

#[test]
fn register_losing_the_race_reports_email_taken_and_starts_no_session() {
    let mut h = Harness::new();
    h.users.expect_find_by_email().returning(|_| Ok(None));
    h.hasher
        .expect_hash()
        .returning(|_| Ok(PasswordHash::new("h".into())));
    h.users
        .expect_create()
        .returning(|_, _| Err(CreateUserError::EmailTaken));
    h.sessions.expect_create().never();
    let (service, _) = h.service();
    let password = Password::new("correct horse");
    assert!(matches!(
        service.register(registration(&password, &password), &IssueOptions::default()),
        Err(RegisterError::EmailTaken)
    ));
}

#[test]
fn register_with_a_username_alone_creates_an_account_without_email() {
    let mut h = Harness::new();
    h.users.expect_find_by_email().never();
    h.users
        .expect_find_by_username()
        .times(1)
        .returning(|_| Ok(None));
    h.hasher
        .expect_hash()
        .times(1)
        .returning(|_| Ok(PasswordHash::new("h".into())));
    h.users
        .expect_create()
        .times(1)
        .withf(|u, _| u.email.is_none() && u.username.as_ref().map(Username::as_str) == Some("ada"))
        .returning(|_, _| Ok(()));
    h.sessions
        .expect_create()
        .times(1)
        .returning(|_, _, _| Ok(()));
    let (service, _) = h.service();
    let password = Password::new("correct horse");
    let form = Registration {
        email: None,
        username: Some("ada"),
        confirm: None,
        ..registration(&password, &password)
    };
    let done = service.register(form, &IssueOptions::default()).unwrap();
    assert_eq!(done.user.email, None);
}

#[test]
fn register_with_a_taken_username_skips_hashing() {
    let mut h = Harness::new();
    h.users
        .expect_find_by_username()
        .returning(|_| Ok(Some(user("grace@example.com", Some("ada")))));
    h.hasher.expect_hash().never();
    let (service, _) = h.service();
    let password = Password::new("correct horse");
    let form = Registration {
        email: None,
        username: Some("ADA"),
        ..registration(&password, &password)
    };
    assert!(matches!(
        service.register(form, &IssueOptions::default()),
        Err(RegisterError::UsernameTaken)
    ));
}

#[test]
fn register_needs_an_email_or_a_username() {
    let (service, _) = Harness::new().service();
    let password = Password::new("correct horse");
    let form = Registration {
        email: None,
        username: None,
        ..registration(&password, &password)
    };
    let Err(RegisterError::Invalid(errors)) = service.register(form, &IssueOptions::default())
    else {
        panic!("expected validation errors");
    };
    assert_eq!(errors.fields()[0].field, "email");
    assert_eq!(
        errors.fields()[0].message,
        "An email or a username is required"
    );
}

#[test]
fn register_store_failure_is_internal() {
    let mut h = Harness::new();
    h.users
        .expect_find_by_email()
        .returning(|_| Err(StoreError::new("connection refused")));
    let (service, _) = h.service();
    let password = Password::new("correct horse");
    assert!(matches!(
        service.register(registration(&password, &password), &IssueOptions::default()),
        Err(RegisterError::Internal(InternalError::Store(_)))
    ));
}

// ---- login ----

fn expect_session_created(h: &mut Harness) {
    h.sessions
        .expect_create()
        .times(1)
        .returning(|_, _, _| Ok(()));
}

#[test]
fn login_by_email_with_right_password() {
    let mut h = Harness::new();
    let stored = user("ada@example.com", Some("ada"));
    let id = stored.id;
    h.users
        .expect_find_by_email()
        .with(eq(Email::parse("ADA@example.com").unwrap()))
        .returning(move |_| Ok(Some(stored.clone())));
    h.hasher
        .expect_verify()
        .times(1)
        .returning(|_, _| Ok(PasswordVerdict::Valid));
    h.users.expect_replace_password_hash().never();
    expect_session_created(&mut h);
    let (service, _) = h.service();
    let done = service
        .login(
            "ADA@example.com",
            &Password::new("correct horse"),
            &IssueOptions::default(),
        )
        .unwrap();
    assert_eq!(done.user.id, id);
}

#[test]
fn login_by_username_uses_the_username_lookup() {
    let mut h = Harness::new();
    let stored = user("ada@example.com", Some("ada"));
    h.users.expect_find_by_email().never();
    h.users
        .expect_find_by_username()
        .with(eq(Username::parse("Ada").unwrap()))
        .returning(move |_| Ok(Some(stored.clone())));
    h.hasher
        .expect_verify()
        .returning(|_, _| Ok(PasswordVerdict::Valid));
    expect_session_created(&mut h);
    let (service, _) = h.service();
    assert!(
        service
            .login(
                "Ada",
                &Password::new("correct horse"),
                &IssueOptions::default()
            )
            .is_ok()
    );
}

#[test]
fn login_unknown_account_costs_one_dummy_verification() {
    let mut h = Harness::new();
    h.users.expect_find_by_email().returning(|_| Ok(None));
    h.hasher
        .expect_hash()
        .times(1)
        .returning(|_| Ok(PasswordHash::new("dummy".into())));
    h.hasher
        .expect_verify()
        .times(2)
        .withf(|_, hash| hash.as_str() == "dummy")
        .returning(|_, _| Ok(PasswordVerdict::Invalid));
    h.sessions.expect_create().never();
    let (service, _) = h.service();
    for _ in 0..2 {
        assert!(matches!(
            service.login(
                "ghost@example.com",
                &Password::new("whatever1"),
                &IssueOptions::default()
            ),
            Err(LoginError::InvalidCredentials)
        ));
    }
}

#[test]
fn login_with_an_impossible_identifier_still_verifies_a_dummy() {
    let mut h = Harness::new();
    h.hasher
        .expect_hash()
        .returning(|_| Ok(PasswordHash::new("dummy".into())));
    h.hasher
        .expect_verify()
        .times(1)
        .returning(|_, _| Ok(PasswordVerdict::Valid));
    let (service, _) = h.service();
    assert!(matches!(
        service.login(
            "not a name!",
            &Password::new("whatever1"),
            &IssueOptions::default()
        ),
        Err(LoginError::InvalidCredentials)
    ));
}

#[test]
fn login_wrong_password_is_the_same_error() {
    let mut h = Harness::new();
    let stored = user("ada@example.com", None);
    h.users
        .expect_find_by_email()
        .returning(move |_| Ok(Some(stored.clone())));
    h.hasher
        .expect_verify()
        .returning(|_, _| Ok(PasswordVerdict::Invalid));
    h.sessions.expect_create().never();
    let (service, _) = h.service();
    assert!(matches!(
        service.login(
            "ada@example.com",
            &Password::new("wrong pass"),
            &IssueOptions::default()
        ),
        Err(LoginError::InvalidCredentials)
    ));
}

#[test]
fn login_with_an_overlong_password_hashes_nothing() {
    let mut h = Harness::new();
    h.hasher.expect_verify().never();
    h.hasher.expect_hash().never();
    h.users.expect_find_by_email().never();
    let (service, _) = h.service();
    assert!(matches!(
        service.login(
            "ada@example.com",
            &Password::new(&"x".repeat(257)),
            &IssueOptions::default()
        ),
        Err(LoginError::InvalidCredentials)
    ));
}

#[test]
fn login_rehashes_an_outdated_hash() {
    let mut h = Harness::new();
    let stored = user("ada@example.com", None);
    let id = stored.id;
    h.users
        .expect_find_by_email()
        .returning(move |_| Ok(Some(stored.clone())));
    h.hasher
        .expect_verify()
        .returning(|_, _| Ok(PasswordVerdict::ValidNeedsRehash));
    h.hasher
        .expect_hash()
        .times(1)
        .returning(|_| Ok(PasswordHash::new("fresh".into())));
    h.users
        .expect_replace_password_hash()
        .times(1)
        .withf(move |uid, verified, new, _| {
            *uid == id && verified.as_str() == "stored-hash" && new.as_str() == "fresh"
        })
        .returning(|_, _, _, _| Ok(true));
    expect_session_created(&mut h);
    let (service, _) = h.service();
    assert!(
        service
            .login(
                "ada@example.com",
                &Password::new("correct horse"),
                &IssueOptions::default()
            )
            .is_ok()
    );
}

#[test]
fn login_issue_options_shape_the_tokens() {
    let mut h = Harness::new();
    let stored = user("ada@example.com", Some("ada"));
    h.users
        .expect_find_by_email()
        .returning(move |_| Ok(Some(stored.clone())));
    h.hasher
        .expect_verify()
        .returning(|_, _| Ok(PasswordVerdict::Valid));
    expect_session_created(&mut h);
    let (service, issued) = h.service();
    let mut options = IssueOptions {
        access_ttl: Some(TimeDelta::days(14)),
        user_claims: Some(|u| {
            let mut m = serde_json::Map::new();
            m.insert(
                "username".into(),
                json!(u.username.as_ref().map(|n| n.as_str())),
            );
            m
        }),
        ..IssueOptions::default()
    };
    options.extra_claims.insert("dialect".into(), json!("test"));
    let done = service
        .login("ada@example.com", &Password::new("correct horse"), &options)
        .unwrap();
    let issued = issued.lock().unwrap();
    let access = &issued[&done.tokens.access.token];
    assert_eq!(access.extra["username"], json!("ada"));
    assert_eq!(access.extra["dialect"], json!("test"));
    assert_eq!(
        access.expires_at.timestamp(),
        now().timestamp() + 14 * 86400
    );
}

// ---- authenticate ----

fn authenticate_harness(session: Session, stored: Option<User>) -> Harness {
    let mut h = Harness::new();
    let found = session.clone();
    h.sessions
        .expect_find()
        .returning(move |_| Ok(Some(found.clone())));
    h.users
        .expect_find_by_id()
        .returning(move |_| Ok(stored.clone()));
    h
}

#[test]
fn authenticate_accepts_a_live_access_token() {
    let owner = user("ada@example.com", None);
    let session = session_of(&owner);
    let h = authenticate_harness(session.clone(), Some(owner.clone()));
    let (token, _) = h.token(&session, TokenKind::Access, now() + TimeDelta::minutes(5));
    let (service, _) = h.service();
    let principal = service.authenticate(&token).unwrap();
    assert_eq!(principal.user.id, owner.id);
    assert_eq!(principal.session.id, session.id);
}

#[test]
fn authenticate_rejects_a_revoked_session() {
    let owner = user("ada@example.com", None);
    let mut session = session_of(&owner);
    session.revoked_at = Some(now());
    let h = authenticate_harness(session.clone(), Some(owner));
    let (token, _) = h.token(&session, TokenKind::Access, now() + TimeDelta::minutes(5));
    let (service, _) = h.service();
    assert!(matches!(
        service.authenticate(&token),
        Err(AuthenticateError::SessionInactive)
    ));
}

#[test]
fn authenticate_rejects_expired_refresh_and_orphaned_tokens() {
    let owner = user("ada@example.com", None);
    let session = session_of(&owner);
    let h = authenticate_harness(session.clone(), None);
    let (expired, _) = h.token(&session, TokenKind::Access, now() - TimeDelta::seconds(1));
    let (refresh, _) = h.token(&session, TokenKind::Refresh, now() + TimeDelta::days(1));
    let (orphan, _) = h.token(&session, TokenKind::Access, now() + TimeDelta::minutes(5));
    let (service, _) = h.service();
    assert!(matches!(
        service.authenticate(&expired),
        Err(AuthenticateError::Expired)
    ));
    assert!(matches!(
        service.authenticate(&refresh),
        Err(AuthenticateError::Invalid)
    ));
    assert!(matches!(
        service.authenticate("garbage"),
        Err(AuthenticateError::Invalid)
    ));
    assert!(matches!(
        service.authenticate(&orphan),
        Err(AuthenticateError::UserGone)
    ));
}

#[test]
fn authenticate_rejects_a_token_whose_subject_does_not_own_the_session() {
    let owner = user("ada@example.com", None);
    let mut session = session_of(&owner);
    let h = authenticate_harness(session.clone(), Some(owner));
    session.user_id = UserId::generate(now());
    let (token, _) = h.token(&session, TokenKind::Access, now() + TimeDelta::minutes(5));
    let (service, _) = h.service();
    assert!(matches!(
        service.authenticate(&token),
        Err(AuthenticateError::Invalid)
    ));
}

// ---- refresh ----

#[test]
fn refresh_rotates_within_the_session_and_keeps_extra_claims() {
    let owner = user("ada@example.com", None);
    let session = session_of(&owner);
    let mut h = Harness::new();
    expect_current_session(&mut h, &owner, &session);
    let (token, presented) = {
        let (token, mut claims) = h.token(&session, TokenKind::Refresh, now() + TimeDelta::days(1));
        claims.extra.insert("identifier".into(), json!("ada"));
        h.issued
            .lock()
            .unwrap()
            .insert(token.clone(), claims.clone());
        (token, claims)
    };
    let jti = presented.token_id;
    let sid = session.id;
    h.sessions
        .expect_rotate()
        .times(1)
        .withf(move |used, successor, at, grace, _| {
            *used == jti
                && successor.session_id == sid
                && *at == now()
                && *grace == TimeDelta::seconds(10)
        })
        .returning(|_, _, _, _, _| Ok(()));
    let (service, issued) = h.service();
    let refreshed = service.refresh(&token).unwrap();
    assert_eq!(refreshed.session_id, session.id);
    let issued = issued.lock().unwrap();
    let new_refresh = &issued[&refreshed.tokens.refresh.token];
    assert_ne!(new_refresh.token_id, jti);
    assert_eq!(new_refresh.extra["identifier"], json!("ada"));
}

#[test]
fn refresh_reuse_revokes_the_whole_session() {
    let owner = user("ada@example.com", None);
    let session = session_of(&owner);
    let mut h = Harness::new();
    expect_current_session(&mut h, &owner, &session);
    let sid = session.id;
    h.sessions
        .expect_rotate()
        .returning(move |_, _, _, _, _| Err(RotateError::AlreadyUsed { session: sid }));
    // The adapter revokes within the rotation; the service must not do it twice.
    h.sessions.expect_revoke().never();
    let (token, _) = h.token(&session, TokenKind::Refresh, now() + TimeDelta::days(1));
    let (service, _) = h.service();
    assert!(matches!(service.refresh(&token), Err(RefreshError::Reused)));
}

#[test]
fn refresh_refusals() {
    let owner = user("ada@example.com", None);
    let live = session_of(&owner);
    let mut revoked = session_of(&owner);
    revoked.revoked_at = Some(now());
    let mut h = Harness::new();
    let (live_c, revoked_c) = (live.clone(), revoked.clone());
    h.sessions.expect_find().returning(move |id| {
        Ok([live_c.clone(), revoked_c.clone()]
            .into_iter()
            .find(|s| s.id == id))
    });
    let stored = owner.clone();
    h.users
        .expect_find_by_id()
        .returning(move |_| Ok(Some(stored.clone())));
    h.sessions
        .expect_rotate()
        .returning(|_, _, _, _, _| Err(RotateError::UnknownToken));
    let (expired, _) = h.token(&live, TokenKind::Refresh, now() - TimeDelta::seconds(1));
    let (access, _) = h.token(&live, TokenKind::Access, now() + TimeDelta::minutes(1));
    let (of_revoked, _) = h.token(&revoked, TokenKind::Refresh, now() + TimeDelta::days(1));
    let (unknown_jti, _) = h.token(&live, TokenKind::Refresh, now() + TimeDelta::days(1));
    let (service, _) = h.service();
    assert!(matches!(
        service.refresh(&expired),
        Err(RefreshError::Expired)
    ));
    assert!(matches!(
        service.refresh(&access),
        Err(RefreshError::Invalid)
    ));
    assert!(matches!(
        service.refresh("garbage"),
        Err(RefreshError::Invalid)
    ));
    assert!(matches!(
        service.refresh(&of_revoked),
        Err(RefreshError::SessionInactive)
    ));
    assert!(matches!(
        service.refresh(&unknown_jti),
        Err(RefreshError::Invalid)
    ));
}

// ---- logout ----

/// `session` found, with `owner`'s credentials still the ones it was made under.
fn expect_current_session(h: &mut Harness, owner: &User, session: &Session) {
    let found = session.clone();
    h.sessions
        .expect_find()
        .returning(move |_| Ok(Some(found.clone())));
    let stored = owner.clone();
    h.users
        .expect_find_by_id()
        .returning(move |_| Ok(Some(stored.clone())));
}

#[test]
fn logout_ends_the_session_of_the_refresh_token() {
    let owner = user("ada@example.com", None);
    let session = session_of(&owner);
    let mut h = Harness::new();
    let (token, claims) = h.token(&session, TokenKind::Refresh, now() + TimeDelta::days(1));
    let (jti, sid) = (claims.token_id, session.id);
    expect_current_session(&mut h, &owner, &session);
    h.sessions
        .expect_end_by_refresh_token()
        .times(1)
        .with(eq(jti), eq(RevocationReason::Logout), eq(now()), always())
        .returning(move |_, _, _, _| Ok(sid));
    let (service, _) = h.service();
    service.logout(&token).unwrap();
}

#[test]
fn logout_refusals_are_one_error() {
    let owner = user("ada@example.com", None);
    let session = session_of(&owner);
    let mut h = Harness::new();
    let (used, _) = h.token(&session, TokenKind::Refresh, now() + TimeDelta::days(1));
    let (expired, _) = h.token(&session, TokenKind::Refresh, now() - TimeDelta::seconds(1));
    expect_current_session(&mut h, &owner, &session);
    h.sessions
        .expect_end_by_refresh_token()
        .returning(|_, _, _, _| Err(EndSessionError::AlreadyUsed));
    let (service, _) = h.service();
    assert!(matches!(service.logout(&used), Err(LogoutError::Reused)));
    for token in [expired.as_str(), "garbage"] {
        assert!(matches!(
            service.logout(token),
            Err(LogoutError::InvalidToken)
        ));
    }
}

// ---- password reset ----

#[test]
fn reset_request_for_unknown_email_does_nothing_visible() {
    let mut h = Harness::new();
    h.users.expect_find_by_email().returning(|_| Ok(None));
    h.resets.expect_create().never();
    h.mailer.expect_send_password_reset().never();
    let (service, _) = h.service();
    service
        .request_password_reset(&Email::parse("ghost@example.com").unwrap())
        .unwrap();
}

#[test]
fn reset_request_stores_only_the_hash_and_queues_the_secret_without_sending() {
    let mut h = Harness::new();
    let stored = user("ada@example.com", None);
    let id = stored.id;
    h.users
        .expect_find_by_email()
        .returning(move |_| Ok(Some(stored.clone())));
    let written: Arc<Mutex<Option<(ResetTokenRecord, QueuedMail)>>> = Arc::default();
    let sink = written.clone();
    h.resets
        .expect_create()
        .times(1)
        .returning(move |record, _, mail| {
            *sink.lock().unwrap() = Some((record.clone(), mail.cloned().unwrap()));
            Ok(())
        });
    // The request never waits on the mail server.
    h.mailer.expect_send_password_reset().never();
    let (service, _) = h.service();
    service
        .request_password_reset(&Email::parse("ada@example.com").unwrap())
        .unwrap();
    let (record, mail) = written.lock().unwrap().clone().unwrap();
    assert_eq!(record.user_id, id);
    assert_eq!(record.token_hash, ResetTokenHash::of(&mail.secret));
    assert_ne!(record.token_hash.as_str(), mail.secret.expose());
    assert_eq!(mail.to.as_str(), "ada@example.com");
    assert_eq!(mail.link_expires_at, now() + TimeDelta::minutes(30));
    assert_eq!((mail.queued_at, mail.attempts), (now(), 0));
}

/// A service over one memory store with `mailer`, and the store.
fn mail_service(
    mailer: MockMailer,
    policy: MailPolicy,
) -> (AuthService, portcullis_memory::MemoryStore) {
    let store = portcullis_memory::MemoryStore::new();
    let mut clock = MockClock::new();
    clock.expect_now().returning(now);
    let ports = Ports {
        users: Arc::new(store.clone()),
        sessions: Arc::new(store.clone()),
        reset_tokens: Arc::new(store.clone()),
        hasher: Arc::new(MockPasswordHasher::new()),
        tokens: Arc::new(codec(Arc::default())),
        clock: Arc::new(clock),
        mailer: Arc::new(mailer),
        throttles: Arc::new(store.clone()),
        events: Arc::new(store.clone()),
        outbox: Arc::new(store.clone()),
        clients: Arc::new(store.clone()),
    };
    let config = AuthConfig {
        mail: policy,
        ..AuthConfig::default()
    };
    (AuthService::new(ports, config), store)
}

fn queue_for(store: &portcullis_memory::MemoryStore, user: &User, link_expires_at: DateTime<Utc>) {
    UserRepository::create(store, user, &event(EventKind::Registration)).unwrap();
    let secret = ResetSecret::from_presented("queued-secret");
    let record = ResetTokenRecord {
        expires_at: link_expires_at,
        ..valid_reset_record(user.id, "queued-secret")
    };
    let mail = QueuedMail {
        id: MailId::generate(now()),
        to: user.email.clone().unwrap(),
        secret,
        link_expires_at,
        queued_at: now(),
        attempts: 0,
    };
    ResetTokenRepository::create(store, &record, &event(EventKind::ResetRequest), Some(&mail))
        .unwrap();
}

#[test]
fn delivered_mail_leaves_the_outbox() {
    let mut mailer = MockMailer::new();
    mailer
        .expect_send_password_reset()
        .times(1)
        .withf(|to, secret, _| {
            to.as_str() == "ada@example.com" && secret.expose() == "queued-secret"
        })
        .returning(|_, _, _| Ok(()));
    let (service, store) = mail_service(mailer, MailPolicy::default());
    queue_for(
        &store,
        &user("ada@example.com", None),
        now() + TimeDelta::minutes(30),
    );
    let round = service.deliver_mail(10).unwrap();
    assert_eq!(
        round,
        DeliveryRound {
            sent: 1,
            retried: 0,
            failed: 0
        }
    );
    assert_eq!(store.status().unwrap(), OutboxStatus::default());
}

#[test]
fn a_failed_delivery_waits_then_is_given_up_after_the_last_attempt() {
    let mut mailer = MockMailer::new();
    mailer
        .expect_send_password_reset()
        .returning(|_, _, _| Err(MailError("connection refused".into())));
    let policy = MailPolicy {
        max_attempts: 2,
        ..MailPolicy::default()
    };
    let (service, store) = mail_service(mailer, policy);
    queue_for(
        &store,
        &user("ada@example.com", None),
        now() + TimeDelta::minutes(30),
    );
    let round = service.deliver_mail(10).unwrap();
    assert_eq!(
        round,
        DeliveryRound {
            sent: 0,
            retried: 1,
            failed: 0
        }
    );
    let pending = store.status().unwrap().pending;
    assert_eq!(pending[0].at, now() + policy.retry_base);
    assert_eq!(
        pending[0].last_error.as_deref(),
        Some("mail delivery failed: connection refused")
    );
    // Not due again yet (the clock stands still here).
    assert_eq!(service.deliver_mail(10).unwrap(), DeliveryRound::default());
    // Due again: the second and last attempt fails too.
    let id = pending[0].id;
    store.retry_at(id, now(), "forced due").unwrap();
    let round = service.deliver_mail(10).unwrap();
    assert_eq!(
        round,
        DeliveryRound {
            sent: 0,
            retried: 0,
            failed: 1
        }
    );
    let status = store.status().unwrap();
    assert!(status.pending.is_empty());
    assert_eq!(status.failed[0].id, id);
}

#[test]
fn a_message_whose_link_expired_is_given_up_unsent() {
    let mut mailer = MockMailer::new();
    mailer.expect_send_password_reset().never();
    let (service, store) = mail_service(mailer, MailPolicy::default());
    queue_for(&store, &user("ada@example.com", None), now());
    let round = service.deliver_mail(10).unwrap();
    assert_eq!(
        round,
        DeliveryRound {
            sent: 0,
            retried: 0,
            failed: 1
        }
    );
    assert_eq!(store.status().unwrap().failed.len(), 1);
}

fn valid_reset_record(user_id: UserId, secret: &str) -> ResetTokenRecord {
    ResetTokenRecord {
        token_hash: ResetTokenHash::of(&ResetSecret::from_presented(secret)),
        user_id,
        created_at: now(),
        expires_at: now() + TimeDelta::minutes(30),
        used_at: None,
    }
}

#[test]
fn reset_password_completes_atomically_with_a_fresh_hash() {
    let mut h = Harness::new();
    let stored = user("ada@example.com", None);
    let record = valid_reset_record(stored.id, "the-secret");
    let expected_hash = record.token_hash.clone();
    let id = stored.id;
    h.resets
        .expect_find_valid()
        .returning(move |_, _| Ok(Some(record.clone())));
    h.users
        .expect_find_by_id()
        .returning(move |_| Ok(Some(stored.clone())));
    h.hasher
        .expect_hash()
        .returning(|p| Ok(PasswordHash::new(format!("hashed:{}", p.expose()))));
    h.resets
        .expect_complete_reset()
        .times(1)
        .withf(move |hash, new, at, _| {
            *hash == expected_hash && new.as_str() == "hashed:brand new pass" && *at == now()
        })
        .returning(move |_, _, _, _| {
            Ok(CompletedReset {
                user: id,
                sessions_revoked: 3,
            })
        });
    let (service, _) = h.service();
    let ended = service
        .reset_password("the-secret", &Password::new("brand new pass"))
        .unwrap();
    assert_eq!(ended, 3, "the sessions the store says it ended");
}

#[test]
fn reset_password_refusals() {
    let mut h = Harness::new();
    let stored = user("ada@example.com", None);
    let record = valid_reset_record(stored.id, "known");
    h.resets
        .expect_find_valid()
        .returning(move |hash, _| Ok((*hash == record.token_hash).then(|| record.clone())));
    h.users
        .expect_find_by_id()
        .returning(move |_| Ok(Some(stored.clone())));
    h.hasher
        .expect_hash()
        .returning(|_| Ok(PasswordHash::new("h".into())));
    h.resets
        .expect_complete_reset()
        .returning(|_, _, _, _| Err(CompleteResetError::InvalidToken));
    let (service, _) = h.service();
    assert!(matches!(
        service.reset_password("known", &Password::new("short")),
        Err(ResetPasswordError::Invalid(_))
    ));
    assert!(matches!(
        service.reset_password("unknown", &Password::new("long enough")),
        Err(ResetPasswordError::InvalidToken)
    ));
    assert!(matches!(
        service.reset_password("known", &Password::new("ADA@example.com")),
        Err(ResetPasswordError::Invalid(_))
    ));
    // Lost the race to a concurrent reset with the same token.
    assert!(matches!(
        service.reset_password("known", &Password::new("long enough")),
        Err(ResetPasswordError::InvalidToken)
    ));
}

#[test]
fn create_user_applies_the_policy_and_keeps_the_flags() {
    let mut h = Harness::new();
    h.hasher
        .expect_hash()
        .returning(|_| Ok(PasswordHash::new("h".into())));
    h.users
        .expect_create()
        .withf(|u, _| {
            u.must_change_password && u.username.as_ref().is_some_and(|n| n.as_str() == "ada")
        })
        .returning(|_, _| Ok(()));
    let (service, _) = h.service();
    let new = NewUser {
        email: Some(Email::parse("ada@example.com").unwrap()),
        username: Some(Username::parse("ada").unwrap()),
        name: DisplayName::parse("Ada").unwrap(),
        bio: None,
        must_change_password: true,
        profile: Profile::default(),
    };
    assert!(matches!(
        service.create_user(new.clone(), &Password::new("ada")),
        Err(RegisterError::Invalid(_))
    ));
    let created = service
        .create_user(new, &Password::new("a long password"))
        .unwrap();
    assert!(created.must_change_password);
}

// ---- guarded refresh ----

/// A harness whose session store knows `session` and whose rotation succeeds `rotations`
/// times (zero: any rotation fails the test).
fn guarded_harness(owner: &User, session: &Session, rotations: usize) -> Harness {
    let mut h = Harness::new();
    let found = session.clone();
    h.sessions
        .expect_find()
        .returning(move |_| Ok(Some(found.clone())));
    h.sessions
        .expect_rotate()
        .times(rotations)
        .returning(|_, _, _, _, _| Ok(()));
    let stored = owner.clone();
    h.users.expect_find_by_username().returning(move |name| {
        Ok(stored
            .username
            .as_ref()
            .is_some_and(|u| u.as_str().eq_ignore_ascii_case(name.as_str()))
            .then(|| stored.clone()))
    });
    let stored = owner.clone();
    h.users
        .expect_find_by_email()
        .returning(move |email| Ok((stored.email.as_ref() == Some(email)).then(|| stored.clone())));
    let stored = owner.clone();
    h.users
        .expect_find_by_id()
        .returning(move |_| Ok(Some(stored.clone())));
    h
}

#[test]
fn guarded_refresh_for_the_named_account() {
    let owner = user("ada@example.com", Some("ada"));
    let session = session_of(&owner);
    let h = guarded_harness(&owner, &session, 2);
    let (first, _) = h.token(&session, TokenKind::Refresh, now() + TimeDelta::days(1));
    let (second, _) = h.token(&session, TokenKind::Refresh, now() + TimeDelta::days(1));
    let (service, _) = h.service();
    for (token, account) in [(&first, "ADA"), (&second, "ada@example.com")] {
        let guard = RefreshGuard {
            account: Some(account),
            ..RefreshGuard::default()
        };
        assert!(
            service
                .refresh_from(&Client::default(), token, guard)
                .is_ok()
        );
    }
}

#[test]
fn guarded_refresh_for_another_account_spends_nothing() {
    let owner = user("ada@example.com", Some("ada"));
    let session = session_of(&owner);
    let h = guarded_harness(&owner, &session, 0);
    let (token, _) = h.token(&session, TokenKind::Refresh, now() + TimeDelta::days(1));
    let (service, _) = h.service();
    for account in ["bob", "bob@example.com", "not a name!"] {
        let guard = RefreshGuard {
            account: Some(account),
            ..RefreshGuard::default()
        };
        assert!(matches!(
            service.refresh_from(&Client::default(), &token, guard),
            Err(RefreshError::Invalid)
        ));
    }
}

#[test]
fn guarded_refresh_accepts_an_expired_access_token_of_the_same_session() {
    let owner = user("ada@example.com", None);
    let session = session_of(&owner);
    let h = guarded_harness(&owner, &session, 1);
    let (refresh, _) = h.token(&session, TokenKind::Refresh, now() + TimeDelta::days(1));
    let (expired_access, _) = h.token(&session, TokenKind::Access, now() - TimeDelta::minutes(5));
    let (service, _) = h.service();
    let guard = RefreshGuard {
        access_token: Some(&expired_access),
        ..RefreshGuard::default()
    };
    assert!(
        service
            .refresh_from(&Client::default(), &refresh, guard)
            .is_ok()
    );
}

#[test]
fn guarded_refresh_refuses_a_foreign_or_forged_access_token() {
    let owner = user("ada@example.com", None);
    let session = session_of(&owner);
    let other_session = session_of(&owner);
    let h = guarded_harness(&owner, &session, 0);
    let (refresh, _) = h.token(&session, TokenKind::Refresh, now() + TimeDelta::days(1));
    let (foreign, _) = h.token(
        &other_session,
        TokenKind::Access,
        now() + TimeDelta::minutes(5),
    );
    let (service, _) = h.service();
    for access in [foreign.as_str(), "forged"] {
        let guard = RefreshGuard {
            access_token: Some(access),
            ..RefreshGuard::default()
        };
        assert!(matches!(
            service.refresh_from(&Client::default(), &refresh, guard),
            Err(RefreshError::Invalid)
        ));
    }
}

// ---- a login racing a password reset ----

/// A reset that completes while a login is hashing (between reading the account and
/// creating its session) leaves that session dead: authenticate, refresh and logout all
/// refuse it, since it was made under the credentials the reset replaced. And the
/// login's re-hash of the old password does not overwrite the new one.
#[test]
fn a_login_racing_a_reset_leaves_no_live_session() {
    let store = portcullis_memory::MemoryStore::new();
    let ada = user("ada@example.com", None);
    UserRepository::create(&store, &ada, &event(EventKind::Registration)).unwrap();
    let secret = ResetSecret::from_presented("reset-secret");
    let reset = ResetTokenRecord {
        token_hash: ResetTokenHash::of(&secret),
        user_id: ada.id,
        created_at: now(),
        expires_at: now() + TimeDelta::hours(1),
        used_at: None,
    };
    ResetTokenRepository::create(&store, &reset, &event(EventKind::ResetRequest), None).unwrap();

    let mut hasher = MockPasswordHasher::new();
    let racing = store.clone();
    let new_hash = PasswordHash::new("new-password-hash".into());
    let replacement = new_hash.clone();
    hasher.expect_verify().times(1).returning(move |_, _| {
        // The reset completes while argon2 runs for the login.
        racing
            .complete_reset(
                &ResetTokenHash::of(&secret),
                &replacement,
                now(),
                &event(EventKind::ResetCompletion),
            )
            .unwrap();
        Ok(PasswordVerdict::ValidNeedsRehash)
    });
    hasher
        .expect_hash()
        .returning(|_| Ok(PasswordHash::new("rehash-of-the-old-password".into())));
    let mut clock = MockClock::new();
    clock.expect_now().returning(now);
    let issued: Arc<Mutex<HashMap<String, Claims>>> = Arc::default();
    let service = AuthService::new(
        Ports {
            users: Arc::new(store.clone()),
            sessions: Arc::new(store.clone()),
            reset_tokens: Arc::new(store.clone()),
            hasher: Arc::new(hasher),
            tokens: Arc::new(codec(issued)),
            clock: Arc::new(clock),
            mailer: Arc::new(MockMailer::new()),
            throttles: Arc::new(store.clone()),
            events: Arc::new(store.clone()),
            outbox: Arc::new(store.clone()),
            clients: Arc::new(store.clone()),
        },
        AuthConfig::default(),
    );

    let login = service
        .login(
            "ada@example.com",
            &Password::new("old password"),
            &IssueOptions::default(),
        )
        .unwrap();
    assert!(matches!(
        service.authenticate(&login.tokens.access.token),
        Err(AuthenticateError::SessionInactive)
    ));
    assert!(matches!(
        service.refresh(&login.tokens.refresh.token),
        Err(RefreshError::SessionInactive)
    ));
    assert!(matches!(
        service.logout(&login.tokens.refresh.token),
        Err(LogoutError::InvalidToken)
    ));
    assert_eq!(
        store.find_by_id(ada.id).unwrap().unwrap().password_hash,
        new_hash,
        "the re-hash of the old password did not overwrite the new one"
    );
}
