//! Socket transports (TCP, Unix): one descriptor per connection, split into a framed reader and
//! writer that share it; readiness polling beside an interrupting event fd; shutdown from any
//! thread; a write timeout so a peer that stops reading cannot hold a writer for ever.
//!
//! A connection costs one descriptor, the socket, plus an event fd while a caller waits on it
//! (created when a thread first waits for the socket beside it, closed when the connection
//! parks or the reader goes). An idle connection parks in the process's poller
//! (`poller.rs`): its reads give up after the idle timeout between frames, never inside one.

use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use pynto_proto::Frame;

use crate::framing::{StreamReader, StreamWriter};
use crate::poller::{Registration, Wake};
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
        registration: None,
        socket: Arc::clone(&socket),
        closed: Arc::clone(&closed),
        idle: None,
        may_idle: false,
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
///
/// With an idle timeout (`SO_RCVTIMEO`), a read that waits that long gives up with
/// `WouldBlock` only when the framing allows it (the first read of a frame); any other read
/// waits on, so a frame that arrives slowly is never cut.
pub(crate) struct ClosableRead<S> {
    /// Declared before `socket`: removed from the poller while the descriptor is open.
    registration: Option<Registration>,
    socket: Arc<S>,
    closed: Arc<AtomicBool>,
    /// The idle timeout set on the socket, if any.
    idle: Option<Duration>,
    /// The next read may give up at the idle timeout.
    may_idle: bool,
}

impl<S: Socket> Read for ClosableRead<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.closed.load(Ordering::Acquire) {
                return Ok(0);
            }
            return match self.socket.read_shared(buf) {
                Err(_) if self.closed.load(Ordering::Acquire) => Ok(0),
                Err(e) if self.idle.is_some() && would_block(&e) && !self.may_idle => continue,
                other => other,
            };
        }
    }
}

fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

impl<S: Socket> Readiness for ClosableRead<S> {
    fn readiness_fd(&self) -> Option<RawFd> {
        Some(self.socket.as_raw_fd())
    }

    fn set_idle_timeout(&mut self, idle: Duration) -> bool {
        // Idling is for parking: not without a poller.
        let ok = crate::poller::available()
            && set_receive_timeout(self.socket.as_raw_fd(), idle).is_ok();
        if ok {
            self.idle = Some(idle);
        }
        ok
    }

    fn allow_idle(&mut self, allow: bool) {
        self.may_idle = allow;
    }

    fn park(&mut self, wake: Wake) -> Result<(), Wake> {
        if self.closed.load(Ordering::Acquire) {
            return Err(wake);
        }
        let fd = self.socket.as_raw_fd();
        self.registration
            .get_or_insert_with(|| Registration::new(fd))
            .arm(wake)
    }
}

/// `SO_RCVTIMEO`: a blocking read waits at most `timeout`, then fails with `WouldBlock`.
fn set_receive_timeout(fd: RawFd, timeout: Duration) -> io::Result<()> {
    // A zero timeval would mean "no timeout".
    let timeout = timeout.max(Duration::from_micros(1));
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: setsockopt with a valid descriptor and a pointer to a live timeval.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
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

/// What a framed stream waits on for readiness, and how it idles.
pub trait Readiness {
    /// The descriptor to poll, or `None` (then readiness is reported at once).
    fn readiness_fd(&self) -> Option<RawFd>;
    /// Make a read that may idle (see [`Readiness::allow_idle`]) give up with `WouldBlock`
    /// after `idle` with nothing to read. False where the stream cannot (the default).
    fn set_idle_timeout(&mut self, _idle: Duration) -> bool {
        false
    }
    /// Whether the next reads may give up at the idle timeout (true only for the first read
    /// of a frame; other reads wait on).
    fn allow_idle(&mut self, _allow: bool) {}
    /// Run `wake` once, from the process's poller, when the stream is readable. `Err(wake)`
    /// where the stream cannot be polled (the default).
    fn park(&mut self, wake: Wake) -> Result<(), Wake> {
        Err(wake)
    }
}

impl Readiness for std::process::ChildStdout {
    fn readiness_fd(&self) -> Option<RawFd> {
        Some(self.as_raw_fd())
    }
}

impl Readiness for std::fs::File {
    fn readiness_fd(&self) -> Option<RawFd> {
        Some(self.as_raw_fd())
    }
}

/// A reader's event fd, polled beside its socket so a waiting caller can be interrupted. It
/// exists only while needed: made when a thread first waits, closed when the connection parks
/// (an idle connection then costs its socket alone). [`crate::Interrupter`]s hold it weakly.
#[derive(Default)]
pub(crate) struct WakeFd {
    /// The event fd's number while it is open (read without the lock by the reader's holder,
    /// the only one who closes it), or -1.
    raw: std::sync::atomic::AtomicI32,
    state: std::sync::Mutex<WakeState>,
}

#[derive(Default)]
struct WakeState {
    fd: Option<OwnedFd>,
    /// Poked while no event fd was open: the next one is made poked.
    pending: bool,
}

impl WakeFd {
    pub(crate) fn new() -> Arc<WakeFd> {
        Arc::new(WakeFd {
            raw: std::sync::atomic::AtomicI32::new(-1),
            state: Default::default(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, WakeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The event fd to poll, made now if need be (`None` if none can be made). Only the
    /// reader's holder calls this, and only it calls [`WakeFd::close`].
    pub(crate) fn fd(&self) -> Option<RawFd> {
        let raw = self.raw.load(Ordering::Acquire);
        if raw >= 0 {
            return Some(raw);
        }
        let mut state = self.state();
        // SAFETY: eventfd returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return None;
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        let owned = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        if std::mem::take(&mut state.pending) {
            write_one(fd);
        }
        state.fd = Some(owned);
        self.raw.store(fd, Ordering::Release);
        Some(fd)
    }

    /// Close the event fd (a poke that comes later is kept for the next one).
    pub(crate) fn close(&self) {
        let mut state = self.state();
        self.raw.store(-1, Ordering::Release);
        state.fd = None;
    }

    fn poke(&self) {
        let mut state = self.state();
        match &state.fd {
            Some(fd) => write_one(fd.as_raw_fd()),
            None => state.pending = true,
        }
    }
}

fn write_one(fd: RawFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a valid u64 to an open event fd.
    unsafe {
        libc::write(fd, (&one as *const u64).cast(), 8);
    }
}

/// An interrupter that pokes `wake` while the reader that owns it lives (the reader holds the
/// only strong reference, so the event fd closes with the reader).
pub(crate) fn poke(wake: Weak<WakeFd>) -> crate::Interrupter {
    crate::Interrupter::new(move || {
        if let Some(wake) = wake.upgrade() {
            wake.poke();
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
