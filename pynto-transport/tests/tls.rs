//! TLS: certificates made in the test with rcgen, frames both ways, client certificates,
//! a wrong CA failing clearly, shutdown unblocking a reader, and an idle reader parking.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::thread;

use common::*;
use pynto_transport::rustls::{ClientConfig, ServerConfig};
use pynto_transport::tls::{self, TlsAcceptor};
use pynto_transport::{
    connect, Address, Listener, TlsClient, TlsServer, Transport, TransportError,
};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// A certificate and its key, in PEM.
struct Pem {
    cert: String,
    key: String,
}

/// A certificate authority able to sign server and client certificates.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }

    fn issue(&self, names: &[&str], purpose: ExtendedKeyUsagePurpose) -> Pem {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.extended_key_usages = vec![purpose];
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    fn server(&self) -> Pem {
        self.issue(
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    fn client(&self) -> Pem {
        self.issue(&["pynto-client"], ExtendedKeyUsagePurpose::ClientAuth)
    }
}

fn server_config(ca: &Ca, require_client: Option<&Ca>) -> Arc<ServerConfig> {
    let server = ca.server();
    let client_ca = require_client.map(|c| c.pem());
    tls::server_config_from_pem(
        server.cert.as_bytes(),
        server.key.as_bytes(),
        client_ca.as_deref().map(str::as_bytes),
    )
    .unwrap()
}

fn client_config(trust: &Ca, identity: Option<&Pem>) -> Arc<ClientConfig> {
    tls::client_config_from_pem(
        trust.pem().as_bytes(),
        identity.map(|p| (p.cert.as_bytes(), p.key.as_bytes())),
    )
    .unwrap()
}

/// The outcome of one side of a handshake.
type Side = Result<Box<dyn Transport>, TransportError>;

/// Accept one connection on a fresh acceptor while connecting to it by `name`; returns both
/// results, client first.
fn handshake(server: Arc<ServerConfig>, client: Arc<ClientConfig>, name: &str) -> (Side, Side) {
    let acceptor = TlsAcceptor::bind("127.0.0.1:0", server).unwrap();
    let addr = acceptor.socket_addr().unwrap();
    let accepted = thread::spawn(move || acceptor.accept());
    let connected = tls::connect(addr, name, client).map(|t| Box::new(t) as Box<dyn Transport>);
    (connected, accepted.join().unwrap())
}

#[test]
fn tls_carries_frames_both_ways() {
    let ca = Ca::new("pynto test CA");
    for name in ["localhost", "127.0.0.1"] {
        let (client, server) = handshake(server_config(&ca, None), client_config(&ca, None), name);
        let (client, server) = (client.unwrap(), server.unwrap());
        assert!(client.peer().starts_with("tls://127.0.0.1:"));
        let ((cr, cw), (sr, sw)) = split2(client, server);
        exchange_with_echo(cr, cw, echo(sr, sw));
    }
}

#[test]
fn tls_with_client_certificates() {
    let ca = Ca::new("server CA");
    let client_ca = Ca::new("client CA");
    let identity = client_ca.client();

    let (client, server) = handshake(
        server_config(&ca, Some(&client_ca)),
        client_config(&ca, Some(&identity)),
        "localhost",
    );
    let server = server.unwrap();
    let ((cr, cw), (sr, sw)) = split2(client.unwrap(), server);
    exchange_with_echo(cr, cw, echo(sr, sw));

    // Without a client certificate the server refuses. In TLS 1.3 the client may finish its
    // side of the handshake first and learn of the refusal on its first read.
    let (client, server) = handshake(
        server_config(&ca, Some(&client_ca)),
        client_config(&ca, None),
        "localhost",
    );
    match server {
        Err(TransportError::Tls(m)) => assert!(m.contains("handshake with"), "{m}"),
        other => panic!("server accepted a client without a certificate: {other:?}"),
    }
    if let Ok(client) = client {
        let (mut r, _w) = client.split();
        match r.recv() {
            Err(TransportError::Tls(m)) => assert!(m.contains("alert"), "{m}"),
            other => panic!("expected a TLS alert, got {other:?}"),
        }
    }

    // A client certificate from a CA the server does not trust is refused too.
    let stranger = Ca::new("stranger").client();
    let (_client, server) = handshake(
        server_config(&ca, Some(&client_ca)),
        client_config(&ca, Some(&stranger)),
        "localhost",
    );
    assert!(matches!(server, Err(TransportError::Tls(_))));
}

#[test]
fn wrong_certificate_fails_clearly() {
    let ca = Ca::new("the real CA");
    let other = Ca::new("some other CA");
    let (client, server) = handshake(
        server_config(&ca, None),
        client_config(&other, None),
        "localhost",
    );
    match client {
        Err(TransportError::Tls(m)) => {
            assert!(m.contains("handshake with tls://127.0.0.1:"), "{m}");
            assert!(m.contains("certificate"), "{m}");
            assert!(TransportError::Tls(m.clone())
                .to_string()
                .starts_with("TLS error: "));
        }
        Err(e) => panic!("expected a TLS error, got {e}"),
        Ok(_) => panic!("connected to a server signed by an untrusted CA"),
    }
    assert!(matches!(server, Err(TransportError::Tls(_))));

    // The right CA but the wrong name.
    let (client, _server) = handshake(
        server_config(&ca, None),
        client_config(&ca, None),
        "example.com",
    );
    match client {
        Err(TransportError::Tls(m)) => assert!(m.contains("certificate"), "{m}"),
        other => panic!("expected a TLS error, got {:?}", other.map(|t| t.peer())),
    }
}

#[test]
fn shutdown_unblocks_tls_reader() {
    let ca = Ca::new("CA");
    let (client, _server) = handshake(
        server_config(&ca, None),
        client_config(&ca, None),
        "localhost",
    );
    let (r, w) = client.unwrap().split();
    shutdown_unblocks_reader(r, w);

    let (client, server) = handshake(
        server_config(&ca, None),
        client_config(&ca, None),
        "localhost",
    );
    let (r, w) = client.unwrap().split();
    handle_unblocks_reader(r, w.as_ref());

    // The peer of a clean shutdown sees a clean end of stream.
    let (mut r, _w) = server.unwrap().split();
    let _ = r.recv();
}

#[test]
fn an_idle_tls_reader_parks_and_is_woken_by_a_frame() {
    let ca = Ca::new("CA");
    let (client, server) = handshake(
        server_config(&ca, None),
        client_config(&ca, None),
        "localhost",
    );
    let (mut reader, _w) = server.unwrap().split();
    let (_r, mut peer) = client.unwrap().split();
    assert!(reader.set_idle_timeout(std::time::Duration::from_millis(30)));
    // Frames sent before parking are read whole, from rustls's buffers or the socket.
    for i in 0..3 {
        peer.send(&small(i)).unwrap();
    }
    for i in 0..3 {
        assert_eq!(reader.recv().unwrap(), Some(small(i)));
    }
    assert!(matches!(reader.recv(), Err(TransportError::Idle)));
    let (tx, woken) = std::sync::mpsc::channel();
    let parked = reader.park(Box::new(move || {
        let _ = tx.send(());
    }));
    assert!(parked.is_ok());
    // A large frame (sent from another thread: it fills the socket's buffers).
    let sender = thread::spawn(move || {
        peer.send(&large()).unwrap();
        peer
    });
    woken
        .recv_timeout(PROMPTLY)
        .expect("a frame wakes the parked reader");
    assert_eq!(reader.recv().unwrap(), Some(large()));
    let mut peer = sender.join().unwrap();
    // A frame read while plaintext is left in rustls: parking is refused, nothing is lost.
    peer.send(&small(8)).unwrap();
    peer.send(&small(9)).unwrap();
    assert_eq!(reader.recv().unwrap(), Some(small(8)));
    let refused = reader.park(Box::new(|| {}));
    let second = reader.recv().unwrap();
    assert_eq!(second, Some(small(9)), "parked: {}", refused.is_ok());
}

#[test]
fn tls_by_address_and_files() {
    let ca = Ca::new("file CA");
    let client_ca = Ca::new("file client CA");
    let server = ca.server();
    let client = client_ca.client();
    let dir = std::env::temp_dir().join(format!("pynto-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let settings = TlsServer {
        cert: write("server.pem", &server.cert),
        key: write("server.key", &server.key),
        client_ca: Some(write("client-ca.pem", &client_ca.pem())),
    };
    let client_settings = TlsClient {
        ca: write("ca.pem", &ca.pem()),
        cert: Some(write("client.pem", &client.cert)),
        key: Some(write("client.key", &client.key)),
    };

    let listener = Listener::bind(
        &Address::parse("tls://127.0.0.1:0").unwrap(),
        Some(&settings),
    )
    .unwrap();
    let local = listener.local_addr();
    assert!(local.starts_with("tls://127.0.0.1:"), "{local}");
    let accepted = thread::spawn(move || listener.accept().unwrap());
    let client = connect(&local.parse().unwrap(), Some(&client_settings)).unwrap();
    let ((cr, cw), (sr, sw)) = split2(client, accepted.join().unwrap());
    exchange_with_echo(cr, cw, echo(sr, sw));

    // Missing and malformed files are clear errors.
    let missing = TlsClient {
        ca: dir.join("nope.pem"),
        cert: None,
        key: None,
    };
    assert!(matches!(missing.config(), Err(TransportError::Tls(m)) if m.contains("nope.pem")));
    let garbage = TlsClient {
        ca: write("garbage.pem", "not a certificate"),
        cert: None,
        key: None,
    };
    assert!(
        matches!(garbage.config(), Err(TransportError::Tls(m)) if m.contains("no certificate"))
    );
    let half = TlsClient {
        cert: Some(dir.join("client.pem")),
        ..client_settings.clone()
    };
    let half = TlsClient { key: None, ..half };
    assert!(matches!(half.config(), Err(TransportError::Tls(m)) if m.contains("both")));
    let _ = std::fs::remove_dir_all(&dir);
}
