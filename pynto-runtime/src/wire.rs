//! The wire: one session's two halves of its transport, and whether it is still open.
//!
//! The writing half is shared behind a lock: every thread writes its own frames, with any
//! queued `Release` batched in front. The reading half is a role (`reader.rs`): whoever takes it
//! with [`Wire::try_read`] reads, nobody waits for it, and letting go of it records the vacancy
//! the housekeeper watches. Callers that wait while another thread reads park here, and one of
//! them is woken to read when the reader is handed on.
//!
//! Closing is marked here once, whoever closes; [`Wire::shut`] then shuts the transport, which
//! ends any read under way, and lets its descriptors go (the reader's when its holder lets go).
//! A failed write breaks the wire off: the transport is shut, and the reader closes the session
//! with that write's reason when it sees the stream end.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};
use pynto_proto::{encode, Frame, Hello, Limits, Message, Oid};
use pynto_transport::{
    bulk, FrameReader, FrameWriter, Interrupter, Parts, ShutdownHandle, TransportError,
};

use crate::chains::ParkSlot;
use crate::error::{transport_error, Error};
use crate::housekeeper::{self, Maintained};

/// A session's transport, its open/closed state and its release queue.
pub(crate) struct Wire {
    writer: Mutex<Box<dyn FrameWriter>>,
    /// The largest body and message the peer accepts.
    peer_limits: Limits,
    /// The peer reads chunked frames (`pynto_transport::bulk`).
    peer_reads_chunks: bool,
    /// Held while a frame goes out in chunks (one at a time; other frames go between chunks).
    chunked: Mutex<()>,
    /// Releases waiting to go out, batched into the next frame written.
    releases: Mutex<Vec<(Oid, u64)>>,
    releases_sent: AtomicU64,
    closed: AtomicBool,
    close_reason: Mutex<Option<Error>>,
    /// Why a write failed, if one did: the transport was shut, and the reader closes the
    /// session with this reason when it sees the end of the stream.
    broken: Mutex<Option<String>>,
    /// Shuts the transport without the writer's lock, where the transport allows it.
    shutdown_handle: Option<ShutdownHandle>,
    /// The transport's reading half. Whoever holds it reads; nobody waits for it: threads only
    /// `try_lock` it.
    reader: Mutex<Box<dyn FrameReader>>,
    /// Interrupts a wait for the reader to become readable; without one, callers leave the
    /// reading to read loops (they could not be interrupted to run a job of their chain).
    interrupter: Option<Interrupter>,
    /// True while a thread holds `reader`.
    reading: AtomicBool,
    /// `vacant_since` counts milliseconds from here.
    started: Instant,
    /// Milliseconds after `started` when `reader` was last let go.
    vacant_since: AtomicU64,
    /// A read loop was started and has not begun yet.
    loop_pending: AtomicBool,
    /// Callers parked while another thread reads; one is woken to read when the reader is
    /// handed on.
    parked: Mutex<Vec<Arc<ParkSlot>>>,
    /// Whether the connection waits in the process's poller (`reader::park`).
    pub(crate) parking: Parking,
}

/// How long a read loop waits for the next frame before it parks the connection and gives its
/// thread back. Long enough that a busy connection (one call after another, or a client
/// thinking between calls) keeps its reading thread; short enough that a burst of new
/// connections holds few threads at once.
pub(crate) const IDLE_PARK: Duration = Duration::from_millis(50);

/// A connection's parking state: whether its transport can park, and whether it is parked.
pub(crate) struct Parking {
    /// The transport parks: its `recv` gives up between frames after [`IDLE_PARK`].
    pub(crate) able: bool,
    /// The connection waits in the poller.
    parked: AtomicBool,
    /// The session, for the housekeeper's list of awake sessions.
    pub(crate) session: OnceLock<Weak<dyn Maintained>>,
}

impl Parking {
    /// Parking for the transport whose reading half is `reader` (its idle timeout is set now).
    fn new(reader: &mut dyn FrameReader) -> Parking {
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

    /// The connection is parked from now on (before its poller registration is armed).
    pub(crate) fn park(&self) {
        self.parked.store(true, Ordering::SeqCst);
    }

    /// The flag the housekeeper looks at under its own lock (`housekeeper::doze`).
    pub(crate) fn flag(&self) -> &AtomicBool {
        &self.parked
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

/// The reader, held: `reading` is set while it lives, and letting go records the vacancy.
pub(crate) struct ReaderGuard<'a> {
    wire: &'a Wire,
    guard: MutexGuard<'a, Box<dyn FrameReader>>,
}

impl std::ops::Deref for ReaderGuard<'_> {
    type Target = Box<dyn FrameReader>;
    fn deref(&self) -> &Self::Target {
        &self.guard
    }
}

impl std::ops::DerefMut for ReaderGuard<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.guard
    }
}

impl Drop for ReaderGuard<'_> {
    fn drop(&mut self) {
        if self.wire.is_closed() {
            // The last reader of a closed session lets the transport's descriptors go.
            *self.guard = Box::new(Gone);
        }
        let now = self.wire.now_ms();
        self.wire.vacant_since.store(now, Ordering::Release);
        self.wire.reading.store(false, Ordering::Release);
        housekeeper::vacancy();
    }
}

impl Wire {
    /// The wire of a session whose handshake is done; `peer` is the peer's Hello (what it
    /// accepts, what it reads).
    pub(crate) fn new(
        mut reader: Box<dyn FrameReader>,
        writer: Box<dyn FrameWriter>,
        shutdown_handle: Option<ShutdownHandle>,
        peer: &Hello,
    ) -> Wire {
        Wire {
            writer: Mutex::new(writer),
            peer_limits: peer.limits,
            peer_reads_chunks: peer.features.iter().any(|f| f == bulk::FEATURE),
            chunked: Mutex::new(()),
            releases: Mutex::new(Vec::new()),
            releases_sent: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            close_reason: Mutex::new(None),
            broken: Mutex::new(None),
            shutdown_handle,
            interrupter: reader.interrupter(),
            parking: Parking::new(&mut *reader),
            reader: Mutex::new(reader),
            reading: AtomicBool::new(false),
            started: Instant::now(),
            vacant_since: AtomicU64::new(0),
            loop_pending: AtomicBool::new(false),
            parked: Mutex::new(Vec::new()),
        }
    }

    // ----- writing ---------------------------------------------------------------------------

    /// Encode and write one message, after any queued releases, from the calling thread.
    pub(crate) fn send(&self, msg: &Message) -> Result<(), Error> {
        let frame = encode(msg);
        self.send_frame(&frame)
    }

    /// Write one encoded frame, after any queued releases.
    pub(crate) fn send_frame(&self, frame: &Frame) -> Result<(), Error> {
        if self.is_closed() {
            return Err(self.closed_error());
        }
        let limits = &self.peer_limits;
        if frame.body.len() as u64 > u64::from(limits.max_frame) || frame.len() > limits.max_message
        {
            return Err(Error::Overloaded(format!(
                "a message of {} bytes is larger than the peer accepts ({} bytes of body, {} in all)",
                frame.len(),
                limits.max_frame,
                limits.max_message
            )));
        }
        if self.peer_reads_chunks && frame.len() - frame.body.len() as u64 >= bulk::CHUNKED_MIN {
            return self.send_in_chunks(frame);
        }
        let releases = self.take_releases();
        let mut writer = self.writer.lock();
        let written = match &releases {
            None => writer.send(frame),
            // The releases and the frame in one write: the peer reads both at once.
            Some(releases) => writer.send_batch(&[releases, frame]),
        };
        drop(writer);
        written.map_err(|e| self.break_off(e))
    }

    /// The queued releases as one `Release` frame (counted as sent), if any are queued.
    fn take_releases(&self) -> Option<Frame> {
        let releases = std::mem::take(&mut *self.releases.lock());
        if releases.is_empty() {
            return None;
        }
        self.releases_sent.fetch_add(1, Ordering::Relaxed);
        Some(encode(&Message::Release(releases)))
    }

    /// Write a frame with bulk attachments in parts, letting go of the writer between them so
    /// that other frames (a small call, a reply, releases) go out in between (DESIGN §2).
    fn send_in_chunks(&self, frame: &Frame) -> Result<(), Error> {
        let _one_at_a_time = self.chunked.lock();
        let mut parts = Parts::default();
        loop {
            if self.is_closed() {
                return Err(self.closed_error());
            }
            let releases = self.take_releases();
            let mut writer = self.writer.lock();
            let written = releases
                .map_or(Ok(()), |releases| writer.send(&releases))
                .and_then(|()| writer.send_part(frame, &mut parts));
            // Fairly: a thread waiting to write goes before this one's next chunk.
            MutexGuard::unlock_fair(writer);
            match written {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => return Err(self.break_off(e)),
            }
        }
    }

    /// Queue the release of `count` receipts of `oid` for the next frame written; true if the
    /// queue was empty (someone should flush it soon).
    pub(crate) fn queue_release(&self, oid: Oid, count: u64) -> bool {
        let mut releases = self.releases.lock();
        releases.push((oid, count));
        releases.len() == 1
    }

    /// Write queued releases now, if any (a pool thread's chore on an idle connection).
    pub(crate) fn flush_releases(&self) {
        if self.is_closed() {
            return;
        }
        let Some(releases) = self.take_releases() else {
            return;
        };
        let written = self.writer.lock().send(&releases);
        if let Err(e) = written {
            self.break_off(e);
        }
    }

    /// `Release` messages written so far.
    pub(crate) fn releases_sent(&self) -> u64 {
        self.releases_sent.load(Ordering::Relaxed)
    }

    /// A write failed, perhaps inside a frame: the stream cannot be trusted any more. Shut the
    /// transport (the reader then closes the session with this reason); the error for the
    /// writer.
    fn break_off(&self, e: TransportError) -> Error {
        let why = format!("the transport failed: {e}");
        self.broken.lock().get_or_insert(why);
        let error = transport_error(e);
        self.shut_transport();
        error
    }

    /// Why the transport was shut after a failed write, if it was.
    pub(crate) fn broken(&self) -> Option<String> {
        self.broken.lock().clone()
    }

    // ----- closing ---------------------------------------------------------------------------

    /// True once the session is closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Why the session closed, as the error waiting callers get.
    pub(crate) fn closed_error(&self) -> Error {
        self.close_reason
            .lock()
            .clone()
            .unwrap_or_else(|| Error::ConnectionClosed("the connection is closed".into()))
    }

    /// Mark the session closed with `reason`; true if this call closed it.
    pub(crate) fn mark_closed(&self, reason: Error) -> bool {
        let mut slot = self.close_reason.lock();
        if self.closed.swap(true, Ordering::AcqRel) {
            return false;
        }
        *slot = Some(reason);
        true
    }

    /// Say goodbye (best effort: not if a write is under way, which may be stuck on the peer)
    /// and shut the transport, which ends the reader. Then let the transport's descriptors go:
    /// the writer's now, the reader's when its holder lets go (see `ReaderGuard`). Queued
    /// releases are dropped: the peer's table is gone with the connection.
    pub(crate) fn shut(&self, goodbye: Option<String>) {
        if let (Some(reason), Some(mut writer)) = (goodbye, self.writer.try_lock()) {
            let _ = writer.send(&encode(&Message::Goodbye { reason }));
        }
        self.shut_transport();
        *self.writer.lock() = Box::new(Gone);
        if let Some(mut reader) = self.reader.try_lock() {
            *reader = Box::new(Gone);
        }
        self.releases.lock().clear();
    }

    /// Shut the transport in both directions, without waiting for a writer where the
    /// transport allows it.
    fn shut_transport(&self) {
        match &self.shutdown_handle {
            Some(handle) => handle.shutdown(),
            None => self.writer.lock().shutdown(),
        }
    }

    // ----- the reading role ------------------------------------------------------------------

    /// Take the reader if nobody holds it.
    pub(crate) fn try_read(&self) -> Option<ReaderGuard<'_>> {
        let guard = self.reader.try_lock()?;
        self.reading.store(true, Ordering::Release);
        self.parking.wake_up();
        Some(ReaderGuard { wire: self, guard })
    }

    /// True while a thread holds the reader.
    pub(crate) fn is_read(&self) -> bool {
        self.reading.load(Ordering::Acquire)
    }

    /// How to interrupt a wait for the reader to become readable, if this transport has one.
    pub(crate) fn interrupter(&self) -> Option<&Interrupter> {
        self.interrupter.as_ref()
    }

    /// Claim the right to start a read loop; false if one was started and has not begun yet.
    pub(crate) fn claim_loop(&self) -> bool {
        !self.loop_pending.swap(true, Ordering::AcqRel)
    }

    /// The claimed read loop has begun: the next vacancy may start another.
    pub(crate) fn loop_begun(&self) {
        self.loop_pending.store(false, Ordering::Release);
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// For how long nobody has read, if nobody reads now.
    pub(crate) fn vacant_for(&self) -> Option<u64> {
        if self.is_read() {
            return None;
        }
        Some(
            self.now_ms()
                .saturating_sub(self.vacant_since.load(Ordering::Acquire)),
        )
    }

    /// A caller parks while another thread reads.
    pub(crate) fn park(&self, slot: &Arc<ParkSlot>) {
        self.parked.lock().push(Arc::clone(slot));
    }

    /// The caller stopped waiting.
    pub(crate) fn unpark(&self, slot: &Arc<ParkSlot>) {
        let mut parked = self.parked.lock();
        if let Some(i) = parked.iter().position(|s| Arc::ptr_eq(s, slot)) {
            parked.swap_remove(i);
        }
    }

    /// This thread stops reading for now: wake a parked caller so it reads its own reply.
    /// True if one was woken.
    pub(crate) fn hand_on_reading(&self) -> bool {
        match self.parked.lock().first() {
            Some(slot) => {
                slot.wake();
                true
            }
            None => false,
        }
    }
}

/// What a closed session keeps of its transport: nothing (its descriptors are closed).
struct Gone;

impl FrameReader for Gone {
    fn recv(&mut self) -> Result<Option<Frame>, TransportError> {
        Ok(None)
    }

    fn set_limits(&mut self, _limits: &Limits) {}
}

impl FrameWriter for Gone {
    fn send(&mut self, _frame: &Frame) -> Result<(), TransportError> {
        Err(TransportError::Closed)
    }

    fn shutdown(&mut self) {}
}
