//! The interpreter's lifetime as seen from pynto's own threads.
//!
//! The runtime's workers, the callback thread and the accept loop are Rust threads that enter
//! Python to serve requests. Once the interpreter starts shutting down they must not: entering
//! a finalizing interpreter from a foreign thread panics or hangs. `pynto` registers an
//! `atexit` hook that marks the interpreter as exiting; from then on these threads skip Python
//! work (requests fail with "the interpreter is shutting down").

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::prelude::*;

static EXITING: AtomicBool = AtomicBool::new(false);

/// Called from `atexit`: pynto's threads stop entering Python.
#[pyfunction]
pub(crate) fn _mark_exiting() {
    EXITING.store(true, Ordering::Release);
}

/// Run `f` with the GIL on one of pynto's own threads, unless the interpreter is gone or going.
pub(crate) fn with_python<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> Option<R> {
    // SAFETY: Py_IsInitialized may be called at any time, from any thread.
    if EXITING.load(Ordering::Acquire) || unsafe { pyo3::ffi::Py_IsInitialized() } == 0 {
        return None;
    }
    keep_thread_state();
    Some(Python::attach(f))
}

/// Keep a Python thread state on this (runtime-owned) thread for its whole life, so each
/// request served here does not create and destroy one (about 5 us each time).
fn keep_thread_state() {
    thread_local! {
        static KEPT: Cell<bool> = const { Cell::new(false) };
    }
    KEPT.with(|kept| {
        if !kept.get() {
            kept.set(true);
            // SAFETY: PyGILState_Ensure on a thread without a thread state creates one and takes
            // the GIL; PyEval_SaveThread releases the GIL and keeps the state. Later
            // `Python::attach` calls on this thread find it and reuse it.
            unsafe {
                pyo3::ffi::PyGILState_Ensure();
                pyo3::ffi::PyEval_SaveThread();
            }
        }
    });
}
