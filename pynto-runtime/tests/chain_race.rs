//! Two threads waiting on the same call chain at once: callbacks of that chain must reach a
//! thread still waiting on it, whichever of the two leaves first. (Alone in its test binary, so
//! no other test's threads can pick up a stranded job and hide the fault.)
//!
//! The set-up, with a raw peer on the other side: the test thread makes an async call (its chain
//! `C` goes out, nobody waits on it), the peer calls back on `C`, a pool worker adopts `C` and
//! makes a blocking call; then the test thread makes a blocking call on `C` too. The worker's
//! call is answered first and it leaves; then the peer sends a callback for the test thread's
//! call. It must run on the test thread, now.

mod common;

use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use common::raw::accept_raw;
use pynto_proto::{Args, Message, Op, Request, Target, Value};
use pynto_runtime::native::{self, Methods, NativeCall, Object};
use pynto_runtime::{CallOptions, Config};

fn ask(n: i64) -> Op {
    Op::CallMethod("ask".into(), Args::positional(vec![Value::Int(n)]))
}

#[test]
fn a_callback_reaches_the_thread_still_waiting_on_its_chain_after_another_waiter_leaves() {
    let echoed_on: Arc<Mutex<Option<ThreadId>>> = Arc::default();
    let record = Arc::clone(&echoed_on);
    let root = Object::new(
        Methods::new("Chains")
            .method_with_call("work", |call: &mut NativeCall<'_>| {
                // A nested blocking call to the peer, on the chain of the request being served.
                let session = call.session().clone();
                let answer = session
                    .request(
                        Target::Export(0),
                        ask(2),
                        session.boxer(),
                        &CallOptions::default(),
                    )
                    .map_err(|e| native::type_error(&e.to_string()))?;
                Ok(answer.value.into())
            })
            .method("echo", move |_| {
                *record.lock().unwrap() = Some(std::thread::current().id());
                Ok(Value::Str("echo".into()).into())
            }),
    );
    // The raw peer answers no liveness pings; none are sent within the test.
    let config = Config {
        liveness_interval: Duration::from_secs(600),
        ..Config::default()
    };
    let (session, mut peer) = accept_raw(root, config);

    // 1. An async call: the peer learns the test thread's chain; nobody waits on it.
    let pending = session.request_async(Target::Export(0), ask(1), session.boxer());
    let (async_seq, chain) = match peer.expect() {
        Message::Request(Request { seq, chain, op, .. }) if op == ask(1) => (seq, chain),
        other => panic!("expected ask(1), got {other:?}"),
    };

    // 2. The peer calls back on that chain: a pool worker serves `work` and waits in `ask(2)`.
    peer.send(&Message::Request(Request {
        seq: 1,
        chain,
        target: Target::Export(0),
        op: Op::CallMethod("work".into(), Args::default()),
    }));
    let worker_seq = match peer.expect() {
        Message::Request(Request {
            seq, chain: c, op, ..
        }) if op == ask(2) && c == chain => seq,
        other => panic!("expected ask(2) on the same chain, got {other:?}"),
    };

    // 3. The test thread makes a blocking call on the same chain (on a helper thread's behalf:
    //    the peer is driven from there while this thread waits).
    let driver = std::thread::spawn(move || {
        let own_seq = match peer.expect() {
            Message::Request(Request {
                seq, chain: c, op, ..
            }) if op == ask(3) && c == chain => seq,
            other => panic!("expected ask(3) on the same chain, got {other:?}"),
        };
        // 4. The worker's call is answered first: it leaves its wait, and `work` replies.
        peer.send(&Message::Reply {
            seq: worker_seq,
            value: Value::Int(20),
        });
        match peer.expect() {
            Message::Reply {
                seq: 1,
                value: Value::Int(20),
            } => {}
            other => panic!("expected work's reply, got {other:?}"),
        }
        // 5. A callback within the test thread's call, on the chain.
        peer.send(&Message::Request(Request {
            seq: 2,
            chain,
            target: Target::Export(0),
            op: Op::CallMethod("echo".into(), Args::default()),
        }));
        let echoed = peer.recv_within(Duration::from_secs(5));
        // Answer the test thread's call (and the async one) whatever happened, so it ends.
        peer.send(&Message::Reply {
            seq: own_seq,
            value: Value::Int(30),
        });
        peer.send(&Message::Reply {
            seq: async_seq,
            value: Value::Int(10),
        });
        (echoed, peer)
    });
    let answer = session
        .request(
            Target::Export(0),
            ask(3),
            session.boxer(),
            &CallOptions::default(),
        )
        .unwrap();
    assert_eq!(answer.value, Value::Int(30));
    let (echoed, _peer) = driver.join().unwrap();
    match echoed {
        Ok(Some(Message::Reply {
            seq: 2,
            value: Value::Str(s),
        })) if s == "echo" => {}
        Err(()) => panic!(
            "the callback was stranded: it did not run while its chain's remaining waiter waited"
        ),
        other => panic!("expected echo's reply, got {other:?}"),
    }
    assert_eq!(
        *echoed_on.lock().unwrap(),
        Some(std::thread::current().id()),
        "the callback ran on the thread waiting on its chain"
    );
    assert_eq!(
        futures::executor::block_on(pending).unwrap().value,
        Value::Int(10)
    );
    assert_eq!(pynto_runtime::waiting_chains(), 0);
}
