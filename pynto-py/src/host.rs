//! The Python host: how the runtime performs an operation on one of this process's Python
//! objects, with the owner's one access check in front of every attribute it touches.

use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use pynto_proto::{
    Args, BinaryForm, BinaryOp, CompareOp, ErrorKind, Failure, Oid, Op, UnaryOp, Value,
};
use pynto_runtime::{Boxer, Host, Incoming, Session};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyTuple, PyType, PyWeakrefReference};
use std::collections::HashMap;

use crate::boxing::{self, Mode};
use crate::caches::{Decisions, ProxyClasses, TypeKeys};
use crate::errors;

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
    pub guard_loop: std::sync::atomic::AtomicBool,
    /// The Python `Connection` object, weakly (it owns the session, which owns this).
    pub connection: OnceLock<Py<PyWeakrefReference>>,
}

impl ConnState {
    pub(crate) fn new(policy: Policy) -> Arc<ConnState> {
        Arc::new(ConnState {
            policy,
            proxies: Mutex::new(HashMap::new()),
            classes: Mutex::new(ProxyClasses::default()),
            resolved: Mutex::new(Decisions::default()),
            type_keys: Mutex::new(TypeKeys::default()),
            guard_loop: std::sync::atomic::AtomicBool::new(false),
            connection: OnceLock::new(),
        })
    }
}

/// The host of one connection's Python objects.
pub(crate) struct PyHost {
    pub state: Arc<ConnState>,
}

/// The Python helpers the host calls, looked up once.
pub(crate) struct Helpers {
    pub resolve_attr: Py<PyAny>,
    pub check_setattr: Py<PyAny>,
    pub check_delattr: Py<PyAny>,
    pub describe: Py<PyAny>,
    pub dir_for: Py<PyAny>,
    pub next_batch: Py<PyAny>,
    pub isinstance_by_name: Py<PyAny>,
    pub operator: Py<PyAny>,
    pub builtins: Py<PyAny>,
    pub math: Py<PyAny>,
    pub pickle_dumps: Py<PyAny>,
    pub on_disconnect: Py<PyAny>,
    pub drive: Py<PyAny>,
    pub local_coroutine: Py<PyAny>,
}

pub(crate) fn helpers(py: Python<'_>) -> &'static Helpers {
    static HELPERS: PyOnceLock<Helpers> = PyOnceLock::new();
    HELPERS.get_or_init(py, || {
        let get = |module: &str, name: &str| -> Py<PyAny> {
            py.import(module)
                .and_then(|m| m.getattr(name))
                .unwrap_or_else(|e| panic!("pynto: cannot load {module}.{name}: {e}"))
                .unbind()
        };
        let module = |name: &str| -> Py<PyAny> {
            py.import(name)
                .map(|m| m.into_any().unbind())
                .unwrap_or_else(|e| panic!("pynto: cannot import {name}: {e}"))
        };
        Helpers {
            resolve_attr: get("pynto._service", "resolve_attr"),
            check_setattr: get("pynto._service", "check_setattr"),
            check_delattr: get("pynto._service", "check_delattr"),
            describe: get("pynto._host", "describe"),
            dir_for: get("pynto._host", "dir_for"),
            next_batch: get("pynto._host", "next_batch"),
            isinstance_by_name: get("pynto._host", "isinstance_by_name"),
            operator: module("operator"),
            builtins: module("builtins"),
            math: module("math"),
            pickle_dumps: get("pickle", "dumps"),
            on_disconnect: get("pynto._host", "on_disconnect"),
            drive: get("pynto._host", "drive"),
            local_coroutine: get("pynto._host", "local_coroutine"),
        }
    })
}

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
                    .map_err(|e| errors::failure(py, &e)),
                Err(e) => Err(errors::served(py, &e, self.state.policy.classic)),
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
            crate::connection::log_closed(py, session);
            if let Some(conn) = self
                .state
                .connection
                .get()
                .and_then(|w| w.bind(py).upgrade())
            {
                if let Err(e) = helpers(py).on_disconnect.call1(py, (conn,)) {
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
        let h = helpers(py);
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
                    "copy"
                } else {
                    "deepcopy"
                };
                py.import("copy")?.getattr(function)?.call1((target,))
            }
            Op::CallMethod(name, args) => {
                let real = self.resolve(py, target, &name)?;
                let method = target.getattr(real)?;
                let (args, kwargs) = unbox_args(cx, args)?;
                method.call(args, kwargs.as_ref())
            }
            Op::Repr => Ok(target.repr()?.into_any()),
            Op::Str => Ok(target.str()?.into_any()),
            Op::Format(spec) => h.builtins.bind(py).getattr("format")?.call1((target, spec)),
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
                if other.is_instance_of::<crate::proxy::Proxy>() {
                    special(target, compare_name(cmp), other)
                } else {
                    target.rich_compare(other, rich_op(cmp))
                }
            }
            Op::Binary(bin, form, other) => {
                let other = arg(&other)?;
                if other.is_instance_of::<crate::proxy::Proxy>() {
                    special(target, &binary_name(bin, form), other)
                } else {
                    whole_operator(h, target, bin, form, other)
                }
            }
            Op::Unary(u) => unary(py, h, target, u),
            Op::Enter => target.call_method0("__enter__"),
            Op::Exit(a, b, c) => {
                target.call_method1("__exit__", exit_args(arg(&a)?, arg(&b)?, arg(&c)?)?)
            }
            Op::IsInstance(module, qualname) => h
                .isinstance_by_name
                .bind(py)
                .call1((target, module, qualname)),
            Op::Pickle => {
                if !(self.state.policy.classic || self.state.policy.allow_pickle) {
                    return Err(errors::access_denied(
                        py,
                        "pickling is not allowed by this side's policy (allow_pickle)",
                    ));
                }
                h.pickle_dumps.bind(py).call1((target,))
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
        let conn = self
            .state
            .connection
            .get()
            .and_then(|w| w.bind(py).upgrade());
        helpers(py).drive.bind(py).call1((awaitable, conn))
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
            helpers(py)
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
    let outcome = helpers(py)
        .next_batch
        .bind(py)
        .call1((target, n.clamp(1, 4096)));
    let batch = match outcome {
        Ok(batch) => batch,
        Err(e) => return Err(errors::failure(py, &e)),
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
    result.map_err(|e| errors::failure(py, &e))
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
    let py = target.py();
    let name = binary_name(op, BinaryForm::Plain);
    let stem = name.trim_matches('_');
    let function = match (op, form) {
        (BinaryOp::DivMod, _) => h.builtins.bind(py).getattr("divmod")?,
        (_, BinaryForm::InPlace) => h.operator.bind(py).getattr(format!("__i{stem}__"))?,
        _ => h.operator.bind(py).getattr(format!("__{stem}__"))?,
    };
    match form {
        BinaryForm::Reflected => function.call1((other, target)),
        _ => function.call1((target, other)),
    }
}

fn compare_name(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Lt => "__lt__",
        CompareOp::Le => "__le__",
        CompareOp::Eq => "__eq__",
        CompareOp::Ne => "__ne__",
        CompareOp::Gt => "__gt__",
        CompareOp::Ge => "__ge__",
    }
}

/// The special method of a binary operator in one of its forms, e.g. `__radd__`.
fn binary_name(op: BinaryOp, form: BinaryForm) -> String {
    let stem = match op {
        BinaryOp::Add => "add",
        BinaryOp::Sub => "sub",
        BinaryOp::Mul => "mul",
        BinaryOp::MatMul => "matmul",
        BinaryOp::TrueDiv => "truediv",
        BinaryOp::FloorDiv => "floordiv",
        BinaryOp::Mod => "mod",
        BinaryOp::DivMod => "divmod",
        BinaryOp::Pow => "pow",
        BinaryOp::LShift => "lshift",
        BinaryOp::RShift => "rshift",
        BinaryOp::And => "and",
        BinaryOp::Xor => "xor",
        BinaryOp::Or => "or",
    };
    let prefix = match form {
        BinaryForm::Plain => "",
        BinaryForm::Reflected => "r",
        BinaryForm::InPlace => "i",
    };
    format!("__{prefix}{stem}__")
}

fn unary<'py>(
    py: Python<'py>,
    h: &Helpers,
    target: &Bound<'py, PyAny>,
    op: UnaryOp,
) -> PyResult<Bound<'py, PyAny>> {
    let (module, name) = match op {
        UnaryOp::Neg => (&h.operator, "neg"),
        UnaryOp::Pos => (&h.operator, "pos"),
        UnaryOp::Abs => (&h.builtins, "abs"),
        UnaryOp::Invert => (&h.operator, "invert"),
        UnaryOp::Int => (&h.builtins, "int"),
        UnaryOp::Float => (&h.builtins, "float"),
        UnaryOp::Complex => (&h.builtins, "complex"),
        UnaryOp::Index => (&h.operator, "index"),
        UnaryOp::Round => (&h.builtins, "round"),
        UnaryOp::Trunc => (&h.math, "trunc"),
        UnaryOp::Floor => (&h.math, "floor"),
        UnaryOp::Ceil => (&h.math, "ceil"),
        UnaryOp::Reversed => (&h.builtins, "reversed"),
        UnaryOp::LengthHint => (&h.operator, "length_hint"),
    };
    module.bind(py).getattr(name)?.call1((target,))
}

/// A failure for a request the host refuses before running anything.
#[allow(dead_code)]
pub(crate) fn refused(kind: ErrorKind, message: &str) -> Failure {
    Failure::new(kind, "pynto.ProtocolError", message)
}
