//! Dispatch: the table of the peer's requests this side serves.
//!
//! A request is entered when it is accepted, within the session's bound on requests in flight,
//! with a flag a `Cancel` from the peer sets; it leaves when its reply is written. Requests
//! that arrive before the session starts serving (`Config::hold_requests`) are held here and
//! handed out by `start_serving`.
//!
//! [`Work`] is a request that arrived for no waiting thread. It is generic over the host's
//! object and the references the request carried, so this table knows nothing of hosts; who
//! runs it, and how, is `reader.rs`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use pynto_proto::{ChainId, Op, Seq};

use crate::pool::Permit;

/// A request that arrived for no waiting thread: whoever read it runs it or hands it on.
pub(crate) struct Work<O, I> {
    pub(crate) seq: Seq,
    pub(crate) chain: ChainId,
    /// The target.
    pub(crate) object: O,
    pub(crate) op: Op,
    /// The references the request carried.
    pub(crate) incoming: I,
    /// Counts it against the process's bound on requests served at once (`None` for a
    /// callback of a waiting call, which runs on the waiting thread).
    pub(crate) permit: Option<Permit>,
}

/// The requests one session serves.
pub(crate) struct Dispatch<W> {
    /// Requests being served, with their cancelled flags.
    serving: Mutex<HashMap<Seq, Arc<AtomicBool>>>,
    max_in_flight: usize,
    /// Requests that arrived before `start_serving` (`Some` until then).
    held: Mutex<Option<Vec<W>>>,
    requests_served: AtomicU64,
    cancels_received: AtomicU64,
}

impl<W> Dispatch<W> {
    /// A table serving at most `max_in_flight` requests at once; holding requests until
    /// [`Dispatch::start_serving`] if `hold`.
    pub(crate) fn new(max_in_flight: u32, hold: bool) -> Self {
        Dispatch {
            serving: Mutex::new(HashMap::new()),
            max_in_flight: max_in_flight as usize,
            held: Mutex::new(hold.then(Vec::new)),
            requests_served: AtomicU64::new(0),
            cancels_received: AtomicU64::new(0),
        }
    }

    /// Enter request `seq`; `Err(max)` if `max` requests are in flight already.
    pub(crate) fn begin(&self, seq: Seq) -> Result<(), usize> {
        let mut serving = self.serving.lock();
        if serving.len() >= self.max_in_flight {
            return Err(self.max_in_flight);
        }
        serving.insert(seq, Arc::new(AtomicBool::new(false)));
        Ok(())
    }

    /// Request `seq` was refused after it was entered: it leaves unserved.
    pub(crate) fn withdraw(&self, seq: Seq) {
        self.serving.lock().remove(&seq);
    }

    /// Request `seq` was served (its reply is about to be written).
    pub(crate) fn end(&self, seq: Seq) {
        self.serving.lock().remove(&seq);
        self.requests_served.fetch_add(1, Ordering::Relaxed);
    }

    /// The peer cancelled request `seq`.
    pub(crate) fn cancel(&self, seq: Seq) {
        self.cancels_received.fetch_add(1, Ordering::Relaxed);
        if let Some(flag) = self.serving.lock().get(&seq) {
            flag.store(true, Ordering::Release);
        }
    }

    /// Hold `work` if the session is not serving yet; hand it back if it is.
    pub(crate) fn hold(&self, work: W) -> Result<(), W> {
        match self.held.lock().as_mut() {
            Some(held) => {
                held.push(work);
                Ok(())
            }
            None => Err(work),
        }
    }

    /// True until [`Dispatch::start_serving`] when requests are held.
    pub(crate) fn holding(&self) -> bool {
        self.held.lock().is_some()
    }

    /// Serve from now on: the requests held so far, to run. Idempotent.
    pub(crate) fn start_serving(&self) -> Vec<W> {
        self.held.lock().take().unwrap_or_default()
    }

    /// Requests served so far.
    pub(crate) fn requests_served(&self) -> u64 {
        self.requests_served.load(Ordering::Relaxed)
    }

    /// `Cancel` messages received so far.
    pub(crate) fn cancels_received(&self) -> u64 {
        self.cancels_received.load(Ordering::Relaxed)
    }
}
