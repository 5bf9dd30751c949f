//! The interpreter's lifetime as seen from pynto's own threads.
//!
//! The runtime's workers, the callback thread and the accept loop are Rust threads that enter
//! Python to serve requests. Once the interpreter starts shutting down they must not: entering
//! a finalizing interpreter from a foreign thread panics or hangs. `pynto` registers an
//! `atexit` hook that marks the interpreter as exiting; from then on these threads skip Python
//! work (requests fail with "the interpreter is shutting down").

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pyo3::prelude::*;

static EXITING: AtomicBool = AtomicBool::new(false);
/// pynto threads inside `with_python` now.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
/// How long `atexit` waits for pynto threads to leave the interpreter.
const EXIT_GRACE: Duration = Duration::from_secs(3);

/// Called from `atexit` (before the interpreter starts finalizing): pynto's threads stop
/// entering Python, and those inside are given a moment to leave. A thread still inside when
/// finalization starts would be ended by the interpreter while in Rust frames, aborting the
/// process.
#[pyfunction]
pub(crate) fn _mark_exiting(py: Python<'_>) {
    EXITING.store(true, Ordering::SeqCst);
    py.detach(|| {
        let until = Instant::now() + EXIT_GRACE;
        while ACTIVE.load(Ordering::SeqCst) > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

/// Run `f` with the GIL on one of pynto's own threads, unless the interpreter is gone or going.
pub(crate) fn with_python<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> Option<R> {
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            ACTIVE.fetch_sub(1, Ordering::SeqCst);
        }
    }
    // Count in first, then look: `_mark_exiting` either sees us counted or we see the flag.
    ACTIVE.fetch_add(1, Ordering::SeqCst);
    let _leave = Leave;
    // SAFETY: Py_IsInitialized may be called at any time, from any thread.
    if EXITING.load(Ordering::SeqCst) || unsafe { pyo3::ffi::Py_IsInitialized() } == 0 {
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
