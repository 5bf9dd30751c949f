//! Calls out: the table of this side's requests waiting for their replies.
//!
//! A call is registered (and given its sequence number) before its request is written, so its
//! reply can never arrive unseen; the reader delivers each reply to its waiter and wakes it; a
//! caller that stops waiting abandons its entry; closing the session fails every entry left.
//! The table is also what liveness asks "do calls wait?": only then is a silent peer pinged.
//!
//! Generic over the reply `R` (the session's `Result<Answer, Error>`), so it knows nothing of
//! hosts or values.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Waker;

use futures::task::AtomicWaker;
use parking_lot::Mutex;
use pynto_proto::Seq;

use crate::chains::ParkSlot;

/// How the caller is told its reply arrived.
pub(crate) enum Wake {
    /// A thread parked in its slot.
    Slot(Arc<ParkSlot>),
    /// An async task.
    Task(AtomicWaker),
    /// A host hook (e.g. an event fd an event loop watches). Runs on whichever thread reads the
    /// reply, while it holds the reader: it must be quick and must not touch the host's
    /// interpreter.
    Hook(Box<dyn Fn() + Send + Sync>),
}

/// One outgoing call waiting for its reply.
pub(crate) struct Pending<R> {
    result: Mutex<Option<R>>,
    wake: Wake,
}

impl<R> Pending<R> {
    pub(crate) fn new(wake: Wake) -> Arc<Self> {
        Arc::new(Pending {
            result: Mutex::new(None),
            wake,
        })
    }

    /// Store the outcome and wake the caller; true if the caller is a blocking (parked) one.
    fn complete(&self, result: R) -> bool {
        *self.result.lock() = Some(result);
        match &self.wake {
            Wake::Slot(slot) => {
                slot.wake();
                true
            }
            Wake::Task(waker) => {
                waker.wake();
                false
            }
            Wake::Hook(hook) => {
                hook();
                false
            }
        }
    }

    /// The outcome, once (it is taken).
    pub(crate) fn take(&self) -> Option<R> {
        self.result.lock().take()
    }

    /// True once the outcome is here (and not yet taken).
    pub(crate) fn is_done(&self) -> bool {
        self.result.lock().is_some()
    }

    /// An async caller polls: wake `waker` when the outcome arrives.
    pub(crate) fn register(&self, waker: &Waker) {
        if let Wake::Task(task) = &self.wake {
            task.register(waker);
        }
    }
}

/// The calls of one session waiting for replies, by sequence number.
pub(crate) struct CallsOut<R> {
    next_seq: AtomicU64,
    pending: Mutex<HashMap<Seq, Arc<Pending<R>>>>,
    requests_sent: AtomicU64,
}

impl<R> Default for CallsOut<R> {
    fn default() -> Self {
        CallsOut {
            // 0 is the liveness ping's.
            next_seq: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            requests_sent: AtomicU64::new(0),
        }
    }
}

impl<R> CallsOut<R> {
    /// Register `pending` under a fresh sequence number, before its request is written.
    pub(crate) fn register(&self, pending: &Arc<Pending<R>>) -> Seq {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        self.pending.lock().insert(seq, Arc::clone(pending));
        seq
    }

    /// A registered request was written.
    pub(crate) fn sent(&self) {
        self.requests_sent.fetch_add(1, Ordering::Relaxed);
    }

    /// The request of `seq` could not be written: nothing will answer it.
    pub(crate) fn unsent(&self, seq: Seq) {
        self.pending.lock().remove(&seq);
    }

    /// Hand the reply to `seq` to its caller and wake it; true if a blocking caller was woken.
    /// A reply nobody waits for any more (timed out, cancelled) is dropped.
    pub(crate) fn deliver(&self, seq: Seq, result: R) -> bool {
        let pending = self.pending.lock().remove(&seq);
        pending.is_some_and(|pending| pending.complete(result))
    }

    /// The caller of `seq` stops waiting; true if it was still waiting (tell the peer).
    pub(crate) fn abandon(&self, seq: Seq) -> bool {
        self.pending.lock().remove(&seq).is_some()
    }

    /// The session closed: every call still waiting gets `outcome()`.
    pub(crate) fn fail_all(&self, outcome: impl Fn() -> R) {
        let pending: Vec<_> = self.pending.lock().drain().map(|(_, p)| p).collect();
        for call in pending {
            call.complete(outcome());
        }
    }

    /// True if calls wait for replies (or the table is busy, which means they may). Never
    /// waits for the table's lock: the housekeeper asks.
    pub(crate) fn calls_wait(&self) -> bool {
        self.pending.try_lock().is_none_or(|p| !p.is_empty())
    }

    /// Requests written so far.
    pub(crate) fn requests_sent(&self) -> u64 {
        self.requests_sent.load(Ordering::Relaxed)
    }
}
