//! Log records from the Rust side, through Python's `logging`, so an operator configures
//! pynto's logs like any other library's.
//!
//! Loggers: `pynto.connection` (connections opened, closed with the reason, refused
//! handshakes, protocol errors), `pynto.service` (exceptions raised by a service while it
//! served a peer, at the level set with `_set_service_exception_level`, DEBUG unless an
//! operator chose another: the peer receives each of them anyway) and `pynto` (everything
//! else, e.g. the accept loop).

use std::sync::atomic::{AtomicI32, Ordering};

use pynto_runtime::{Error, Role};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::helpers::helpers;

/// `logging.DEBUG`.
pub(crate) const DEBUG: i32 = 10;
/// `logging.INFO`.
pub(crate) const INFO: i32 = 20;
/// `logging.WARNING`.
pub(crate) const WARNING: i32 = 30;

/// The logger of connection life cycles.
pub(crate) const CONNECTION: &str = "pynto.connection";
/// The logger of exceptions raised by services while serving.
pub(crate) const SERVICE: &str = "pynto.service";

/// The level exceptions in services are logged at.
static SERVICE_EXCEPTION_LEVEL: AtomicI32 = AtomicI32::new(DEBUG);

fn get_logger<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    helpers(py)?.get_logger.bind(py).call1((name,))
}

/// True if `logger` would emit a record at `level` (so the message is worth formatting).
pub(crate) fn enabled(py: Python<'_>, logger: &str, level: i32) -> bool {
    get_logger(py, logger)
        .and_then(|l| l.call_method1("isEnabledFor", (level,)))
        .and_then(|r| r.is_truthy())
        .unwrap_or(false)
}

/// Log `message` on `logger` at `level`. Logging never fails the caller: a broken handler is
/// `logging`'s own business (it reports through `logging.raiseExceptions`).
pub(crate) fn log(py: Python<'_>, logger: &str, level: i32, message: &str) {
    if let Ok(l) = get_logger(py, logger) {
        let _ = l.call_method1("log", (level, message));
    }
}

/// Log from a thread that does not hold the GIL (skipped once the interpreter is exiting).
pub(crate) fn log_detached(logger: &str, level: i32, message: &str) {
    crate::interp::with_python(|py| log(py, logger, level, message));
}

/// Log an exception a service raised while serving a peer, with its traceback.
pub(crate) fn service_exception(py: Python<'_>, err: &PyErr) {
    let level = SERVICE_EXCEPTION_LEVEL.load(Ordering::Relaxed);
    if !enabled(py, SERVICE, level) {
        return;
    }
    let Ok(logger) = get_logger(py, SERVICE) else {
        return;
    };
    let kwargs = PyDict::new(py);
    let exc_info = (err.get_type(py), err.value(py), err.traceback(py));
    if kwargs.set_item("exc_info", exc_info).is_ok() {
        let message = format!(
            "a service raised {}",
            err.get_type(py)
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        );
        let _ = logger.call_method("log", (level, message), Some(&kwargs));
    }
}

/// Set the level exceptions raised in services are logged at, on the `pynto.service` logger
/// (a `logging` level number; the default is DEBUG).
#[pyfunction]
pub(crate) fn _set_service_exception_level(level: i32) {
    SERVICE_EXCEPTION_LEVEL.store(level, Ordering::Relaxed);
}

/// The level a connection's end is worth: a broken protocol is a warning, an ordinary end is
/// information.
pub(crate) fn close_level(reason: &Error) -> i32 {
    match reason {
        Error::Protocol(_) | Error::Overloaded(_) => WARNING,
        _ => INFO,
    }
}

/// Log a new connection, or a failed handshake, on `pynto.connection`.
pub(crate) fn log_opened(py: Python<'_>, role: Role, peer: &str, failure: Option<&Error>) {
    let (level, message) = match (failure, role) {
        (None, Role::Connector) => (INFO, format!("connected to {peer}")),
        (None, Role::Acceptor) => (INFO, format!("accepted a connection from {peer}")),
        (Some(e), Role::Acceptor) => (WARNING, format!("refused a connection from {peer}: {e}")),
        (Some(e), Role::Connector) => (DEBUG, format!("the handshake with {peer} failed: {e}")),
    };
    log(py, CONNECTION, level, &message);
}

/// Log a connection's end with the reason (called once the session has closed).
pub(crate) fn log_closed(py: Python<'_>, peer: &str, reason: Option<Error>) {
    if let Some(reason) = reason {
        let level = close_level(&reason);
        if enabled(py, CONNECTION, level) {
            let message = format!("connection with {peer} closed: {reason}");
            log(py, CONNECTION, level, &message);
        }
    }
}
