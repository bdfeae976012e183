//! Signing keys as an operator meets them: the JWKS, `portcullis keys`, the secrets key
//! (required on PostgreSQL, generated beside a SQLite database), what a database dump
//! holds, and the upgrade from the plaintext key of older versions.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use portcullis_crypto::SecretsKey;
use portcullis_domain::SigningKeyRepository as _;
use portcullis_persistence::Database;
use serde_json::{Map, Value};

use crate::support::backend::{Backend, TEST_SECRETS_KEY_B64};
use crate::support::client::Api;
use crate::support::process::{Server, Session, TestDb, run_cli, run_cli_adjusted};

const PASSWORD: &str = "a ship in port is safe";

crate::on_backends! {
    both: [
        jwks_verifies_tokens_across_rotation_and_retirement,
        a_dump_of_the_database_holds_no_usable_key,
    ],
}

fn header_of(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

fn kid_of(token: &str) -> String {
    header_of(token)["kid"].as_str().unwrap().to_owned()
}

/// The key set, checked for its headers and its keys' shape.
async fn jwks(api: &Api) -> Vec<Value> {
    let reply = api.get("/.well-known/jwks.json").await;
    let body = reply.expect(200).clone();
    assert_eq!(
        reply.headers["cache-control"], "public, max-age=300",
        "{:?}",
        reply.headers
    );
    let keys = body["keys"].as_array().unwrap().clone();
    for key in &keys {
        assert_eq!(key["kty"], "OKP", "{key}");
        assert_eq!(key["crv"], "Ed25519", "{key}");
        assert_eq!(key["alg"], "EdDSA", "{key}");
        assert_eq!(key["use"], "sig", "{key}");
        assert!(key["kid"].is_string(), "{key}");
        assert!(key.get("d").is_none(), "private part published: {key}");
    }
    keys
}

/// Verifies `token` as an independent service would: with the JWKS key its `kid`
/// names, EdDSA only, demanding `iss` and `aud`.
fn verify_with_jwks(keys: &[Value], token: &str) -> Result<Map<String, Value>, String> {
    let kid = kid_of(token);
    let key = keys
        .iter()
        .find(|key| key["kid"] == kid.as_str())
        .ok_or_else(|| format!("kid {kid} is not in the JWKS"))?;
    let decoding =
        DecodingKey::from_ed_components(key["x"].as_str().unwrap()).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&["portcullis"]);
    validation.set_audience(&["portcullis"]);
    jsonwebtoken::decode::<Map<String, Value>>(token, &decoding, &validation)
        .map(|data| data.claims)
        .map_err(|e| e.to_string())
}

async fn register(api: &Api, email: &str) -> Session {
    let reply = api.register("Grace Hopper", email, PASSWORD).await;
    Session::from_body(reply.expect(201), "Grace Hopper", None, email)
}

/// Verifies `token` with PyJWT from the server's JWKS, as another service would
/// (`tests/py/verify_token.py`, the example of docs/verifying-tokens.md): the claims,
/// or why it was refused.
fn verify_with_pyjwt(server: &Server<'_>, token: &str) -> Result<Value, String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join("tests/py/.venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make test-py` (part of `make test`)",
        python.display()
    );
    let output = std::process::Command::new(python)
        .arg(root.join("tests/py/verify_token.py"))
        .args([&server.base_url(), "portcullis", "portcullis", token])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok(serde_json::from_str(&stdout).unwrap())
    } else {
        Err(format!(
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

async fn jwks_verifies_tokens_across_rotation_and_retirement(backend: Backend) {
    let db = TestDb::new(backend);
    let server = Server::start(&db);
    let api = server.api();
    let old = register(&api, "grace@example.com").await;
    let header = header_of(&old.tokens.access);
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header_of(&old.tokens.refresh)["typ"], "rt+jwt");
    let old_kid = kid_of(&old.tokens.access);

    let keys = jwks(&api).await;
    assert_eq!(keys.len(), 1);
    let claims = verify_with_jwks(&keys, &old.tokens.access).unwrap();
    assert_eq!(claims["typ"], "access");

    // Rotate from the command line, as an operator would, beside the running server.
    let rotated = run_cli(&db, &["keys", "rotate"], "", &[]);
    rotated.assert_success();
    let new_kid = rotated.stdout.trim().to_owned();
    assert_ne!(new_kid, old_kid);
    let listed = run_cli(&db, &["keys", "list"], "", &[]);
    listed.assert_success();
    assert!(listed.stdout.contains(&old_kid) && listed.stdout.contains(&new_kid));
    assert!(listed.stdout.contains("active"), "{}", listed.stdout);
    assert!(
        listed.stdout.contains("verifying until"),
        "{}",
        listed.stdout
    );

    // The running server sees the new key within a second (not a restart later).
    let keys = jwks(&api).await;
    let kids: Vec<&str> = keys.iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(kids, [new_kid.as_str(), old_kid.as_str()]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let new = register(&api, "ada@example.com").await;
    assert_eq!(kid_of(&new.tokens.access), new_kid);

    for (token, session) in [(&old.tokens.access, &old), (&new.tokens.access, &new)] {
        api.welcome(token).await.expect(200);
        verify_with_jwks(&keys, token).unwrap();
        // An independent library, in another language, from the JWKS alone.
        let claims = verify_with_pyjwt(&server, token).unwrap();
        assert_eq!(claims["sub"], session.user_id.as_str());
    }
    // A refresh token is not an access token, by its header.
    let refused = verify_with_pyjwt(&server, &new.tokens.refresh).unwrap_err();
    assert!(refused.contains("not an access token"), "{refused}");

    // The active key cannot be retired; the old one can, and stops verifying at once.
    run_cli(&db, &["keys", "retire", &new_kid], "", &[]).assert_failure();
    run_cli(&db, &["keys", "retire", &old_kid], "", &[]).assert_success();
    api.welcome(&old.tokens.access)
        .await
        .expect_error(401, "Please authenticate");
    api.refresh(&old.tokens.refresh)
        .await
        .expect_error(401, "Please authenticate");
    api.welcome(&new.tokens.access).await.expect(200);
    let keys = jwks(&api).await;
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kid"], new_kid.as_str());
    assert!(verify_with_jwks(&keys, &old.tokens.access).is_err());
    assert!(verify_with_pyjwt(&server, &old.tokens.access).is_err());
    verify_with_pyjwt(&server, &new.tokens.access).unwrap();
}

/// Every signing key as stored, read straight from the database.
fn stored_keys(db: &TestDb) -> Vec<portcullis_domain::SigningKeyRecord> {
    let database = Database::connect(&db.url(), 1).unwrap();
    database.signing_keys().unwrap()
}

async fn a_dump_of_the_database_holds_no_usable_key(backend: Backend) {
    let db = TestDb::new(backend);
    let server = Server::start(&db);
    register(&server.api(), "grace@example.com").await;
    let rows = stored_keys(&db);
    assert_eq!(rows.len(), 1);
    let secrets = SecretsKey::from_config_str(TEST_SECRETS_KEY_B64).unwrap();
    for row in rows {
        let private = secrets
            .open(&row.kid, row.algorithm, &row.sealed_private_key)
            .unwrap();
        // The stored bytes contain no run of the private key, in any encoding we use.
        assert!(
            !row.sealed_private_key
                .windows(8)
                .any(|w| private.windows(8).any(|p| p == w))
        );
        let encoded = URL_SAFE_NO_PAD.encode(private.as_slice());
        assert!(
            !String::from_utf8_lossy(&row.sealed_private_key).contains(&encoded[..12]),
            "the private key is stored readable"
        );
        // And the public key is what the private one derives.
        let seed = <[u8; 32]>::try_from(private.as_slice()).unwrap();
        let public = ed25519_public(&seed);
        assert_eq!(row.public_key.as_deref(), Some(&public[..]));
    }
}

/// The Ed25519 public key of `seed`.
fn ed25519_public(seed: &[u8; 32]) -> Vec<u8> {
    ed25519_dalek::SigningKey::from_bytes(seed)
        .verifying_key()
        .to_bytes()
        .to_vec()
}

#[test]
fn postgres_without_a_secrets_key_stops_naming_both_variables() {
    let db = TestDb::new(Backend::Postgres);
    for args in [&["serve"][..], &["keys", "list"][..]] {
        let run = run_cli_adjusted(&db, args, "", |command| {
            command.env_remove("PORTCULLIS_SECRETS_KEY");
        });
        run.assert_failure();
        assert!(
            run.stderr.contains("PORTCULLIS_SECRETS_KEY ")
                && run.stderr.contains("PORTCULLIS_SECRETS_KEY_FILE"),
            "{args:?}: stderr does not name both variables:\n{}",
            run.stderr
        );
    }
}

#[tokio::test]
async fn sqlite_files_and_the_generated_key_are_private() {
    use std::os::unix::fs::PermissionsExt as _;

    let db = TestDb::new(Backend::Sqlite);
    let path = db.sqlite_path().unwrap().to_owned();
    let server = Server::start_adjusted(&db, |command| {
        command.env_remove("PORTCULLIS_SECRETS_KEY");
    });
    let session = register(&server.api(), "grace@example.com").await;
    let key_file = path.with_file_name("portcullis.db.key");
    for file in [
        path.clone(),
        path.with_file_name("portcullis.db-wal"),
        path.with_file_name("portcullis.db-shm"),
        key_file.clone(),
    ] {
        let mode = std::fs::metadata(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{}: {mode:o}", file.display());
    }
    let logs = server.logs().clone();
    drop(server);
    // The key file is what the database needs: the same key on the next start.
    let server = Server::start_adjusted(&db, |command| {
        command.env_remove("PORTCULLIS_SECRETS_KEY");
    });
    server
        .api()
        .welcome(&session.tokens.access)
        .await
        .expect(200);
    let key_text = std::fs::read_to_string(&key_file).unwrap();
    assert!(
        !logs.text().contains(key_text.trim()),
        "the secrets key was logged"
    );
}

/// An installation from before signing keys: the HS256 key in `server_secrets`, in the
/// clear, and tokens without `kid`. Upgrading logs no one out.
#[tokio::test]
async fn the_plaintext_key_of_older_versions_is_imported_and_its_sessions_live_on() {
    let legacy_b64 = "bGVnYWN5LXBsYWludGV4dC1rZXktMDEyMzQ1Njc4OWFi";
    let legacy = base64::engine::general_purpose::STANDARD
        .decode(legacy_b64)
        .unwrap();
    let db = TestDb::new(Backend::Sqlite);

    // A session made with that key (the fixed-key codec), its tokens then re-signed
    // as the old version wrote them: HS256, no kid, typ JWT.
    let server = Server::start_with(&db, &[("PORTCULLIS_JWT_SECRET", legacy_b64)]);
    let session = register(&server.api(), "grace@example.com").await;
    drop(server);
    let resign = |token: &str| {
        let payload = token.split('.').nth(1).unwrap();
        let claims: Map<String, Value> =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&legacy),
        )
        .unwrap()
    };
    let old_access = resign(&session.tokens.access);
    let old_refresh = resign(&session.tokens.refresh);
    assert!(header_of(&old_access).get("kid").is_none());
    let database = Database::connect(&db.url(), 1).unwrap();
    database
        .load_or_create_secret("jwt_hs256", || legacy.clone())
        .unwrap();

    // The upgrade: no PORTCULLIS_JWT_SECRET, a secrets key, EdDSA by default.
    let server = Server::start(&db);
    let api = server.api();
    api.welcome(&old_access).await.expect(200);
    let reply = api.refresh(&old_refresh).await;
    let rotated = crate::support::process::Tokens::from_body(reply.expect(200));
    assert_eq!(header_of(&rotated.access)["alg"], "EdDSA");
    api.welcome(&rotated.access).await.expect(200);
    // The plaintext row is gone, and the imported key is sealed and never published.
    let fresh = database
        .load_or_create_secret("jwt_hs256", || b"nothing".to_vec())
        .unwrap();
    assert_eq!(fresh, b"nothing");
    let rows = database.signing_keys().unwrap();
    let imported = rows.iter().find(|row| row.legacy).unwrap();
    assert!(
        !imported
            .sealed_private_key
            .windows(legacy.len())
            .any(|w| w == legacy.as_slice())
    );
    let keys = jwks(&api).await;
    assert!(keys.iter().all(|key| key["kid"] != imported.kid.as_str()));
    // A kid-less token signed with anything else is refused.
    let forged = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &serde_json::json!({"sub": "x"}),
        &EncodingKey::from_secret(b"another key, 32 bytes long......"),
    )
    .unwrap();
    api.welcome(&forged)
        .await
        .expect_error(401, "Please authenticate");
}
