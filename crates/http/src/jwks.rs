//! `GET /.well-known/jwks.json`: the public keys that verify Portcullis's tokens
//! (RFC 7517), so other services can verify them without being able to mint them.

use actix_web::http::header::{ALLOW, CACHE_CONTROL};
use actix_web::{HttpResponse, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_domain::{KeyAlgorithm, PublishedKey};
use serde_json::{Value, json};

use crate::blocking::run_blocking;
use crate::state::AppState;

/// The path, fixed by convention (RFC 8414 §3 uses the same `.well-known` space).
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// How long a client may cache the key set: rotation publishes a new key at once, and
/// a superseded key stays published as long as its tokens live, far longer than this.
const MAX_AGE_SECS: u32 = 300;

pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(JWKS_PATH)
            .route(web::get().to(jwks))
            .default_service(web::to(method_not_allowed)),
    );
}

async fn method_not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((ALLOW, "GET"))
        .json(json!({"error": "method not allowed"}))
}

/// One key as a JWK (RFC 8037 for Ed25519); `None` for an algorithm that has no
/// public form (never published anyway).
fn jwk(key: &PublishedKey) -> Option<Value> {
    match key.algorithm {
        KeyAlgorithm::EdDSA => Some(json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(&key.public_key),
            "kid": key.kid,
            "alg": "EdDSA",
            "use": "sig",
        })),
        KeyAlgorithm::HS256 => None,
    }
}

async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    let auth = state.auth.clone();
    // The codec may reload its keys from the database: off the async runtime.
    let Ok(keys) = run_blocking(move || auth.published_keys()).await else {
        tracing::error!("the key-set task failed");
        return HttpResponse::InternalServerError().json(json!({"error": "internal error"}));
    };
    let keys: Vec<Value> = keys.iter().filter_map(jwk).collect();
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, format!("public, max-age={MAX_AGE_SECS}")))
        .json(json!({ "keys": keys }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_keys_are_okp_jwks_and_hmac_keys_are_never_published() {
        let key = PublishedKey {
            kid: "abc".into(),
            algorithm: KeyAlgorithm::EdDSA,
            public_key: vec![0xfb; 32],
        };
        let jwk = jwk(&key).unwrap();
        assert_eq!(jwk["kty"], "OKP");
        assert_eq!(jwk["crv"], "Ed25519");
        assert_eq!(jwk["alg"], "EdDSA");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["kid"], "abc");
        let x = jwk["x"].as_str().unwrap();
        assert!(!x.contains(['+', '/', '=']), "{x}");
        assert_eq!(URL_SAFE_NO_PAD.decode(x).unwrap(), vec![0xfb; 32]);
        let hmac = PublishedKey {
            algorithm: KeyAlgorithm::HS256,
            ..key
        };
        assert!(super::jwk(&hmac).is_none());
    }
}
