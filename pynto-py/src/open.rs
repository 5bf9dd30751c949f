//! Opening connections: from an address (dialed within a timeout, interruptibly), a child's
//! pipes, this process's stdio, or an in-process pair; and the settings they share.

use std::fs::File;
use std::os::fd::{FromRawFd, RawFd};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use pynto_runtime::{Config, Role, Session};
use pynto_transport::{Address, TlsClient, Transport};
use pyo3::prelude::*;
use pyo3::types::{PyType, PyWeakrefReference};

use crate::connection::Connection;
use crate::logging::log_opened;
use crate::state::{ConnState, Policy, PyHost};
use crate::wait::{self, Interrupt};
use crate::{dial, errors, logging};

/// The settings every way of opening a connection shares, from Python keyword arguments.
pub(crate) struct Settings {
    pub root: Arc<Py<PyAny>>,
    pub policy: Policy,
    pub config: Config,
}

pub(crate) fn settings(
    py: Python<'_>,
    root: Py<PyAny>,
    policy: Py<PyAny>,
    token: Option<String>,
    timeout: Option<f64>,
    service_name: String,
    limits: Option<&Bound<'_, PyAny>>,
) -> PyResult<Settings> {
    let p = policy.bind(py);
    let flag = |name: &str| -> PyResult<bool> { p.getattr(name)?.is_truthy() };
    let policy = Policy {
        classic: flag("classic")?,
        allow_pickle: flag("allow_pickle")?,
        rebuild_exceptions: flag("rebuild_exceptions")?,
        object: policy.clone_ref(py),
    };
    let call_timeout = match timeout {
        Some(t) if t.is_finite() && t > 0.0 => Some(Duration::from_secs_f64(t)),
        Some(t) => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "timeout must be a positive number of seconds, not {t}"
            )))
        }
        None => None,
    };
    let mut config = Config {
        token,
        call_timeout,
        service_name,
        // The service's on_connect runs before the peer's first request (`_start_serving`).
        hold_requests: true,
        ..Config::default()
    };
    if let Some(limits) = limits {
        apply_limits(limits, &mut config)?;
    }
    Ok(Settings {
        root: Arc::new(root),
        policy,
        config,
    })
}

/// Copy a `pynto.Limits` (validated by its constructor) into `config`. `max_workers` is
/// process-wide: the runtime's bound on requests served at once, set here when given.
fn apply_limits(limits: &Bound<'_, PyAny>, config: &mut Config) -> PyResult<()> {
    let get = |name: &str| limits.getattr(name);
    let seconds = |name: &str| -> PyResult<Duration> {
        let s: f64 = get(name)?.extract()?;
        Duration::try_from_secs_f64(s).map_err(|_| {
            pyo3::exceptions::PyValueError::new_err(format!(
                "{name} must be a positive number of seconds, not {s}"
            ))
        })
    };
    let l = &mut config.limits;
    l.max_frame = get("max_frame")?.extract()?;
    l.max_message = get("max_message")?.extract()?;
    l.max_depth = get("max_depth")?.extract()?;
    l.max_objects = get("max_objects")?.extract()?;
    l.max_in_flight = get("max_in_flight")?.extract()?;
    config.handshake_timeout = seconds("handshake_timeout")?;
    // One window of silence in all: ping after a seventh of it (at most 5 s), give up after
    // the rest.
    let window = seconds("liveness_timeout")?;
    config.liveness_interval = (window / 7).min(Duration::from_secs(5));
    config.liveness_timeout = window - config.liveness_interval;
    config.write_timeout = match get("write_timeout")?.extract::<Option<f64>>()? {
        None => None,
        Some(_) => Some(seconds("write_timeout")?),
    };
    if let Some(workers) = get("max_workers")?.extract::<Option<usize>>()? {
        pynto_runtime::set_max_workers(workers);
    }
    Ok(())
}

/// A new `cls` (a `Connection` subclass) with its Python-side state and the root it will serve,
/// and the host the session will serve it through; the session is set once the handshake is
/// done.
fn prepare<'py>(
    py: Python<'py>,
    cls: &Bound<'py, PyType>,
    policy: Policy,
    root: &Arc<Py<PyAny>>,
) -> PyResult<(Bound<'py, Connection>, Arc<PyHost>, bool)> {
    let conn = cls.call0()?.cast_into::<Connection>()?;
    *conn.get().root.lock() = Some(Arc::clone(root));
    let state = ConnState::new(policy);
    let rebuild = state.policy.rebuild_exceptions;
    state
        .connection
        .set(PyWeakrefReference::new(&conn)?.unbind())
        .map_err(|_| errors::protocol_error(py, "connection state set twice".into()))?;
    let _ = conn.get().state.set(Arc::clone(&state));
    Ok((conn, Arc::new(PyHost { state }), rebuild))
}

/// Open a session over `transport` and wrap it in a new `cls` (a `Connection` subclass).
pub(crate) fn open<'py>(
    py: Python<'py>,
    cls: &Bound<'py, PyType>,
    transport: Box<dyn Transport>,
    role: Role,
    settings: Settings,
) -> PyResult<Bound<'py, Connection>> {
    let (conn, host, rebuild) = prepare(py, cls, settings.policy, &settings.root)?;
    let (root, config) = (settings.root, settings.config);
    let peer = transport.peer();
    let result = py.detach(|| Session::connect(transport, role, host, root, config));
    log_opened(py, role, &peer, result.as_ref().err());
    let session = result.map_err(|e| errors::to_py(py, e, rebuild))?;
    let _ = conn.get().session.set(session);
    Ok(conn)
}

fn transport_error(py: Python<'_>, e: pynto_transport::TransportError) -> PyErr {
    let _ = py;
    match e {
        pynto_transport::TransportError::Io(io) => PyErr::from(io),
        other => pyo3::exceptions::PyConnectionError::new_err(other.to_string()),
    }
}

/// Dial and greet on a pool thread while this thread waits, checking for signals (Ctrl-C)
/// and the deadline.
#[allow(clippy::too_many_arguments)]
fn wait_for_dial(
    py: Python<'_>,
    addr: &Address,
    tls: Option<TlsClient>,
    deadline: Option<Instant>,
    limit: Option<Duration>,
    host: Arc<PyHost>,
    root: Arc<Py<PyAny>>,
    config: Config,
) -> PyResult<dial::Outcome> {
    let (tx, rx) = mpsc::sync_channel(1);
    let dial_addr = addr.clone();
    pynto_runtime::spawn(Box::new(move || {
        let outcome = dial::dial_and_greet(&dial_addr, tls.as_ref(), deadline, host, root, config);
        if let Err(mpsc::TrySendError::Disconnected(dial::Outcome {
            result: Ok(session),
            ..
        })) = tx.try_send(outcome)
        {
            // The caller gave up (Ctrl-C or its deadline): nobody will use this one.
            session.close();
        }
    }));
    // A mutex so the receiver can be used with the GIL released (it is not `Sync`).
    let rx = Mutex::new(rx);
    let mut received = None;
    // The dial and the handshake keep their own deadlines; this is the backstop for waits they
    // cannot bound (a TLS handshake, a name lookup).
    let backstop = deadline.map(|d| d + Duration::from_millis(500));
    wait::until(py, backstop, |until| {
        match rx
            .lock()
            .recv_timeout(until.saturating_duration_since(Instant::now()))
        {
            Ok(outcome) => received = Some(Some(outcome)),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => received = Some(None),
        }
        received.is_some()
    })?;
    match received {
        Some(Some(outcome)) => Ok(outcome),
        Some(None) => Err(errors::protocol_error(
            py,
            format!("cannot connect to {addr}: the connecting thread failed"),
        )),
        None => Err(pyo3::exceptions::PyTimeoutError::new_err(format!(
            "cannot connect to {addr}: no connection within {} s",
            limit.unwrap_or_default().as_secs_f64()
        ))),
    }
}

/// `pynto.connect(address, ...)`: dial and open. `timeout` bounds the dial and the handshake
/// together (and is the connection's call timeout afterwards). Every wait is interruptible
/// (Ctrl-C).
#[pyfunction]
#[pyo3(signature = (cls, address, root, policy, token=None, timeout=None, service_name=String::new(), tls_ca=None, tls_cert=None, tls_key=None, limits=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn connect_address<'py>(
    py: Python<'py>,
    cls: &Bound<'py, PyType>,
    address: &str,
    root: Py<PyAny>,
    policy: Py<PyAny>,
    token: Option<String>,
    timeout: Option<f64>,
    service_name: String,
    tls_ca: Option<std::path::PathBuf>,
    tls_cert: Option<std::path::PathBuf>,
    tls_key: Option<std::path::PathBuf>,
    limits: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, Connection>> {
    let settings = settings(
        py,
        root,
        policy,
        token,
        timeout,
        service_name,
        limits.as_ref(),
    )?;
    let addr = Address::parse(address)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    let tls = tls_ca.map(|ca| TlsClient {
        ca,
        cert: tls_cert,
        key: tls_key,
    });
    let limit = settings.config.call_timeout;
    let deadline = limit.map(|t| Instant::now() + t);
    let (conn, host, rebuild) = prepare(py, cls, settings.policy, &settings.root)?;
    let (root, config) = (settings.root, settings.config);
    // A TCP server that answers at once is dialed and greeted here, without a thread hop; the
    // handshake's wait checks for Ctrl-C. Anything slower goes to a pool thread.
    let interrupt = Arc::new(Interrupt::default());
    let quick = match &addr {
        Address::Tcp { host: name, port } => {
            let check = Arc::clone(&interrupt);
            let stop: dial::StopCheck = Box::new(move || check.stop());
            py.detach(|| {
                dial::quick_dial_and_greet(name, *port, deadline, &host, &root, &config, stop)
            })
        }
        _ => None,
    };
    if let Some(e) = interrupt.take() {
        return Err(e);
    }
    let outcome = match quick {
        Some(outcome) => outcome,
        None => wait_for_dial(py, &addr, tls, deadline, limit, host, root, config)?,
    };
    let session = match outcome.result {
        Ok(session) => session,
        Err(dial::Failed::Transport(e)) => {
            let message = format!("cannot connect to {addr}: {e}");
            logging::log(py, logging::CONNECTION, logging::DEBUG, &message);
            return Err(dial::transport_error(py, &addr, e, limit));
        }
        Err(dial::Failed::Session(e)) => {
            log_opened(py, Role::Connector, &addr.to_string(), Some(&e));
            if deadline.is_some_and(|d| Instant::now() >= d) {
                // The handshake was cut short by `timeout`.
                return Err(pyo3::exceptions::PyTimeoutError::new_err(format!(
                    "cannot connect to {addr}: {e}"
                )));
            }
            return Err(dial::handshake_error(
                py,
                &addr,
                e,
                outcome.first_bytes.as_deref(),
                rebuild,
            ));
        }
    };
    log_opened(py, Role::Connector, session.peer_address(), None);
    let _ = conn.get().session.set(session);
    Ok(conn)
}

/// Open a connection over two pipe file descriptors (a child's stdout and stdin), which this
/// call takes ownership of.
#[pyfunction]
#[pyo3(signature = (cls, read_fd, write_fd, root, policy, token=None, timeout=None, service_name=String::new(), limits=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn connect_pipes<'py>(
    py: Python<'py>,
    cls: &Bound<'py, PyType>,
    read_fd: RawFd,
    write_fd: RawFd,
    root: Py<PyAny>,
    policy: Py<PyAny>,
    token: Option<String>,
    timeout: Option<f64>,
    service_name: String,
    limits: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, Connection>> {
    let settings = settings(
        py,
        root,
        policy,
        token,
        timeout,
        service_name,
        limits.as_ref(),
    )?;
    // SAFETY: the caller hands over two open descriptors it no longer uses.
    let (input, output) = unsafe { (File::from_raw_fd(read_fd), File::from_raw_fd(write_fd)) };
    let transport =
        pynto_transport::stdio::StdioTransport::from_files(input, output, "pipe://child".into());
    open(py, cls, Box::new(transport), Role::Connector, settings)
}

/// Serve one connection over this process's stdin/stdout until it ends. Stray writes to
/// stdout go to stderr meanwhile.
#[pyfunction]
#[pyo3(signature = (cls, root, policy, token=None, service_name=String::new(), on_open=None, limits=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn serve_stdio(
    py: Python<'_>,
    cls: &Bound<'_, PyType>,
    root: Py<PyAny>,
    policy: Py<PyAny>,
    token: Option<String>,
    service_name: String,
    on_open: Option<Py<PyAny>>,
    limits: Option<Bound<'_, PyAny>>,
) -> PyResult<()> {
    let settings = settings(py, root, policy, token, None, service_name, limits.as_ref())?;
    let transport =
        pynto_transport::stdio::StdioTransport::take_over().map_err(|e| transport_error(py, e))?;
    let conn = open(py, cls, Box::new(transport), Role::Acceptor, settings)?;
    if let Some(on_open) = on_open {
        on_open.call1(py, (&conn,))?;
    }
    let session = conn.get().session_ref(py)?.clone();
    wait::until(py, None, |until| {
        std::thread::sleep(until.saturating_duration_since(Instant::now()));
        session.is_closed()
    })?;
    Ok(())
}

/// Two connected connections in this process (for `connect_thread`): (client, server).
#[pyfunction]
#[pyo3(signature = (cls, client_root, client_policy, server_root, server_policy, service_name=String::new(), limits=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn connect_thread_pair<'py>(
    py: Python<'py>,
    cls: &Bound<'py, PyType>,
    client_root: Py<PyAny>,
    client_policy: Py<PyAny>,
    server_root: Py<PyAny>,
    server_policy: Py<PyAny>,
    service_name: String,
    limits: Option<Bound<'py, PyAny>>,
) -> PyResult<(Bound<'py, Connection>, Bound<'py, Connection>)> {
    let (a, b) = pynto_transport::memory::pair();
    let limits = limits.as_ref();
    let server_settings = settings(
        py,
        server_root,
        server_policy,
        None,
        None,
        service_name,
        limits,
    )?;
    let client_settings = settings(
        py,
        client_root,
        client_policy,
        None,
        None,
        String::new(),
        limits,
    )?;
    // The acceptor's handshake waits for the connector's Hello, so it runs on its own thread.
    let (server_conn, host, _) = prepare(py, cls, server_settings.policy, &server_settings.root)?;
    let (root, config) = (server_settings.root, server_settings.config);
    let acceptor = std::thread::spawn(move || {
        Session::connect(Box::new(b), Role::Acceptor, host, root, config)
    });
    let client = open(py, cls, Box::new(a), Role::Connector, client_settings)?;
    let server_session = py
        .detach(|| acceptor.join())
        .map_err(|_| errors::protocol_error(py, "the in-process server failed to start".into()))?
        .map_err(|e| errors::to_py(py, e, false))?;
    let _ = server_conn.get().session.set(server_session);
    Ok((client, server_conn))
}
