//! The process-wide worker pool: runs requests no waiting thread claims, read loops, and the
//! housekeeper's chores.
//!
//! It grows rather than deadlocks: a job submitted while no worker is idle starts a new worker,
//! so requests blocked in calls to each other never starve. Idle workers beyond a small core
//! exit after a while. What bounds it is the number of *requests* served at once, process-wide
//! ([`set_max_workers`]): a request past the bound is refused with `Overloaded` before any
//! thread is given to it (see `reader.rs`). Read loops (one per connection at most) and chores
//! are not requests and are never refused.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// Work for a pool thread (or a thread waiting on a chain): serve one request, run a read loop
/// or a chore. Type-erased so one pool serves sessions of every host.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// Workers kept alive when idle.
const CORE_WORKERS: usize = 2;
/// Stack of a worker: requests may recurse across the wire, as deep as a Python thread's.
const WORKER_STACK: usize = 64 << 20;
/// How long an extra worker idles before it exits.
const IDLE_EXIT: Duration = Duration::from_secs(30);
/// The default bound on requests served at once, process-wide.
pub const DEFAULT_MAX_WORKERS: usize = 512;

static MAX_REQUESTS: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_WORKERS);
static REQUESTS: AtomicUsize = AtomicUsize::new(0);

/// Bound the requests this process serves at once (from every peer together); past it, a new
/// request is refused with `Overloaded`. Callbacks of this process's own waiting calls run on
/// the waiting threads and are not counted. At least 1.
pub fn set_max_workers(max: usize) {
    MAX_REQUESTS.store(max.max(1), Ordering::Relaxed);
}

/// The current bound on requests served at once.
pub fn max_workers() -> usize {
    MAX_REQUESTS.load(Ordering::Relaxed)
}

/// The right to serve one request; the count goes down when it is dropped.
pub(crate) struct Permit(());

impl Permit {
    /// A permit, unless the process already serves as many requests as it may.
    pub(crate) fn try_new() -> Option<Permit> {
        let max = MAX_REQUESTS.load(Ordering::Relaxed);
        REQUESTS
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Permit(()))
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        REQUESTS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Run a chore (a write, a close, a read loop) on a pool thread. Never refused.
pub(crate) fn spawn_chore(job: Job) {
    spawn(job)
}

struct Pool {
    state: Mutex<PoolState>,
    cond: Condvar,
}

#[derive(Default)]
struct PoolState {
    jobs: VecDeque<Job>,
    idle: usize,
    threads: usize,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        state: Mutex::new(PoolState::default()),
        cond: Condvar::new(),
    })
}

/// Run `job` on a worker thread of the process-wide pool, starting one if none is idle.
pub fn spawn(job: Box<dyn FnOnce() + Send>) {
    let pool = pool();
    let mut state = pool.state.lock();
    state.jobs.push_back(job);
    if state.idle >= state.jobs.len() {
        drop(state);
        pool.cond.notify_one();
        return;
    }
    state.threads += 1;
    drop(state);
    let started = std::thread::Builder::new()
        .name("pynto-worker".into())
        .stack_size(WORKER_STACK)
        .spawn(worker);
    if started.is_err() {
        // Out of threads: the queued job waits for a busy worker instead.
        pool.state.lock().threads -= 1;
    }
}

fn worker() {
    let pool = pool();
    let mut state = pool.state.lock();
    loop {
        if let Some(job) = state.jobs.pop_front() {
            drop(state);
            job();
            state = pool.state.lock();
            continue;
        }
        state.idle += 1;
        let timed_out = pool.cond.wait_for(&mut state, IDLE_EXIT).timed_out();
        state.idle -= 1;
        if timed_out && state.jobs.is_empty() && state.threads > CORE_WORKERS {
            state.threads -= 1;
            return;
        }
    }
}

/// Worker threads alive now (for stats and tests).
pub fn worker_count() -> usize {
    pool().state.lock().threads
}
