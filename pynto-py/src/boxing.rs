//! Boxing Python values: immutable primitives by value, everything else by reference, and
//! back again (references become proxies; our own objects come home as themselves).
//!
//! Both directions of call box: arguments going out, results going back. Exporting an object
//! by reference describes its type for the peer the first time (`describe`).

use std::sync::Arc;

use bytes::Bytes;
use pynto_proto::{Value, INLINE_BYTES_MAX};
use pynto_runtime::{Boxer, Incoming, Session};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{
    PyByteArray, PyBytes, PyComplex, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PySet, PySlice,
    PyString, PyTuple,
};

use crate::buffers::{self, DRAIN_MIN};
use crate::errors;
use crate::helpers::{big_int, helpers, rebuild_standard};
use crate::proxy::{self, Proxy};
use crate::state::{ConnState, PyHost};

/// Where boxing and unboxing happen: the interpreter, the session and its Python-side state,
/// and the references the message being unboxed carried.
pub(crate) struct Cx<'a, 'py> {
    pub py: Python<'py>,
    pub session: &'a Session<PyHost>,
    pub state: &'a Arc<ConnState>,
    pub incoming: &'a Incoming<PyHost>,
}

/// How a value is being boxed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A result or an argument: builtin containers cross by reference.
    Result,
    /// A key or an item (`[]`, `in`): builtin containers of by-value items cross by value,
    /// for that operation.
    Operand,
    /// The operand of an operator or comparison: as `Operand`, and an instance of a subclass of
    /// `int`, `float`, `str` or `bytes` crosses as its base value, for that operation.
    Arithmetic,
}

/// The `Value::Standard` form of `obj` if its exact type is one of `pynto._values.STANDARD`.
fn standard(obj: &Bound<'_, PyAny>, depth: u32) -> PyResult<Option<Value>> {
    let py = obj.py();
    let h = helpers(py)?;
    if !h.standard_types.bind(py).contains(obj.get_type())? {
        return Ok(None);
    }
    reduced(obj, &h.reduce, Mode::Result, depth)
}

/// The `Value::Standard` form of an operand whose exact type is one of
/// `pynto._values.OPERANDS` (mutable containers: by value for one operation only).
fn operand_standard(obj: &Bound<'_, PyAny>, depth: u32) -> PyResult<Option<Value>> {
    let py = obj.py();
    let h = helpers(py)?;
    if !h.operand_types.bind(py).contains(obj.get_type())? {
        return Ok(None);
    }
    reduced(obj, &h.reduce_operand, Mode::Operand, depth)
}

/// `reduce(obj)` as a `Value::Standard`, its arguments boxed in `mode`.
fn reduced(
    obj: &Bound<'_, PyAny>,
    reduce: &Py<PyAny>,
    mode: Mode,
    depth: u32,
) -> PyResult<Option<Value>> {
    let py = obj.py();
    let reduced = reduce.bind(py).call1((obj,))?;
    if reduced.is_none() {
        return Ok(None);
    }
    let name: String = reduced.get_item(0)?.extract()?;
    let mut args = Vec::new();
    for arg in reduced.get_item(1)?.try_iter()? {
        match by_value(&arg?, mode, depth + 1)? {
            Some(v) => args.push(v),
            None => return Ok(None),
        }
    }
    Ok(Some(Value::Standard(Box::new((name, args)))))
}

/// Nesting beyond this boxes by reference instead of by value (deep by-value nesting would
/// break the peer's depth limit).
const MAX_BY_VALUE_DEPTH: u32 = 64;

/// Box `obj` for a message of the session `boxer` belongs to.
pub(crate) fn to_value(
    state: &Arc<ConnState>,
    obj: &Bound<'_, PyAny>,
    boxer: &mut Boxer<'_, PyHost>,
    mode: Mode,
) -> PyResult<Value> {
    let by_value = if mode == Mode::Result {
        by_value(obj, mode, 0)?
    } else {
        let mut home = |item: &Bound<'_, PyAny>| {
            let proxy = item.cast::<Proxy>().ok()?;
            boxer.returned(proxy.get().handle())
        };
        by_value_in(obj, mode, 0, Some(&mut home))?
    };
    if let Some(value) = by_value {
        return Ok(value);
    }
    // A proxy of this very session goes home as the original object.
    if let Ok(proxy) = obj.cast::<Proxy>() {
        let proxy = proxy.get();
        if let Some(value) = boxer.returned(proxy.handle()) {
            return Ok(value);
        }
    }
    export(state, obj, boxer)
}

/// Export `obj` by reference.
pub(crate) fn export(
    state: &Arc<ConnState>,
    obj: &Bound<'_, PyAny>,
    boxer: &mut Boxer<'_, PyHost>,
) -> PyResult<Value> {
    let type_key = state.type_keys.lock().key(&obj.get_type());
    let mut described: Option<PyResult<pynto_proto::TypeDesc>> = None;
    let result = boxer.export(&Arc::new(obj.clone().unbind()), type_key, || {
        let desc = describe(obj, state);
        match desc {
            Ok(d) => d,
            Err(e) => {
                described = Some(Err(e));
                pynto_proto::TypeDesc::default()
            }
        }
    });
    if let Some(Err(e)) = described {
        return Err(e);
    }
    result.map_err(|f| errors::to_py(obj.py(), pynto_runtime::Error::Remote(f), false))
}

/// The description of `obj`'s type under `state`'s policy (`pynto._host.describe`).
fn describe(obj: &Bound<'_, PyAny>, state: &Arc<ConnState>) -> PyResult<pynto_proto::TypeDesc> {
    let py = obj.py();
    let d = helpers(py)?
        .describe
        .bind(py)
        .call1((obj, &state.policy.object))?;
    Ok(pynto_proto::TypeDesc {
        module: d.get_item(0)?.extract()?,
        qualname: d.get_item(1)?.extract()?,
        dunders: d.get_item(2)?.extract()?,
        methods: d.get_item(3)?.extract()?,
        abcs: d.get_item(4)?.extract()?,
    })
}

/// The by-value form of `obj`, if it has one.
fn by_value(obj: &Bound<'_, PyAny>, mode: Mode, depth: u32) -> PyResult<Option<Value>> {
    by_value_in(obj, mode, depth, None)
}

/// Turns a proxy of the session being boxed for into its `Value::Returned`.
type Home<'h, 'f> = Option<&'h mut (dyn FnMut(&Bound<'_, PyAny>) -> Option<Value> + 'f)>;

/// The by-value form of `obj`, if it has one. With `home`, an operand's container may hold
/// proxies of the receiving side's own objects: they go home as themselves
/// (`remote_list == [remote_item]`).
fn by_value_in<'f>(
    obj: &Bound<'_, PyAny>,
    mode: Mode,
    depth: u32,
    mut home: Home<'_, 'f>,
) -> PyResult<Option<Value>> {
    let py = obj.py();
    if obj.is_none() {
        return Ok(Some(Value::None));
    }
    if depth > 0 && mode != Mode::Result {
        if let Some(home) = home.as_deref_mut() {
            if let Some(value) = home(obj) {
                return Ok(Some(value));
            }
        }
    }
    if depth > MAX_BY_VALUE_DEPTH {
        return Ok(None);
    }
    if obj.is_exact_instance_of::<pyo3::types::PyBool>() {
        return Ok(Some(Value::Bool(obj.is_truthy()?)));
    }
    if obj.is_exact_instance_of::<PyInt>() {
        return Ok(Some(match obj.extract::<i64>() {
            Ok(i) => Value::Int(i),
            Err(_) => Value::BigInt(big_int_bytes(obj)?),
        }));
    }
    if obj.is_exact_instance_of::<PyFloat>() {
        return Ok(Some(Value::Float(obj.extract::<f64>()?)));
    }
    if obj.is_exact_instance_of::<PyString>() {
        return Ok(Some(Value::Str(
            obj.cast::<PyString>()?.to_str()?.to_owned(),
        )));
    }
    if obj.is_exact_instance_of::<PyBytes>() {
        let bytes = obj.cast::<PyBytes>()?;
        let data = bytes.as_bytes();
        return Ok(Some(Value::Bytes(if data.len() < INLINE_BYTES_MAX {
            Bytes::copy_from_slice(data)
        } else {
            // Large: share the Python buffer itself, so the send path never copies it.
            Bytes::from_owner(PyBackedBytes::from(bytes.clone()))
        })));
    }
    if obj.is_exact_instance_of::<PyTuple>() {
        let tuple = obj.cast::<PyTuple>()?;
        let mut items = Vec::with_capacity(tuple.len());
        for item in tuple.iter() {
            match by_value_in(&item, mode, depth + 1, home.as_deref_mut())? {
                Some(v) => items.push(v),
                None => return Ok(None),
            }
        }
        return Ok(Some(Value::Tuple(items)));
    }
    if obj.is_exact_instance_of::<PyComplex>() {
        let c = obj.cast::<PyComplex>()?;
        return Ok(Some(Value::Complex(c.real(), c.imag())));
    }
    if obj.is(py.Ellipsis()) {
        return Ok(Some(Value::Ellipsis));
    }
    if obj.is(py.NotImplemented()) {
        return Ok(Some(Value::NotImplemented));
    }
    if obj.is_exact_instance_of::<PySlice>() {
        let parts = ["start", "stop", "step"].map(|name| obj.getattr(name));
        let mut values = Vec::with_capacity(3);
        for part in parts {
            match by_value(&part?, Mode::Result, depth + 1)? {
                Some(v) => values.push(v),
                None => return Ok(None),
            }
        }
        let [a, b, c]: [Value; 3] = values.try_into().expect("three parts");
        return Ok(Some(Value::Slice(Box::new([a, b, c]))));
    }
    if obj.is_exact_instance_of::<PyFrozenSet>() {
        return Ok(items_by_value(obj, Mode::Result, depth, None)?.map(Value::FrozenSet));
    }
    if obj.get_type().is(helpers(py)?.pickle_buffer.bind(py)) {
        return pickle_buffer(obj).map(Some);
    }
    if let Some(value) = standard(obj, depth)? {
        return Ok(Some(value));
    }
    if mode != Mode::Result {
        if let Some(value) = operand_standard(obj, depth)? {
            return Ok(Some(value));
        }
    }
    if mode == Mode::Arithmetic && !obj.is_instance_of::<Proxy>() {
        // An operand whose type subclasses a by-value scalar or a tuple crosses as that
        // value, for this one operation: the owner's operator then sees a value it knows.
        let ty = obj.get_type();
        if ty.is_subclass(&py.get_type::<PyTuple>())? {
            return Ok(items_by_value(obj, mode, depth, home)?.map(Value::Tuple));
        }
        for (base, exact) in [
            (py.get_type::<PyInt>(), "__int__"),
            (py.get_type::<PyFloat>(), "__float__"),
            (py.get_type::<PyString>(), "__str__"),
            (py.get_type::<PyBytes>(), "__bytes__"),
        ] {
            if ty.is_subclass(&base)? {
                // `int.__int__(x)` and its kin give the exact base value of a subclass.
                let plain = base.getattr(exact)?.call1((obj,))?;
                return by_value(&plain, Mode::Result, depth + 1);
            }
        }
    }
    if mode != Mode::Result {
        if obj.is_exact_instance_of::<PyList>() {
            return Ok(items_by_value(obj, mode, depth, home)?.map(Value::List));
        }
        if obj.is_exact_instance_of::<PySet>() {
            return Ok(items_by_value(obj, mode, depth, home)?.map(Value::Set));
        }
        if obj.is_exact_instance_of::<PyByteArray>() {
            let array = obj.cast::<PyByteArray>()?;
            if array.len() >= INLINE_BYTES_MAX {
                // Read in place (and kept from resizing) until the request is written.
                if let Some((data, _)) = buffers::held(obj)? {
                    return Ok(Some(Value::ByteArray(data)));
                }
            }
            return Ok(Some(Value::ByteArray(Bytes::from(array.to_vec()))));
        }
        if obj.is_exact_instance_of::<PyDict>() {
            let mut pairs = Vec::new();
            for (k, v) in obj.cast::<PyDict>()?.iter() {
                match (
                    by_value(&k, Mode::Result, depth + 1)?,
                    by_value_in(&v, mode, depth + 1, home.as_deref_mut())?,
                ) {
                    (Some(k), Some(v)) => pairs.push((k, v)),
                    _ => return Ok(None),
                }
            }
            return Ok(Some(Value::Dict(pairs)));
        }
    }
    Ok(None)
}

/// A `pickle.PickleBuffer` by value: `ByteArray` if writable, `Bytes` if read-only, its memory
/// read in place when large and contiguous.
fn pickle_buffer(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    let (data, readonly) = match buffers::held(obj)? {
        Some((data, readonly)) if data.len() >= INLINE_BYTES_MAX => (data, readonly),
        Some((data, readonly)) => (Bytes::copy_from_slice(&data), readonly),
        None => {
            let readonly = helpers(obj.py())?
                .memoryview
                .bind(obj.py())
                .call1((obj,))?
                .getattr("readonly")?
                .is_truthy()?;
            (buffers::copied(obj)?, readonly)
        }
    };
    Ok(if readonly {
        Value::Bytes(data)
    } else {
        Value::ByteArray(data)
    })
}

fn items_by_value<'f>(
    obj: &Bound<'_, PyAny>,
    mode: Mode,
    depth: u32,
    mut home: Home<'_, 'f>,
) -> PyResult<Option<Vec<Value>>> {
    let mut items = Vec::new();
    for item in obj.try_iter()? {
        match by_value_in(&item?, mode, depth + 1, home.as_deref_mut())? {
            Some(v) => items.push(v),
            None => return Ok(None),
        }
    }
    Ok(Some(items))
}

/// A by-value Python object's protocol value (exception args), if it has one.
pub(crate) fn plain_to_value(obj: &Bound<'_, PyAny>) -> Option<Value> {
    by_value(obj, Mode::Result, 0).ok().flatten()
}

/// Little-endian two's complement, shortest form, of an int that does not fit in 64 bits.
fn big_int_bytes(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    let bits: usize = obj.call_method0("bit_length")?.extract()?;
    let len = bits / 8 + 1;
    let kwargs = PyDict::new(obj.py());
    kwargs.set_item("signed", true)?;
    let bytes = obj.call_method("to_bytes", (len, "little"), Some(&kwargs))?;
    let mut bytes = bytes.cast::<PyBytes>()?.as_bytes().to_vec();
    while bytes.len() > 1 {
        let last = bytes[bytes.len() - 1];
        let sign_of_rest = bytes[bytes.len() - 2] & 0x80;
        if (last == 0x00 && sign_of_rest == 0) || (last == 0xff && sign_of_rest != 0) {
            bytes.pop();
        } else {
            break;
        }
    }
    Ok(bytes)
}

/// Unbox each of `values`.
fn unbox_all<'py>(cx: &Cx<'_, 'py>, values: &[Value]) -> PyResult<Vec<Bound<'py, PyAny>>> {
    values.iter().map(|v| from_value(cx, v)).collect()
}

/// A reply's value as a Python object (its references resolved), or its error raised.
pub(crate) fn unbox_answer<'py>(
    py: Python<'py>,
    session: &Session<PyHost>,
    state: &Arc<ConnState>,
    answer: Result<pynto_runtime::Answer<PyHost>, pynto_runtime::Error>,
) -> PyResult<Bound<'py, PyAny>> {
    match answer {
        Ok(pynto_runtime::Answer { value, incoming }) => {
            let cx = Cx {
                py,
                session,
                state,
                incoming: &incoming,
            };
            from_owned_value(&cx, value)
        }
        Err(e) => Err(errors::to_py(py, e, state.policy.rebuild_exceptions)),
    }
}

/// Unbox a protocol value this side is done with. Large `bytes` and `bytearray` values (also
/// inside a tuple, as `pickle.loads(data, buffers=(...))` gets them from `deliver`) are drained
/// into the Python object: a received 1 GiB value then peaks at about its own size, not twice
/// it.
pub(crate) fn from_owned_value<'py>(cx: &Cx<'_, 'py>, value: Value) -> PyResult<Bound<'py, PyAny>> {
    match value {
        Value::Bytes(b) if b.len() >= DRAIN_MIN => Ok(drained_bytes(cx.py, b)?.into_any()),
        Value::ByteArray(b) if b.len() >= DRAIN_MIN => {
            Ok(buffers::drained_bytearray(cx.py, b)?.into_any())
        }
        Value::Tuple(items) if items.iter().any(large) => {
            let items = items
                .into_iter()
                .map(|v| from_owned_value(cx, v))
                .collect::<PyResult<Vec<_>>>()?;
            Ok(PyTuple::new(cx.py, items)?.into_any())
        }
        other => from_value(cx, &other),
    }
}

/// Whether `value` is one `from_owned_value` drains.
fn large(value: &Value) -> bool {
    matches!(value, Value::Bytes(b) | Value::ByteArray(b) if b.len() >= DRAIN_MIN)
}

/// A `PickleBuffers` reply (`Tuple([Bytes(pickle), buffer...])`) as `(pickle, [buffer...])`:
/// the pickle drained into `bytes` if large, each buffer a `ReceivedBuffer` over the memory
/// that arrived.
pub(crate) fn unbox_pickled<'py>(
    py: Python<'py>,
    session: &Session<PyHost>,
    state: &Arc<ConnState>,
    answer: pynto_runtime::Answer<PyHost>,
) -> PyResult<Bound<'py, PyAny>> {
    let pynto_runtime::Answer { value, incoming } = answer;
    let cx = Cx {
        py,
        session,
        state,
        incoming: &incoming,
    };
    let malformed = || {
        errors::protocol_error(
            py,
            "a PickleBuffers reply must be a tuple of bytes: the pickle, then its buffers".into(),
        )
    };
    let Value::Tuple(items) = value else {
        return Err(malformed());
    };
    let mut items = items.into_iter();
    let data = match items.next() {
        Some(data @ Value::Bytes(_)) => from_owned_value(&cx, data)?,
        _ => return Err(malformed()),
    };
    let buffers = pyo3::types::PyList::empty(py);
    for item in items {
        match item {
            Value::Bytes(b) | Value::ByteArray(b) => {
                buffers.append(Bound::new(py, buffers::ReceivedBuffer::new(b))?)?
            }
            _ => return Err(malformed()),
        }
    }
    Ok(PyTuple::new(py, [data, buffers.into_any()])?.into_any())
}

/// A new `bytes` object holding `b`, drained into it (`PyBytes::new_with` would first
/// zero-fill the object, touching every page of it while all of `b` is still resident).
fn drained_bytes(py: Python<'_>, b: Bytes) -> PyResult<Bound<'_, PyBytes>> {
    let len = b.len();
    // SAFETY: PyBytes_FromStringAndSize with a null pointer returns a new bytes object of `len`
    // uninitialized bytes (or null with an exception set); it is filled completely below,
    // before any Python code can see it.
    let object = unsafe {
        let raw =
            pyo3::ffi::PyBytes_FromStringAndSize(std::ptr::null(), len as pyo3::ffi::Py_ssize_t);
        Bound::from_owned_ptr_or_err(py, raw)?.cast_into_unchecked::<PyBytes>()
    };
    // SAFETY: the object's buffer holds `len` bytes and nothing else refers to it yet.
    let dst = unsafe {
        std::slice::from_raw_parts_mut(
            pyo3::ffi::PyBytes_AsString(object.as_ptr()).cast::<std::mem::MaybeUninit<u8>>(),
            len,
        )
    };
    pynto_transport::advise_huge_pages(dst);
    pynto_transport::drain_into(b, dst);
    Ok(object)
}

/// Unbox a protocol value into a Python object.
pub(crate) fn from_value<'py>(cx: &Cx<'_, 'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    let py = cx.py;
    Ok(match value {
        Value::None => py.None().into_bound(py),
        Value::Bool(b) => pyo3::types::PyBool::new(py, *b).to_owned().into_any(),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::BigInt(bytes) => big_int(py, bytes)?,
        Value::Float(f) => PyFloat::new(py, *f).into_any(),
        Value::Complex(re, im) => PyComplex::from_doubles(py, *re, *im).into_any(),
        Value::Str(s) => PyString::new(py, s).into_any(),
        // Shared, so copied rather than drained; still into an object that is not zero-filled
        // first.
        Value::Bytes(b) if b.len() >= DRAIN_MIN => drained_bytes(py, b.clone())?.into_any(),
        Value::Bytes(b) => PyBytes::new(py, b).into_any(),
        Value::Ellipsis => py.Ellipsis().into_bound(py),
        Value::NotImplemented => py.NotImplemented().into_bound(py),
        Value::Slice(parts) => {
            let [a, b, c] = &**parts;
            helpers(py)?.slice.bind(py).call1((
                from_value(cx, a)?,
                from_value(cx, b)?,
                from_value(cx, c)?,
            ))?
        }
        Value::Tuple(items) => PyTuple::new(py, unbox_all(cx, items)?)?.into_any(),
        Value::FrozenSet(items) => PyFrozenSet::new(py, unbox_all(cx, items)?)?.into_any(),
        Value::List(items) => PyList::new(py, unbox_all(cx, items)?)?.into_any(),
        Value::Set(items) => PySet::new(py, unbox_all(cx, items)?)?.into_any(),
        Value::Dict(pairs) => {
            let dict = PyDict::new(py);
            for (k, v) in pairs {
                dict.set_item(from_value(cx, k)?, from_value(cx, v)?)?;
            }
            dict.into_any()
        }
        Value::ByteArray(b) => PyByteArray::new(py, b).into_any(),
        Value::Ref(r) => {
            let handle = cx.incoming.import(r.oid).ok_or_else(|| {
                errors::protocol_error(py, format!("reference {} was not counted", r.oid))
            })?;
            proxy::proxy_for(py, cx.session, cx.state, handle, r.type_id)?
        }
        Value::Standard(standard) => {
            let (name, args) = &**standard;
            rebuild_standard(py, name, PyTuple::new(py, unbox_all(cx, args)?)?)?
        }
        Value::Returned(oid) => cx
            .incoming
            .local(*oid)
            .ok_or_else(|| errors::protocol_error(py, format!("returned object {oid} is unknown")))?
            .bind(py)
            .clone(),
    })
}
