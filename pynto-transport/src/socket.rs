//! Socket transports (TCP, Unix): one descriptor per connection, split into a framed reader and
//! writer that share it; readiness polling beside an interrupting event fd; shutdown from any
//! thread; a write timeout so a peer that stops reading cannot hold a writer for ever.
//!
//! A connection costs two descriptors: the socket, and the event fd its reader polls beside it
//! (created on first use, closed with the reader).

use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use pynto_proto::Frame;

use crate::framing::{StreamReader, StreamWriter};
use crate::{FrameReader, FrameWriter, Progress, TransportError};

/// A connected socket that both halves of a connection use at once, through shared references.
pub(crate) trait Socket: AsRawFd + Send + Sync + 'static {
    /// Shut both directions (a blocked reader returns, a blocked writer fails).
    fn shut(&self);
    /// Read into `buf` through a shared reference.
    fn read_shared(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Write `bufs` through a shared reference.
    fn write_shared(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
    /// How long one write may wait for the peer to take bytes (`None`: for ever).
    fn set_send_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
}

macro_rules! socket_impl {
    ($ty:ty) => {
        impl Socket for $ty {
            fn shut(&self) {
                let _ = self.shutdown(std::net::Shutdown::Both);
            }
            fn read_shared(&self, buf: &mut [u8]) -> io::Result<usize> {
                (&*self).read(buf)
            }
            fn write_shared(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
                (&*self).write_vectored(bufs)
            }
            fn set_send_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
                self.set_write_timeout(timeout)
            }
        }
    };
}

socket_impl!(std::net::TcpStream);
socket_impl!(std::os::unix::net::UnixStream);

/// Split a connected socket into a framed reader and writer sharing its one descriptor.
pub(crate) fn split_socket<S: Socket>(stream: S) -> (Box<dyn FrameReader>, Box<dyn FrameWriter>) {
    let socket = Arc::new(stream);
    let closed = Arc::new(AtomicBool::new(false));
    let reader = StreamReader::new(ClosableRead {
        socket: Arc::clone(&socket),
        closed: Arc::clone(&closed),
    });
    let writer = SocketWriter {
        writer: StreamWriter::new(SharedWrite(Arc::clone(&socket))),
        socket,
        closed,
        write_timeout: None,
    };
    (Box::new(reader), Box::new(writer))
}

/// The read half of a socket that reports end of stream instead of an error once the
/// transport has been shut down locally (after our own shutdown the kernel may answer late
/// data from the peer with a reset, which is no news to us).
pub(crate) struct ClosableRead<S> {
    socket: Arc<S>,
    closed: Arc<AtomicBool>,
}

impl<S: Socket> AsRawFd for ClosableRead<S> {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl<S: Socket> Read for ClosableRead<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.closed.load(Ordering::Acquire) {
            return Ok(0);
        }
        match self.socket.read_shared(buf) {
            Err(_) if self.closed.load(Ordering::Acquire) => Ok(0),
            other => other,
        }
    }
}

/// The socket as a `Write`, for the framing.
struct SharedWrite<S>(Arc<S>);

impl<S: Socket> Write for SharedWrite<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_shared(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.write_shared(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The writing half of a socket transport: frames out through the shared socket; shutting down
/// needs no lock, so a send blocked on a full socket never delays it.
struct SocketWriter<S: Socket> {
    writer: StreamWriter<SharedWrite<S>>,
    socket: Arc<S>,
    /// Tells the reading half that the end of stream it will see is ours.
    closed: Arc<AtomicBool>,
    write_timeout: Option<Duration>,
}

/// A send that waited out the write timeout `limit` is a [`TransportError::WriteTimeout`].
pub(crate) fn timed_out<T>(
    sent: Result<T, TransportError>,
    limit: Option<Duration>,
) -> Result<T, TransportError> {
    sent.map_err(|e| match (e, limit) {
        (TransportError::Io(io), Some(limit))
            if matches!(
                io.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            TransportError::WriteTimeout(limit)
        }
        (e, _) => e,
    })
}

impl<S: Socket> FrameWriter for SocketWriter<S> {
    fn send(&mut self, frame: &Frame) -> Result<(), TransportError> {
        let sent = self.writer.send(frame);
        timed_out(sent, self.write_timeout)
    }

    fn send_batch(&mut self, frames: &[&Frame]) -> Result<(), TransportError> {
        let sent = self.writer.send_batch(frames);
        timed_out(sent, self.write_timeout)
    }

    fn send_part(
        &mut self,
        frame: &Frame,
        parts: &mut crate::Parts,
    ) -> Result<bool, TransportError> {
        let sent = self.writer.send_part(frame, parts);
        timed_out(sent, self.write_timeout)
    }

    fn shutdown(&mut self) {
        self.closed.store(true, Ordering::Release);
        self.socket.shut();
    }

    /// Holds the socket weakly: once both halves are dropped its descriptor closes, whoever
    /// keeps the handle.
    fn shutdown_handle(&self) -> Option<crate::ShutdownHandle> {
        let (socket, closed) = (Arc::downgrade(&self.socket), Arc::clone(&self.closed));
        Some(crate::ShutdownHandle::new(move || {
            closed.store(true, Ordering::Release);
            if let Some(socket) = socket.upgrade() {
                socket.shut();
            }
        }))
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) {
        if self.socket.set_send_timeout(timeout).is_ok() {
            self.write_timeout = timeout;
        }
    }

    fn progress(&self) -> Option<Progress> {
        Some(self.writer.progress().clone())
    }
}

/// What a framed stream waits on for readiness: its file descriptor, where it has one.
pub trait Readiness {
    /// The descriptor to poll, or `None` (then readiness is reported at once).
    fn readiness_fd(&self) -> Option<RawFd>;
}

impl<T: AsRawFd> Readiness for T {
    fn readiness_fd(&self) -> Option<RawFd> {
        Some(self.as_raw_fd())
    }
}

/// A fresh non-blocking event fd, for interrupting a reader's poll.
pub(crate) fn event_fd() -> Option<Arc<OwnedFd>> {
    // SAFETY: eventfd returns a new descriptor or -1.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    Some(Arc::new(unsafe {
        <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd)
    }))
}

/// An interrupter that pokes `wake` while the reader that owns it lives (the reader holds the
/// only strong reference, so the event fd closes with the reader).
pub(crate) fn poke(wake: Weak<OwnedFd>) -> crate::Interrupter {
    crate::Interrupter::new(move || {
        if let Some(fd) = wake.upgrade() {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a valid u64 to an event fd kept open by `fd`.
            unsafe {
                libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8);
            }
        }
    })
}

/// `poll(2)` a descriptor for input, beside an optional wake-up event fd. A hang-up or error
/// counts as readable: `recv` then reports it. A signal, a wake-up or the timeout report
/// `false`, so the caller looks at what else it has to do.
pub(crate) fn poll_readable(
    fd: RawFd,
    wake: Option<RawFd>,
    timeout: Duration,
) -> Result<bool, TransportError> {
    let mut fds = [
        libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: wake.unwrap_or(-1),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let count = if wake.is_some() { 2 } else { 1 };
    let millis = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: `count` valid pollfds, for the duration of the call.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), count, millis) };
    if n < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(TransportError::Io(err));
    }
    if count == 2 && fds[1].revents != 0 {
        let mut counter: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64 from a non-blocking event fd.
        unsafe {
            libc::read(fds[1].fd, (&mut counter as *mut u64).cast(), 8);
        }
        return Ok(false);
    }
    Ok(fds[0].revents != 0)
}

/// Turn TCP keepalive on, so an idle connection whose peer's host vanished (no reset) is found
/// by the kernel within about two minutes instead of never.
pub(crate) fn keepalive(stream: &std::net::TcpStream) {
    let fd = stream.as_raw_fd();
    let set = |level: libc::c_int, name: libc::c_int, value: libc::c_int| {
        // SAFETY: setsockopt with a valid descriptor and a pointer to a live c_int.
        unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    };
    set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, 60);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, 10);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 6);
}
