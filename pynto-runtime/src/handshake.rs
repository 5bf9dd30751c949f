//! The Hello exchange that opens a session: versions, limits and the token, under one deadline.
//!
//! The connector sends Hello first; the acceptor reads it, checks the version and the token,
//! and answers only if both are right, so a wrong token fails the connector's `connect` itself,
//! before any object is reachable. The housekeeper shuts the transport if the exchange is not
//! done by the deadline, whatever pace the peer keeps.

use std::time::Instant;

use parking_lot::Mutex;
use pynto_proto::{decode, encode, Hello, Message, IMPLEMENTATION, PROTOCOL_VERSION};
use pynto_transport::{FrameReader, FrameWriter, TransportError};

use crate::config::Config;
use crate::error::{message_name, transport_error, Error, AUTHENTICATION_FAILED, VERSION_MISMATCH};
use crate::housekeeper::{self, Shutter};

/// Which end of the connection this side is; it decides the order of the Hello exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// This side connected: it sends Hello (with its token) first, then reads the peer's.
    Connector,
    /// This side accepted: it reads the peer's Hello, checks version and token, then answers.
    Acceptor,
}

/// Exchange Hello over `reader` and `writer`; the peer's Hello, or why the session cannot open.
/// On failure the transport is shut.
pub(crate) fn run(
    reader: &mut dyn FrameReader,
    writer: &Mutex<Box<dyn FrameWriter>>,
    shutter: Shutter,
    role: Role,
    config: &Config,
) -> Result<Hello, Error> {
    let hello = Hello {
        protocol: PROTOCOL_VERSION,
        implementation: IMPLEMENTATION.to_string(),
        features: vec![pynto_transport::bulk::FEATURE.to_string()],
        limits: config.limits,
        token: if role == Role::Connector {
            config.token.clone()
        } else {
            None
        },
        service: config.service_name.clone(),
    };
    let deadline = Instant::now() + config.handshake_timeout;
    let watchdog = housekeeper::Deadline::arm(deadline, shutter.clone());
    let result = exchange(reader, writer, role, config, hello);
    drop(watchdog);
    // The watchdog shuts the transport at the deadline, which the read sees as a close.
    let result = match result {
        Err(Error::ConnectionClosed(_)) if Instant::now() >= deadline => {
            Err(Error::ConnectionClosed(format!(
                "no Hello from the peer within {:?}",
                config.handshake_timeout
            )))
        }
        other => other,
    };
    if result.is_err() {
        shutter();
    }
    result
}

fn exchange(
    reader: &mut dyn FrameReader,
    writer: &Mutex<Box<dyn FrameWriter>>,
    role: Role,
    config: &Config,
    hello: Hello,
) -> Result<Hello, Error> {
    let send = |msg: &Message| writer.lock().send(&encode(msg)).map_err(transport_error);
    let refuse = |reason: String| {
        let _ = send(&Message::Goodbye {
            reason: reason.clone(),
        });
        reason
    };
    if role == Role::Connector {
        send(&Message::Hello(hello.clone()))?;
    }
    let frame = match reader.recv() {
        Ok(Some(frame)) => frame,
        Ok(None) => {
            return Err(Error::ConnectionClosed(
                "the peer closed the connection during the handshake".into(),
            ))
        }
        Err(e @ (TransportError::Io(_) | TransportError::Torn)) => {
            return Err(Error::ConnectionClosed(format!(
                "the connection broke during the handshake: {e}"
            )))
        }
        // TLS 1.3 checks a client's certificate after the dial: its refusal arrives here.
        Err(e @ TransportError::Tls(_)) => {
            return Err(Error::Authentication(format!(
                "the TLS handshake failed: {e}"
            )))
        }
        // Bytes that are not a frame within this side's limits (e.g. a client of another protocol).
        Err(e) => {
            return Err(Error::Protocol(refuse(format!(
                "the peer's first frame is not a Hello: {e}"
            ))))
        }
    };
    let peer = match decode(&frame, &config.limits) {
        Ok(Message::Hello(peer)) => peer,
        Ok(Message::Goodbye { reason }) => return Err(Error::refused_by_peer(&reason)),
        Ok(other) => {
            return Err(Error::Protocol(refuse(format!(
                "expected Hello first, got {}",
                message_name(&other)
            ))))
        }
        Err(e) => {
            return Err(Error::Protocol(refuse(format!(
                "the peer's Hello is malformed: {e}"
            ))))
        }
    };
    if peer.protocol != PROTOCOL_VERSION {
        return Err(Error::VersionMismatch {
            ours: PROTOCOL_VERSION,
            theirs: Some(peer.protocol),
            reason: refuse(format!(
                "{VERSION_MISMATCH}: this side speaks pynto protocol {PROTOCOL_VERSION} ({IMPLEMENTATION}), the peer speaks {} ({})",
                peer.protocol, peer.implementation
            )),
        });
    }
    if role == Role::Acceptor {
        if let Some(expected) = &config.token {
            let given = peer.token.as_deref().unwrap_or("");
            if !constant_time_eq(expected.as_bytes(), given.as_bytes()) {
                let why = if peer.token.is_none() {
                    "a token is required"
                } else {
                    "wrong token"
                };
                return Err(Error::Authentication(refuse(format!(
                    "{AUTHENTICATION_FAILED}: {why}"
                ))));
            }
        }
        send(&Message::Hello(hello))?;
    }
    Ok(peer)
}

/// Compare secrets without an early exit that would leak how much matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(subtle::ConstantTimeEq::ct_eq(a, b))
}
