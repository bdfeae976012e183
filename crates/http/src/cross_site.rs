//! Cross-site requests: refused on the endpoints that read or set a cookie (a browser
//! attaches cookies to them whoever made the page), and CORS for the origins an
//! operator allows.
//!
//! A request is cross-site when the browser says so (`Sec-Fetch-Site: cross-site`),
//! or, from a browser that does not send `Sec-Fetch-Site`, when its `Origin` is not the
//! request's own. Clients that send neither (curl, server-side code) are not browsers
//! acting for someone else, and pass.

use actix_web::HttpRequest;
use actix_web::HttpResponse;
use actix_web::http::Method;
use actix_web::http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS,
    ACCESS_CONTROL_REQUEST_METHOD, HeaderName, HeaderValue, ORIGIN, VARY,
};

use crate::state::HttpConfig;

const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");
/// How long a browser may cache a preflight's answer, in seconds.
const PREFLIGHT_MAX_AGE: u32 = 600;

/// The request's `Origin`, when it is one of the allowed origins.
pub(crate) fn allowed_origin(request: &HttpRequest, config: &HttpConfig) -> Option<HeaderValue> {
    let origin = request.headers().get(ORIGIN)?;
    let text = origin.to_str().ok()?;
    config
        .allowed_origins
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(text))
        .then(|| origin.clone())
}

/// Whether a browser sent the request for a page of another site.
pub(crate) fn is_cross_site(request: &HttpRequest, config: &HttpConfig) -> bool {
    if let Some(site) = request.headers().get(SEC_FETCH_SITE) {
        return site.as_bytes().eq_ignore_ascii_case(b"cross-site");
    }
    match request.headers().get(ORIGIN) {
        None => false,
        Some(origin) => {
            let own = crate::origin::origin(request, config);
            !origin
                .to_str()
                .is_ok_and(|origin| origin.eq_ignore_ascii_case(&own))
        }
    }
}

/// Adds the CORS headers of a response to an allowed `origin`.
pub(crate) fn allow(response: &mut HttpResponse, origin: Option<HeaderValue>) {
    let headers = response.headers_mut();
    headers.append(VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = origin {
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
}

/// The answer to a CORS preflight from an allowed origin for a path serving `methods`
/// (`Allow`'s value); `None` when the request is not one.
pub(crate) fn preflight(
    request: &HttpRequest,
    config: &HttpConfig,
    methods: &str,
) -> Option<HttpResponse> {
    if request.method() != Method::OPTIONS
        || !request
            .headers()
            .contains_key(ACCESS_CONTROL_REQUEST_METHOD)
    {
        return None;
    }
    let origin = allowed_origin(request, config)?;
    let mut response = HttpResponse::NoContent()
        .insert_header((ACCESS_CONTROL_ALLOW_METHODS, methods))
        .insert_header((ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE))
        .finish();
    if let Some(asked) = request.headers().get(ACCESS_CONTROL_REQUEST_HEADERS) {
        response
            .headers_mut()
            .insert(ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
    }
    allow(&mut response, Some(origin));
    Some(response)
}
