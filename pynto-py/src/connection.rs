//! The connection object: one open session and its Python-side state, as Python holds it.
//! (The ways to open one are `open.rs`.)

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use pynto_proto::{Op, Target};
use pynto_runtime::Session;
use pyo3::prelude::*;
use pyo3::pyclass::{PyTraverseError, PyVisit};
use pyo3::types::PyDict;

use crate::errors;
use crate::state::{ConnState, PyHost};

/// One connection to a peer. The Python class `pynto.Connection` extends it.
#[pyclass(subclass, weakref, frozen, module = "pynto._pynto")]
pub struct Connection {
    pub(crate) session: OnceLock<Session<PyHost>>,
    pub(crate) state: OnceLock<Arc<ConnState>>,
    /// This side's root object, which the session serves to the peer: shown to the garbage
    /// collector from here, so a service that holds its connection does not keep it open
    /// forever once nothing else does. (`None` once the collector has cleared it.)
    pub(crate) root: Mutex<Option<Arc<Py<PyAny>>>>,
}

impl Connection {
    pub(crate) fn session_ref(&self, py: Python<'_>) -> PyResult<&Session<PyHost>> {
        self.session
            .get()
            .ok_or_else(|| errors::protocol_error(py, "the connection is not open yet".into()))
    }

    /// The session and its Python-side state, or an error if the connection never opened.
    pub(crate) fn open_parts(
        &self,
        py: Python<'_>,
    ) -> PyResult<(&Session<PyHost>, &Arc<ConnState>)> {
        let session = self.session_ref(py)?;
        let state = self
            .state
            .get()
            .ok_or_else(|| errors::protocol_error(py, "the connection is not open".into()))?;
        Ok((session, state))
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // A connection nobody can reach any more is closed (proxies hold it alive while used).
        if let Some(session) = self.session.get() {
            session.close();
        }
    }
}

#[pymethods]
impl Connection {
    #[new]
    fn new() -> Self {
        Connection {
            session: OnceLock::new(),
            state: OnceLock::new(),
            root: Mutex::new(None),
        }
    }

    /// The peer's root object, fetched (one round trip).
    fn _fetch_root<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (session, state) = self.open_parts(py)?;
        crate::call::request(py, session, state, Target::Export(0), |_, _| {
            Ok(Op::GetRoot)
        })
    }

    /// The Python objects this connection keeps: its root object, policy and proxy classes.
    /// (Proxies and pending replies show their connection in turn, so a connection whose
    /// `root` was fetched is collected once nothing else holds it.)
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some(root) = self.root.try_lock() {
            visit.call(root.as_deref())?;
        }
        if let Some(state) = self.state.get() {
            state.traverse(&visit)?;
        }
        Ok(())
    }

    /// Let go of what this object alone holds. Nothing here closes the session or takes the
    /// runtime's locks: the connection closes when it is freed (`Drop`), once the collector
    /// has broken the cycle elsewhere (the instance `__dict__`, a proxy, the service).
    fn __clear__(&self) {
        let root = self.root.try_lock().and_then(|mut r| r.take());
        drop(root);
    }

    /// End the connection; every call waiting on it fails with ConnectionClosed.
    fn close(&self, py: Python<'_>) {
        if let Some(session) = self.session.get() {
            py.detach(|| session.close());
        }
    }

    /// True once the connection has ended.
    #[getter]
    fn closed(&self) -> bool {
        self.session.get().is_none_or(|s| s.is_closed())
    }

    /// One round trip; the seconds it took.
    fn ping(&self, py: Python<'_>) -> PyResult<f64> {
        let session = self.session_ref(py)?;
        let rebuild = self
            .state
            .get()
            .is_some_and(|s| s.policy.rebuild_exceptions);
        py.detach(|| session.ping())
            .map(|d| d.as_secs_f64())
            .map_err(|e| errors::to_py(py, e, rebuild))
    }

    /// Counters: exported, imported, requests sent and served, cancels received.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let session = self.session_ref(py)?;
        let s = session.stats();
        let d = PyDict::new(py);
        d.set_item("exported", s.exported)?;
        d.set_item("imported", s.imported)?;
        d.set_item("requests_sent", s.requests_sent)?;
        d.set_item("requests_served", s.requests_served)?;
        d.set_item("cancels_received", s.cancels_received)?;
        d.set_item("releases_sent", s.releases_sent)?;
        d.set_item(
            "proxies",
            self.state.get().map_or(0, |st| st.proxies.lock().len()),
        )?;
        Ok(d)
    }

    /// Where the peer is.
    #[getter]
    fn peer(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.session_ref(py)?.peer_address().to_string())
    }

    /// The name of the peer's service.
    #[getter]
    fn peer_service(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.session_ref(py)?.peer_hello().service.clone())
    }

    /// Why the connection closed (None while open).
    #[getter]
    fn close_reason(&self) -> Option<String> {
        self.session
            .get()
            .and_then(|s| s.close_reason())
            .map(|e| e.to_string())
    }

    /// Refuse (`True`) blocking calls from a running event loop's thread.
    fn _guard_loop(&self, on: bool) {
        if let Some(state) = self.state.get() {
            state.guard_loop.store(on, Ordering::Relaxed);
        }
    }

    /// Serve the peer's requests from now on (held until this side's service is set up).
    fn _start_serving(&self) {
        if let Some(session) = self.session.get() {
            session.start_serving();
        }
    }

    /// Write queued releases now.
    fn _flush(&self, py: Python<'_>) -> PyResult<()> {
        self.session_ref(py)?.flush_releases();
        Ok(())
    }
}
