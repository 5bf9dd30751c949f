//! Sessions end to end over the memory pair and TCP: calls, callbacks on the waiting thread,
//! call chains under contention, deep recursion, and reference counting.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use common::*;
use pynto_proto::{Args, ErrorKind, Op, Value};
use pynto_runtime::native::{self, function, Methods, NativeCall, Object, Return};
use pynto_runtime::{Error, Remote};

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        other => panic!("expected an int, got {other:?}"),
    }
}

fn calc() -> Object {
    Object::new(Methods::new("Calc").method("add", |args| {
        Ok(Value::Int(int(&args.positional[0]) + int(&args.positional[1])).into())
    }))
}

/// Call `name` on `remote` with a local callback object as the only argument.
fn call_with_callback(
    remote: &Remote<native::NativeHost>,
    name: &str,
    callback: &Object,
    extra: Vec<Value>,
) -> Result<Value, Error> {
    let answer = remote.op_with(|boxer| {
        let cb = native::export(boxer, Return::Object(callback.clone())).map_err(Error::Remote)?;
        let mut positional = vec![cb];
        positional.extend(extra);
        Ok(Op::CallMethod(name.into(), Args::positional(positional)))
    })?;
    Ok(answer.value)
}

/// A server whose `call_back(cb, n)` calls `cb(n)` and returns its result plus one.
fn callback_server() -> Object {
    Object::new(Methods::new("Server").method_with_call(
        "call_back",
        |call: &mut NativeCall<'_>| {
            let cb = call.remote(0).expect("a callback");
            let n = call.args.positional[1].clone();
            let answer = cb
                .call(vec![n])
                .map_err(|e| native::type_error(&e.to_string()))?;
            Ok(Value::Int(int(&answer.value) + 1).into())
        },
    ))
}

#[test]
fn a_call_returns_its_result_over_memory_and_tcp() {
    for (client, _server) in [
        memory_pair(Object::unit(), calc()),
        tcp_pair(Object::unit(), calc()),
    ] {
        let root = client.root().unwrap();
        let sum = root
            .call_method("add", vec![Value::Int(2), Value::Int(40)])
            .unwrap();
        assert_eq!(sum.value, Value::Int(42));
        // getattr of a method returns a bound method by reference, callable in turn.
        let add = root.getattr("add").unwrap();
        let add = root.remote_of(&add).expect("bound method by reference");
        assert_eq!(
            add.call(vec![Value::Int(1), Value::Int(1)]).unwrap().value,
            Value::Int(2)
        );
        assert!(client.ping().unwrap() < Duration::from_secs(5));
    }
}

#[test]
fn a_nested_callback_runs_on_the_waiting_thread() {
    let (client, _server) = memory_pair(Object::unit(), callback_server());
    let seen: Arc<Mutex<Vec<ThreadId>>> = Arc::default();
    let record = Arc::clone(&seen);
    let cb = function("cb", move |call| {
        record.lock().unwrap().push(std::thread::current().id());
        Ok(Value::Int(int(&call.args.positional[0]) * 10).into())
    });
    let root = client.root().unwrap();
    let result = call_with_callback(&root, "call_back", &cb, vec![Value::Int(4)]).unwrap();
    assert_eq!(result, Value::Int(41));
    assert_eq!(*seen.lock().unwrap(), vec![std::thread::current().id()]);
}

#[test]
fn four_threads_holding_a_reentrant_lock_get_their_own_callbacks() {
    let (client, _server) = tcp_pair(Object::unit(), callback_server());
    let lock = Arc::new(parking_lot::ReentrantMutex::new(()));
    let misrouted = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (client, lock, misrouted, done) = (
                client.clone(),
                lock.clone(),
                misrouted.clone(),
                done.clone(),
            );
            std::thread::spawn(move || {
                let root = client.root().unwrap();
                for i in 0..50 {
                    let me = std::thread::current().id();
                    let (lock2, misrouted2) = (lock.clone(), misrouted.clone());
                    let cb = function("cb", move |call| {
                        if std::thread::current().id() != me {
                            misrouted2.fetch_add(1, Ordering::SeqCst);
                        }
                        // Re-entering works only on the thread that holds the lock; anywhere
                        // else this would deadlock.
                        let _again = lock2.lock();
                        Ok(call.args.positional[0].clone().into())
                    });
                    let _held = lock.lock();
                    let result =
                        call_with_callback(&root, "call_back", &cb, vec![Value::Int(i)]).unwrap();
                    assert_eq!(result, Value::Int(i + 1));
                    done.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(done.load(Ordering::SeqCst), 200);
    assert_eq!(misrouted.load(Ordering::SeqCst), 0);
}

/// `down(cb, n)` on either side calls the other side's `down` through `cb` until n is 0.
#[test]
fn recursion_200_deep_across_the_wire_uses_one_thread_per_side() {
    // Unoptimised builds use a lot of stack per level; give this thread what a Python main
    // thread has (8 MiB) several times over.
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(recursion_200_deep)
        .unwrap()
        .join()
        .unwrap();
}

fn recursion_200_deep() {
    let server_threads: Arc<Mutex<HashSet<ThreadId>>> = Arc::default();
    let st = Arc::clone(&server_threads);
    let server = Object::new(Methods::new("Server").method_with_call(
        "down",
        move |call: &mut NativeCall<'_>| {
            st.lock().unwrap().insert(std::thread::current().id());
            let n = int(&call.args.positional[1]);
            if n == 0 {
                return Ok(Value::Int(0).into());
            }
            let cb = call.remote(0).unwrap();
            let depth = cb
                .call(vec![Value::Int(n - 1)])
                .map_err(|e| native::type_error(&e.to_string()))?;
            Ok(Value::Int(int(&depth.value) + 1).into())
        },
    ));
    let (client, _server) = memory_pair(Object::unit(), server);
    let root = client.root().unwrap();
    let client_threads: Arc<Mutex<HashSet<ThreadId>>> = Arc::default();
    let ct = Arc::clone(&client_threads);
    let cb_slot: Arc<Mutex<Option<Object>>> = Arc::default();
    let cb_for_closure = Arc::clone(&cb_slot);
    let root_for_cb = root.clone();
    let cb = function("down_cb", move |call| {
        ct.lock().unwrap().insert(std::thread::current().id());
        let n = int(&call.args.positional[0]);
        let me = cb_for_closure.lock().unwrap().clone().unwrap();
        let depth = call_with_callback(&root_for_cb, "down", &me, vec![Value::Int(n)])
            .map_err(|e| native::type_error(&e.to_string()))?;
        Ok(Value::Int(int(&depth) + 1).into())
    });
    *cb_slot.lock().unwrap() = Some(cb.clone());
    let depth = call_with_callback(&root, "down", &cb, vec![Value::Int(200)]).unwrap();
    // 200 nested round trips: each side adds one per level it runs.
    assert_eq!(depth, Value::Int(400));
    *cb_slot.lock().unwrap() = None;
    assert_eq!(
        client_threads.lock().unwrap().len(),
        1,
        "client side ran the recursion on one thread"
    );
    assert!(client_threads
        .lock()
        .unwrap()
        .contains(&std::thread::current().id()));
    assert_eq!(
        server_threads.lock().unwrap().len(),
        1,
        "server side ran the recursion on one thread"
    );
}

#[test]
fn a_hundred_thousand_references_sent_and_dropped_leave_both_tables_empty() {
    // Each call returns a fresh object by reference; a window of a thousand is kept alive,
    // then dropped, so releases go out in batches while calls continue.
    let server = Object::new(Methods::new("Factory").method("fresh", |_| {
        Ok(Return::Object(Object::new(Methods::new("Thing"))))
    }));
    let (client, server_session) = memory_pair(Object::unit(), server);
    let root = client.root().unwrap();
    let mut held = Vec::new();
    for round in 0..100_000 {
        let answer = root.call_method("fresh", vec![]).unwrap();
        held.push(root.remote_of(&answer).unwrap());
        if round % 1000 == 999 {
            // Keep a window alive, then drop it: releases go out in batches.
            assert!(server_session.stats().exported >= 1000);
            held.clear();
        }
    }
    drop(held);
    drop(root);
    client.flush_releases();
    eventually(Duration::from_secs(10), "server export table empty", || {
        server_session.stats().exported == 0
    });
    assert_eq!(client.stats().imported, 0);
    assert!(client.stats().releases_sent > 0);
}

#[test]
fn an_unknown_oid_fails_with_no_such_object_and_the_connection_stays() {
    let (client, _server) = memory_pair(Object::unit(), calc());
    let err = client
        .request(
            pynto_proto::Target::Export(999),
            Op::Repr,
            client.boxer(),
            &Default::default(),
        )
        .unwrap_err();
    assert_eq!(err.remote_kind(), Some(ErrorKind::NoSuchObject));
    assert_eq!(
        client
            .root()
            .unwrap()
            .call_method("add", vec![Value::Int(1), Value::Int(2)])
            .unwrap()
            .value,
        Value::Int(3)
    );
}

#[test]
fn an_unsupported_op_fails_with_unimplemented_and_the_connection_stays() {
    let (client, _server) = memory_pair(Object::unit(), calc());
    let root = client.root().unwrap();
    let err = root.op(Op::Len).unwrap_err();
    assert_eq!(err.remote_kind(), Some(ErrorKind::Unimplemented));
    let err = client
        .request(
            pynto_proto::Target::Answer(1, vec![]),
            Op::Repr,
            client.boxer(),
            &Default::default(),
        )
        .unwrap_err();
    assert_eq!(err.remote_kind(), Some(ErrorKind::Unimplemented));
    assert!(!client.is_closed());
    assert_eq!(
        root.call_method("add", vec![Value::Int(1), Value::Int(2)])
            .unwrap()
            .value,
        Value::Int(3)
    );
}

#[test]
fn a_remote_exception_comes_back_with_its_type() {
    let (client, _server) = memory_pair(Object::unit(), calc());
    let err = client
        .root()
        .unwrap()
        .call_method("nope", vec![])
        .unwrap_err();
    match err {
        Error::Remote(f) => {
            assert_eq!(f.type_name, "builtins.AttributeError");
            assert!(f.message.contains("nope"));
        }
        other => panic!("expected a remote AttributeError, got {other:?}"),
    }
}

#[test]
fn held_requests_wait_until_the_side_starts_serving() {
    use std::sync::atomic::AtomicBool;
    let ready = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&ready);
    let server_root = Object::new(Methods::new("Late").method("was_ready", move |_| {
        Ok(Value::Bool(seen.load(Ordering::SeqCst)).into())
    }));
    let server_config = pynto_runtime::Config {
        hold_requests: true,
        ..Default::default()
    };
    // Relayed, so the two sessions of this process route chains as two processes would.
    let (client, server) = relayed_pair(
        "memory",
        Object::unit(),
        server_root,
        Default::default(),
        server_config,
    );
    // The call goes out now; the server holds it until it is set up.
    let caller = std::thread::spawn(move || {
        client
            .root()
            .unwrap()
            .call_method("was_ready", vec![])
            .unwrap()
            .value
    });
    std::thread::sleep(Duration::from_millis(50));
    ready.store(true, Ordering::SeqCst);
    server.start_serving();
    assert_eq!(caller.join().unwrap(), Value::Bool(true));
}
