//! Ctrl-C in `pynto connect`: SIGINT sets a flag instead of ending the process, and a call
//! waiting for its reply checks the flag (every poll interval, 100 ms) and gives up with
//! [`Error::Interrupted`]. The runtime then sends the peer a Cancel for that request; the
//! session stays open for the next statement.
//!
//! While rustyline reads a line the terminal is in raw mode, so Ctrl-C there is a key, not a
//! signal (rustyline reports it as `Interrupted` and the prompt starts over).

use std::sync::atomic::{AtomicBool, Ordering};

use pynto_runtime::Error;

/// Set by the SIGINT handler; taken by [`check`].
static PENDING: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    PENDING.store(true, Ordering::SeqCst);
}

/// Catch SIGINT from now on (the process no longer dies of Ctrl-C).
pub fn install() {
    let handler: extern "C" fn(libc::c_int) = on_sigint;
    // SAFETY: the handler only stores to an atomic; glibc's `signal` installs it with
    // SA_RESTART, so interrupted reads and writes resume.
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
    }
}

/// Forget a Ctrl-C that arrived while no call waited.
pub fn clear() {
    PENDING.store(false, Ordering::SeqCst);
}

/// `Err(Interrupted)` once for each Ctrl-C (the evaluator's interrupt hook).
pub fn check() -> Result<(), Error> {
    if PENDING.swap(false, Ordering::SeqCst) {
        Err(Error::Interrupted(
            "KeyboardInterrupt: the call was cancelled".into(),
        ))
    } else {
        Ok(())
    }
}
