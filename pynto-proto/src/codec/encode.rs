//! Encoding: messages into a msgpack body plus attachments, written straight into the caller's
//! buffer with no intermediate allocation.

use bytes::Bytes;
use rmp::encode as w;

use super::code::*;
use crate::failure::Failure;
use crate::limits::INLINE_BYTES_MAX;
use crate::message::{Hello, Message, Request, Target};
use crate::op::{Args, Op};
use crate::value::{ObjRef, TypeDesc, Value};

// Writing to a `Vec<u8>` cannot fail, so the `Result`s of `rmp::encode` are discarded here, in
// one place.

#[inline]
fn len32(n: usize) -> u32 {
    u32::try_from(n).expect("a msgpack string, byte string or container is limited to u32::MAX")
}

#[inline]
fn array(buf: &mut Vec<u8>, n: usize) {
    let _ = w::write_array_len(buf, len32(n));
}

#[inline]
fn map(buf: &mut Vec<u8>, n: usize) {
    let _ = w::write_map_len(buf, len32(n));
}

#[inline]
fn uint(buf: &mut Vec<u8>, v: u64) {
    let _ = w::write_uint(buf, v);
}

/// A small code (message, op, tag): always a positive fixint or uint8.
#[inline]
fn tag(buf: &mut Vec<u8>, v: u8) {
    if v < 0x80 {
        buf.push(v);
    } else {
        buf.extend_from_slice(&[0xcc, v]);
    }
}

#[inline]
fn sint(buf: &mut Vec<u8>, v: i64) {
    let _ = w::write_sint(buf, v);
}

#[inline]
fn float(buf: &mut Vec<u8>, v: f64) {
    let _ = w::write_f64(buf, v);
}

#[inline]
fn string(buf: &mut Vec<u8>, s: &str) {
    let _ = w::write_str_len(buf, len32(s.len()));
    buf.extend_from_slice(s.as_bytes());
}

#[inline]
fn bin(buf: &mut Vec<u8>, b: &[u8]) {
    let _ = w::write_bin_len(buf, len32(b.len()));
    buf.extend_from_slice(b);
}

fn strings(buf: &mut Vec<u8>, items: &[String]) {
    array(buf, items.len());
    for s in items {
        string(buf, s);
    }
}

/// Encode `msg`, appending to `buf` and `att`.
pub(super) fn message(msg: &Message, buf: &mut Vec<u8>, att: &mut Vec<Bytes>) {
    match msg {
        Message::Hello(hello) => {
            array(buf, 2);
            tag(buf, HELLO);
            self::hello(hello, buf);
        }
        Message::Request(Request {
            seq,
            chain,
            target,
            op,
        }) => {
            array(buf, 5);
            tag(buf, REQUEST);
            uint(buf, *seq);
            uint(buf, *chain);
            self::target(target, buf);
            self::op(op, buf, att);
        }
        Message::Reply { seq, value } => {
            array(buf, 3);
            tag(buf, REPLY);
            uint(buf, *seq);
            self::value(value, buf, att);
        }
        Message::Failure { seq, failure } => {
            let Failure {
                kind,
                type_name,
                message,
                args,
                traceback,
            } = failure;
            array(buf, 7);
            tag(buf, FAILURE);
            uint(buf, *seq);
            tag(buf, *kind as u8);
            string(buf, type_name);
            string(buf, message);
            values(args, buf, att);
            string(buf, traceback);
        }
        Message::Release(items) => {
            array(buf, 2);
            tag(buf, RELEASE);
            array(buf, items.len());
            for (oid, count) in items {
                array(buf, 2);
                uint(buf, *oid);
                uint(buf, *count);
            }
        }
        Message::Cancel { seq } => {
            array(buf, 2);
            tag(buf, CANCEL);
            uint(buf, *seq);
        }
        Message::Finish { seq } => {
            array(buf, 2);
            tag(buf, FINISH);
            uint(buf, *seq);
        }
        Message::Goodbye { reason } => {
            array(buf, 2);
            tag(buf, GOODBYE);
            string(buf, reason);
        }
    }
}

fn hello(hello: &Hello, buf: &mut Vec<u8>) {
    // `Hello` holds only strings, integers and lists of strings: serializing it cannot fail.
    rmp_serde::encode::write_named(buf, hello).expect("Hello always serializes");
}

fn target(target: &Target, buf: &mut Vec<u8>) {
    match target {
        Target::Export(oid) => uint(buf, *oid),
        Target::Answer(seq, path) => {
            array(buf, 2);
            uint(buf, *seq);
            strings(buf, path);
        }
    }
}

fn args(args: &Args, buf: &mut Vec<u8>, att: &mut Vec<Bytes>) {
    values(&args.positional, buf, att);
    map(buf, args.keywords.len());
    for (name, value) in &args.keywords {
        string(buf, name);
        self::value(value, buf, att);
    }
}

fn values(items: &[Value], buf: &mut Vec<u8>, att: &mut Vec<Bytes>) {
    array(buf, items.len());
    for v in items {
        value(v, buf, att);
    }
}

/// Header of an op: `[code, ...]` with `operands` elements after the code.
#[inline]
fn op_head(buf: &mut Vec<u8>, code: u8, operands: usize) {
    array(buf, 1 + operands);
    tag(buf, code);
}

fn op(op: &Op, buf: &mut Vec<u8>, att: &mut Vec<Bytes>) {
    match op {
        Op::GetRoot => op_head(buf, OP_GET_ROOT, 0),
        Op::Ping => op_head(buf, OP_PING, 0),
        Op::GetAttr(name) => {
            op_head(buf, OP_GET_ATTR, 1);
            string(buf, name);
        }
        Op::SetAttr(name, v) => {
            op_head(buf, OP_SET_ATTR, 2);
            string(buf, name);
            value(v, buf, att);
        }
        Op::DelAttr(name) => {
            op_head(buf, OP_DEL_ATTR, 1);
            string(buf, name);
        }
        Op::Call(a) => {
            op_head(buf, OP_CALL, 2);
            args(a, buf, att);
        }
        Op::CallMethod(name, a) => {
            op_head(buf, OP_CALL_METHOD, 3);
            string(buf, name);
            args(a, buf, att);
        }
        Op::Repr => op_head(buf, OP_REPR, 0),
        Op::Str => op_head(buf, OP_STR, 0),
        Op::Format(spec) => {
            op_head(buf, OP_FORMAT, 1);
            string(buf, spec);
        }
        Op::Hash => op_head(buf, OP_HASH, 0),
        Op::Dir => op_head(buf, OP_DIR, 0),
        Op::Bool => op_head(buf, OP_BOOL, 0),
        Op::Len => op_head(buf, OP_LEN, 0),
        Op::Iter => op_head(buf, OP_ITER, 0),
        Op::Next(n) => {
            op_head(buf, OP_NEXT, 1);
            uint(buf, u64::from(*n));
        }
        Op::GetItem(key) => {
            op_head(buf, OP_GET_ITEM, 1);
            value(key, buf, att);
        }
        Op::SetItem(key, v) => {
            op_head(buf, OP_SET_ITEM, 2);
            value(key, buf, att);
            value(v, buf, att);
        }
        Op::DelItem(key) => {
            op_head(buf, OP_DEL_ITEM, 1);
            value(key, buf, att);
        }
        Op::Contains(item) => {
            op_head(buf, OP_CONTAINS, 1);
            value(item, buf, att);
        }
        Op::Compare(cmp, other) => {
            op_head(buf, OP_COMPARE, 2);
            tag(buf, *cmp as u8);
            value(other, buf, att);
        }
        Op::Binary(bop, form, other) => {
            op_head(buf, OP_BINARY, 3);
            tag(buf, *bop as u8);
            tag(buf, *form as u8);
            value(other, buf, att);
        }
        Op::Unary(uop) => {
            op_head(buf, OP_UNARY, 1);
            tag(buf, *uop as u8);
        }
        Op::Enter => op_head(buf, OP_ENTER, 0),
        Op::Exit(t, v, tb) => {
            op_head(buf, OP_EXIT, 3);
            value(t, buf, att);
            value(v, buf, att);
            value(tb, buf, att);
        }
        Op::IsInstance(module, qualname) => {
            op_head(buf, OP_IS_INSTANCE, 2);
            string(buf, module);
            string(buf, qualname);
        }
        Op::Pickle => op_head(buf, OP_PICKLE, 0),
        Op::PickleBuffers => op_head(buf, OP_PICKLE_BUFFERS, 0),
        Op::Await => op_head(buf, OP_AWAIT, 0),
        Op::AIter => op_head(buf, OP_AITER, 0),
        Op::ANext => op_head(buf, OP_ANEXT, 0),
        Op::AEnter => op_head(buf, OP_AENTER, 0),
        Op::AExit(t, v, tb) => {
            op_head(buf, OP_AEXIT, 3);
            value(t, buf, att);
            value(v, buf, att);
            value(tb, buf, att);
        }
    }
}

/// A tagged array header: `[tag, ...]` with `fields` elements after the tag.
#[inline]
fn tagged(buf: &mut Vec<u8>, t: u8, fields: usize) {
    array(buf, 1 + fields);
    tag(buf, t);
}

/// Append `bytes` as an attachment and write its index.
#[inline]
fn attach(bytes: &Bytes, buf: &mut Vec<u8>, att: &mut Vec<Bytes>) {
    uint(buf, att.len() as u64);
    att.push(bytes.clone());
}

fn seq(t: u8, items: &[Value], buf: &mut Vec<u8>, att: &mut Vec<Bytes>) {
    tagged(buf, t, items.len());
    for v in items {
        value(v, buf, att);
    }
}

pub(super) fn value(v: &Value, buf: &mut Vec<u8>, att: &mut Vec<Bytes>) {
    match v {
        Value::None => buf.push(0xc0),
        Value::Bool(b) => buf.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Int(i) => sint(buf, *i),
        Value::BigInt(le) => {
            tagged(buf, V_BIGINT, 1);
            bin(buf, le);
        }
        Value::Float(f) => float(buf, *f),
        Value::Complex(re, im) => {
            tagged(buf, V_COMPLEX, 2);
            float(buf, *re);
            float(buf, *im);
        }
        Value::Str(s) => string(buf, s),
        Value::Bytes(b) => {
            if b.len() < INLINE_BYTES_MAX {
                bin(buf, b);
            } else {
                tagged(buf, V_BYTES, 1);
                attach(b, buf, att);
            }
        }
        Value::Ellipsis => tagged(buf, V_ELLIPSIS, 0),
        Value::NotImplemented => tagged(buf, V_NOT_IMPLEMENTED, 0),
        Value::Slice(parts) => seq(V_SLICE, &parts[..], buf, att),
        Value::Tuple(items) => seq(V_TUPLE, items, buf, att),
        Value::FrozenSet(items) => seq(V_FROZENSET, items, buf, att),
        Value::List(items) => seq(V_LIST, items, buf, att),
        Value::Set(items) => seq(V_SET, items, buf, att),
        Value::Dict(pairs) => {
            let fields = pairs
                .len()
                .checked_mul(2)
                .expect("dict too large to encode");
            tagged(buf, V_DICT, fields);
            for (k, val) in pairs {
                value(k, buf, att);
                value(val, buf, att);
            }
        }
        Value::ByteArray(b) => {
            tagged(buf, V_BYTEARRAY, 1);
            if b.len() < INLINE_BYTES_MAX {
                bin(buf, b);
            } else {
                attach(b, buf, att);
            }
        }
        Value::Ref(ObjRef { oid, type_id, desc }) => {
            tagged(buf, V_REF, if desc.is_some() { 3 } else { 2 });
            uint(buf, *oid);
            uint(buf, u64::from(*type_id));
            if let Some(desc) = desc {
                let TypeDesc {
                    module,
                    qualname,
                    dunders,
                    methods,
                    abcs,
                } = &**desc;
                array(buf, 5);
                string(buf, module);
                string(buf, qualname);
                strings(buf, dunders);
                strings(buf, methods);
                strings(buf, abcs);
            }
        }
        Value::Returned(oid) => {
            tagged(buf, V_RETURNED, 1);
            uint(buf, *oid);
        }
        Value::Standard(standard) => {
            let (name, args) = &**standard;
            tagged(buf, V_STANDARD, args.len() + 1);
            string(buf, name);
            for v in args {
                value(v, buf, att);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_single_bytes_and_ints_are_smallest() {
        let mut buf = Vec::new();
        tag(&mut buf, 31);
        tag(&mut buf, 200);
        assert_eq!(buf, [31, 0xcc, 200]);
        for (v, len) in [
            (0i64, 1),
            (127, 1),
            (128, 2),
            (-32, 1),
            (-33, 2),
            (1 << 40, 9),
            (i64::MIN, 9),
        ] {
            buf.clear();
            sint(&mut buf, v);
            assert_eq!(buf.len(), len, "{v}");
        }
    }
}
