//! Proxies: the Python objects that stand for the peer's objects and forward every operation.
//!
//! `Proxy` is the Rust base class. For each remote type, `pynto._proxy.make_class` builds a
//! Python subclass holding exactly the special methods the remote type has, mapped onto the
//! `_pynto_*` methods here, so `len`, `iter`, `callable` and ABC checks match the remote object.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use pynto_proto::{
    Args, BinaryForm, BinaryOp, CompareOp, Op, Target, TypeDesc, TypeId, UnaryOp, Value,
};
use pynto_runtime::{Boxer, CallOptions, Error, RemoteRef, Session};
use pyo3::exceptions::{PyStopIteration, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyTuple, PyType, PyWeakrefReference};

use crate::boxing::{self, Mode};
use crate::connection::Connection;
use crate::errors;
use crate::host::{ConnState, PyHost};
use crate::pending::PendingReply;

/// What a proxy class knows of its remote type.
pub(crate) struct TypeInfo {
    /// Methods answered with a bound remote method (one round trip when called).
    methods: HashSet<String>,
    /// The remote type is `coroutine`: a proxy arrives wrapped in a local coroutine.
    coroutine: bool,
}

/// Items fetched ahead by a batched `next`.
#[derive(Default)]
struct Prefetch {
    items: VecDeque<Py<PyAny>>,
    exhausted: bool,
    batch: u32,
}

/// The base class of every proxy: a counted reference to one of the peer's objects.
#[pyclass(frozen, weakref, subclass, module = "pynto")]
pub struct Proxy {
    conn: Py<Connection>,
    handle: RemoteRef,
    info: Arc<TypeInfo>,
    prefetch: Mutex<Prefetch>,
}

/// A one-shot carrier of a proxy's Rust half into its Python class's constructor.
#[pyclass(frozen)]
pub(crate) struct ProxySeed(Mutex<Option<Proxy>>);

impl Proxy {
    /// The counted reference.
    pub(crate) fn handle(&self) -> &RemoteRef {
        &self.handle
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Forget this proxy in its connection's cache if the cache still points at it.
        let oid = self.handle.oid();
        Python::attach(|py| {
            let conn = self.conn.get();
            if let Some(state) = conn.state() {
                let mut proxies = state.proxies.lock();
                if proxies
                    .get(&oid)
                    .is_some_and(|w| w.bind(py).upgrade().is_none())
                {
                    proxies.remove(&oid);
                }
            }
        });
    }
}

/// Send `op` (built by `build`, which boxes its operands) to `target` of `conn`, wait with the
/// GIL released, and unbox the reply.
pub(crate) fn request<'py>(
    py: Python<'py>,
    conn: &Connection,
    target: Target,
    build: impl FnOnce(&Arc<ConnState>, &mut Boxer<'_, PyHost>) -> PyResult<Op>,
) -> PyResult<Bound<'py, PyAny>> {
    let (session, state) = conn.open_parts(py)?;
    if state.guard_loop.load(std::sync::atomic::Ordering::Relaxed) && on_running_loop(py)? {
        return Err(pyo3::exceptions::PyRuntimeError::new_err(
            "pynto: a blocking call on a pynto.aio connection from its event loop's thread would stall the loop; await it instead",
        ));
    }
    let mut boxer = session.boxer();
    let op = build(state, &mut boxer)?;
    let interrupted: Mutex<Option<PyErr>> = Mutex::new(None);
    let check = || -> Result<(), Error> {
        Python::attach(|py| py.check_signals()).map_err(|e| {
            *interrupted.lock() = Some(e);
            Error::Interrupted("a signal arrived".into())
        })
    };
    let options = CallOptions {
        timeout: None,
        interrupt: Some(&check),
    };
    let answer = py.detach(|| session.request(target, op, boxer, &options));
    match answer {
        Err(Error::Interrupted(_)) => Err(interrupted
            .lock()
            .take()
            .unwrap_or_else(|| PyErr::fetch(py))),
        other => boxing::unbox_answer(py, session, state, other),
    }
}

/// True if this thread runs an asyncio event loop right now.
fn on_running_loop(py: Python<'_>) -> PyResult<bool> {
    static GET: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let get = GET.get_or_try_init(py, || {
        py.import("asyncio")
            .and_then(|m| m.getattr("_get_running_loop"))
            .map(Bound::unbind)
    })?;
    Ok(!get.call0(py)?.is_none(py))
}

fn args_of(
    state: &Arc<ConnState>,
    boxer: &mut Boxer<'_, PyHost>,
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Args> {
    let mut positional = Vec::with_capacity(args.len());
    for a in args.iter() {
        positional.push(boxing::to_value(state, &a, boxer, Mode::Result)?);
    }
    let mut keywords = Vec::new();
    if let Some(kwargs) = kwargs {
        for (k, v) in kwargs.iter() {
            keywords.push((
                k.extract::<String>()?,
                boxing::to_value(state, &v, boxer, Mode::Result)?,
            ));
        }
    }
    Ok(Args {
        positional,
        keywords,
    })
}

impl Proxy {
    fn target(&self) -> Target {
        Target::Export(self.handle.oid())
    }

    fn op<'py>(&self, py: Python<'py>, op: Op) -> PyResult<Bound<'py, PyAny>> {
        request(py, self.conn.get(), self.target(), |_, _| Ok(op))
    }

    fn op_with<'py>(
        &self,
        py: Python<'py>,
        build: impl FnOnce(&Arc<ConnState>, &mut Boxer<'_, PyHost>) -> PyResult<Op>,
    ) -> PyResult<Bound<'py, PyAny>> {
        request(py, self.conn.get(), self.target(), build)
    }
}

#[pymethods]
impl Proxy {
    #[new]
    fn __new__(seed: &Bound<'_, ProxySeed>) -> PyResult<Proxy> {
        seed.get()
            .0
            .lock()
            .take()
            .ok_or_else(|| PyTypeError::new_err("proxies are made by pynto, not by hand"))
    }

    fn __getattr__<'py>(
        slf: &Bound<'py, Self>,
        name: &Bound<'py, PyString>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let this = slf.get();
        let name_str = name.to_str()?;
        if this.info.methods.contains(name_str) {
            let method = BoundMethod {
                proxy: slf.clone().unbind(),
                name: name.clone().unbind(),
            };
            return Ok(Bound::new(py, method)?.into_any());
        }
        this.op(py, Op::GetAttr(name_str.to_owned()))
    }

    fn __setattr__(slf: &Bound<'_, Self>, name: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let name = name.to_owned();
        slf.get().op_with(slf.py(), |state, boxer| {
            Ok(Op::SetAttr(
                name,
                boxing::to_value(state, value, boxer, Mode::Result)?,
            ))
        })?;
        Ok(())
    }

    fn __delattr__(slf: &Bound<'_, Self>, name: &str) -> PyResult<()> {
        slf.get().op(slf.py(), Op::DelAttr(name.to_owned()))?;
        Ok(())
    }

    /// The remote attribute `name` (also a special method's, which `proxy.name` would find
    /// on the proxy class instead).
    fn _pynto_attr<'py>(
        slf: &Bound<'py, Self>,
        name: &Bound<'py, PyString>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::__getattr__(slf, name)
    }

    /// The connection this proxy belongs to.
    #[getter]
    fn _pynto_conn(&self, py: Python<'_>) -> Py<Connection> {
        self.conn.clone_ref(py)
    }

    /// The peer's object id.
    #[getter]
    fn _pynto_oid(&self) -> u64 {
        self.handle.oid()
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn _pynto_call<'py>(
        slf: &Bound<'py, Self>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        slf.get().op_with(slf.py(), |state, boxer| {
            Ok(Op::Call(args_of(state, boxer, args, kwargs)?))
        })
    }

    fn _pynto_repr<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.get().op(slf.py(), Op::Repr)
    }

    fn _pynto_str<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.get().op(slf.py(), Op::Str)
    }

    fn _pynto_format<'py>(slf: &Bound<'py, Self>, spec: String) -> PyResult<Bound<'py, PyAny>> {
        slf.get().op(slf.py(), Op::Format(spec))
    }

    fn _pynto_hash(slf: &Bound<'_, Self>) -> PyResult<isize> {
        slf.get().op(slf.py(), Op::Hash)?.extract()
    }

    fn _pynto_bool(slf: &Bound<'_, Self>) -> PyResult<bool> {
        slf.get().op(slf.py(), Op::Bool)?.extract()
    }

    fn _pynto_len(slf: &Bound<'_, Self>) -> PyResult<usize> {
        slf.get().op(slf.py(), Op::Len)?.extract()
    }

    fn _pynto_dir<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.get().op(slf.py(), Op::Dir)
    }

    fn _pynto_iter<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.get().op(slf.py(), Op::Iter)
    }

    /// `next()`, served from a batch fetched ahead when the peer allows it.
    fn _pynto_next<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let this = slf.get();
        let batch = {
            let mut prefetch = this.prefetch.lock();
            if let Some(item) = prefetch.items.pop_front() {
                return Ok(item.into_bound(py));
            }
            if prefetch.exhausted {
                return Err(PyStopIteration::new_err(()));
            }
            prefetch.batch = (prefetch.batch * 2).clamp(8, 1024);
            prefetch.batch
        };
        let reply = this.op(py, Op::Next(batch))?;
        let items = reply.get_item(0)?;
        let exhausted = reply.get_item(1)?.is_truthy()?;
        let mut prefetch = this.prefetch.lock();
        for item in items.try_iter()? {
            prefetch.items.push_back(item?.unbind());
        }
        prefetch.exhausted = exhausted;
        match prefetch.items.pop_front() {
            Some(item) => Ok(item.into_bound(py)),
            None => Err(PyStopIteration::new_err(())),
        }
    }

    fn _pynto_getitem<'py>(
        slf: &Bound<'py, Self>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        slf.get().op_with(slf.py(), |state, boxer| {
            Ok(Op::GetItem(boxing::to_value(
                state,
                key,
                boxer,
                Mode::Operand,
            )?))
        })
    }

    fn _pynto_setitem(
        slf: &Bound<'_, Self>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        slf.get().op_with(slf.py(), |state, boxer| {
            Ok(Op::SetItem(
                boxing::to_value(state, key, boxer, Mode::Operand)?,
                boxing::to_value(state, value, boxer, Mode::Result)?,
            ))
        })?;
        Ok(())
    }

    fn _pynto_delitem(slf: &Bound<'_, Self>, key: &Bound<'_, PyAny>) -> PyResult<()> {
        slf.get().op_with(slf.py(), |state, boxer| {
            Ok(Op::DelItem(boxing::to_value(
                state,
                key,
                boxer,
                Mode::Operand,
            )?))
        })?;
        Ok(())
    }

    fn _pynto_contains(slf: &Bound<'_, Self>, item: &Bound<'_, PyAny>) -> PyResult<bool> {
        slf.get()
            .op_with(slf.py(), |state, boxer| {
                Ok(Op::Contains(boxing::to_value(
                    state,
                    item,
                    boxer,
                    Mode::Operand,
                )?))
            })?
            .extract()
    }

    fn _pynto_compare<'py>(
        slf: &Bound<'py, Self>,
        op: u8,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let op =
            CompareOp::from_u8(op).ok_or_else(|| PyTypeError::new_err("bad comparison code"))?;
        slf.get().op_with(slf.py(), |state, boxer| {
            Ok(Op::Compare(
                op,
                boxing::to_value(state, other, boxer, Mode::Arithmetic)?,
            ))
        })
    }

    fn _pynto_binary<'py>(
        slf: &Bound<'py, Self>,
        op: u8,
        form: u8,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let op = BinaryOp::from_u8(op).ok_or_else(|| PyTypeError::new_err("bad operator code"))?;
        let form =
            BinaryForm::from_u8(form).ok_or_else(|| PyTypeError::new_err("bad operator form"))?;
        slf.get().op_with(slf.py(), |state, boxer| {
            Ok(Op::Binary(
                op,
                form,
                boxing::to_value(state, other, boxer, Mode::Arithmetic)?,
            ))
        })
    }

    fn _pynto_unary<'py>(slf: &Bound<'py, Self>, op: u8) -> PyResult<Bound<'py, PyAny>> {
        let op = UnaryOp::from_u8(op).ok_or_else(|| PyTypeError::new_err("bad unary code"))?;
        slf.get().op(slf.py(), Op::Unary(op))
    }

    fn _pynto_enter<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.get().op(slf.py(), Op::Enter)
    }

    /// `__exit__`: the exception goes (by value when it can), its local traceback does not
    /// (a traceback cannot cross; the owner's `__exit__` sees `None`).
    fn _pynto_exit<'py>(
        slf: &Bound<'py, Self>,
        a: &Bound<'py, PyAny>,
        b: &Bound<'py, PyAny>,
        c: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let _local_traceback = c;
        slf.get().op_with(slf.py(), |state, boxer| {
            Ok(Op::Exit(
                boxing::to_value(state, a, boxer, Mode::Result)?,
                boxing::to_value(state, b, boxer, Mode::Result)?,
                Value::None,
            ))
        })
    }

    fn _pynto_isinstance<'py>(
        slf: &Bound<'py, Self>,
        module: String,
        qualname: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        slf.get().op(slf.py(), Op::IsInstance(module, qualname))
    }

    /// `copy.copy` (or, with `deep`, `copy.deepcopy`) of the object, made by its owner.
    fn _pynto_copy<'py>(slf: &Bound<'py, Self>, deep: bool) -> PyResult<Bound<'py, PyAny>> {
        let name = if deep { "__deepcopy__" } else { "__copy__" };
        slf.get()
            .op(slf.py(), Op::CallMethod(name.to_owned(), Args::default()))
    }

    fn _pynto_pickle<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.get().op(slf.py(), Op::Pickle)
    }

    /// `self(*args, **kwargs)` without waiting.
    #[pyo3(signature = (timeout, *args, **kwargs))]
    fn _pynto_async_call(
        slf: &Bound<'_, Self>,
        timeout: Option<f64>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PendingReply> {
        let this = slf.get();
        PendingReply::start(
            slf.py(),
            this.conn.bind(slf.py()),
            this.target(),
            timeout,
            |state, boxer| Ok(Op::Call(args_of(state, boxer, args, kwargs)?)),
        )
    }

    /// `self.name(*args, **kwargs)` without waiting.
    #[pyo3(signature = (name, timeout, *args, **kwargs))]
    fn _pynto_async_method(
        slf: &Bound<'_, Self>,
        name: String,
        timeout: Option<f64>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PendingReply> {
        let this = slf.get();
        PendingReply::start(
            slf.py(),
            this.conn.bind(slf.py()),
            this.target(),
            timeout,
            |state, boxer| Ok(Op::CallMethod(name, args_of(state, boxer, args, kwargs)?)),
        )
    }

    /// `getattr(self, name)` without waiting.
    fn _pynto_async_getattr(
        slf: &Bound<'_, Self>,
        name: String,
        timeout: Option<f64>,
    ) -> PyResult<PendingReply> {
        let this = slf.get();
        PendingReply::start(
            slf.py(),
            this.conn.bind(slf.py()),
            this.target(),
            timeout,
            |_, _| Ok(Op::GetAttr(name)),
        )
    }

    /// An awaitable-protocol operation without waiting: 0 `await`, 1 `aiter`, 2 `anext`,
    /// 3 `__aenter__`.
    fn _pynto_async_op(
        slf: &Bound<'_, Self>,
        code: u8,
        timeout: Option<f64>,
    ) -> PyResult<PendingReply> {
        let op = match code {
            0 => Op::Await,
            1 => Op::AIter,
            2 => Op::ANext,
            3 => Op::AEnter,
            _ => return Err(PyTypeError::new_err("bad async op code")),
        };
        let this = slf.get();
        PendingReply::start(
            slf.py(),
            this.conn.bind(slf.py()),
            this.target(),
            timeout,
            |_, _| Ok(op),
        )
    }

    /// `self.__aexit__(a, b, c)` without waiting.
    fn _pynto_async_exit(
        slf: &Bound<'_, Self>,
        a: &Bound<'_, PyAny>,
        b: &Bound<'_, PyAny>,
        c: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<PendingReply> {
        let this = slf.get();
        PendingReply::start(
            slf.py(),
            this.conn.bind(slf.py()),
            this.target(),
            timeout,
            |state, boxer| {
                Ok(Op::AExit(
                    boxing::to_value(state, a, boxer, Mode::Result)?,
                    boxing::to_value(state, b, boxer, Mode::Result)?,
                    boxing::to_value(state, c, boxer, Mode::Result)?,
                ))
            },
        )
    }
}

// `proxy.method`, bound: calling it is one `CallMethod` round trip. (No `///` doc: a class
// docstring would shadow the `__doc__` getter, which returns the remote method's.)
#[pyclass(frozen, module = "pynto")]
pub struct BoundMethod {
    proxy: Py<Proxy>,
    name: Py<PyString>,
}

#[pymethods]
impl BoundMethod {
    #[pyo3(signature = (*args, **kwargs))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let name = self.name.bind(py).to_str()?.to_owned();
        self.proxy.get().op_with(py, |state, boxer| {
            Ok(Op::CallMethod(name, args_of(state, boxer, args, kwargs)?))
        })
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "<remote method {} of proxy {}>",
            self.name.bind(py),
            self.proxy.get().handle.oid()
        )
    }

    #[getter]
    fn __self__(&self, py: Python<'_>) -> Py<Proxy> {
        self.proxy.clone_ref(py)
    }

    /// Call without waiting (`pynto.async_`).
    #[pyo3(signature = (timeout, *args, **kwargs))]
    fn _pynto_async_call(
        &self,
        py: Python<'_>,
        timeout: Option<f64>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PendingReply> {
        let name = self.name.bind(py).to_str()?.to_owned();
        let proxy = self.proxy.get();
        PendingReply::start(
            py,
            proxy.conn.bind(py),
            proxy.target(),
            timeout,
            |state, boxer| Ok(Op::CallMethod(name, args_of(state, boxer, args, kwargs)?)),
        )
    }

    /// The remote method's docstring.
    #[getter]
    fn __doc__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.fetch(py)?.getattr("__doc__")
    }

    /// Any other attribute is the remote method object's (one round trip to fetch it).
    fn __getattr__<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyString>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.fetch(py)?.getattr(name)
    }
}

impl BoundMethod {
    /// The remote method itself, as a proxy.
    fn fetch<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let name = self.name.bind(py).to_str()?.to_owned();
        self.proxy.get().op(py, Op::GetAttr(name))
    }
}

/// True if `obj` is a pynto proxy.
#[pyfunction]
pub(crate) fn is_proxy(obj: &Bound<'_, PyAny>) -> bool {
    obj.is_instance_of::<Proxy>()
}

fn make_class(py: Python<'_>) -> &Py<PyAny> {
    static MAKE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    MAKE.get_or_init(py, || {
        py.import("pynto._proxy")
            .and_then(|m| m.getattr("make_class"))
            .expect("pynto._proxy.make_class")
            .unbind()
    })
}

/// The description of `obj`'s type under `state`'s policy.
pub(crate) fn describe(obj: &Bound<'_, PyAny>, state: &Arc<ConnState>) -> PyResult<TypeDesc> {
    let py = obj.py();
    let d = crate::host::helpers(py)
        .describe
        .bind(py)
        .call1((obj, &state.policy.object))?;
    Ok(TypeDesc {
        module: d.get_item(0)?.extract()?,
        qualname: d.get_item(1)?.extract()?,
        dunders: d.get_item(2)?.extract()?,
        methods: d.get_item(3)?.extract()?,
        abcs: d.get_item(4)?.extract()?,
    })
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
    let cls = make_class(py).bind(py).call1((
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
    if let Some(existing) = state
        .proxies
        .lock()
        .get(&oid)
        .and_then(|w| w.bind(py).upgrade())
    {
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
        .connection
        .get()
        .and_then(|w| w.bind(py).upgrade())
        .ok_or_else(|| errors::protocol_error(py, "the connection object is gone".into()))?;
    let conn = conn.cast_into::<Connection>()?.unbind();
    let proxy = Proxy {
        conn,
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
    crate::host::helpers(py)
        .local_coroutine
        .bind(py)
        .call1((proxy,))
}
