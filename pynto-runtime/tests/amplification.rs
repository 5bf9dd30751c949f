//! Amplification: a peer whose message would decode to far more memory than it sent (an
//! attachment used twice, a body over its decode budget) is a protocol error that closes only
//! that session, with a Goodbye saying why and nothing kept; other sessions keep serving, and
//! large ordinary messages still pass.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use pynto_proto::{
    decode, encode, Args, Frame, Hello, Limits, Message, Op, Request, Target, Value,
    PROTOCOL_VERSION,
};
use pynto_runtime::native::{Methods, NativeHost, Object};
use pynto_runtime::{Config, Error, Role, Session};
use pynto_transport::{FrameWriter, Transport};

fn service() -> Object {
    Object::new(
        Methods::new("Counter")
            .method("count", |args| {
                Ok(Value::Int(args.positional.len() as i64).into())
            })
            .method("double", |args| match args.positional.as_slice() {
                [Value::Int(i)] => Ok(Value::Int(2 * i).into()),
                _ => Err(pynto_runtime::native::type_error("double takes an int")),
            }),
    )
}

/// A peer that did the Hello exchange by hand: it sends frames of any shape and sees every
/// frame the session sends (`None` once the session shut the connection).
struct Peer {
    writer: Box<dyn FrameWriter>,
    frames: mpsc::Receiver<Option<Frame>>,
}

impl Peer {
    fn recv(&self) -> Option<Message> {
        let frame = self
            .frames
            .recv_timeout(Duration::from_secs(30))
            .expect("a frame from the session in time")?;
        Some(decode(&frame, &Limits::default()).expect("the session sends valid messages"))
    }
}

fn accept(root: Object) -> (S, Peer) {
    let (ours, theirs) = pynto_transport::memory::pair();
    let (mut reader, mut writer) = Box::new(ours).split();
    let hello = Hello {
        protocol: PROTOCOL_VERSION,
        implementation: "amplification-test".into(),
        ..Hello::default()
    };
    writer.send(&encode(&Message::Hello(hello))).unwrap();
    let session = Session::connect(
        Box::new(theirs),
        Role::Acceptor,
        NativeHost::new(),
        root,
        Config::default(),
    )
    .expect("the session accepts");
    let (tx, frames) = mpsc::channel();
    std::thread::spawn(move || loop {
        let frame = reader.recv().ok().flatten();
        let end = frame.is_none();
        if tx.send(frame).is_err() || end {
            return;
        }
    });
    let peer = Peer { writer, frames };
    assert!(matches!(peer.recv(), Some(Message::Hello(_))));
    (session, peer)
}

/// The body of `Request(seq, root, CallMethod(method, positional))`.
fn call(seq: u64, method: &str, positional: Vec<Value>) -> Frame {
    encode(&Message::Request(Request {
        seq,
        chain: 0x5eed_0000 + seq,
        target: Target::Export(0),
        op: Op::CallMethod(method.into(), Args::positional(positional)),
    }))
}

/// The session said Goodbye with a reason containing `expect`, closed with that protocol
/// error, and keeps nothing of the peer's.
fn assert_refused(session: &S, peer: &Peer, expect: &str) {
    let reason = match peer.recv() {
        Some(Message::Goodbye { reason }) => reason,
        other => panic!("expected Goodbye, got {other:?}"),
    };
    assert!(reason.contains(expect), "{reason:?} should say {expect:?}");
    assert_eq!(peer.recv(), None, "the session shut the connection");
    eventually(Duration::from_secs(5), "the session closed", || {
        session.is_closed()
    });
    assert_eq!(session.close_reason(), Some(Error::Protocol(reason)));
    eventually(Duration::from_secs(5), "the session released all", || {
        let stats = session.stats();
        stats.exported == 0 && stats.imported == 0
    });
}

#[test]
fn a_reused_attachment_closes_only_that_session() {
    let (client, _server) = memory_pair(Object::unit(), service());
    let root = client.root().unwrap();
    let (session, mut peer) = accept(service());

    // `count([7, 0], [7, 0])`: one 1 MiB attachment referenced twice.
    let mut body = encode(&Message::Request(Request {
        seq: 1,
        chain: 0x5eed_0001,
        target: Target::Export(0),
        op: Op::CallMethod("count".into(), Args::positional(vec![Value::None; 2])),
    }))
    .body
    .to_vec();
    // The two nils (c0 c0) before the empty keyword map (80) become [7, 0] twice.
    let tail = body.split_off(body.len() - 3);
    assert_eq!(tail, [0xc0, 0xc0, 0x80]);
    body.extend_from_slice(&[0x92, 0x07, 0x00, 0x92, 0x07, 0x00, 0x80]);
    let frame = Frame {
        body: body.into(),
        attachments: vec![Bytes::from(vec![7u8; 1 << 20])],
    };
    peer.writer.send(&frame).unwrap();

    assert_refused(
        &session,
        &peer,
        "attachment 0 is used a second time: each attachment backs at most one value",
    );
    let answer = root
        .call_method("double", vec![Value::Int(21)])
        .expect("the other session serves");
    assert_eq!(answer.value, Value::Int(42));
}

#[test]
fn a_body_over_its_decode_budget_closes_only_that_session() {
    let (client, _server) = memory_pair(Object::unit(), service());
    let root = client.root().unwrap();
    let (session, mut peer) = accept(service());

    // 4 MiB of nils: 56 bytes each once decoded, over 24 x 4 MiB.
    peer.writer
        .send(&call(1, "count", vec![Value::None; 4 << 20]))
        .unwrap();

    assert_refused(&session, &peer, "decoding budget");
    let answer = root
        .call_method("double", vec![Value::Int(4)])
        .expect("the other session serves");
    assert_eq!(answer.value, Value::Int(8));
}

#[test]
fn large_ordinary_messages_are_within_budget() {
    let (session, mut peer) = accept(service());
    // A million floats (9 MiB) and a million distinct ints of 4 bytes (5 MiB).
    let floats = (0..1_000_000).map(|i| Value::Float(f64::from(i) / 3.0));
    peer.writer
        .send(&call(1, "count", floats.collect()))
        .unwrap();
    let ints = (0..1_000_000).map(|i| Value::Int(1 << 20 | i));
    peer.writer.send(&call(2, "count", ints.collect())).unwrap();
    for seq in [1, 2] {
        match peer.recv() {
            Some(Message::Reply { seq: s, value }) => {
                assert_eq!((s, value), (seq, Value::Int(1_000_000)))
            }
            other => panic!("expected the reply to {seq}, got {other:?}"),
        }
    }
    assert!(!session.is_closed());
    session.close();
}

#[test]
fn a_huge_hello_is_refused_before_the_handshake_allocates_for_it() {
    // `Hello {features: ["" x 16 Mi]}`: serde would hold 24 bytes or more per byte.
    let mut body = vec![0x92, 0x00, 0x81, 0xa8];
    body.extend_from_slice(b"features");
    body.push(0xdd);
    body.extend_from_slice(&(16u32 << 20).to_be_bytes());
    body.extend(std::iter::repeat_n(0xa0, 16 << 20));
    let (ours, theirs) = pynto_transport::memory::pair();
    let (_reader, mut writer) = Box::new(ours).split();
    writer
        .send(&Frame {
            body: body.into(),
            attachments: Vec::new(),
        })
        .unwrap();
    let outcome = Session::connect(
        Box::new(theirs),
        Role::Acceptor,
        NativeHost::new(),
        service(),
        Config::default(),
    );
    match outcome {
        Err(Error::Protocol(why)) => assert!(why.contains("decoding budget"), "{why}"),
        Err(other) => panic!("expected a protocol error, got {other:?}"),
        Ok(_) => panic!("the session accepted a 16 MiB Hello"),
    }
}
