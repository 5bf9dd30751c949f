//! The process-wide worker pool: runs requests no waiting thread claims.
//!
//! It grows rather than deadlocks: a job submitted while no worker is idle starts a new worker,
//! so requests blocked in calls to each other never starve. Idle workers beyond a small core
//! exit after a while.

use std::collections::VecDeque;
use std::sync::OnceLock;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::chains::Job;

/// Workers kept alive when idle.
const CORE_WORKERS: usize = 2;
/// Stack of a worker: requests may recurse across the wire, as deep as a Python thread's.
const WORKER_STACK: usize = 64 << 20;
/// How long an extra worker idles before it exits.
const IDLE_EXIT: Duration = Duration::from_secs(30);

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
