//! Who is asking, and what they called: the client's address and the origin (scheme
//! and host), believing a proxy's forwarding headers (`Forwarded`, `X-Forwarded-For`,
//! `-Host`, `-Proto`) only when the connection comes from one of the trusted proxies;
//! from anyone else they are the client's own claims and ignored.

use std::net::{IpAddr, SocketAddr};

use actix_web::HttpRequest;
use actix_web::http::header::{HOST, USER_AGENT};
use actix_web::web;
use ipnet::IpNet;
use portcullis_domain::Client;

use crate::state::{AppState, HttpConfig};

/// Who is asking, for the throttles and the security event log: the client's address,
/// its `User-Agent` and the dialect it called.
pub(crate) fn client_of(
    request: &HttpRequest,
    config: &HttpConfig,
    dialect: &'static str,
) -> Client {
    let client = Client::at(client_ip(request, config)).via(dialect);
    match request.headers().get(USER_AGENT).map(|v| v.to_str()) {
        Some(Ok(user_agent)) => client.with_user_agent(user_agent),
        _ => client,
    }
}

/// Whether the request came straight from a trusted proxy.
fn from_trusted_proxy(request: &HttpRequest, trusted: &[IpNet]) -> bool {
    request
        .peer_addr()
        .is_some_and(|peer| trusted.iter().any(|net| net.contains(&peer.ip())))
}

/// The client's address: the connection's peer, or, when the peer is a trusted proxy,
/// the nearest address in its forwarding chain that is not a trusted proxy (so a client
/// cannot choose its address by sending its own `X-Forwarded-For`).
pub(crate) fn client_ip(request: &HttpRequest, config: &HttpConfig) -> Option<IpAddr> {
    let peer = request.peer_addr()?.ip();
    let trusted = |ip: &IpAddr| config.trusted_proxies.iter().any(|net| net.contains(ip));
    if !trusted(&peer) {
        return Some(peer);
    }
    let chain: Vec<IpAddr> = forwarded_for(request);
    Some(
        chain
            .iter()
            .rev()
            .find(|ip| !trusted(ip))
            .or(chain.first())
            .copied()
            .unwrap_or(peer),
    )
}

/// The addresses of `Forwarded: for=...` (RFC 7239), else of `X-Forwarded-For`, in
/// order, the client first; what does not parse is skipped.
fn forwarded_for(request: &HttpRequest) -> Vec<IpAddr> {
    let headers = request.headers();
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(|part| part.trim().to_owned())
            .collect()
    };
    let forwarded: Vec<IpAddr> = values("forwarded")
        .iter()
        .flat_map(|element| element.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
        .filter_map(|(_, node)| parse_node(node.trim().trim_matches('"')))
        .collect();
    if !forwarded.is_empty() {
        return forwarded;
    }
    values("x-forwarded-for")
        .iter()
        .filter_map(|node| parse_node(node))
        .collect()
}

/// An address, bare or with a port (`1.2.3.4:5678`, `[2001:db8::1]:5678`).
fn parse_node(node: &str) -> Option<IpAddr> {
    node.parse::<IpAddr>()
        .ok()
        .or_else(|| node.parse::<SocketAddr>().ok().map(|socket| socket.ip()))
        .or_else(|| {
            node.strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|inner| inner.parse().ok())
        })
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
    fn the_client_address_is_believed_from_trusted_proxies_only() {
        let config = HttpConfig {
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
            ..HttpConfig::default()
        };
        let ip = |peer: &str, header: (&str, &str)| {
            let request = TestRequest::get()
                .peer_addr(peer.parse::<SocketAddr>().unwrap())
                .insert_header(header)
                .to_http_request();
            client_ip(&request, &config).unwrap().to_string()
        };
        // A client's own header is ignored.
        assert_eq!(
            ip("203.0.113.9:1", ("x-forwarded-for", "1.1.1.1")),
            "203.0.113.9"
        );
        // Through proxies: the nearest untrusted hop, whatever the client prepended.
        assert_eq!(
            ip(
                "10.0.0.1:1",
                ("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.2")
            ),
            "198.51.100.7"
        );
        assert_eq!(
            ip(
                "10.0.0.1:1",
                (
                    "forwarded",
                    "for=198.51.100.7;proto=https, for=\"[2001:db8::1]:443\""
                )
            ),
            "2001:db8::1"
        );
        // Nothing usable: the proxy itself.
        assert_eq!(ip("10.0.0.1:1", ("x-forwarded-for", "garbage")), "10.0.0.1");
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
