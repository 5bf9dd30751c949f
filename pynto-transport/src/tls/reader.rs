//! The reading half of a TLS transport: decrypted bytes as a `Read` for the framing, and the
//! frame reader over them. It can park (`poller.rs`) once rustls holds no plaintext and no raw
//! bytes wait for it.

use std::io::{self, Read};
use std::sync::Arc;
use std::time::Duration;

use pynto_proto::{Frame, Limits};

use super::{lock, Shared, RAW_READ};
use crate::framing::StreamReader;
use crate::{FrameReader, TransportError};

/// Decrypted bytes from the connection, as a `Read` for the framing.
pub(super) struct PlainReader {
    /// Declared before `shared`: removed from the poller while the socket is open.
    pub(super) registration: Option<crate::poller::Registration>,
    pub(super) shared: Arc<Shared>,
    /// Raw bytes read from the socket and not yet given to rustls: `raw[start..end]`. Empty
    /// (freed) while the reader is parked; `RAW_READ` bytes once it reads.
    pub(super) raw: Box<[u8]>,
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) eof: bool,
    /// The socket has an idle timeout (`SO_RCVTIMEO`).
    pub(super) idle: bool,
    /// The next socket read may give up at the idle timeout (the framing's first read).
    pub(super) may_idle: bool,
}

/// rustls may hold decrypted bytes the socket no longer shows, so polling the socket cannot
/// tell readiness: report it at once (and `recv` blocks; callers leave TLS connections to read
/// loops). Parking checks that rustls holds no plaintext and no raw bytes wait for it.
impl crate::socket::Readiness for PlainReader {
    fn readiness_fd(&self) -> Option<std::os::fd::RawFd> {
        None
    }

    fn set_idle_timeout(&mut self, idle: Duration) -> bool {
        self.idle = crate::poller::available()
            && self
                .shared
                .sock
                .set_read_timeout(Some(idle.max(Duration::from_micros(1))))
                .is_ok();
        self.idle
    }

    fn allow_idle(&mut self, allow: bool) {
        self.may_idle = allow;
    }

    fn park(&mut self, wake: crate::poller::Wake) -> Result<(), crate::poller::Wake> {
        if self.start < self.end || self.eof || self.shared.is_closed() {
            return Err(wake);
        }
        // Complete records rustls holds become plaintext here: then there is more to read.
        let (plaintext, wants_write) = {
            let mut conn = lock(&self.shared.conn);
            let state = conn.process_new_packets();
            (
                state.map(|state| state.plaintext_bytes_to_read()),
                conn.wants_write(),
            )
        };
        if wants_write {
            self.shared.flush_if_idle();
        }
        if plaintext != Ok(0) {
            return Err(wake);
        }
        let fd = std::os::fd::AsRawFd::as_raw_fd(&self.shared.sock);
        self.registration
            .get_or_insert_with(|| crate::poller::Registration::new(fd))
            .arm(wake)?;
        self.raw = Box::default();
        Ok(())
    }
}

impl Read for PlainReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.shared.is_closed() {
            return Ok(0);
        }
        match self.read_plain(buf) {
            Err(_) if self.shared.is_closed() => Ok(0),
            other => other,
        }
    }
}

impl PlainReader {
    fn read_plain(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            {
                let mut conn = lock(&self.shared.conn);
                match conn.reader().read(buf) {
                    // Plaintext, or a clean close_notify.
                    Ok(n) => return Ok(n),
                    // The socket ended without close_notify. The framing still tells a torn
                    // frame from a clean end between frames, so treat it as end of stream.
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                if self.start < self.end || self.eof {
                    let mut pending = &self.raw[self.start..self.end];
                    let before = pending.len();
                    conn.read_tls(&mut pending)?;
                    self.start += before - pending.len();
                    let processed = conn.process_new_packets();
                    let wants_write = conn.wants_write();
                    drop(conn);
                    if wants_write {
                        self.shared.flush_if_idle();
                    }
                    if let Err(e) = processed {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                    }
                    if self.eof && self.start == self.end {
                        // rustls has seen the end; the next reader().read reports it.
                        let mut conn = lock(&self.shared.conn);
                        return match conn.reader().read(buf) {
                            Ok(n) => Ok(n),
                            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
                            Err(e) => Err(e),
                        };
                    }
                    continue;
                }
            }
            // Nothing buffered anywhere: wait for the socket, without the lock.
            if self.raw.is_empty() {
                self.raw = vec![0; RAW_READ].into_boxed_slice();
            }
            match (&self.shared.sock).read(&mut self.raw) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.start = 0;
                    self.end = n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The idle timeout: only the framing's first read of a frame gives up.
                Err(e)
                    if self.idle
                        && matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                {
                    if self.may_idle {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The reading half: frames from the decrypted stream, with TLS failures reported as
/// [`TransportError::Tls`].
pub(super) struct TlsReader {
    pub(super) inner: StreamReader<PlainReader>,
}

impl FrameReader for TlsReader {
    fn recv(&mut self) -> Result<Option<Frame>, TransportError> {
        FrameReader::recv(&mut self.inner).map_err(|e| match e {
            TransportError::Io(e)
                if e.get_ref()
                    .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()) =>
            {
                TransportError::Tls(e.to_string())
            }
            other => other,
        })
    }

    fn set_limits(&mut self, limits: &Limits) {
        self.inner.set_limits(limits);
    }

    fn progress(&self) -> Option<crate::Progress> {
        Some(self.inner.progress().clone())
    }

    fn set_idle_timeout(&mut self, idle: Duration) -> bool {
        self.inner.set_idle_timeout(idle)
    }

    fn park(&mut self, wake: crate::poller::Wake) -> Result<(), crate::poller::Wake> {
        self.inner.park(wake)
    }
}
