//! Rough timings of the codec's hot path: a null call's Request and Reply, encoded and decoded.
//!
//! `cargo run --release -p pynto-proto --example codec_timing`

use std::hint::black_box;
use std::time::Instant;

use pynto_proto::{decode, encode, encode_into, Args, Limits, Message, Op, Request, Target, Value};

fn time(label: &str, iterations: u32, mut f: impl FnMut()) {
    for _ in 0..iterations / 10 {
        f();
    }
    // The best of five rounds, to shrug off a busy machine.
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let start = Instant::now();
        for _ in 0..iterations {
            f();
        }
        best = best.min(start.elapsed().as_nanos() as f64 / f64::from(iterations));
    }
    println!("{label:<40} {best:>8.1} ns");
}

fn main() {
    let n = 500_000;
    let limits = Limits::default();
    let request = Message::Request(Request {
        seq: 12345,
        chain: 0x1234_5678_9abc_def0,
        target: Target::Export(42),
        op: Op::CallMethod("ping".into(), Args::positional(vec![])),
    });
    let reply = Message::Reply {
        seq: 12345,
        value: Value::None,
    };
    let call3 = Message::Request(Request {
        seq: 12345,
        chain: 7,
        target: Target::Export(42),
        op: Op::CallMethod(
            "pow".into(),
            Args {
                positional: vec![Value::Int(3), Value::Str("abc".into())],
                keywords: vec![("mod".into(), Value::Float(1.5))],
            },
        ),
    });

    for (label, msg) in [
        ("null-call Request", &request),
        ("None Reply", &reply),
        ("3-arg Request", &call3),
    ] {
        let mut body = Vec::with_capacity(256);
        let mut attachments = Vec::new();
        time(&format!("encode_into {label}"), n, || {
            body.clear();
            attachments.clear();
            encode_into(black_box(msg), &mut body, &mut attachments);
            black_box(&body);
        });
        time(&format!("encode {label}"), n, || {
            black_box(encode(black_box(msg)));
        });
        let frame = encode(msg);
        println!("  ({} body bytes)", frame.body.len());
        time(&format!("decode {label}"), n, || {
            let decoded = decode(black_box(&frame), &limits);
            black_box(&decoded);
        });
    }
}
