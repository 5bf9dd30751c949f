//! Large buffers crossing by value without copies: an outgoing value's bytes read straight from
//! the Python object that exports them (a `pickle.PickleBuffer` over a numpy array, a
//! `bytearray` operand), and received buffers handed to Python as they arrived
//! (`ReceivedBuffer`, what `pickle.loads(..., buffers=...)` gets in `obtain`) or drained into a
//! `bytearray`.

use bytes::{Bytes, BytesMut};
use pyo3::buffer::PyUntypedBuffer;
use pyo3::prelude::*;
use pyo3::types::PyByteArray;

use crate::helpers::helpers;

/// The memory of a Python object exporting a contiguous buffer, kept exported for as long as
/// any `Bytes` over it lives: the writer reads it in place (writev), and an exporter that
/// refuses to resize while exported (`bytearray`, numpy) keeps it where it is meanwhile.
struct Held {
    /// A memoryview of the exporter: holding it holds the export. Dropped without the GIL (on
    /// the thread that wrote the frame), its release is deferred to PyO3's reference pool.
    _view: Py<PyAny>,
    ptr: *const u8,
    len: usize,
}

// SAFETY: `ptr` points into memory the memoryview keeps exported and in place until `Held` is
// dropped; it is only read, from whichever thread writes the frame (the exporter's owner may
// write to it meanwhile, as it may to a `bytes` buffer it shares: the peer then gets some mix,
// never memory outside the buffer).
unsafe impl Send for Held {}
// SAFETY: as above; `Held` itself is never mutated.
unsafe impl Sync for Held {}

impl AsRef<[u8]> for Held {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `ptr`/`len` describe the exported buffer, alive while `_view` is.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// The bytes `obj` exports, shared without a copy if they are contiguous, and whether they are
/// read-only. A `PickleBuffer` is taken in its raw (byte) form, so a Fortran-ordered array's
/// memory is taken as it lies. `None` if `obj` exports a non-contiguous buffer.
pub(crate) fn held(obj: &Bound<'_, PyAny>) -> PyResult<Option<(Bytes, bool)>> {
    let py = obj.py();
    let h = helpers(py)?;
    let view = if obj.get_type().is(h.pickle_buffer.bind(py)) {
        match obj.call_method0("raw") {
            Ok(view) => view,
            // Neither C- nor Fortran-contiguous.
            Err(e) if e.is_instance_of::<pyo3::exceptions::PyBufferError>(py) => return Ok(None),
            Err(e) => return Err(e),
        }
    } else {
        h.memoryview.bind(py).call1((obj,))?
    };
    let buffer = PyUntypedBuffer::get(&view)?;
    if !buffer.is_c_contiguous() {
        return Ok(None);
    }
    let (ptr, len, readonly) = (
        buffer.buf_ptr().cast::<u8>().cast_const(),
        buffer.len_bytes(),
        buffer.readonly(),
    );
    buffer.release(py);
    let held = Held {
        _view: view.unbind(),
        ptr,
        len,
    };
    Ok(Some((Bytes::from_owner(held), readonly)))
}

/// The bytes of `obj`'s buffer in C order, copied (for a non-contiguous exporter).
pub(crate) fn copied(obj: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    let py = obj.py();
    let view = helpers(py)?.memoryview.bind(py).call1((obj,))?;
    let data = view.call_method0("tobytes")?;
    Ok(Bytes::copy_from_slice(
        data.cast::<pyo3::types::PyBytes>()?.as_bytes(),
    ))
}

/// A received buffer exposed to Python in place, writable: what `obtain` hands
/// `pickle.loads(..., buffers=...)`, so an array rebuilt over it shares the memory that arrived
/// (and is writable, like one unpickled locally).
#[pyclass(frozen, module = "pynto._pynto")]
pub(crate) struct ReceivedBuffer {
    ptr: *mut u8,
    len: usize,
    /// Owns the memory `ptr` points into; never resized or touched from Rust again.
    _data: BytesMut,
}

// SAFETY: the memory is owned by `_data`, which is never accessed after construction; Python
// code reads and writes it through the buffer protocol under the interpreter's own rules, as
// it does a `bytearray`'s.
unsafe impl Send for ReceivedBuffer {}
// SAFETY: as above.
unsafe impl Sync for ReceivedBuffer {}

impl ReceivedBuffer {
    /// `data` in place when this side holds its only handle (a received attachment does);
    /// copied once otherwise.
    pub(crate) fn new(data: Bytes) -> ReceivedBuffer {
        let mut data = match data.try_into_mut() {
            Ok(data) => data,
            Err(shared) => BytesMut::from(&shared[..]),
        };
        ReceivedBuffer {
            ptr: data.as_mut_ptr(),
            len: data.len(),
            _data: data,
        }
    }
}

#[pymethods]
impl ReceivedBuffer {
    /// The buffer protocol: one writable, contiguous run of unsigned bytes.
    ///
    /// # Safety
    /// `view` is the `Py_buffer` the interpreter passes to `bf_getbuffer`.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut pyo3::ffi::Py_buffer,
        flags: std::os::raw::c_int,
    ) -> PyResult<()> {
        let this = slf.get();
        let (ptr, len) = (this.ptr, this.len);
        // SAFETY: `view` is valid for writing; `ptr`/`len` describe memory `slf` owns, kept
        // alive by the reference PyBuffer_FillInfo stores in the view.
        let rc = unsafe {
            pyo3::ffi::PyBuffer_FillInfo(
                view,
                slf.as_ptr(),
                ptr.cast(),
                len as pyo3::ffi::Py_ssize_t,
                0,
                flags,
            )
        };
        if rc < 0 {
            return Err(PyErr::fetch(slf.py()));
        }
        Ok(())
    }

    fn __len__(&self) -> usize {
        self.len
    }

    fn __repr__(&self) -> String {
        format!("<pynto received buffer of {} bytes>", self.len)
    }
}

/// The size from which a received `bytearray` is drained into Python (the source's pages
/// given back as the copy passes) rather than copied and then freed.
pub(crate) const DRAIN_MIN: usize = 4 << 20;

/// A new `bytearray` holding `b`, drained into it: a received large value then peaks at about
/// its own size, not twice it.
pub(crate) fn drained_bytearray(py: Python<'_>, b: Bytes) -> PyResult<Bound<'_, PyByteArray>> {
    let len = b.len();
    // SAFETY: PyByteArray_FromStringAndSize with a null pointer returns a new bytearray of
    // `len` uninitialized bytes (or null with an exception set); it is filled completely
    // below, before any Python code can see it.
    let object = unsafe {
        let raw = pyo3::ffi::PyByteArray_FromStringAndSize(
            std::ptr::null(),
            len as pyo3::ffi::Py_ssize_t,
        );
        Bound::from_owned_ptr_or_err(py, raw)?.cast_into_unchecked::<PyByteArray>()
    };
    if len == 0 {
        return Ok(object);
    }
    // SAFETY: the object's buffer holds `len` bytes and nothing else refers to it yet.
    let dst = unsafe {
        std::slice::from_raw_parts_mut(
            pyo3::ffi::PyByteArray_AsString(object.as_ptr()).cast::<std::mem::MaybeUninit<u8>>(),
            len,
        )
    };
    pynto_transport::advise_huge_pages(dst);
    pynto_transport::drain_into(b, dst);
    Ok(object)
}
