//! Fuzz target: a live session fed arbitrary frames after a valid Hello never panics, never
//! hangs, and keeps nothing once its peer has gone.
//!
//! Each input is a list of actions for the peer of a pynto-runtime `Session` (the Rust native
//! host, serving a small root object, over the in-memory transport): raw frames (any bytes as a
//! body, with a few attachments) and well-formed messages built from a few bytes each (requests
//! of every op on the root and on the objects it hands out, releases, cancels, replies and
//! failures for the session's callbacks, a stray Hello, Goodbye or Finish), so the fuzzer gets
//! past the decoder into reference counting, chains and callbacks. After the actions the peer
//! shuts the connection; the session must close within a few seconds, with its export and import
//! tables empty, and the worker pool must stay bounded.

#![no_main]

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use pynto_proto::{
    encode, Args, BinaryForm, BinaryOp, CompareOp, ErrorKind, Failure, Frame, Hello, Limits,
    Message, ObjRef, Op, Request, Target, TypeDesc, UnaryOp, Value, PROTOCOL_VERSION,
};
use pynto_runtime::native::{type_error, Methods, NativeHost, Object, Return};
use pynto_runtime::{Config, Role, Session};
use pynto_transport::Transport;

/// How long the session may take to close once its peer shut the connection.
const CLOSE_LIMIT: Duration = Duration::from_secs(10);
/// More pool threads than this after a run means they grow without bound.
const MAX_WORKERS: usize = 512;

#[derive(Arbitrary, Debug)]
enum Action {
    /// Any bytes as a body, with `attachments % 4` attachments of a few bytes.
    Raw {
        body: Vec<u8>,
        attachments: u8,
    },
    Request {
        seq: u8,
        chain: u8,
        target: u8,
        op: FuzzOp,
    },
    /// A request on the answer of an earlier one (promise pipelining, unimplemented).
    Pipelined {
        seq: u8,
        answered: u8,
        path: Vec<String>,
    },
    Release(Vec<(u8, u8)>),
    Cancel(u8),
    Reply(u8, FuzzValue),
    Failure {
        seq: u8,
        kind: u8,
        args: Vec<FuzzValue>,
    },
    Finish(u8),
    Goodbye(String),
    Hello,
}

#[derive(Arbitrary, Debug)]
enum Name {
    Add,
    Echo,
    Fresh,
    CallBack,
    Keep,
    Poke,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum FuzzOp {
    GetRoot,
    Ping,
    GetAttr(Name),
    SetAttr(Name, FuzzValue),
    DelAttr(Name),
    Call(Vec<FuzzValue>),
    CallMethod(Name, Vec<FuzzValue>, Vec<(String, FuzzValue)>),
    Repr,
    Str,
    Format(String),
    Hash,
    Dir,
    Bool,
    Len,
    Iter,
    Next(u32),
    GetItem(FuzzValue),
    SetItem(FuzzValue, FuzzValue),
    DelItem(FuzzValue),
    Contains(FuzzValue),
    Compare(u8, FuzzValue),
    Binary(u8, u8, FuzzValue),
    Unary(u8),
    Enter,
    Exit(FuzzValue, FuzzValue, FuzzValue),
    IsInstance(String, String),
    Pickle,
    Await,
    AIter,
    ANext,
    AEnter,
    AExit(FuzzValue, FuzzValue, FuzzValue),
}

#[derive(Arbitrary, Debug)]
enum FuzzValue {
    None,
    Bool(bool),
    Int(i64),
    BigInt(Vec<u8>),
    Float(f64),
    Complex(f64, f64),
    Str(String),
    Bytes(Vec<u8>),
    /// Bytes of 64 KiB and more, which travel as an attachment.
    BulkBytes(u8),
    Ellipsis,
    Slice(Box<(FuzzValue, FuzzValue, FuzzValue)>),
    Tuple(Vec<FuzzValue>),
    FrozenSet(Vec<FuzzValue>),
    List(Vec<FuzzValue>),
    Set(Vec<FuzzValue>),
    Dict(Vec<(FuzzValue, FuzzValue)>),
    ByteArray(Vec<u8>),
    Ref {
        oid: u8,
        type_id: u8,
        desc: Option<(String, Vec<String>)>,
    },
    Returned(u8),
}

impl Name {
    fn text(&self) -> String {
        match self {
            Name::Add => "add".into(),
            Name::Echo => "echo".into(),
            Name::Fresh => "fresh".into(),
            Name::CallBack => "call_back".into(),
            Name::Keep => "keep".into(),
            Name::Poke => "poke".into(),
            Name::Other(s) => s.clone(),
        }
    }
}

impl FuzzValue {
    fn value(&self) -> Value {
        match self {
            FuzzValue::None => Value::None,
            FuzzValue::Bool(b) => Value::Bool(*b),
            FuzzValue::Int(i) => Value::Int(*i),
            FuzzValue::BigInt(b) => Value::BigInt(b.clone()),
            FuzzValue::Float(f) => Value::Float(*f),
            FuzzValue::Complex(a, b) => Value::Complex(*a, *b),
            FuzzValue::Str(s) => Value::Str(s.clone()),
            FuzzValue::Bytes(b) => Value::Bytes(Bytes::copy_from_slice(b)),
            FuzzValue::BulkBytes(n) => {
                Value::Bytes(Bytes::from(vec![*n; (64 << 10) + usize::from(*n)]))
            }
            FuzzValue::Ellipsis => Value::Ellipsis,
            FuzzValue::Slice(parts) => Value::Slice(Box::new([
                parts.0.value(),
                parts.1.value(),
                parts.2.value(),
            ])),
            FuzzValue::Tuple(items) => Value::Tuple(values(items)),
            FuzzValue::FrozenSet(items) => Value::FrozenSet(values(items)),
            FuzzValue::List(items) => Value::List(values(items)),
            FuzzValue::Set(items) => Value::Set(values(items)),
            FuzzValue::Dict(pairs) => {
                Value::Dict(pairs.iter().map(|(k, v)| (k.value(), v.value())).collect())
            }
            FuzzValue::ByteArray(b) => Value::ByteArray(Bytes::copy_from_slice(b)),
            FuzzValue::Ref { oid, type_id, desc } => Value::Ref(ObjRef {
                oid: u64::from(*oid),
                type_id: u32::from(*type_id),
                desc: desc.as_ref().map(|(name, methods)| {
                    Box::new(TypeDesc {
                        module: "fuzz".into(),
                        qualname: name.clone(),
                        dunders: vec!["__call__".into()],
                        methods: methods.clone(),
                        abcs: Vec::new(),
                    })
                }),
            }),
            FuzzValue::Returned(oid) => Value::Returned(u64::from(*oid)),
        }
    }
}

fn values(items: &[FuzzValue]) -> Vec<Value> {
    items.iter().map(FuzzValue::value).collect()
}

fn args(positional: &[FuzzValue], keywords: &[(String, FuzzValue)]) -> Args {
    Args {
        positional: values(positional),
        keywords: keywords
            .iter()
            .map(|(k, v)| (k.clone(), v.value()))
            .collect(),
    }
}

impl FuzzOp {
    fn op(&self) -> Op {
        match self {
            FuzzOp::GetRoot => Op::GetRoot,
            FuzzOp::Ping => Op::Ping,
            FuzzOp::GetAttr(n) => Op::GetAttr(n.text()),
            FuzzOp::SetAttr(n, v) => Op::SetAttr(n.text(), v.value()),
            FuzzOp::DelAttr(n) => Op::DelAttr(n.text()),
            FuzzOp::Call(a) => Op::Call(args(a, &[])),
            FuzzOp::CallMethod(n, a, k) => Op::CallMethod(n.text(), args(a, k)),
            FuzzOp::Repr => Op::Repr,
            FuzzOp::Str => Op::Str,
            FuzzOp::Format(s) => Op::Format(s.clone()),
            FuzzOp::Hash => Op::Hash,
            FuzzOp::Dir => Op::Dir,
            FuzzOp::Bool => Op::Bool,
            FuzzOp::Len => Op::Len,
            FuzzOp::Iter => Op::Iter,
            FuzzOp::Next(n) => Op::Next(*n),
            FuzzOp::GetItem(v) => Op::GetItem(v.value()),
            FuzzOp::SetItem(k, v) => Op::SetItem(k.value(), v.value()),
            FuzzOp::DelItem(v) => Op::DelItem(v.value()),
            FuzzOp::Contains(v) => Op::Contains(v.value()),
            FuzzOp::Compare(c, v) => Op::Compare(
                CompareOp::from_u8(c % 6).expect("six comparisons"),
                v.value(),
            ),
            FuzzOp::Binary(o, f, v) => Op::Binary(
                BinaryOp::from_u8(o % 14).expect("fourteen operators"),
                BinaryForm::from_u8(f % 3).expect("three forms"),
                v.value(),
            ),
            FuzzOp::Unary(u) => Op::Unary(UnaryOp::from_u8(u % 14).expect("fourteen operators")),
            FuzzOp::Enter => Op::Enter,
            FuzzOp::Exit(a, b, c) => Op::Exit(a.value(), b.value(), c.value()),
            FuzzOp::IsInstance(m, q) => Op::IsInstance(m.clone(), q.clone()),
            FuzzOp::Pickle => Op::Pickle,
            FuzzOp::Await => Op::Await,
            FuzzOp::AIter => Op::AIter,
            FuzzOp::ANext => Op::ANext,
            FuzzOp::AEnter => Op::AEnter,
            FuzzOp::AExit(a, b, c) => Op::AExit(a.value(), b.value(), c.value()),
        }
    }
}

fn hello() -> Message {
    Message::Hello(Hello {
        protocol: PROTOCOL_VERSION,
        implementation: "fuzz".into(),
        service: "fuzz".into(),
        ..Hello::default()
    })
}

impl Action {
    fn frame(&self) -> Frame {
        let msg = match self {
            Action::Raw { body, attachments } => {
                return Frame {
                    body: Bytes::copy_from_slice(body),
                    attachments: (0..attachments % 4)
                        .map(|i| Bytes::from(vec![i; usize::from(i) * 3]))
                        .collect(),
                }
            }
            Action::Request {
                seq,
                chain,
                target,
                op,
            } => Message::Request(Request {
                seq: u64::from(*seq),
                chain: u64::from(*chain),
                target: Target::Export(u64::from(target % 8)),
                op: op.op(),
            }),
            Action::Pipelined {
                seq,
                answered,
                path,
            } => Message::Request(Request {
                seq: u64::from(*seq),
                chain: 1,
                target: Target::Answer(u64::from(*answered), path.clone()),
                op: Op::Repr,
            }),
            Action::Release(pairs) => Message::Release(
                pairs
                    .iter()
                    .map(|&(oid, n)| (u64::from(oid % 8), u64::from(n % 4)))
                    .collect(),
            ),
            Action::Cancel(seq) => Message::Cancel {
                seq: u64::from(*seq),
            },
            Action::Reply(seq, v) => Message::Reply {
                seq: u64::from(*seq),
                value: v.value(),
            },
            Action::Failure { seq, kind, args } => {
                let kind = ErrorKind::from_u8(kind % 7).expect("seven kinds");
                let mut failure = Failure::new(kind, "builtins.ValueError", "fuzz");
                failure.args = values(args);
                Message::Failure {
                    seq: u64::from(*seq),
                    failure,
                }
            }
            Action::Finish(seq) => Message::Finish {
                seq: u64::from(*seq),
            },
            Action::Goodbye(reason) => Message::Goodbye {
                reason: reason.clone(),
            },
            Action::Hello => hello(),
        };
        encode(&msg)
    }
}

/// The root the session serves: plain methods, objects by reference, a callback into the peer
/// and an object that keeps what it is given (released when the session closes).
fn root() -> Object {
    let kept = Mutex::new(Vec::new());
    Object::new(
        Methods::new("FuzzRoot")
            .method("add", |args| match args.positional.as_slice() {
                [Value::Int(a), Value::Int(b)] => Ok(Value::Int(a.wrapping_add(*b)).into()),
                _ => Err(type_error("add takes two ints")),
            })
            .method("echo", |args| {
                Ok(args
                    .positional
                    .first()
                    .cloned()
                    .unwrap_or(Value::None)
                    .into())
            })
            .method("fresh", |_| {
                let thing = Methods::new("Thing").method("poke", |_| Ok(Value::Int(1).into()));
                Ok(Return::Object(Object::new(thing)))
            })
            .method_with_call("call_back", |call| match call.remote(0) {
                Some(callback) => match callback.call(vec![Value::Int(1)]) {
                    Ok(answer) => Ok(answer.value.clone().into()),
                    Err(_) => Ok(Value::None.into()),
                },
                None => Err(type_error("call_back takes a callable")),
            })
            .method_with_call("keep", move |call| {
                let remote = call.remote(0);
                kept.lock().unwrap().push(remote);
                Ok(Value::None.into())
            }),
    )
}

fn config() -> Config {
    Config {
        limits: Limits {
            max_objects: 16,
            max_in_flight: 8,
            ..Limits::default()
        },
        call_timeout: Some(Duration::from_secs(2)),
        ..Config::default()
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + CLOSE_LIMIT;
    while !done() {
        assert!(Instant::now() < until, "hang: {what}");
        std::thread::sleep(Duration::from_micros(100));
    }
}

fuzz_target!(|actions: Vec<Action>| {
    let (ours, theirs) = pynto_transport::memory::pair();
    let (_reader, mut writer) = Box::new(ours).split();
    // Our Hello is queued before the session starts, so it accepts on this thread.
    writer
        .send(&encode(&hello()))
        .expect("the memory pair is open");
    let session = Session::connect(
        Box::new(theirs),
        Role::Acceptor,
        NativeHost::new(),
        root(),
        config(),
    )
    .expect("the session accepts a valid Hello");
    for action in &actions {
        if writer.send(&action.frame()).is_err() {
            break; // the session closed the connection
        }
    }
    writer.shutdown();
    wait_for(
        "the session did not close after its peer shut the connection",
        || session.is_closed(),
    );
    wait_for("the closed session still holds exports or imports", || {
        let stats = session.stats();
        stats.exported == 0 && stats.imported == 0
    });
    let workers = pynto_runtime::worker_count();
    assert!(workers <= MAX_WORKERS, "{workers} pool threads");
});
