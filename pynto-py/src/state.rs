//! What one connection keeps on the Python side, shared by both directions of call: the
//! owner's policy, the proxies and proxy classes of the peer's objects, the access decisions
//! and type keys of this side's objects. `PyHost`, the runtime's handle on it, is declared here;
//! what it does when the peer asks is `host.rs`.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use pynto_proto::Oid;
use pyo3::prelude::*;
use pyo3::pyclass::{PyTraverseError, PyVisit};
use pyo3::types::PyWeakrefReference;

use crate::caches::{Decisions, ProxyClasses, TypeKeys};

/// The owner's policy for one connection, mirrored from `pynto._service.Policy`.
pub(crate) struct Policy {
    /// Full access: no checks (ClassicService on this side).
    pub classic: bool,
    /// Let the peer ask for pickled copies.
    pub allow_pickle: bool,
    /// Rebuild remote exceptions of importable non-builtin classes.
    pub rebuild_exceptions: bool,
    /// The Python `Policy` object handed to the access-check functions.
    pub object: Py<PyAny>,
}

/// What one connection keeps on the Python side: policy, proxies and proxy classes.
pub(crate) struct ConnState {
    pub policy: Policy,
    /// oid -> weak reference to its live proxy, so one remote object is one proxy.
    pub proxies: Mutex<HashMap<Oid, Py<PyWeakrefReference>>>,
    /// Proxy classes built from the peer's type descriptions (bounded).
    pub classes: Mutex<ProxyClasses>,
    /// Access decisions already made for instances, by type and name (bounded).
    pub resolved: Mutex<Decisions>,
    /// The runtime's keys for the types this side exported.
    pub type_keys: Mutex<TypeKeys>,
    /// Refuse blocking calls made from a running event loop's thread (`pynto.aio` connections).
    pub guard_loop: AtomicBool,
    /// The Python `Connection` object, weakly (it owns the session, which owns this).
    pub connection: OnceLock<Py<PyWeakrefReference>>,
    /// The peer answered `PickleBuffers` with `Unimplemented`: `obtain` asks `Pickle` instead.
    pub no_pickle_buffers: AtomicBool,
}

impl ConnState {
    pub(crate) fn new(policy: Policy) -> Arc<ConnState> {
        Arc::new(ConnState {
            policy,
            proxies: Mutex::new(HashMap::new()),
            classes: Mutex::new(ProxyClasses::default()),
            resolved: Mutex::new(Decisions::default()),
            type_keys: Mutex::new(TypeKeys::default()),
            guard_loop: AtomicBool::new(false),
            connection: OnceLock::new(),
            no_pickle_buffers: AtomicBool::new(false),
        })
    }

    /// The Python connection object, while it lives.
    pub(crate) fn connection<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyAny>> {
        self.connection.get().and_then(|w| w.bind(py).upgrade())
    }

    /// Show the garbage collector the Python objects kept here that could lead back to the
    /// connection (the policy object and the proxy classes; weak references and interned
    /// names cannot). A cache another thread holds right now is skipped: an incomplete visit
    /// only delays a collection.
    pub(crate) fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.policy.object)?;
        if let Some(classes) = self.classes.try_lock() {
            classes.traverse(visit)?;
        }
        Ok(())
    }
}

/// The host of one connection's Python objects (the runtime's `Host`, in `host.rs`).
pub(crate) struct PyHost {
    pub state: Arc<ConnState>,
}
