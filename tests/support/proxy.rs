//! A TCP proxy a test can cut and restore, to take a database away from a server
//! without touching the database itself (other tests share the PostgreSQL cluster).
//!
//! Cutting closes every connection through the proxy (both ends, as a stopped server
//! would) and refuses new ones (accepted and closed at once) until restored.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

#[derive(Default)]
struct Shared {
    cut: AtomicBool,
    stopped: AtomicBool,
    /// Both ends of every live connection, to close on a cut.
    live: Mutex<Vec<TcpStream>>,
}

impl Shared {
    fn close_all(&self) {
        let mut live = self.live.lock().unwrap();
        for stream in live.drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// A proxy on a loopback port the kernel picked, forwarding to one target.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Proxy {
    /// Forwards connections on a new loopback port to `target` (`host:port`).
    pub fn start(target: &str) -> Self {
        let target = target
            .to_socket_addrs()
            .unwrap()
            .next()
            .unwrap_or_else(|| panic!("{target} does not resolve"));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let accepting = shared.clone();
        thread::Builder::new()
            .name("test-proxy".into())
            .spawn(move || accept(&listener, target, &accepting))
            .unwrap();
        Self { addr, shared }
    }

    /// `url` (`scheme://user:password@host:port/rest`) with its host and port replaced
    /// by the proxy's.
    pub fn url_through(&self, url: &str) -> String {
        let (head, tail) = url.rsplit_once('@').unwrap();
        let rest = tail.find('/').map_or("", |slash| &tail[slash..]);
        format!("{head}@{}{rest}", self.addr)
    }

    /// Closes every connection and refuses new ones.
    pub fn cut(&self) {
        self.shared.cut.store(true, Ordering::SeqCst);
        self.shared.close_all();
    }

    /// Forwards again.
    pub fn restore(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.shared.close_all();
        // Wakes the accept loop so that it sees the stop.
        let _ = TcpStream::connect(self.addr);
    }
}

/// `host:port` of a database URL (`scheme://user:password@host:port/rest`).
pub fn host_port(url: &str) -> String {
    let (_, tail) = url.rsplit_once('@').unwrap();
    let end = tail.find(['/', '?']).unwrap_or(tail.len());
    let host = &tail[..end];
    if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    }
}

fn accept(listener: &TcpListener, target: SocketAddr, shared: &Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stopped.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        if shared.cut.load(Ordering::SeqCst) {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        }
        let Ok(server) = TcpStream::connect(target) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        if let Err(error) = forward(client, server, shared) {
            eprintln!("test proxy: {error}");
        }
    }
}

fn forward(client: TcpStream, server: TcpStream, shared: &Arc<Shared>) -> io::Result<()> {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    {
        let mut live = shared.live.lock().unwrap();
        live.push(client.try_clone()?);
        live.push(server.try_clone()?);
    }
    pipe(client.try_clone()?, server.try_clone()?);
    pipe(server, client);
    Ok(())
}

/// Copies `from` to `to` on a thread of its own; when either side ends, closes both.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let _ = thread::Builder::new()
        .name("test-proxy-pipe".into())
        .spawn(move || {
            let _ = io::copy(&mut from, &mut to);
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
        });
}
