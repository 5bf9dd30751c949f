//! The `Host` trait a binding implements, and the session types written in its terms.
//!
//! These are one knot: [`Host::perform`] takes a [`Session`] and a [`Boxer`], and both are
//! generic over their host. So they live in one module, at the bottom of the session's own
//! files: the `Session` handle, the state behind it ([`Inner`]: one field per table, each
//! table owned by a file of its own below this one), what an incoming message's references
//! resolve to and how an outgoing message's values are boxed (`host/boxing.rs`), and closing,
//! which empties every table at once. What a session *does* is above: reading (`reader.rs`),
//! calling (`call.rs`), its life cycle (`session.rs`).

mod boxing;

use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use pynto_proto::{Failure, Hello, Op, Value};

use crate::calls::CallsOut;
use crate::config::Config;
use crate::dispatch::{self, Dispatch};
use crate::error::Error;
use crate::exports::Exports;
use crate::imports::{Imports, ReleaseSink, RemoteRef};
use crate::liveness::Liveness;
use crate::pool;
use crate::wire::Wire;

pub use boxing::{Answer, Boxer, Incoming};

/// A language binding: its object type and how operations on its objects run.
///
/// The runtime calls [`Host::perform`] on a worker thread, or on a thread parked in a call of
/// the same chain, never while that thread holds a connection's reader (reading is a role any
/// thread takes, see `reader.rs`). Everything else the runtime does with host objects is clone
/// and drop.
pub trait Host: Send + Sync + Sized + 'static {
    /// A handle to one of the host's objects.
    type Object: Clone + Send + Sync + 'static;

    /// A key that is equal for two handles exactly when they are the same object
    /// (Python: `id(obj)`), used so an object exported twice gets one oid.
    fn identity(&self, object: &Self::Object) -> usize;

    /// Perform `op` on `target`, one of this side's objects, for the peer.
    ///
    /// `incoming` resolves the references the request carried (`Value::Ref` to a proxy handle,
    /// `Value::Returned` to the local object). The result is boxed with `boxer`, which exports
    /// objects by reference. `Op::GetRoot` arrives with the session's root as `target`.
    fn perform(
        &self,
        session: &Session<Self>,
        target: &Self::Object,
        op: Op,
        incoming: &Incoming<Self>,
        boxer: &mut Boxer<'_, Self>,
    ) -> Result<Value, Failure>;

    /// The session closed; everything the peer held is released already. Runs on a worker
    /// thread.
    fn on_close(&self, _session: &Session<Self>) {}
}

/// A live connection to a peer. Cheap to clone; all clones are the same connection.
///
/// Its methods: the life cycle in `session.rs`, calls in `call.rs`, the client API in
/// `remote.rs`.
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

/// A request of this session's peer that arrived for no waiting thread.
pub(crate) type Work<H> = dispatch::Work<<H as Host>::Object, Incoming<H>>;

/// What a call of this session gets back.
pub(crate) type Reply<H> = Result<Answer<H>, Error>;

/// Everything a session shares between the threads that read it, call through it and serve
/// it: one field per table, each with its owner's narrow interface.
pub(crate) struct Inner<H: Host> {
    pub(crate) config: Config,
    /// The peer's Hello.
    pub(crate) peer: Hello,
    /// Where the other end is.
    pub(crate) peer_address: String,
    pub(crate) host: Arc<H>,
    /// The transport, open or closed, and the reading role (`wire.rs`).
    pub(crate) wire: Wire,
    /// When the peer was last heard, and the ping outstanding (`liveness.rs`).
    pub(crate) liveness: Liveness,
    /// This side's calls waiting for replies (`calls.rs`).
    pub(crate) calls: CallsOut<Reply<H>>,
    /// The peer's requests being served or held (`dispatch.rs`).
    pub(crate) dispatch: Dispatch<Work<H>>,
    /// This side's objects the peer holds (`exports.rs`).
    pub(crate) exports: Mutex<Exports<H::Object>>,
    /// The peer's objects this side holds (`imports.rs`).
    pub(crate) imports: Mutex<Imports>,
    /// A weak pointer to this session as a release sink, handed to every imported reference.
    pub(crate) sink: Weak<dyn ReleaseSink>,
}

impl<H: Host> Inner<H> {
    /// True if `remote` is a handle into this session's import table.
    pub(crate) fn owns(&self, remote: &RemoteRef) -> bool {
        remote.sink_is(&self.sink)
    }

    /// Close with `reason` (once, whoever closes): shut the transport, fail waiting calls, drop
    /// both tables, tell the host.
    pub(crate) fn close(self: &Arc<Self>, reason: Error, goodbye: Option<String>) {
        if !self.wire.mark_closed(reason.clone()) {
            return;
        }
        self.wire.shut(goodbye);
        self.calls.fail_all(|| Err(reason.clone()));
        let objects = self.exports.lock().clear();
        self.imports.lock().clear();
        let session = Session {
            inner: Arc::clone(self),
        };
        pool::spawn(Box::new(move || {
            drop(objects);
            session.inner.host.on_close(&session);
        }));
    }
}
