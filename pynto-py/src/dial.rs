//! Dialing for `pynto.connect`: the connection within a deadline, the handshake, a look at
//! the first bytes a TCP server sends back (to say so when it speaks TLS or HTTP rather than
//! pynto), and errors that name the address.

use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use pynto_proto::Limits;
use pynto_runtime::{Config, Error, Role, Session};
use pynto_transport::tcp::{self, TcpTransport};
use pynto_transport::{
    Address, FrameReader, FrameWriter, Interrupter, TlsClient, Transport, TransportError,
};
use pyo3::prelude::*;

use crate::errors;
use crate::state::PyHost;

/// Why dialing failed: before the handshake (the transport), or in it (the session).
pub(crate) enum Failed {
    Transport(TransportError),
    Session(Error),
}

/// What the dialing thread hands back.
pub(crate) struct Outcome {
    pub result: Result<Session<PyHost>, Failed>,
    /// The first bytes the server sent, on plain TCP.
    pub first_bytes: Option<Vec<u8>>,
}

/// Asked between waits of the handshake on the calling thread: `true` stops it (Ctrl-C).
pub(crate) type StopCheck = Box<dyn FnMut() -> bool + Send>;

/// How long the calling thread tries a TCP connection itself before handing the dial to a
/// pool thread (where waiting for it can be interrupted): a reachable server answers far
/// sooner, a full accept queue or a lost SYN takes longer.
pub(crate) const QUICK_DIAL: Duration = Duration::from_millis(200);

fn time_left(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

/// On the calling thread (GIL released): dial a TCP address for at most [`QUICK_DIAL`] and,
/// once connected, do the handshake here, asking `stop` between waits. `None` when the dial
/// took too long: then [`dial_and_greet`] on another thread takes over.
#[allow(clippy::too_many_arguments)]
pub(crate) fn quick_dial_and_greet(
    host_name: &str,
    port: u16,
    deadline: Option<Instant>,
    host: &Arc<PyHost>,
    root: &Arc<Py<PyAny>>,
    config: &Config,
    stop: StopCheck,
) -> Option<Outcome> {
    let quick = time_left(deadline).map_or(QUICK_DIAL, |left| left.min(QUICK_DIAL));
    match tcp::dial(host_name, port, Some(quick)) {
        Ok(stream) => Some(greet_tcp(
            stream,
            deadline,
            Arc::clone(host),
            Arc::clone(root),
            config.clone(),
            Some(stop),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => None,
        Err(e) => Some(Outcome {
            result: Err(Failed::Transport(e.into())),
            first_bytes: None,
        }),
    }
}

fn greet_tcp(
    stream: TcpStream,
    deadline: Option<Instant>,
    host: Arc<PyHost>,
    root: Arc<Py<PyAny>>,
    config: Config,
    stop: Option<StopCheck>,
) -> Outcome {
    let seen = Arc::new(Mutex::new(None));
    let probe = stream.try_clone().ok();
    let transport = match TcpTransport::from_stream(stream) {
        Ok(t) => Box::new(Sniffing {
            inner: Box::new(t),
            probe,
            seen: Arc::clone(&seen),
            stop,
        }),
        Err(e) => {
            return Outcome {
                result: Err(Failed::Transport(e)),
                first_bytes: None,
            }
        }
    };
    let result = greet(transport, deadline, host, root, config);
    let first_bytes = seen.lock().take();
    Outcome {
        result: result.map_err(Failed::Session),
        first_bytes,
    }
}

fn greet(
    transport: Box<dyn Transport>,
    deadline: Option<Instant>,
    host: Arc<PyHost>,
    root: Arc<Py<PyAny>>,
    mut config: Config,
) -> Result<Session<PyHost>, Error> {
    if let Some(left) = time_left(deadline) {
        config.handshake_timeout = config
            .handshake_timeout
            .min(left.max(Duration::from_millis(1)));
    }
    Session::connect(transport, Role::Connector, host, root, config)
}

/// Connect to `addr` and do the Hello exchange, both before `deadline` (on a pool thread: the
/// caller waits interruptibly for the outcome).
pub(crate) fn dial_and_greet(
    addr: &Address,
    tls: Option<&TlsClient>,
    deadline: Option<Instant>,
    host: Arc<PyHost>,
    root: Arc<Py<PyAny>>,
    config: Config,
) -> Outcome {
    let failed = |e: TransportError| Outcome {
        result: Err(Failed::Transport(e)),
        first_bytes: None,
    };
    match addr {
        Address::Tcp { host: name, port } => match tcp::dial(name, *port, time_left(deadline)) {
            Ok(stream) => greet_tcp(stream, deadline, host, root, config, None),
            Err(e) => failed(e.into()),
        },
        _ => match pynto_transport::address::connect_timeout(addr, tls, time_left(deadline)) {
            Ok(transport) => Outcome {
                result: greet(transport, deadline, host, root, config).map_err(Failed::Session),
                first_bytes: None,
            },
            Err(e) => failed(e),
        },
    }
}

/// A TCP transport whose reader peeks at the first bytes the server sends before reading
/// them as a frame.
struct Sniffing {
    inner: Box<dyn Transport>,
    probe: Option<TcpStream>,
    seen: Arc<Mutex<Option<Vec<u8>>>>,
    stop: Option<StopCheck>,
}

impl Transport for Sniffing {
    fn split(self: Box<Self>) -> (Box<dyn FrameReader>, Box<dyn FrameWriter>) {
        let (reader, writer) = self.inner.split();
        let reader = SniffingReader {
            inner: reader,
            probe: self.probe,
            seen: self.seen,
            stop: self.stop,
        };
        (Box::new(reader), writer)
    }

    fn peer(&self) -> String {
        self.inner.peer()
    }
}

struct SniffingReader {
    inner: Box<dyn FrameReader>,
    /// A second handle on the socket, dropped after the first look.
    probe: Option<TcpStream>,
    seen: Arc<Mutex<Option<Vec<u8>>>>,
    /// Asked while waiting for the first bytes (the handshake on the calling thread).
    stop: Option<StopCheck>,
}

impl FrameReader for SniffingReader {
    fn recv(&mut self) -> Result<Option<pynto_proto::Frame>, TransportError> {
        if let Some(probe) = self.probe.take() {
            let stop = self.stop.take();
            match peek(&probe, stop) {
                Peeked::Bytes(bytes) => *self.seen.lock() = Some(bytes),
                Peeked::Nothing => {}
                Peeked::Stopped => {
                    return Err(TransportError::Io(std::io::Error::new(
                        std::io::ErrorKind::Interrupted,
                        "interrupted",
                    )))
                }
            }
        }
        self.inner.recv()
    }

    fn set_limits(&mut self, limits: &Limits) {
        self.inner.set_limits(limits);
    }

    fn wait_readable(&mut self, timeout: Duration) -> Result<bool, TransportError> {
        self.inner.wait_readable(timeout)
    }

    fn interrupter(&mut self) -> Option<Interrupter> {
        self.inner.interrupter()
    }

    fn progress(&self) -> Option<pynto_transport::Progress> {
        self.inner.progress()
    }

    fn set_idle_timeout(&mut self, idle: Duration) -> bool {
        self.inner.set_idle_timeout(idle)
    }

    fn park(
        &mut self,
        wake: pynto_transport::poller::Wake,
    ) -> Result<(), pynto_transport::poller::Wake> {
        if self.probe.is_some() {
            return Err(wake);
        }
        self.inner.park(wake)
    }
}

enum Peeked {
    Bytes(Vec<u8>),
    Nothing,
    Stopped,
}

/// The first bytes waiting on `stream`, left there for the frame reader. Waits as the read
/// that follows would (until bytes come, or the stream ends or is shut down by the
/// handshake's deadline), asking `stop` every 50 ms when given.
fn peek(stream: &TcpStream, mut stop: Option<StopCheck>) -> Peeked {
    let mut pollfd = libc::pollfd {
        fd: stream.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let slice = if stop.is_some() { 50 } else { -1 };
    loop {
        // SAFETY: one valid pollfd for a descriptor `stream` keeps open.
        let ready = unsafe { libc::poll(&mut pollfd, 1, slice) };
        if ready > 0 {
            break;
        }
        if ready < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return Peeked::Nothing;
        }
        if stop.as_mut().is_some_and(|stop| stop()) {
            return Peeked::Stopped;
        }
    }
    let mut buf = [0u8; 8];
    // SAFETY: `buf` is writable for its length; MSG_PEEK leaves the bytes in the socket.
    let n = unsafe {
        libc::recv(
            stream.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    if n > 0 {
        Peeked::Bytes(buf[..n as usize].to_vec())
    } else {
        Peeked::Nothing
    }
}

/// What the first bytes of a server's answer say it speaks, when it is not pynto.
fn recognize(addr: &Address, bytes: &[u8]) -> Option<String> {
    if bytes.len() >= 2 && (0x14..=0x17).contains(&bytes[0]) && bytes[1] == 0x03 {
        let tls_address = match addr {
            Address::Tcp { host, port } => Address::Tls {
                host: host.clone(),
                port: *port,
            }
            .to_string(),
            other => other.to_string(),
        };
        return Some(format!(
            "{addr} answered with TLS, not the pynto protocol: connect to {tls_address} \
             with tls=pynto.TLS(...)"
        ));
    }
    if bytes.starts_with(b"HTTP/") {
        return Some(format!(
            "{addr} is an HTTP server, not a pynto server (it answered with HTTP)"
        ));
    }
    None
}

/// The Python exception for a failure before the handshake, naming the address.
pub(crate) fn transport_error(
    py: Python<'_>,
    addr: &Address,
    error: TransportError,
    limit: Option<Duration>,
) -> PyErr {
    let _ = py;
    match error {
        TransportError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
            let within = limit.map_or(String::new(), |t| {
                format!(": no answer within {} s", t.as_secs_f64())
            });
            pyo3::exceptions::PyTimeoutError::new_err(format!("cannot connect to {addr}{within}"))
        }
        TransportError::Io(io) => {
            let code = io.raw_os_error();
            let text = io.to_string();
            let text = match code {
                Some(code) => text
                    .trim_end_matches(&format!(" (os error {code})"))
                    .to_string(),
                None => text,
            };
            let message = format!("cannot connect to {addr}: {text}");
            // The same OSError subclass as the plain error, with the errno kept.
            let class = PyErr::from(io).get_type(py);
            let made = match code {
                Some(code) => class.call1((code, message)),
                None => class.call1((message,)),
            };
            match made {
                Ok(exc) => PyErr::from_value(exc),
                Err(e) => e,
            }
        }
        other => pyo3::exceptions::PyConnectionError::new_err(format!(
            "cannot connect to {addr}: {other}"
        )),
    }
}

/// The Python exception for a failed handshake: a refused token is
/// `pynto.AuthenticationError`; a server speaking TLS or HTTP is named as such.
pub(crate) fn handshake_error(
    py: Python<'_>,
    addr: &Address,
    error: Error,
    first_bytes: Option<&[u8]>,
    rebuild: bool,
) -> PyErr {
    if let Some(message) = first_bytes.and_then(|b| recognize(addr, b)) {
        return errors::protocol_error(py, message);
    }
    match error {
        // A refused token (or client certificate): the runtime's own error kind.
        Error::Authentication(why) => errors::authentication_error(py, format!("{addr}: {why}")),
        Error::Protocol(why) => {
            errors::to_py(py, Error::Protocol(format!("{addr}: {why}")), rebuild)
        }
        Error::ConnectionClosed(why) => errors::to_py(
            py,
            Error::ConnectionClosed(format!("{addr}: {why}")),
            rebuild,
        ),
        other => errors::to_py(py, other, rebuild),
    }
}
