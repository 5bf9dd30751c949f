//! Outgoing calls: register the waiter, write the request from the caller's thread, then wait
//! (parked, serving requests of the caller's chain) or hand back a future.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::task::AtomicWaker;
use pynto_proto::{ChainId, Message, Op, Request, Seq, Target};

use crate::calls::{Pending, Wake};
use crate::chains::{self, ParkSlot, Woken};
use crate::error::Error;
use crate::host::{Answer, Boxer, Host, Inner, Reply, Session};
use crate::reader::{self, Event};

/// Per-call options of a blocking call.
#[derive(Default)]
pub struct CallOptions<'a> {
    /// Overrides the session's call timeout; `Some(None)` waits without limit.
    pub timeout: Option<Option<Duration>>,
    /// Called every poll interval while waiting; an `Err` abandons the call with that error
    /// (bindings check for Ctrl-C here).
    pub interrupt: Option<&'a (dyn Fn() -> Result<(), Error> + Sync)>,
}

impl<H: Host> Session<H> {
    /// Send `op` to `target` and wait for the reply on this thread. While it waits, requests of
    /// this thread's chain (callbacks) run here.
    pub fn request(
        &self,
        target: Target,
        op: Op,
        boxer: Boxer<'_, H>,
        options: &CallOptions<'_>,
    ) -> Result<Answer<H>, Error> {
        let inner = &self.inner;
        let chain = chains::current_chain();
        let slot = chains::current_slot();
        let _chain_guard = chains::chain_table().enter(chain, &slot);
        let pending = Pending::new(Wake::Slot(Arc::clone(&slot)));
        let seq = inner.start(chain, target, op, boxer, &pending)?;
        let timeout = options.timeout.unwrap_or(inner.config.call_timeout);
        let deadline = timeout.map(|t| Instant::now() + t);
        self.wait(seq, &pending, &slot, deadline, options)
    }

    /// Wait for the reply to `seq`: read the connection itself while nobody else does (no
    /// handoff between threads), else park until woken. Requests of this thread's chain run
    /// here meanwhile; others go to the pool. Every `poll_interval` the deadline and the
    /// interrupt hook are checked.
    fn wait(
        &self,
        seq: Seq,
        pending: &Arc<Pending<Reply<H>>>,
        slot: &Arc<ParkSlot>,
        deadline: Option<Instant>,
        options: &CallOptions<'_>,
    ) -> Result<Answer<H>, Error> {
        let inner = &self.inner;
        let poll = inner.config.poll_interval;
        let my_chain = chains::current_chain();
        let mut read_some = false;
        let outcome = loop {
            if let Some(result) = pending.take() {
                break result;
            }
            if let Some(job) = slot.try_pop() {
                job();
                continue;
            }
            // Time to look at the clock and the interrupt hook?
            let check = |now: Instant| -> Result<(), Error> {
                if deadline.is_some_and(|d| now >= d) {
                    return Err(Error::Timeout);
                }
                if let Some(check) = options.interrupt {
                    check()?;
                }
                Ok(())
            };
            let wake_at = match deadline {
                Some(d) => d.min(Instant::now() + poll),
                None => Instant::now() + poll,
            };
            let reader = match inner.wire.interrupter() {
                Some(interrupter) => inner.wire.try_read().map(|r| (r, interrupter)),
                None => {
                    // This transport's reads cannot be interrupted: a read loop reads.
                    reader::ensure_reader(inner);
                    None
                }
            };
            if let Some((mut reader, interrupter)) = reader {
                read_some = true;
                slot.clear_wake();
                if !slot.begin_reading(interrupter) {
                    continue;
                }
                let budget = wake_at.saturating_duration_since(Instant::now());
                let readable = reader.wait_readable(budget);
                slot.end_reading();
                match readable {
                    Ok(true) => {}
                    Ok(false) => {
                        drop(reader);
                        if pending.is_done() {
                            continue;
                        }
                        if let Err(e) = check(Instant::now()) {
                            inner.abandon(seq);
                            break Err(e);
                        }
                        continue;
                    }
                    Err(e) => {
                        drop(reader);
                        inner.close(Error::transport("the connection broke", &e), None);
                        continue;
                    }
                }
                let event = reader::read_one(inner, &mut **reader);
                drop(reader);
                if let Event::Request(work) = event {
                    if work.chain == my_chain {
                        reader::run(inner, work);
                    } else {
                        reader::spawn(inner, work);
                    }
                }
                continue;
            }
            // Someone else reads: park until our reply, a job, or a deadline.
            inner.wire.park(slot);
            let woken = slot.wait(Some(wake_at));
            inner.wire.unpark(slot);
            match woken {
                Woken::Job(job) => job(),
                Woken::Look => {}
                Woken::TimedOut => {
                    if pending.is_done() {
                        continue;
                    }
                    if let Err(e) = check(Instant::now()) {
                        inner.abandon(seq);
                        break Err(e);
                    }
                }
            }
        };
        if read_some {
            // Whoever waits next reads next.
            inner.wire.hand_on_reading();
        }
        outcome
    }

    /// Send `op` to `target` and return a future of the reply. Requests the peer makes while
    /// the future is pending run on the worker pool. Dropping the future before it completes
    /// cancels the call on the peer.
    pub fn request_async(&self, target: Target, op: Op, boxer: Boxer<'_, H>) -> ReplyFuture<H> {
        let pending = Pending::new(Wake::Task(AtomicWaker::new()));
        let chain = chains::current_chain();
        let started = self.inner.start(chain, target, op, boxer, &pending);
        // No thread waits for this reply: make sure someone reads it.
        reader::ensure_reader(&self.inner);
        match started {
            Ok(seq) => ReplyFuture {
                inner: Arc::clone(&self.inner),
                seq,
                pending,
                state: FutureState::Waiting,
            },
            Err(e) => ReplyFuture {
                inner: Arc::clone(&self.inner),
                seq: 0,
                pending,
                state: FutureState::Failed(Some(e)),
            },
        }
    }

    /// Send `op` to `target` and call `hook` when the reply arrives (on whichever thread reads
    /// it, holding the reader: the hook must be quick); take the reply with the returned
    /// [`ReplyHandle`]. For bindings that wait in their own event loop.
    pub fn request_with_hook(
        &self,
        target: Target,
        op: Op,
        boxer: Boxer<'_, H>,
        hook: Box<dyn Fn() + Send + Sync>,
    ) -> Result<ReplyHandle<H>, Error> {
        let pending = Pending::new(Wake::Hook(hook));
        let chain = chains::current_chain();
        let seq = self.inner.start(chain, target, op, boxer, &pending)?;
        // No thread waits for this reply: make sure someone reads it.
        reader::ensure_reader(&self.inner);
        Ok(ReplyHandle {
            inner: Arc::clone(&self.inner),
            seq,
            pending,
            taken: false,
        })
    }

    /// One round trip to the peer.
    pub fn ping(&self) -> Result<Duration, Error> {
        let started = Instant::now();
        self.request(
            Target::Export(0),
            Op::Ping,
            self.boxer(),
            &CallOptions::default(),
        )?;
        Ok(started.elapsed())
    }
}

impl<H: Host> Inner<H> {
    /// Register the waiter, then write the request from this thread.
    fn start(
        &self,
        chain: ChainId,
        target: Target,
        op: Op,
        mut boxer: Boxer<'_, H>,
        pending: &Arc<Pending<Reply<H>>>,
    ) -> Result<Seq, Error> {
        if self.wire.is_closed() {
            return Err(self.wire.closed_error());
        }
        // Registered before writing, so the reply (or a nested request) can never miss it.
        let seq = self.calls.register(pending);
        let msg = Message::Request(Request {
            seq,
            chain,
            target,
            op,
        });
        match self.wire.send(&msg) {
            Ok(()) => {
                boxer.finish(true);
                self.calls.sent();
                Ok(seq)
            }
            Err(e) => {
                boxer.finish(false);
                self.calls.unsent(seq);
                Err(e)
            }
        }
    }

    /// Stop waiting for `seq`: forget it and tell the peer. A reply that still comes is decoded
    /// and its references released.
    pub(crate) fn abandon(&self, seq: Seq) {
        if self.calls.abandon(seq) {
            let _ = self.wire.send(&Message::Cancel { seq });
        }
    }
}

enum FutureState {
    Waiting,
    Failed(Option<Error>),
    Done,
}

/// The reply of an asynchronous call. Dropping it before it completes cancels the call.
pub struct ReplyFuture<H: Host> {
    inner: Arc<Inner<H>>,
    seq: Seq,
    pending: Arc<Pending<Reply<H>>>,
    state: FutureState,
}

impl<H: Host> Future for ReplyFuture<H> {
    type Output = Result<Answer<H>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match &mut this.state {
            FutureState::Failed(e) => {
                let e = e.take().unwrap_or(Error::Timeout);
                this.state = FutureState::Done;
                return Poll::Ready(Err(e));
            }
            FutureState::Done => {
                return Poll::Ready(Err(Error::ConnectionClosed(
                    "polled after completion".into(),
                )))
            }
            FutureState::Waiting => {}
        }
        this.pending.register(cx.waker());
        match this.pending.take() {
            Some(result) => {
                this.state = FutureState::Done;
                Poll::Ready(result)
            }
            None => Poll::Pending,
        }
    }
}

impl<H: Host> Drop for ReplyFuture<H> {
    fn drop(&mut self) {
        if matches!(self.state, FutureState::Waiting) {
            self.inner.abandon(self.seq);
        }
    }
}

/// The reply of a call whose completion is signalled by a hook.
pub struct ReplyHandle<H: Host> {
    inner: Arc<Inner<H>>,
    seq: Seq,
    pending: Arc<Pending<Reply<H>>>,
    taken: bool,
}

impl<H: Host> ReplyHandle<H> {
    /// True once the reply (or the failure) is here.
    pub fn is_ready(&self) -> bool {
        self.taken || self.pending.is_done()
    }

    /// The reply, if it is here; each reply is taken once.
    pub fn take(&mut self) -> Option<Result<Answer<H>, Error>> {
        let result = self.pending.take();
        if result.is_some() {
            self.taken = true;
        }
        result
    }

    /// The request's sequence number.
    pub fn seq(&self) -> Seq {
        self.seq
    }

    /// Stop waiting and cancel the call on the peer.
    pub fn cancel(&mut self) {
        if !self.taken {
            self.taken = true;
            self.inner.abandon(self.seq);
        }
    }
}

impl<H: Host> Drop for ReplyHandle<H> {
    fn drop(&mut self) {
        if !self.taken && !self.pending.is_done() {
            self.inner.abandon(self.seq);
        }
    }
}
