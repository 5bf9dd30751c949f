//! Errors a caller of the runtime sees, named after what the caller should do about them.

use std::fmt;

use pynto_proto::{ErrorKind, Failure};

/// Why a call, or the session it was made on, failed.
#[derive(Clone, Debug, PartialEq)]
pub enum Error {
    /// The peer ran the operation and it failed; the report says how.
    Remote(Failure),
    /// The connection is closed (or closed while the call waited). The text says why.
    ConnectionClosed(String),
    /// The call ran past its timeout. The request was cancelled on the peer.
    Timeout,
    /// The peer broke the protocol, or the Hello exchange failed (version, token, limits).
    /// The connection is closed.
    Protocol(String),
    /// The host (the local binding) asked to stop waiting, e.g. on Ctrl-C. The request was
    /// cancelled on the peer.
    Interrupted(String),
    /// A local limit was hit before anything was sent (objects exported, requests in flight).
    Overloaded(String),
}

impl Error {
    /// The failure kind a remote report carries, if this is one.
    pub fn remote_kind(&self) -> Option<ErrorKind> {
        match self {
            Error::Remote(f) => Some(f.kind),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Remote(failure) => {
                write!(f, "{}: {}", failure.type_name, failure.message)?;
                if !failure.traceback.is_empty() {
                    write!(f, "\n\n{}", failure.traceback.trim_end())?;
                }
                Ok(())
            }
            Error::ConnectionClosed(why) => write!(f, "connection closed: {why}"),
            Error::Timeout => write!(f, "the call timed out"),
            Error::Protocol(why) => write!(f, "protocol error: {why}"),
            Error::Interrupted(why) => write!(f, "interrupted: {why}"),
            Error::Overloaded(why) => write!(f, "overloaded: {why}"),
        }
    }
}

impl std::error::Error for Error {}
