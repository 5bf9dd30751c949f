//! Decoding: a byte cursor over a frame's body that checks every length against the bytes left
//! before allocating, bounds nesting by the depth limit, and never panics on any input.

use bytes::Bytes;

use super::code::*;
use super::{DecodeError, MAX_BIGINT_BYTES};
use crate::failure::{ErrorKind, Failure};
use crate::ids::{Oid, Seq};
use crate::limits::Limits;
use crate::message::{Frame, Hello, Message, Request, Target};
use crate::op::{Args, BinaryForm, BinaryOp, CompareOp, Op, UnaryOp};
use crate::value::{ObjRef, TypeDesc, Value};

/// The nesting Hello may always use, whatever `Limits::max_depth` says.
const HELLO_MIN_DEPTH: u32 = 8;

type Result<T> = std::result::Result<T, DecodeError>;

fn malformed(why: impl Into<String>) -> DecodeError {
    DecodeError::Malformed(why.into())
}

/// A human name for the msgpack type a marker byte starts.
fn type_name(marker: u8) -> &'static str {
    match marker {
        0x00..=0x7f | 0xcc..=0xcf | 0xd0..=0xd3 | 0xe0..=0xff => "an integer",
        0x80..=0x8f | 0xde | 0xdf => "a map",
        0x90..=0x9f | 0xdc | 0xdd => "an array",
        0xa0..=0xbf | 0xd9..=0xdb => "a string",
        0xc0 => "nil",
        0xc2 | 0xc3 => "a boolean",
        0xc4..=0xc6 => "a byte string",
        0xc7..=0xc9 | 0xd4..=0xd8 => "an extension",
        0xca | 0xcb => "a float",
        _ => "the reserved marker 0xc1",
    }
}

/// The cursor. `buf` is `body[..]`; `body` is kept to slice zero-copy `Bytes` out of it.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    body: &'a Bytes,
    attachments: &'a [Bytes],
    max_depth: u32,
}

/// Decode the one message of `frame`. The caller has checked the body length.
pub(super) fn message(frame: &Frame, limits: &Limits) -> Result<Message> {
    let mut r = Reader {
        buf: &frame.body[..],
        pos: 0,
        body: &frame.body,
        attachments: &frame.attachments,
        max_depth: limits.max_depth,
    };
    // Returned as is (not through `?`) so the message is built straight in the return slot.
    let result = r.message();
    let extra = r.remaining();
    if result.is_ok() && extra != 0 {
        return Err(DecodeError::TrailingBytes { extra });
    }
    result
}

impl<'a> Reader<'a> {
    // ----- raw bytes -------------------------------------------------------------------------

    #[inline]
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    #[inline]
    fn byte(&mut self) -> Result<u8> {
        let b = *self.buf.get(self.pos).ok_or(DecodeError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    fn peek(&self) -> Result<u8> {
        self.buf
            .get(self.pos)
            .copied()
            .ok_or(DecodeError::Truncated)
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(DecodeError::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    #[inline]
    fn array_n<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    #[inline]
    fn be16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array_n()?))
    }

    #[inline]
    fn be32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array_n()?))
    }

    #[inline]
    fn be64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array_n()?))
    }

    // ----- msgpack scalars -------------------------------------------------------------------

    /// An integer after its marker `m`, if `m` is an integer marker: `Some(Ok(i128))`.
    #[inline]
    fn int_after(&mut self, m: u8) -> Option<Result<i128>> {
        let v = match m {
            0x00..=0x7f => Ok(i128::from(m)),
            0xe0..=0xff => Ok(i128::from(m as i8)),
            0xcc => self.byte().map(i128::from),
            0xcd => self.be16().map(i128::from),
            0xce => self.be32().map(i128::from),
            0xcf => self.be64().map(i128::from),
            0xd0 => self.byte().map(|b| i128::from(b as i8)),
            0xd1 => self.be16().map(|v| i128::from(v as i16)),
            0xd2 => self.be32().map(|v| i128::from(v as i32)),
            0xd3 => self.be64().map(|v| i128::from(v as i64)),
            _ => return None,
        };
        Some(v)
    }

    /// A non-negative integer of any msgpack int form, for a field named `what`.
    #[inline]
    fn u64(&mut self, what: &str) -> Result<u64> {
        let m = self.byte()?;
        // Fast path: the positive fixint every small id and code uses.
        if m < 0x80 {
            return Ok(u64::from(m));
        }
        match self.int_after(m) {
            Some(v) => {
                let v = v?;
                u64::try_from(v)
                    .map_err(|_| DecodeError::BadInteger(format!("{what} is negative ({v})")))
            }
            None => Err(malformed(format!(
                "{what} should be an integer, found {}",
                type_name(m)
            ))),
        }
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        let v = self.u64(what)?;
        u32::try_from(v)
            .map_err(|_| DecodeError::BadInteger(format!("{what} {v} does not fit in 32 bits")))
    }

    /// A small code (message, op, tag, operator). Returned as `u64` so unknown codes are reported
    /// exactly.
    #[inline]
    fn code(&mut self, what: &str) -> Result<u64> {
        self.u64(what)
    }

    fn float_after(&mut self, m: u8) -> Option<Result<f64>> {
        match m {
            0xcb => Some(self.be64().map(f64::from_bits)),
            0xca => Some(self.be32().map(|b| f64::from(f32::from_bits(b)))),
            _ => None,
        }
    }

    fn f64(&mut self, what: &str) -> Result<f64> {
        let m = self.byte()?;
        match self.float_after(m) {
            Some(v) => v,
            None => Err(malformed(format!(
                "{what} should be a float, found {}",
                type_name(m)
            ))),
        }
    }

    /// The length of a string after its marker `m`, if `m` is a string marker.
    #[inline]
    fn str_len_after(&mut self, m: u8) -> Option<Result<usize>> {
        Some(match m {
            0xa0..=0xbf => Ok(usize::from(m & 0x1f)),
            0xd9 => self.byte().map(usize::from),
            0xda => self.be16().map(usize::from),
            0xdb => self.be32().map(|n| n as usize),
            _ => return None,
        })
    }

    #[inline]
    fn str_body(&mut self, len: usize) -> Result<String> {
        let raw = self.take(len)?;
        match std::str::from_utf8(raw) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(DecodeError::InvalidUtf8),
        }
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let m = self.byte()?;
        match self.str_len_after(m) {
            Some(len) => {
                let len = len?;
                self.str_body(len)
            }
            None => Err(malformed(format!(
                "{what} should be a string, found {}",
                type_name(m)
            ))),
        }
    }

    /// The length of a byte string after its marker `m`, if `m` is a bin marker.
    #[inline]
    fn bin_len_after(&mut self, m: u8) -> Option<Result<usize>> {
        Some(match m {
            0xc4 => self.byte().map(usize::from),
            0xc5 => self.be16().map(usize::from),
            0xc6 => self.be32().map(|n| n as usize),
            _ => return None,
        })
    }

    /// `len` bytes of the body as a zero-copy slice of it.
    #[inline]
    fn bin_body(&mut self, len: usize) -> Result<Bytes> {
        if len > self.remaining() {
            return Err(DecodeError::Truncated);
        }
        let start = self.pos;
        self.pos += len;
        Ok(self.body.slice(start..start + len))
    }

    /// An array header; the length is checked against the bytes left (every element takes at
    /// least one byte), so callers may allocate `len` elements.
    #[inline]
    fn array(&mut self, what: &str) -> Result<usize> {
        let m = self.byte()?;
        match self.array_len_after(m) {
            Some(n) => n,
            None => Err(malformed(format!(
                "{what} should be an array, found {}",
                type_name(m)
            ))),
        }
    }

    #[inline]
    fn array_len_after(&mut self, m: u8) -> Option<Result<usize>> {
        let n = match m {
            0x90..=0x9f => Ok(usize::from(m & 0x0f)),
            0xdc => self.be16().map(usize::from),
            0xdd => self.be32().map(|n| n as usize),
            _ => return None,
        };
        Some(n.and_then(|n| self.fits(n, 1)))
    }

    /// A map header, checked like an array's (every entry takes at least two bytes).
    fn map(&mut self, what: &str) -> Result<usize> {
        let m = self.byte()?;
        let n = match m {
            0x80..=0x8f => usize::from(m & 0x0f),
            0xde => usize::from(self.be16()?),
            0xdf => self.be32()? as usize,
            _ => {
                return Err(malformed(format!(
                    "{what} should be a map, found {}",
                    type_name(m)
                )))
            }
        };
        self.fits(n, 2)
    }

    /// `n` items of at least `each` bytes must fit in what is left.
    #[inline]
    fn fits(&self, n: usize, each: usize) -> Result<usize> {
        match n.checked_mul(each) {
            Some(need) if need <= self.remaining() => Ok(n),
            _ => Err(DecodeError::Truncated),
        }
    }

    fn strings(&mut self, what: &str) -> Result<Vec<String>> {
        let n = self.array(what)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.string(what)?);
        }
        Ok(out)
    }

    /// Skip one msgpack value of any type without recursion, returning its bytes. Containers may
    /// nest at most `max_depth` deep.
    fn skip_value(&mut self, max_depth: u32) -> Result<&'a [u8]> {
        let start = self.pos;
        // For each open container, how many of its elements are still to come.
        let mut open: Vec<u64> = Vec::new();
        loop {
            let m = self.byte()?;
            let (skip, children): (usize, u64) = match m {
                0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
                0x80..=0x8f => (0, 2 * u64::from(m & 0x0f)),
                0x90..=0x9f => (0, u64::from(m & 0x0f)),
                0xa0..=0xbf => (usize::from(m & 0x1f), 0),
                0xc1 => return Err(malformed("the reserved msgpack marker 0xc1")),
                0xc4 | 0xd9 => (usize::from(self.byte()?), 0),
                0xc5 | 0xda => (usize::from(self.be16()?), 0),
                0xc6 | 0xdb => (self.be32()? as usize, 0),
                0xc7 => (usize::from(self.byte()?) + 1, 0),
                0xc8 => (usize::from(self.be16()?) + 1, 0),
                0xc9 => ((self.be32()? as usize).saturating_add(1), 0),
                0xca => (4, 0),
                0xcb => (8, 0),
                0xcc | 0xd0 => (1, 0),
                0xcd | 0xd1 => (2, 0),
                0xce | 0xd2 => (4, 0),
                0xcf | 0xd3 => (8, 0),
                0xd4 => (2, 0),
                0xd5 => (3, 0),
                0xd6 => (5, 0),
                0xd7 => (9, 0),
                0xd8 => (17, 0),
                0xdc => (0, u64::from(self.be16()?)),
                0xdd => (0, u64::from(self.be32()?)),
                0xde => (0, 2 * u64::from(self.be16()?)),
                0xdf => (0, 2 * u64::from(self.be32()?)),
            };
            self.take(skip)?;
            if children > 0 {
                if children > self.remaining() as u64 {
                    return Err(DecodeError::Truncated);
                }
                if open.len() >= max_depth as usize {
                    return Err(DecodeError::TooDeep { max: max_depth });
                }
                open.push(children);
                continue;
            }
            // A complete element: close every container it completes.
            loop {
                match open.last_mut() {
                    None => return Ok(&self.buf[start..self.pos]),
                    Some(left) => {
                        *left -= 1;
                        if *left > 0 {
                            break;
                        }
                        open.pop();
                    }
                }
            }
        }
    }

    /// Enter one container level below `depth`, returning the new depth.
    #[inline]
    fn enter(&self, depth: u32) -> Result<u32> {
        let d = depth.saturating_add(1);
        if d > self.max_depth {
            return Err(DecodeError::TooDeep {
                max: self.max_depth,
            });
        }
        Ok(d)
    }

    // ----- messages --------------------------------------------------------------------------

    fn message(&mut self) -> Result<Message> {
        let n = self.array("a message")?;
        if n == 0 {
            return Err(malformed("a message is an empty array"));
        }
        let code = self.code("the message code")?;
        let expected = match code {
            c if c == u64::from(HELLO) => 2,
            c if c == u64::from(REQUEST) => 5,
            c if c == u64::from(REPLY) => 3,
            c if c == u64::from(FAILURE) => 7,
            c if c == u64::from(RELEASE) => 2,
            c if c == u64::from(CANCEL) => 2,
            c if c == u64::from(FINISH) => 2,
            c if c == u64::from(GOODBYE) => 2,
            c => return Err(DecodeError::UnknownMessage(c)),
        };
        if n != expected {
            return Err(malformed(format!(
                "message {code} has {n} elements, expected {expected}"
            )));
        }
        // `code` fits in u8 now.
        Ok(match code as u8 {
            HELLO => Message::Hello(self.hello()?),
            REQUEST => {
                let seq = self.u64("seq")?;
                let chain = self.u64("chain")?;
                let target = self.target()?;
                let op = self.op()?;
                Message::Request(Request {
                    seq,
                    chain,
                    target,
                    op,
                })
            }
            REPLY => {
                let seq = self.u64("seq")?;
                let value = self.value(0)?;
                Message::Reply { seq, value }
            }
            FAILURE => {
                let seq = self.u64("seq")?;
                let code = self.code("the error kind")?;
                let kind = u8::try_from(code).ok().and_then(ErrorKind::from_u8).ok_or(
                    DecodeError::UnknownTag {
                        what: "error kind",
                        tag: code,
                    },
                )?;
                let type_name = self.string("the exception type name")?;
                let message = self.string("the exception message")?;
                let args = self.values(0, "the exception args")?;
                let traceback = self.string("the traceback")?;
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
            }
            RELEASE => {
                let n = self.array("the released references")?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    if self.array("a released reference")? != 2 {
                        return Err(malformed("a released reference is not [oid, count]"));
                    }
                    let oid: Oid = self.u64("oid")?;
                    let count = self.u64("count")?;
                    items.push((oid, count));
                }
                Message::Release(items)
            }
            CANCEL => Message::Cancel {
                seq: self.u64("seq")?,
            },
            FINISH => Message::Finish {
                seq: self.u64("seq")?,
            },
            _ => Message::Goodbye {
                reason: self.string("the goodbye reason")?,
            },
        })
    }

    fn hello(&mut self) -> Result<Hello> {
        let m = self.peek()?;
        if !matches!(m, 0x80..=0x8f | 0xde | 0xdf) {
            return Err(malformed(format!(
                "Hello should be a map, found {}",
                type_name(m)
            )));
        }
        // Hello must decode whatever the value depth limit, so it gets a floor of its own.
        let raw = self.skip_value(self.max_depth.max(HELLO_MIN_DEPTH))?;
        rmp_serde::from_slice(raw).map_err(|e| malformed(format!("bad Hello: {e}")))
    }

    fn target(&mut self) -> Result<Target> {
        let m = self.peek()?;
        if matches!(m, 0x90..=0x9f | 0xdc | 0xdd) {
            if self.array("the target")? != 2 {
                return Err(malformed("an answer target is not [seq, path]"));
            }
            let seq: Seq = self.u64("the answered seq")?;
            let path = self.strings("the answer path")?;
            Ok(Target::Answer(seq, path))
        } else {
            Ok(Target::Export(self.u64("the target oid")?))
        }
    }

    // ----- ops -------------------------------------------------------------------------------

    fn op(&mut self) -> Result<Op> {
        let n = self.array("an op")?;
        if n == 0 {
            return Err(malformed("an op is an empty array"));
        }
        let code = self.code("the op code")?;
        let operands = match code {
            c if c > u64::from(OP_AEXIT) => {
                return Err(DecodeError::UnknownTag { what: "op", tag: c })
            }
            c => match c as u8 {
                OP_GET_ATTR | OP_DEL_ATTR | OP_FORMAT | OP_NEXT | OP_GET_ITEM | OP_DEL_ITEM
                | OP_CONTAINS | OP_UNARY => 1,
                OP_SET_ATTR | OP_CALL | OP_SET_ITEM | OP_COMPARE | OP_IS_INSTANCE => 2,
                OP_CALL_METHOD | OP_BINARY | OP_EXIT | OP_AEXIT => 3,
                _ => 0,
            },
        };
        if n != 1 + operands {
            return Err(malformed(format!(
                "op {code} has {} operand(s), expected {operands}",
                n - 1
            )));
        }
        Ok(match code as u8 {
            OP_GET_ROOT => Op::GetRoot,
            OP_PING => Op::Ping,
            OP_GET_ATTR => Op::GetAttr(self.string("the attribute name")?),
            OP_SET_ATTR => {
                let name = self.string("the attribute name")?;
                Op::SetAttr(name, self.value(0)?)
            }
            OP_DEL_ATTR => Op::DelAttr(self.string("the attribute name")?),
            OP_CALL => Op::Call(self.args()?),
            OP_CALL_METHOD => {
                let name = self.string("the method name")?;
                Op::CallMethod(name, self.args()?)
            }
            OP_REPR => Op::Repr,
            OP_STR => Op::Str,
            OP_FORMAT => Op::Format(self.string("the format spec")?),
            OP_HASH => Op::Hash,
            OP_DIR => Op::Dir,
            OP_BOOL => Op::Bool,
            OP_LEN => Op::Len,
            OP_ITER => Op::Iter,
            OP_NEXT => Op::Next(self.u32("the item count of Next")?),
            OP_GET_ITEM => Op::GetItem(self.value(0)?),
            OP_SET_ITEM => {
                let key = self.value(0)?;
                Op::SetItem(key, self.value(0)?)
            }
            OP_DEL_ITEM => Op::DelItem(self.value(0)?),
            OP_CONTAINS => Op::Contains(self.value(0)?),
            OP_COMPARE => {
                let c = self.code("the comparison")?;
                let cmp = u8::try_from(c).ok().and_then(CompareOp::from_u8).ok_or(
                    DecodeError::UnknownTag {
                        what: "comparison operator",
                        tag: c,
                    },
                )?;
                Op::Compare(cmp, self.value(0)?)
            }
            OP_BINARY => {
                let c = self.code("the binary operator")?;
                let bop = u8::try_from(c).ok().and_then(BinaryOp::from_u8).ok_or(
                    DecodeError::UnknownTag {
                        what: "binary operator",
                        tag: c,
                    },
                )?;
                let c = self.code("the binary operator form")?;
                let form = u8::try_from(c).ok().and_then(BinaryForm::from_u8).ok_or(
                    DecodeError::UnknownTag {
                        what: "binary operator form",
                        tag: c,
                    },
                )?;
                Op::Binary(bop, form, self.value(0)?)
            }
            OP_UNARY => {
                let c = self.code("the unary operator")?;
                let uop = u8::try_from(c).ok().and_then(UnaryOp::from_u8).ok_or(
                    DecodeError::UnknownTag {
                        what: "unary operator",
                        tag: c,
                    },
                )?;
                Op::Unary(uop)
            }
            OP_ENTER => Op::Enter,
            OP_EXIT => {
                let (t, v, tb) = self.exc_triple()?;
                Op::Exit(t, v, tb)
            }
            OP_IS_INSTANCE => {
                let module = self.string("the class module")?;
                Op::IsInstance(module, self.string("the class qualname")?)
            }
            OP_PICKLE => Op::Pickle,
            OP_AWAIT => Op::Await,
            OP_AITER => Op::AIter,
            OP_ANEXT => Op::ANext,
            OP_AENTER => Op::AEnter,
            _ => {
                let (t, v, tb) = self.exc_triple()?;
                Op::AExit(t, v, tb)
            }
        })
    }

    fn exc_triple(&mut self) -> Result<(Value, Value, Value)> {
        Ok((self.value(0)?, self.value(0)?, self.value(0)?))
    }

    /// `[positional...] {keyword: value}`, one nesting level.
    fn args(&mut self) -> Result<Args> {
        let positional = self.values(0, "the positional arguments")?;
        let depth = self.enter(0)?;
        let n = self.map("the keyword arguments")?;
        let mut keywords = Vec::with_capacity(n);
        for _ in 0..n {
            let name = self.string("a keyword argument name")?;
            keywords.push((name, self.value(depth)?));
        }
        Ok(Args {
            positional,
            keywords,
        })
    }

    /// An array of values one level below `depth`.
    fn values(&mut self, depth: u32, what: &str) -> Result<Vec<Value>> {
        let depth = self.enter(depth)?;
        let n = self.array(what)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.value(depth)?);
        }
        Ok(out)
    }

    // ----- values ----------------------------------------------------------------------------

    /// One value inside `depth` enclosing containers.
    fn value(&mut self, depth: u32) -> Result<Value> {
        let m = self.byte()?;
        match m {
            0x00..=0x7f => Ok(Value::Int(i64::from(m))),
            0xe0..=0xff => Ok(Value::Int(i64::from(m as i8))),
            0xc0 => Ok(Value::None),
            0xc2 => Ok(Value::Bool(false)),
            0xc3 => Ok(Value::Bool(true)),
            0xcc..=0xd3 => {
                let v = match self.int_after(m) {
                    Some(v) => v?,
                    None => return Err(malformed("unreachable integer marker")),
                };
                i64::try_from(v).map(Value::Int).map_err(|_| {
                    DecodeError::BadInteger(format!(
                        "{v} does not fit in 64 bits; big integers are tagged"
                    ))
                })
            }
            0xca | 0xcb => match self.float_after(m) {
                Some(v) => v.map(Value::Float),
                None => Err(malformed("unreachable float marker")),
            },
            0xa0..=0xbf | 0xd9..=0xdb => match self.str_len_after(m) {
                Some(len) => {
                    let len = len?;
                    self.str_body(len).map(Value::Str)
                }
                None => Err(malformed("unreachable string marker")),
            },
            0xc4..=0xc6 => match self.bin_len_after(m) {
                Some(len) => {
                    let len = len?;
                    self.bin_body(len).map(Value::Bytes)
                }
                None => Err(malformed("unreachable bin marker")),
            },
            0x90..=0x9f | 0xdc | 0xdd => match self.array_len_after(m) {
                Some(n) => {
                    let n = n?;
                    self.tagged(n, depth)
                }
                None => Err(malformed("unreachable array marker")),
            },
            _ => Err(malformed(format!("a value cannot be {}", type_name(m)))),
        }
    }

    /// A `[tag, ...]` value of `n` elements, the array header already read.
    fn tagged(&mut self, n: usize, depth: u32) -> Result<Value> {
        if n == 0 {
            return Err(malformed("a tagged value is an empty array"));
        }
        let tag = self.code("the value tag")?;
        let fields = n - 1;
        let tag = match u8::try_from(tag) {
            Ok(t) if t <= V_STANDARD => t,
            _ => return Err(DecodeError::UnknownTag { what: "value", tag }),
        };
        let want = |expected: usize, name: &str| -> Result<()> {
            if fields == expected {
                Ok(())
            } else {
                Err(malformed(format!(
                    "{name} has {fields} field(s), expected {expected}"
                )))
            }
        };
        match tag {
            V_NONE | V_BOOL | V_INT | V_FLOAT | V_STR => Err(malformed(format!(
                "value tag {tag} is never tagged: it travels as native msgpack"
            ))),
            V_BIGINT => {
                want(1, "a big integer")?;
                self.bigint()
            }
            V_COMPLEX => {
                want(2, "a complex")?;
                let re = self.f64("the real part")?;
                let im = self.f64("the imaginary part")?;
                Ok(Value::Complex(re, im))
            }
            V_BYTES => {
                want(1, "an attached bytes")?;
                self.attachment().map(Value::Bytes)
            }
            V_ELLIPSIS => want(0, "Ellipsis").map(|_| Value::Ellipsis),
            V_NOT_IMPLEMENTED => want(0, "NotImplemented").map(|_| Value::NotImplemented),
            V_SLICE => {
                want(3, "a slice")?;
                let d = self.enter(depth)?;
                let a = self.value(d)?;
                let b = self.value(d)?;
                let c = self.value(d)?;
                Ok(Value::Slice(Box::new([a, b, c])))
            }
            V_TUPLE => self.items(fields, depth).map(Value::Tuple),
            V_FROZENSET => self.items(fields, depth).map(Value::FrozenSet),
            V_LIST => self.items(fields, depth).map(Value::List),
            V_SET => self.items(fields, depth).map(Value::Set),
            V_DICT => {
                if fields % 2 != 0 {
                    return Err(malformed(format!(
                        "a dict has an odd number ({fields}) of keys and values"
                    )));
                }
                let d = self.enter(depth)?;
                let mut pairs = Vec::with_capacity(fields / 2);
                for _ in 0..fields / 2 {
                    let k = self.value(d)?;
                    let v = self.value(d)?;
                    pairs.push((k, v));
                }
                Ok(Value::Dict(pairs))
            }
            V_BYTEARRAY => {
                want(1, "a bytearray")?;
                let m = self.peek()?;
                if matches!(m, 0xc4..=0xc6) {
                    self.byte()?;
                    match self.bin_len_after(m) {
                        Some(len) => {
                            let len = len?;
                            self.bin_body(len).map(Value::ByteArray)
                        }
                        None => Err(malformed("unreachable bin marker")),
                    }
                } else {
                    self.attachment().map(Value::ByteArray)
                }
            }
            V_REF => {
                if fields != 2 && fields != 3 {
                    return Err(malformed(format!(
                        "a reference has {fields} field(s), expected 2 or 3"
                    )));
                }
                let oid = self.u64("the reference oid")?;
                let type_id = self.u32("the reference type id")?;
                let desc = if fields == 3 {
                    Some(Box::new(self.type_desc(depth)?))
                } else {
                    None
                };
                Ok(Value::Ref(ObjRef { oid, type_id, desc }))
            }
            V_RETURNED => {
                want(1, "a returned reference")?;
                Ok(Value::Returned(self.u64("the returned oid")?))
            }
            _ => {
                if fields == 0 {
                    return Err(malformed("a standard value has no type name"));
                }
                let name = self.string("the standard value's type name")?;
                let args = self.items(fields - 1, depth)?;
                Ok(Value::Standard(Box::new((name, args))))
            }
        }
    }

    /// `n` values of a sequence, one level below `depth`.
    fn items(&mut self, n: usize, depth: u32) -> Result<Vec<Value>> {
        let d = self.enter(depth)?;
        // `n` was checked against the bytes left when the array header was read.
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.value(d)?);
        }
        Ok(out)
    }

    fn type_desc(&mut self, depth: u32) -> Result<TypeDesc> {
        self.enter(depth)?;
        if self.array("a type description")? != 5 {
            return Err(malformed(
                "a type description is not [module, qualname, dunders, methods, abcs]",
            ));
        }
        Ok(TypeDesc {
            module: self.string("the type's module")?,
            qualname: self.string("the type's qualname")?,
            dunders: self.strings("the type's dunders")?,
            methods: self.strings("the type's methods")?,
            abcs: self.strings("the type's abcs")?,
        })
    }

    fn attachment(&mut self) -> Result<Bytes> {
        let index = self.u64("an attachment index")?;
        let count = self.attachments.len();
        usize::try_from(index)
            .ok()
            .and_then(|i| self.attachments.get(i))
            .cloned()
            .ok_or(DecodeError::BadAttachment { index, count })
    }

    fn bigint(&mut self) -> Result<Value> {
        let m = self.byte()?;
        let len = match self.bin_len_after(m) {
            Some(len) => len?,
            None => {
                return Err(malformed(format!(
                    "a big integer should be a byte string, found {}",
                    type_name(m)
                )))
            }
        };
        if len > MAX_BIGINT_BYTES {
            return Err(DecodeError::BadInteger(format!(
                "a big integer of {len} bytes is longer than the limit of {MAX_BIGINT_BYTES}"
            )));
        }
        let raw = self.take(len)?;
        if len <= 8 {
            return Err(DecodeError::BadInteger(format!(
                "a big integer of {len} byte(s) fits in 64 bits and must travel as a plain integer"
            )));
        }
        // Shortest form: the top byte is not a redundant sign extension of the one below it.
        let (top, below) = (raw[len - 1], raw[len - 2]);
        if (top == 0x00 && below & 0x80 == 0) || (top == 0xff && below & 0x80 != 0) {
            return Err(DecodeError::BadInteger(
                "a big integer is not in its shortest form".into(),
            ));
        }
        Ok(Value::BigInt(raw.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader<'a>(body: &'a Bytes, max_depth: u32) -> Reader<'a> {
        Reader {
            buf: &body[..],
            pos: 0,
            body,
            attachments: &[],
            max_depth,
        }
    }

    #[test]
    fn skip_value_finds_the_end_of_each_value() {
        // nil; [1, [2, 3], {}]; {"a": [ ]}; bin8 of 2; ext fixext1; then a trailing 0x07.
        let body = Bytes::from_static(&[
            0xc0, 0x93, 0x01, 0x92, 0x02, 0x03, 0x80, 0x81, 0xa1, b'a', 0x90, 0xc4, 0x02, 9, 9,
            0xd4, 1, 2, 0x07,
        ]);
        let mut r = reader(&body, 8);
        assert_eq!(r.skip_value(8).unwrap(), &[0xc0]);
        assert_eq!(
            r.skip_value(8).unwrap(),
            &[0x93, 0x01, 0x92, 0x02, 0x03, 0x80]
        );
        assert_eq!(r.skip_value(8).unwrap(), &[0x81, 0xa1, b'a', 0x90]);
        assert_eq!(r.skip_value(8).unwrap(), &[0xc4, 0x02, 9, 9]);
        assert_eq!(r.skip_value(8).unwrap(), &[0xd4, 1, 2]);
        assert_eq!(r.remaining(), 1);
    }

    #[test]
    fn skip_value_bounds_depth_and_length() {
        let deep = Bytes::from_static(&[0x91, 0x91, 0x91, 0xc0]);
        assert_eq!(
            reader(&deep, 8).skip_value(2),
            Err(DecodeError::TooDeep { max: 2 })
        );
        assert!(reader(&deep, 8).skip_value(3).is_ok());
        let huge = Bytes::from_static(&[0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0]);
        assert_eq!(reader(&huge, 8).skip_value(8), Err(DecodeError::Truncated));
        let reserved = Bytes::from_static(&[0x91, 0xc1]);
        assert!(matches!(
            reader(&reserved, 8).skip_value(8),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn integers_of_every_width() {
        let body = Bytes::from_static(&[
            0x05, 0xcc, 0xff, 0xcd, 0x01, 0x00, 0xce, 0, 1, 0, 0, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0,
            0xd0, 0x05, 0xd0, 0xff,
        ]);
        let mut r = reader(&body, 8);
        assert_eq!(r.u64("x"), Ok(5));
        assert_eq!(r.u64("x"), Ok(255));
        assert_eq!(r.u64("x"), Ok(256));
        assert_eq!(r.u64("x"), Ok(65536));
        assert_eq!(r.u64("x"), Ok(1 << 32));
        assert_eq!(r.u64("x"), Ok(5));
        assert!(matches!(r.u64("x"), Err(DecodeError::BadInteger(_))));
    }
}
