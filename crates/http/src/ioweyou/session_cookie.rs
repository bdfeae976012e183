//! The `access_tokens` cookie, exactly as the original Express application wrote it with
//! `res.cookie("access_tokens", {access_token, refresh_token})` and read it with
//! cookie-parser: `j:` + JSON, URL-encoded with `encodeURIComponent`.

use actix_web::HttpRequest;
use actix_web::http::header::HeaderValue;
use portcullis_domain::TokenPair;
use serde::Serialize;
use serde_json::Value;

use super::error::IoweyouError;
use crate::cookie::{decode_uri_component, encode_uri_component, raw_request_cookie};
use crate::state::AppState;

/// The cookie's name.
pub const COOKIE_NAME: &str = "access_tokens";

/// What `res.clearCookie("access_tokens")` writes.
const CLEARED: &str = "access_tokens=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT";

/// The tokens a request's cookie carries; either may be missing from a cookie that
/// otherwise reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct CookieTokens {
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
}

#[derive(Serialize)]
struct CookieJson<'a> {
    access_token: &'a str,
    refresh_token: &'a str,
}

/// The request's `access_tokens` cookie, read as cookie-parser reads it. `None` when
/// it is absent or broken (not `j:` + a JSON object carrying at least one token).
pub(crate) fn read(request: &HttpRequest) -> Option<CookieTokens> {
    parse(raw_request_cookie(request, COOKIE_NAME)?)
}

/// Parses a raw (still encoded) cookie value.
pub(crate) fn parse(raw: &str) -> Option<CookieTokens> {
    // The `cookie` package: surrounding quotes are dropped, and the value is
    // URI-decoded when it has a `%` (kept as sent when decoding throws).
    let unquoted = raw
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(raw);
    let decoded = if unquoted.contains('%') {
        decode_uri_component(unquoted).unwrap_or_else(|| unquoted.to_owned())
    } else {
        unquoted.to_owned()
    };
    // cookie-parser's JSONCookie: only `j:`-prefixed values are JSON.
    let Value::Object(object) = serde_json::from_str(decoded.strip_prefix("j:")?).ok()? else {
        return None;
    };
    let text = |key: &str| {
        object
            .get(key)
            .and_then(Value::as_str)
            .filter(|token| !token.is_empty())
            .map(str::to_owned)
    };
    let tokens = CookieTokens {
        access_token: text("access_token"),
        refresh_token: text("refresh_token"),
    };
    (tokens.access_token.is_some() || tokens.refresh_token.is_some()).then_some(tokens)
}

/// The cookie's value for `tokens`: `encodeURIComponent("j:" + JSON.stringify(...))`.
pub(crate) fn encode(tokens: &TokenPair) -> Result<String, IoweyouError> {
    let json = serde_json::to_string(&CookieJson {
        access_token: &tokens.access.token,
        refresh_token: &tokens.refresh.token,
    })
    .map_err(|e| IoweyouError::internal(&e))?;
    Ok(encode_uri_component(&format!("j:{json}")))
}

/// The `Set-Cookie` header carrying `tokens`:
/// `access_tokens=<value>; Path=/; HttpOnly; SameSite=Lax; Max-Age=<refresh TTL>`, and
/// `; Secure` unless the configuration turns it off.
pub(crate) fn set_cookie(
    state: &AppState,
    tokens: &TokenPair,
) -> Result<HeaderValue, IoweyouError> {
    let max_age = state.auth.config().refresh_ttl.num_seconds().max(0);
    let mut header = format!(
        "{COOKIE_NAME}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}",
        encode(tokens)?
    );
    if state.config.cookie_secure {
        header.push_str("; Secure");
    }
    HeaderValue::from_str(&header).map_err(|e| IoweyouError::internal(&e))
}

/// The `Set-Cookie` header that deletes the cookie.
pub(crate) fn cleared() -> HeaderValue {
    HeaderValue::from_static(CLEARED)
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;
    use portcullis_domain::IssuedToken;

    use super::*;

    fn pair() -> TokenPair {
        let at = DateTime::from_timestamp(0, 0).unwrap_or_default();
        TokenPair {
            access: IssuedToken {
                token: "a.b.c".into(),
                expires_at: at,
            },
            refresh: IssuedToken {
                token: "d.e.f".into(),
                expires_at: at,
            },
        }
    }

    #[test]
    fn encodes_as_express_does() {
        assert_eq!(
            encode(&pair()).ok().as_deref(),
            Some("j%3A%7B%22access_token%22%3A%22a.b.c%22%2C%22refresh_token%22%3A%22d.e.f%22%7D")
        );
    }

    #[test]
    fn reads_what_it_writes() {
        let value = encode(&pair()).ok();
        let tokens = value.as_deref().and_then(parse);
        assert_eq!(
            tokens,
            Some(CookieTokens {
                access_token: Some("a.b.c".into()),
                refresh_token: Some("d.e.f".into()),
            })
        );
    }

    #[test]
    fn reads_as_cookie_parser_does() {
        // Unencoded and quoted values read too.
        assert_eq!(
            parse(r#"j:{"refresh_token":"r"}"#),
            Some(CookieTokens {
                access_token: None,
                refresh_token: Some("r".into()),
            })
        );
        assert_eq!(
            parse(r#""j:{"access_token":"a"}""#).and_then(|t| t.access_token),
            Some("a".into())
        );
    }

    #[test]
    fn broken_cookies_read_as_none() {
        for raw in [
            "",
            "garbage",
            "%FF",
            "j%3A",
            "j%3A%7B",
            "j%3A%5B%5D",
            "j%3A%7B%7D",
            "j%3A%7B%22access_token%22%3A1%7D",
            "%7B%22access_token%22%3A%22a%22%7D",
        ] {
            assert_eq!(parse(raw), None, "{raw}");
        }
    }
}
