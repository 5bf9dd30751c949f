//! An in-process transport pair for tests: frames pass through shared queues, never bytes.
//!
//! [`pair`] returns two connected ends. Queues are unbounded (there is no back-pressure).
//! Shutting down either end closes both directions: each end's `recv` returns the frames
//! already queued for it, then `Ok(None)`, and every `send` fails with
//! [`TransportError::Closed`]. Receivers still enforce their [`Limits`], so limit handling
//! can be tested over this transport.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use pynto_proto::{Frame, Limits};

use crate::framing::check_limits;
use crate::{FrameReader, FrameWriter, ShutdownHandle, Transport, TransportError};

/// One direction: a queue of frames and whether it is closed.
#[derive(Default)]
struct Pipe {
    state: Mutex<PipeState>,
    ready: Condvar,
}

#[derive(Default)]
struct PipeState {
    frames: VecDeque<Frame>,
    closed: bool,
    /// An interrupter asked the next `wait_readable` to return.
    poked: bool,
}

impl Pipe {
    fn lock(&self) -> MutexGuard<'_, PipeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }
}

/// One end of an in-memory pair.
pub struct MemoryTransport {
    incoming: Arc<Pipe>,
    outgoing: Arc<Pipe>,
    name: &'static str,
}

/// Two connected in-memory transports.
pub fn pair() -> (MemoryTransport, MemoryTransport) {
    let ab = Arc::new(Pipe::default());
    let ba = Arc::new(Pipe::default());
    (
        MemoryTransport {
            incoming: Arc::clone(&ba),
            outgoing: Arc::clone(&ab),
            name: "memory://a",
        },
        MemoryTransport {
            incoming: ab,
            outgoing: ba,
            name: "memory://b",
        },
    )
}

impl Transport for MemoryTransport {
    fn split(self: Box<Self>) -> (Box<dyn FrameReader>, Box<dyn FrameWriter>) {
        (
            Box::new(MemoryReader {
                incoming: Arc::clone(&self.incoming),
                limits: Limits::default(),
            }),
            Box::new(MemoryWriter {
                incoming: self.incoming,
                outgoing: self.outgoing,
            }),
        )
    }

    /// The other end's name: `memory://b` for the first end of a pair, `memory://a` for the
    /// second.
    fn peer(&self) -> String {
        if self.name == "memory://a" {
            "memory://b".to_string()
        } else {
            "memory://a".to_string()
        }
    }
}

struct MemoryReader {
    incoming: Arc<Pipe>,
    limits: Limits,
}

impl FrameReader for MemoryReader {
    fn recv(&mut self) -> Result<Option<Frame>, TransportError> {
        let mut state = self.incoming.lock();
        loop {
            if let Some(frame) = state.frames.pop_front() {
                drop(state);
                check_limits(&frame, &self.limits)?;
                return Ok(Some(frame));
            }
            if state.closed {
                return Ok(None);
            }
            state = self
                .incoming
                .ready
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    fn set_limits(&mut self, limits: &Limits) {
        self.limits = *limits;
    }

    fn wait_readable(&mut self, timeout: std::time::Duration) -> Result<bool, TransportError> {
        let deadline = std::time::Instant::now() + timeout;
        let mut state = self.incoming.lock();
        loop {
            if !state.frames.is_empty() || state.closed {
                return Ok(true);
            }
            if state.poked {
                state.poked = false;
                return Ok(false);
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            state = self
                .incoming
                .ready
                .wait_timeout(state, left)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    fn interrupter(&mut self) -> Option<crate::Interrupter> {
        let pipe = Arc::clone(&self.incoming);
        Some(crate::Interrupter::new(move || {
            pipe.lock().poked = true;
            pipe.ready.notify_all();
        }))
    }
}

struct MemoryWriter {
    incoming: Arc<Pipe>,
    outgoing: Arc<Pipe>,
}

impl FrameWriter for MemoryWriter {
    fn send(&mut self, frame: &Frame) -> Result<(), TransportError> {
        let mut state = self.outgoing.lock();
        if state.closed {
            return Err(TransportError::Closed);
        }
        state.frames.push_back(frame.clone());
        drop(state);
        self.outgoing.ready.notify_one();
        Ok(())
    }

    fn shutdown(&mut self) {
        self.outgoing.close();
        self.incoming.close();
    }

    fn shutdown_handle(&self) -> Option<ShutdownHandle> {
        let (incoming, outgoing) = (Arc::clone(&self.incoming), Arc::clone(&self.outgoing));
        Some(ShutdownHandle::new(move || {
            outgoing.close();
            incoming.close();
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn frames_cross_and_shutdown_ends_both_ways() {
        let (a, b) = pair();
        assert_eq!(a.peer(), "memory://b");
        let (mut ar, mut aw) = Box::new(a).split();
        let (mut br, mut bw) = Box::new(b).split();
        let f = Frame {
            body: Bytes::from_static(b"x"),
            attachments: vec![Bytes::from_static(b"y")],
        };
        aw.send(&f).unwrap();
        bw.send(&f).unwrap();
        assert_eq!(br.recv().unwrap(), Some(f.clone()));
        assert_eq!(ar.recv().unwrap(), Some(f.clone()));
        aw.shutdown();
        aw.shutdown();
        assert_eq!(br.recv().unwrap(), None);
        assert_eq!(ar.recv().unwrap(), None);
        assert!(matches!(bw.send(&f), Err(TransportError::Closed)));
        assert!(matches!(aw.send(&f), Err(TransportError::Closed)));
    }
}
