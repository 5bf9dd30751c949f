//! A session: one symmetric connection between two peers, each serving and calling.
//!
//! [`Session::connect`] does the Hello exchange over any transport, then starts the
//! connection's one reader thread (see `reader.rs`). Calls go out from the caller's own thread
//! (see `call.rs`). This file holds the shared state and the life cycle: handshake, close, stats.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;

use parking_lot::Mutex;
use pynto_proto::{
    decode, encode, Frame, Hello, Message, Oid, Seq, TypeDesc, TypeId, IMPLEMENTATION,
    PROTOCOL_VERSION,
};
use pynto_transport::{FrameReader, FrameWriter, Transport, TransportError};

use crate::boxing::Boxer;
use crate::call::Pending;
use crate::config::Config;
use crate::error::{Error, AUTHENTICATION_FAILED, VERSION_MISMATCH};
use crate::exports::Exports;
use crate::host::Host;
use crate::housekeeper;
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
    /// Milliseconds after `started` when `reader` was last let go.
    vacant_since: AtomicU64,
    /// A read loop was started and has not begun yet.
    pub(crate) loop_pending: AtomicBool,
    /// Callers parked while another thread reads; one is woken to read when the reader is
    /// handed on.
    parked: Mutex<Vec<Arc<crate::chains::ParkSlot>>>,
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
        if !releases.is_empty() {
            self.releases_sent.fetch_add(1, Ordering::Relaxed);
            writer
                .send(&encode(&Message::Release(releases)))
                .map_err(transport_error)?;
        }
        writer.send(frame).map_err(transport_error)
    }

    /// Write queued releases now, if any (the housekeeper's job on an idle connection).
    pub(crate) fn flush_releases(&self) {
        let releases = std::mem::take(&mut *self.releases.lock());
        if releases.is_empty() || self.is_closed() {
            return;
        }
        self.releases_sent.fetch_add(1, Ordering::Relaxed);
        let _ = self
            .writer
            .lock()
            .send(&encode(&Message::Release(releases)));
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

    /// Say goodbye (best effort) and shut the transport, which ends the reader.
    fn shut(&self, goodbye: Option<String>) {
        let mut writer = self.writer.lock();
        if let Some(reason) = goodbye {
            let _ = writer.send(&encode(&Message::Goodbye { reason }));
        }
        writer.shutdown();
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

fn transport_error(e: pynto_transport::TransportError) -> Error {
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
        let (mut reader, writer) = transport.split();
        reader.set_limits(&config.limits);
        let writer: Arc<Mutex<Box<dyn FrameWriter>>> = Arc::new(Mutex::new(writer));
        let peer = handshake(&mut *reader, &writer, role, &config)?;
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
                requests_sent: AtomicU64::new(0),
                requests_served: AtomicU64::new(0),
                cancels_received: AtomicU64::new(0),
                releases_sent: AtomicU64::new(0),
                sink,
                interrupter: reader.interrupter(),
                reader: Mutex::new(reader),
                reading: AtomicBool::new(false),
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
        housekeeper::watch(Arc::downgrade(&session.inner) as Weak<dyn housekeeper::Maintained>);
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

/// The Hello exchange, bounded by the handshake timeout (the housekeeper shuts the transport
/// when it passes).
fn handshake(
    reader: &mut dyn FrameReader,
    writer: &Arc<Mutex<Box<dyn FrameWriter>>>,
    role: Role,
    config: &Config,
) -> Result<Hello, Error> {
    let hello = Hello {
        protocol: PROTOCOL_VERSION,
        implementation: IMPLEMENTATION.to_string(),
        features: Vec::new(),
        limits: config.limits,
        token: if role == Role::Connector {
            config.token.clone()
        } else {
            None
        },
        service: config.service_name.clone(),
    };
    let deadline = Instant::now() + config.handshake_timeout;
    let watchdog = housekeeper::Deadline::arm(deadline, Arc::downgrade(writer));
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
        writer.lock().shutdown();
    }
    result
}

fn exchange(
    reader: &mut dyn FrameReader,
    writer: &Arc<Mutex<Box<dyn FrameWriter>>>,
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

impl<H: Host> housekeeper::Maintained for Inner<H> {
    fn maintain(self: Arc<Self>) {
        let core = &self.core;
        if core.is_closed() {
            return;
        }
        // Nobody has read for a moment: wake a parked caller to read, or start a read loop.
        if core
            .vacant_for()
            .is_some_and(|ms| ms >= housekeeper::VACANCY_GRACE_MS)
            && !core.hand_on_reading()
        {
            self.ensure_reader();
        }
        if core.waiting.load(Ordering::Relaxed) == 0 {
            return;
        }
        let now = core.started.elapsed().as_millis() as u64;
        let silent = now.saturating_sub(core.last_heard.load(Ordering::Relaxed));
        let interval = core.config.liveness_interval.as_millis() as u64;
        let give_up = interval + core.config.liveness_timeout.as_millis() as u64;
        if silent >= give_up && core.ping_outstanding.load(Ordering::Acquire) {
            let why = format!(
                "the peer stopped answering (silent for {:.1} s while calls waited)",
                silent as f64 / 1000.0
            );
            self.close(Error::ConnectionClosed(why.clone()), Some(why));
        } else if silent >= interval && !core.ping_outstanding.swap(true, Ordering::AcqRel) {
            let ping = Message::Request(pynto_proto::Request {
                seq: 0,
                chain: 0,
                target: pynto_proto::Target::Export(0),
                op: pynto_proto::Op::Ping,
            });
            let _ = core.send(&ping);
        }
    }
}
