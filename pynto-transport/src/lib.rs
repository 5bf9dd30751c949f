//! pynto's transports: how protocol frames cross a byte stream.
//!
//! This crate moves [`Frame`]s — a msgpack body plus bulk attachments — between two pynto
//! peers. It provides the wire framing ([`framing`]) and blocking transports over TCP
//! ([`tcp`]), Unix sockets ([`unix`]), TLS over TCP ([`tls`], rustls with the `ring`
//! provider), the process's own stdin/stdout ([`stdio`]), a child process's pipes
//! ([`child`]), and an in-process pair for tests ([`memory`]). [`Address`] parses the
//! `tcp://`, `unix://` and `tls://` forms, [`connect`] dials one and [`Listener`] accepts on
//! one.
//!
//! What it is not: it does not encode or decode messages (that is `pynto-proto`), does not run
//! a connection (that is `pynto-runtime`), and is not async. Whichever thread holds a
//! connection's [`FrameReader`] blocks in [`FrameReader::recv`] (the runtime passes that role
//! between threads), and callers write their own frames through [`FrameWriter::send`] under a
//! mutex, with no hand-off thread, for latency. Both halves count the bytes they move
//! ([`Progress`]), so the runtime can judge a peer by bytes rather than whole frames.
//!
//! ```
//! use bytes::Bytes;
//! use pynto_proto::Frame;
//! use pynto_transport::{memory, Transport};
//!
//! let (a, b) = memory::pair();
//! let (_a_reader, mut a_writer) = Box::new(a).split();
//! let (mut b_reader, _b_writer) = Box::new(b).split();
//! let frame = Frame { body: Bytes::from_static(b"hello"), attachments: vec![] };
//! a_writer.send(&frame).unwrap();
//! assert_eq!(b_reader.recv().unwrap(), Some(frame));
//! a_writer.shutdown();
//! assert_eq!(b_reader.recv().unwrap(), None);
//! ```
//!
//! The contract the runtime relies on is the three traits [`FrameReader`], [`FrameWriter`]
//! and [`Transport`].

#![warn(missing_docs)]

use std::fmt;
use std::sync::Arc;

use pynto_proto::{Frame, Limits};

pub mod address;
pub mod bulk;
pub mod child;
pub mod framing;
pub mod memory;
pub mod poller;
pub mod progress;
pub mod socket;
pub mod stdio;
pub mod tcp;
pub mod tls;
pub mod unix;

pub use address::{connect, Address, Incoming, Listener};
pub use bulk::{drain_into, Parts};
pub use framing::{advise_huge_pages, StreamReader, StreamWriter, MAX_ATTACHMENTS};
pub use progress::{InFlight, Progress};
pub use tls::{TlsClient, TlsServer};

/// The rustls version this crate is built against, so callers can build configurations with
/// matching types.
pub use rustls;

/// The receiving half of a transport, held by whichever thread reads the connection.
pub trait FrameReader: Send {
    /// The next frame. `Ok(None)` is a clean end of stream between frames; a stream that ends
    /// inside a frame is [`TransportError::Torn`].
    fn recv(&mut self) -> Result<Option<Frame>, TransportError>;
    /// Apply this side's limits to what is received from now on (body size, message size).
    fn set_limits(&mut self, limits: &Limits);
    /// Wait at most `timeout` for bytes (or the end of the stream) to be readable, so that a
    /// thread about to `recv` can stop now and then to check for signals and timeouts. `true`
    /// means `recv` will not block for long; `false` means the time ran out (or a signal
    /// arrived). Transports that cannot tell report `true` at once, and `recv` blocks.
    fn wait_readable(&mut self, _timeout: std::time::Duration) -> Result<bool, TransportError> {
        Ok(true)
    }
    /// A handle that makes a `wait_readable` in progress (or the next one) return `false` at
    /// once, from any thread; `None` where the transport cannot be interrupted (then `recv`
    /// should be left to a thread that has nothing else to do).
    fn interrupter(&mut self) -> Option<Interrupter> {
        None
    }
    /// The bytes received so far and the frame being received, where the transport counts
    /// them (every byte-stream transport does).
    fn progress(&self) -> Option<Progress> {
        None
    }
    /// Make `recv` give up with [`TransportError::Idle`] when no byte of a new frame has come
    /// for `idle` (never once a frame has begun: its bytes may come as slowly as they like).
    /// False where the transport cannot (the default); its `recv` then waits as before.
    fn set_idle_timeout(&mut self, _idle: std::time::Duration) -> bool {
        false
    }
    /// Park an idle reader: free what it need not keep while idle (its read buffer, its event
    /// fd) and have the process's poller ([`poller`]) run `wake` once, on its own thread, when
    /// the transport is readable again. Whoever holds the reader may still `recv` meanwhile.
    /// `Err(wake)` where the transport cannot be polled, or holds received bytes (the
    /// default): then keep reading with `recv`.
    fn park(&mut self, wake: poller::Wake) -> Result<(), poller::Wake> {
        Err(wake)
    }
}

/// Interrupts a reader's `wait_readable` from any thread. Cheap to clone.
#[derive(Clone)]
pub struct Interrupter(Arc<dyn Fn() + Send + Sync>);

impl Interrupter {
    /// An interrupter that runs `poke`.
    pub fn new(poke: impl Fn() + Send + Sync + 'static) -> Self {
        Interrupter(Arc::new(poke))
    }

    /// Make the reader's wait return. Never blocks for long and never fails.
    pub fn interrupt(&self) {
        (self.0)()
    }
}

impl fmt::Debug for Interrupter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Interrupter")
    }
}

/// The sending half of a transport, shared by all threads of a connection behind a mutex: each
/// caller writes its own frame.
pub trait FrameWriter: Send {
    /// Write one frame: header, body and attachments, with one vectored write where possible.
    fn send(&mut self, frame: &Frame) -> Result<(), TransportError>;
    /// Write `frames` in order, in as few system calls as the transport can (a reply and the
    /// releases queued before it, together). The default sends them one by one.
    fn send_batch(&mut self, frames: &[&Frame]) -> Result<(), TransportError> {
        frames.iter().try_for_each(|frame| self.send(frame))
    }
    /// Write the next record of `frame` sent in parts (the head, then one chunk per call; see
    /// [`bulk`]), so the caller can let go of the writer between records and other frames
    /// can go between them. True once the whole frame is out. Only for a peer that announced
    /// [`bulk::FEATURE`]. Transports that carry frames whole send it all at the first call.
    fn send_part(&mut self, frame: &Frame, parts: &mut Parts) -> Result<bool, TransportError> {
        let _ = parts;
        self.send(frame)?;
        Ok(true)
    }
    /// Close the transport in both directions, so the reader's `recv` returns promptly.
    /// Idempotent; never blocks for long and never fails.
    fn shutdown(&mut self);
    /// A handle that shuts the transport down from any thread without going through the
    /// writer (and so without waiting for a `send` blocked on a full socket), when the
    /// transport supports it. The default is `None`.
    fn shutdown_handle(&self) -> Option<ShutdownHandle> {
        None
    }
    /// Fail a `send` that waits longer than `timeout` for the peer to take any bytes, with
    /// [`TransportError::WriteTimeout`] (the frame is then torn: the connection must close).
    /// Transports that cannot bound a write ignore it.
    fn set_write_timeout(&mut self, _timeout: Option<std::time::Duration>) {}
    /// The bytes sent so far and the frame being sent, where the transport counts them.
    fn progress(&self) -> Option<Progress> {
        None
    }
}

/// A connected transport, before it is split into its reading half (held by whichever thread
/// reads the connection) and its writing half (shared by the threads that write).
pub trait Transport: Send {
    /// Split into the reading and writing halves.
    fn split(self: Box<Self>) -> (Box<dyn FrameReader>, Box<dyn FrameWriter>);
    /// Where the other end is, for logs and errors, e.g. `tcp://127.0.0.1:5000`.
    fn peer(&self) -> String;
}

impl fmt::Debug for dyn Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Transport({})", self.peer())
    }
}

/// Shuts a transport down from any thread: both directions close, a blocked `recv` returns
/// and a blocked `send` fails. Cheap to clone; shutting down twice is harmless.
#[derive(Clone)]
pub struct ShutdownHandle(Arc<dyn Fn() + Send + Sync>);

impl ShutdownHandle {
    /// A handle that runs `close` when asked to shut down.
    pub fn new(close: impl Fn() + Send + Sync + 'static) -> Self {
        ShutdownHandle(Arc::new(close))
    }

    /// Shut the transport down. Never blocks for long and never fails.
    pub fn shutdown(&self) {
        (self.0)()
    }
}

impl fmt::Debug for ShutdownHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ShutdownHandle")
    }
}

/// Why a transport failed.
#[derive(Debug)]
pub enum TransportError {
    /// The operating system said no.
    Io(std::io::Error),
    /// The stream ended inside a frame.
    Torn,
    /// A frame's body is larger than the receiver's `max_frame` (or than the wire format's
    /// 32-bit length when sending). Refused before the body is read.
    FrameTooLarge {
        /// The body's length in bytes.
        len: u64,
        /// The limit it exceeds.
        max: u64,
    },
    /// A frame's body and attachments together exceed the receiver's `max_message`. Refused
    /// before the offending part is read, so `len` is the size known at that point.
    MessageTooLarge {
        /// The message size known when it was refused (a lower bound of its size).
        len: u64,
        /// The limit it exceeds.
        max: u64,
    },
    /// A frame claims more attachments than [`MAX_ATTACHMENTS`].
    TooManyAttachments {
        /// The number of attachments claimed.
        count: u64,
        /// The limit it exceeds.
        max: u64,
    },
    /// TLS failed: configuration, certificates, the handshake or a protocol error.
    Tls(String),
    /// An address could not be parsed or used.
    Address(String),
    /// The transport was shut down (or its peer went away) and can no longer send.
    Closed,
    /// The peer took no bytes for this long while a frame was being sent to it.
    WriteTimeout(std::time::Duration),
    /// The records of a chunked frame came out of order, or a chunk overran its attachment.
    Chunks(String),
    /// No frame began within the reader's idle timeout ([`FrameReader::set_idle_timeout`]).
    /// Nothing is lost: the reader may `recv` again, or park.
    Idle,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::Io(e) => write!(f, "transport I/O error: {e}"),
            TransportError::Torn => f.write_str("the stream ended inside a frame"),
            TransportError::FrameTooLarge { len, max } => {
                write!(
                    f,
                    "frame body of {len} bytes exceeds the limit of {max} bytes"
                )
            }
            TransportError::MessageTooLarge { len, max } => write!(
                f,
                "message of at least {len} bytes exceeds the limit of {max} bytes"
            ),
            TransportError::TooManyAttachments { count, max } => write!(
                f,
                "frame has {count} attachments, more than the limit of {max}"
            ),
            TransportError::Tls(msg) => write!(f, "TLS error: {msg}"),
            TransportError::Address(msg) => write!(f, "bad address: {msg}"),
            TransportError::Closed => f.write_str("the transport is closed"),
            TransportError::Chunks(why) => write!(f, "bad chunked frame: {why}"),
            TransportError::WriteTimeout(limit) => write!(
                f,
                "the peer read nothing for {:.1} s while a frame was sent to it",
                limit.as_secs_f64()
            ),
            TransportError::Idle => f.write_str("no frame began within the idle timeout"),
        }
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TransportError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for TransportError {
    fn from(e: std::io::Error) -> Self {
        TransportError::Io(e)
    }
}
