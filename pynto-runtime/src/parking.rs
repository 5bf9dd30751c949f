//! Parking idle connections: a connection nobody has had anything to read from for a moment
//! waits in the process's poller (`pynto_transport::poller`) instead of holding a thread.
//!
//! A read loop whose `recv` finds no frame beginning within [`IDLE_PARK`] parks the
//! connection: it marks it parked, arms the transport's one-shot poller registration, and its
//! thread goes back to the pool. When bytes arrive the poller runs the wake-up, which marks the
//! connection awake and starts a read loop (`Inner::ensure_reader`). Busy connections never
//! park (their next frame comes within the window), so a call on one still costs no handoff.
//!
//! The reading role is unchanged: a caller may take the reader of a parked connection and read
//! its own reply with no handoff; taking the reader wakes the connection up (`Core::try_read`
//! calls [`Parking::wake_up`]), so the housekeeper looks after it again, and the poller's
//! wake-up that may still come finds the reader taken, or a read loop that reads, and parks
//! again after the window. No wake-up is lost: the registration is level-triggered and armed
//! before the reader is let go, and a wake-up that comes while the parking loop still holds
//! the reader is seen by that loop, which reads on.
//!
//! While parked, a connection is left out of the housekeeper's ticks (its reader is not vacant,
//! the poller watches it), except for liveness on slow ticks while calls wait on it; queued
//! releases go out through the housekeeper's flush list as for any connection.
//! Transports that cannot park (TLS, pipes, memory) keep today's blocking read loops.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use pynto_transport::FrameReader;

use crate::host::Host;
use crate::housekeeper::{self, Maintained};
use crate::session::{Inner, ReaderGuard};

/// How long a read loop waits for the next frame before it parks the connection and gives its
/// thread back. Long enough that a busy connection (one call after another, or a client
/// thinking between calls) keeps its reading thread; short enough that a burst of new
/// connections holds few threads at once.
pub(crate) const IDLE_PARK: Duration = Duration::from_millis(50);

/// A session's parking state.
pub(crate) struct Parking {
    /// The transport parks: its `recv` gives up between frames after [`IDLE_PARK`].
    able: bool,
    /// The connection waits in the poller.
    parked: AtomicBool,
    /// The session, for the housekeeper's list of awake sessions.
    session: OnceLock<Weak<dyn Maintained>>,
}

impl Parking {
    /// Parking for the transport whose reading half is `reader` (its idle timeout is set now).
    pub(crate) fn new(reader: &mut dyn FrameReader) -> Parking {
        Parking {
            able: reader.set_idle_timeout(IDLE_PARK),
            parked: AtomicBool::new(false),
            session: OnceLock::new(),
        }
    }

    /// True while the connection waits in the poller (nobody reads, nobody needs to).
    pub(crate) fn is_parked(&self) -> bool {
        self.parked.load(Ordering::Acquire)
    }

    /// A thread takes the reader, or the poller saw bytes: the connection is awake.
    #[inline]
    pub(crate) fn wake_up(&self) {
        if self.parked.load(Ordering::Relaxed) && self.parked.swap(false, Ordering::SeqCst) {
            if let Some(session) = self.session.get() {
                housekeeper::awake(session);
            }
        }
    }
}

/// Have the housekeeper look after `inner` from now on (it starts awake).
pub(crate) fn watch<H: Host>(inner: &Arc<Inner<H>>) {
    let session = Arc::downgrade(inner) as Weak<dyn Maintained>;
    let _ = inner.core.parking.session.set(session.clone());
    housekeeper::watch(session);
}

/// A read loop holding `reader` saw no frame begin for [`IDLE_PARK`]: hand the reading to a
/// waiting caller, or park the connection. True if the loop is done (the connection parked, a
/// caller reads, or it closed); false if it should read on.
pub(crate) fn park<H: Host>(inner: &Arc<Inner<H>>, mut reader: ReaderGuard<'_>) -> bool {
    let core = &inner.core;
    let parking = &core.parking;
    if core.is_closed() || !parking.able {
        return core.is_closed();
    }
    // A caller waits for a reply on this connection: it reads for itself, with no handoff.
    if core.hand_on_reading() {
        return true;
    }
    let Some(session) = parking.session.get() else {
        return false;
    };
    // Asleep before armed: only the wake-up (or a thread taking the reader, which we hold)
    // wakes it, and it does so after this.
    parking.parked.store(true, Ordering::SeqCst);
    let calls_waited = calls_wait(inner);
    housekeeper::asleep(session, calls_waited);
    let woken = Arc::clone(inner);
    let armed = reader.park(Box::new(move || {
        woken.core.parking.wake_up();
        woken.ensure_reader();
    }));
    if armed.is_err() {
        parking.wake_up();
        return false;
    }
    drop(reader);
    // A call that began while we held the reader could not start a read loop (one that
    // begins from now on does, which wakes the connection): keep it under liveness watch.
    if !calls_waited && calls_wait(inner) {
        housekeeper::doze(session, &parking.parked);
    }
    // A wake-up that came while we held the reader could not start a read loop: read on.
    parking.is_parked() || core.is_closed()
}

/// True if calls wait on `inner` (blocking or not): its liveness must be watched.
fn calls_wait<H: Host>(inner: &Inner<H>) -> bool {
    inner.core.waiting.load(Ordering::SeqCst) > 0 || !inner.pending.lock().is_empty()
}

impl<H: Host> crate::session::Session<H> {
    /// True while the connection waits in the process's poller: idle, with no thread reading
    /// it (for tests and diagnostics).
    pub fn is_parked(&self) -> bool {
        self.inner.core.parking.is_parked()
    }
}
