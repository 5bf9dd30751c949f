//! Serving in: how the runtime performs the peer's request on one of this process's Python
//! objects, with the owner's one access check in front of every attribute it touches, and the
//! failure report of an exception raised while serving.

use std::sync::Arc;

use pynto_proto::{Args, BinaryForm, BinaryOp, CompareOp, ErrorKind, Failure, Op, UnaryOp, Value};
use pynto_runtime::{Boxer, Host, Incoming, Session};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple, PyType};

use crate::boxing::{self, Mode};
use crate::helpers::{helpers, Helpers};
use crate::proxy::Proxy;
use crate::state::PyHost;
use crate::{errors, logging, ops};

impl Host for PyHost {
    /// Shared so the runtime can clone and drop handles on threads without the GIL; the
    /// Python reference itself is released through PyO3's deferred decref.
    type Object = Arc<Py<PyAny>>;

    fn identity(&self, object: &Arc<Py<PyAny>>) -> usize {
        object.as_ptr() as usize
    }

    fn perform(
        &self,
        session: &Session<Self>,
        target: &Arc<Py<PyAny>>,
        op: Op,
        incoming: &Incoming<Self>,
        boxer: &mut Boxer<'_, Self>,
    ) -> Result<Value, Failure> {
        crate::interp::with_python(|py| {
            let target = target.bind(py);
            let cx = boxing::Cx {
                py,
                session,
                state: &self.state,
                incoming,
            };
            let outcome = match op {
                Op::Next(n) => return next_batch(&cx, target, n, boxer),
                op => self.dispatch(&cx, target, op),
            };
            match outcome {
                Ok(result) => boxing::to_value(&self.state, &result, boxer, Mode::Result)
                    .map_err(|e| failure(py, &e)),
                Err(e) => Err(served(py, &e, self.state.policy.classic)),
            }
        })
        .unwrap_or_else(|| {
            Err(Failure::new(
                ErrorKind::Unimplemented,
                "pynto.ConnectionClosed",
                "the interpreter of this side is shutting down",
            ))
        })
    }

    fn on_close(&self, session: &Session<Self>) {
        crate::interp::with_python(|py| {
            // What the peer made us cache goes with the connection, even while something
            // still holds the connection object.
            let decisions = std::mem::take(&mut *self.state.resolved.lock());
            let classes = std::mem::take(&mut *self.state.classes.lock());
            drop((decisions, classes));
            logging::log_closed(py, session.peer_address(), session.close_reason());
            if let Some(conn) = self.state.connection(py) {
                let ran = helpers(py).and_then(|h| h.on_disconnect.call1(py, (conn,)));
                if let Err(e) = ran {
                    e.write_unraisable(py, None);
                }
            }
        });
    }
}

impl PyHost {
    fn dispatch<'py>(
        &self,
        cx: &boxing::Cx<'_, 'py>,
        target: &Bound<'py, PyAny>,
        op: Op,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = cx.py;
        let h = helpers(py)?;
        let arg = |v: &Value| boxing::from_value(cx, v);
        match op {
            Op::GetRoot => Ok(target.clone()),
            Op::Ping => Ok(py.None().into_bound(py)),
            Op::GetAttr(name) => {
                let real = self.resolve(py, target, &name)?;
                target.getattr(real)
            }
            Op::SetAttr(name, value) => {
                if !self.state.policy.classic {
                    h.check_setattr
                        .call1(py, (target, &name, &self.state.policy.object))?;
                }
                target.setattr(name.as_str(), arg(&value)?)?;
                if target.is_instance_of::<PyType>() {
                    crate::caches::class_changed();
                }
                Ok(py.None().into_bound(py))
            }
            Op::DelAttr(name) => {
                if !self.state.policy.classic {
                    h.check_delattr
                        .call1(py, (target, &name, &self.state.policy.object))?;
                }
                target.delattr(name.as_str())?;
                if target.is_instance_of::<PyType>() {
                    crate::caches::class_changed();
                }
                Ok(py.None().into_bound(py))
            }
            Op::Call(args) => {
                let (args, kwargs) = unbox_args(cx, args)?;
                target.call(args, kwargs.as_ref())
            }
            // `copy.copy(proxy)` / `copy.deepcopy(proxy)`: a data-model operation, allowed on
            // every exported object; the copy is made here and crosses as any result does.
            Op::CallMethod(name, args)
                if (name == "__copy__" || name == "__deepcopy__")
                    && args.positional.is_empty()
                    && args.keywords.is_empty() =>
            {
                let function = if name == "__copy__" {
                    &h.copy
                } else {
                    &h.deepcopy
                };
                function.bind(py).call1((target,))
            }
            Op::CallMethod(name, args) => {
                let real = self.resolve(py, target, &name)?;
                let method = target.getattr(real)?;
                let (args, kwargs) = unbox_args(cx, args)?;
                method.call(args, kwargs.as_ref())
            }
            Op::Repr => Ok(target.repr()?.into_any()),
            Op::Str => Ok(target.str()?.into_any()),
            Op::Format(spec) => h.format.bind(py).call1((target, spec)),
            Op::Hash => Ok(target.hash()?.into_pyobject(py)?.into_any()),
            Op::Dir => h
                .dir_for
                .bind(py)
                .call1((target, &self.state.policy.object)),
            Op::Bool => Ok(pyo3::types::PyBool::new(py, target.is_truthy()?)
                .to_owned()
                .into_any()),
            Op::Len => Ok(target.len()?.into_pyobject(py)?.into_any()),
            Op::Iter => Ok(target.try_iter()?.into_any()),
            Op::Next(_) => unreachable!("handled by the caller"),
            Op::GetItem(key) => target.get_item(arg(&key)?),
            Op::SetItem(key, value) => {
                target.set_item(arg(&key)?, arg(&value)?)?;
                Ok(py.None().into_bound(py))
            }
            Op::DelItem(key) => {
                target.del_item(arg(&key)?)?;
                Ok(py.None().into_bound(py))
            }
            Op::Contains(item) => Ok(pyo3::types::PyBool::new(py, target.contains(arg(&item)?)?)
                .to_owned()
                .into_any()),
            // An operand that is a proxy: the target's own special method, exactly; the caller's
            // interpreter does the reflected and fallback dance, so a NotImplemented goes back
            // as it is (doing it here too could bounce between two proxies forever). An operand
            // that arrived by value (or is this side's own object): the whole operator here,
            // reflected methods and fallbacks included, as the caller would have run it locally.
            Op::Compare(cmp, other) => {
                let other = arg(&other)?;
                if other.is_instance_of::<Proxy>() {
                    special(target, ops::compare_name(cmp), other)
                } else {
                    target.rich_compare(other, rich_op(cmp))
                }
            }
            Op::Binary(bin, form, other) => {
                let other = arg(&other)?;
                if other.is_instance_of::<Proxy>() {
                    special(target, &ops::binary_name(bin, form), other)
                } else {
                    whole_operator(h, target, bin, form, other)
                }
            }
            Op::Unary(u) => unary(h, target, u),
            Op::Enter => target.call_method0("__enter__"),
            Op::Exit(a, b, c) => {
                target.call_method1("__exit__", exit_args(arg(&a)?, arg(&b)?, arg(&c)?)?)
            }
            Op::IsInstance(module, qualname) => h
                .isinstance_by_name
                .bind(py)
                .call1((target, module, qualname)),
            Op::Pickle | Op::PickleBuffers => {
                if !(self.state.policy.classic || self.state.policy.allow_pickle) {
                    return Err(errors::access_denied(
                        py,
                        "pickling is not allowed by this side's policy (allow_pickle)",
                    ));
                }
                if op == Op::Pickle {
                    h.pickle_dumps.bind(py).call1((target,))
                } else {
                    // (pickle, *PickleBuffers): boxed by value, the buffers read in place.
                    h.dumps_buffers.bind(py).call1((target,))
                }
            }
            Op::Await => self.drive(py, target.clone()),
            Op::AIter => target.call_method0("__aiter__"),
            Op::ANext => self.drive(py, target.call_method0("__anext__")?),
            Op::AEnter => self.drive(py, target.call_method0("__aenter__")?),
            Op::AExit(a, b, c) => {
                let args = exit_args(arg(&a)?, arg(&b)?, arg(&c)?)?;
                let awaitable = target.call_method1("__aexit__", args)?;
                self.drive(py, awaitable)
            }
        }
    }

    /// Run `awaitable` to completion on the owner's event loop and return its result.
    fn drive<'py>(
        &self,
        py: Python<'py>,
        awaitable: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let conn = self.state.connection(py);
        helpers(py)?.drive.bind(py).call1((awaitable, conn))
    }

    /// The one access check for attributes: the real attribute name for `name`, or
    /// AccessDenied.
    ///
    /// Allowed decisions are cached per connection by (type, name), and only where that pair
    /// decides: never for a class (its own namespace and marks decide, and every class has the
    /// type `type`), and for an instance only while its own `__dict__` holds neither `name`
    /// nor `exposed_name`. Under a classic policy the decision depends on the type alone.
    fn resolve<'py>(
        &self,
        py: Python<'py>,
        target: &Bound<'py, PyAny>,
        name: &str,
    ) -> PyResult<Bound<'py, PyString>> {
        let ty = target.get_type();
        let classic = self.state.policy.classic;
        let cacheable = name.len() <= crate::caches::MAX_CACHED_NAME
            && (classic
                || (!target.is_instance_of::<PyType>() && !instance_overrides(target, name)));
        if cacheable {
            let cached = self.state.resolved.lock().get(&ty, name);
            if let Some(real) = cached {
                return Ok(real.into_bound(py));
            }
        }
        let real = if classic {
            // Full access, but a service's `exposed_x` still answers for `x`.
            let prefixed = format!("exposed_{name}");
            if !name.starts_with('_') && ty.hasattr(prefixed.as_str())? {
                PyString::new(py, &prefixed)
            } else {
                PyString::new(py, name)
            }
        } else {
            helpers(py)?
                .resolve_attr
                .bind(py)
                .call1((target, name, &self.state.policy.object))?
                .cast_into::<PyString>()?
        };
        // Checked again: the check above may have run code of the target's type (a
        // `__dict__` property) that changed it.
        if cacheable && (classic || !instance_overrides(target, name)) {
            self.state.resolved.lock().insert(&ty, name, &real);
        }
        Ok(real)
    }
}

/// True unless `target` certainly has no own attribute `name` or `exposed_name` that could
/// change the decision made for its type: its `__dict__` (read as `inspect.getattr_static`
/// reads it, with `object.__getattribute__`) holds one of them, or is something other than a
/// dict.
fn instance_overrides(target: &Bound<'_, PyAny>, name: &str) -> bool {
    let py = target.py();
    let key = pyo3::intern!(py, "__dict__");
    // SAFETY: both pointers are valid, owned references held for the call; the result is a
    // new reference or NULL with an exception set, which `from_owned_ptr_or_err` takes.
    let dict = unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            pyo3::ffi::PyObject_GenericGetAttr(target.as_ptr(), key.as_ptr()),
        )
    };
    let dict = match dict {
        Ok(dict) => dict,
        // No instance dict: the type decides.
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyAttributeError>(py) => return false,
        Err(_) => return true,
    };
    let Ok(dict) = dict.cast_into::<PyDict>() else {
        return true;
    };
    !matches!(dict.contains(name), Ok(false))
        || !matches!(dict.contains(format!("exposed_{name}")), Ok(false))
}

/// The arguments as Python objects; they are consumed, so large bytes are drained rather than
/// copied (see `boxing::from_owned_value`).
fn unbox_args<'py>(
    cx: &boxing::Cx<'_, 'py>,
    args: Args,
) -> PyResult<(Bound<'py, PyTuple>, Option<Bound<'py, PyDict>>)> {
    let positional = args
        .positional
        .into_iter()
        .map(|v| boxing::from_owned_value(cx, v))
        .collect::<PyResult<Vec<_>>>()?;
    let tuple = PyTuple::new(cx.py, positional)?;
    if args.keywords.is_empty() {
        return Ok((tuple, None));
    }
    let kwargs = PyDict::new(cx.py);
    for (k, v) in args.keywords {
        kwargs.set_item(k, boxing::from_owned_value(cx, v)?)?;
    }
    Ok((tuple, Some(kwargs)))
}

fn next_batch(
    cx: &boxing::Cx<'_, '_>,
    target: &Bound<'_, PyAny>,
    n: u32,
    boxer: &mut Boxer<'_, PyHost>,
) -> Result<Value, Failure> {
    let py = cx.py;
    let outcome = helpers(py).and_then(|h| h.next_batch.bind(py).call1((target, n.clamp(1, 4096))));
    let batch = match outcome {
        Ok(batch) => batch,
        Err(e) => return Err(failure(py, &e)),
    };
    let result: PyResult<Value> = (|| {
        let items = batch.get_item(0)?;
        let exhausted = batch.get_item(1)?.is_truthy()?;
        let mut values = Vec::new();
        for item in items.try_iter()? {
            values.push(boxing::to_value(cx.state, &item?, boxer, Mode::Result)?);
        }
        Ok(Value::Tuple(vec![
            Value::Tuple(values),
            Value::Bool(exhausted),
        ]))
    })();
    result.map_err(|e| failure(py, &e))
}

/// `type(target).name(target, other)`, or NotImplemented if the type has no such method.
fn special<'py>(
    target: &Bound<'py, PyAny>,
    name: &str,
    other: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = target.py();
    match target.get_type().getattr(name) {
        Ok(method) => method.call1((target, other)),
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyAttributeError>(py) => {
            Ok(py.NotImplemented().into_bound(py))
        }
        Err(e) => Err(e),
    }
}

/// The arguments of `__exit__` / `__aexit__`: an exception that arrived as a real one goes
/// with its own type and traceback (the peer's type crossed as a reference).
type ExitArgs<'py> = (Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyAny>);

fn exit_args<'py>(
    a: Bound<'py, PyAny>,
    b: Bound<'py, PyAny>,
    c: Bound<'py, PyAny>,
) -> PyResult<ExitArgs<'py>> {
    if b.is_instance_of::<pyo3::exceptions::PyBaseException>() {
        let tb = b.getattr(pyo3::intern!(b.py(), "__traceback__"))?;
        Ok((b.get_type().into_any(), b, tb))
    } else {
        Ok((a, b, c))
    }
}

fn rich_op(op: CompareOp) -> pyo3::basic::CompareOp {
    use pyo3::basic::CompareOp as Rich;
    match op {
        CompareOp::Lt => Rich::Lt,
        CompareOp::Le => Rich::Le,
        CompareOp::Eq => Rich::Eq,
        CompareOp::Ne => Rich::Ne,
        CompareOp::Gt => Rich::Gt,
        CompareOp::Ge => Rich::Ge,
    }
}

/// `target OP other` (or `other OP target`, or `target OP= other`) with the interpreter's whole
/// dispatch: the operand is a local value here, so reflected methods cannot bounce.
fn whole_operator<'py>(
    h: &Helpers,
    target: &Bound<'py, PyAny>,
    op: BinaryOp,
    form: BinaryForm,
    other: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let (module, name) = ops::binary_function(op, form);
    let function = module_of(h, module).bind(target.py()).getattr(name)?;
    match form {
        BinaryForm::Reflected => function.call1((other, target)),
        _ => function.call1((target, other)),
    }
}

/// One of the modules `ops` names operator functions in.
fn module_of<'h>(h: &'h Helpers, module: &str) -> &'h Py<pyo3::types::PyModule> {
    match module {
        "operator" => &h.operator,
        "math" => &h.math,
        _ => &h.builtins,
    }
}

fn unary<'py>(h: &Helpers, target: &Bound<'py, PyAny>, op: UnaryOp) -> PyResult<Bound<'py, PyAny>> {
    let (_, module, name) = ops::unary(op);
    module_of(h, module)
        .bind(target.py())
        .getattr(name)?
        .call1((target,))
}

/// The failure report of an exception a service raised while serving a peer, which is also
/// logged (`pynto.service`) and, on a classic connection, kept as the interpreter's last
/// exception (`sys.last_exc`, `sys.last_traceback`...), for `pynto.classic.pm`.
pub(crate) fn served(py: Python<'_>, err: &PyErr, classic: bool) -> Failure {
    let control_flow = err.is_instance_of::<pyo3::exceptions::PyStopIteration>(py)
        || err.is_instance_of::<pyo3::exceptions::PyStopAsyncIteration>(py)
        || err.is_instance_of::<pyo3::exceptions::PyGeneratorExit>(py);
    if !control_flow {
        logging::service_exception(py, err);
        if classic {
            remember_last(py, err);
        }
    }
    failure(py, err)
}

/// Set `sys.last_exc`, `sys.last_type`, `sys.last_value` and `sys.last_traceback`, as the
/// interactive interpreter does for an exception nobody handled.
fn remember_last(py: Python<'_>, err: &PyErr) {
    let Ok(h) = helpers(py) else {
        return;
    };
    let sys = h.sys.bind(py);
    let value = err.value(py);
    let _ = sys.setattr("last_exc", value);
    let _ = sys.setattr("last_type", err.get_type(py));
    let _ = sys.setattr("last_value", value);
    let _ = sys.setattr("last_traceback", err.traceback(py));
}

/// The failure report of a Python exception raised while serving.
pub(crate) fn failure(py: Python<'_>, err: &PyErr) -> Failure {
    let described = helpers(py).and_then(|h| {
        h.describe_exception
            .call1(py, (err.value(py), err.traceback(py)))
    });
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
                .map(|v| boxing::plain_to_value(&v))
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
