//! Calling out: every request this side sends to its peer's objects, and the methods of
//! `Proxy` and `BoundMethod` that send them.
//!
//! A request either blocks ([`request`]: sent and waited for with the GIL released, the caller's
//! thread reading the reply itself) or does not (`PendingReply::start`, collected later). The
//! requests that exist in both forms are generated from one table below (`requests!`): each
//! line gives the blocking method, its non-blocking twin `_pynto_async_*` (the same request, a
//! timeout first, a `PendingReply` back), their parameters and the op they send.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use pynto_proto::{Args, BinaryForm, BinaryOp, CompareOp, Op, Target, UnaryOp, Value};
use pynto_runtime::{Boxer, CallOptions, Error, Session};
use pyo3::exceptions::{PyRuntimeError, PyStopIteration, PyTypeError};
use pyo3::prelude::*;
use pyo3::pyclass::{PyTraverseError, PyVisit};
use pyo3::types::{PyDict, PyString, PyTuple};

use crate::boxing::{self, Mode};
use crate::helpers::helpers;
use crate::pending::PendingReply;
use crate::proxy::{BoundMethod, Proxy, ProxySeed};
use crate::state::{ConnState, PyHost};
use crate::wait::Interrupt;

/// Send `op` (built by `build`, which boxes its operands) to `target`, wait with the GIL
/// released (Ctrl-C interrupts), and unbox the reply.
pub(crate) fn request<'py>(
    py: Python<'py>,
    session: &Session<PyHost>,
    state: &Arc<ConnState>,
    target: Target,
    build: impl FnOnce(&Arc<ConnState>, &mut Boxer<'_, PyHost>) -> PyResult<Op>,
) -> PyResult<Bound<'py, PyAny>> {
    let answer = send(py, session, state, target, build)?;
    boxing::unbox_answer(py, session, state, answer)
}

/// [`request`]'s sending and waiting: the runtime's answer, not yet unboxed.
fn send(
    py: Python<'_>,
    session: &Session<PyHost>,
    state: &Arc<ConnState>,
    target: Target,
    build: impl FnOnce(&Arc<ConnState>, &mut Boxer<'_, PyHost>) -> PyResult<Op>,
) -> PyResult<Result<pynto_runtime::Answer<PyHost>, Error>> {
    if state.guard_loop.load(Ordering::Relaxed) && on_running_loop(py)? {
        return Err(PyRuntimeError::new_err(
            "pynto: a blocking call on a pynto.aio connection from its event loop's thread would stall the loop; await it instead",
        ));
    }
    let mut boxer = session.boxer();
    let op = build(state, &mut boxer)?;
    let interrupt = Interrupt::default();
    let check = || interrupt.check();
    let options = CallOptions {
        timeout: None,
        interrupt: Some(&check),
    };
    let answer = py.detach(|| session.request(target, op, boxer, &options));
    match answer {
        Err(Error::Interrupted(_)) => Err(interrupt.take().unwrap_or_else(|| PyErr::fetch(py))),
        other => Ok(other),
    }
}

/// True if this thread runs an asyncio event loop right now.
fn on_running_loop(py: Python<'_>) -> PyResult<bool> {
    Ok(!helpers(py)?.get_running_loop.call0(py)?.is_none(py))
}

/// `(args, kwargs)` boxed as a call's arguments.
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
    /// A blocking request to the remote object.
    fn ask<'py>(
        &self,
        py: Python<'py>,
        build: impl FnOnce(&Arc<ConnState>, &mut Boxer<'_, PyHost>) -> PyResult<Op>,
    ) -> PyResult<Bound<'py, PyAny>> {
        request(py, &self.session, &self.state, self.target(), build)
    }

    /// A blocking request of an op without operands.
    fn op<'py>(&self, py: Python<'py>, op: Op) -> PyResult<Bound<'py, PyAny>> {
        self.ask(py, |_, _| Ok(op))
    }

    /// The same request, not waited for: a reply to collect later (`timeout` fails it with
    /// Timeout).
    fn ask_later(
        slf: &Bound<'_, Self>,
        timeout: Option<f64>,
        build: impl FnOnce(&Arc<ConnState>, &mut Boxer<'_, PyHost>) -> PyResult<Op>,
    ) -> PyResult<PendingReply> {
        let this = slf.get();
        let conn = this.conn.lock().as_ref().map(|c| c.clone_ref(slf.py()));
        PendingReply::start(
            slf.py(),
            conn,
            &this.session,
            &this.state,
            this.target(),
            timeout,
            build,
        )
    }
}

fn boxed(
    state: &Arc<ConnState>,
    boxer: &mut Boxer<'_, PyHost>,
    obj: &Bound<'_, PyAny>,
    mode: Mode,
) -> PyResult<Value> {
    boxing::to_value(state, obj, boxer, mode)
}

/// `#[pymethods] impl Proxy`: the hand-written methods given, then two methods for each line
/// of `both` (blocking, and `_pynto_async_*` with a timeout first) and one for each line of
/// `later` (non-blocking only).
macro_rules! requests {
    (
        methods { $($methods:tt)* }
        both { $(
            $(#[doc = $doc:literal])*
            $sync:ident, $async_:ident ($($sig:tt)*) ($($params:tt)*)
                => |$s:tt, $b:tt| $op:expr;
        )* }
        later { $(
            $(#[doc = $ldoc:literal])*
            $later:ident ($($lsig:tt)*) ($($lparams:tt)*) => |$ls:tt, $lb:tt| $lop:expr;
        )* }
    ) => {
        #[pymethods]
        impl Proxy {
            $($methods)*
            $(
                $(#[doc = $doc])*
                #[pyo3(signature = ($($sig)*))]
                fn $sync<'py>(slf: &Bound<'py, Self>, $($params)*) -> PyResult<Bound<'py, PyAny>> {
                    slf.get().ask(slf.py(), |$s, $b| Ok($op))
                }

                $(#[doc = $doc])*
                #[doc = "Without waiting."]
                #[pyo3(signature = (timeout, $($sig)*))]
                fn $async_<'py>(
                    slf: &Bound<'py, Self>,
                    timeout: Option<f64>,
                    $($params)*
                ) -> PyResult<PendingReply> {
                    Self::ask_later(slf, timeout, |$s, $b| Ok($op))
                }
            )*
            $(
                $(#[doc = $ldoc])*
                #[pyo3(signature = (timeout, $($lsig)*))]
                fn $later<'py>(
                    slf: &Bound<'py, Self>,
                    timeout: Option<f64>,
                    $($lparams)*
                ) -> PyResult<PendingReply> {
                    Self::ask_later(slf, timeout, |$ls, $lb| Ok($lop))
                }
            )*
        }
    };
}

requests! {
    methods {
        #[new]
        fn __new__(seed: &Bound<'_, ProxySeed>) -> PyResult<Proxy> {
            Proxy::from_seed(seed)
        }

        fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
            self.traverse(&visit)
        }

        fn __clear__(&self) {
            self.clear()
        }

        /// A remote method is answered with a bound method (calling it is one round trip);
        /// any other attribute is fetched.
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
            slf.get().ask(slf.py(), |s, b| Ok(Op::SetAttr(name, boxed(s, b, value, Mode::Result)?)))?;
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
        fn _pynto_conn(&self, py: Python<'_>) -> Option<Py<PyAny>> {
            self.conn.lock().as_ref().map(|c| c.clone_ref(py))
        }

        /// The peer's object id.
        #[getter]
        fn _pynto_oid(&self) -> u64 {
            self.handle.oid()
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
            let items = reply
                .get_item(0)?
                .try_iter()?
                .map(|item| item.map(Bound::unbind))
                .collect::<PyResult<Vec<_>>>()?;
            let exhausted = reply.get_item(1)?.is_truthy()?;
            let mut prefetch = this.prefetch.lock();
            prefetch.items.extend(items);
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
            slf.get().ask(slf.py(), |s, b| Ok(Op::GetItem(boxed(s, b, key, Mode::Operand)?)))
        }

        fn _pynto_setitem(
            slf: &Bound<'_, Self>,
            key: &Bound<'_, PyAny>,
            value: &Bound<'_, PyAny>,
        ) -> PyResult<()> {
            slf.get().ask(slf.py(), |s, b| {
                Ok(Op::SetItem(boxed(s, b, key, Mode::Operand)?, boxed(s, b, value, Mode::Result)?))
            })?;
            Ok(())
        }

        fn _pynto_delitem(slf: &Bound<'_, Self>, key: &Bound<'_, PyAny>) -> PyResult<()> {
            slf.get().ask(slf.py(), |s, b| Ok(Op::DelItem(boxed(s, b, key, Mode::Operand)?)))?;
            Ok(())
        }

        fn _pynto_contains(slf: &Bound<'_, Self>, item: &Bound<'_, PyAny>) -> PyResult<bool> {
            slf.get()
                .ask(slf.py(), |s, b| Ok(Op::Contains(boxed(s, b, item, Mode::Operand)?)))?
                .extract()
        }

        fn _pynto_compare<'py>(
            slf: &Bound<'py, Self>,
            op: u8,
            other: &Bound<'py, PyAny>,
        ) -> PyResult<Bound<'py, PyAny>> {
            let op = CompareOp::from_u8(op)
                .ok_or_else(|| PyTypeError::new_err("bad comparison code"))?;
            slf.get().ask(slf.py(), |s, b| Ok(Op::Compare(op, boxed(s, b, other, Mode::Arithmetic)?)))
        }

        fn _pynto_binary<'py>(
            slf: &Bound<'py, Self>,
            op: u8,
            form: u8,
            other: &Bound<'py, PyAny>,
        ) -> PyResult<Bound<'py, PyAny>> {
            let op = BinaryOp::from_u8(op).ok_or_else(|| PyTypeError::new_err("bad operator code"))?;
            let form = BinaryForm::from_u8(form)
                .ok_or_else(|| PyTypeError::new_err("bad operator form"))?;
            slf.get().ask(slf.py(), |s, b| {
                Ok(Op::Binary(op, form, boxed(s, b, other, Mode::Arithmetic)?))
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
            slf.get().ask(slf.py(), |s, bx| {
                Ok(Op::Exit(boxed(s, bx, a, Mode::Result)?, boxed(s, bx, b, Mode::Result)?, Value::None))
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
            slf.get().op(slf.py(), Op::CallMethod(name.to_owned(), Args::default()))
        }

        /// A pickled copy of the object: `(pickle, [buffer...])` (protocol 5, the buffers out
        /// of band), or the pickle's bytes alone from a peer that does not know that form.
        fn _pynto_pickle<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
            let (py, this) = (slf.py(), slf.get());
            let (session, state) = (&this.session, &this.state);
            if !state.no_pickle_buffers.load(Ordering::Relaxed) {
                match send(py, session, state, this.target(), |_, _| Ok(Op::PickleBuffers))? {
                    Ok(answer) => return boxing::unbox_pickled(py, session, state, answer),
                    Err(Error::Remote(f)) if f.kind == pynto_proto::ErrorKind::Unimplemented => {
                        // An older peer: ask it the old way, now and from now on.
                        state.no_pickle_buffers.store(true, Ordering::Relaxed);
                    }
                    Err(e) => return boxing::unbox_answer(py, session, state, Err(e)),
                }
            }
            this.op(py, Op::Pickle)
        }
    }
    both {
        /// `self(*args, **kwargs)`.
        _pynto_call, _pynto_async_call (*args, **kwargs)
            (args: &Bound<'py, PyTuple>, kwargs: Option<&Bound<'py, PyDict>>)
            => |s, b| Op::Call(args_of(s, b, args, kwargs)?);
        /// `self.name(*args, **kwargs)`: one round trip.
        _pynto_method, _pynto_async_method (name, *args, **kwargs)
            (name: String, args: &Bound<'py, PyTuple>, kwargs: Option<&Bound<'py, PyDict>>)
            => |s, b| Op::CallMethod(name, args_of(s, b, args, kwargs)?);
        /// `getattr(self, name)`, fetched (never a bound method).
        _pynto_getattr, _pynto_async_getattr (name) (name: String)
            => |_, _| Op::GetAttr(name);
    }
    later {
        /// `await self`, driven on the owner's event loop.
        _pynto_async_await () () => |_, _| Op::Await;
        /// `aiter(self)`.
        _pynto_async_aiter () () => |_, _| Op::AIter;
        /// `await anext(self)`.
        _pynto_async_anext () () => |_, _| Op::ANext;
        /// `await self.__aenter__()`.
        _pynto_async_aenter () () => |_, _| Op::AEnter;
        /// `await self.__aexit__(a, b, c)`: as `__exit__`, the local traceback stays here.
        _pynto_async_aexit (a, b, c)
            (a: &Bound<'py, PyAny>, b: &Bound<'py, PyAny>, c: &Bound<'py, PyAny>)
            => |s, bx| {
                let _local_traceback = c;
                Op::AExit(boxed(s, bx, a, Mode::Result)?, boxed(s, bx, b, Mode::Result)?, Value::None)
            };
    }
}

#[pymethods]
impl BoundMethod {
    /// `proxy.name(*args, **kwargs)`: one `CallMethod` round trip.
    #[pyo3(signature = (*args, **kwargs))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let name = self.name.bind(py).to_str()?.to_owned();
        Proxy::_pynto_method(self.proxy.bind(py), name, args, kwargs)
    }

    /// Call without waiting (`pynto.async_`).
    #[pyo3(signature = (timeout, *args, **kwargs))]
    fn _pynto_async_call<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<f64>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<PendingReply> {
        let name = self.name.bind(py).to_str()?.to_owned();
        Proxy::_pynto_async_method(self.proxy.bind(py), timeout, name, args, kwargs)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "<remote method {} of proxy {}>",
            self.name.bind(py),
            self.proxy.get().handle().oid()
        )
    }

    #[getter]
    fn __self__(&self, py: Python<'_>) -> Py<Proxy> {
        self.proxy.clone_ref(py)
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

    // No `__clear__`: every reference cycle through a bound method runs through its proxy,
    // whose `__clear__` breaks it; clearing here would put a lock on every method call.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.proxy)?;
        visit.call(&self.name)
    }
}

impl BoundMethod {
    /// The remote method itself, as a proxy.
    fn fetch<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let name = self.name.bind(py).to_str()?.to_owned();
        Proxy::_pynto_getattr(self.proxy.bind(py), name)
    }
}
