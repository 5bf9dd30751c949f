//! Errors a caller of the runtime sees, named after what the caller should do about them.
//!
//! The kinds a caller decides on are variants of their own, so nobody matches text:
//! [`Error::Authentication`] (the token was refused, by this side or by the peer),
//! [`Error::VersionMismatch`] (the peers speak different protocol versions) and
//! [`Error::Transport`] (the connection broke under an I/O error, whose [`io::ErrorKind`] it
//! keeps). Every variant displays as it did before these kinds existed: a refused Hello reads
//! `protocol error: ...`, a broken transport `connection closed: ...`.
//!
//! The wire's `Goodbye` carries only a reason text. A refused Hello's reason starts with
//! [`AUTHENTICATION_FAILED`] or [`VERSION_MISMATCH`] (docs/protocol.md, "The Hello exchange"); the
//! side that receives it turns it back into its kind in [`Error::refused_by_peer`], the one
//! place that reads a reason.

use std::fmt;
use std::io;

use pynto_proto::{ErrorKind, Failure, Message, PROTOCOL_VERSION};
use pynto_transport::TransportError;

/// How the reason of a Goodbye that refuses a token begins.
pub const AUTHENTICATION_FAILED: &str = "authentication failed";

/// How the reason of a Goodbye that refuses a protocol version begins.
pub const VERSION_MISMATCH: &str = "protocol version mismatch";

/// Why a call, or the session it was made on, failed.
#[derive(Clone, Debug, PartialEq)]
pub enum Error {
    /// The peer ran the operation and it failed; the report says how.
    Remote(Failure),
    /// The connection is closed (or closed while the call waited). The text says why.
    ConnectionClosed(String),
    /// The connection broke under an error of its transport (a reset, a broken pipe, a stream
    /// that ended inside a frame). The connection is closed. `kind` is the operating system's
    /// error kind (`UnexpectedEof` for a torn frame, `NotConnected` for a transport already
    /// shut, `Other` for a cause that is not an I/O error); `why` is the text shown.
    Transport {
        /// What the operating system said, for callers that decide on it (retry or not).
        kind: io::ErrorKind,
        /// What was happening, and the transport's own message.
        why: String,
    },
    /// The call ran past its timeout. The request was cancelled on the peer.
    Timeout,
    /// The peer broke the protocol, or the Hello exchange failed (limits, a malformed or
    /// missing Hello). The connection is closed.
    Protocol(String),
    /// The Hello exchange failed on credentials: the token was missing or wrong, refused by
    /// this side (the text starts with [`AUTHENTICATION_FAILED`]) or by the peer (the text
    /// starts with `the peer refused the connection: `); or TLS refused a certificate after the
    /// dial (TLS 1.3 checks the client's then). The connection is closed.
    Authentication(String),
    /// The peers speak different protocol versions. The connection is closed.
    VersionMismatch {
        /// This side's protocol version.
        ours: u32,
        /// The peer's, when its Hello said so; `None` when the peer refused ours first.
        theirs: Option<u32>,
        /// The reason, naming both versions as far as they are known.
        reason: String,
    },
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

    /// The connection broke under `cause` while doing `context` (e.g. "the connection broke").
    pub fn transport(context: &str, cause: &TransportError) -> Error {
        let kind = match cause {
            TransportError::Io(e) => e.kind(),
            TransportError::Torn => io::ErrorKind::UnexpectedEof,
            TransportError::Closed => io::ErrorKind::NotConnected,
            _ => io::ErrorKind::Other,
        };
        Error::Transport {
            kind,
            why: format!("{context}: {cause}"),
        }
    }

    /// The error for a Goodbye the peer sent instead of its Hello, of the kind its reason
    /// names.
    pub fn refused_by_peer(reason: &str) -> Error {
        let text = format!("the peer refused the connection: {reason}");
        if reason.starts_with(AUTHENTICATION_FAILED) {
            Error::Authentication(text)
        } else if reason.starts_with(VERSION_MISMATCH) {
            Error::VersionMismatch {
                ours: PROTOCOL_VERSION,
                theirs: None,
                reason: text,
            }
        } else {
            Error::Protocol(text)
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
            Error::ConnectionClosed(why) | Error::Transport { why, .. } => {
                write!(f, "connection closed: {why}")
            }
            Error::Timeout => write!(f, "the call timed out"),
            Error::Protocol(why)
            | Error::Authentication(why)
            | Error::VersionMismatch { reason: why, .. } => write!(f, "protocol error: {why}"),
            Error::Interrupted(why) => write!(f, "interrupted: {why}"),
            Error::Overloaded(why) => write!(f, "overloaded: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// The error of a write that failed on the transport.
pub(crate) fn transport_error(e: TransportError) -> Error {
    Error::transport("the transport failed", &e)
}

/// A message's name, for errors.
pub(crate) fn message_name(msg: &Message) -> &'static str {
    match msg {
        Message::Hello(_) => "Hello",
        Message::Request(_) => "Request",
        Message::Reply { .. } => "Reply",
        Message::Failure { .. } => "Failure",
        Message::Release(_) => "Release",
        Message::Cancel { .. } => "Cancel",
        Message::Finish { .. } => "Finish",
        Message::Goodbye { .. } => "Goodbye",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peers_refusal_keeps_its_kind() {
        assert_eq!(
            Error::refused_by_peer("authentication failed: wrong token"),
            Error::Authentication(
                "the peer refused the connection: authentication failed: wrong token".into()
            )
        );
        let version = Error::refused_by_peer("protocol version mismatch: this side speaks 1");
        assert!(
            matches!(
                version,
                Error::VersionMismatch {
                    ours: PROTOCOL_VERSION,
                    theirs: None,
                    ..
                }
            ),
            "{version:?}"
        );
        assert_eq!(
            version.to_string(),
            "protocol error: the peer refused the connection: protocol version mismatch: this side speaks 1"
        );
        assert_eq!(
            Error::refused_by_peer("server shutting down"),
            Error::Protocol("the peer refused the connection: server shutting down".into())
        );
    }

    #[test]
    fn a_transport_cause_keeps_its_io_kind() {
        let reset = TransportError::Io(io::Error::from(io::ErrorKind::ConnectionReset));
        let e = Error::transport("the connection broke", &reset);
        assert!(matches!(
            e,
            Error::Transport {
                kind: io::ErrorKind::ConnectionReset,
                ..
            }
        ));
        assert!(e
            .to_string()
            .starts_with("connection closed: the connection broke: "));
        let torn = Error::transport("the connection broke", &TransportError::Torn);
        assert!(matches!(
            torn,
            Error::Transport {
                kind: io::ErrorKind::UnexpectedEof,
                ..
            }
        ));
    }
}
