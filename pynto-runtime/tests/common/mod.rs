//! Shared set-up of the runtime's integration tests: sessions over the memory pair and TCP.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use pynto_runtime::native::{NativeHost, Object};
use pynto_runtime::{Config, Role, Session};
use pynto_transport::Transport;

pub type S = Session<NativeHost>;

/// A connected pair of sessions over `a`/`b`: (client, server).
pub fn connect_over(a: Box<dyn Transport>, b: Box<dyn Transport>, client_root: Object, server_root: Object, client: Config, server: Config) -> (S, S) {
    let acceptor = std::thread::spawn(move || Session::connect(b, Role::Acceptor, NativeHost::new(), server_root, server));
    let client = Session::connect(a, Role::Connector, NativeHost::new(), client_root, client).expect("client connects");
    let server = acceptor.join().unwrap().expect("server accepts");
    (client, server)
}

/// A pair over the in-memory transport.
pub fn memory_pair(client_root: Object, server_root: Object) -> (S, S) {
    let (a, b) = pynto_transport::memory::pair();
    connect_over(Box::new(a), Box::new(b), client_root, server_root, Config::default(), Config::default())
}

/// A pair over real TCP on loopback.
pub fn tcp_pair(client_root: Object, server_root: Object) -> (S, S) {
    let acceptor = pynto_transport::tcp::TcpAcceptor::bind("127.0.0.1:0").unwrap();
    let addr = acceptor.socket_addr().unwrap();
    let server = std::thread::spawn(move || acceptor.accept().unwrap());
    let a = pynto_transport::tcp::TcpTransport::connect(addr).unwrap();
    let b = server.join().unwrap();
    connect_over(Box::new(a), b, client_root, server_root, Config::default(), Config::default())
}

/// Wait until `cond` holds, failing the test after `limit`.
pub fn eventually(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}
