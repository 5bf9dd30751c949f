//! A session: one symmetric connection between two peers, each serving and calling.
//!
//! [`Session::connect`] does the Hello exchange over any transport (`handshake.rs`), then lets
//! the connection be read: reading is a role any thread takes (`reader.rs`). Calls go out from
//! the caller's own thread (`call.rs`); the housekeeper checks liveness (`liveness.rs`). This
//! file holds the shared state and the life cycle: open, write, close (once, whoever closes:
//! waiting calls fail, both tables empty, the transport's descriptors close), stats.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;

use parking_lot::Mutex;
use pynto_proto::{encode, Frame, Hello, Limits, Message, Oid, Seq, TypeDesc, TypeId};
use pynto_transport::{
    FrameReader, FrameWriter, Progress, ShutdownHandle, Transport, TransportError,
};

use crate::boxing::Boxer;
use crate::call::Pending;
use crate::config::Config;
use crate::error::Error;
use crate::exports::Exports;
use crate::handshake;
use crate::host::Host;
use crate::housekeeper::{self, Shutter};
use crate::imports::{ImportEntry, Imports, ReleaseSink, RemoteRef};
use crate::pool;

/// Which end of the connection this side is; it decides the order of the Hello exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// This side connected: it sends Hello (with its token) first, then reads the peer's.
    Connector,
    /// This side accepted: it reads the peer's Hello, checks version and token, then answers.
    Acceptor,
}

/// A live connection to a peer. Cheap to clone; all clones are the same connection.
pub struct Session<H: Host> {
    pub(crate) inner: Arc<Inner<H>>,
}

impl<H: Host> Clone for Session<H> {
    fn clone(&self) -> Self {
        Session {
            inner: Arc::clone(&self.inner),
        }
    }
}

/// Counters of one session, for `conn.stats()` and for tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Objects this side holds alive for the peer (the root counts while the peer holds it).
    pub exported: usize,
    /// Live handles to the peer's objects.
    pub imported: usize,
    /// Requests this side sent.
    pub requests_sent: u64,
    /// Requests this side served.
    pub requests_served: u64,
    /// `Cancel` messages received from the peer.
    pub cancels_received: u64,
    /// `Release` messages sent to the peer.
    pub releases_sent: u64,
}

/// The non-generic half of a session: the writer, the import table and the release queue.
/// Imported references point here (weakly), whatever the host.
pub(crate) struct Core {
    pub(crate) config: Config,
    /// The peer's Hello.
    pub(crate) peer: Hello,
    /// Where the other end is.
    pub(crate) peer_address: String,
    writer: Mutex<Box<dyn FrameWriter>>,
    pub(crate) imports: Mutex<Imports>,
    /// Releases waiting to go out, batched into the next frame written.
    releases: Mutex<Vec<(Oid, u64)>>,
    closed: AtomicBool,
    close_reason: Mutex<Option<Error>>,
    next_seq: AtomicU64,
    /// When the session started; `last_heard` counts milliseconds from here.
    pub(crate) started: Instant,
    /// Milliseconds after `started` when a frame last arrived.
    pub(crate) last_heard: AtomicU64,
    /// Calls waiting for a reply (liveness checks run only while someone waits).
    pub(crate) waiting: AtomicUsize,
    pub(crate) ping_outstanding: AtomicBool,
    /// When (ms after `started`) the outstanding ping was sent.
    pub(crate) ping_sent: AtomicU64,
    pub(crate) requests_sent: AtomicU64,
    pub(crate) requests_served: AtomicU64,
    pub(crate) cancels_received: AtomicU64,
    releases_sent: AtomicU64,
    /// A weak pointer to this core as a release sink, handed to every imported reference.
    pub(crate) sink: Weak<dyn ReleaseSink>,
    /// The transport's reading half. Whoever holds it reads (see `reader.rs`); nobody waits
    /// for it: threads only `try_lock` it.
    reader: Mutex<Box<dyn FrameReader>>,
    /// Interrupts a wait for the reader to become readable; without one, callers leave the
    /// reading to read loops (they could not be interrupted to run a job of their chain).
    pub(crate) interrupter: Option<pynto_transport::Interrupter>,
    /// True while a thread holds `reader`.
    reading: AtomicBool,
    /// Shuts the transport without the writer's lock, where the transport allows it.
    shutdown_handle: Option<ShutdownHandle>,
    /// Bytes received and sent so far (liveness judges the peer by them).
    received: Option<Progress>,
    sent: Option<Progress>,
    /// The counts the housekeeper last saw.
    seen_received: AtomicU64,
    seen_sent: AtomicU64,
    /// Why a write failed, if one did: the transport was shut, and the reader closes the
    /// session with this reason when it sees the end of the stream.
    broken: Mutex<Option<String>>,
    /// Milliseconds after `started` when `reader` was last let go.
    vacant_since: AtomicU64,
    /// A read loop was started and has not begun yet.
    pub(crate) loop_pending: AtomicBool,
    /// Callers parked while another thread reads; one is woken to read when the reader is
    /// handed on.
    parked: Mutex<Vec<Arc<crate::chains::ParkSlot>>>,
    /// Whether the connection waits in the poller (`parking.rs`).
    pub(crate) parking: crate::parking::Parking,
}

/// The reader, held: `reading` is set while it lives, and letting go records the vacancy.
pub(crate) struct ReaderGuard<'a> {
    core: &'a Core,
    guard: parking_lot::MutexGuard<'a, Box<dyn FrameReader>>,
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
        if self.core.is_closed() {
            // The last reader of a closed session lets the transport's descriptors go.
            *self.guard = Box::new(Gone);
        }
        let now = self.core.now_ms();
        self.core.vacant_since.store(now, Ordering::Release);
        self.core.reading.store(false, Ordering::Release);
        housekeeper::vacancy();
    }
}

/// Everything a session shares between its reader, its callers and its workers.
pub struct Inner<H: Host> {
    pub(crate) core: Arc<Core>,
    pub(crate) host: Arc<H>,
    pub(crate) exports: Mutex<Exports<H::Object>>,
    pub(crate) pending: Mutex<HashMap<Seq, Arc<Pending<H>>>>,
    /// Requests being served, with their cancelled flags.
    pub(crate) serving: Mutex<HashMap<Seq, Arc<AtomicBool>>>,
    /// Requests that arrived before `start_serving` (`Some` until then).
    pub(crate) held: Mutex<Option<Vec<crate::reader::Work<H>>>>,
}

impl Core {
    /// Take the reader if nobody holds it.
    pub(crate) fn try_read(&self) -> Option<ReaderGuard<'_>> {
        let guard = self.reader.try_lock()?;
        self.reading.store(true, Ordering::Release);
        self.parking.wake_up();
        Some(ReaderGuard { core: self, guard })
    }

    /// Milliseconds since the session started.
    pub(crate) fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// For how long nobody has read, if nobody reads now.
    pub(crate) fn vacant_for(&self) -> Option<u64> {
        if self.reading.load(Ordering::Acquire) {
            return None;
        }
        Some(
            self.now_ms()
                .saturating_sub(self.vacant_since.load(Ordering::Acquire)),
        )
    }

    /// A caller parks while another thread reads.
    pub(crate) fn park(&self, slot: &Arc<crate::chains::ParkSlot>) {
        self.parked.lock().push(Arc::clone(slot));
    }

    /// The caller stopped waiting.
    pub(crate) fn unpark(&self, slot: &Arc<crate::chains::ParkSlot>) {
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

    /// True if `remote` is a handle into this session's import table.
    pub(crate) fn owns(&self, remote: &RemoteRef) -> bool {
        remote.sink_is(&self.sink)
    }

    /// A fresh sequence number for an outgoing request.
    pub(crate) fn next_seq(&self) -> Seq {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }

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
        let limits = &self.peer.limits;
        if frame.body.len() as u64 > u64::from(limits.max_frame) || frame.len() > limits.max_message
        {
            return Err(Error::Overloaded(format!(
                "a message of {} bytes is larger than the peer accepts ({} bytes of body, {} in all)",
                frame.len(),
                limits.max_frame,
                limits.max_message
            )));
        }
        let releases = std::mem::take(&mut *self.releases.lock());
        let mut writer = self.writer.lock();
        let mut written = Ok(());
        if !releases.is_empty() {
            self.releases_sent.fetch_add(1, Ordering::Relaxed);
            written = writer.send(&encode(&Message::Release(releases)));
        }
        let written = written.and_then(|()| writer.send(frame));
        drop(writer);
        written.map_err(|e| self.break_off(e))
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

    /// Shut the transport in both directions, without waiting for a writer where the
    /// transport allows it.
    fn shut_transport(&self) {
        match &self.shutdown_handle {
            Some(handle) => handle.shutdown(),
            None => self.writer.lock().shutdown(),
        }
    }

    /// Send a liveness ping (from a pool thread: the write may wait on the peer).
    pub(crate) fn ping(&self) {
        let ping = Message::Request(pynto_proto::Request {
            seq: 0,
            chain: 0,
            target: pynto_proto::Target::Export(0),
            op: pynto_proto::Op::Ping,
        });
        let _ = self.send(&ping);
    }

    /// Count the peer as heard if bytes came from it, or left for it inside a frame being
    /// sent (it is reading them), since the last look.
    pub(crate) fn note_progress(&self) {
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
    pub(crate) fn stalled_frame(&self, silent_ms: u64, window_ms: u64) -> Option<String> {
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
        let floor = crate::liveness::MIN_FRAME_RATE * elapsed_ms / 1000;
        (frame.bytes < floor).then(|| {
            format!(
                "the peer trickles a frame: {} bytes in {:.1} s, slower than {} bytes/s",
                frame.bytes,
                elapsed_ms as f64 / 1000.0,
                crate::liveness::MIN_FRAME_RATE
            )
        })
    }

    /// Write queued releases now, if any (a pool thread's chore on an idle connection).
    pub(crate) fn flush_releases(&self) {
        let releases = std::mem::take(&mut *self.releases.lock());
        if releases.is_empty() || self.is_closed() {
            return;
        }
        self.releases_sent.fetch_add(1, Ordering::Relaxed);
        let written = self
            .writer
            .lock()
            .send(&encode(&Message::Release(releases)));
        if let Err(e) = written {
            self.break_off(e);
        }
    }

    /// Mark the session closed with `reason`; true if this call closed it.
    fn mark_closed(&self, reason: Error) -> bool {
        let mut slot = self.close_reason.lock();
        if self.closed.swap(true, Ordering::AcqRel) {
            return false;
        }
        *slot = Some(reason);
        true
    }

    /// Say goodbye (best effort: not if a write is under way, which may be stuck on the peer)
    /// and shut the transport, which ends the reader. Then let the transport's descriptors go:
    /// the writer's now, the reader's when its holder lets go (see `ReaderGuard`).
    fn shut(&self, goodbye: Option<String>) {
        if let (Some(reason), Some(mut writer)) = (goodbye, self.writer.try_lock()) {
            let _ = writer.send(&encode(&Message::Goodbye { reason }));
        }
        self.shut_transport();
        *self.writer.lock() = Box::new(Gone);
        if let Some(mut reader) = self.reader.try_lock() {
            *reader = Box::new(Gone);
        }
    }

    pub(crate) fn heard_now(&self) {
        self.last_heard
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl ReleaseSink for Core {
    fn released(&self, entry: &ImportEntry) {
        if self.is_closed() {
            return;
        }
        self.imports.lock().forget(entry);
        let first = {
            let mut releases = self.releases.lock();
            releases.push((entry.oid(), entry.received()));
            releases.len() == 1
        };
        if first {
            housekeeper::flush_soon(self.sink.clone());
        }
    }

    fn flush(&self) {
        self.flush_releases();
    }
}

pub(crate) fn transport_error(e: TransportError) -> Error {
    Error::transport("the transport failed", &e)
}

impl<H: Host> Session<H> {
    /// Open a session over `transport`: exchange Hello, then start serving `root` to the peer
    /// and accept calls. Fails with `Error::Protocol` on a version or token mismatch.
    pub fn connect(
        transport: Box<dyn Transport>,
        role: Role,
        host: Arc<H>,
        root: H::Object,
        config: Config,
    ) -> Result<Self, Error> {
        let peer_address = transport.peer();
        let (mut reader, mut writer) = transport.split();
        reader.set_limits(&config.limits);
        writer.set_write_timeout(config.write_timeout);
        let shutdown_handle = writer.shutdown_handle();
        let (received, sent) = (reader.progress(), writer.progress());
        let writer: Arc<Mutex<Box<dyn FrameWriter>>> = Arc::new(Mutex::new(writer));
        let peer = handshake::run(
            &mut *reader,
            &writer,
            shutter(shutdown_handle.clone(), &writer),
            role,
            &config,
        )?;
        let writer = Arc::try_unwrap(writer)
            .unwrap_or_else(|_| unreachable!("the deadline holds the writer weakly"));
        let root_identity = host.identity(&root);
        let hold = config.hold_requests;
        let core = Arc::new_cyclic(|weak: &Weak<Core>| {
            let sink: Weak<dyn ReleaseSink> = weak.clone();
            Core {
                config,
                peer,
                peer_address,
                writer,
                imports: Mutex::new(Imports::default()),
                releases: Mutex::new(Vec::new()),
                closed: AtomicBool::new(false),
                close_reason: Mutex::new(None),
                next_seq: AtomicU64::new(1),
                started: Instant::now(),
                last_heard: AtomicU64::new(0),
                waiting: AtomicUsize::new(0),
                ping_outstanding: AtomicBool::new(false),
                ping_sent: AtomicU64::new(0),
                requests_sent: AtomicU64::new(0),
                requests_served: AtomicU64::new(0),
                cancels_received: AtomicU64::new(0),
                releases_sent: AtomicU64::new(0),
                sink,
                interrupter: reader.interrupter(),
                parking: crate::parking::Parking::new(&mut *reader),
                reader: Mutex::new(reader),
                reading: AtomicBool::new(false),
                shutdown_handle,
                seen_received: AtomicU64::new(received.as_ref().map_or(0, Progress::bytes)),
                seen_sent: AtomicU64::new(sent.as_ref().map_or(0, Progress::bytes)),
                received,
                sent,
                broken: Mutex::new(None),
                vacant_since: AtomicU64::new(0),
                loop_pending: AtomicBool::new(false),
                parked: Mutex::new(Vec::new()),
            }
        });
        let inner = Arc::new(Inner {
            core,
            host,
            exports: Mutex::new(Exports::new(root, root_identity)),
            pending: Mutex::new(HashMap::new()),
            serving: Mutex::new(HashMap::new()),
            held: Mutex::new(hold.then(Vec::new)),
        });
        let session = Session { inner };
        crate::parking::watch(&session.inner);
        // An acceptor's job is to read; a connector's first call reads for itself (and the
        // housekeeper starts a read loop if none comes soon).
        if role == Role::Acceptor {
            session.inner.ensure_reader();
        } else {
            housekeeper::vacancy();
        }
        Ok(session)
    }

    /// The host serving this session's objects.
    pub fn host(&self) -> &Arc<H> {
        &self.inner.host
    }

    /// The peer's Hello: its implementation, service name and limits.
    pub fn peer_hello(&self) -> &Hello {
        &self.inner.core.peer
    }

    /// Where the other end is, e.g. `tcp://127.0.0.1:18812`.
    pub fn peer_address(&self) -> &str {
        &self.inner.core.peer_address
    }

    /// True once the session is closed.
    pub fn is_closed(&self) -> bool {
        self.inner.core.is_closed()
    }

    /// Why the session closed (`None` while open).
    pub fn close_reason(&self) -> Option<Error> {
        self.is_closed().then(|| self.inner.core.closed_error())
    }

    /// Close the session: say goodbye, fail every waiting call with `ConnectionClosed`, and drop
    /// everything either side held for the other. Idempotent.
    pub fn close(&self) {
        self.inner.close(
            Error::ConnectionClosed("the connection was closed by this side".into()),
            Some(String::new()),
        );
    }

    /// Serve the requests held since the session opened (with `Config::hold_requests`), and
    /// every request from now on. Idempotent.
    pub fn start_serving(&self) {
        let held = self.inner.held.lock().take();
        for work in held.into_iter().flatten() {
            work.spawn(&self.inner);
        }
    }

    /// A boxer for the values of one outgoing message.
    pub fn boxer(&self) -> Boxer<'_, H> {
        Boxer::new(&self.inner)
    }

    /// The description of a type the peer sent (`ObjRef::type_id`).
    pub fn type_desc(&self, type_id: TypeId) -> Option<Arc<TypeDesc>> {
        self.inner.core.imports.lock().type_desc(type_id)
    }

    /// True if `remote` is a handle into this session.
    pub fn owns(&self, remote: &RemoteRef) -> bool {
        self.inner.core.owns(remote)
    }

    /// Current counters.
    pub fn stats(&self) -> Stats {
        let core = &self.inner.core;
        Stats {
            exported: self.inner.exports.lock().live(),
            imported: core.imports.lock().len(),
            requests_sent: core.requests_sent.load(Ordering::Relaxed),
            requests_served: core.requests_served.load(Ordering::Relaxed),
            cancels_received: core.cancels_received.load(Ordering::Relaxed),
            releases_sent: core.releases_sent.load(Ordering::Relaxed),
        }
    }

    /// True if both handles are the same connection.
    pub fn same(&self, other: &Session<H>) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Write queued releases now rather than with the next message.
    pub fn flush_releases(&self) {
        self.inner.core.flush_releases();
    }
}

impl<H: Host> Inner<H> {
    /// Start a read loop unless someone reads or one is about to.
    pub(crate) fn ensure_reader(self: &Arc<Self>) {
        let core = &self.core;
        if core.is_closed() || core.reading.load(Ordering::Acquire) {
            return;
        }
        if core.loop_pending.swap(true, Ordering::AcqRel) {
            return;
        }
        let session = Session {
            inner: Arc::clone(self),
        };
        pool::spawn(Box::new(move || crate::reader::read_loop(session)));
    }

    /// Close with `reason`: fail waiting calls, drop both tables, tell the host.
    pub(crate) fn close(self: &Arc<Self>, reason: Error, goodbye: Option<String>) {
        if !self.core.mark_closed(reason.clone()) {
            return;
        }
        self.core.shut(goodbye);
        let pending: Vec<_> = self.pending.lock().drain().map(|(_, p)| p).collect();
        for call in pending {
            call.complete(Err(reason.clone()));
        }
        let objects = self.exports.lock().clear();
        self.core.imports.lock().clear();
        self.core.releases.lock().clear();
        let session = Session {
            inner: Arc::clone(self),
        };
        pool::spawn(Box::new(move || {
            drop(objects);
            session.inner.host.on_close(&session);
        }));
    }
}

/// Shuts a transport from the housekeeper at a handshake deadline: through its shutdown
/// handle, or else on a pool thread that takes the writer (which the housekeeper must not).
fn shutter(handle: Option<ShutdownHandle>, writer: &Arc<Mutex<Box<dyn FrameWriter>>>) -> Shutter {
    match handle {
        Some(handle) => Arc::new(move || handle.shutdown()),
        None => {
            let writer = Arc::downgrade(writer);
            Arc::new(move || {
                let writer = writer.clone();
                pool::spawn_chore(Box::new(move || {
                    if let Some(writer) = writer.upgrade() {
                        writer.lock().shutdown();
                    }
                }));
            })
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
