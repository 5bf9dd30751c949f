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
//!
//! A request whose op this side does not know (a newer peer's) is answered `Failure`
//! (`Unimplemented`) right here, and the connection goes on.

use std::sync::{Arc, Weak};

use pynto_proto::{
    decode, DecodeError, ErrorKind, Failure, Message, Oid, Op, Request, Seq, Target, Value,
    ROOT_OID,
};
use pynto_transport::{FrameReader, TransportError};

use crate::chains;
use crate::dispatch;
use crate::error::{message_name, Error};
use crate::host::{Answer, Boxer, Host, Incoming, Inner, Session, Work};
use crate::housekeeper::{self, Maintained};
use crate::pool;
use crate::wire::ReaderGuard;

/// Serve `work` on this thread, as part of its chain.
pub(crate) fn run<H: Host>(inner: &Arc<Inner<H>>, work: Work<H>) {
    let dispatch::Work {
        seq,
        chain,
        object,
        op,
        incoming,
        permit,
    } = work;
    chains::with_chain(chain, || serve(inner, seq, object, op, incoming));
    drop(permit);
}

/// Serve `work` on a pool thread.
pub(crate) fn spawn<H: Host>(inner: &Arc<Inner<H>>, work: Work<H>) {
    let inner = Arc::clone(inner);
    pool::spawn(Box::new(move || run(&inner, work)));
}

/// Start a read loop unless someone reads or one is about to.
pub(crate) fn ensure_reader<H: Host>(inner: &Arc<Inner<H>>) {
    let wire = &inner.wire;
    if wire.is_closed() || wire.is_read() || !wire.claim_loop() {
        return;
    }
    let session = Session {
        inner: Arc::clone(inner),
    };
    pool::spawn(Box::new(move || read_loop(session)));
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
    /// No frame began within the idle timeout (`reader.rs`'s `park`): the reader may park.
    Idle,
}

/// Read and handle one frame with the reader held, then let go of it.
pub(crate) fn read_one<H: Host>(inner: &Arc<Inner<H>>, reader: &mut dyn FrameReader) -> Event<H> {
    let limits = inner.config.limits;
    let received = reader.recv();
    if matches!(received, Err(TransportError::Idle)) {
        return Event::Idle;
    }
    if !matches!(received, Ok(Some(_))) {
        // Our own failed write shut the transport: that is why it ended.
        if let Some(why) = inner.wire.broken() {
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
        Err(TransportError::Io(e)) if inner.wire.is_closed() => {
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
    inner.liveness.heard_now();
    let decoded = decode(&frame, &limits);
    // The message's bulk values now hold the only handles on their buffers, so a binding can
    // give their pages back as it copies them out (`pynto_transport::drain_into`).
    drop(frame);
    let msg = match decoded {
        Ok(msg) => msg,
        Err(DecodeError::UnknownOp { seq, code }) => {
            let failure = Failure::new(
                ErrorKind::Unimplemented,
                "pynto.Unimplemented",
                format!(
                    "op code {code} is not implemented by this peer (a newer protocol version?)"
                ),
            );
            return reply(inner, seq, Err(failure));
        }
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
    inner.wire.loop_begun();
    loop {
        if inner.wire.is_closed() {
            return;
        }
        let event = match inner.wire.try_read() {
            Some(mut reader) => match read_one(inner, &mut **reader) {
                Event::Idle if park(inner, reader) => return,
                event => event,
            },
            None => return,
        };
        match event {
            Event::Handled | Event::Idle => {}
            Event::Replied { to_waiter } => {
                if to_waiter {
                    inner.wire.hand_on_reading();
                    return;
                }
            }
            Event::Request(work) => run(inner, work),
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
            inner.dispatch.cancel(seq);
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
        inner.liveness.pong();
        return false;
    }
    // Nobody waits any more (timed out, cancelled): dropping `result` releases its references.
    inner.calls.deliver(seq, result)
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
        let mut imports = inner.imports.lock();
        for r in pending_refs {
            if let Some(desc) = &r.desc {
                imports.add_type(r.type_id, (**desc).clone());
            }
            let handle = imports.receive(r.oid, r.type_id, &inner.sink);
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
    if let Err(max) = inner.dispatch.begin(seq) {
        let failure = Failure::new(
            ErrorKind::Overloaded,
            "pynto.Overloaded",
            format!("more than {max} requests in flight"),
        );
        return reply(inner, seq, Err(failure));
    }
    let mut work = dispatch::Work {
        seq,
        chain,
        object,
        op,
        incoming,
        permit: None,
    };
    // A request on the chain of a thread of this process that waits for a reply is a callback:
    // it runs on that thread. Before this side serves, only a waiter on this session's own calls
    // counts (say `on_connect` calling the peer, which calls back): a thread waiting on another
    // session (a client of this very process) must not be served before `on_connect` ran.
    let callback = chains::chain_table().has_waiter(chain)
        && (!inner.dispatch.holding() || inner.calls.calls_wait());
    if !callback {
        // Not a callback of one of our calls: it needs a thread of its own, within the bound.
        let Some(permit) = pool::Permit::try_new() else {
            inner.dispatch.withdraw(seq);
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
        return match inner.dispatch.hold(work) {
            Ok(()) => Event::Handled,
            Err(work) => Event::Request(work),
        };
    }
    // A thread of this process waits on the request's chain: it runs there.
    let inner_for_job = Arc::clone(inner);
    let job: pool::Job = Box::new(move || run(&inner_for_job, work));
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
    inner.dispatch.end(seq);
    let msg = match result {
        Ok(value) => Message::Reply { seq, value },
        Err(failure) => Message::Failure { seq, failure },
    };
    let written = inner.wire.send(&msg);
    let too_big = matches!(written, Err(Error::Overloaded(_)));
    boxer.finish(written.is_ok());
    if too_big {
        let failure = Failure::new(
            ErrorKind::Overloaded,
            "pynto.Overloaded",
            "the reply is larger than the caller accepts",
        );
        let _ = inner.wire.send(&Message::Failure { seq, failure });
    }
}

/// Reply while reading (pings, and requests refused before any host code).
fn reply<H: Host>(inner: &Inner<H>, seq: Seq, result: Result<Value, Failure>) -> Event<H> {
    let msg = match result {
        Ok(value) => Message::Reply { seq, value },
        Err(failure) => Message::Failure { seq, failure },
    };
    // A failed write means the connection is going down; the next read reports it.
    let _ = inner.wire.send(&msg);
    Event::Handled
}

/// Have the housekeeper look after `inner` from now on (it starts awake).
pub(crate) fn watch<H: Host>(inner: &Arc<Inner<H>>) {
    let session = Arc::downgrade(inner) as Weak<dyn Maintained>;
    let _ = inner.wire.parking.session.set(session.clone());
    housekeeper::watch(session);
}

/// A read loop holding `reader` saw no frame begin for `wire::IDLE_PARK`: hand the reading to a
/// waiting caller, or park the connection in the process's poller (no thread, one descriptor)
/// until bytes come. True if the loop is done (the connection parked, a caller reads, or it
/// closed); false if it should read on.
///
/// A caller may still take the reader of a parked connection and read its own reply with no
/// handoff: taking the reader wakes the connection (`Wire::try_read`), and the poller's
/// wake-up that may still come finds the reader taken, or a read loop reading. No wake-up is
/// lost: the registration is level-triggered and armed before the reader is let go, and a
/// wake-up that comes while this loop still holds the reader is seen here, which reads on.
fn park<H: Host>(inner: &Arc<Inner<H>>, mut reader: ReaderGuard<'_>) -> bool {
    let wire = &inner.wire;
    let parking = &wire.parking;
    if wire.is_closed() || !parking.able {
        return wire.is_closed();
    }
    // A caller waits for a reply on this connection: it reads for itself, with no handoff.
    if wire.hand_on_reading() {
        return true;
    }
    let Some(session) = parking.session.get() else {
        return false;
    };
    // Asleep before armed: only the wake-up (or a thread taking the reader, which we hold)
    // wakes it, and it does so after this.
    parking.park();
    let calls_waited = inner.calls.calls_wait();
    housekeeper::asleep(session, calls_waited);
    let woken = Arc::clone(inner);
    let armed = reader.park(Box::new(move || {
        woken.wire.parking.wake_up();
        ensure_reader(&woken);
    }));
    if armed.is_err() {
        parking.wake_up();
        return false;
    }
    drop(reader);
    // A call that began while we held the reader could not start a read loop (one that
    // begins from now on does, which wakes the connection): keep it under liveness watch.
    if !calls_waited && inner.calls.calls_wait() {
        housekeeper::doze(session, parking.flag());
    }
    // A wake-up that came while we held the reader could not start a read loop: read on.
    parking.is_parked() || wire.is_closed()
}
