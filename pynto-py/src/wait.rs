//! The one way this module waits for something on behalf of Python: with the GIL released, in
//! slices, checking between slices for a signal (Ctrl-C raises `KeyboardInterrupt` at once)
//! and for the deadline.
//!
//! Two shapes share it. A wait this module runs itself (a pending reply's `wait`, a dial on a
//! pool thread, a stdio server) is [`until`]. A wait the runtime runs (a blocking call, a
//! handshake) slices itself and asks an [`Interrupt`] between slices.

use std::time::{Duration, Instant};

use parking_lot::Mutex;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// The longest a wait goes without looking for signals.
pub(crate) const SLICE: Duration = Duration::from_millis(50);

/// The deadline of a wait of `timeout` seconds from now (`None`: no limit); a timeout that is
/// not a number of seconds >= 0 is a `ValueError`.
pub(crate) fn deadline(timeout: Option<f64>) -> PyResult<Option<Instant>> {
    match timeout {
        None => Ok(None),
        Some(t) => match Duration::try_from_secs_f64(t) {
            Ok(d) => Ok(Some(Instant::now() + d)),
            Err(_) => Err(PyValueError::new_err(format!(
                "timeout must be a number of seconds >= 0, not {t}"
            ))),
        },
    }
}

/// Wait until `step` reports ready or `deadline` passes: `Ok(true)` when ready, `Ok(false)` at
/// the deadline, the exception a signal handler raised otherwise. `step(until)` runs with the
/// GIL released, waits at most until `until`, and says whether what it waits for is here.
pub(crate) fn until(
    py: Python<'_>,
    deadline: Option<Instant>,
    mut step: impl FnMut(Instant) -> bool + Send,
) -> PyResult<bool> {
    loop {
        let now = Instant::now();
        let slice = now + SLICE;
        let until = deadline.map_or(slice, |d| d.min(slice));
        if py.detach(|| step(until)) {
            return Ok(true);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(false);
        }
        py.check_signals()?;
    }
}

/// A signal check for the runtime's own waits: [`Interrupt::stop`] is asked between slices
/// (with the GIL released); it takes the GIL, runs the signal handlers, and keeps the
/// exception one raised, which [`Interrupt::take`] hands to the caller.
#[derive(Default)]
pub(crate) struct Interrupt {
    raised: Mutex<Option<PyErr>>,
}

impl Interrupt {
    /// True if a signal handler raised: stop waiting.
    pub(crate) fn stop(&self) -> bool {
        match Python::attach(|py| py.check_signals()) {
            Ok(()) => false,
            Err(e) => {
                *self.raised.lock() = Some(e);
                true
            }
        }
    }

    /// [`Interrupt::stop`] in the form the runtime's `CallOptions::interrupt` asks for.
    pub(crate) fn check(&self) -> Result<(), pynto_runtime::Error> {
        if self.stop() {
            Err(pynto_runtime::Error::Interrupted("a signal arrived".into()))
        } else {
            Ok(())
        }
    }

    /// The exception a signal handler raised, if one did.
    pub(crate) fn take(&self) -> Option<PyErr> {
        self.raised.lock().take()
    }
}
