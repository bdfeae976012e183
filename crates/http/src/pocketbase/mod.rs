//! The pocketbase dialect (`002_*`): a PocketBase-style password login,
//! `POST /auth/login` with `{username, password}`, answering with the auth record and a
//! token, and setting the `pb_auth` cookie the PocketBase JS SDK reads.
//!
//! Every failure is the JSON that the SDK's `ClientResponseError` serialises to, as the
//! document gives it: `{"url", "status", "response": {"code", "message", "data"},
//! "isAbort", "originalError": {"url", "status", "data"}, "name"}`.
//!
//! The path is shared with authapi's login: a body with `username` (and no `email`)
//! comes here.

mod error;
mod request;
mod response;

use std::sync::Arc;

use actix_web::http::Method;
use actix_web::http::header::SET_COOKIE;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use chrono::TimeDelta;
use clap::builder::BoolishValueParser;
use clap::{Arg, ArgAction, value_parser};
use portcullis_domain::{IssueOptions, User};
use serde_json::{Map, Value};

pub use error::PbError;
use request::LoginRequest;
use response::{AuthBody, COLLECTION_ID, RecordBody, TOKEN_TYPE, auth_cookie};

use crate::dialect::{Call, Dialect, Endpoint, Refusal};
use crate::openapi::{BodySchema, EndpointDoc};
use crate::origin::{config_of, origin};
use crate::settings::{DialectSettings, DialectSpec, SettingsError};
use crate::state::HttpConfig;

/// The pocketbase dialect, with its settings `token-ttl-secs` and `cookie`.
pub const DIALECT: DialectSpec = DialectSpec {
    name: "pocketbase",
    settings: PocketbaseConfig::settings,
    build: |settings| Ok(Arc::new(PocketbaseConfig::from_settings(settings)?)),
};

const TOKEN_TTL_KEY: &str = "token-ttl-secs";
const COOKIE_KEY: &str = "cookie";

/// The pocketbase dialect's settings.
#[derive(Clone, Debug)]
pub struct PocketbaseConfig {
    /// Lifetime of the token a pocketbase login returns. Default 1209600 s (14 days),
    /// PocketBase's own default.
    pub token_ttl: TimeDelta,
    /// Whether a pocketbase login also sets the `pb_auth` cookie. Default true.
    pub cookie: bool,
}

impl PocketbaseConfig {
    fn settings() -> Vec<Arg> {
        vec![
            Arg::new(TOKEN_TTL_KEY)
                .value_name("SECONDS")
                .help("Lifetime of the token a pocketbase login returns (1 s to 10 years)")
                .value_parser(value_parser!(i64).range(1..=315_360_000))
                .default_value("1209600"),
            Arg::new(COOKIE_KEY)
                .value_name("BOOL")
                .help("Whether a pocketbase login also sets the pb_auth cookie")
                .action(ArgAction::Set)
                .value_parser(BoolishValueParser::new())
                .default_value("true"),
        ]
    }

    fn from_settings(settings: &DialectSettings) -> Result<Self, SettingsError> {
        Ok(Self {
            token_ttl: TimeDelta::seconds(settings.get::<i64>(TOKEN_TTL_KEY)?),
            cookie: settings.get::<bool>(COOKIE_KEY)?,
        })
    }
}

impl Dialect for PocketbaseConfig {
    fn name(&self) -> &'static str {
        DIALECT.name
    }

    /// Its login claims bodies with a `username`.
    fn endpoints(&self) -> Vec<Endpoint> {
        let config = self.clone();
        vec![
            Endpoint::new(Method::POST, "/auth/login", move |call| {
                login(call, config.clone())
            })
            .claiming("username")
            .with_session_cookie()
            .documented(
                EndpointDoc::new("Authenticate a users record with a username and password")
                    .body::<LoginRequest>()
                    .answers_with_cookie::<AuthBody>(
                        200,
                        "The record and its token; the pb_auth cookie unless turned off",
                        "pb_auth",
                    ),
            ),
        ]
    }

    fn longest_token_ttl(&self) -> Option<TimeDelta> {
        Some(self.token_ttl)
    }

    fn refusal(&self, request: &HttpRequest, refusal: &Refusal) -> HttpResponse {
        PbError::refused(refusal)
            .at(request_url(request, &config_of(request)))
            .error_response()
    }

    fn error_schema(&self) -> BodySchema {
        BodySchema::of::<error::ClientResponseErrorBody<'static>>()
    }
}

async fn login(call: Call, config: PocketbaseConfig) -> Result<HttpResponse, PbError> {
    let url = request_url(&call.request, &call.state.config);
    authenticate(call, config)
        .await
        .map_err(|error| error.at(url))
}

async fn authenticate(call: Call, config: PocketbaseConfig) -> Result<HttpResponse, PbError> {
    let request = LoginRequest::try_from(call.body.as_ref().map_err(Clone::clone)?)?;
    let options = IssueOptions {
        access_ttl: Some(config.token_ttl),
        extra_claims: token_claims(),
        user_claims: Some(user_claims),
    };
    let done = call
        .login(request.username, request.password, options)
        .await??;
    let body = AuthBody {
        record: RecordBody::from(&done.user),
        token: done.tokens.access.token,
    };
    let mut response = HttpResponse::Ok();
    if config.cookie {
        let cookie = auth_cookie(
            &body.token,
            &body.record,
            done.tokens.access.expires_at,
            call.state.config.cookie_secure,
        )
        .map_err(|e| PbError::internal(&e))?;
        response.insert_header((SET_COOKIE, cookie));
    }
    Ok(response.json(body))
}

/// The claims every pocketbase token carries whoever it is for.
fn token_claims() -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("collectionId".into(), COLLECTION_ID.into());
    claims.insert("type".into(), TOKEN_TYPE.into());
    claims
}

/// PocketBase's `id` claim: the record's id.
fn user_claims(user: &User) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("id".into(), user.id.to_string().into());
    claims
}

/// The absolute URL the client called (scheme, host, path and query), as the SDK puts
/// it in its errors.
fn request_url(request: &HttpRequest, config: &HttpConfig) -> String {
    let path = request
        .uri()
        .path_and_query()
        .map_or_else(|| request.path(), |pq| pq.as_str());
    format!("{}{path}", origin(request, config))
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn the_url_is_absolute_with_the_query() {
        let request = TestRequest::post()
            .uri("/pb/auth/login?expand=x&a=%20b")
            .insert_header(("host", "auth.example.com:8443"))
            .to_http_request();
        assert_eq!(
            request_url(&request, &HttpConfig::default()),
            "http://auth.example.com:8443/pb/auth/login?expand=x&a=%20b"
        );
    }

    #[test]
    fn the_url_follows_a_trusted_proxys_forwarded_headers_only() {
        let request = TestRequest::post()
            .uri("/auth/login")
            .peer_addr("10.0.0.7:4000".parse().unwrap())
            .insert_header(("host", "127.0.0.1:8080"))
            .insert_header(("x-forwarded-proto", "https"))
            .insert_header(("x-forwarded-host", "auth.example.com"))
            .to_http_request();
        let trusting = HttpConfig {
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
            ..HttpConfig::default()
        };
        assert_eq!(
            request_url(&request, &trusting),
            "https://auth.example.com/auth/login"
        );
        assert_eq!(
            request_url(&request, &HttpConfig::default()),
            "http://127.0.0.1:8080/auth/login"
        );
    }

    #[test]
    fn the_claims_are_pocketbases() {
        let claims = token_claims();
        assert_eq!(claims["collectionId"], "_pb_users_auth_");
        assert_eq!(claims["type"], "authRecord");
    }
}
