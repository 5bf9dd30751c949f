//! Frames over plain TCP.
//!
//! [`TcpTransport::connect`] dials with `TCP_NODELAY` and keepalive on; [`TcpAcceptor`]
//! listens. The reader and writer share one socket, and shutting down shuts it down in both
//! directions, so a reader blocked in `recv` on another thread returns.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::socket::split_socket;
use crate::{FrameReader, FrameWriter, Transport, TransportError};

/// A connected TCP transport.
#[derive(Debug)]
pub struct TcpTransport {
    stream: TcpStream,
    peer: String,
}

impl TcpTransport {
    /// Connect to `addr` (anything `ToSocketAddrs` accepts, e.g. `"127.0.0.1:5000"`), with
    /// `TCP_NODELAY` on.
    pub fn connect(addr: impl ToSocketAddrs) -> Result<Self, TransportError> {
        Self::from_stream(TcpStream::connect(addr)?)
    }

    /// Connect to `host:port` within `timeout` (all the addresses the name resolves to,
    /// tried in turn, share it), with `TCP_NODELAY` on.
    pub fn connect_timeout(
        host: &str,
        port: u16,
        timeout: Option<Duration>,
    ) -> Result<Self, TransportError> {
        Self::from_stream(dial(host, port, timeout)?)
    }

    /// Use an already connected stream. Turns `TCP_NODELAY` on.
    pub fn from_stream(stream: TcpStream) -> Result<Self, TransportError> {
        stream.set_nodelay(true)?;
        crate::socket::keepalive(&stream);
        let peer = match stream.peer_addr() {
            Ok(a) => format!("tcp://{a}"),
            Err(_) => "tcp://(unknown)".to_string(),
        };
        Ok(TcpTransport { stream, peer })
    }

    /// The underlying stream, e.g. to set socket options.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }
}

impl Transport for TcpTransport {
    fn split(self: Box<Self>) -> (Box<dyn FrameReader>, Box<dyn FrameWriter>) {
        split_socket(self.stream)
    }

    fn peer(&self) -> String {
        self.peer.clone()
    }
}

/// Open a TCP stream to `host:port`, trying each address the name resolves to until one
/// answers, all within `timeout` (`None`: the system's own connect timeout, which can be
/// minutes when a listener's accept queue is full).
pub fn dial(host: &str, port: u16, timeout: Option<Duration>) -> io::Result<TcpStream> {
    let Some(timeout) = timeout else {
        return TcpStream::connect((host, port));
    };
    let deadline = Instant::now() + timeout;
    let mut last = None;
    for addr in (host, port).to_socket_addrs()? {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no answer within {timeout:?}"),
        )
    }))
}

/// Listens for TCP connections.
#[derive(Debug)]
pub struct TcpAcceptor {
    listener: TcpListener,
}

impl TcpAcceptor {
    /// Listen on `addr`, e.g. `"127.0.0.1:0"` for a free port.
    pub fn bind(addr: impl ToSocketAddrs) -> Result<Self, TransportError> {
        Ok(TcpAcceptor {
            listener: TcpListener::bind(addr)?,
        })
    }

    /// Use an already bound listener.
    pub fn from_listener(listener: TcpListener) -> Self {
        TcpAcceptor { listener }
    }

    /// Wait for the next connection.
    pub fn accept(&self) -> Result<Box<dyn Transport>, TransportError> {
        Ok(Box::new(self.accept_transport()?))
    }

    /// Wait for the next connection, as the concrete type.
    pub fn accept_transport(&self) -> Result<TcpTransport, TransportError> {
        let (stream, _) = self.listener.accept()?;
        TcpTransport::from_stream(stream)
    }

    /// The socket address listened on.
    pub fn socket_addr(&self) -> Result<SocketAddr, TransportError> {
        Ok(self.listener.local_addr()?)
    }

    /// The address listened on, as `tcp://IP:PORT`.
    pub fn local_addr(&self) -> String {
        match self.listener.local_addr() {
            Ok(a) => format!("tcp://{a}"),
            Err(_) => "tcp://(unknown)".to_string(),
        }
    }

    /// The underlying listener.
    pub fn listener(&self) -> &TcpListener {
        &self.listener
    }
}
