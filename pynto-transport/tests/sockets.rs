//! TCP and Unix socket transports: frames both ways, clean and torn ends, limits checked
//! before reading, shutdown unblocking a reader, and the address-based API.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::thread;
use std::time::Instant;

use common::*;
use pynto_proto::Limits;
use pynto_transport::tcp::{TcpAcceptor, TcpTransport};
use pynto_transport::unix::{UnixAcceptor, UnixTransport};
use pynto_transport::{connect, Address, Listener, Transport, TransportError};

fn socket_path(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("pynto-{}-{name}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// A TCP pair: (client, server).
fn tcp_pair() -> (Box<dyn Transport>, Box<dyn Transport>) {
    let acceptor = TcpAcceptor::bind("127.0.0.1:0").unwrap();
    let addr = acceptor.socket_addr().unwrap();
    let server = thread::spawn(move || acceptor.accept().unwrap());
    let client = TcpTransport::connect(addr).unwrap();
    assert!(client.stream().nodelay().unwrap());
    assert_eq!(client.peer(), format!("tcp://{addr}"));
    (Box::new(client), server.join().unwrap())
}

fn unix_pair(name: &str) -> (Box<dyn Transport>, Box<dyn Transport>, UnixAcceptor) {
    let acceptor = UnixAcceptor::bind(socket_path(name)).unwrap();
    let client = UnixTransport::connect(acceptor.path()).unwrap();
    let server = acceptor.accept().unwrap();
    (Box::new(client), server, acceptor)
}

#[test]
fn tcp_carries_frames_both_ways() {
    let (client, server) = tcp_pair();
    let ((cr, cw), (sr, sw)) = split2(client, server);
    exchange_with_echo(cr, cw, echo(sr, sw));
}

#[test]
fn unix_carries_frames_both_ways() {
    let (client, server, acceptor) = unix_pair("both-ways");
    assert_eq!(client.peer(), acceptor.local_addr());
    let ((cr, cw), (sr, sw)) = split2(client, server);
    exchange_with_echo(cr, cw, echo(sr, sw));
    let path = acceptor.path().to_path_buf();
    drop(acceptor);
    assert!(!path.exists(), "socket file removed on drop");
}

#[test]
fn shutdown_unblocks_tcp_and_unix_readers() {
    let (client, _server) = tcp_pair();
    let (r, w) = client.split();
    shutdown_unblocks_reader(r, w);

    let (client, _server, _acceptor) = unix_pair("shutdown");
    let (r, w) = client.split();
    shutdown_unblocks_reader(r, w);

    let (client, _server) = tcp_pair();
    let (r, w) = client.split();
    handle_unblocks_reader(r, w.as_ref());

    let (client, _server, _acceptor) = unix_pair("handle");
    let (r, w) = client.split();
    handle_unblocks_reader(r, w.as_ref());
}

/// The wire bytes of one frame.
fn wire(frame: &pynto_proto::Frame) -> Vec<u8> {
    let mut w = pynto_transport::StreamWriter::new(Vec::new());
    w.send(frame).unwrap();
    w.into_inner()
}

/// Write `bytes` raw to the server side, close, and return what the server's reader sees:
/// every result up to and including the first non-frame.
fn server_sees(bytes: &[u8], limits: Option<Limits>, tcp: bool) -> Vec<String> {
    let (mut reader, _writer, _keep) = if tcp {
        let acceptor = TcpAcceptor::bind("127.0.0.1:0").unwrap();
        let mut raw = TcpStream::connect(acceptor.socket_addr().unwrap()).unwrap();
        let (r, w) = acceptor.accept().unwrap().split();
        raw.write_all(bytes).unwrap();
        drop(raw);
        (r, w, None)
    } else {
        let acceptor = UnixAcceptor::bind(socket_path(&format!("raw-{}", bytes.len()))).unwrap();
        let mut raw = UnixStream::connect(acceptor.path()).unwrap();
        let (r, w) = acceptor.accept().unwrap().split();
        raw.write_all(bytes).unwrap();
        drop(raw);
        (r, w, Some(acceptor))
    };
    if let Some(l) = limits {
        reader.set_limits(&l);
    }
    let mut seen = Vec::new();
    loop {
        match reader.recv() {
            Ok(Some(f)) => seen.push(format!("frame {}", String::from_utf8_lossy(&f.body))),
            other => {
                seen.push(format!("{other:?}"));
                return seen;
            }
        }
    }
}

#[test]
fn clean_end_and_torn_frames() {
    for tcp in [true, false] {
        let whole = wire(&small(0));
        assert_eq!(
            server_sees(&whole, None, tcp),
            ["frame frame 0", "Ok(None)"]
        );
        assert_eq!(server_sees(&[], None, tcp), ["Ok(None)"]);
        let half = &whole[..whole.len() / 2];
        assert_eq!(server_sees(half, None, tcp), ["Err(Torn)"]);
        let mut one_and_a_bit = whole.clone();
        one_and_a_bit.extend_from_slice(&whole[..3]);
        assert_eq!(
            server_sees(&one_and_a_bit, None, tcp),
            ["frame frame 0", "Err(Torn)"]
        );
    }
}

#[test]
fn oversized_lengths_are_refused_before_reading() {
    let start = Instant::now();
    // A header claiming a 4 GiB body, with a small max_frame.
    let mut header = u32::MAX.to_le_bytes().to_vec();
    header.extend_from_slice(&0u32.to_le_bytes());
    let limits = Limits {
        max_frame: 1024,
        ..Limits::default()
    };
    for tcp in [true, false] {
        let seen = server_sees(&header, Some(limits), tcp);
        assert_eq!(
            seen,
            [format!(
                "Err(FrameTooLarge {{ len: {}, max: 1024 }})",
                u32::MAX
            )]
        );
    }
    // An attachment claiming 4 GiB over max_message.
    let mut frame = 0u32.to_le_bytes().to_vec();
    frame.extend_from_slice(&1u32.to_le_bytes());
    frame.extend_from_slice(&(4u64 << 30).to_le_bytes());
    frame.extend_from_slice(b"only a few bytes");
    let limits = Limits {
        max_message: 1 << 30,
        ..Limits::default()
    };
    let seen = server_sees(&frame, Some(limits), true);
    assert!(seen[0].starts_with("Err(MessageTooLarge"), "{seen:?}");
    // Within the (default, 1 TiB) limits, a hostile 4 GiB attachment length followed by a
    // few bytes is a torn frame, found without allocating the 4 GiB.
    assert_eq!(server_sees(&frame, None, true), ["Err(Torn)"]);
    // Too many attachments (counts with the top bit set mark chunked records instead).
    let mut frame = 0u32.to_le_bytes().to_vec();
    frame.extend_from_slice(&(pynto_transport::MAX_ATTACHMENTS + 1).to_le_bytes());
    let seen = server_sees(&frame, None, false);
    assert!(seen[0].starts_with("Err(TooManyAttachments"), "{seen:?}");
    assert!(start.elapsed() < PROMPTLY);
}

#[test]
fn address_connect_and_listener() {
    let listener = Listener::bind(&Address::parse("tcp://127.0.0.1:0").unwrap(), None).unwrap();
    let local = listener.local_addr();
    assert!(local.starts_with("tcp://127.0.0.1:"), "{local}");
    let addr: Address = local.parse().unwrap();
    let server = thread::spawn(move || listener.accept().unwrap());
    let client = connect(&addr, None).unwrap();
    let ((cr, cw), (sr, sw)) = split2(client, server.join().unwrap());
    exchange_with_echo(cr, cw, echo(sr, sw));

    let path = socket_path("address");
    let addr = Address::Unix(path.clone());
    let listener = Listener::bind(&addr, None).unwrap();
    assert_eq!(listener.local_addr(), format!("unix://{}", path.display()));
    assert!(listener.local_addr().starts_with("unix:///"));
    let client = connect(&listener.local_addr().parse().unwrap(), None).unwrap();
    let server = listener.accept().unwrap();
    let ((cr, cw), (sr, sw)) = split2(client, server);
    exchange_with_echo(cr, cw, echo(sr, sw));

    // tls:// without settings is a clear error, not a panic.
    let e = match connect(&Address::parse("tls://127.0.0.1:1").unwrap(), None) {
        Err(e) => e,
        Ok(_) => panic!("connected without TLS settings"),
    };
    assert!(matches!(&e, TransportError::Tls(m) if m.contains("needs TLS client settings")));
}

/// A 1 GiB attachment over a Unix socket, timed. Ignored by default (memory and time); run
/// with `cargo test --release -p pynto-transport --test sockets -- --ignored --nocapture`.
#[test]
#[ignore]
fn one_gib_attachment_throughput() {
    let (client, server, _acceptor) = unix_pair("gib");
    let ((_cr, mut cw), (mut sr, _sw)) = split2(client, server);
    let big = bytes::Bytes::from(vec![7u8; 1 << 30]);
    let frame = pynto_proto::Frame {
        body: bytes::Bytes::from_static(b"gib"),
        attachments: vec![big.clone()],
    };
    let start = Instant::now();
    let sender = thread::spawn(move || cw.send(&frame).unwrap());
    let got = sr.recv().unwrap().unwrap();
    sender.join().unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(got.attachments[0].len(), 1 << 30);
    assert!(got.attachments[0] == big);
    println!("1 GiB in {secs:.3} s: {:.2} GiB/s", 1.0 / secs);
}
