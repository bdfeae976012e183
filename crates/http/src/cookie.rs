//! Cookie values as the JavaScript stacks the dialects come from write and read them.

use chrono::{DateTime, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// What JavaScript's `encodeURIComponent` leaves alone: letters, digits and
/// `- _ . ! ~ * ' ( )`. Express and the PocketBase SDK encode cookie values with it.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// JavaScript's `encodeURIComponent`.
pub fn encode_uri_component(text: &str) -> String {
    utf8_percent_encode(text, URI_COMPONENT).to_string()
}

/// JavaScript's `decodeURIComponent`; `None` where it would throw (bad UTF-8).
pub fn decode_uri_component(text: &str) -> Option<String> {
    percent_decode_str(text)
        .decode_utf8()
        .ok()
        .map(|decoded| decoded.into_owned())
}

/// An HTTP date (RFC 7231 IMF-fixdate), as `Expires` carries it.
pub fn http_date(at: DateTime<Utc>) -> String {
    at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// The raw (still encoded) value of the request's cookie `name`, if sent, found as the
/// `cookie` package (behind Express's cookie-parser) finds it: names and values trimmed
/// of surrounding spaces, the first occurrence wins.
pub fn raw_request_cookie<'r>(request: &'r actix_web::HttpRequest, name: &str) -> Option<&'r str> {
    request
        .headers()
        .get_all(actix_web::http::header::COOKIE)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| key.trim() == name)
        .map(|(_, value)| value.trim())
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn cookies_are_found_as_cookie_parser_finds_them() {
        let request = TestRequest::get()
            .insert_header(("cookie", "a=1;  pb_auth  =  x%20y ; pb_auth=second"))
            .to_http_request();
        assert_eq!(raw_request_cookie(&request, "pb_auth"), Some("x%20y"));
        assert_eq!(raw_request_cookie(&request, "a"), Some("1"));
        assert_eq!(raw_request_cookie(&request, "b"), None);
    }

    #[test]
    fn encodes_like_javascript() {
        assert_eq!(
            encode_uri_component("j:{\"a\":\"b c\"}"),
            "j%3A%7B%22a%22%3A%22b%20c%22%7D"
        );
        assert_eq!(encode_uri_component("aZ09-_.!~*'()"), "aZ09-_.!~*'()");
        assert_eq!(encode_uri_component("é"), "%C3%A9");
    }

    #[test]
    fn decodes_like_javascript() {
        assert_eq!(
            decode_uri_component("j%3A%7B%22a%22%7D").as_deref(),
            Some("j:{\"a\"}")
        );
        assert_eq!(decode_uri_component("%FF"), None);
    }

    #[test]
    fn http_dates() {
        let epoch = DateTime::from_timestamp(0, 0).unwrap();
        assert_eq!(http_date(epoch), "Thu, 01 Jan 1970 00:00:00 GMT");
    }

    #[test]
    fn finds_a_raw_cookie_among_several() {
        let request = actix_web::test::TestRequest::default()
            .insert_header(("cookie", "a=1; access_tokens=j%3A%7B%7D; b=2"))
            .to_http_request();
        assert_eq!(
            raw_request_cookie(&request, "access_tokens"),
            Some("j%3A%7B%7D")
        );
        assert_eq!(raw_request_cookie(&request, "missing"), None);
    }
}
