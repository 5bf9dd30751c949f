//! The connection's reader: the one thread that drains the transport.
//!
//! It decodes each frame, counts the references it carries in wire order, and routes it: a
//! reply wakes its caller; a request goes to the thread waiting on its chain, or to the worker
//! pool. It never runs host code (for Python: it never takes the GIL), so one busy thread can
//! never stall the connection's traffic.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use pynto_proto::{
    decode, ErrorKind, Failure, Message, Oid, Op, Request, Seq, Target, Value, ROOT_OID,
};
use pynto_transport::{FrameReader, TransportError};

use crate::boxing::{Boxer, Incoming};
use crate::call::Answer;
use crate::chains;
use crate::error::Error;
use crate::host::Host;
use crate::pool;
use crate::session::{message_name, Inner, Session};

/// Read until the transport ends or the peer breaks the protocol, then close the session.
pub(crate) fn run<H: Host>(session: Session<H>, mut reader: Box<dyn FrameReader>) {
    let inner = &session.inner;
    let limits = inner.core.config.limits;
    let reason = loop {
        let frame = match reader.recv() {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                break (
                    Error::ConnectionClosed("the peer closed the connection".into()),
                    None,
                )
            }
            Err(TransportError::Io(e)) if inner.core.is_closed() => {
                break (Error::ConnectionClosed(format!("closed: {e}")), None)
            }
            Err(e @ (TransportError::Io(_) | TransportError::Torn)) => {
                break (
                    Error::ConnectionClosed(format!("the connection broke: {e}")),
                    None,
                )
            }
            Err(e) => break protocol(format!("the peer sent a bad frame: {e}")),
        };
        inner.core.heard_now();
        let msg = match decode(&frame, &limits) {
            Ok(msg) => msg,
            Err(e) => break protocol(format!("the peer sent a malformed message: {e}")),
        };
        if let Err(reason) = handle(inner, msg) {
            break *reason;
        }
    };
    inner.close(reason.0, reason.1);
}

/// A protocol violation: close with this error and tell the peer why.
fn protocol(why: String) -> (Error, Option<String>) {
    (Error::Protocol(why.clone()), Some(why))
}

/// Why the connection must close: the error for waiting callers, and the Goodbye to send.
type Violation = Box<(Error, Option<String>)>;

fn handle<H: Host>(inner: &Arc<Inner<H>>, msg: Message) -> Result<(), Violation> {
    match msg {
        Message::Request(request) => accept_request(inner, request),
        Message::Reply { seq, value } => {
            let incoming = resolve(inner, std::slice::from_ref(&value))
                .map_err(|e| Box::new(protocol(e.message)))?;
            deliver(inner, seq, Ok(Answer { value, incoming }));
            Ok(())
        }
        Message::Failure { seq, failure } => {
            // References in the args are counted (so they are released), then dropped.
            let _ = resolve(inner, &failure.args);
            deliver(inner, seq, Err(Error::Remote(failure)));
            Ok(())
        }
        Message::Release(pairs) => release(inner, &pairs),
        Message::Cancel { seq } => {
            inner.core.cancels_received.fetch_add(1, Ordering::Relaxed);
            if let Some(flag) = inner.serving.lock().get(&seq) {
                flag.store(true, Ordering::Release);
            }
            Ok(())
        }
        Message::Finish { .. } => Ok(()),
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

fn deliver<H: Host>(inner: &Inner<H>, seq: Seq, result: Result<Answer<H>, Error>) {
    if seq == 0 {
        // The housekeeper's liveness ping: hearing it was the point.
        inner.core.ping_outstanding.store(false, Ordering::Release);
        return;
    }
    let pending = inner.pending.lock().remove(&seq);
    if let Some(pending) = pending {
        pending.complete(result);
    }
    // Nobody waits any more (timed out, cancelled): dropping `result` releases its references.
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
fn resolve<H: Host>(inner: &Inner<H>, values: &[Value]) -> Result<Incoming<H>, Failure> {
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

/// The values an op carries, in field order.
fn op_values(op: &Op) -> Vec<Value> {
    // Cloning is cheap for the common case (few, small values); it keeps `resolve` simple.
    match op {
        Op::SetAttr(_, v)
        | Op::GetItem(v)
        | Op::DelItem(v)
        | Op::Contains(v)
        | Op::Compare(_, v)
        | Op::Binary(_, _, v) => {
            vec![v.clone()]
        }
        Op::SetItem(k, v) => vec![k.clone(), v.clone()],
        Op::Call(args) | Op::CallMethod(_, args) => {
            let mut values = args.positional.clone();
            values.extend(args.keywords.iter().map(|(_, v)| v.clone()));
            values
        }
        Op::Exit(a, b, c) | Op::AExit(a, b, c) => vec![a.clone(), b.clone(), c.clone()],
        _ => Vec::new(),
    }
}

fn accept_request<H: Host>(inner: &Arc<Inner<H>>, request: Request) -> Result<(), Violation> {
    let Request {
        seq,
        chain,
        target,
        op,
    } = request;
    if matches!(op, Op::Ping) {
        return reply(inner, seq, Ok(Value::None));
    }
    let incoming = match resolve(inner, &op_values(&op)) {
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
    let inner_for_job = Arc::clone(inner);
    let job: chains::Job = Box::new(move || {
        chains::with_chain(chain, || serve(&inner_for_job, seq, object, op, incoming));
    });
    if let Err(job) = chains::chain_table().route(chain, job) {
        pool::spawn(job);
    }
    Ok(())
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

/// Reply from the reader thread itself (pings, and requests refused before any host code).
fn reply<H: Host>(
    inner: &Inner<H>,
    seq: Seq,
    result: Result<Value, Failure>,
) -> Result<(), Violation> {
    let msg = match result {
        Ok(value) => Message::Reply { seq, value },
        Err(failure) => Message::Failure { seq, failure },
    };
    // A failed write means the connection is going down; the next read reports it.
    let _ = inner.core.send(&msg);
    Ok(())
}
