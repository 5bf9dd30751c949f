//! Liveness: what the housekeeper checks on each session, judging the peer by the bytes it
//! moves rather than by whole frames.
//!
//! - A peer is *heard* whenever bytes arrive from it, or bytes of a frame we are sending to it
//!   leave (it is reading them). A 1 MiB reply over a 1 Mbit/s link keeps its peer alive all
//!   along; a peer paused in a debugger for 20 s is silent for less than the default window.
//! - While calls wait on a silent peer (blocking calls or not), it is pinged after `liveness_interval`, and declared
//!   gone after `liveness_timeout` more: every waiting call fails with `ConnectionClosed`.
//! - A frame that has begun must keep coming: one that stalls for the same window, or trickles
//!   in slower than [`MIN_FRAME_RATE`] once that window has passed, closes the connection (a
//!   peer dripping bytes cannot hold a connection's reader for ever).
//!
//! The housekeeper thread only reads counters here. Anything that writes to the peer (a ping,
//! a Goodbye) or takes the connection's locks runs on a pool thread, so one stuck peer can
//! never stall the housekeeper, and with it every other connection.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::error::Error;
use crate::host::Host;
use crate::housekeeper;
use crate::pool;
use crate::session::Inner;

/// The slowest a frame may arrive, on average, once it has been arriving for the liveness
/// window (bytes per second). A 9.6 kbit/s modem is faster.
pub const MIN_FRAME_RATE: u64 = 1024;

impl<H: Host> housekeeper::Maintained for Inner<H> {
    fn maintain(self: Arc<Self>) {
        let core = &self.core;
        if core.is_closed() {
            return;
        }
        // Nobody has read for a moment: wake a parked caller to read, or start a read loop
        // (unless the connection waits in the poller, which finds it a reader).
        if !core.parking.is_parked()
            && core
                .vacant_for()
                .is_some_and(|ms| ms >= housekeeper::VACANCY_GRACE_MS)
            && !core.hand_on_reading()
        {
            self.ensure_reader();
        }
        core.note_progress();
        let now = core.now_ms();
        let silent = now.saturating_sub(core.last_heard.load(Ordering::Relaxed));
        let window =
            (core.config.liveness_interval + core.config.liveness_timeout).as_millis() as u64;
        if let Some(why) = core.stalled_frame(silent, window) {
            close_soon(&self, Error::Protocol(why.clone()), why);
            return;
        }
        // Only while calls wait (blocking or not): an idle connection may be silent for ever.
        let calls_wait = core.waiting.load(Ordering::Relaxed) > 0
            || self.pending.try_lock().is_none_or(|p| !p.is_empty());
        if !calls_wait {
            return;
        }
        let interval = core.config.liveness_interval.as_millis() as u64;
        let timeout = core.config.liveness_timeout.as_millis() as u64;
        // Judged from the ping, not from the last byte: a connection idle for long is silent
        // already when a call starts, and must get its ping's full timeout.
        let unanswered = now.saturating_sub(core.ping_sent.load(Ordering::Acquire));
        if core.ping_outstanding.load(Ordering::Acquire)
            && unanswered >= timeout
            && silent >= timeout
        {
            let why = format!(
                "the peer stopped answering (silent for {:.1} s while calls waited)",
                silent as f64 / 1000.0
            );
            close_soon(&self, Error::ConnectionClosed(why.clone()), why);
        } else if silent >= interval && !core.ping_outstanding.swap(true, Ordering::AcqRel) {
            core.ping_sent.store(now, Ordering::Release);
            let inner = Arc::clone(&self);
            pool::spawn_chore(Box::new(move || inner.core.ping()));
        }
    }
}

/// Close `inner` on a pool thread (closing may write a Goodbye).
fn close_soon<H: Host>(inner: &Arc<Inner<H>>, reason: Error, goodbye: String) {
    let inner = Arc::clone(inner);
    pool::spawn_chore(Box::new(move || inner.close(reason, Some(goodbye))));
}
