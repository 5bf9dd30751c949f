//! Errors coming in: runtime errors and the peer's failure reports as the exceptions of API.md
//! ("Errors"), and pynto's own exceptions. (A failure report going out, made from an exception
//! a service raised, is the serving side's: `host.rs`.)

use pynto_proto::{ErrorKind, Failure, Value};
use pynto_runtime::Error;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::helpers::{big_int, helpers, rebuild_standard, Helpers};

/// The helpers, or (when they are missing) the ImportError saying so, as the error to raise.
fn with_helpers(py: Python<'_>, f: impl FnOnce(&Helpers) -> PyErr) -> PyErr {
    match helpers(py) {
        Ok(h) => f(h),
        Err(e) => e,
    }
}

fn raise(py: Python<'_>, class: &Py<PyAny>, message: String) -> PyErr {
    match class.call1(py, (message,)) {
        Ok(exc) => PyErr::from_value(exc.into_bound(py)),
        Err(e) => e,
    }
}

/// `pynto.AccessDenied(message)`.
pub(crate) fn access_denied(py: Python<'_>, message: &str) -> PyErr {
    with_helpers(py, |h| raise(py, &h.access_denied, message.to_string()))
}

/// `pynto.ProtocolError(message)`.
pub(crate) fn protocol_error(py: Python<'_>, message: String) -> PyErr {
    with_helpers(py, |h| raise(py, &h.protocol_error, message))
}

/// `pynto.AuthenticationError(message)`: the peer refused this side's token.
pub(crate) fn authentication_error(py: Python<'_>, message: String) -> PyErr {
    with_helpers(py, |h| raise(py, &h.authentication_error, message))
}

/// The Python exception for a runtime error, as API.md "Errors" names them.
pub(crate) fn to_py(py: Python<'_>, error: Error, rebuild: bool) -> PyErr {
    with_helpers(py, |h| to_py_with(py, h, error, rebuild))
}

fn to_py_with(py: Python<'_>, h: &Helpers, error: Error, rebuild: bool) -> PyErr {
    match error {
        Error::Remote(failure) => remote(py, h, failure, rebuild),
        Error::ConnectionClosed(why) | Error::Transport { why, .. } => {
            raise(py, &h.connection_closed, why)
        }
        Error::Timeout => raise(py, &h.timeout, "the call timed out".to_string()),
        Error::Authentication(why) => raise(py, &h.authentication_error, why),
        Error::Protocol(why) | Error::VersionMismatch { reason: why, .. } => {
            raise(py, &h.protocol_error, why)
        }
        Error::Interrupted(_) => PyErr::fetch_or(py),
        Error::Overloaded(why) => raise(py, &h.protocol_error, why),
    }
}

trait FetchOr {
    fn fetch_or(py: Python<'_>) -> PyErr;
}

impl FetchOr for PyErr {
    /// The pending Python exception (e.g. KeyboardInterrupt from a signal handler).
    fn fetch_or(py: Python<'_>) -> PyErr {
        PyErr::take(py).unwrap_or_else(|| pyo3::exceptions::PyKeyboardInterrupt::new_err(()))
    }
}

fn remote(py: Python<'_>, h: &Helpers, failure: Failure, rebuild: bool) -> PyErr {
    let kind = match failure.kind {
        ErrorKind::Remote => "remote",
        ErrorKind::Unimplemented => "unimplemented",
        ErrorKind::NoSuchObject => "no_such_object",
        ErrorKind::AccessDenied => "access_denied",
        ErrorKind::Protocol => "protocol",
        ErrorKind::Cancelled => "cancelled",
        ErrorKind::Overloaded => "overloaded",
    };
    // Args travel only when all by value; rebuild them as plain Python values (all or none).
    let args: Option<Vec<Py<PyAny>>> = failure.args.iter().map(|v| plain_value(py, v)).collect();
    let args = match PyTuple::new(py, args.unwrap_or_default()) {
        Ok(args) => args,
        Err(e) => return e,
    };
    match h.remote_exception.call1(
        py,
        (
            kind,
            failure.type_name,
            failure.message,
            args,
            failure.traceback,
            rebuild,
        ),
    ) {
        Ok(exc) => PyErr::from_value(exc.into_bound(py)),
        Err(e) => e,
    }
}

/// A by-value protocol value as a Python object (exception args carry no references).
fn plain_value(py: Python<'_>, value: &Value) -> Option<Py<PyAny>> {
    use pyo3::IntoPyObjectExt;
    Some(match value {
        Value::None => py.None(),
        Value::Bool(b) => b.into_py_any(py).ok()?,
        Value::Int(i) => i.into_py_any(py).ok()?,
        Value::Float(f) => f.into_py_any(py).ok()?,
        Value::Str(s) => s.into_py_any(py).ok()?,
        Value::Bytes(b) => pyo3::types::PyBytes::new(py, b).into_any().unbind(),
        Value::Tuple(items) => {
            let items: Option<Vec<_>> = items.iter().map(|v| plain_value(py, v)).collect();
            PyTuple::new(py, items?).ok()?.into_any().unbind()
        }
        Value::FrozenSet(items) => {
            let items: Option<Vec<_>> = items.iter().map(|v| plain_value(py, v)).collect();
            pyo3::types::PyFrozenSet::new(py, items?)
                .ok()?
                .into_any()
                .unbind()
        }
        Value::Complex(re, im) => pyo3::types::PyComplex::from_doubles(py, *re, *im)
            .into_any()
            .unbind(),
        Value::BigInt(bytes) => big_int(py, bytes).ok()?.unbind(),
        Value::Ellipsis => py.Ellipsis(),
        Value::Standard(standard) => {
            let (name, items) = &**standard;
            let items: Option<Vec<_>> = items.iter().map(|v| plain_value(py, v)).collect();
            let items = PyTuple::new(py, items?).ok()?;
            rebuild_standard(py, name, items).ok()?.unbind()
        }
        _ => return None,
    })
}
