//! Liveness: what the housekeeper checks on each session, judging the peer by the bytes it
//! moves rather than by whole frames.
//!
//! - A peer is *heard* whenever bytes arrive from it, or bytes of a frame we are sending to it
//!   leave (it is reading them). A 1 MiB reply over a 1 Mbit/s link keeps its peer alive all
//!   along; a peer paused in a debugger for 20 s is silent for less than the default window.
//! - While calls wait on a silent peer (blocking calls or not), it is pinged after
//!   `liveness_interval`, and declared gone after `liveness_timeout` more: every waiting call
//!   fails with `ConnectionClosed`.
//! - A frame that has begun must keep coming: one that stalls for the same window, or trickles
//!   in slower than [`MIN_FRAME_RATE`] once that window has passed, closes the connection (a
//!   peer dripping bytes cannot hold a connection's reader for ever).
//!
//! [`Liveness::check`] only reads counters and says what to do; the session acts on its
//! verdict (`session.rs`), on a pool thread for anything that writes to the peer or takes the
//! connection's locks, so one stuck peer can never stall the housekeeper, and with it every
//! other connection.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use pynto_proto::{Message, Op, Request, Target};
use pynto_transport::Progress;

use crate::config::Config;
use crate::error::Error;

/// The slowest a frame may arrive, on average, once it has been arriving for the liveness
/// window (bytes per second). A 9.6 kbit/s modem is faster.
pub const MIN_FRAME_RATE: u64 = 1024;

/// What one session's liveness check found.
pub(crate) enum Verdict {
    /// Nothing to do.
    Fine,
    /// Send a ping (the outstanding-ping mark is set already).
    Ping,
    /// Close the session with this error, and say this in the Goodbye.
    Close(Error, String),
}

/// One session's liveness state: when the peer was last heard, and the ping outstanding.
pub(crate) struct Liveness {
    /// `last_heard` and `ping_sent` count milliseconds from here.
    started: Instant,
    /// Milliseconds after `started` when the peer was last heard.
    last_heard: AtomicU64,
    ping_outstanding: AtomicBool,
    /// When (ms after `started`) the outstanding ping was sent.
    ping_sent: AtomicU64,
    /// Bytes received and sent so far (liveness judges the peer by them).
    received: Option<Progress>,
    sent: Option<Progress>,
    /// The counts the housekeeper last saw.
    seen_received: AtomicU64,
    seen_sent: AtomicU64,
    interval_ms: u64,
    timeout_ms: u64,
}

impl Liveness {
    /// The liveness of a session whose transport counts its bytes in `received` and `sent`
    /// (where it does).
    pub(crate) fn new(config: &Config, received: Option<Progress>, sent: Option<Progress>) -> Self {
        Liveness {
            started: Instant::now(),
            last_heard: AtomicU64::new(0),
            ping_outstanding: AtomicBool::new(false),
            ping_sent: AtomicU64::new(0),
            seen_received: AtomicU64::new(received.as_ref().map_or(0, Progress::bytes)),
            seen_sent: AtomicU64::new(sent.as_ref().map_or(0, Progress::bytes)),
            received,
            sent,
            interval_ms: config.liveness_interval.as_millis() as u64,
            timeout_ms: config.liveness_timeout.as_millis() as u64,
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// A frame arrived from the peer.
    pub(crate) fn heard_now(&self) {
        self.last_heard.store(self.now_ms(), Ordering::Relaxed);
    }

    /// The reply to our ping arrived (hearing it was the point).
    pub(crate) fn pong(&self) {
        self.ping_outstanding.store(false, Ordering::Release);
    }

    /// The ping to send when the verdict is [`Verdict::Ping`] (sequence number 0, which no
    /// call uses).
    pub(crate) fn ping_message() -> Message {
        Message::Request(Request {
            seq: 0,
            chain: 0,
            target: Target::Export(0),
            op: Op::Ping,
        })
    }

    /// Judge the peer now. `calls_wait` says whether calls wait on it (asked only when it
    /// matters: an idle connection may be silent for ever).
    pub(crate) fn check(&self, calls_wait: impl FnOnce() -> bool) -> Verdict {
        self.note_progress();
        let now = self.now_ms();
        let silent = now.saturating_sub(self.last_heard.load(Ordering::Relaxed));
        let window = self.interval_ms + self.timeout_ms;
        if let Some(why) = self.stalled_frame(silent, window) {
            return Verdict::Close(Error::Protocol(why.clone()), why);
        }
        if !calls_wait() {
            return Verdict::Fine;
        }
        // Judged from the ping, not from the last byte: a connection idle for long is silent
        // already when a call starts, and must get its ping's full timeout.
        let unanswered = now.saturating_sub(self.ping_sent.load(Ordering::Acquire));
        if self.ping_outstanding.load(Ordering::Acquire)
            && unanswered >= self.timeout_ms
            && silent >= self.timeout_ms
        {
            let why = format!(
                "the peer stopped answering (silent for {:.1} s while calls waited)",
                silent as f64 / 1000.0
            );
            Verdict::Close(Error::ConnectionClosed(why.clone()), why)
        } else if silent >= self.interval_ms && !self.ping_outstanding.swap(true, Ordering::AcqRel)
        {
            self.ping_sent.store(now, Ordering::Release);
            Verdict::Ping
        } else {
            Verdict::Fine
        }
    }

    /// Count the peer as heard if bytes came from it, or left for it inside a frame being
    /// sent (it is reading them), since the last look.
    fn note_progress(&self) {
        let mut heard = false;
        if let Some(received) = &self.received {
            let bytes = received.bytes();
            heard |= self.seen_received.swap(bytes, Ordering::Relaxed) != bytes;
        }
        if let Some(sent) = &self.sent {
            let bytes = sent.bytes();
            let before = self.seen_sent.swap(bytes, Ordering::Relaxed);
            heard |= before != bytes && sent.in_flight().is_some();
        }
        if heard {
            self.heard_now();
        }
    }

    /// Why the frame being received must be given up, if it must: it stalled for `window` ms,
    /// or it has taken that long and arrives slower than `MIN_FRAME_RATE`.
    fn stalled_frame(&self, silent_ms: u64, window_ms: u64) -> Option<String> {
        let frame = self.received.as_ref()?.in_flight()?;
        let elapsed_ms = frame.elapsed.as_millis() as u64;
        if elapsed_ms < window_ms {
            return None;
        }
        if silent_ms >= window_ms {
            return Some(format!(
                "the peer stopped inside a frame ({} bytes of it in {:.1} s, then nothing for {:.1} s)",
                frame.bytes,
                elapsed_ms as f64 / 1000.0,
                silent_ms as f64 / 1000.0
            ));
        }
        let floor = MIN_FRAME_RATE * elapsed_ms / 1000;
        (frame.bytes < floor).then(|| {
            format!(
                "the peer trickles a frame: {} bytes in {:.1} s, slower than {} bytes/s",
                frame.bytes,
                elapsed_ms as f64 / 1000.0,
                MIN_FRAME_RATE
            )
        })
    }
}
