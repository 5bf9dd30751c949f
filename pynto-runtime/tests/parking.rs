//! Idle TCP sessions park in the process's poller, and everything still works on a parked
//! connection: calls (the caller reads its own reply), calls the other way, releases flushed by
//! the housekeeper, liveness of calls waiting on it, and the peer closing it.

mod common;

use std::time::Duration;

use common::raw::{connect_raw, RawPeer};
use common::*;
use pynto_proto::{Message, Value};
use pynto_runtime::native::{Methods, Object};
use pynto_runtime::{Config, Error};

/// Far longer than parking takes (50 ms of silence), far shorter than a test's patience.
const PATIENCE: Duration = Duration::from_secs(10);

fn adder(name: &'static str) -> Object {
    Object::new(Methods::new(name).method("add", |args| {
        let (Value::Int(a), Value::Int(b)) = (&args.positional[0], &args.positional[1]) else {
            return Err(pynto_runtime::native::type_error("add takes two ints"));
        };
        Ok(Value::Int(a + b).into())
    }))
}

fn all_parked(sessions: &[&S]) {
    eventually(PATIENCE, "every idle session parked", || {
        sessions.iter().all(|s| s.is_parked())
    });
}

#[test]
fn calls_both_ways_and_releases_work_on_parked_connections() {
    let pairs: Vec<(S, S)> = (0..8)
        .map(|_| tcp_pair(adder("Client"), adder("Server")))
        .collect();
    let sessions: Vec<&S> = pairs.iter().flat_map(|(c, s)| [c, s]).collect();
    all_parked(&sessions);
    // A caller takes the reader of its parked connection and reads its own reply.
    let roots: Vec<_> = pairs.iter().map(|(c, _)| c.root().unwrap()).collect();
    for root in &roots {
        let sum = root.call_method("add", vec![Value::Int(20), Value::Int(22)]);
        assert_eq!(sum.unwrap().value, Value::Int(42));
    }
    all_parked(&sessions);
    // The other way: each server calls its client's root.
    for (_, server) in &pairs {
        let sum = server
            .root()
            .unwrap()
            .call_method("add", vec![Value::Int(1), Value::Int(2)]);
        assert_eq!(sum.unwrap().value, Value::Int(3));
    }
    all_parked(&sessions);
    // Dropping the roots queues releases; the housekeeper has them written, and the parked
    // servers wake up to read them.
    drop(roots);
    eventually(PATIENCE, "every release reached its server", || {
        pairs.iter().all(|(_, s)| s.stats().exported == 0)
    });
    all_parked(&sessions);
    // A peer closing wakes its parked partner, which closes too.
    for (client, server) in &pairs {
        client.close();
        eventually(PATIENCE, "the server saw the close", || server.is_closed());
    }
}

#[test]
fn an_async_call_waiting_on_a_parked_connection_is_still_watched_for_liveness() {
    let acceptor = pynto_transport::tcp::TcpAcceptor::bind("127.0.0.1:0").unwrap();
    let addr = acceptor.socket_addr().unwrap();
    let accepted = std::thread::spawn(move || acceptor.accept().unwrap());
    let ours = pynto_transport::tcp::TcpTransport::connect(addr).unwrap();
    let peer = RawPeer::new(accepted.join().unwrap());
    let config = Config {
        liveness_interval: Duration::from_millis(100),
        liveness_timeout: Duration::from_millis(600),
        ..Config::default()
    };
    let (client, peer) = connect_raw(Box::new(ours), peer, Object::unit(), config);
    // Nobody blocks on the reply: a read loop reads, and parks the connection after a moment.
    let reply = client.request_async(
        pynto_proto::Target::Export(0),
        pynto_proto::Op::GetRoot,
        client.boxer(),
    );
    assert!(matches!(peer.expect(), Message::Request(_)));
    eventually(PATIENCE, "the waiting connection parked", || {
        client.is_parked()
    });
    // The silent peer is pinged, and declared gone: the call fails.
    let outcome = futures::executor::block_on(reply);
    assert!(
        matches!(&outcome, Err(Error::ConnectionClosed(why)) if why.starts_with("the peer stopped answering")),
        "{outcome:?}"
    );
}
