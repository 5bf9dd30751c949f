//! The server's listening half: an accept loop on a Rust thread that only accepts, and hands
//! each new socket to Python on a pool thread, where its TLS handshake and Hello run under one
//! deadline. A slow or silent peer holds up no one but that pool thread, and only until the
//! deadline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use pynto_runtime::Role;
use pynto_transport::{Address, Incoming, Listener, TlsServer};
use pyo3::prelude::*;
use pyo3::types::PyType;

use crate::connection::Connection;
use crate::open;

/// A connection accepted by the listener, waiting to be opened.
#[pyclass(frozen, module = "pynto._pynto")]
pub struct Accepted {
    incoming: Mutex<Option<Incoming>>,
    peer: String,
    /// When it was accepted: the whole handshake (TLS and Hello) counts from here.
    at: std::time::Instant,
}

#[pymethods]
impl Accepted {
    /// Where the connection comes from.
    #[getter]
    fn peer(&self) -> String {
        self.peer.clone()
    }

    /// Finish the transport (the TLS handshake), do the Hello exchange (checking the token)
    /// and open the connection as a `cls`, all within the handshake timeout from the accept.
    #[pyo3(signature = (cls, root, policy, token=None, service_name=String::new(), limits=None))]
    #[allow(clippy::too_many_arguments)]
    fn open<'py>(
        &self,
        py: Python<'py>,
        cls: &Bound<'py, PyType>,
        root: Py<PyAny>,
        policy: Py<PyAny>,
        token: Option<String>,
        service_name: String,
        limits: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, Connection>> {
        let incoming = self.incoming.lock().take().ok_or_else(|| {
            crate::errors::protocol_error(py, "this connection was opened already".into())
        })?;
        let mut settings =
            open::settings(py, root, policy, token, None, service_name, limits.as_ref())?;
        let deadline = self.at + settings.config.handshake_timeout;
        let transport = py
            .detach(|| incoming.establish(deadline))
            .map_err(|e| crate::errors::protocol_error(py, e.to_string()))?;
        // What is left of the deadline is the Hello exchange's.
        settings.config.handshake_timeout = deadline
            .saturating_duration_since(std::time::Instant::now())
            .max(std::time::Duration::from_millis(1));
        open::open(py, cls, transport, Role::Acceptor, settings)
    }
}

/// A listening socket with its accept loop.
#[pyclass(frozen, module = "pynto._pynto")]
pub struct Server {
    /// Taken (and so closed) by `close`.
    listener: Mutex<Option<Arc<Listener>>>,
    address: String,
    stopping: Arc<AtomicBool>,
    loop_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

#[pymethods]
impl Server {
    /// Listen on `address` (`tcp://host:port`, `unix:///path`, `tls://host:port` with a
    /// certificate and key).
    #[new]
    #[pyo3(signature = (address, tls_cert=None, tls_key=None, tls_ca=None))]
    fn new(
        py: Python<'_>,
        address: &str,
        tls_cert: Option<std::path::PathBuf>,
        tls_key: Option<std::path::PathBuf>,
        tls_ca: Option<std::path::PathBuf>,
    ) -> PyResult<Server> {
        let addr = Address::parse(address)
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
        let tls = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => Some(TlsServer {
                cert,
                key,
                client_ca: tls_ca,
            }),
            (None, None) => None,
            _ => {
                return Err(pyo3::exceptions::PyValueError::new_err(
                    "TLS needs both a certificate and a key",
                ))
            }
        };
        let listener = py
            .detach(|| Listener::bind(&addr, tls.as_ref()))
            .map_err(|e| match e {
                pynto_transport::TransportError::Io(io) => PyErr::from(io),
                other => pyo3::exceptions::PyOSError::new_err(other.to_string()),
            })?;
        let address = listener.local_addr();
        Ok(Server {
            listener: Mutex::new(Some(Arc::new(listener))),
            address,
            stopping: Arc::new(AtomicBool::new(false)),
            loop_thread: Mutex::new(None),
        })
    }

    /// Where it listens: `tcp://host:port`, `unix:///path` or `tls://host:port`.
    #[getter]
    fn address(&self) -> String {
        self.address.clone()
    }

    /// Start accepting on a background thread; `on_accept(accepted)` runs on a new thread
    /// for each connection.
    fn start(&self, on_accept: Py<PyAny>) -> PyResult<()> {
        let mut slot = self.loop_thread.lock();
        if slot.is_some() {
            return Ok(());
        }
        let listener = self
            .listener
            .lock()
            .clone()
            .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("the server is closed"))?;
        let stopping = Arc::clone(&self.stopping);
        let on_accept = Arc::new(on_accept);
        let handle = std::thread::Builder::new()
            .name("pynto-accept".into())
            .spawn(move || accept_loop(&listener, &stopping, &on_accept))
            .map_err(PyErr::from)?;
        *slot = Some(handle);
        Ok(())
    }

    /// Stop accepting. Open connections are the caller's to close.
    fn close(&self, py: Python<'_>) {
        if self.stopping.swap(true, Ordering::AcqRel) {
            return;
        }
        // Wake the blocked accept with a connection of our own.
        let _ = wake(&self.address);
        if let Some(handle) = self.loop_thread.lock().take() {
            py.detach(|| {
                let _ = handle.join();
            });
        }
        // The last reference: the socket closes (and a Unix socket's file goes).
        self.listener.lock().take();
    }
}

fn wake(address: &str) -> std::io::Result<()> {
    match Address::parse(address) {
        Ok(Address::Tcp { host, port } | Address::Tls { host, port }) => {
            std::net::TcpStream::connect((host.as_str(), port)).map(drop)
        }
        Ok(Address::Unix(path)) => std::os::unix::net::UnixStream::connect(path).map(drop),
        Err(_) => Ok(()),
    }
}

fn accept_loop(listener: &Listener, stopping: &AtomicBool, on_accept: &Arc<Py<PyAny>>) {
    loop {
        let accepted = listener.accept_incoming();
        if stopping.load(Ordering::Acquire) {
            return;
        }
        let incoming = match accepted {
            Ok(t) => t,
            Err(e) => {
                log(&format!(
                    "pynto: a connection failed before its handshake: {e}"
                ));
                // A persistent failure (e.g. out of descriptors) must not spin.
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            }
        };
        let on_accept = Arc::clone(on_accept);
        let peer = incoming.peer();
        let at = std::time::Instant::now();
        // On the runtime's pool: an idle worker takes it without a thread being started.
        pynto_runtime::spawn(Box::new(move || {
            crate::interp::with_python(|py| {
                let accepted = Accepted {
                    incoming: Mutex::new(Some(incoming)),
                    peer,
                    at,
                };
                let result = Bound::new(py, accepted).and_then(|a| on_accept.call1(py, (a,)));
                if let Err(e) = result {
                    e.write_unraisable(py, None);
                }
            });
        }));
    }
}

fn log(message: &str) {
    crate::logging::log_detached(crate::logging::CONNECTION, crate::logging::WARNING, message);
}
