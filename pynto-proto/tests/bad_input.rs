//! Bad input: every row is a malformed or hostile frame and the exact error it must produce.

mod common;

use bytes::Bytes;
use common::spec;
use pynto_proto::{
    decode, decode_budget, encode, DecodeError, Frame, Limits, Message, Value, MAX_BIGINT_BYTES,
};

fn frame(body: Vec<u8>) -> Frame {
    Frame {
        body: Bytes::from(body),
        attachments: vec![],
    }
}

fn nested_tuples(levels: usize) -> Vec<u8> {
    let mut body = spec("93 02 01");
    for _ in 0..levels {
        body.extend_from_slice(&[0x92, 0x0b]);
    }
    body.push(0xc0);
    body
}

/// `Request(1, chain 2, Export(3), [op 33, [[...[nil]...]]])`: an unknown op whose one operand
/// nests `levels` arrays deep.
fn nested_unknown_op(levels: usize) -> Vec<u8> {
    let mut body = spec("95 01 01 02 03 92 21");
    body.extend(std::iter::repeat_n(0x91, levels));
    body.push(0xc0);
    body
}

/// `Reply(1, (item,) * n)`, `item` already encoded.
fn reply_of(item: &[u8], n: u32) -> Vec<u8> {
    let mut body = spec("93 02 01 dd");
    body.extend_from_slice(&(n + 1).to_be_bytes());
    body.push(0x0b);
    for _ in 0..n {
        body.extend_from_slice(item);
    }
    body
}

/// `Call(root, *positional)` with `n` positional arguments, each `item` already encoded.
fn call_of(item: &[u8], n: u32) -> Vec<u8> {
    let mut body = spec("95 01 01 01 00 93 05 dd");
    body.extend_from_slice(&n.to_be_bytes());
    for _ in 0..n {
        body.extend_from_slice(item);
    }
    body.push(0x80);
    body
}

fn with_attachment(body: Vec<u8>, attachment: &'static [u8]) -> Frame {
    Frame {
        body: body.into(),
        attachments: vec![Bytes::from_static(attachment)],
    }
}

fn over_budget(frame: &Frame) -> Box<dyn Fn(&DecodeError) -> bool> {
    let expected = DecodeError::OverBudget {
        frame: frame.len(),
        budget: decode_budget(frame.len()),
    };
    Box::new(move |e| *e == expected)
}

fn malformed() -> fn(&DecodeError) -> bool {
    |e| matches!(e, DecodeError::Malformed(_))
}

fn bad_integer() -> fn(&DecodeError) -> bool {
    |e| matches!(e, DecodeError::BadInteger(_))
}

fn is(expected: DecodeError) -> impl Fn(&DecodeError) -> bool {
    move |e| *e == expected
}

#[test]
fn bad_input_table() {
    use DecodeError::*;
    let null_request = encode(&Message::Request(pynto_proto::Request {
        seq: 1,
        chain: 2,
        target: pynto_proto::Target::Export(0),
        op: pynto_proto::Op::Call(pynto_proto::Args::default()),
    }))
    .body
    .to_vec();
    let mut big_bigint = spec("93 02 01 92 03 c6 00 20 00 00");
    big_bigint.extend(std::iter::repeat_n(0x11, 2 << 20));
    let limits = Limits::default();
    let small = Limits {
        max_frame: 50,
        ..Limits::default()
    };

    // 4 MiB of nils: 56 bytes each decoded, over 24 x 4 MiB.
    let nils = frame(reply_of(&[0xc0], 4 << 20));
    // 2 MiB of `(None,) * 14`, 16 bytes each: refused part way through a real decode.
    let tuples = frame(call_of(
        &spec("9f 0b c0 c0 c0 c0 c0 c0 c0 c0 c0 c0 c0 c0 c0 c0"),
        1 << 17,
    ));
    // `Hello {features: ["" x 1 Mi]}`: serde's vector of 24-byte strings, charged 96 per byte.
    let mut hello = spec("92 00 81 a8 'features' dd 00 10 00 00");
    hello.extend(std::iter::repeat_n(0xa0, 1 << 20));
    let hello = frame(hello);
    // 2 MiB of empty sets, 272 bytes each decoded (a Python set is 216 bytes).
    let sets = frame(call_of(&[0x91, 0x0e], 1 << 20));

    // 128 Ki strings "é", then one that is not UTF-8: over 200 KiB, so decoded dry first.
    let mut large_bad_utf8 = spec("95 01 01 01 00 93 05 dd");
    large_bad_utf8.extend_from_slice(&((1u32 << 17) + 1).to_be_bytes());
    for _ in 0..1 << 17 {
        large_bad_utf8.extend_from_slice(&[0xa2, 0xc3, 0xa9]);
    }
    large_bad_utf8.extend_from_slice(&[0xa1, 0xff, 0x80]);

    type Check = Box<dyn Fn(&DecodeError) -> bool>;
    let rows: Vec<(&str, Frame, Limits, Check)> = vec![
        ("empty body", frame(vec![]), limits, Box::new(is(Truncated))),
        (
            "truncated request",
            frame(null_request[..null_request.len() - 1].to_vec()),
            limits,
            Box::new(is(Truncated)),
        ),
        (
            "truncated string",
            frame(spec("93 02 01 a5 'abc'")),
            limits,
            Box::new(is(Truncated)),
        ),
        (
            "truncated u64",
            frame(spec("92 05 cf 00 00")),
            limits,
            Box::new(is(Truncated)),
        ),
        (
            "oversized body",
            frame(vec![0xc0; 100]),
            small,
            Box::new(is(FrameTooLarge { len: 100, max: 50 })),
        ),
        (
            "unknown message",
            frame(spec("91 08")),
            limits,
            Box::new(is(UnknownMessage(8))),
        ),
        (
            "unknown message 255",
            frame(spec("92 cc ff c0")),
            limits,
            Box::new(is(UnknownMessage(255))),
        ),
        (
            "message code not an int",
            frame(spec("91 a0")),
            limits,
            malformed_box(),
        ),
        (
            "message not an array",
            frame(spec("80")),
            limits,
            malformed_box(),
        ),
        (
            "empty message array",
            frame(spec("90")),
            limits,
            malformed_box(),
        ),
        (
            "unknown op",
            frame(spec("95 01 01 02 03 91 21")),
            limits,
            Box::new(is(UnknownOp { seq: 1, code: 33 })),
        ),
        (
            "unknown op, then trailing bytes",
            frame(spec("95 01 01 02 03 91 21 c0")),
            limits,
            Box::new(is(TrailingBytes { extra: 1 })),
        ),
        (
            "unknown op with a reserved marker among its operands",
            frame(spec("95 01 01 02 03 92 21 c1")),
            limits,
            malformed_box(),
        ),
        (
            "unknown op with operands nested too deep",
            frame(nested_unknown_op(Limits::default().max_depth as usize + 1)),
            limits,
            Box::new(is(TooDeep {
                max: Limits::default().max_depth,
            })),
        ),
        (
            "unknown op cut short",
            frame(spec("95 01 01 02 03 93 21 c0")),
            limits,
            Box::new(is(Truncated)),
        ),
        (
            "unknown value tag",
            frame(spec("93 02 01 91 14")),
            limits,
            Box::new(is(UnknownTag {
                what: "value",
                tag: 20,
            })),
        ),
        (
            "huge value tag",
            frame(spec("93 02 01 91 cf ff ff ff ff ff ff ff ff")),
            limits,
            Box::new(is(UnknownTag {
                what: "value",
                tag: u64::MAX,
            })),
        ),
        (
            "native tag in array form",
            frame(spec("93 02 01 91 00")),
            limits,
            malformed_box(),
        ),
        (
            "unknown error kind",
            frame(spec("97 03 01 07 a0 a0 90 a0")),
            limits,
            Box::new(is(UnknownTag {
                what: "error kind",
                tag: 7,
            })),
        ),
        (
            "unknown comparison",
            frame(spec("95 01 01 02 03 93 14 06 c0")),
            limits,
            Box::new(is(UnknownTag {
                what: "comparison operator",
                tag: 6,
            })),
        ),
        (
            "unknown binary operator",
            frame(spec("95 01 01 02 03 94 15 0e 00 c0")),
            limits,
            Box::new(is(UnknownTag {
                what: "binary operator",
                tag: 14,
            })),
        ),
        (
            "unknown binary form",
            frame(spec("95 01 01 02 03 94 15 00 03 c0")),
            limits,
            Box::new(is(UnknownTag {
                what: "binary operator form",
                tag: 3,
            })),
        ),
        (
            "unknown unary operator",
            frame(spec("95 01 01 02 03 92 16 0e")),
            limits,
            Box::new(is(UnknownTag {
                what: "unary operator",
                tag: 14,
            })),
        ),
        (
            "200 nested tuples",
            frame(nested_tuples(200)),
            limits,
            Box::new(is(TooDeep { max: 128 })),
        ),
        (
            "129 nested tuples",
            frame(nested_tuples(129)),
            limits,
            Box::new(is(TooDeep { max: 128 })),
        ),
        (
            "nesting past a small limit",
            frame(nested_tuples(5)),
            Limits {
                max_depth: 4,
                ..Limits::default()
            },
            Box::new(is(TooDeep { max: 4 })),
        ),
        (
            "deep unknown field in Hello",
            frame([spec("92 00 81 a1 'x'"), vec![0x91; 200], vec![0xc0]].concat()),
            limits,
            Box::new(is(TooDeep { max: 128 })),
        ),
        (
            "invalid UTF-8 value",
            frame(spec("93 02 01 a2 ff fe")),
            limits,
            Box::new(is(InvalidUtf8)),
        ),
        (
            "invalid UTF-8 reason",
            frame(spec("92 07 a1 80")),
            limits,
            Box::new(is(InvalidUtf8)),
        ),
        (
            "uint 2^64-1 as a value",
            frame(spec("93 02 01 cf ff ff ff ff ff ff ff ff")),
            limits,
            bad_integer_box(),
        ),
        (
            "uint 2^63 as a value",
            frame(spec("93 02 01 cf 80 00 00 00 00 00 00 00")),
            limits,
            bad_integer_box(),
        ),
        (
            "BigInt of 2 MiB",
            frame(big_bigint),
            limits,
            bad_integer_box(),
        ),
        (
            "BigInt that fits i64",
            frame(spec("93 02 01 92 03 c4 08 00 00 00 00 00 00 00 01")),
            limits,
            bad_integer_box(),
        ),
        (
            "empty BigInt",
            frame(spec("93 02 01 92 03 c4 00")),
            limits,
            bad_integer_box(),
        ),
        (
            "BigInt with a redundant zero byte",
            frame(spec("93 02 01 92 03 c4 0a 00 00 00 00 00 00 00 00 01 00")),
            limits,
            bad_integer_box(),
        ),
        (
            "BigInt with a redundant 0xff byte",
            frame(spec("93 02 01 92 03 c4 0a 00 00 00 00 00 00 00 00 ff ff")),
            limits,
            bad_integer_box(),
        ),
        (
            "BigInt not bin",
            frame(spec("93 02 01 92 03 a1 'x'")),
            limits,
            malformed_box(),
        ),
        (
            "negative seq",
            frame(spec("92 06 ff")),
            limits,
            bad_integer_box(),
        ),
        (
            "type id over 32 bits",
            frame(spec("93 02 01 93 11 01 cf 00 00 00 01 00 00 00 00")),
            limits,
            bad_integer_box(),
        ),
        (
            "Next over 32 bits",
            frame(spec("95 01 01 02 03 92 0f cf 00 00 00 01 00 00 00 00")),
            limits,
            bad_integer_box(),
        ),
        (
            "Reply with 4 fields",
            frame(spec("94 02 01 c0 c0")),
            limits,
            malformed_box(),
        ),
        (
            "Request with 4 fields",
            frame(spec("94 01 01 02 03")),
            limits,
            malformed_box(),
        ),
        (
            "Ellipsis with a field",
            frame(spec("93 02 01 92 08 c0")),
            limits,
            malformed_box(),
        ),
        (
            "Complex with one part",
            frame(spec("93 02 01 92 05 cb 00 00 00 00 00 00 00 00")),
            limits,
            malformed_box(),
        ),
        (
            "Slice with 2 parts",
            frame(spec("93 02 01 93 0a c0 c0")),
            limits,
            malformed_box(),
        ),
        (
            "Dict with odd items",
            frame(spec("93 02 01 92 0f c0")),
            limits,
            malformed_box(),
        ),
        (
            "Ref with 1 field",
            frame(spec("93 02 01 92 11 01")),
            limits,
            malformed_box(),
        ),
        (
            "TypeDesc with 4 fields",
            frame(spec("93 02 01 94 11 01 01 94 a0 a0 90 90")),
            limits,
            malformed_box(),
        ),
        (
            "Ping with an operand",
            frame(spec("95 01 01 02 03 92 01 c0")),
            limits,
            malformed_box(),
        ),
        (
            "Call without keywords",
            frame(spec("95 01 01 02 03 92 05 90")),
            limits,
            malformed_box(),
        ),
        (
            "Release pair of 3",
            frame(spec("92 04 91 93 01 01 01")),
            limits,
            malformed_box(),
        ),
        (
            "map as a value",
            frame(spec("93 02 01 80")),
            limits,
            malformed_box(),
        ),
        (
            "ext as a value",
            frame(spec("93 02 01 d4 01 00")),
            limits,
            malformed_box(),
        ),
        (
            "reserved marker",
            frame(spec("93 02 01 c1")),
            limits,
            malformed_box(),
        ),
        (
            "Hello as an array",
            frame(spec("92 00 90")),
            limits,
            malformed_box(),
        ),
        (
            "Hello field of the wrong type",
            frame(spec("92 00 81 a8 'protocol' a1 'x'")),
            limits,
            malformed_box(),
        ),
        (
            "bad attachment index",
            frame(spec("93 02 01 92 07 00")),
            limits,
            Box::new(is(BadAttachment { index: 0, count: 0 })),
        ),
        (
            "bad bytearray attachment index",
            Frame {
                body: spec("93 02 01 92 10 05").into(),
                attachments: vec![Bytes::from_static(b"a")],
            },
            limits,
            Box::new(is(BadAttachment { index: 5, count: 1 })),
        ),
        (
            "attachment used twice",
            with_attachment(spec("93 02 01 93 0b 92 07 00 92 07 00"), b"shared"),
            limits,
            Box::new(is(AttachmentReused { index: 0 })),
        ),
        (
            "attachment used as bytes, then as bytearray",
            with_attachment(spec("93 02 01 93 0b 92 07 00 92 10 00"), b"shared"),
            limits,
            Box::new(is(AttachmentReused { index: 0 })),
        ),
        (
            "attachment used by a positional and a keyword argument",
            with_attachment(
                spec("95 01 01 01 00 93 05 91 92 07 00 81 a1 'k' 92 07 00"),
                b"shared",
            ),
            limits,
            Box::new(is(AttachmentReused { index: 0 })),
        ),
        (
            "over budget: 4 MiB of nils",
            nils.clone(),
            limits,
            over_budget(&nils),
        ),
        (
            "over budget: 2 MiB of small tuples",
            tuples.clone(),
            limits,
            over_budget(&tuples),
        ),
        (
            "over budget: a Hello of 1 Mi empty feature names",
            hello.clone(),
            limits,
            over_budget(&hello),
        ),
        (
            "over budget: 2 MiB of empty sets",
            sets.clone(),
            limits,
            over_budget(&sets),
        ),
        (
            "invalid UTF-8 at the end of a large body (found by the real decode)",
            frame(large_bad_utf8),
            limits,
            Box::new(is(InvalidUtf8)),
        ),
        (
            "trailing bytes",
            frame(spec("92 06 01 c0")),
            limits,
            Box::new(is(TrailingBytes { extra: 1 })),
        ),
        (
            "two messages",
            frame(spec("92 06 01 92 06 01")),
            limits,
            Box::new(is(TrailingBytes { extra: 3 })),
        ),
        (
            "huge array, few bytes",
            frame(spec("93 02 01 dd ff ff ff ff 0b c0")),
            limits,
            Box::new(is(Truncated)),
        ),
        (
            "huge message array",
            frame(spec("dd ff ff ff ff 02")),
            limits,
            Box::new(is(Truncated)),
        ),
        (
            "huge keyword map",
            frame(spec("95 01 01 02 03 93 05 90 df ff ff ff ff")),
            limits,
            Box::new(is(Truncated)),
        ),
        (
            "huge release list",
            frame(spec("92 04 dd 7f ff ff ff")),
            limits,
            Box::new(is(Truncated)),
        ),
        (
            "huge string",
            frame(spec("93 02 01 db ff ff ff ff 'ab'")),
            limits,
            Box::new(is(Truncated)),
        ),
        (
            "huge bin",
            frame(spec("93 02 01 c6 ff ff ff ff 'ab'")),
            limits,
            Box::new(is(Truncated)),
        ),
        (
            "huge Hello map",
            frame(spec("92 00 df ff ff ff ff")),
            limits,
            Box::new(is(Truncated)),
        ),
    ];
    let mut failures = Vec::new();
    for (name, frame, limits, check) in &rows {
        match decode(frame, limits) {
            Ok(msg) => failures.push(format!("{name}: decoded to {msg:?}")),
            Err(e) if check(&e) => {
                // Every error has a human message.
                assert!(!e.to_string().is_empty());
            }
            Err(e) => failures.push(format!("{name}: wrong error {e:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn malformed_box() -> Box<dyn Fn(&DecodeError) -> bool> {
    Box::new(malformed())
}

fn bad_integer_box() -> Box<dyn Fn(&DecodeError) -> bool> {
    Box::new(bad_integer())
}

#[test]
fn depth_limit_is_inclusive() {
    let limits = Limits::default();
    let ok = decode(&frame(nested_tuples(128)), &limits).unwrap();
    let Message::Reply { value, .. } = ok else {
        panic!("not a reply")
    };
    let mut depth = 0;
    let mut v = &value;
    while let Value::Tuple(items) = v {
        depth += 1;
        v = &items[0];
    }
    assert_eq!(depth, 128);
}

#[test]
fn largest_bigint_is_accepted() {
    let mut body = spec("93 02 01 92 03 c6 00 10 00 00");
    let mut digits = vec![0u8; MAX_BIGINT_BYTES];
    digits[MAX_BIGINT_BYTES - 1] = 0x01;
    body.extend_from_slice(&digits);
    let msg = decode(&frame(body), &Limits::default()).unwrap();
    assert_eq!(
        msg,
        Message::Reply {
            seq: 1,
            value: Value::BigInt(digits)
        }
    );
}

#[test]
fn display_messages_are_human() {
    let cases = [
        (
            DecodeError::Truncated,
            "the frame ended in the middle of a message",
        ),
        (
            DecodeError::TrailingBytes { extra: 3 },
            "3 unexpected byte(s) after the end of the message",
        ),
        (
            DecodeError::UnknownMessage(9),
            "unknown message code 9 (a newer protocol version?)",
        ),
        (
            DecodeError::UnknownTag {
                what: "value",
                tag: 40,
            },
            "unknown value code 40",
        ),
        (
            DecodeError::UnknownOp { seq: 7, code: 40 },
            "request 7 asks for unknown op code 40",
        ),
        (
            DecodeError::TooDeep { max: 128 },
            "values nest deeper than the limit of 128 levels",
        ),
        (DecodeError::InvalidUtf8, "a string is not valid UTF-8"),
        (
            DecodeError::BadInteger("too big".into()),
            "bad integer: too big",
        ),
        (
            DecodeError::BadAttachment { index: 2, count: 1 },
            "attachment index 2 is out of range: the frame has 1 attachment(s)",
        ),
        (
            DecodeError::AttachmentReused { index: 3 },
            "attachment 3 is used a second time: each attachment backs at most one value",
        ),
        (
            DecodeError::OverBudget {
                frame: 100,
                budget: 33554432,
            },
            "the message would cost more than its decoding budget of 33554432 bytes of memory \
             (a frame of 100 bytes may cost 24 times its size, and at least 33554432 bytes)",
        ),
        (
            DecodeError::FrameTooLarge { len: 10, max: 5 },
            "frame of 10 bytes is larger than the limit of 5 bytes",
        ),
        (DecodeError::Malformed("x".into()), "malformed message: x"),
    ];
    for (e, text) in cases {
        assert_eq!(e.to_string(), text);
    }
}

#[test]
fn an_unknown_op_code_decodes_to_its_request_seq() {
    // [Request, seq 300, chain 2, Export(3), [op 99, "operand", [1, {}]]]: a newer peer's op.
    let body = spec("95 01 cd 01 2c 02 03 93 63 a7 6f 70 65 72 61 6e 64 92 01 80");
    assert_eq!(
        decode(&frame(body), &Limits::default()),
        Err(DecodeError::UnknownOp { seq: 300, code: 99 })
    );
    // The first code past the last op this version knows, with no operands.
    let body = spec("95 01 01 02 00 91 21");
    assert_eq!(
        decode(&frame(body), &Limits::default()),
        Err(DecodeError::UnknownOp { seq: 1, code: 33 })
    );
}
