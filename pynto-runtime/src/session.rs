//! A session: one symmetric connection between two peers, each serving and calling; this file
//! is its life cycle.
//!
//! [`Session::connect`] does the Hello exchange over any transport (`handshake.rs`), builds the
//! session's tables (`host.rs` holds them together: the wire, liveness, calls out, dispatch,
//! exports and imports, each owned by its own file), and lets the connection be read: reading
//! is a role any thread takes (`reader.rs`), not a thread of the session's own. Calls go out
//! from the caller's own thread (`call.rs`). [`Session::start_serving`] lets held requests run;
//! [`Session::close`] closes once, whoever closes (waiting calls fail, both tables empty, the
//! transport's descriptors close); [`Session::stats`] counts. The process-wide housekeeper
//! calls in here for each session ([`housekeeper::Maintained`]): to find it a reader when
//! nobody reads, and to act on its liveness verdict; and imported references call in here
//! when they are dropped ([`ReleaseSink`]).

use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use pynto_proto::{Hello, TypeDesc, TypeId};
use pynto_transport::{FrameWriter, ShutdownHandle, Transport};

use crate::calls::CallsOut;
use crate::config::Config;
use crate::dispatch::Dispatch;
use crate::error::Error;
use crate::exports::Exports;
use crate::handshake::{self, Role};
use crate::host::{Boxer, Host, Inner, Session};
use crate::housekeeper::{self, Shutter};
use crate::imports::{ImportEntry, Imports, ReleaseSink, RemoteRef};
use crate::liveness::{Liveness, Verdict};
use crate::pool;
use crate::reader;
use crate::wire::Wire;

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
            .unwrap_or_else(|_| unreachable!("the deadline holds the writer weakly"))
            .into_inner();
        let root_identity = host.identity(&root);
        let inner = Arc::new_cyclic(|weak: &Weak<Inner<H>>| {
            let sink: Weak<dyn ReleaseSink> = weak.clone();
            Inner {
                wire: Wire::new(reader, writer, shutdown_handle, &peer),
                liveness: Liveness::new(&config, received, sent),
                calls: CallsOut::default(),
                dispatch: Dispatch::new(config.limits.max_in_flight, config.hold_requests),
                exports: Mutex::new(Exports::new(root, root_identity)),
                imports: Mutex::new(Imports::default()),
                sink,
                host,
                config,
                peer,
                peer_address,
            }
        });
        let session = Session { inner };
        reader::watch(&session.inner);
        // An acceptor's job is to read; a connector's first call reads for itself (and the
        // housekeeper starts a read loop if none comes soon).
        if role == Role::Acceptor {
            reader::ensure_reader(&session.inner);
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
        &self.inner.peer
    }

    /// Where the other end is, e.g. `tcp://127.0.0.1:18812`.
    pub fn peer_address(&self) -> &str {
        &self.inner.peer_address
    }

    /// True once the session is closed.
    pub fn is_closed(&self) -> bool {
        self.inner.wire.is_closed()
    }

    /// True while the connection waits in the process's poller: idle, with no thread reading
    /// it (for tests and diagnostics).
    pub fn is_parked(&self) -> bool {
        self.inner.wire.parking.is_parked()
    }

    /// Why the session closed (`None` while open).
    pub fn close_reason(&self) -> Option<Error> {
        self.is_closed().then(|| self.inner.wire.closed_error())
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
        for work in self.inner.dispatch.start_serving() {
            reader::spawn(&self.inner, work);
        }
    }

    /// A boxer for the values of one outgoing message.
    pub fn boxer(&self) -> Boxer<'_, H> {
        Boxer::new(&self.inner)
    }

    /// The description of a type the peer sent (`ObjRef::type_id`).
    pub fn type_desc(&self, type_id: TypeId) -> Option<Arc<TypeDesc>> {
        self.inner.imports.lock().type_desc(type_id)
    }

    /// True if `remote` is a handle into this session.
    pub fn owns(&self, remote: &RemoteRef) -> bool {
        self.inner.owns(remote)
    }

    /// Current counters.
    pub fn stats(&self) -> Stats {
        let inner = &self.inner;
        Stats {
            exported: inner.exports.lock().live(),
            imported: inner.imports.lock().len(),
            requests_sent: inner.calls.requests_sent(),
            requests_served: inner.dispatch.requests_served(),
            cancels_received: inner.dispatch.cancels_received(),
            releases_sent: inner.wire.releases_sent(),
        }
    }

    /// True if both handles are the same connection.
    pub fn same(&self, other: &Session<H>) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Write queued releases now rather than with the next message.
    pub fn flush_releases(&self) {
        self.inner.wire.flush_releases();
    }
}

impl<H: Host> ReleaseSink for Inner<H> {
    fn released(&self, entry: &ImportEntry) {
        if self.wire.is_closed() {
            return;
        }
        self.imports.lock().forget(entry);
        if self.wire.queue_release(entry.oid(), entry.received()) {
            housekeeper::flush_soon(self.sink.clone());
        }
    }

    fn flush(&self) {
        self.wire.flush_releases();
    }
}

impl<H: Host> housekeeper::Maintained for Inner<H> {
    fn maintain(self: Arc<Self>) {
        if self.wire.is_closed() {
            return;
        }
        // Nobody has read for a moment: wake a parked caller to read, or start a read loop
        // (unless the connection waits in the poller, which finds it a reader).
        if !self.wire.parking.is_parked()
            && self
                .wire
                .vacant_for()
                .is_some_and(|ms| ms >= housekeeper::VACANCY_GRACE_MS)
            && !self.wire.hand_on_reading()
        {
            reader::ensure_reader(&self);
        }
        // Writes and closes may wait on the peer: they are pool chores.
        match self.liveness.check(|| self.calls.calls_wait()) {
            Verdict::Fine => {}
            Verdict::Ping => {
                let inner = Arc::clone(&self);
                pool::spawn_chore(Box::new(move || {
                    let _ = inner.wire.send(&Liveness::ping_message());
                }));
            }
            Verdict::Close(reason, goodbye) => {
                let inner = Arc::clone(&self);
                pool::spawn_chore(Box::new(move || inner.close(reason, Some(goodbye))));
            }
        }
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
