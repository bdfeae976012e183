//! The origin a client called (scheme and host), believing a proxy's forwarding
//! headers (`Forwarded`, `X-Forwarded-Host`, `X-Forwarded-Proto`) only when the
//! connection comes from one of the trusted proxies; from anyone else they are the
//! client's own claims and ignored.

use actix_web::HttpRequest;
use actix_web::http::header::HOST;
use actix_web::web;
use ipnet::IpNet;

use crate::state::{AppState, HttpConfig};

/// Whether the request came straight from a trusted proxy.
fn from_trusted_proxy(request: &HttpRequest, trusted: &[IpNet]) -> bool {
    request
        .peer_addr()
        .is_some_and(|peer| trusted.iter().any(|net| net.contains(&peer.ip())))
}

/// `scheme://host` of what the client called.
pub(crate) fn origin(request: &HttpRequest, config: &HttpConfig) -> String {
    if from_trusted_proxy(request, &config.trusted_proxies) {
        let info = request.connection_info();
        return format!("{}://{}", info.scheme(), info.host());
    }
    let scheme = if request.app_config().secure() {
        "https"
    } else {
        "http"
    };
    let host = request
        .headers()
        .get(HOST)
        .and_then(|host| host.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
        .unwrap_or_else(|| request.app_config().host());
    format!("{scheme}://{host}")
}

/// The HTTP configuration a request is served under (defaults if the app has none,
/// which only a misassembled app can cause).
pub(crate) fn config_of(request: &HttpRequest) -> HttpConfig {
    request
        .app_data::<web::Data<AppState>>()
        .map(|state| state.config.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use actix_web::test::TestRequest;

    use super::*;

    fn behind(peer: &str) -> TestRequest {
        TestRequest::post()
            .uri("/auth/login")
            .peer_addr(peer.parse::<SocketAddr>().unwrap())
            .insert_header(("host", "127.0.0.1:8080"))
            .insert_header(("x-forwarded-proto", "https"))
            .insert_header(("x-forwarded-host", "auth.example.com"))
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let config = HttpConfig {
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
            ..HttpConfig::default()
        };
        let proxied = behind("10.1.2.3:5000").to_http_request();
        assert_eq!(origin(&proxied, &config), "https://auth.example.com");
        let direct = behind("203.0.113.9:5000").to_http_request();
        assert_eq!(origin(&direct, &config), "http://127.0.0.1:8080");
        assert_eq!(
            origin(&proxied, &HttpConfig::default()),
            "http://127.0.0.1:8080"
        );
    }
}
