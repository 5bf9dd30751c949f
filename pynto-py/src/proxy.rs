//! Proxy classes: the Python objects that stand for the peer's objects, and how they are made.
//!
//! `Proxy` is the Rust base class. For each remote type, `pynto._proxy.make_class` builds a
//! Python subclass holding exactly the special methods the remote type has, mapped onto the
//! `_pynto_*` methods of `Proxy`, so `len`, `iter`, `callable` and ABC checks match the remote
//! object. Those methods send requests; they are the calling side's, in `call.rs`.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;
use pynto_proto::{Target, TypeId};
use pynto_runtime::{RemoteRef, Session};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::pyclass::{PyTraverseError, PyVisit};
use pyo3::types::{PyString, PyType, PyWeakrefReference};

use crate::caches::TypeInfo;
use crate::errors;
use crate::helpers::helpers;
use crate::state::{ConnState, PyHost};

/// Items fetched ahead by a batched `next`.
#[derive(Default)]
pub(crate) struct Prefetch {
    pub items: VecDeque<Py<PyAny>>,
    pub exhausted: bool,
    pub batch: u32,
}

/// The base class of every proxy: a counted reference to one of the peer's objects.
#[pyclass(frozen, weakref, subclass, module = "pynto")]
pub struct Proxy {
    /// The session the reference belongs to, and its Python-side state.
    pub(crate) session: Session<PyHost>,
    pub(crate) state: Arc<ConnState>,
    /// The Python connection object: a proxy keeps its connection open. (`None` once the
    /// garbage collector has cleared this proxy.)
    pub(crate) conn: Mutex<Option<Py<PyAny>>>,
    pub(crate) handle: RemoteRef,
    pub(crate) info: Arc<TypeInfo>,
    pub(crate) prefetch: Mutex<Prefetch>,
}

/// A one-shot carrier of a proxy's Rust half into its Python class's constructor.
#[pyclass(frozen)]
pub(crate) struct ProxySeed(pub(crate) Mutex<Option<Proxy>>);

impl Proxy {
    /// The counted reference.
    pub(crate) fn handle(&self) -> &RemoteRef {
        &self.handle
    }

    /// Where requests to the remote object go.
    pub(crate) fn target(&self) -> Target {
        Target::Export(self.handle.oid())
    }

    /// A new proxy's Rust half, taken out of its seed by `__new__`.
    pub(crate) fn from_seed(seed: &Bound<'_, ProxySeed>) -> PyResult<Proxy> {
        seed.get()
            .0
            .lock()
            .take()
            .ok_or_else(|| PyTypeError::new_err("proxies are made by pynto, not by hand"))
    }

    /// `__traverse__`: the connection and the prefetched items. A lock another thread holds
    /// is skipped (an incomplete visit only delays a collection; waiting could deadlock).
    pub(crate) fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some(conn) = self.conn.try_lock() {
            visit.call(conn.as_ref())?;
        }
        if let Some(prefetch) = self.prefetch.try_lock() {
            for item in &prefetch.items {
                visit.call(item)?;
            }
        }
        Ok(())
    }

    /// `__clear__`: let go of the connection and the prefetched items. They are dropped after
    /// the locks are released, since dropping a Python object can run Python code.
    pub(crate) fn clear(&self) {
        let conn = self.conn.try_lock().and_then(|mut c| c.take());
        let items = self
            .prefetch
            .try_lock()
            .map(|mut p| std::mem::take(&mut p.items));
        drop((conn, items));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Forget this proxy in its connection's cache if the cache still points at it.
        let oid = self.handle.oid();
        Python::attach(|py| {
            let mut proxies = self.state.proxies.lock();
            if proxies
                .get(&oid)
                .is_some_and(|w| w.bind(py).upgrade().is_none())
            {
                proxies.remove(&oid);
            }
        });
    }
}

#[pymethods]
impl ProxySeed {
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        match self.0.try_lock() {
            Some(seed) => seed.as_ref().map_or(Ok(()), |p| p.traverse(&visit)),
            None => Ok(()),
        }
    }

    fn __clear__(&self) {
        let proxy = self.0.try_lock().and_then(|mut p| p.take());
        drop(proxy);
    }
}

// `proxy.method`, bound: calling it is one `CallMethod` round trip. (No `///` doc: a class
// docstring would shadow the `__doc__` getter, which returns the remote method's.) Its methods
// are in `call.rs`.
#[pyclass(frozen, module = "pynto")]
pub struct BoundMethod {
    pub(crate) proxy: Py<Proxy>,
    pub(crate) name: Py<PyString>,
}

/// True if `obj` is a pynto proxy.
#[pyfunction]
pub(crate) fn is_proxy(obj: &Bound<'_, PyAny>) -> bool {
    obj.is_instance_of::<Proxy>()
}

fn class_for(
    py: Python<'_>,
    session: &Session<PyHost>,
    state: &Arc<ConnState>,
    type_id: TypeId,
) -> PyResult<(Py<PyType>, Arc<TypeInfo>)> {
    if let Some(class) = state.classes.lock().get(py, type_id) {
        return Ok(class);
    }
    let desc = session.type_desc(type_id).ok_or_else(|| {
        if session.is_closed() {
            // The descriptions went with the connection.
            errors::to_py(
                py,
                pynto_runtime::Error::ConnectionClosed("the connection is closed".into()),
                false,
            )
        } else {
            errors::protocol_error(py, format!("the peer never described type {type_id}"))
        }
    })?;
    let cls = helpers(py)?.make_class.bind(py).call1((
        py.get_type::<Proxy>(),
        &desc.module,
        &desc.qualname,
        desc.dunders.clone(),
        desc.methods.clone(),
        desc.abcs.clone(),
    ))?;
    let cls = cls.cast_into::<PyType>()?.unbind();
    let info = Arc::new(TypeInfo {
        methods: desc.methods.iter().cloned().collect(),
        coroutine: desc.module == "builtins" && desc.qualname == "coroutine",
    });
    state
        .classes
        .lock()
        .insert(type_id, &desc, (cls.clone_ref(py), Arc::clone(&info)));
    Ok((cls, info))
}

/// The proxy for the peer's object `handle`: the live one if there is one, else a new one.
pub(crate) fn proxy_for<'py>(
    py: Python<'py>,
    session: &Session<PyHost>,
    state: &Arc<ConnState>,
    handle: &RemoteRef,
    type_id: TypeId,
) -> PyResult<Bound<'py, PyAny>> {
    let oid = handle.oid();
    let existing = state
        .proxies
        .lock()
        .get(&oid)
        .and_then(|w| w.bind(py).upgrade());
    if let Some(existing) = existing {
        let coroutine = existing
            .cast::<Proxy>()
            .is_ok_and(|p| p.get().info.coroutine);
        return if coroutine {
            local_coroutine(py, existing)
        } else {
            Ok(existing)
        };
    }
    let (cls, info) = class_for(py, session, state, type_id)?;
    let coroutine = info.coroutine;
    let conn = state
        .connection(py)
        .ok_or_else(|| errors::protocol_error(py, "the connection object is gone".into()))?;
    let proxy = Proxy {
        session: session.clone(),
        state: Arc::clone(state),
        conn: Mutex::new(Some(conn.unbind())),
        handle: handle.clone(),
        info,
        prefetch: Mutex::new(Prefetch::default()),
    };
    let seed = Bound::new(py, ProxySeed(Mutex::new(Some(proxy))))?;
    // `__new__` alone: a proxy class's `__init__` forwards explicit `proxy.__init__(...)` calls.
    let cls = cls.bind(py);
    let obj = cls.call_method1(pyo3::intern!(py, "__new__"), (cls, seed))?;
    state
        .proxies
        .lock()
        .insert(oid, PyWeakrefReference::new(&obj)?.unbind());
    if coroutine {
        return local_coroutine(py, obj);
    }
    Ok(obj)
}

/// A remote coroutine (a remote `async def` called) as a real coroutine here, so
/// `asyncio.run`, `gather` and `await` take it; awaiting it drives the remote one on its
/// owner's event loop.
fn local_coroutine<'py>(py: Python<'py>, proxy: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    helpers(py)?.local_coroutine.bind(py).call1((proxy,))
}
