//! Malformed HTTP from a client is the client's fault: it gets its 400 and the log a
//! line below ERROR, which stays for the server's own faults.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use crate::support::backend::Backend;
use crate::support::process::{Server, TestDb};

/// Requests no HTTP/1.1 parser accepts.
const MALFORMED: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
    b"GET / HTTP/1.1\r\nHo st: x\r\n\r\n",
    // A TLS ClientHello sent to the plain-HTTP port.
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\x00\x00\x00\x00\x00\x00\x00\x00",
];

fn send_raw(address: &str, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    // The server closes the connection after its 400.
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn malformed_requests_get_400_and_no_error_line() {
    let db = TestDb::new(Backend::Sqlite);
    let server = Server::start(&db);
    let address = server.base_url().trim_start_matches("http://").to_owned();
    for request in MALFORMED {
        let answer = send_raw(&address, request);
        assert!(
            answer.starts_with("HTTP/1.1 400 "),
            "{:?} got {answer:?}",
            String::from_utf8_lossy(request)
        );
    }
    let logs = server.logs().clone();
    assert!(server.stop().success());
    logs.wait_closed(Duration::from_secs(5));
    let logs = logs.text();
    let demoted = logs.matches("client connection error").count();
    assert_eq!(demoted, MALFORMED.len(), "{logs}");
    assert!(
        logs.lines()
            .filter(|l| l.contains("client connection error"))
            .all(|l| l.contains(" INFO ")),
        "{logs}"
    );
    assert!(
        !logs.contains(" ERROR "),
        "an ERROR line for a client's mistake:\n{logs}"
    );
}
