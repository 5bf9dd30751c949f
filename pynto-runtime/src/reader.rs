//! Reading a connection: a role, not a thread.
//!
//! Whoever holds the session's reader reads one frame, decodes it, counts the references it
//! carries (in wire order, still holding the reader), delivers replies and routes requests to
//! the thread waiting on their chain. What is left is a request nobody waits for, which the
//! reading thread runs itself once it has let go of the reader.
//!
//! Three kinds of thread take the role:
//! - a caller waiting for its reply reads until its reply comes, so a call costs no handoff
//!   between threads (`call.rs`);
//! - a *read loop* on a pool thread reads while no caller does, runs requests inline, and stops
//!   when a caller it woke can read for itself (`read_loop` below);
//! - the housekeeper starts a read loop when the reader has been left vacant for a moment, so
//!   a request that runs long, or a caller busy elsewhere, never leaves the connection unread.
//!
//! The reader is never held while host code runs, so one busy thread (for Python: one holding
//! the GIL) never stalls the connection: past the grace period another thread reads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use pynto_proto::{
    decode, ChainId, ErrorKind, Failure, Message, Oid, Op, Request, Seq, Target, Value, ROOT_OID,
};
use pynto_transport::{FrameReader, TransportError};

use crate::boxing::{Boxer, Incoming};
use crate::call::Answer;
use crate::chains;
use crate::error::Error;
use crate::host::Host;
use crate::pool;
use crate::session::{message_name, Inner, Session};

/// A request that arrived for no waiting thread: whoever read it runs it or hands it on.
pub(crate) struct Work<H: Host> {
    seq: Seq,
    pub(crate) chain: ChainId,
    object: H::Object,
    op: Op,
    incoming: Incoming<H>,
    /// Counts it against the process's bound on requests served at once (`None` for a
    /// callback of a waiting call, which runs on the waiting thread).
    permit: Option<pool::Permit>,
}

impl<H: Host> Work<H> {
    /// Serve it on this thread, as part of its chain.
    pub(crate) fn run(self, inner: &Arc<Inner<H>>) {
        let Work {
            seq,
            chain,
            object,
            op,
            incoming,
            permit,
        } = self;
        chains::with_chain(chain, || serve(inner, seq, object, op, incoming));
        drop(permit);
    }

    /// Serve it on a pool thread.
    pub(crate) fn spawn(self, inner: &Arc<Inner<H>>) {
        let inner = Arc::clone(inner);
        pool::spawn(Box::new(move || self.run(&inner)));
    }
}

/// What reading one frame left to do.
pub(crate) enum Event<H: Host> {
    /// Nothing: the frame was handled while reading it.
    Handled,
    /// A reply (or failure) was delivered; `to_waiter` if a blocking caller was woken for it.
    Replied { to_waiter: bool },
    /// A request for no waiting thread.
    Request(Work<H>),
    /// The connection ended (already closed).
    Closed,
    /// No frame began within the idle timeout (`parking.rs`): the reader may park.
    Idle,
}

/// Read and handle one frame with the reader held, then let go of it.
pub(crate) fn read_one<H: Host>(inner: &Arc<Inner<H>>, reader: &mut dyn FrameReader) -> Event<H> {
    let limits = inner.core.config.limits;
    let received = reader.recv();
    if matches!(received, Err(TransportError::Idle)) {
        return Event::Idle;
    }
    if !matches!(received, Ok(Some(_))) {
        // Our own failed write shut the transport: that is why it ended.
        if let Some(why) = inner.core.broken() {
            return closed(inner, (Error::ConnectionClosed(why), None));
        }
    }
    let frame = match received {
        Ok(Some(frame)) => frame,
        Ok(None) => {
            return closed(
                inner,
                (
                    Error::ConnectionClosed("the peer closed the connection".into()),
                    None,
                ),
            )
        }
        Err(TransportError::Io(e)) if inner.core.is_closed() => {
            return closed(
                inner,
                (Error::ConnectionClosed(format!("closed: {e}")), None),
            )
        }
        Err(e @ (TransportError::Io(_) | TransportError::Torn)) => {
            return closed(inner, (Error::transport("the connection broke", &e), None))
        }
        Err(e) => return closed(inner, protocol(format!("the peer sent a bad frame: {e}"))),
    };
    inner.core.heard_now();
    let msg = match decode(&frame, &limits) {
        Ok(msg) => msg,
        Err(e) => {
            return closed(
                inner,
                protocol(format!("the peer sent a malformed message: {e}")),
            )
        }
    };
    match handle(inner, msg) {
        Ok(event) => event,
        Err(reason) => closed(inner, *reason),
    }
}

fn closed<H: Host>(inner: &Arc<Inner<H>>, reason: (Error, Option<String>)) -> Event<H> {
    inner.close(reason.0, reason.1);
    Event::Closed
}

/// Read while nobody else does: serve requests inline, deliver replies; stop when another
/// thread holds the reader, when a blocking caller was woken (it reads for itself from then
/// on), or when the session closes.
pub(crate) fn read_loop<H: Host>(session: Session<H>) {
    let inner = &session.inner;
    inner.core.loop_pending.store(false, Ordering::Release);
    loop {
        if inner.core.is_closed() {
            return;
        }
        let event = match inner.core.try_read() {
            Some(mut reader) => match read_one(inner, &mut **reader) {
                Event::Idle if crate::parking::park(inner, reader) => return,
                event => event,
            },
            None => return,
        };
        match event {
            Event::Handled | Event::Idle => {}
            Event::Replied { to_waiter } => {
                if to_waiter {
                    inner.core.hand_on_reading();
                    return;
                }
            }
            Event::Request(work) => work.run(inner),
            Event::Closed => return,
        }
    }
}

/// A protocol violation: close with this error and tell the peer why.
fn protocol(why: String) -> (Error, Option<String>) {
    (Error::Protocol(why.clone()), Some(why))
}

/// Why the connection must close: the error for waiting callers, and the Goodbye to send.
type Violation = Box<(Error, Option<String>)>;

fn handle<H: Host>(inner: &Arc<Inner<H>>, msg: Message) -> Result<Event<H>, Violation> {
    match msg {
        Message::Request(request) => Ok(accept_request(inner, request)),
        Message::Reply { seq, value } => {
            let incoming = resolve(inner, std::slice::from_ref(&value))
                .map_err(|e| Box::new(protocol(e.message)))?;
            let to_waiter = deliver(inner, seq, Ok(Answer { value, incoming }));
            Ok(Event::Replied { to_waiter })
        }
        Message::Failure { seq, failure } => {
            // References in the args are counted (so they are released), then dropped.
            let _ = resolve(inner, &failure.args);
            let to_waiter = deliver(inner, seq, Err(Error::Remote(failure)));
            Ok(Event::Replied { to_waiter })
        }
        Message::Release(pairs) => release(inner, &pairs).map(|()| Event::Handled),
        Message::Cancel { seq } => {
            inner.core.cancels_received.fetch_add(1, Ordering::Relaxed);
            if let Some(flag) = inner.serving.lock().get(&seq) {
                flag.store(true, Ordering::Release);
            }
            Ok(Event::Handled)
        }
        Message::Finish { .. } => Ok(Event::Handled),
        Message::Goodbye { reason } => {
            let why = if reason.is_empty() {
                "the peer closed the connection".to_string()
            } else {
                format!("the peer closed the connection: {reason}")
            };
            Err(Box::new((Error::ConnectionClosed(why), None)))
        }
        other @ Message::Hello(_) => Err(Box::new(protocol(format!(
            "unexpected {} after the handshake",
            message_name(&other)
        )))),
    }
}

/// Hand a reply to its caller; true if a blocking caller was woken for it.
fn deliver<H: Host>(inner: &Inner<H>, seq: Seq, result: Result<Answer<H>, Error>) -> bool {
    if seq == 0 {
        // The housekeeper's liveness ping: hearing it was the point.
        inner.core.ping_outstanding.store(false, Ordering::Release);
        return false;
    }
    let pending = inner.pending.lock().remove(&seq);
    // Nobody waits any more (timed out, cancelled): dropping `result` releases its references.
    pending.is_some_and(|pending| pending.complete(result))
}

fn release<H: Host>(inner: &Inner<H>, pairs: &[(Oid, u64)]) -> Result<(), Violation> {
    let mut dropped = Vec::new();
    let outcome = {
        let mut exports = inner.exports.lock();
        pairs.iter().try_for_each(|&(oid, count)| {
            if let Some(obj) = exports.release(oid, count).map_err(|e| e.0)? {
                dropped.push(obj);
            }
            Ok::<(), String>(())
        })
    };
    // Host objects are dropped outside the table lock.
    drop(dropped);
    outcome.map_err(|why| Box::new(protocol(why)))
}

/// Count the references in `values` in wire order and look up returned local objects.
fn resolve<'v, H: Host>(
    inner: &Inner<H>,
    values: impl IntoIterator<Item = &'v Value>,
) -> Result<Incoming<H>, Failure> {
    let mut incoming = Incoming::default();
    let mut pending_refs = Vec::new();
    let mut returned = Vec::new();
    for value in values {
        collect(value, &mut pending_refs, &mut returned);
    }
    if !pending_refs.is_empty() {
        let mut imports = inner.core.imports.lock();
        for r in pending_refs {
            if let Some(desc) = &r.desc {
                imports.add_type(r.type_id, (**desc).clone());
            }
            let handle = imports.receive(r.oid, r.type_id, &inner.core.sink);
            if !incoming.imports.iter().any(|h| h.oid() == r.oid) {
                incoming.imports.push(handle);
            }
        }
    }
    if !returned.is_empty() {
        let exports = inner.exports.lock();
        for oid in returned {
            if incoming.locals.iter().any(|(o, _)| *o == oid) {
                continue;
            }
            match exports.get(oid) {
                Some(obj) => incoming.locals.push((oid, obj)),
                None => {
                    return Err(Failure::new(
                        ErrorKind::NoSuchObject,
                        "pynto.NoSuchObject",
                        format!("object {oid} is not exported (it was released)"),
                    ))
                }
            }
        }
    }
    Ok(incoming)
}

fn collect<'v>(value: &'v Value, refs: &mut Vec<&'v pynto_proto::ObjRef>, returned: &mut Vec<Oid>) {
    match value {
        Value::Ref(r) => refs.push(r),
        Value::Returned(oid) => returned.push(*oid),
        Value::Tuple(items) | Value::FrozenSet(items) | Value::List(items) | Value::Set(items) => {
            for item in items {
                collect(item, refs, returned);
            }
        }
        Value::Standard(standard) => {
            for item in &standard.1 {
                collect(item, refs, returned);
            }
        }
        Value::Dict(pairs) => {
            for (k, v) in pairs {
                collect(k, refs, returned);
                collect(v, refs, returned);
            }
        }
        Value::Slice(parts) => {
            for part in parts.iter() {
                collect(part, refs, returned);
            }
        }
        _ => {}
    }
}

/// The values an op carries, in field order. Borrowed, never cloned or collected: a decoded
/// message's values exist once (the decode budget counts them once).
fn op_values(op: &Op) -> impl Iterator<Item = &Value> {
    let (fields, args): ([Option<&Value>; 3], Option<&pynto_proto::Args>) = match op {
        Op::SetAttr(_, v)
        | Op::GetItem(v)
        | Op::DelItem(v)
        | Op::Contains(v)
        | Op::Compare(_, v)
        | Op::Binary(_, _, v) => ([Some(v), None, None], None),
        Op::SetItem(k, v) => ([Some(k), Some(v), None], None),
        Op::Call(args) | Op::CallMethod(_, args) => ([None, None, None], Some(args)),
        Op::Exit(a, b, c) | Op::AExit(a, b, c) => ([Some(a), Some(b), Some(c)], None),
        _ => ([None, None, None], None),
    };
    let args = args.into_iter().flat_map(|args| {
        args.positional
            .iter()
            .chain(args.keywords.iter().map(|(_, v)| v))
    });
    fields.into_iter().flatten().chain(args)
}

fn accept_request<H: Host>(inner: &Arc<Inner<H>>, request: Request) -> Event<H> {
    let Request {
        seq,
        chain,
        target,
        op,
    } = request;
    if matches!(op, Op::Ping) {
        return reply(inner, seq, Ok(Value::None));
    }
    let incoming = match resolve(inner, op_values(&op)) {
        Ok(incoming) => incoming,
        Err(failure) => return reply(inner, seq, Err(failure)),
    };
    let object = match (&target, &op) {
        (_, Op::GetRoot) => inner.exports.lock().get(ROOT_OID),
        (Target::Export(oid), _) => inner.exports.lock().get(*oid),
        (Target::Answer(..), _) => {
            let failure = Failure::new(
                ErrorKind::Unimplemented,
                "pynto.Unimplemented",
                "promise pipelining (Target::Answer) is not implemented by this peer",
            );
            return reply(inner, seq, Err(failure));
        }
    };
    let Some(object) = object else {
        let oid = match target {
            Target::Export(oid) => oid,
            Target::Answer(..) => 0,
        };
        let failure = Failure::new(
            ErrorKind::NoSuchObject,
            "pynto.NoSuchObject",
            format!("object {oid} is not exported"),
        );
        return reply(inner, seq, Err(failure));
    };
    {
        let mut serving = inner.serving.lock();
        if serving.len() >= inner.core.config.limits.max_in_flight as usize {
            drop(serving);
            let failure = Failure::new(
                ErrorKind::Overloaded,
                "pynto.Overloaded",
                format!(
                    "more than {} requests in flight",
                    inner.core.config.limits.max_in_flight
                ),
            );
            return reply(inner, seq, Err(failure));
        }
        serving.insert(seq, Arc::new(AtomicBool::new(false)));
    }
    let mut work = Work {
        seq,
        chain,
        object,
        op,
        incoming,
        permit: None,
    };
    if !chains::chain_table().has_waiter(chain) {
        // Not a callback of one of our calls: it needs a thread of its own, within the bound.
        let Some(permit) = pool::Permit::try_new() else {
            inner.serving.lock().remove(&seq);
            let failure = Failure::new(
                ErrorKind::Overloaded,
                "pynto.Overloaded",
                format!(
                    "this process already serves {} requests at once (its max_workers)",
                    pool::max_workers()
                ),
            );
            return reply(inner, seq, Err(failure));
        };
        work.permit = Some(permit);
        // It waits if this side is not serving yet.
        if let Some(held) = inner.held.lock().as_mut() {
            held.push(work);
            return Event::Handled;
        }
        return Event::Request(work);
    }
    // A thread of this process waits on the request's chain: it runs there.
    let inner_for_job = Arc::clone(inner);
    let job: chains::Job = Box::new(move || work.run(&inner_for_job));
    if let Err(job) = chains::chain_table().route(chain, job) {
        // The waiter left in between: run it like any other.
        pool::spawn(job);
    }
    Event::Handled
}

/// Serve one request on this thread and write the reply.
fn serve<H: Host>(
    inner: &Arc<Inner<H>>,
    seq: Seq,
    target: H::Object,
    op: Op,
    incoming: Incoming<H>,
) {
    let session = Session {
        inner: Arc::clone(inner),
    };
    let mut boxer = Boxer::new(inner);
    let result = inner
        .host
        .perform(&session, &target, op, &incoming, &mut boxer);
    drop(incoming);
    inner.serving.lock().remove(&seq);
    inner.core.requests_served.fetch_add(1, Ordering::Relaxed);
    let msg = match result {
        Ok(value) => Message::Reply { seq, value },
        Err(failure) => Message::Failure { seq, failure },
    };
    let written = inner.core.send(&msg);
    let too_big = matches!(written, Err(Error::Overloaded(_)));
    boxer.finish(written.is_ok());
    if too_big {
        let failure = Failure::new(
            ErrorKind::Overloaded,
            "pynto.Overloaded",
            "the reply is larger than the caller accepts",
        );
        let _ = inner.core.send(&Message::Failure { seq, failure });
    }
}

/// Reply while reading (pings, and requests refused before any host code).
fn reply<H: Host>(inner: &Inner<H>, seq: Seq, result: Result<Value, Failure>) -> Event<H> {
    let msg = match result {
        Ok(value) => Message::Reply { seq, value },
        Err(failure) => Message::Failure { seq, failure },
    };
    // A failed write means the connection is going down; the next read reports it.
    let _ = inner.core.send(&msg);
    Event::Handled
}
