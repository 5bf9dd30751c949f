//! pynto's transports: how protocol frames cross a byte stream. TODO(helper): fill in.
//!
//! The contract the runtime relies on (do not change the signatures without asking):

use pynto_proto::{Frame, Limits};

/// The receiving half of a transport, owned by the connection's one reader thread.
pub trait FrameReader: Send {
    /// The next frame. `Ok(None)` is a clean end of stream between frames; a stream that ends
    /// inside a frame is [`TransportError::Torn`].
    fn recv(&mut self) -> Result<Option<Frame>, TransportError>;
    /// Apply this side's limits to what is received from now on (body size, message size).
    fn set_limits(&mut self, limits: &Limits);
}

/// The sending half of a transport, shared by all threads of a connection behind a mutex: each
/// caller writes its own frame.
pub trait FrameWriter: Send {
    /// Write one frame: header, body and attachments, with one vectored write where possible.
    fn send(&mut self, frame: &Frame) -> Result<(), TransportError>;
    /// Close the transport in both directions, so the reader's `recv` returns promptly.
    /// Idempotent; never blocks for long and never fails.
    fn shutdown(&mut self);
}

/// A connected transport, before it is split between the reader thread and the writers.
pub trait Transport: Send {
    /// Split into the reading and writing halves.
    fn split(self: Box<Self>) -> (Box<dyn FrameReader>, Box<dyn FrameWriter>);
    /// Where the other end is, for logs and errors, e.g. `tcp://127.0.0.1:5000`.
    fn peer(&self) -> String;
}

/// Why a transport failed.
#[derive(Debug)]
pub enum TransportError {
    /// The operating system said no.
    Io(std::io::Error),
    /// The stream ended inside a frame.
    Torn,
}
