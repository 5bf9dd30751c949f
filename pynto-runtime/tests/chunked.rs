//! Bulk frames go out in chunks: a small call overtakes a large one still being sent, on one
//! connection, and completes while the large one is in flight (DESIGN §2).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::raw::hello;
use pynto_proto::{decode, encode, Args, Limits, Message, Op, Target, Value, PROTOCOL_VERSION};
use pynto_runtime::native::{NativeHost, Object};
use pynto_runtime::{CallOptions, Config, Role, Session};
use pynto_transport::bulk;
use pynto_transport::tcp::{TcpAcceptor, TcpTransport};

fn call(session: &common::S, method: &str, positional: Vec<Value>) -> Value {
    let op = Op::CallMethod(
        method.into(),
        Args {
            positional,
            ..Args::default()
        },
    );
    session
        .request(
            Target::Export(0),
            op,
            session.boxer(),
            &CallOptions::default(),
        )
        .expect("the call succeeds")
        .value
}

#[test]
fn a_small_call_overtakes_a_large_one_in_flight() {
    // The client is a real session over TCP; the server is this test, reading frames by hand
    // and only once both calls have been made.
    let acceptor = TcpAcceptor::bind("127.0.0.1:0").unwrap();
    let addr = acceptor.socket_addr().unwrap();
    let client = std::thread::spawn(move || {
        let transport = TcpTransport::connect(addr).unwrap();
        Session::connect(
            Box::new(transport),
            Role::Connector,
            NativeHost::new(),
            Object::new(pynto_runtime::native::Methods::new("client")),
            Config::default(),
        )
    });
    let (mut reader, mut writer) = acceptor.accept().unwrap().split();
    let recv = |reader: &mut Box<dyn pynto_transport::FrameReader>| {
        let frame = reader.recv().unwrap().expect("a frame");
        decode(&frame, &Limits::default()).unwrap()
    };
    match recv(&mut reader) {
        Message::Hello(h) => assert!(h.features.iter().any(|f| f == bulk::FEATURE)),
        other => panic!("expected Hello, got {other:?}"),
    }
    let mut ours = hello(PROTOCOL_VERSION, None);
    ours.features = vec![bulk::FEATURE.into()];
    writer.send(&encode(&Message::Hello(ours))).unwrap();
    let session = client.join().unwrap().expect("the client connects");

    // 64 MiB: far more than the socket's buffers hold, so the sender blocks inside it.
    let big = Bytes::from(vec![7u8; 64 << 20]);
    let large = {
        let (session, big) = (session.clone(), big.clone());
        std::thread::spawn(move || call(&session, "put", vec![Value::Bytes(big)]))
    };
    let small = {
        let session = session.clone();
        std::thread::spawn(move || {
            // Let the large call start first (it then holds the writer, a chunk at a time).
            std::thread::sleep(Duration::from_millis(200));
            call(&session, "f", vec![])
        })
    };
    std::thread::sleep(Duration::from_millis(400));

    // Now read: the small request must come before the large one is whole. Answer it, and its
    // caller returns while the large call is still waiting.
    let mut order = Vec::new();
    let put_seq = loop {
        match recv(&mut reader) {
            Message::Request(r) => {
                let Op::CallMethod(name, args) = &r.op else {
                    panic!("unexpected op {:?}", r.op)
                };
                order.push(name.clone());
                if name == "f" {
                    let reply = Message::Reply {
                        seq: r.seq,
                        value: Value::Int(1),
                    };
                    writer.send(&encode(&reply)).unwrap();
                } else {
                    assert_eq!(args.positional, vec![Value::Bytes(big.clone())]);
                    break r.seq;
                }
            }
            Message::Release(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(order, ["f", "put"], "the small call went out first");
    assert_eq!(small.join().unwrap(), Value::Int(1));
    assert!(
        !large.is_finished(),
        "the large call still waits for its reply"
    );
    let reply = Message::Reply {
        seq: put_seq,
        value: Value::Int(64 << 20),
    };
    writer.send(&encode(&reply)).unwrap();
    assert_eq!(large.join().unwrap(), Value::Int(64 << 20));
}
