//! Token introspection (RFC 7662, `POST /oauth/introspect`) and revocation (RFC 7009,
//! `POST /oauth/revoke`) for other services: a registered client authenticates with
//! HTTP Basic (`portcullis client create`) and sends the token as a form field. Errors
//! are RFC 6749 §5.2's JSON (`{"error": "invalid_client"}`, ...).

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::http::header::{
    ALLOW, AUTHORIZATION, CACHE_CONTROL, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE,
};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use portcullis_domain::{ClientAuthError, InternalError, Introspection, TokenKind};
use serde_json::{Value, json};

use crate::blocking::run_blocking;
use crate::origin::client_of;
use crate::state::{AppState, HttpConfig};

/// The name events record for calls through these endpoints.
const CHANNEL: &str = "oauth";

pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    for (path, handler) in [
        ("/oauth/introspect", Endpoint::Introspect),
        ("/oauth/revoke", Endpoint::Revoke),
    ] {
        cfg.service(
            web::resource(path)
                .app_data(
                    web::FormConfig::default()
                        .limit(16 * 1024)
                        .error_handler(|error, _| {
                            let response = oauth_error(
                                StatusCode::BAD_REQUEST,
                                "invalid_request",
                                &format!("the body must be a form: {error}"),
                            );
                            actix_web::error::InternalError::from_response(error, response).into()
                        }),
                )
                .route(
                    web::post()
                        .to(move |state, request, form| handle(handler, state, request, form)),
                )
                .default_service(web::to(method_not_allowed)),
        );
    }
}

#[derive(Clone, Copy)]
enum Endpoint {
    Introspect,
    Revoke,
}

async fn method_not_allowed() -> HttpResponse {
    let mut response = oauth_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request",
        "use POST",
    );
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static("POST"));
    response
}

/// RFC 6749 §5.2's error body, never cached.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(json!({"error": error, "error_description": description}))
}

fn invalid_client() -> HttpResponse {
    let mut response = oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "client authentication failed",
    );
    response.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static(r#"Basic realm="portcullis""#),
    );
    response
}

/// A failure no client caused: 503 with `Retry-After` when it is temporary (the
/// database unreachable), else 500.
fn internal(error: &InternalError) -> HttpResponse {
    if error.is_unavailable() {
        let mut response = oauth_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "try again later",
        );
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    }
    tracing::error!(%error, "oauth endpoint failed");
    oauth_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "internal error",
    )
}

/// The id and secret of `Authorization: Basic`, if well formed.
fn basic_credentials(request: &HttpRequest) -> Option<(String, String)> {
    let value = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// What a handler concluded, before it becomes a response.
enum Outcome {
    Unauthorized,
    Introspected(Introspection),
    Revoked,
}

async fn handle(
    endpoint: Endpoint,
    state: web::Data<AppState>,
    request: HttpRequest,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let Some((id, secret)) = basic_credentials(&request) else {
        return invalid_client();
    };
    let Some(token) = form.get("token").filter(|t| !t.is_empty()).cloned() else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the token parameter is required",
        );
    };
    let client = client_of(&request, &state.config, CHANNEL);
    let auth = state.auth.clone();
    let work = move || -> Result<Outcome, InternalError> {
        match auth.authenticate_client(&id, &secret) {
            Ok(_) => {}
            Err(ClientAuthError::Invalid) => return Ok(Outcome::Unauthorized),
            Err(ClientAuthError::Internal(error)) => return Err(error),
        }
        Ok(match endpoint {
            Endpoint::Introspect => Outcome::Introspected(auth.introspect(&token)?),
            Endpoint::Revoke => {
                auth.revoke_token(&client, &token)?;
                Outcome::Revoked
            }
        })
    };
    let outcome = match run_blocking(work).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(error)) => return internal(&error),
        Err(_) => {
            tracing::error!("oauth task failed");
            return oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "internal error",
            );
        }
    };
    match outcome {
        Outcome::Unauthorized => invalid_client(),
        Outcome::Introspected(introspection) => HttpResponse::Ok()
            .insert_header((CACHE_CONTROL, "no-store"))
            .json(introspection_body(&state.config, &introspection)),
        Outcome::Revoked => HttpResponse::Ok()
            .insert_header((CACHE_CONTROL, "no-store"))
            .finish(),
    }
}

/// RFC 7662 §2.2: `{"active": false}` and nothing else for a token that is not usable.
fn introspection_body(config: &HttpConfig, introspection: &Introspection) -> Value {
    let Introspection::Active(claims) = introspection else {
        return json!({"active": false});
    };
    json!({
        "active": true,
        "sub": claims.subject.to_string(),
        "sid": claims.session.to_string(),
        "jti": claims.token_id.to_string(),
        "exp": claims.expires_at.timestamp(),
        "iat": claims.issued_at.timestamp(),
        "iss": config.token_issuer,
        "aud": config.token_audience,
        "token_type": match claims.kind {
            TokenKind::Access => "access_token",
            TokenKind::Refresh => "refresh_token",
        },
    })
}
