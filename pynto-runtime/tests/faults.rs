//! Faults while calls wait: a peer that disconnects or goes silent, timeouts (blocking and
//! async), closing a session under waiting threads, and a session over a Unix socket.

mod common;

use std::time::{Duration, Instant};

use common::raw::{connect_raw, RawPeer};
use common::*;
use pynto_proto::{Message, Op, Request, Target, Value};
use pynto_runtime::native::{Methods, Object};
use pynto_runtime::{Config, Error};

/// "Promptly": far more than a wake-up takes, far less than any timeout in play.
const PROMPT: Duration = Duration::from_secs(1);

fn add(root: &pynto_runtime::Remote<pynto_runtime::native::NativeHost>) -> Result<Value, Error> {
    root.call_method("add", vec![Value::Int(20), Value::Int(22)])
        .map(|a| a.value)
}

#[test]
fn a_call_waiting_when_the_server_closes_fails_promptly_with_connection_closed() {
    for transport in ["memory", "tcp"] {
        let gate = Gate::new();
        let (client, server) = relayed_pair(
            transport,
            Object::unit(),
            gated_service(gate.clone()),
            Config::default(),
            Config::default(),
        );
        let root = client.root().unwrap();
        let waiting = {
            let root = root.clone();
            std::thread::spawn(move || {
                let outcome = root.call_method("block", vec![]).map(|a| a.value);
                (outcome, Instant::now())
            })
        };
        gate.wait_entered(1);
        let closed_at = Instant::now();
        server.close();
        let (outcome, failed_at) = waiting.join().unwrap();
        assert_eq!(
            outcome,
            Err(Error::ConnectionClosed(
                "the peer closed the connection".into()
            )),
            "{transport}"
        );
        assert!(
            failed_at.duration_since(closed_at) < PROMPT,
            "{transport}: failed after {:?}",
            failed_at - closed_at
        );
        // Later calls fail at once, with the same error.
        let started = Instant::now();
        assert_eq!(
            add(&root),
            Err(Error::ConnectionClosed(
                "the peer closed the connection".into()
            )),
            "{transport}"
        );
        assert!(started.elapsed() < PROMPT);
        assert!(client.is_closed());
        gate.open();
    }
}

#[test]
fn a_call_waiting_when_the_peer_shuts_its_tcp_socket_fails_with_connection_closed() {
    let acceptor = pynto_transport::tcp::TcpAcceptor::bind("127.0.0.1:0").unwrap();
    let addr = acceptor.socket_addr().unwrap();
    let accepted = std::thread::spawn(move || acceptor.accept().unwrap());
    let client_end = pynto_transport::tcp::TcpTransport::connect(addr).unwrap();
    let peer = RawPeer::new(accepted.join().unwrap());
    let (client, mut peer) = connect_raw(
        Box::new(client_end),
        peer,
        Object::unit(),
        Config::default(),
    );
    let waiting = {
        let client = client.clone();
        std::thread::spawn(move || (client.root().map(|_| ()), Instant::now()))
    };
    // The request arrives; the peer vanishes without a Goodbye instead of answering.
    assert!(matches!(
        peer.expect(),
        Message::Request(Request {
            op: Op::GetRoot,
            ..
        })
    ));
    let shut_at = Instant::now();
    peer.shutdown();
    let (outcome, failed_at) = waiting.join().unwrap();
    assert_eq!(
        outcome,
        Err(Error::ConnectionClosed(
            "the peer closed the connection".into()
        ))
    );
    assert!(failed_at.duration_since(shut_at) < PROMPT);
    let started = Instant::now();
    assert_eq!(
        client.ping(),
        Err(Error::ConnectionClosed(
            "the peer closed the connection".into()
        ))
    );
    assert!(started.elapsed() < PROMPT);
}

#[test]
fn close_fails_every_waiting_call_at_once() {
    let gate = Gate::new();
    let (client, server) = relayed_pair(
        "tcp",
        Object::unit(),
        gated_service(gate.clone()),
        Config::default(),
        Config::default(),
    );
    let root = client.root().unwrap();
    let waiting: Vec<_> = (0..4)
        .map(|_| {
            let root = root.clone();
            std::thread::spawn(move || {
                (
                    root.call_method("block", vec![]).map(|a| a.value),
                    Instant::now(),
                )
            })
        })
        .collect();
    gate.wait_entered(4);
    let closed_at = Instant::now();
    client.close();
    let closed = Error::ConnectionClosed("the connection was closed by this side".into());
    for thread in waiting {
        let (outcome, failed_at) = thread.join().unwrap();
        assert_eq!(outcome, Err(closed.clone()));
        assert!(failed_at.duration_since(closed_at) < PROMPT);
    }
    assert_eq!(client.close_reason(), Some(closed.clone()));
    assert_eq!(add(&root), Err(closed));
    // The server heard the Goodbye.
    eventually(Duration::from_secs(5), "the server closed", || {
        server.is_closed()
    });
    assert_eq!(
        server.close_reason(),
        Some(Error::ConnectionClosed(
            "the peer closed the connection".into()
        ))
    );
    gate.open();
}

#[test]
fn a_call_past_its_timeout_fails_with_timeout_cancels_and_the_connection_stays() {
    let gate = Gate::new();
    let client_config = Config {
        call_timeout: Some(Duration::from_millis(100)),
        ..Config::default()
    };
    let (client, server) = relayed_pair(
        "memory",
        Object::unit(),
        gated_service(gate.clone()),
        client_config,
        Config::default(),
    );
    let root = client.root().unwrap();
    let started = Instant::now();
    assert_eq!(
        root.call_method("block", vec![]).map(|a| a.value),
        Err(Error::Timeout)
    );
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "timed out early, after {:?}",
        started.elapsed()
    );
    eventually(Duration::from_secs(5), "the server got the Cancel", || {
        server.stats().cancels_received == 1
    });
    // The server method still blocks; other calls are served meanwhile.
    assert_eq!(add(&root), Ok(Value::Int(42)));
    gate.open();
    eventually(
        Duration::from_secs(5),
        "the blocked method finished",
        || server.stats().requests_served == 3,
    );
    // Its late reply was dropped; the connection carries on.
    assert_eq!(add(&root), Ok(Value::Int(42)));
    assert!(!client.is_closed());
    assert_eq!(server.stats().cancels_received, 1);
}

#[tokio::test(start_paused = true)]
async fn an_async_call_dropped_by_a_tokio_timeout_under_paused_time_sends_cancel() {
    let gate = Gate::new();
    let (client, server) = relayed_pair(
        "memory",
        Object::unit(),
        gated_service(gate.clone()),
        Config::default(),
        Config::default(),
    );
    let root = client.root_async().await.unwrap();
    let (real, virtual_time) = (Instant::now(), tokio::time::Instant::now());
    let outcome = tokio::time::timeout(
        Duration::from_secs(30),
        root.call_method_async("block", vec![]),
    )
    .await;
    assert!(
        outcome.is_err(),
        "the call cannot finish while the gate is shut"
    );
    assert!(virtual_time.elapsed() >= Duration::from_secs(30));
    assert!(
        real.elapsed() < Duration::from_secs(10),
        "paused time should not wait for real: {:?}",
        real.elapsed()
    );
    // Dropping the future cancelled the call on the server.
    eventually(Duration::from_secs(5), "the server got the Cancel", || {
        server.stats().cancels_received == 1
    });
    gate.open();
    let sum = root
        .call_method_async("add", vec![Value::Int(1), Value::Int(2)])
        .await
        .unwrap();
    assert_eq!(sum.value, Value::Int(3));
}

fn short_liveness() -> Config {
    Config {
        // Short, with room for a loaded machine's scheduling delays (a pong late by more
        // than the timeout would fail the long-call test for the wrong reason).
        liveness_interval: Duration::from_millis(100),
        liveness_timeout: Duration::from_millis(600),
        ..Config::default()
    }
}

#[test]
fn a_peer_that_goes_silent_while_a_call_waits_is_declared_gone() {
    let (a, b) = pynto_transport::memory::pair();
    let peer = RawPeer::new(Box::new(b));
    let (client, peer) = connect_raw(Box::new(a), peer, Object::unit(), short_liveness());
    let started = Instant::now();
    let err = client.root().unwrap_err();
    let elapsed = started.elapsed();
    let Error::ConnectionClosed(why) = &err else {
        panic!("expected ConnectionClosed, got {err:?}")
    };
    assert!(
        why.starts_with("the peer stopped answering (silent for "),
        "{why}"
    );
    assert!(
        elapsed < Duration::from_secs(2),
        "declared gone after {elapsed:?}"
    );
    // What the silent peer was sent: the request, at least one liveness ping, then Goodbye.
    assert!(matches!(
        peer.expect(),
        Message::Request(Request {
            op: Op::GetRoot,
            ..
        })
    ));
    let mut pings = 0;
    let goodbye = loop {
        match peer.expect() {
            Message::Request(Request {
                seq: 0,
                op: Op::Ping,
                target: Target::Export(0),
                ..
            }) => pings += 1,
            Message::Goodbye { reason } => break reason,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(pings >= 1);
    assert_eq!(&goodbye, why);
    assert_eq!(peer.recv(), None);
    assert_eq!(client.close_reason(), Some(err));
}

#[test]
fn a_long_call_survives_short_liveness_settings_because_pings_are_answered() {
    let slow = Object::new(Methods::new("Slow").method("slow", |_| {
        // The workload under test, not a synchronisation: a call longer than the liveness
        // interval and timeout together, several times over.
        std::thread::sleep(Duration::from_millis(3000));
        Ok(Value::Str("done".into()).into())
    }));
    let (client, server) = relayed_pair(
        "tcp",
        Object::unit(),
        slow,
        short_liveness(),
        short_liveness(),
    );
    let root = client.root().unwrap();
    assert_eq!(
        root.call_method("slow", vec![]).unwrap().value,
        Value::Str("done".into())
    );
    assert!(!client.is_closed() && !server.is_closed());
}

#[test]
fn a_session_runs_over_a_unix_socket() {
    let path =
        std::env::temp_dir().join(format!("pynto-runtime-faults-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let acceptor = pynto_transport::unix::UnixAcceptor::bind(&path).unwrap();
    let accepted = std::thread::spawn(move || {
        let t = acceptor.accept().unwrap();
        (t, acceptor)
    });
    let client_end = pynto_transport::unix::UnixTransport::connect(&path).unwrap();
    let (server_end, _acceptor) = accepted.join().unwrap();
    let (client, _server) = connect_over(
        Box::new(client_end),
        server_end,
        Object::unit(),
        gated_service(Gate::new()),
        Config::default(),
        Config::default(),
    );
    assert!(client.peer_address().starts_with("unix://"));
    assert_eq!(add(&client.root().unwrap()), Ok(Value::Int(42)));
}
