//! Golden bytes: for every message, op and value kind, the exact body `encode` must produce and
//! `decode` must accept. These freeze the wire format; changing one is a protocol change.

mod common;

use bytes::Bytes;
use common::spec;
use pynto_proto::{
    decode, encode, Args, BinaryForm, BinaryOp, CompareOp, ErrorKind, Failure, Frame, Hello,
    Limits, Message, ObjRef, Op, Request, Target, TypeDesc, UnaryOp, Value, INLINE_BYTES_MAX,
};

/// Encode `msg`, compare with `expected`, and decode `expected` back to `msg`.
fn golden(msg: &Message, expected: &[u8], attachments: &[Bytes]) {
    let frame = encode(msg);
    assert_eq!(
        hex(&frame.body),
        hex(expected),
        "encoding of {msg:?} changed"
    );
    assert_eq!(frame.attachments, attachments, "attachments of {msg:?}");
    let incoming = Frame {
        body: Bytes::copy_from_slice(expected),
        attachments: attachments.to_vec(),
    };
    assert_eq!(&decode(&incoming, &Limits::default()).unwrap(), msg);
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn reply(value: Value) -> Message {
    Message::Reply { seq: 1, value }
}

/// `Reply{seq: 1}` prefix: `[2, 1, value]`.
const REPLY: &str = "93 02 01";

fn request(op: Op) -> Message {
    Message::Request(Request {
        seq: 1,
        chain: 2,
        target: Target::Export(3),
        op,
    })
}

/// `Request{seq: 1, chain: 2, target: Export(3)}` prefix.
const REQUEST: &str = "95 01 01 02 03";

#[test]
fn hello() {
    let msg = Message::Hello(Hello {
        protocol: 1,
        implementation: "x".into(),
        features: vec!["f".into()],
        limits: Limits::default(),
        token: None,
        service: "s".into(),
    });
    let expected = spec(
        "92 00 86
           a8 'protocol' 01
           ae 'implementation' a1 'x'
           a8 'features' 91 a1 'f'
           a6 'limits' 85
             a9 'max_frame' ce 04 00 00 00
             ab 'max_message' cf 00 00 01 00 00 00 00 00
             a9 'max_depth' cc 80
             ab 'max_objects' ce 00 40 00 00
             ad 'max_in_flight' cd 40 00
           a5 'token' c0
           a7 'service' a1 's'",
    );
    golden(&msg, &expected, &[]);

    let with_token = Message::Hello(Hello {
        token: Some("t".into()),
        ..Hello::default()
    });
    let frame = encode(&with_token);
    assert!(frame
        .body
        .windows(8)
        .any(|w| w == spec("a5 'token' a1 't'")));
}

#[test]
fn hello_accepts_missing_and_unknown_fields() {
    // A later version's Hello with a field this version does not know, and without `features`.
    let body = spec("92 00 83 a8 'protocol' 02 a3 'new' 92 01 c0 a7 'service' a1 's'");
    let frame = Frame {
        body: body.into(),
        attachments: vec![],
    };
    let expected = Hello {
        protocol: 2,
        service: "s".into(),
        ..Hello::default()
    };
    assert_eq!(
        decode(&frame, &Limits::default()).unwrap(),
        Message::Hello(expected)
    );
}

#[test]
fn null_call() {
    let msg = Message::Request(Request {
        seq: 1,
        chain: 7,
        target: Target::Export(0),
        op: Op::CallMethod(
            "pow".into(),
            Args::positional(vec![Value::Int(3), Value::Int(2)]),
        ),
    });
    golden(
        &msg,
        &spec("95 01 01 07 00 94 06 a3 'pow' 92 03 02 80"),
        &[],
    );
}

#[test]
fn messages() {
    let big = u64::MAX;
    let cases: Vec<(Message, &str)> = vec![
        (reply(Value::None), "93 02 01 c0"),
        (
            Message::Reply {
                seq: big,
                value: Value::None,
            },
            "93 02 cf ff ff ff ff ff ff ff ff c0",
        ),
        (
            Message::Failure {
                seq: 4,
                failure: Failure {
                    kind: ErrorKind::Remote,
                    type_name: "builtins.ValueError".into(),
                    message: "bad".into(),
                    args: vec![Value::Str("bad".into())],
                    traceback: "tb".into(),
                },
            },
            "97 03 04 00 b3 'builtins.ValueError' a3 'bad' 91 a3 'bad' a2 'tb'",
        ),
        (
            Message::Failure {
                seq: 5,
                failure: Failure::new(ErrorKind::Overloaded, "", ""),
            },
            "97 03 05 06 a0 a0 90 a0",
        ),
        (
            Message::Release(vec![(1, 2), (300, 1)]),
            "92 04 92 92 01 02 92 cd 01 2c 01",
        ),
        (Message::Release(vec![]), "92 04 90"),
        (Message::Cancel { seq: 70000 }, "92 05 ce 00 01 11 70"),
        (Message::Finish { seq: 1 }, "92 06 01"),
        (
            Message::Goodbye {
                reason: "bye".into(),
            },
            "92 07 a3 'bye'",
        ),
        (
            Message::Goodbye {
                reason: String::new(),
            },
            "92 07 a0",
        ),
    ];
    for (msg, hex) in cases {
        golden(&msg, &spec(hex), &[]);
    }
}

#[test]
fn error_kinds() {
    use ErrorKind::*;
    for (kind, code) in [
        (Remote, 0u8),
        (Unimplemented, 1),
        (NoSuchObject, 2),
        (AccessDenied, 3),
        (Protocol, 4),
        (Cancelled, 5),
        (Overloaded, 6),
    ] {
        let msg = Message::Failure {
            seq: 1,
            failure: Failure::new(kind, "", ""),
        };
        golden(&msg, &[0x97, 0x03, 0x01, code, 0xa0, 0xa0, 0x90, 0xa0], &[]);
    }
}

#[test]
fn targets() {
    let answer = Message::Request(Request {
        seq: 1,
        chain: 2,
        target: Target::Answer(5, vec!["a".into(), "b".into()]),
        op: Op::Ping,
    });
    golden(
        &answer,
        &spec("95 01 01 02 92 05 92 a1 'a' a1 'b' 91 01"),
        &[],
    );
    let export = Message::Request(Request {
        seq: 1,
        chain: 2,
        target: Target::Export(1 << 32),
        op: Op::Ping,
    });
    golden(
        &export,
        &spec("95 01 01 02 cf 00 00 00 01 00 00 00 00 91 01"),
        &[],
    );
}

#[test]
fn ops() {
    let none3 = || (Value::None, Value::None, Value::None);
    let cases: Vec<(Op, &str)> = vec![
        (Op::GetRoot, "91 00"),
        (Op::Ping, "91 01"),
        (Op::GetAttr("x".into()), "92 02 a1 'x'"),
        (Op::SetAttr("x".into(), Value::Int(1)), "93 03 a1 'x' 01"),
        (Op::DelAttr("x".into()), "92 04 a1 'x'"),
        (
            Op::Call(Args {
                positional: vec![Value::None],
                keywords: vec![("k".into(), Value::Bool(true))],
            }),
            "93 05 91 c0 81 a1 'k' c3",
        ),
        (Op::Call(Args::default()), "93 05 90 80"),
        (
            Op::CallMethod("m".into(), Args::default()),
            "94 06 a1 'm' 90 80",
        ),
        (Op::Repr, "91 07"),
        (Op::Str, "91 08"),
        (Op::Format(">5".into()), "92 09 a2 '>5'"),
        (Op::Hash, "91 0a"),
        (Op::Dir, "91 0b"),
        (Op::Bool, "91 0c"),
        (Op::Len, "91 0d"),
        (Op::Iter, "91 0e"),
        (Op::Next(100), "92 0f 64"),
        (Op::Next(300), "92 0f cd 01 2c"),
        (Op::GetItem(Value::Int(-1)), "92 10 ff"),
        (
            Op::SetItem(Value::Str("k".into()), Value::None),
            "93 11 a1 'k' c0",
        ),
        (Op::DelItem(Value::Int(0)), "92 12 00"),
        (Op::Contains(Value::Bool(false)), "92 13 c2"),
        (Op::Compare(CompareOp::Ge, Value::Int(5)), "93 14 05 05"),
        (Op::Compare(CompareOp::Lt, Value::None), "93 14 00 c0"),
        (
            Op::Binary(BinaryOp::Or, BinaryForm::InPlace, Value::Int(1)),
            "94 15 0d 02 01",
        ),
        (
            Op::Binary(BinaryOp::Add, BinaryForm::Reflected, Value::Int(1)),
            "94 15 00 01 01",
        ),
        (Op::Unary(UnaryOp::LengthHint), "92 16 0d"),
        (Op::Unary(UnaryOp::Neg), "92 16 00"),
        (Op::Enter, "91 17"),
        (
            {
                let (a, b, c) = none3();
                Op::Exit(a, b, c)
            },
            "94 18 c0 c0 c0",
        ),
        (
            Op::IsInstance("m".into(), "C".into()),
            "93 19 a1 'm' a1 'C'",
        ),
        (Op::Pickle, "91 1a"),
        (Op::Await, "91 1b"),
        (Op::AIter, "91 1c"),
        (Op::ANext, "91 1d"),
        (Op::AEnter, "91 1e"),
        (
            {
                let (a, b, c) = none3();
                Op::AExit(a, b, c)
            },
            "94 1f c0 c0 c0",
        ),
        (Op::PickleBuffers, "91 20"),
    ];
    for (op, hex) in cases {
        golden(&request(op), &spec(&format!("{REQUEST} {hex}")), &[]);
    }
}

#[test]
fn operator_codes() {
    use BinaryOp::*;
    use UnaryOp::*;
    let cmps = [
        CompareOp::Lt,
        CompareOp::Le,
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Gt,
        CompareOp::Ge,
    ];
    for (code, cmp) in cmps.into_iter().enumerate() {
        let expected = [spec(REQUEST), vec![0x93, 0x14, code as u8, 0xc0]].concat();
        golden(&request(Op::Compare(cmp, Value::None)), &expected, &[]);
    }
    let bins = [
        Add, Sub, Mul, MatMul, TrueDiv, FloorDiv, Mod, DivMod, Pow, LShift, RShift, And, Xor, Or,
    ];
    for (code, b) in bins.into_iter().enumerate() {
        let expected = [spec(REQUEST), vec![0x94, 0x15, code as u8, 0x00, 0xc0]].concat();
        golden(
            &request(Op::Binary(b, BinaryForm::Plain, Value::None)),
            &expected,
            &[],
        );
    }
    let unaries = [
        Neg, Pos, Abs, Invert, Int, Float, Complex, Index, Round, Trunc, Floor, Ceil, Reversed,
        LengthHint,
    ];
    for (code, u) in unaries.into_iter().enumerate() {
        let expected = [spec(REQUEST), vec![0x92, 0x16, code as u8]].concat();
        golden(&request(Op::Unary(u)), &expected, &[]);
    }
}

#[test]
fn scalar_values() {
    let cases: Vec<(Value, &str)> = vec![
        (Value::None, "c0"),
        (Value::Bool(true), "c3"),
        (Value::Bool(false), "c2"),
        (Value::Int(0), "00"),
        (Value::Int(127), "7f"),
        (Value::Int(128), "cc 80"),
        (Value::Int(256), "cd 01 00"),
        (Value::Int(65536), "ce 00 01 00 00"),
        (Value::Int(1 << 32), "cf 00 00 00 01 00 00 00 00"),
        (Value::Int(i64::MAX), "cf 7f ff ff ff ff ff ff ff"),
        (Value::Int(-1), "ff"),
        (Value::Int(-32), "e0"),
        (Value::Int(-33), "d0 df"),
        (Value::Int(-129), "d1 ff 7f"),
        (Value::Int(-32769), "d2 ff ff 7f ff"),
        (Value::Int(i64::MIN), "d3 80 00 00 00 00 00 00 00"),
        // 2**64 and -2**64.
        (
            Value::BigInt(vec![0, 0, 0, 0, 0, 0, 0, 0, 1]),
            "92 03 c4 09 00 00 00 00 00 00 00 00 01",
        ),
        (
            Value::BigInt(vec![0, 0, 0, 0, 0, 0, 0, 0, 0xff]),
            "92 03 c4 09 00 00 00 00 00 00 00 00 ff",
        ),
        // 2**63: needs a zero sign byte.
        (
            Value::BigInt(vec![0, 0, 0, 0, 0, 0, 0, 0x80, 0]),
            "92 03 c4 09 00 00 00 00 00 00 00 80 00",
        ),
        (Value::Float(1.5), "cb 3f f8 00 00 00 00 00 00"),
        (Value::Float(-0.0), "cb 80 00 00 00 00 00 00 00"),
        (
            Value::Complex(1.0, -2.0),
            "93 05 cb 3f f0 00 00 00 00 00 00 cb c0 00 00 00 00 00 00 00",
        ),
        (Value::Str(String::new()), "a0"),
        (Value::Str("hi".into()), "a2 'hi'"),
        (Value::Str("é".into()), "a2 c3 a9"),
        (
            Value::Str("a".repeat(32)),
            "d9 20 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'",
        ),
        (Value::Bytes(Bytes::from_static(b"\x01\x02")), "c4 02 01 02"),
        (Value::Bytes(Bytes::new()), "c4 00"),
        (Value::Ellipsis, "91 08"),
        (Value::NotImplemented, "91 09"),
        (
            Value::ByteArray(Bytes::from_static(b"xy")),
            "92 10 c4 02 'xy'",
        ),
        (Value::Returned(7), "92 12 07"),
        (
            Value::Ref(ObjRef {
                oid: 5,
                type_id: 2,
                desc: None,
            }),
            "93 11 05 02",
        ),
        (
            Value::Ref(ObjRef {
                oid: 5,
                type_id: 2,
                desc: Some(Box::new(TypeDesc {
                    module: "m".into(),
                    qualname: "C".into(),
                    dunders: vec!["__len__".into()],
                    methods: vec!["f".into()],
                    abcs: vec!["Sized".into()],
                })),
            }),
            "94 11 05 02 95 a1 'm' a1 'C' 91 a7 '__len__' 91 a1 'f' 91 a5 'Sized'",
        ),
    ];
    for (value, hex) in cases {
        golden(&reply(value), &spec(&format!("{REPLY} {hex}")), &[]);
    }
}

#[test]
fn container_values() {
    let cases: Vec<(Value, &str)> = vec![
        (
            Value::Slice(Box::new([Value::None, Value::Int(10), Value::Int(-1)])),
            "94 0a c0 0a ff",
        ),
        (Value::Tuple(vec![]), "91 0b"),
        (
            Value::Tuple(vec![Value::Int(1), Value::Str("a".into())]),
            "93 0b 01 a1 'a'",
        ),
        (Value::FrozenSet(vec![Value::Int(1)]), "92 0c 01"),
        (Value::List(vec![]), "91 0d"),
        (
            Value::Set(vec![Value::Int(2), Value::Int(3)]),
            "93 0e 02 03",
        ),
        (
            Value::Dict(vec![(Value::Str("a".into()), Value::Int(1))]),
            "93 0f a1 'a' 01",
        ),
        (Value::Dict(vec![]), "91 0f"),
        (
            Value::Tuple(vec![Value::Tuple(vec![Value::None]), Value::List(vec![])]),
            "93 0b 92 0b c0 91 0d",
        ),
    ];
    for (value, hex) in cases {
        golden(&reply(value), &spec(&format!("{REPLY} {hex}")), &[]);
    }
    // 16 items switch to array16.
    let t = Value::Tuple(vec![Value::None; 15]);
    let expected = [spec(REPLY), spec("dc 00 10 0b"), vec![0xc0; 15]].concat();
    golden(&reply(t), &expected, &[]);
}

#[test]
fn attachments() {
    let big = Bytes::from(vec![7u8; INLINE_BYTES_MAX]);
    let big2 = Bytes::from(vec![8u8; INLINE_BYTES_MAX + 1]);
    golden(
        &reply(Value::Bytes(big.clone())),
        &spec(&format!("{REPLY} 92 07 00")),
        std::slice::from_ref(&big),
    );
    golden(
        &reply(Value::ByteArray(big.clone())),
        &spec(&format!("{REPLY} 92 10 00")),
        std::slice::from_ref(&big),
    );
    golden(
        &reply(Value::Tuple(vec![
            Value::Bytes(big.clone()),
            Value::ByteArray(big2.clone()),
        ])),
        &spec(&format!("{REPLY} 93 0b 92 07 00 92 10 01")),
        &[big.clone(), big2.clone()],
    );

    // Attachments share the sender's buffer.
    let frame = encode(&reply(Value::Bytes(big.clone())));
    assert_eq!(frame.attachments[0].as_ptr(), big.as_ptr());

    // One byte under the threshold still travels inline, as bin16.
    let under = Bytes::from(vec![9u8; INLINE_BYTES_MAX - 1]);
    let frame = encode(&reply(Value::Bytes(under.clone())));
    assert!(frame.attachments.is_empty());
    assert_eq!(&frame.body[..6], &spec(&format!("{REPLY} c5 ff ff"))[..]);
    assert_eq!(frame.body.len(), 6 + INLINE_BYTES_MAX - 1);
    assert_eq!(
        decode(&frame, &Limits::default()).unwrap(),
        reply(Value::Bytes(under))
    );
}

#[test]
fn decode_is_zero_copy() {
    let big = Bytes::from(vec![1u8; INLINE_BYTES_MAX]);
    let msg = reply(Value::Tuple(vec![
        Value::Bytes(Bytes::from_static(b"inline")),
        Value::ByteArray(Bytes::from_static(b"ba")),
        Value::Bytes(big.clone()),
    ]));
    let frame = encode(&msg);
    let body = frame.body.as_ptr_range();
    let Message::Reply {
        value: Value::Tuple(items),
        ..
    } = decode(&frame, &Limits::default()).unwrap()
    else {
        panic!("not a tuple reply")
    };
    let (Value::Bytes(a), Value::ByteArray(b), Value::Bytes(c)) = (&items[0], &items[1], &items[2])
    else {
        panic!("unexpected items {items:?}")
    };
    assert!(
        body.contains(&a.as_ptr()),
        "inline bytes are a slice of the body"
    );
    assert!(
        body.contains(&b.as_ptr()),
        "inline bytearray is a slice of the body"
    );
    assert_eq!(
        c.as_ptr(),
        big.as_ptr(),
        "attached bytes are the attachment itself"
    );
}

#[test]
fn accepts_liberal_forms() {
    // float32, a non-shortest int, a signed positive int as a code: all accepted.
    let cases: Vec<(&str, Message)> = vec![
        ("93 02 01 ca 3f c0 00 00", reply(Value::Float(1.5))),
        ("93 02 01 cd 00 05", reply(Value::Int(5))),
        ("93 02 01 d3 00 00 00 00 00 00 00 05", reply(Value::Int(5))),
        ("93 d0 02 cc 01 c0", reply(Value::None)),
        ("dc 00 02 06 01", Message::Finish { seq: 1 }),
        (
            "93 02 01 c5 00 01 00",
            reply(Value::Bytes(Bytes::from_static(b"\0"))),
        ),
        ("93 02 01 d9 01 'a'", reply(Value::Str("a".into()))),
    ];
    for (hex, msg) in cases {
        let frame = Frame {
            body: spec(hex).into(),
            attachments: vec![],
        };
        assert_eq!(decode(&frame, &Limits::default()).unwrap(), msg, "{hex}");
    }
}
