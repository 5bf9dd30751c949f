//! Call chains: distributed threads of control, and the park slots their threads wait in.
//!
//! Every request carries the chain of the call that caused it. A thread that waits on an
//! outgoing call registers its chain in the process-wide [`ChainTable`]; a request of that chain
//! arriving on any connection is queued in the waiting thread's [`ParkSlot`] and runs there, in
//! the middle of the wait, like local recursion. Requests of chains nobody here waits on go to
//! the worker pool.
//!
//! **Invariant**: routing a job to a slot and removing a chain from the table happen under the
//! same lock, and a thread leaving its outermost wait moves any job left in its slot to the pool,
//! so no job is ever stranded in a slot nobody waits on.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};
use pynto_proto::ChainId;

use crate::pool::{self, Job};

/// Where one thread waits: for the reply it expects (a [`ParkSlot::wake`]) or for a request of its
/// chain to run ([`ParkSlot::push`]).
#[derive(Default)]
pub(crate) struct ParkSlot {
    state: Mutex<SlotState>,
    cond: Condvar,
    /// While the thread waits for its connection to become readable (it reads for itself),
    /// the way to interrupt that wait when a job arrives for it.
    reading: Mutex<Option<pynto_transport::Interrupter>>,
}

#[derive(Default)]
struct SlotState {
    /// Requests of this thread's chain, waiting to run on it.
    jobs: VecDeque<Job>,
    /// Set by `wake`, cleared by the waiter when it looks: something it waits for may be done.
    woken: bool,
}

/// What a wait returned.
pub(crate) enum Woken {
    /// A request of this thread's chain, to run now.
    Job(Job),
    /// Something the waiter waits for may have happened; it should look.
    Look,
    /// The deadline passed.
    TimedOut,
}

impl ParkSlot {
    /// Queue a request to run on the waiting thread.
    pub(crate) fn push(&self, job: Job) {
        self.state.lock().jobs.push_back(job);
        self.cond.notify_one();
        if let Some(interrupter) = self.reading.lock().as_ref() {
            interrupter.interrupt();
        }
    }

    /// The thread is about to wait for its connection: a job pushed meanwhile interrupts the
    /// wait. False (and nothing set) if a job is queued already.
    pub(crate) fn begin_reading(&self, interrupter: &pynto_transport::Interrupter) -> bool {
        *self.reading.lock() = Some(interrupter.clone());
        if self.state.lock().jobs.is_empty() {
            return true;
        }
        self.end_reading();
        false
    }

    /// The wait for the connection is over.
    pub(crate) fn end_reading(&self) {
        *self.reading.lock() = None;
    }

    /// Tell the waiting thread to look at what it waits for.
    pub(crate) fn wake(&self) {
        self.state.lock().woken = true;
        self.cond.notify_one();
    }

    /// Wait until woken, given a job, or past `deadline`.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> Woken {
        let mut state = self.state.lock();
        loop {
            if let Some(job) = state.jobs.pop_front() {
                return Woken::Job(job);
            }
            if state.woken {
                state.woken = false;
                return Woken::Look;
            }
            match deadline {
                Some(deadline) => {
                    if self.cond.wait_until(&mut state, deadline).timed_out() {
                        if let Some(job) = state.jobs.pop_front() {
                            return Woken::Job(job);
                        }
                        return Woken::TimedOut;
                    }
                }
                None => self.cond.wait(&mut state),
            }
        }
    }

    /// A queued job, if there is one, without waiting.
    pub(crate) fn try_pop(&self) -> Option<Job> {
        self.state.lock().jobs.pop_front()
    }

    /// Forget a pending wake-up (the waiter is about to look anyway).
    pub(crate) fn clear_wake(&self) {
        self.state.lock().woken = false;
    }

    /// Take every queued job (used when the thread stops waiting on its chain).
    fn drain(&self) -> Vec<Job> {
        self.state.lock().jobs.drain(..).collect()
    }
}

thread_local! {
    static SLOT: Arc<ParkSlot> = Arc::new(ParkSlot::default());
    static CHAIN: Cell<Option<ChainId>> = const { Cell::new(None) };
}

/// This thread's park slot.
pub(crate) fn current_slot() -> Arc<ParkSlot> {
    SLOT.with(Arc::clone)
}

/// This thread's chain, minting one the first time the thread calls out.
pub(crate) fn current_chain() -> ChainId {
    CHAIN.with(|c| match c.get() {
        Some(id) => id,
        None => {
            let id = new_chain_id();
            c.set(Some(id));
            id
        }
    })
}

/// Run `f` as part of `chain` (a worker serving a request adopts the request's chain), restoring
/// the thread's previous chain afterwards.
pub(crate) fn with_chain<R>(chain: ChainId, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<ChainId>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CHAIN.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(CHAIN.with(|c| c.replace(Some(chain))));
    f()
}

/// A fresh chain id: a per-process salt in the high half, a counter in the low half, so two
/// processes practically never mint the same id. (A collision would run a request on another
/// waiting thread of the same process: still correct, only not on the expected thread.)
fn new_chain_id() -> ChainId {
    static SALT: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let salt = *SALT.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let mut x = nanos ^ (u64::from(std::process::id()) << 17) ^ 0x9e37_79b9_7f4a_7c15;
        // splitmix64 finaliser: spread the bits.
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    });
    (salt & 0xffff_ffff_0000_0000) | (NEXT.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff)
}

/// The process-wide map from chain to the threads waiting on it.
///
/// Usually one thread waits on a chain, however deeply nested its waits. Two can: a thread's
/// chain goes out with an async call, a pool worker adopts it to serve the peer's callback and
/// makes a blocking call, and meanwhile the first thread makes a blocking call too. Each waiter
/// is listed with its own nesting depth, so one leaving never strands jobs routed for the other.
#[derive(Default)]
pub(crate) struct ChainTable {
    waiting: Mutex<HashMap<ChainId, Waiters>>,
}

/// The threads waiting on one chain: their slots and nesting depths, in the order they began.
type Waiters = Vec<(Arc<ParkSlot>, usize)>;

/// The process's chain table.
pub(crate) fn chain_table() -> &'static ChainTable {
    static TABLE: OnceLock<ChainTable> = OnceLock::new();
    TABLE.get_or_init(ChainTable::default)
}

impl ChainTable {
    /// Register that the current thread, parking in `slot`, waits on `chain` (nested waits
    /// count up).
    pub(crate) fn enter(&'static self, chain: ChainId, slot: &Arc<ParkSlot>) -> ChainGuard {
        let mut waiting = self.waiting.lock();
        let waiters = waiting.entry(chain).or_default();
        match waiters.iter_mut().find(|(s, _)| Arc::ptr_eq(s, slot)) {
            Some(waiter) => waiter.1 += 1,
            None => waiters.push((Arc::clone(slot), 1)),
        }
        ChainGuard {
            table: self,
            chain,
            slot: Arc::clone(slot),
        }
    }

    /// Run `job` on a thread waiting on `chain` (the one that began waiting last), if there is
    /// one; otherwise hand it back.
    pub(crate) fn route(&self, chain: ChainId, job: Job) -> Result<(), Job> {
        let waiting = self.waiting.lock();
        match waiting.get(&chain).and_then(|waiters| waiters.last()) {
            Some((slot, _)) => {
                slot.push(job);
                Ok(())
            }
            None => Err(job),
        }
    }

    /// True if a thread of this process waits on `chain`.
    pub(crate) fn has_waiter(&self, chain: ChainId) -> bool {
        self.waiting
            .lock()
            .get(&chain)
            .is_some_and(|waiters| !waiters.is_empty())
    }

    /// How many chains have a waiting thread (for tests and stats).
    pub(crate) fn len(&self) -> usize {
        self.waiting.lock().len()
    }
}

/// Unregisters a wait on drop; a thread's outermost one hands jobs left in its slot to another
/// waiter of the chain, or to the pool.
pub(crate) struct ChainGuard {
    table: &'static ChainTable,
    chain: ChainId,
    slot: Arc<ParkSlot>,
}

impl Drop for ChainGuard {
    fn drop(&mut self) {
        let leftovers = {
            let mut waiting = self.table.waiting.lock();
            let Some(waiters) = waiting.get_mut(&self.chain) else {
                return;
            };
            let Some(index) = waiters.iter().position(|(s, _)| Arc::ptr_eq(s, &self.slot)) else {
                return;
            };
            waiters[index].1 -= 1;
            if waiters[index].1 > 0 {
                return;
            }
            waiters.remove(index);
            // Under the table lock: no new job can be routed to this slot from now on. A thread
            // waits on one chain at a time, so whatever is queued in its slot is of this chain.
            let leftovers = self.slot.drain();
            if let Some((next, _)) = waiters.last() {
                for job in leftovers {
                    next.push(job);
                }
                return;
            }
            waiting.remove(&self.chain);
            leftovers
        };
        for job in leftovers {
            pool::spawn(job);
        }
    }
}
