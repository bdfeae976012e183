//! Accounts moved in with the password hashes of the application Portcullis replaced
//! (issue 11, "Foreign hashes"): bcrypt as the ioweyou and authapi applications and
//! PocketBase made them, Django's PBKDF2. Their owners log in through every dialect
//! with their old passwords, and the first login stores an argon2id hash in place of
//! the foreign one; a wrong password changes nothing. An account moved in without a
//! password is refused as a wrong password is, until a reset gives it one.

use chrono::Utc;
use portcullis_domain::{
    AuthEvent, Client, DisplayName, Email, EventKind, EventOutcome, PasswordHash, Profile, User,
    UserId, UserRepository, Username,
};
use serde_json::json;

use crate::support::app::TestApp;
use crate::support::backend::Backend;
use crate::support::logins::{EVERY_PATH, Outcome, Via, attempt};

crate::on_backends! {
    both: [
        foreign_hashes_log_in_through_every_dialect_and_become_argon2id,
        a_wrong_password_leaves_the_foreign_hash_alone,
        an_account_without_a_password_logs_in_only_after_a_reset,
    ],
}

const PASSWORD: &str = "correct horse battery staple";

/// Made by Python's `bcrypt` 5.0.0 and by Django's formula
/// (`hashlib.pbkdf2_hmac("sha256", PASSWORD, salt, 1000)`), for `PASSWORD`.
const FOREIGN: [(&str, &str); 4] = [
    (
        "bcrypt 2a",
        "$2a$04$3z29Ix5bETSlqvIzG57Hj.bWQ0F/q2H/HN/RpXdogsvNTBMV.BWS.",
    ),
    (
        "bcrypt 2b, cost 10",
        "$2b$10$AtCWD0IYm/fHQh3nqBO69ekB6zc1ra1XkfgDcijuDRgiZiY43Jdxq",
    ),
    (
        "bcrypt 2y",
        "$2y$05$eqlRkGYyjLqUhcq/7nJS9eYiAUQSnjHuB3wZcCFecjpzlSOjUPSR6",
    ),
    (
        "django pbkdf2_sha256",
        "pbkdf2_sha256$1000$seasalt1234$JlBQ/OWmu3PcCFg2koQd315wDykzd702rqDsH8M7iWI=",
    ),
];

/// Stores an account whose password hash is `hash`, as an import would.
async fn moved_in(app: &TestApp, username: &str, hash: &str) -> UserId {
    moved_in_with(app, username, PasswordHash::new(hash.to_owned())).await
}

async fn moved_in_with(app: &TestApp, username: &str, password_hash: PasswordHash) -> UserId {
    let now = Utc::now();
    let user = User {
        id: UserId::generate(now),
        email: Some(Email::parse(&format!("{username}@example.com")).unwrap()),
        username: Some(Username::parse(username).unwrap()),
        name: DisplayName::parse("Moved In").unwrap(),
        bio: None,
        email_verified: true,
        must_change_password: false,
        profile: Profile::default(),
        password_hash,
        password_changed_at: now,
        created_at: now,
        updated_at: now,
        credential_version: 0,
    };
    let id = user.id;
    let registered = AuthEvent::new(
        EventKind::Registration,
        EventOutcome::Success,
        now,
        &Client::default(),
    )
    .for_user(id);
    let database = app.database.database().clone();
    tokio::task::spawn_blocking(move || UserRepository::create(&database, &user, &registered))
        .await
        .unwrap()
        .unwrap();
    id
}

async fn stored_hash(app: &TestApp, id: UserId) -> String {
    let database = app.database.database().clone();
    tokio::task::spawn_blocking(move || database.find_by_id(id))
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .password_hash
        .as_str()
        .to_owned()
}

async fn foreign_hashes_log_in_through_every_dialect_and_become_argon2id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (format, hash) in FOREIGN {
        for (n, via) in EVERY_PATH.into_iter().enumerate() {
            let username = format!("{}{n}", format.replace([' ', ','], "").to_lowercase());
            let id = moved_in(&app, &username, hash).await;
            assert_eq!(
                attempt(&app, via, &username, PASSWORD).await,
                Outcome::LoggedIn,
                "{format} through {via:?}"
            );
            let now = stored_hash(&app, id).await;
            assert!(
                now.starts_with("$argon2id$"),
                "{format} through {via:?}: {now}"
            );
            // The new hash is the one that counts from now on.
            assert_eq!(
                attempt(&app, Via::Authapi, &username, PASSWORD).await,
                Outcome::LoggedIn
            );
            assert_eq!(stored_hash(&app, id).await, now, "re-hashed once only");
        }
    }
}

async fn a_wrong_password_leaves_the_foreign_hash_alone(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (n, (format, hash)) in FOREIGN.into_iter().enumerate() {
        let username = format!("wrong{n}");
        let id = moved_in(&app, &username, hash).await;
        for via in EVERY_PATH {
            assert_eq!(
                attempt(&app, via, &username, "correct horse battery stapler").await,
                Outcome::Refused,
                "{format} through {via:?}"
            );
        }
        assert_eq!(stored_hash(&app, id).await, hash, "{format}");
    }
}

async fn an_account_without_a_password_logs_in_only_after_a_reset(backend: Backend) {
    // Ten refusals in a row: more than the free failures of the default.
    let app = TestApp::spawn_with(backend, &[("PORTCULLIS_THROTTLE_FREE_FAILURES", "20")]).await;
    let id = moved_in_with(&app, "nopassword", PasswordHash::unusable()).await;
    for password in [PASSWORD, "!"] {
        for via in EVERY_PATH {
            assert_eq!(
                attempt(&app, via, "nopassword", password).await,
                Outcome::Refused,
                "{password:?} through {via:?}"
            );
        }
    }
    assert!(stored_hash(&app, id).await == "!", "nothing changed");

    app.post(
        "/auth/forgot-password",
        json!({"email": "nopassword@example.com"}),
    )
    .await
    .expect(200);
    let secret = app
        .mail()
        .await
        .last_secret_for("nopassword@example.com")
        .unwrap();
    app.post(
        &format!("/auth/reset-password?token={secret}"),
        json!({"password": "a brand new secret"}),
    )
    .await
    .expect(200);
    for via in EVERY_PATH {
        assert_eq!(
            attempt(&app, via, "nopassword", "a brand new secret").await,
            Outcome::LoggedIn,
            "{via:?}"
        );
    }
}
