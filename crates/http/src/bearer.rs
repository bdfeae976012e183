//! `Authorization: Bearer <token>` parsing.

use actix_web::HttpRequest;
use actix_web::http::header::HeaderName;

/// The bearer token in `header`, if the header is present, readable, uses the `Bearer`
/// scheme (case-insensitively, as RFC 7235 says) and carries a non-empty token.
pub fn bearer_token<'r>(request: &'r HttpRequest, header: &HeaderName) -> Option<&'r str> {
    let value = request.headers().get(header)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
