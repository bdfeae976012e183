//! The bare JWT endpoint: `POST /auth` verifies an HS256 bearer token (signature,
//! `exp`, `iss`, `aud`, `typ`) with the jsonwebtoken crate and answers 200 with a tiny
//! JSON body, 401 otherwise. Nothing else: no session, no database. What an
//! authenticated Portcullis request costs on top of this is the price of its sessions.

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::http::header::AUTHORIZATION;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use anyhow::{Context, bail};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The environment variable holding the HMAC key, base64 of at least 32 bytes (the
/// harness generates one per run).
const SECRET_ENV: &str = "PORTCULLIS_BENCH_JWT_SECRET";
/// The claims Portcullis writes by default, so the tokens are alike.
const ISSUER: &str = "portcullis";
const AUDIENCE: &str = "portcullis";
/// Portcullis's default leeway on `exp`.
const LEEWAY_SECS: u64 = 5;

#[derive(clap::Args, Debug)]
pub(crate) struct ServeArgs {
    /// Listen address (port 0 picks a free one; the address is printed)
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: SocketAddr,
    /// HTTP worker threads (default: one per core, as the server)
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=512))]
    workers: Option<u16>,
    /// The HMAC key: base64 of at least 32 random bytes
    #[arg(long, env = SECRET_ENV, hide_env_values = true, value_parser = parse_secret)]
    secret: Secret,
}

#[derive(clap::Args, Debug)]
pub(crate) struct MintArgs {
    /// How many tokens (each of its own subject and session), one per line
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    count: u32,
    /// Lifetime of the tokens, in seconds
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(i64).range(1..=86_400))]
    ttl_secs: i64,
    /// The HMAC key: base64 of at least 32 random bytes
    #[arg(long, env = SECRET_ENV, hide_env_values = true, value_parser = parse_secret)]
    secret: Secret,
}

/// The HMAC key; `Debug` never shows it.
#[derive(Clone)]
pub(crate) struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

fn parse_secret(text: &str) -> Result<Secret, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text.trim()))
        .map_err(|_| "not base64".to_owned())?;
    if bytes.len() < 32 {
        return Err(format!(
            "{SECRET_ENV} must hold at least 32 bytes; it has {}",
            bytes.len()
        ));
    }
    Ok(Secret(bytes))
}

/// Claims shaped like Portcullis's access tokens.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    sid: String,
    jti: String,
    iat: i64,
    exp: i64,
    iss: String,
    aud: String,
    typ: String,
}

struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl Verifier {
    fn new(secret: &Secret) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Self {
            key: DecodingKey::from_secret(&secret.0),
            validation,
        }
    }

    /// The token's subject, if it is a live access token of ours.
    fn verify(&self, token: &str) -> Option<String> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).ok()?;
        (data.claims.typ == "access").then_some(data.claims.sub)
    }
}

/// The token of `Authorization: Bearer <token>` (scheme in any case), if any.
fn bearer(request: &HttpRequest) -> Option<&str> {
    let value = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

async fn auth(request: HttpRequest, verifier: web::Data<Verifier>) -> HttpResponse {
    match bearer(&request).and_then(|token| verifier.verify(token)) {
        Some(subject) => HttpResponse::Ok().json(json!({ "message": "ok", "sub": subject })),
        None => HttpResponse::Unauthorized().json(json!({ "message": "Please authenticate" })),
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

pub(crate) fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let verifier = web::Data::from(Arc::new(Verifier::new(&args.secret)));
    let workers = args.workers.map_or_else(crate::cores, usize::from);
    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(move || {
            App::new()
                .app_data(verifier.clone())
                .route("/auth", web::post().to(auth))
                .route("/healthz", web::get().to(healthz))
        })
        .workers(workers)
        .shutdown_timeout(1)
        .bind(args.bind)
        .with_context(|| format!("cannot listen on {}", args.bind))?;
        let addrs: Vec<String> = server.addrs().iter().map(ToString::to_string).collect();
        crate::print_json(&json!({
            "server": "bare-jwt",
            "listening": addrs,
            "workers": workers,
        }))?;
        server.run().await.context("serving")
    })
}

pub(crate) fn mint(args: &MintArgs) -> anyhow::Result<()> {
    let key = EncodingKey::from_secret(&args.secret.0);
    let header = Header::new(Algorithm::HS256);
    let now = chrono::Utc::now().timestamp();
    let verifier = Verifier::new(&args.secret);
    let mut tokens = Vec::with_capacity(args.count as usize);
    for _ in 0..args.count {
        let claims = Claims {
            sub: uuid::Uuid::now_v7().to_string(),
            sid: uuid::Uuid::now_v7().to_string(),
            jti: uuid::Uuid::now_v7().to_string(),
            iat: now,
            exp: now + args.ttl_secs,
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            typ: "access".to_owned(),
        };
        let token = jsonwebtoken::encode(&header, &claims, &key).context("signing")?;
        if verifier.verify(&token).is_none() {
            bail!("a minted token does not verify");
        }
        tokens.push(token);
    }
    let mut out = std::io::stdout().lock();
    for token in tokens {
        std::io::Write::write_all(&mut out, token.as_bytes())?;
        std::io::Write::write_all(&mut out, b"\n")?;
    }
    std::io::Write::flush(&mut out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret(vec![7u8; 32])
    }

    fn token(secret: &Secret, exp_offset: i64, typ: &str, aud: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: "s".into(),
            sid: "i".into(),
            jti: "j".into(),
            iat: now,
            exp: now + exp_offset,
            iss: ISSUER.into(),
            aud: aud.into(),
            typ: typ.into(),
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&secret.0),
        )
        .unwrap_or_default()
    }

    #[test]
    fn verifies_live_access_tokens_only() {
        let verifier = Verifier::new(&secret());
        assert_eq!(
            verifier.verify(&token(&secret(), 60, "access", AUDIENCE)),
            Some("s".to_owned())
        );
        assert_eq!(
            verifier.verify(&token(&secret(), -60, "access", AUDIENCE)),
            None
        );
        assert_eq!(
            verifier.verify(&token(&secret(), 60, "refresh", AUDIENCE)),
            None
        );
        assert_eq!(
            verifier.verify(&token(&secret(), 60, "access", "other")),
            None
        );
        assert_eq!(
            verifier.verify(&token(&Secret(vec![8u8; 32]), 60, "access", AUDIENCE)),
            None
        );
        assert_eq!(verifier.verify("not a token"), None);
    }

    #[test]
    fn secrets_must_be_long_base64() {
        assert!(parse_secret("c2hvcnQ=").is_err());
        assert!(parse_secret("***").is_err());
        let long = base64::engine::general_purpose::STANDARD.encode([1u8; 32]);
        assert!(parse_secret(&long).is_ok());
    }
}
