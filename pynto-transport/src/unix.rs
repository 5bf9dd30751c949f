//! Frames over Unix domain sockets (path sockets).
//!
//! [`UnixTransport::connect`] dials a socket path; [`UnixAcceptor`] listens on one and removes
//! the socket file when dropped. As with TCP, the reader and writer share one socket and
//! shutting down shuts it down in both directions.

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use crate::socket::split_socket;
use crate::{FrameReader, FrameWriter, Transport, TransportError};

/// A connected Unix socket transport.
#[derive(Debug)]
pub struct UnixTransport {
    stream: UnixStream,
    peer: String,
}

impl UnixTransport {
    /// Connect to the socket at `path`.
    pub fn connect(path: impl AsRef<Path>) -> Result<Self, TransportError> {
        let path = path.as_ref();
        let stream = UnixStream::connect(path)?;
        Ok(UnixTransport {
            stream,
            peer: format!("unix://{}", path.display()),
        })
    }

    /// Use an already connected stream.
    pub fn from_stream(stream: UnixStream) -> Self {
        let peer = match stream.peer_addr() {
            Ok(a) => match a.as_pathname() {
                Some(p) => format!("unix://{}", p.display()),
                None => "unix:(unnamed)".to_string(),
            },
            Err(_) => "unix:(unknown)".to_string(),
        };
        UnixTransport { stream, peer }
    }

    /// The underlying stream.
    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }
}

impl Transport for UnixTransport {
    fn split(self: Box<Self>) -> (Box<dyn FrameReader>, Box<dyn FrameWriter>) {
        split_socket(self.stream)
    }

    fn peer(&self) -> String {
        self.peer.clone()
    }
}

/// Listens on a Unix socket path. The socket file is removed when the acceptor is dropped.
#[derive(Debug)]
pub struct UnixAcceptor {
    listener: UnixListener,
    path: PathBuf,
}

impl UnixAcceptor {
    /// Listen on `path`. Fails if the path exists; remove a stale socket first.
    pub fn bind(path: impl AsRef<Path>) -> Result<Self, TransportError> {
        let path = path.as_ref().to_path_buf();
        let listener = UnixListener::bind(&path)?;
        Ok(UnixAcceptor { listener, path })
    }

    /// Wait for the next connection.
    pub fn accept(&self) -> Result<Box<dyn Transport>, TransportError> {
        Ok(Box::new(self.accept_transport()?))
    }

    /// Wait for the next connection, as the concrete type.
    pub fn accept_transport(&self) -> Result<UnixTransport, TransportError> {
        let (stream, _) = self.listener.accept()?;
        let mut t = UnixTransport::from_stream(stream);
        t.peer = format!("unix://{} (accepted)", self.path.display());
        Ok(t)
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The address listened on, as `unix://PATH` (`unix:///tmp/x.sock` for an absolute path).
    pub fn local_addr(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    /// The underlying listener.
    pub fn listener(&self) -> &UnixListener {
        &self.listener
    }
}

impl Drop for UnixAcceptor {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
