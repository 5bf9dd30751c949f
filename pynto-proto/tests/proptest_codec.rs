//! Property tests: arbitrary messages round-trip exactly, and no input (random or a mutated valid
//! encoding) makes decoding panic.

use bytes::Bytes;
use proptest::prelude::*;
use pynto_proto::{
    decode, encode, Args, BinaryForm, BinaryOp, CompareOp, ErrorKind, Failure, Frame, Hello,
    Limits, Message, ObjRef, Op, Request, Target, TypeDesc, UnaryOp, Value, INLINE_BYTES_MAX,
};

/// Any float but NaN (NaN != NaN would fail the equality check; it has its own test).
fn float() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("not NaN", |f| !f.is_nan())
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![3 => "[a-z_]{0,8}", 1 => any::<String>()]
}

fn names() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(name(), 0..4)
}

/// Small byte strings usually; now and then one at or just around the attachment threshold.
fn bytes() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        8 => prop::collection::vec(any::<u8>(), 0..40).prop_map(Bytes::from),
        1 => (INLINE_BYTES_MAX - 2..INLINE_BYTES_MAX + 3, any::<u8>())
            .prop_map(|(len, fill)| Bytes::from(vec![fill; len])),
    ]
}

/// A big integer in canonical form: at least 9 bytes, no redundant sign byte on top.
fn bigint() -> impl Strategy<Value = Vec<u8>> {
    (prop::collection::vec(any::<u8>(), 8..24), any::<u8>()).prop_map(|(mut digits, top)| {
        let below = digits.len() - 1;
        match top {
            0x00 => digits[below] |= 0x80,
            0xff => digits[below] &= 0x7f,
            _ => {}
        }
        digits.push(top);
        digits
    })
}

fn type_desc() -> impl Strategy<Value = TypeDesc> {
    (name(), name(), names(), names(), names()).prop_map(
        |(module, qualname, dunders, methods, abcs)| TypeDesc {
            module,
            qualname,
            dunders,
            methods,
            abcs,
        },
    )
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::None),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        (-200i64..200).prop_map(Value::Int),
        bigint().prop_map(Value::BigInt),
        float().prop_map(Value::Float),
        (float(), float()).prop_map(|(re, im)| Value::Complex(re, im)),
        any::<String>().prop_map(Value::Str),
        bytes().prop_map(Value::Bytes),
        bytes().prop_map(Value::ByteArray),
        Just(Value::Ellipsis),
        Just(Value::NotImplemented),
        (any::<u64>(), any::<u32>(), prop::option::of(type_desc())).prop_map(
            |(oid, type_id, desc)| Value::Ref(ObjRef {
                oid,
                type_id,
                desc: desc.map(Box::new)
            })
        ),
        any::<u64>().prop_map(Value::Returned),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 48, 6, |inner| {
        let items = prop::collection::vec(inner.clone(), 0..6);
        prop_oneof![
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(a, b, c)| Value::Slice(Box::new([a, b, c]))),
            items.clone().prop_map(Value::Tuple),
            items.clone().prop_map(Value::FrozenSet),
            items.clone().prop_map(Value::List),
            items.clone().prop_map(Value::Set),
            (any::<String>(), items)
                .prop_map(|(name, args)| Value::Standard(Box::new((name, args)))),
            prop::collection::vec((inner.clone(), inner), 0..4).prop_map(Value::Dict),
        ]
    })
}

fn args() -> impl Strategy<Value = Args> {
    (
        prop::collection::vec(value(), 0..4),
        prop::collection::vec((name(), value()), 0..3),
    )
        .prop_map(|(positional, keywords)| Args {
            positional,
            keywords,
        })
}

fn compare_op() -> impl Strategy<Value = CompareOp> {
    (0u8..6).prop_map(|c| CompareOp::from_u8(c).expect("valid code"))
}

fn binary_op() -> impl Strategy<Value = BinaryOp> {
    (0u8..14).prop_map(|c| BinaryOp::from_u8(c).expect("valid code"))
}

fn binary_form() -> impl Strategy<Value = BinaryForm> {
    (0u8..3).prop_map(|c| BinaryForm::from_u8(c).expect("valid code"))
}

fn unary_op() -> impl Strategy<Value = UnaryOp> {
    (0u8..14).prop_map(|c| UnaryOp::from_u8(c).expect("valid code"))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        prop_oneof![
            Just(Op::GetRoot),
            Just(Op::Ping),
            name().prop_map(Op::GetAttr),
            (name(), value()).prop_map(|(n, v)| Op::SetAttr(n, v)),
            name().prop_map(Op::DelAttr),
            args().prop_map(Op::Call),
            (name(), args()).prop_map(|(n, a)| Op::CallMethod(n, a)),
            Just(Op::Repr),
            Just(Op::Str),
            name().prop_map(Op::Format),
            Just(Op::Hash),
            Just(Op::Dir),
            Just(Op::Bool),
            Just(Op::Len),
            Just(Op::Iter),
            any::<u32>().prop_map(Op::Next),
        ],
        prop_oneof![
            value().prop_map(Op::GetItem),
            (value(), value()).prop_map(|(k, v)| Op::SetItem(k, v)),
            value().prop_map(Op::DelItem),
            value().prop_map(Op::Contains),
            (compare_op(), value()).prop_map(|(c, v)| Op::Compare(c, v)),
            (binary_op(), binary_form(), value()).prop_map(|(b, f, v)| Op::Binary(b, f, v)),
            unary_op().prop_map(Op::Unary),
            Just(Op::Enter),
            (value(), value(), value()).prop_map(|(t, v, tb)| Op::Exit(t, v, tb)),
            (name(), name()).prop_map(|(m, q)| Op::IsInstance(m, q)),
            Just(Op::Pickle),
            Just(Op::PickleBuffers),
            Just(Op::Await),
            Just(Op::AIter),
            Just(Op::ANext),
            Just(Op::AEnter),
            (value(), value(), value()).prop_map(|(t, v, tb)| Op::AExit(t, v, tb)),
        ],
    ]
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        any::<u64>().prop_map(Target::Export),
        (any::<u64>(), names()).prop_map(|(s, p)| Target::Answer(s, p)),
    ]
}

fn limits() -> impl Strategy<Value = Limits> {
    (
        any::<u32>(),
        any::<u64>(),
        any::<u32>(),
        any::<u64>(),
        any::<u32>(),
    )
        .prop_map(
            |(max_frame, max_message, max_depth, max_objects, max_in_flight)| Limits {
                max_frame,
                max_message,
                max_depth,
                max_objects,
                max_in_flight,
            },
        )
}

fn hello() -> impl Strategy<Value = Hello> {
    (
        any::<u32>(),
        any::<String>(),
        names(),
        limits(),
        prop::option::of(any::<String>()),
        name(),
    )
        .prop_map(
            |(protocol, implementation, features, limits, token, service)| Hello {
                protocol,
                implementation,
                features,
                limits,
                token,
                service,
            },
        )
}

fn error_kind() -> impl Strategy<Value = ErrorKind> {
    (0u8..7).prop_map(|c| ErrorKind::from_u8(c).expect("valid code"))
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        hello().prop_map(Message::Hello),
        (any::<u64>(), any::<u64>(), target(), op()).prop_map(|(seq, chain, target, op)| {
            Message::Request(Request {
                seq,
                chain,
                target,
                op,
            })
        }),
        (any::<u64>(), value()).prop_map(|(seq, value)| Message::Reply { seq, value }),
        (
            any::<u64>(),
            error_kind(),
            name(),
            any::<String>(),
            prop::collection::vec(value(), 0..3),
            any::<String>()
        )
            .prop_map(|(seq, kind, type_name, message, args, traceback)| {
                Message::Failure {
                    seq,
                    failure: Failure {
                        kind,
                        type_name,
                        message,
                        args,
                        traceback,
                    },
                }
            }),
        prop::collection::vec((any::<u64>(), any::<u64>()), 0..5).prop_map(Message::Release),
        any::<u64>().prop_map(|seq| Message::Cancel { seq }),
        any::<u64>().prop_map(|seq| Message::Finish { seq }),
        any::<String>().prop_map(|reason| Message::Goodbye { reason }),
    ]
}

/// Limits loose enough for anything the strategies generate.
fn roomy() -> Limits {
    Limits::default()
}

/// Change one encoding in one of several ways.
#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
    Remove(usize),
    DropAttachments,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(i, x)| Mutation::Flip(i, x)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, x)| Mutation::Set(i, x)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, x)| Mutation::Insert(i, x)),
        any::<usize>().prop_map(Mutation::Remove),
        Just(Mutation::DropAttachments),
    ]
}

fn mutate(frame: &Frame, mutations: &[Mutation]) -> Frame {
    let mut body = frame.body.to_vec();
    let mut attachments = frame.attachments.clone();
    for m in mutations {
        let n = body.len().max(1);
        match *m {
            Mutation::Flip(i, x) if !body.is_empty() => body[i % n] ^= x,
            Mutation::Set(i, x) if !body.is_empty() => body[i % n] = x,
            Mutation::Truncate(i) => body.truncate(i % n),
            Mutation::Insert(i, x) => body.insert(i % (body.len() + 1), x),
            Mutation::Remove(i) if !body.is_empty() => {
                body.remove(i % n);
            }
            Mutation::DropAttachments => attachments.clear(),
            _ => {}
        }
    }
    Frame {
        body: body.into(),
        attachments,
    }
}

/// Whatever decodes must survive another encode/decode unchanged (compared through `Debug`, so
/// NaN equals itself).
fn assert_stable(msg: &Message) {
    let again = decode(&encode(msg), &roomy())
        .expect("a decoded message re-encodes to something decodable");
    assert_eq!(format!("{again:?}"), format!("{msg:?}"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn round_trip(msg in message()) {
        let frame = encode(&msg);
        let decoded = decode(&frame, &roomy());
        prop_assert_eq!(decoded, Ok(msg));
    }

    #[test]
    fn encode_into_appends(msg in message(), prefix in prop::collection::vec(any::<u8>(), 0..8)) {
        let mut body = prefix.clone();
        let mut attachments = Vec::new();
        pynto_proto::encode_into(&msg, &mut body, &mut attachments);
        let frame = encode(&msg);
        prop_assert_eq!(&body[..prefix.len()], &prefix[..]);
        prop_assert_eq!(&body[prefix.len()..], &frame.body[..]);
        prop_assert_eq!(attachments, frame.attachments);
    }

    #[test]
    fn random_bodies_never_panic(
        body in prop::collection::vec(any::<u8>(), 0..256),
        attachments in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..4), 0..3),
        max_depth in 0u32..200,
    ) {
        let frame = Frame {
            body: body.into(),
            attachments: attachments.into_iter().map(Bytes::from).collect(),
        };
        let limits = Limits { max_depth, ..Limits::default() };
        if let Ok(msg) = decode(&frame, &limits) {
            assert_stable(&msg);
        }
    }

    #[test]
    fn random_tagged_values_never_panic(
        tail in prop::collection::vec(
            prop_oneof![0u8..20, 0x90u8..0xa0, Just(0xc0), Just(0xc4), Just(0xcb), any::<u8>()],
            0..128,
        ),
    ) {
        // A Reply header followed by bytes biased towards small tags and arrays.
        let mut body = vec![0x93, 0x02, 0x01];
        body.extend_from_slice(&tail);
        let frame = Frame { body: body.into(), attachments: vec![Bytes::from_static(b"att")] };
        if let Ok(msg) = decode(&frame, &roomy()) {
            assert_stable(&msg);
        }
    }

    #[test]
    fn mutated_encodings_never_panic(
        msg in message(),
        mutations in prop::collection::vec(mutation(), 1..4),
        max_depth in 0u32..16,
    ) {
        let mutated = mutate(&encode(&msg), &mutations);
        let limits = Limits { max_depth, ..Limits::default() };
        if let Ok(msg) = decode(&mutated, &limits) {
            assert_stable(&msg);
        }
    }
}

#[test]
fn nan_round_trips_bit_exact() {
    let payload = f64::from_bits(0x7ff8_dead_beef_0001);
    for nan in [f64::NAN, -f64::NAN, payload] {
        let msg = Message::Reply {
            seq: 1,
            value: Value::Complex(nan, nan),
        };
        let Message::Reply {
            value: Value::Complex(re, im),
            ..
        } = decode(&encode(&msg), &roomy()).unwrap()
        else {
            panic!("not a complex reply")
        };
        assert_eq!(re.to_bits(), nan.to_bits());
        assert_eq!(im.to_bits(), nan.to_bits());
        let msg = Message::Reply {
            seq: 1,
            value: Value::Float(nan),
        };
        let Message::Reply {
            value: Value::Float(f),
            ..
        } = decode(&encode(&msg), &roomy()).unwrap()
        else {
            panic!("not a float reply")
        };
        assert_eq!(f.to_bits(), nan.to_bits());
    }
}
