//! Errors across the boundary: Python exceptions to protocol failures and back, and runtime
//! errors to the exceptions of API.md ("Errors").

use pynto_proto::{ErrorKind, Failure, Value};
use pynto_runtime::Error;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyTuple;

/// The exception classes and helpers of `pynto._errors`.
struct ErrorHelpers {
    connection_closed: Py<PyAny>,
    timeout: Py<PyAny>,
    access_denied: Py<PyAny>,
    protocol_error: Py<PyAny>,
    authentication_error: Py<PyAny>,
    remote_exception: Py<PyAny>,
    describe_exception: Py<PyAny>,
}

fn helpers(py: Python<'_>) -> &'static ErrorHelpers {
    static HELPERS: PyOnceLock<ErrorHelpers> = PyOnceLock::new();
    HELPERS.get_or_init(py, || {
        let m = py.import("pynto._errors").expect("pynto._errors imports");
        let get = |name: &str| {
            m.getattr(name)
                .unwrap_or_else(|e| panic!("pynto._errors.{name}: {e}"))
                .unbind()
        };
        ErrorHelpers {
            connection_closed: get("ConnectionClosed"),
            timeout: get("Timeout"),
            access_denied: get("AccessDenied"),
            protocol_error: get("ProtocolError"),
            authentication_error: get("AuthenticationError"),
            remote_exception: get("remote_exception"),
            describe_exception: get("describe_exception"),
        }
    })
}

fn raise(py: Python<'_>, class: &Py<PyAny>, message: String) -> PyErr {
    match class.call1(py, (message,)) {
        Ok(exc) => PyErr::from_value(exc.into_bound(py)),
        Err(e) => e,
    }
}

/// `pynto.AccessDenied(message)`.
pub(crate) fn access_denied(py: Python<'_>, message: &str) -> PyErr {
    raise(py, &helpers(py).access_denied, message.to_string())
}

/// `pynto.ProtocolError(message)`.
pub(crate) fn protocol_error(py: Python<'_>, message: String) -> PyErr {
    raise(py, &helpers(py).protocol_error, message)
}

/// `pynto.AuthenticationError(message)`: the peer refused this side's token.
pub(crate) fn authentication_error(py: Python<'_>, message: String) -> PyErr {
    raise(py, &helpers(py).authentication_error, message)
}

/// The Python exception for a runtime error, as API.md "Errors" names them.
pub(crate) fn to_py(py: Python<'_>, error: Error, rebuild: bool) -> PyErr {
    let h = helpers(py);
    match error {
        Error::Remote(failure) => remote(py, failure, rebuild),
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

fn remote(py: Python<'_>, failure: Failure, rebuild: bool) -> PyErr {
    let h = helpers(py);
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
    let args = PyTuple::new(py, args.unwrap_or_default()).expect("tuple");
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
        Value::BigInt(bytes) => crate::boxing::big_int(py, bytes).ok()?.unbind(),
        Value::Ellipsis => py.Ellipsis(),
        Value::Standard(standard) => {
            let (name, items) = &**standard;
            let items: Option<Vec<_>> = items.iter().map(|v| plain_value(py, v)).collect();
            let items = PyTuple::new(py, items?).ok()?;
            crate::boxing::rebuild_standard(py, name, items)
                .ok()?
                .unbind()
        }
        _ => return None,
    })
}

/// The failure report of an exception a service raised while serving a peer, which is also
/// logged (`pynto.service`) and, on a classic connection, kept as the interpreter's last
/// exception (`sys.last_exc`, `sys.last_traceback`...), for `pynto.classic.pm`.
pub(crate) fn served(py: Python<'_>, err: &PyErr, classic: bool) -> Failure {
    let control_flow = err.is_instance_of::<pyo3::exceptions::PyStopIteration>(py)
        || err.is_instance_of::<pyo3::exceptions::PyStopAsyncIteration>(py)
        || err.is_instance_of::<pyo3::exceptions::PyGeneratorExit>(py);
    if !control_flow {
        crate::logging::service_exception(py, err);
        if classic {
            remember_last(py, err);
        }
    }
    failure(py, err)
}

/// Set `sys.last_exc`, `sys.last_type`, `sys.last_value` and `sys.last_traceback`, as the
/// interactive interpreter does for an exception nobody handled.
fn remember_last(py: Python<'_>, err: &PyErr) {
    let Ok(sys) = py.import("sys") else {
        return;
    };
    let value = err.value(py);
    let _ = sys.setattr("last_exc", value);
    let _ = sys.setattr("last_type", err.get_type(py));
    let _ = sys.setattr("last_value", value);
    let _ = sys.setattr("last_traceback", err.traceback(py));
}

/// The failure report of a Python exception raised while serving.
pub(crate) fn failure(py: Python<'_>, err: &PyErr) -> Failure {
    let h = helpers(py);
    let described = h
        .describe_exception
        .call1(py, (err.value(py), err.traceback(py)));
    let Ok(described) = described else {
        return Failure::new(ErrorKind::Remote, "builtins.Exception", err.to_string());
    };
    let described = described.bind(py);
    let field = |i: usize| described.get_item(i).ok();
    let kind = match field(0).and_then(|k| k.extract::<String>().ok()).as_deref() {
        Some("access_denied") => ErrorKind::AccessDenied,
        Some("unimplemented") => ErrorKind::Unimplemented,
        _ => ErrorKind::Remote,
    };
    let text = |i: usize| {
        field(i)
            .and_then(|v| v.extract::<String>().ok())
            .unwrap_or_default()
    };
    // All the args by value, or none (a partial list would shift their positions).
    let args = field(3)
        .and_then(|a| a.cast_into::<PyTuple>().ok())
        .and_then(|t| {
            t.iter()
                .map(|v| crate::boxing::plain_to_value(&v))
                .collect::<Option<Vec<_>>>()
        })
        .unwrap_or_default();
    Failure {
        kind,
        type_name: text(1),
        message: text(2),
        args,
        traceback: text(4),
    }
}
