//! `signing_keys` on both backends: the `SigningKeyRepository` port and the import of
//! the plaintext key older versions left in `server_secrets`.

use std::sync::{Arc, Barrier};
use std::thread;

use chrono::{DateTime, TimeDelta, Utc};
use portcullis_domain::{
    Clock, KeyAlgorithm, SigningKeyRecord, SigningKeyRepository, StoreError, SystemClock,
};
use portcullis_persistence::testing::TestDatabase;

on_each_backend!(
    keys_round_trip_and_retire_once,
    of_concurrent_first_keys_exactly_one_is_stored,
    the_legacy_secret_is_moved_not_copied,
    a_corrupt_algorithm_is_a_store_error,
);

fn now() -> DateTime<Utc> {
    SystemClock.now()
}

fn record(kid: &str, algorithm: KeyAlgorithm, at: DateTime<Utc>) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.into(),
        algorithm,
        sealed_private_key: vec![1, 2, 3, kid.len() as u8],
        public_key: (algorithm == KeyAlgorithm::EdDSA).then(|| vec![9; 32]),
        legacy: false,
        created_at: at,
        activated_at: Some(at),
        retired_at: None,
    }
}

fn keys_round_trip_and_retire_once(t: &TestDatabase) {
    let db = t.database();
    assert!(db.signing_keys().unwrap().is_empty());
    let first = record("k1", KeyAlgorithm::EdDSA, now());
    let second = SigningKeyRecord {
        legacy: true,
        ..record("k2", KeyAlgorithm::HS256, now() + TimeDelta::seconds(1))
    };
    assert!(db.insert_signing_key(&first, true).unwrap());
    assert!(
        !db.insert_signing_key(&second, true).unwrap(),
        "one is active"
    );
    assert!(db.insert_signing_key(&second, false).unwrap());
    assert_eq!(db.signing_keys().unwrap(), [first.clone(), second.clone()]);
    assert_eq!(db.find_signing_key("k2").unwrap(), Some(second));
    assert_eq!(db.find_signing_key("nope").unwrap(), None);
    // A clash of kids is a store error.
    assert!(db.insert_signing_key(&first, false).is_err());

    let at = now();
    assert!(db.retire_signing_key("k1", at).unwrap());
    assert!(
        !db.retire_signing_key("k1", at + TimeDelta::hours(1))
            .unwrap()
    );
    assert!(!db.retire_signing_key("nope", at).unwrap());
    let retired = db.find_signing_key("k1").unwrap().unwrap();
    assert_eq!(retired.retired_at, Some(at), "the first retirement is kept");
}

fn of_concurrent_first_keys_exactly_one_is_stored(t: &TestDatabase) {
    const THREADS: usize = 6;
    let barrier = Arc::new(Barrier::new(THREADS));
    let stored: Vec<bool> = thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let barrier = barrier.clone();
                let db = t.database().clone();
                scope.spawn(move || {
                    barrier.wait();
                    db.insert_signing_key(
                        &record(&format!("k{i}"), KeyAlgorithm::EdDSA, now()),
                        true,
                    )
                    .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(stored.iter().filter(|s| **s).count(), 1, "{stored:?}");
    assert_eq!(t.database().signing_keys().unwrap().len(), 1);
}

fn the_legacy_secret_is_moved_not_copied(t: &TestDatabase) {
    let db = t.database();
    let plaintext = b"an old plaintext HS256 key 32 b!".to_vec();
    db.load_or_create_secret("jwt_hs256", || plaintext.clone())
        .unwrap();
    // A seal that fails imports nothing and keeps the plaintext row.
    let failed = db.import_legacy_secret("jwt_hs256", |_, _| Err("no randomness".into()));
    assert!(matches!(failed, Err(StoreError { .. })));
    assert!(db.signing_keys().unwrap().is_empty());

    let imported = db
        .import_legacy_secret("jwt_hs256", |secret, stored_at| {
            assert_eq!(secret, plaintext.as_slice());
            Ok(SigningKeyRecord {
                legacy: true,
                // Stands in for the sealed key: anything but the plaintext.
                sealed_private_key: secret.iter().map(|b| b ^ 0x5a).collect(),
                ..record("legacy-1", KeyAlgorithm::HS256, stored_at)
            })
        })
        .unwrap()
        .unwrap();
    assert_eq!(db.signing_keys().unwrap(), [imported]);
    // Gone from server_secrets: nothing to import a second time.
    assert!(
        db.import_legacy_secret("jwt_hs256", |_, _| panic!("imported twice"))
            .unwrap()
            .is_none()
    );
    let fresh = db
        .load_or_create_secret("jwt_hs256", || b"new".to_vec())
        .unwrap();
    assert_eq!(fresh, b"new");
}

fn a_corrupt_algorithm_is_a_store_error(t: &TestDatabase) {
    let db = t.database();
    db.insert_signing_key(&record("k1", KeyAlgorithm::HS256, now()), false)
        .unwrap();
    // The CHECK constraint keeps an unknown algorithm out in the first place.
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        t.execute("UPDATE signing_keys SET algorithm = 'none' WHERE id = 'k1'")
    }));
    assert!(refused.is_err(), "the database accepted alg none");
    assert_eq!(db.signing_keys().unwrap()[0].algorithm, KeyAlgorithm::HS256);
}
