//! Every Python object the Rust side calls by name, declared once: one table of (module,
//! name), resolved together on first use. A name that has moved is a clear `ImportError`
//! naming it (never a panic), and `pynto._pynto._check_helpers()` lists the missing ones for the
//! test suite.

use pyo3::exceptions::PyImportError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyInt, PyTuple};

/// The table: `field: Type = ("module", "name")`; an empty name is the module itself.
macro_rules! helper_table {
    ($( $(#[doc = $doc:literal])* $field:ident : $ty:ty = ($module:literal, $name:literal), )*) => {
        /// The Python helpers, resolved.
        pub(crate) struct Helpers {
            $( $(#[doc = $doc])* pub $field: Py<$ty>, )*
        }

        /// (module, name) of every helper, in table order.
        const TABLE: &[(&str, &str)] = &[ $( ($module, $name), )* ];

        fn resolve(py: Python<'_>) -> Result<Helpers, Vec<String>> {
            let mut missing = Vec::new();
            $(
                let $field = lookup(py, $module, $name)
                    .and_then(|obj| Ok(obj.cast_into::<$ty>()?.unbind()))
                    .map_err(|e| missing.push(format!("{}: {e}", dotted($module, $name))))
                    .ok();
            )*
            match ($($field,)*) {
                ($(Some($field),)*) => Ok(Helpers { $($field,)* }),
                _ => Err(missing),
            }
        }
    };
}

helper_table! {
    // The owner's access checks (`pynto._service`).
    resolve_attr: PyAny = ("pynto._service", "resolve_attr"),
    check_setattr: PyAny = ("pynto._service", "check_setattr"),
    check_delattr: PyAny = ("pynto._service", "check_delattr"),
    // Serving: type descriptions, `dir`, batched `next`, awaitables (`pynto._host`).
    describe: PyAny = ("pynto._host", "describe"),
    dir_for: PyAny = ("pynto._host", "dir_for"),
    next_batch: PyAny = ("pynto._host", "next_batch"),
    isinstance_by_name: PyAny = ("pynto._host", "isinstance_by_name"),
    on_disconnect: PyAny = ("pynto._host", "on_disconnect"),
    drive: PyAny = ("pynto._host", "drive"),
    local_coroutine: PyAny = ("pynto._host", "local_coroutine"),
    // Proxy classes (`pynto._proxy`).
    make_class: PyAny = ("pynto._proxy", "make_class"),
    // Values that cross by value (`pynto._values`).
    standard_types: PyDict = ("pynto._values", "STANDARD"),
    reduce: PyAny = ("pynto._values", "reduce"),
    operand_types: PyDict = ("pynto._values", "OPERANDS"),
    reduce_operand: PyAny = ("pynto._values", "reduce_operand"),
    rebuild: PyAny = ("pynto._values", "rebuild"),
    // Exceptions (`pynto._errors`).
    connection_closed: PyAny = ("pynto._errors", "ConnectionClosed"),
    timeout: PyAny = ("pynto._errors", "Timeout"),
    access_denied: PyAny = ("pynto._errors", "AccessDenied"),
    protocol_error: PyAny = ("pynto._errors", "ProtocolError"),
    authentication_error: PyAny = ("pynto._errors", "AuthenticationError"),
    remote_exception: PyAny = ("pynto._errors", "remote_exception"),
    describe_exception: PyAny = ("pynto._errors", "describe_exception"),
    // The standard library.
    operator: PyModule = ("operator", ""),
    builtins: PyModule = ("builtins", ""),
    math: PyModule = ("math", ""),
    sys: PyModule = ("sys", ""),
    slice: PyAny = ("builtins", "slice"),
    format: PyAny = ("builtins", "format"),
    copy: PyAny = ("copy", "copy"),
    deepcopy: PyAny = ("copy", "deepcopy"),
    pickle_dumps: PyAny = ("pickle", "dumps"),
    pickle_buffer: PyAny = ("pickle", "PickleBuffer"),
    dumps_buffers: PyAny = ("pynto._obtain", "dumps_buffers"),
    memoryview: PyAny = ("builtins", "memoryview"),
    get_logger: PyAny = ("logging", "getLogger"),
    get_running_loop: PyAny = ("asyncio", "_get_running_loop"),
}

fn dotted(module: &str, name: &str) -> String {
    if name.is_empty() {
        module.to_owned()
    } else {
        format!("{module}.{name}")
    }
}

fn lookup<'py>(py: Python<'py>, module: &str, name: &str) -> PyResult<Bound<'py, PyAny>> {
    let m = py.import(module)?;
    if name.is_empty() {
        Ok(m.into_any())
    } else {
        m.getattr(name)
    }
}

/// The helpers, resolved on first use; an `ImportError` naming every missing one otherwise.
pub(crate) fn helpers(py: Python<'_>) -> PyResult<&'static Helpers> {
    static HELPERS: PyOnceLock<Helpers> = PyOnceLock::new();
    HELPERS.get_or_try_init(py, || {
        resolve(py).map_err(|missing| {
            PyImportError::new_err(format!(
                "pynto's compiled module cannot find the Python helpers it calls (is the pynto \
                 package whole?): {}",
                missing.join("; ")
            ))
        })
    })
}

/// The helpers every table entry and every operator function names that cannot be found
/// (empty when all is well). For the test suite.
#[pyfunction]
pub(crate) fn _check_helpers(py: Python<'_>) -> Vec<String> {
    let mut missing: Vec<String> = TABLE
        .iter()
        .filter(|(module, name)| lookup(py, module, name).is_err())
        .map(|(module, name)| dotted(module, name))
        .collect();
    for (module, name) in crate::ops::functions() {
        if lookup(py, module, &name).is_err() {
            missing.push(dotted(module, &name));
        }
    }
    missing
}

/// `int.from_bytes(bytes, "little", signed=True)`: the int of a `Value::BigInt`.
pub(crate) fn big_int<'py>(py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let kwargs = PyDict::new(py);
    kwargs.set_item("signed", true)?;
    py.get_type::<PyInt>().call_method(
        "from_bytes",
        (PyBytes::new(py, bytes), "little"),
        Some(&kwargs),
    )
}

/// The local object of a `Value::Standard` (only names on `pynto._values`' allow-list).
pub(crate) fn rebuild_standard<'py>(
    py: Python<'py>,
    name: &str,
    args: Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyAny>> {
    helpers(py)?.rebuild.bind(py).call1((name, args))
}
