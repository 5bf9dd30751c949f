//! A TCP server's accept loop with several clients at once, one of them speaking garbage: the
//! garbage connections are refused with a protocol error and dropped, the others keep working.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

use pynto_proto::Value;
use pynto_runtime::native::{type_error, Methods, NativeHost, Object};
use pynto_runtime::{Config, Error, Role, Session};
use pynto_transport::tcp::{TcpAcceptor, TcpTransport};

const GOOD_CLIENTS: usize = 4;
const CALLS: i64 = 50;

fn calc() -> Object {
    Object::new(Methods::new("Calc").method("add", |args| {
        match (&args.positional[0], &args.positional[1]) {
            (Value::Int(a), Value::Int(b)) => Ok(Value::Int(a + b).into()),
            _ => Err(type_error("add takes two ints")),
        }
    }))
}

/// Connect, send `bytes` at once, then read until the server drops the connection.
fn garbage_client(addr: std::net::SocketAddr, bytes: &'static [u8]) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.write_all(bytes).unwrap();
        let mut sink = [0u8; 4096];
        loop {
            match stream.read(&mut sink) {
                Ok(0) => return,
                Ok(_) => continue,
                // Closing a socket with unread garbage in it may reset the connection.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
                Err(e) => panic!("the server should drop a garbage client, but reading gave: {e}"),
            }
        }
    })
}

#[test]
fn an_accept_loop_drops_garbage_clients_and_serves_the_others() {
    let acceptor = TcpAcceptor::bind("127.0.0.1:0").unwrap();
    let addr = acceptor.socket_addr().unwrap();
    let total = GOOD_CLIENTS + 2;
    let (results, outcomes) = mpsc::channel();
    let server = std::thread::spawn(move || {
        for _ in 0..total {
            let transport = acceptor.accept().unwrap();
            let results = results.clone();
            // One handshake per connection, on its own thread, so a slow or bad client never
            // holds up the loop.
            std::thread::spawn(move || {
                let config = Config {
                    handshake_timeout: Duration::from_secs(20),
                    ..Config::default()
                };
                let _ = results.send(Session::connect(
                    transport,
                    Role::Acceptor,
                    NativeHost::new(),
                    calc(),
                    config,
                ));
            });
        }
    });

    // An HTTP request: its first eight bytes read as a frame header announcing a huge body.
    let http = garbage_client(addr, b"GET / HTTP/1.1\r\nHost: pynto\r\n\r\n");
    // A well-formed frame header whose body is not msgpack.
    let framed = garbage_client(
        addr,
        &[5, 0, 0, 0, 0, 0, 0, 0, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1],
    );
    let good: Vec<_> = (0..GOOD_CLIENTS as i64)
        .map(|id| {
            std::thread::spawn(move || {
                let transport = TcpTransport::connect(addr).unwrap();
                let client = Session::connect(
                    Box::new(transport),
                    Role::Connector,
                    NativeHost::new(),
                    Object::unit(),
                    Config::default(),
                )
                .expect("a good client connects");
                let root = client.root().unwrap();
                for i in 0..CALLS {
                    let sum = root
                        .call_method("add", vec![Value::Int(id * 1000), Value::Int(i)])
                        .unwrap();
                    assert_eq!(sum.value, Value::Int(id * 1000 + i));
                }
                client
            })
        })
        .collect();
    http.join().unwrap();
    framed.join().unwrap();
    let clients: Vec<_> = good.into_iter().map(|t| t.join().unwrap()).collect();
    server.join().unwrap();

    let mut served = Vec::new();
    let mut refused = Vec::new();
    for _ in 0..total {
        match outcomes
            .recv_timeout(Duration::from_secs(30))
            .expect("every handshake ends")
        {
            Ok(session) => served.push(session),
            Err(Error::Protocol(why)) => refused.push(why),
            Err(other) => panic!("a garbage client should be a protocol error, got {other:?}"),
        }
    }
    assert_eq!(served.len(), GOOD_CLIENTS);
    refused.sort();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(
        refused[0].starts_with("the peer's Hello is malformed: "),
        "{refused:?}"
    );
    assert_eq!(
        refused[1],
        format!("the peer's first frame is not a Hello: frame body of {} bytes exceeds the limit of {} bytes", u32::from_le_bytes(*b"GET "), 64 << 20)
    );
    // The good connections are still up on both sides and still work.
    for session in &served {
        assert!(!session.is_closed());
    }
    for client in &clients {
        let root = client.root().unwrap();
        assert_eq!(
            root.call_method("add", vec![Value::Int(1), Value::Int(1)])
                .unwrap()
                .value,
            Value::Int(2)
        );
    }
}
