//! Calls that do not block: a pending reply the caller collects later, by waiting, by callback,
//! or by awaiting it in asyncio.
//!
//! The runtime signals completion on whichever thread reads the reply off the connection (the
//! runtime's reading role: a caller waiting for its own reply, or a read loop on a pool thread;
//! see pynto-runtime's `reader.rs`), and that thread may hold no GIL and must not wait for it.
//! So the signal only flips a flag, wakes waiters, writes to the event fd an asyncio loop
//! watches (`loop.add_reader`), and queues the reply for the callback runner, a thread of this
//! module that calls Python callbacks with the GIL and fails timed calls at their deadline.
//! Unboxing happens on whoever takes the value.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};
use pynto_runtime::{Boxer, Session};
use pynto_runtime::{Error, ReplyHandle};
use pyo3::prelude::*;
use pyo3::pyclass::{PyTraverseError, PyVisit};

use crate::boxing;
use crate::errors;
use crate::state::{ConnState, PyHost};
use crate::wait;

/// The shared state of one pending reply.
struct Shared {
    handle: Mutex<Option<ReplyHandle<PyHost>>>,
    /// The reply is here (or the call timed out): `take` will not block.
    ready: Mutex<bool>,
    cond: Condvar,
    timed_out: AtomicBool,
    /// The event loop's waker to tell when ready, and this reply's token there.
    waker: Mutex<Option<(Arc<WakerShared>, u64)>>,
    /// Python callable run by the callback runner when ready.
    on_ready: Mutex<Option<Py<PyAny>>>,
    deadline: Option<Instant>,
}

impl Shared {
    /// Mark ready and tell everyone who listens. Runs on the thread that read the reply (or
    /// the callback runner, at a deadline): no GIL.
    fn signal(self: &Arc<Self>) {
        {
            let mut ready = self.ready.lock();
            if *ready {
                return;
            }
            *ready = true;
        }
        self.cond.notify_all();
        if let Some((waker, token)) = self.waker.lock().as_ref() {
            waker.ready(*token);
        }
        if self.on_ready.lock().is_some() {
            runner().send(Job::Ready(Arc::clone(self)));
        }
    }
}

/// Wake an eventfd (8-byte counter write). Errors (a full counter, a closed fd) are harmless:
/// the loop drains and rescans anyway.
fn poke(fd: RawFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a valid u64 to a descriptor; no memory is shared.
    unsafe {
        libc::write(fd, (&one as *const u64).cast(), 8);
    }
}

/// One event loop's side of completions: an event fd the loop watches and the tokens of the
/// replies that became ready since it last looked, so a wake-up costs what is ready, not what
/// is pending.
struct WakerShared {
    fd: std::os::fd::OwnedFd,
    ready: Mutex<Vec<u64>>,
}

impl WakerShared {
    /// Queue `token` and wake the loop (only when the queue was empty: one wake-up is enough).
    fn ready(&self, token: u64) {
        let first = {
            let mut ready = self.ready.lock();
            ready.push(token);
            ready.len() == 1
        };
        if first {
            poke(std::os::fd::AsRawFd::as_raw_fd(&self.fd));
        }
    }
}

/// An event loop's waker (`pynto._async` makes one per loop and watches `fd` with
/// `loop.add_reader`).
#[pyclass(frozen, module = "pynto._pynto")]
pub struct LoopWaker {
    shared: Arc<WakerShared>,
}

#[pymethods]
impl LoopWaker {
    #[new]
    fn new() -> PyResult<LoopWaker> {
        // SAFETY: eventfd returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        Ok(LoopWaker {
            shared: Arc::new(WakerShared {
                fd,
                ready: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The event fd to watch.
    #[getter]
    fn fd(&self) -> RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.shared.fd)
    }

    /// The tokens of the replies ready since the last call (and reset the event fd).
    fn take(&self) -> Vec<u64> {
        let mut counter: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64 from a non-blocking event fd we own.
        unsafe {
            libc::read(
                std::os::fd::AsRawFd::as_raw_fd(&self.shared.fd),
                (&mut counter as *mut u64).cast(),
                8,
            );
        }
        std::mem::take(&mut *self.shared.ready.lock())
    }
}

enum Job {
    Ready(Arc<Shared>),
    Deadline(Weak<Shared>),
}

/// The callback runner: calls `on_ready` callbacks with the GIL, and times out timed calls.
struct Runner {
    jobs: Mutex<Sender<Job>>,
}

impl Runner {
    fn send(&self, job: Job) {
        let _ = self.jobs.lock().send(job);
    }
}

fn runner() -> &'static Runner {
    static RUNNER: OnceLock<Runner> = OnceLock::new();
    RUNNER.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        std::thread::Builder::new()
            .name("pynto-callbacks".into())
            .spawn(move || {
                let mut deadlines: Vec<Weak<Shared>> = Vec::new();
                loop {
                    let next = deadlines
                        .iter()
                        .filter_map(|w| w.upgrade().and_then(|s| s.deadline))
                        .min();
                    let job = match next {
                        Some(at) => {
                            match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                                Ok(job) => Some(job),
                                Err(RecvTimeoutError::Timeout) => None,
                                Err(RecvTimeoutError::Disconnected) => return,
                            }
                        }
                        None => match rx.recv() {
                            Ok(job) => Some(job),
                            Err(_) => return,
                        },
                    };
                    match job {
                        Some(Job::Ready(shared)) => fire(&shared),
                        Some(Job::Deadline(w)) => deadlines.push(w),
                        None => {}
                    }
                    let now = Instant::now();
                    deadlines.retain(|w| match w.upgrade() {
                        Some(s) if s.deadline.is_some_and(|d| d <= now) => {
                            expire(&s);
                            false
                        }
                        Some(s) => !*s.ready.lock(),
                        None => false,
                    });
                }
            })
            .expect("start the pynto callback thread");
        Runner {
            jobs: Mutex::new(tx),
        }
    })
}

/// A timed call ran out of time: cancel it on the peer and fail it with Timeout.
fn expire(shared: &Arc<Shared>) {
    if *shared.ready.lock() {
        return;
    }
    shared.timed_out.store(true, Ordering::Release);
    if let Some(handle) = shared.handle.lock().as_mut() {
        handle.cancel();
    }
    shared.signal();
}

fn fire(shared: &Arc<Shared>) {
    let callback = shared.on_ready.lock().take();
    if let Some(callback) = callback {
        crate::interp::with_python(|py| {
            if let Err(e) = callback.call0(py) {
                e.write_unraisable(py, None);
            }
        });
    }
}

/// A reply that will arrive later. The Python class `pynto.AsyncResult` wraps it.
#[pyclass(frozen, module = "pynto._pynto")]
pub struct PendingReply {
    shared: Arc<Shared>,
    session: Session<PyHost>,
    state: Arc<ConnState>,
    /// The Python connection object: kept open while its reply is pending. (`None` once the
    /// garbage collector has cleared this reply.)
    conn: Mutex<Option<Py<PyAny>>>,
}

impl PendingReply {
    /// Send a request built by `build` without waiting; `timeout` fails it with Timeout.
    pub(crate) fn start(
        py: Python<'_>,
        conn: Option<Py<PyAny>>,
        session: &Session<PyHost>,
        state: &Arc<ConnState>,
        target: pynto_proto::Target,
        timeout: Option<f64>,
        build: impl FnOnce(&Arc<ConnState>, &mut Boxer<'_, PyHost>) -> PyResult<pynto_proto::Op>,
    ) -> PyResult<PendingReply> {
        let mut boxer = session.boxer();
        let op = build(state, &mut boxer)?;
        let deadline = wait::deadline(timeout)?;
        let shared = Arc::new(Shared {
            handle: Mutex::new(None),
            ready: Mutex::new(false),
            cond: Condvar::new(),
            timed_out: AtomicBool::new(false),
            waker: Mutex::new(None),
            on_ready: Mutex::new(None),
            deadline,
        });
        let weak = Arc::downgrade(&shared);
        let hook = Box::new(move || {
            if let Some(shared) = weak.upgrade() {
                shared.signal();
            }
        });
        let rebuild = state.policy.rebuild_exceptions;
        let handle = session
            .request_with_hook(target, op, boxer, hook)
            .map_err(|e| errors::to_py(py, e, rebuild))?;
        *shared.handle.lock() = Some(handle);
        if deadline.is_some() {
            runner().send(Job::Deadline(Arc::downgrade(&shared)));
        }
        Ok(PendingReply {
            shared,
            session: session.clone(),
            state: Arc::clone(state),
            conn: Mutex::new(conn),
        })
    }
}

#[pymethods]
impl PendingReply {
    /// True once the reply (or failure, or timeout) is here.
    #[getter]
    fn ready(&self) -> bool {
        *self.shared.ready.lock()
    }

    /// Wait until ready, at most `timeout` seconds (None: no limit). True if ready.
    #[pyo3(signature = (timeout=None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        // A negative timeout waits not at all; an endless one, as long as it takes.
        let timeout = timeout.map(|t| t.max(0.0)).filter(|t| t.is_finite());
        let shared = &self.shared;
        wait::until(py, wait::deadline(timeout)?, |until| {
            let mut ready = shared.ready.lock();
            if !*ready {
                shared.cond.wait_until(&mut ready, until);
            }
            *ready
        })
    }

    /// The value, or the remote error raised; call once, when ready.
    fn take<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        if self.shared.timed_out.load(Ordering::Acquire) {
            return Err(errors::to_py(py, Error::Timeout, false));
        }
        let answer = self
            .shared
            .handle
            .lock()
            .as_mut()
            .and_then(|h| h.take())
            .ok_or_else(|| {
                errors::protocol_error(py, "the reply was taken already, or is not here yet".into())
            })?;
        boxing::unbox_answer(py, &self.session, &self.state, answer)
    }

    /// Tell `waker` (an event loop's) with `token` when ready (now, if ready already).
    fn set_waker(&self, waker: &LoopWaker, token: u64) {
        *self.shared.waker.lock() = Some((Arc::clone(&waker.shared), token));
        if *self.shared.ready.lock() {
            waker.shared.ready(token);
        }
    }

    /// Call `callback()` on pynto's callback thread when ready (at once if ready already).
    fn set_on_ready(&self, py: Python<'_>, callback: Py<PyAny>) -> PyResult<()> {
        let replaced = self.shared.on_ready.lock().replace(callback);
        drop(replaced);
        if *self.shared.ready.lock() {
            // Ready before the callback was set: run it now, here.
            if let Some(callback) = self.shared.on_ready.lock().take() {
                callback.call0(py)?;
            }
        }
        Ok(())
    }

    /// Stop waiting; the peer is told to cancel the call.
    fn cancel(&self) {
        if let Some(handle) = self.shared.handle.lock().as_mut() {
            handle.cancel();
        }
    }

    /// The request's sequence number (for diagnostics).
    #[getter]
    fn seq(&self) -> u64 {
        self.shared.handle.lock().as_ref().map_or(0, |h| h.seq())
    }

    /// The connection and the callback not yet run.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some(conn) = self.conn.try_lock() {
            visit.call(conn.as_ref())?;
        }
        if let Some(callback) = self.shared.on_ready.try_lock() {
            visit.call(callback.as_ref())?;
        }
        Ok(())
    }

    /// Let go of both (dropped once the locks are released: dropping can run Python code).
    fn __clear__(&self) {
        let conn = self.conn.try_lock().and_then(|mut c| c.take());
        let callback = self.shared.on_ready.try_lock().and_then(|mut c| c.take());
        drop((conn, callback));
    }
}
