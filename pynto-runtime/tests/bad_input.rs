//! Bad input from a peer speaking the protocol by hand: every protocol violation closes the
//! session with `Error::Protocol` and a Goodbye saying why, while refusals of single requests
//! (unknown objects, unknown ops, limits) fail only that request and leave the connection
//! usable.

mod common;

use std::time::Duration;

use common::raw::{self, accept_raw, RawPeer};
use common::*;
use pynto_proto::{
    Args, ErrorKind, Limits, Message, ObjRef, Op, Request, Target, Value, PROTOCOL_VERSION,
};
use pynto_runtime::native::{NativeHost, Object};
use pynto_runtime::{Config, Error, Role, Session};

fn request(seq: u64, oid: u64, op: Op) -> Message {
    // Chain ids below 2^32 are never minted by this process (its salt fills the high half), so
    // these requests never route to a thread of the test.
    Message::Request(Request {
        seq,
        chain: 0x5eed_0000 + seq,
        target: Target::Export(oid),
        op,
    })
}

fn call(seq: u64, method: &str) -> Message {
    request(seq, 0, Op::CallMethod(method.into(), Args::default()))
}

/// The session said Goodbye with a reason containing `expect`, shut the transport, and closed
/// with `Error::Protocol` carrying that same reason.
fn assert_protocol_close(session: &S, peer: &RawPeer, expect: &str) -> String {
    let reason = peer.expect_goodbye();
    assert!(
        reason.contains(expect),
        "Goodbye reason {reason:?} should contain {expect:?}"
    );
    eventually(Duration::from_secs(5), "the session closed", || {
        session.is_closed()
    });
    assert_eq!(
        session.close_reason(),
        Some(Error::Protocol(reason.clone()))
    );
    // Calls after the close fail at once with the same error.
    let err = session.ping().unwrap_err();
    assert_eq!(err, Error::Protocol(reason.clone()));
    reason
}

/// The peer's reply to `seq`, which must be a successful one.
fn expect_reply(peer: &RawPeer, seq: u64) -> Value {
    match peer.expect() {
        Message::Reply { seq: s, value } if s == seq => value,
        other => panic!("expected the reply to request {seq}, got {other:?}"),
    }
}

/// The peer's failure report for `seq`: its kind and message.
fn expect_failure(peer: &RawPeer, seq: u64) -> (ErrorKind, String) {
    match peer.expect() {
        Message::Failure { seq: s, failure } if s == seq => (failure.kind, failure.message),
        other => panic!("expected a failure of request {seq}, got {other:?}"),
    }
}

/// The connection still serves requests: the root comes back by reference.
fn assert_usable(peer: &mut RawPeer, seq: u64) {
    peer.send(&request(seq, 0, Op::GetRoot));
    match expect_reply(peer, seq) {
        Value::Ref(ObjRef { oid: 0, .. }) => {}
        other => panic!("expected the root by reference, got {other:?}"),
    }
}

#[test]
fn releasing_an_oid_that_was_never_sent_is_a_protocol_error() {
    let (session, mut peer) = accept_raw(gated_service(Gate::new()), Config::default());
    peer.send(&Message::Release(vec![(42, 1)]));
    assert_protocol_close(&session, &peer, "release of oid 42, which is not exported");
}

#[test]
fn releasing_more_references_than_were_sent_is_a_protocol_error() {
    let (session, mut peer) = accept_raw(gated_service(Gate::new()), Config::default());
    // `fresh` exports a new object, sent once.
    peer.send(&call(1, "fresh"));
    let oid = match expect_reply(&peer, 1) {
        Value::Ref(r) => r.oid,
        other => panic!("expected a reference, got {other:?}"),
    };
    assert_eq!(session.stats().exported, 1);
    peer.send(&Message::Release(vec![(oid, 2)]));
    assert_protocol_close(
        &session,
        &peer,
        &format!("release of 2 references to oid {oid}, which was sent only 1 times"),
    );
}

#[test]
fn releasing_the_root_more_often_than_it_was_sent_is_a_protocol_error() {
    let (session, mut peer) = accept_raw(gated_service(Gate::new()), Config::default());
    assert_usable(&mut peer, 1);
    peer.send(&Message::Release(vec![(0, 1)]));
    assert_usable(&mut peer, 2);
    peer.send(&Message::Release(vec![(0, 2)]));
    assert_protocol_close(
        &session,
        &peer,
        "release of 2 references to oid 0, which was sent only 1 times",
    );
}

#[test]
fn a_request_for_an_unknown_oid_fails_with_no_such_object_and_the_connection_stays() {
    let (session, mut peer) = accept_raw(gated_service(Gate::new()), Config::default());
    peer.send(&request(1, 999, Op::Repr));
    assert_eq!(
        expect_failure(&peer, 1),
        (
            ErrorKind::NoSuchObject,
            "object 999 is not exported".to_string()
        )
    );
    assert_usable(&mut peer, 2);
    assert!(!session.is_closed());
}

#[test]
fn an_unknown_op_code_fails_with_unimplemented_and_the_connection_stays() {
    let (session, mut peer) = accept_raw(gated_service(Gate::new()), Config::default());
    // [Request, seq 1, chain 17, target 0, [op 99, "operand", [1, {}]]]: a newer peer's op.
    peer.send_body(&[
        0x95, 0x01, 0x01, 0x11, 0x00, 0x93, 0x63, 0xa7, b'o', b'p', b'e', b'r', b'a', b'n', b'd',
        0x92, 0x01, 0x80,
    ]);
    let (kind, message) = expect_failure(&peer, 1);
    assert_eq!(kind, ErrorKind::Unimplemented);
    assert!(message.contains("op code 99"), "{message}");
    // The next call on the same connection is served as usual.
    peer.send(&request(
        2,
        0,
        Op::CallMethod(
            "add".into(),
            Args::positional(vec![Value::Int(2), Value::Int(3)]),
        ),
    ));
    assert_eq!(expect_reply(&peer, 2), Value::Int(5));
    assert_usable(&mut peer, 3);
    assert!(!session.is_closed());
    assert_eq!(session.stats().requests_served, 2);
}

#[test]
fn an_unknown_message_code_is_a_protocol_error() {
    let (session, mut peer) = accept_raw(gated_service(Gate::new()), Config::default());
    // [message 99, 0]
    peer.send_body(&[0x92, 0x63, 0x00]);
    assert_protocol_close(
        &session,
        &peer,
        "the peer sent a malformed message: unknown message code 99",
    );
}

#[test]
fn a_body_that_is_not_msgpack_is_a_protocol_error() {
    let (session, mut peer) = accept_raw(gated_service(Gate::new()), Config::default());
    peer.send_body(&[0xc1, 0xff, 0x00, 0x13, 0x37]);
    assert_protocol_close(&session, &peer, "the peer sent a malformed message: ");
}

#[test]
fn a_frame_larger_than_max_frame_is_a_protocol_error() {
    let config = Config {
        limits: Limits {
            max_frame: 1024,
            ..Limits::default()
        },
        ..Config::default()
    };
    let (session, mut peer) = accept_raw(gated_service(Gate::new()), config);
    peer.send_body(&[0u8; 2048]);
    assert_protocol_close(
        &session,
        &peer,
        "the peer sent a bad frame: frame body of 2048 bytes exceeds the limit of 1024 bytes",
    );
}

#[test]
fn a_second_hello_is_a_protocol_error() {
    let (session, mut peer) = accept_raw(gated_service(Gate::new()), Config::default());
    peer.send(&Message::Hello(raw::hello(PROTOCOL_VERSION, None)));
    assert_protocol_close(&session, &peer, "unexpected Hello after the handshake");
}

#[test]
fn requests_beyond_max_in_flight_fail_with_overloaded_and_the_connection_stays() {
    let gate = Gate::new();
    let config = Config {
        limits: Limits {
            max_in_flight: 2,
            ..Limits::default()
        },
        ..Config::default()
    };
    let (session, mut peer) = accept_raw(gated_service(gate.clone()), config);
    peer.send(&call(1, "block"));
    peer.send(&call(2, "block"));
    // The reader counts both in flight before it reads the third.
    peer.send(&request(3, 0, Op::Repr));
    assert_eq!(
        expect_failure(&peer, 3),
        (
            ErrorKind::Overloaded,
            "more than 2 requests in flight".to_string()
        )
    );
    // Pings are answered by the reader itself, whatever is in flight.
    peer.send(&request(4, 0, Op::Ping));
    assert_eq!(expect_reply(&peer, 4), Value::None);
    gate.wait_entered(2);
    gate.open();
    let mut answered = [peer.expect(), peer.expect()].map(|m| match m {
        Message::Reply {
            seq,
            value: Value::Int(7),
        } => seq,
        other => panic!("expected a reply of 7, got {other:?}"),
    });
    answered.sort_unstable();
    assert_eq!(answered, [1, 2]);
    // Below the limit again, requests run.
    assert_usable(&mut peer, 5);
    assert!(!session.is_closed());
    assert_eq!(session.stats().requests_served, 3);
}

#[test]
fn exports_beyond_max_objects_fail_with_overloaded_and_the_connection_stays() {
    // The root counts: three entries are the root and two objects.
    let server = Config {
        limits: Limits {
            max_objects: 3,
            ..Limits::default()
        },
        ..Config::default()
    };
    let (a, b) = pynto_transport::memory::pair();
    let (client, server) = connect_over(
        Box::new(a),
        Box::new(b),
        Object::unit(),
        gated_service(Gate::new()),
        Config::default(),
        server,
    );
    let root = client.root().unwrap();
    // What the server counts with only the root out (whether the root counts or not).
    let base = server.stats().exported;
    let first = root.call_method("fresh", vec![]).unwrap();
    let second = root.call_method("fresh", vec![]).unwrap();
    let held = [
        root.remote_of(&first).unwrap(),
        root.remote_of(&second).unwrap(),
    ];
    drop((first, second));
    assert_eq!(server.stats().exported, base + 2);
    let err = root.call_method("fresh", vec![]).unwrap_err();
    assert_eq!(err.remote_kind(), Some(ErrorKind::Overloaded));
    match &err {
        Error::Remote(f) => {
            assert_eq!(f.message, "this side already exports 3 objects to the peer")
        }
        other => panic!("expected a remote failure, got {other:?}"),
    }
    assert!(!client.is_closed() && !server.is_closed());
    // Releasing one makes room for one more.
    drop(held);
    client.flush_releases();
    eventually(
        Duration::from_secs(5),
        "the server released both objects",
        || server.stats().exported == base,
    );
    let third = root.call_method("fresh", vec![]).unwrap();
    assert!(root.remote_of(&third).is_some());
    assert_eq!(
        root.call_method("add", vec![Value::Int(2), Value::Int(3)])
            .unwrap()
            .value,
        Value::Int(5)
    );
}

#[test]
fn a_hello_with_another_protocol_version_is_refused_with_both_versions_named() {
    // The raw peer connects with version 2.
    let (a, b) = pynto_transport::memory::pair();
    let session = std::thread::spawn(move || {
        Session::connect(
            Box::new(b),
            Role::Acceptor,
            NativeHost::new(),
            Object::unit(),
            Config::default(),
        )
    });
    let mut peer = RawPeer::new(Box::new(a));
    peer.send(&Message::Hello(raw::hello(2, None)));
    let expected = format!(
        "protocol version mismatch: this side speaks pynto protocol {PROTOCOL_VERSION} ({}), the peer speaks 2 (raw-test/2)",
        pynto_proto::IMPLEMENTATION
    );
    assert_eq!(
        session.join().unwrap().err(),
        Some(Error::VersionMismatch {
            ours: PROTOCOL_VERSION,
            theirs: Some(2),
            reason: expected.clone()
        })
    );
    assert_eq!(peer.expect_goodbye(), expected);

    // The raw peer accepts, and answers the session's Hello with version 7.
    let (a, b) = pynto_transport::memory::pair();
    let session = std::thread::spawn(move || {
        Session::connect(
            Box::new(a),
            Role::Connector,
            NativeHost::new(),
            Object::unit(),
            Config::default(),
        )
    });
    let mut peer = RawPeer::new(Box::new(b));
    assert!(matches!(peer.expect(), Message::Hello(h) if h.protocol == PROTOCOL_VERSION));
    peer.send(&Message::Hello(raw::hello(7, None)));
    let err = session
        .join()
        .unwrap()
        .err()
        .expect("the session refuses version 7");
    let Error::VersionMismatch {
        ours: PROTOCOL_VERSION,
        theirs: Some(7),
        reason: why,
    } = &err
    else {
        panic!("expected a version mismatch, got {err:?}")
    };
    assert!(
        why.contains(&format!("pynto protocol {PROTOCOL_VERSION}"))
            && why.contains("the peer speaks 7 (raw-test/7)"),
        "{why}"
    );
    assert_eq!(&peer.expect_goodbye(), why);
}

#[test]
fn a_first_message_other_than_hello_is_refused() {
    let (a, b) = pynto_transport::memory::pair();
    let session = std::thread::spawn(move || {
        Session::connect(
            Box::new(b),
            Role::Acceptor,
            NativeHost::new(),
            Object::unit(),
            Config::default(),
        )
    });
    let mut peer = RawPeer::new(Box::new(a));
    peer.send(&request(1, 0, Op::GetRoot));
    let expected = "expected Hello first, got Request".to_string();
    assert_eq!(
        session.join().unwrap().err(),
        Some(Error::Protocol(expected.clone()))
    );
    assert_eq!(peer.expect_goodbye(), expected);
}

#[test]
fn a_peer_silent_during_the_handshake_is_dropped_at_the_handshake_timeout() {
    let (a, b) = pynto_transport::memory::pair();
    let config = Config {
        handshake_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    let session = std::thread::spawn(move || {
        Session::connect(
            Box::new(b),
            Role::Acceptor,
            NativeHost::new(),
            Object::unit(),
            config,
        )
    });
    let peer = RawPeer::new(Box::new(a));
    let err = session
        .join()
        .unwrap()
        .err()
        .expect("the handshake times out");
    assert_eq!(
        err,
        Error::ConnectionClosed("no Hello from the peer within 300ms".into())
    );
    assert_eq!(peer.recv(), None);
}

fn token_config(token: Option<&str>) -> Config {
    Config {
        token: token.map(str::to_string),
        ..Config::default()
    }
}

#[test]
fn a_wrong_or_missing_token_fails_authentication_and_the_right_one_works() {
    let transports = |tcp: bool| -> (
        Box<dyn pynto_transport::Transport>,
        Box<dyn pynto_transport::Transport>,
    ) {
        if tcp {
            let acceptor = pynto_transport::tcp::TcpAcceptor::bind("127.0.0.1:0").unwrap();
            let addr = acceptor.socket_addr().unwrap();
            let client = pynto_transport::tcp::TcpTransport::connect(addr).unwrap();
            (Box::new(client), acceptor.accept().unwrap())
        } else {
            let (a, b) = pynto_transport::memory::pair();
            (Box::new(a), Box::new(b))
        }
    };
    for tcp in [false, true] {
        for (given, why) in [
            (Some("guess"), "wrong token"),
            (None, "a token is required"),
        ] {
            let (a, b) = transports(tcp);
            let (client, server) = try_connect(
                a,
                b,
                Object::unit(),
                token_config(given),
                token_config(Some("s3cret")),
            );
            let refusal = format!("authentication failed: {why}");
            assert_eq!(
                client.err(),
                Some(Error::Authentication(format!(
                    "the peer refused the connection: {refusal}"
                ))),
                "tcp: {tcp}"
            );
            assert_eq!(
                server.err(),
                Some(Error::Authentication(refusal)),
                "tcp: {tcp}"
            );
        }
        let (a, b) = transports(tcp);
        let (client, server) = try_connect(
            a,
            b,
            gated_service(Gate::new()),
            token_config(Some("s3cret")),
            token_config(Some("s3cret")),
        );
        let (client, _server) = (
            client.expect("the right token connects"),
            server.expect("the right token is accepted"),
        );
        let sum = client
            .root()
            .unwrap()
            .call_method("add", vec![Value::Int(20), Value::Int(22)])
            .unwrap();
        assert_eq!(sum.value, Value::Int(42));
    }
}
