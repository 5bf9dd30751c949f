//! Frames over TLS over TCP, with rustls (the `ring` provider), blocking.
//!
//! The handshake completes on the socket before the transport is returned (bounded by one
//! deadline for the whole handshake, [`HANDSHAKE_TIMEOUT`] unless the caller gives one, so a
//! peer dripping bytes cannot stretch it), so a wrong certificate fails [`connect`] with a clear
//! [`TransportError::Tls`]. Afterwards the reader and writer share the rustls connection behind
//! a mutex, and neither blocks on the socket while holding it:
//!
//! * the reader reads raw bytes from the socket without the lock, then locks to feed them to
//!   rustls and take the plaintext out;
//! * the writer locks to hand rustls a chunk of plaintext (at most rustls' buffer limit) and
//!   take out the TLS records, then writes the records to the socket without the lock.
//!
//! Socket writes are serialized in the order rustls produced them by a second lock. When
//! the reader makes rustls want to write (an alert, a key update) and a writer is busy, it
//! leaves the records to that writer rather than wait, so a full socket in one direction never
//! stalls the other.
//!
//! Configuration: [`TlsClient`] and [`TlsServer`] name PEM files;
//! [`client_config_from_pem`], [`server_config_from_pem`] and their `_der` forms take
//! certificates in memory.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use pynto_proto::Frame;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::ServerConnection;
use rustls::{ClientConfig, ClientConnection, Connection, RootCertStore, ServerConfig};

use crate::framing::{StreamReader, StreamWriter};
use crate::socket::timed_out;
use crate::{FrameReader, FrameWriter, ShutdownHandle, Transport, TransportError};

/// The longest a handshake may take before the connection is given up.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// How many raw bytes the reader takes from the socket at a time.
const RAW_READ: usize = 64 << 10;

// ---------------------------------------------------------------------------------------------
// Configuration

/// Client-side TLS settings, by file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsClient {
    /// PEM file of the certificate authorities that may sign the server's certificate.
    pub ca: PathBuf,
    /// PEM file of the client's certificate chain, for servers that require one.
    pub cert: Option<PathBuf>,
    /// PEM file of the client certificate's private key.
    pub key: Option<PathBuf>,
}

impl TlsClient {
    /// Load the files and build a rustls client configuration that verifies the server
    /// against `ca` and presents `cert` and `key` when both are given.
    pub fn config(&self) -> Result<Arc<ClientConfig>, TransportError> {
        let ca = read_file(&self.ca, "CA certificates")?;
        let roots = parse_certs(&ca, &self.ca.display().to_string())?;
        let identity = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Some((
                parse_certs(
                    &read_file(cert, "client certificate")?,
                    &cert.display().to_string(),
                )?,
                parse_key(&read_file(key, "client key")?, &key.display().to_string())?,
            )),
            (None, None) => None,
            _ => {
                return Err(TransportError::Tls(
                    "a client certificate needs both `cert` and `key`".to_string(),
                ))
            }
        };
        client_config_from_der(roots, identity)
    }
}

/// Server-side TLS settings, by file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsServer {
    /// PEM file of the server's certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM file of the server certificate's private key.
    pub key: PathBuf,
    /// PEM file of the certificate authorities that sign client certificates. When given,
    /// clients must present a certificate signed by one of them.
    pub client_ca: Option<PathBuf>,
}

impl TlsServer {
    /// Load the files and build a rustls server configuration.
    pub fn config(&self) -> Result<Arc<ServerConfig>, TransportError> {
        let chain = parse_certs(
            &read_file(&self.cert, "server certificate")?,
            &self.cert.display().to_string(),
        )?;
        let key = parse_key(
            &read_file(&self.key, "server key")?,
            &self.key.display().to_string(),
        )?;
        let client_roots = match &self.client_ca {
            Some(path) => Some(parse_certs(
                &read_file(path, "client CA certificates")?,
                &path.display().to_string(),
            )?),
            None => None,
        };
        server_config_from_der(chain, key, client_roots)
    }
}

/// A client configuration from PEM text: the CAs to trust and optionally the client's
/// certificate chain and key.
pub fn client_config_from_pem(
    ca_pem: &[u8],
    identity_pem: Option<(&[u8], &[u8])>,
) -> Result<Arc<ClientConfig>, TransportError> {
    let roots = parse_certs(ca_pem, "CA PEM")?;
    let identity = match identity_pem {
        Some((cert, key)) => Some((
            parse_certs(cert, "client certificate PEM")?,
            parse_key(key, "client key PEM")?,
        )),
        None => None,
    };
    client_config_from_der(roots, identity)
}

/// A server configuration from PEM text: the server's certificate chain and key, and
/// optionally the CAs that sign required client certificates.
pub fn server_config_from_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
    client_ca_pem: Option<&[u8]>,
) -> Result<Arc<ServerConfig>, TransportError> {
    let chain = parse_certs(cert_pem, "server certificate PEM")?;
    let key = parse_key(key_pem, "server key PEM")?;
    let client_roots = match client_ca_pem {
        Some(pem) => Some(parse_certs(pem, "client CA PEM")?),
        None => None,
    };
    server_config_from_der(chain, key, client_roots)
}

/// A client configuration from DER: trusted CA certificates and an optional client
/// certificate chain with its key.
pub fn client_config_from_der(
    roots: Vec<CertificateDer<'static>>,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Arc<ClientConfig>, TransportError> {
    let store = root_store(roots)?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("client configuration", e))?
        .with_root_certificates(store);
    let config = match identity {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| tls_err("client certificate", e))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// A server configuration from DER: the server's chain and key, and optionally the CAs whose
/// client certificates are required.
pub fn server_config_from_der(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_roots: Option<Vec<CertificateDer<'static>>>,
) -> Result<Arc<ServerConfig>, TransportError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("server configuration", e))?;
    let builder = match client_roots {
        Some(roots) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(
                Arc::new(root_store(roots)?),
                provider(),
            )
            .build()
            .map_err(|e| tls_err("client certificate verifier", e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| tls_err("server certificate", e))?;
    Ok(Arc::new(config))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_err(what: &str, e: impl std::fmt::Display) -> TransportError {
    TransportError::Tls(format!("{what}: {e}"))
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>, TransportError> {
    std::fs::read(path)
        .map_err(|e| TransportError::Tls(format!("cannot read {what} {}: {e}", path.display())))
}

fn parse_certs(pem: &[u8], source: &str) -> Result<Vec<CertificateDer<'static>>, TransportError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TransportError::Tls(format!("bad certificate PEM in {source}: {e}")))?;
    if certs.is_empty() {
        return Err(TransportError::Tls(format!(
            "no certificate found in {source}"
        )));
    }
    Ok(certs)
}

fn parse_key(pem: &[u8], source: &str) -> Result<PrivateKeyDer<'static>, TransportError> {
    PrivateKeyDer::from_pem_slice(pem)
        .map_err(|e| TransportError::Tls(format!("no usable private key in {source}: {e}")))
}

fn root_store(roots: Vec<CertificateDer<'static>>) -> Result<RootCertStore, TransportError> {
    let mut store = RootCertStore::empty();
    for cert in roots {
        store
            .add(cert)
            .map_err(|e| tls_err("bad CA certificate", e))?;
    }
    Ok(store)
}

// ---------------------------------------------------------------------------------------------
// Connecting and accepting

/// Connect to `addr` over TCP and complete a TLS handshake as a client, verifying the server
/// against `server_name` (a DNS name or an IP address).
pub fn connect(
    addr: impl ToSocketAddrs,
    server_name: &str,
    config: Arc<ClientConfig>,
) -> Result<TlsTransport, TransportError> {
    let stream = TcpStream::connect(addr)?;
    client_handshake(stream, server_name, config)
}

/// Complete a TLS handshake as a client over an already connected stream.
pub fn client_handshake(
    stream: TcpStream,
    server_name: &str,
    config: Arc<ClientConfig>,
) -> Result<TlsTransport, TransportError> {
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|e| TransportError::Tls(format!("invalid server name {server_name:?}: {e}")))?;
    let conn = ClientConnection::new(config, name).map_err(|e| tls_err("client setup", e))?;
    TlsTransport::handshake(stream, conn.into(), Instant::now() + HANDSHAKE_TIMEOUT)
}

/// Complete a TLS handshake as a server over an accepted stream. Accept loops that must not
/// stall on a slow client can run this on the connection's own thread (see
/// [`TlsAcceptor::accept_tcp`]).
pub fn server_handshake(
    stream: TcpStream,
    config: Arc<ServerConfig>,
) -> Result<TlsTransport, TransportError> {
    server_handshake_until(stream, config, Instant::now() + HANDSHAKE_TIMEOUT)
}

/// Complete a TLS handshake as a server, giving up at `deadline` however the peer paces its
/// bytes.
pub fn server_handshake_until(
    stream: TcpStream,
    config: Arc<ServerConfig>,
    deadline: Instant,
) -> Result<TlsTransport, TransportError> {
    let conn = ServerConnection::new(config).map_err(|e| tls_err("server setup", e))?;
    TlsTransport::handshake(stream, conn.into(), deadline)
}

/// Listens for TCP connections and completes a TLS handshake with each.
#[derive(Debug)]
pub struct TlsAcceptor {
    listener: TcpListener,
    config: Arc<ServerConfig>,
}

impl TlsAcceptor {
    /// Listen on `addr` with `config`.
    pub fn bind(
        addr: impl ToSocketAddrs,
        config: Arc<ServerConfig>,
    ) -> Result<Self, TransportError> {
        Ok(TlsAcceptor {
            listener: TcpListener::bind(addr)?,
            config,
        })
    }

    /// Wait for the next connection and complete its handshake. A failed handshake is an
    /// error for that connection only: accept loops should log it and carry on.
    pub fn accept(&self) -> Result<Box<dyn Transport>, TransportError> {
        Ok(Box::new(self.accept_transport()?))
    }

    /// Like [`accept`](Self::accept), as the concrete type.
    pub fn accept_transport(&self) -> Result<TlsTransport, TransportError> {
        let (stream, _) = self.listener.accept()?;
        server_handshake(stream, Arc::clone(&self.config))
    }

    /// Wait for the next TCP connection without handshaking; finish it with
    /// [`server_handshake`] and [`config`](Self::config), e.g. on another thread.
    pub fn accept_tcp(&self) -> Result<(TcpStream, SocketAddr), TransportError> {
        Ok(self.listener.accept()?)
    }

    /// The server configuration.
    pub fn config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.config)
    }

    /// The socket address listened on.
    pub fn socket_addr(&self) -> Result<SocketAddr, TransportError> {
        Ok(self.listener.local_addr()?)
    }

    /// The address listened on, as `tls://IP:PORT`.
    pub fn local_addr(&self) -> String {
        match self.listener.local_addr() {
            Ok(a) => format!("tls://{a}"),
            Err(_) => "tls://(unknown)".to_string(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The transport

/// A TLS connection whose handshake is complete.
pub struct TlsTransport {
    shared: Arc<Shared>,
    peer: String,
}

impl std::fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTransport")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

/// What the reader and writer share.
struct Shared {
    /// The TLS state. Never held across a blocking socket operation.
    conn: Mutex<Connection>,
    /// Held while writing TLS records to the socket, so they go out in the order rustls
    /// produced them.
    write_order: Mutex<()>,
    /// The socket: read by the reader, written under `write_order`, shut down by anyone.
    sock: TcpStream,
    /// Set when this side shuts down: from then on the reader reports end of stream rather
    /// than the errors a half-closed socket produces.
    closed: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The socket during a handshake: every read and write waits at most until the deadline.
struct Until<'a> {
    stream: &'a TcpStream,
    deadline: Instant,
}

impl Until<'_> {
    fn left(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        Ok(left)
    }
}

impl Read for Until<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.set_read_timeout(Some(self.left()?))?;
        (&mut &*self.stream).read(buf)
    }
}

impl Write for Until<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.set_write_timeout(Some(self.left()?))?;
        (&mut &*self.stream).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TlsTransport {
    fn handshake(
        stream: TcpStream,
        mut conn: Connection,
        deadline: Instant,
    ) -> Result<Self, TransportError> {
        let peer = match stream.peer_addr() {
            Ok(a) => format!("tls://{a}"),
            Err(_) => "tls://(unknown)".to_string(),
        };
        stream.set_nodelay(true)?;
        crate::socket::keepalive(&stream);
        let budget = deadline.saturating_duration_since(Instant::now());
        let mut io = Until {
            stream: &stream,
            deadline,
        };
        let result = (|| -> io::Result<()> {
            while conn.is_handshaking() {
                conn.complete_io(&mut io)?;
            }
            while conn.wants_write() {
                conn.write_tls(&mut io)?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            let _ = stream.shutdown(Shutdown::Both);
            let why = match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                    format!("not done within {:.1} s", budget.as_secs_f64())
                }
                io::ErrorKind::UnexpectedEof => "the peer closed the connection".to_string(),
                _ => e.to_string(),
            };
            return Err(TransportError::Tls(format!(
                "handshake with {peer} failed: {why}"
            )));
        }
        stream.set_read_timeout(None)?;
        stream.set_write_timeout(None)?;
        Ok(TlsTransport {
            shared: Arc::new(Shared {
                conn: Mutex::new(conn),
                write_order: Mutex::new(()),
                sock: stream,
                closed: AtomicBool::new(false),
            }),
            peer,
        })
    }

    /// The DER certificate chain the peer presented, leaf first, if any.
    pub fn peer_certificates(&self) -> Option<Vec<CertificateDer<'static>>> {
        lock(&self.shared.conn)
            .peer_certificates()
            .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
    }
}

mod reader;
use reader::{PlainReader, TlsReader};

impl Transport for TlsTransport {
    fn split(self: Box<Self>) -> (Box<dyn FrameReader>, Box<dyn FrameWriter>) {
        let reader = TlsReader {
            inner: StreamReader::new(PlainReader {
                registration: None,
                shared: Arc::clone(&self.shared),
                raw: Box::default(),
                start: 0,
                end: 0,
                eof: false,
                idle: false,
                may_idle: false,
            }),
        };
        let writer = TlsWriter {
            inner: StreamWriter::new(PlainWriter {
                shared: Arc::clone(&self.shared),
                out: Vec::new(),
                closed: false,
            }),
            write_timeout: None,
        };
        (Box::new(reader), Box::new(writer))
    }

    fn peer(&self) -> String {
        self.peer.clone()
    }
}

impl Shared {
    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Mark closed and shut the socket down in both directions.
    fn close_socket(&self) {
        self.closed.store(true, Ordering::Release);
        let _ = self.sock.shutdown(Shutdown::Both);
    }

    /// Write whatever TLS records rustls has pending, unless a writer is already writing (it
    /// will pick them up when it is done).
    fn flush_if_idle(&self) {
        let _order = match self.write_order.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        let mut out = Vec::new();
        {
            let mut conn = lock(&self.conn);
            while conn.wants_write() {
                if conn.write_tls(&mut out).is_err() {
                    break;
                }
            }
        }
        let _ = (&self.sock).write_all(&out);
    }
}

/// Plaintext into the connection, records out to the socket, as a `Write` for the framing.
struct PlainWriter {
    shared: Arc<Shared>,
    /// Reused buffer of TLS records on their way to the socket.
    out: Vec<u8>,
    closed: bool,
}

impl PlainWriter {
    /// Hand rustls as much of `bufs` as it buffers at once, then write the resulting records
    /// to the socket without holding the connection lock. Returns the plaintext bytes taken.
    fn write_some(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        if self.closed {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the TLS transport was shut down",
            ));
        }
        let mut taken = 0;
        let mut first = true;
        loop {
            let order = lock(&self.shared.write_order);
            self.out.clear();
            {
                let mut conn = lock(&self.shared.conn);
                if first {
                    taken = conn.writer().write_vectored(bufs)?;
                    first = false;
                }
                while conn.wants_write() {
                    conn.write_tls(&mut self.out)?;
                }
            }
            (&self.shared.sock).write_all(&self.out)?;
            drop(order);
            // Records the reader produced while we held `write_order` are ours to send.
            if !lock(&self.shared.conn).wants_write() {
                return Ok(taken);
            }
        }
    }
}

impl Write for PlainWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_some(&[io::IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.write_some(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The writing half.
struct TlsWriter {
    inner: StreamWriter<PlainWriter>,
    write_timeout: Option<Duration>,
}

impl TlsWriter {
    fn check_open(&self) -> Result<(), TransportError> {
        let w = self.inner.get_ref();
        if w.closed || w.shared.is_closed() {
            return Err(TransportError::Closed);
        }
        Ok(())
    }
}

impl FrameWriter for TlsWriter {
    fn send(&mut self, frame: &Frame) -> Result<(), TransportError> {
        self.check_open()?;
        timed_out(self.inner.send(frame), self.write_timeout)
    }

    fn send_batch(&mut self, frames: &[&Frame]) -> Result<(), TransportError> {
        self.check_open()?;
        timed_out(self.inner.send_batch(frames), self.write_timeout)
    }

    fn send_part(
        &mut self,
        frame: &Frame,
        parts: &mut crate::Parts,
    ) -> Result<bool, TransportError> {
        self.check_open()?;
        timed_out(self.inner.send_part(frame, parts), self.write_timeout)
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) {
        if self
            .inner
            .get_ref()
            .shared
            .sock
            .set_write_timeout(timeout)
            .is_ok()
        {
            self.write_timeout = timeout;
        }
    }

    fn progress(&self) -> Option<crate::Progress> {
        Some(self.inner.progress().clone())
    }

    fn shutdown(&mut self) {
        let w = self.inner.get_mut();
        if w.closed {
            return;
        }
        w.closed = true;
        lock(&w.shared.conn).send_close_notify();
        // Best effort: a peer that stopped reading must not hold the shutdown up.
        let _ = w
            .shared
            .sock
            .set_write_timeout(Some(Duration::from_millis(100)));
        w.shared.flush_if_idle();
        w.shared.close_socket();
    }

    fn shutdown_handle(&self) -> Option<ShutdownHandle> {
        // Weakly: the socket closes with the transport's halves, whoever keeps the handle.
        let shared = Arc::downgrade(&self.inner.get_ref().shared);
        Some(ShutdownHandle::new(move || {
            if let Some(shared) = shared.upgrade() {
                shared.close_socket();
            }
        }))
    }
}
