//! Decoding: a byte cursor over a frame's body that checks every length against the bytes left
//! before allocating, bounds nesting by the depth limit, charges everything it builds against
//! the frame's decode budget before building it, lets each attachment back at most one value,
//! and never panics on any input.
//!
//! The msgpack layer (scalars, lengths, skipping) is in `decode/msgpack.rs`, the dry run in
//! `decode/dry.rs`; this file is the protocol's shapes: messages, ops and values.

mod dry;
mod msgpack;
#[cfg(test)]
mod tests;

use bytes::Bytes;

use super::budget::{self, Budget};
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
    /// Which attachments a value already uses (allocated at the first use).
    used: Vec<bool>,
    max_depth: u32,
    budget: Budget,
    /// A dry run: every check and charge of a real decode, but nothing kept (containers stay
    /// empty, strings unallocated), so refusing an over-budget frame costs no memory.
    dry: bool,
}

/// Decode the one message of `frame`. The caller has checked the body length.
///
/// A frame whose body could cost more than its budget (a large body, see
/// [`budget::may_exceed`]) is first decoded dry: every check and charge but UTF-8 validation,
/// nothing kept, so a frame over budget (or malformed) is refused before anything is allocated.
/// The real decode then makes the same charges, so it never goes over budget half way.
pub(super) fn message(frame: &Frame, limits: &Limits) -> Result<Message> {
    #[cfg(fuzzing)]
    dry::check(frame, limits);
    if budget::may_exceed(frame) {
        Reader::new(frame, limits, true).run()?;
    }
    Reader::new(frame, limits, false).run()
}

/// What a dry and a real decode of `frame` spend of its budget.
#[cfg(test)]
fn spent(frame: &Frame) -> Result<(u64, u64)> {
    let limits = Limits::default();
    let mut dry = Reader::new(frame, &limits, true);
    dry.run()?;
    let mut real = Reader::new(frame, &limits, false);
    real.run()?;
    Ok((dry.budget.spent(), real.budget.spent()))
}

impl<'a> Reader<'a> {
    /// A reader of `frame`'s one message; a dry run if `dry`.
    fn new(frame: &'a Frame, limits: &Limits, dry: bool) -> Self {
        Reader {
            buf: &frame.body[..],
            pos: 0,
            body: &frame.body,
            attachments: &frame.attachments,
            used: Vec::new(),
            max_depth: limits.max_depth,
            budget: Budget::for_frame(frame.len()),
            dry,
        }
    }

    /// Decode the message, which must take the whole body.
    fn run(&mut self) -> Result<Message> {
        // Returned as is (not through `?`) so the message is built straight in the return slot.
        let result = self.message();
        let extra = self.remaining();
        if matches!(result, Ok(_) | Err(DecodeError::UnknownOp { .. })) && extra != 0 {
            return Err(DecodeError::TrailingBytes { extra });
        }
        result
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
                let op = match self.op()? {
                    Ok(op) => op,
                    Err(code) => return Err(DecodeError::UnknownOp { seq, code }),
                };
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
                self.budget.charge_n(n, budget::RELEASE_PAIR)?;
                let mut items = self.vec(n);
                for _ in 0..n {
                    if self.array("a released reference")? != 2 {
                        return Err(malformed("a released reference is not [oid, count]"));
                    }
                    let oid: Oid = self.u64("oid")?;
                    let count = self.u64("count")?;
                    self.keep(&mut items, (oid, count));
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
        // serde builds it: charged per byte, as much as its densest form (empty strings) costs.
        // (A dry run decodes it too, to find the same errors; it is charged, so that is cheap.)
        self.budget.charge_n(raw.len(), budget::HELLO_PER_BYTE)?;
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

    /// An op, or the code of one this version does not know (its operands passed over, each
    /// a well-formed value within the depth limit, and charged a byte per byte though nothing
    /// is kept), so the request can still be answered.
    fn op(&mut self) -> Result<std::result::Result<Op, u64>> {
        let n = self.array("an op")?;
        if n == 0 {
            return Err(malformed("an op is an empty array"));
        }
        let code = self.code("the op code")?;
        let operands = match code {
            c if c > u64::from(OP_PICKLE_BUFFERS) => {
                for _ in 1..n {
                    let skipped = self.skip_value(self.max_depth)?.len();
                    self.budget.charge_n(skipped, 1)?;
                }
                return Ok(Err(c));
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
        Ok(Ok(match code as u8 {
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
            OP_PICKLE_BUFFERS => Op::PickleBuffers,
            OP_AWAIT => Op::Await,
            OP_AITER => Op::AIter,
            OP_ANEXT => Op::ANext,
            OP_AENTER => Op::AEnter,
            _ => {
                let (t, v, tb) = self.exc_triple()?;
                Op::AExit(t, v, tb)
            }
        }))
    }

    fn exc_triple(&mut self) -> Result<(Value, Value, Value)> {
        Ok((self.value(0)?, self.value(0)?, self.value(0)?))
    }

    /// `[positional...] {keyword: value}`, one nesting level.
    fn args(&mut self) -> Result<Args> {
        let positional = self.values(0, "the positional arguments")?;
        let depth = self.enter(0)?;
        let n = self.map("the keyword arguments")?;
        self.budget
            .charge_n(n, budget::STRING + budget::VALUE + budget::PY_DICT_PAIR)?;
        let mut keywords = self.vec(n);
        for _ in 0..n {
            let name = self.string("a keyword argument name")?;
            let value = self.value(depth)?;
            self.keep(&mut keywords, (name, value));
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
        self.sequence(n, depth)
    }

    /// `n` values at `depth` (the array header read and checked against the bytes left).
    fn sequence(&mut self, n: usize, depth: u32) -> Result<Vec<Value>> {
        self.budget.charge_n(n, budget::VALUE)?;
        if self.dry {
            for _ in 0..n {
                if !self.dry_scalar()? {
                    self.value(depth)?;
                }
            }
            return Ok(Vec::new());
        }
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
        // Every value takes a slot in whatever holds it; what else it costs is charged below.
        self.budget.charge(budget::PY_SLOT)?;
        match m {
            0x00..=0x7f => Ok(Value::Int(i64::from(m))),
            0xe0..=0xff => {
                let v = i64::from(m as i8);
                self.int_object(v)?;
                Ok(Value::Int(v))
            }
            0xc0 => Ok(Value::None),
            0xc2 => Ok(Value::Bool(false)),
            0xc3 => Ok(Value::Bool(true)),
            0xcc..=0xd3 => {
                let v = match self.int_after(m) {
                    Some(v) => v?,
                    None => return Err(malformed("unreachable integer marker")),
                };
                let v = i64::try_from(v).map_err(|_| {
                    DecodeError::BadInteger(format!(
                        "{v} does not fit in 64 bits; big integers are tagged"
                    ))
                })?;
                self.int_object(v)?;
                Ok(Value::Int(v))
            }
            0xca | 0xcb => match self.float_after(m) {
                Some(v) => {
                    self.budget.charge(budget::PY_FLOAT)?;
                    v.map(Value::Float)
                }
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
                    let bytes = self.bin_body(len)?;
                    self.budget.charge_n(len, 1)?;
                    self.budget.charge(budget::PY_BYTES)?;
                    Ok(Value::Bytes(bytes))
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

    /// Charge the Python object of int `v`.
    #[inline]
    fn int_object(&mut self, v: i64) -> Result<()> {
        self.budget.charge(budget::int(v))
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
                self.budget.charge(budget::PY_COMPLEX)?;
                let re = self.f64("the real part")?;
                let im = self.f64("the imaginary part")?;
                Ok(Value::Complex(re, im))
            }
            V_BYTES => {
                want(1, "an attached bytes")?;
                self.attachment(budget::PY_BYTES).map(Value::Bytes)
            }
            V_ELLIPSIS => want(0, "Ellipsis").map(|_| Value::Ellipsis),
            V_NOT_IMPLEMENTED => want(0, "NotImplemented").map(|_| Value::NotImplemented),
            V_SLICE => {
                want(3, "a slice")?;
                let d = self.enter(depth)?;
                self.budget.charge(3 * budget::VALUE + budget::PY_SLICE)?;
                let a = self.value(d)?;
                let b = self.value(d)?;
                let c = self.value(d)?;
                if self.dry {
                    return Ok(Value::None);
                }
                Ok(Value::Slice(Box::new([a, b, c])))
            }
            V_TUPLE => {
                self.budget.charge(budget::PY_TUPLE)?;
                self.items(fields, depth).map(Value::Tuple)
            }
            V_FROZENSET => {
                self.set_object(fields)?;
                self.items(fields, depth).map(Value::FrozenSet)
            }
            V_LIST => {
                self.budget.charge(budget::PY_LIST)?;
                self.items(fields, depth).map(Value::List)
            }
            V_SET => {
                self.set_object(fields)?;
                self.items(fields, depth).map(Value::Set)
            }
            V_DICT => {
                if fields % 2 != 0 {
                    return Err(malformed(format!(
                        "a dict has an odd number ({fields}) of keys and values"
                    )));
                }
                let d = self.enter(depth)?;
                self.budget.charge(budget::PY_DICT)?;
                self.budget
                    .charge_n(fields / 2, 2 * budget::VALUE + budget::PY_DICT_PAIR)?;
                let mut pairs = self.vec(fields / 2);
                for _ in 0..fields / 2 {
                    let k = self.value(d)?;
                    let v = self.value(d)?;
                    self.keep(&mut pairs, (k, v));
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
                            let bytes = self.bin_body(len)?;
                            self.budget.charge_n(len, 1)?;
                            self.budget.charge(budget::PY_BYTEARRAY)?;
                            Ok(Value::ByteArray(bytes))
                        }
                        None => Err(malformed("unreachable bin marker")),
                    }
                } else {
                    self.attachment(budget::PY_BYTEARRAY).map(Value::ByteArray)
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
                self.budget.charge(budget::PY_REF)?;
                let desc = if fields == 3 {
                    self.budget.charge(budget::TYPE_DESC + budget::PY_CLASS)?;
                    let desc = self.type_desc(depth)?;
                    (!self.dry).then(|| Box::new(desc))
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
                // The box, its name, and the Python object rebuilt from it (a small instance).
                self.budget
                    .charge(budget::VALUE + budget::STRING + budget::PY_REF)?;
                let name = self.string("the standard value's type name")?;
                let args = self.items(fields - 1, depth)?;
                Ok(Value::Standard(Box::new((name, args))))
            }
        }
    }

    /// Charge a set or frozenset of `n` items.
    fn set_object(&mut self, n: usize) -> Result<()> {
        self.budget.charge(budget::PY_SET)?;
        self.budget.charge_n(n, budget::PY_SET_ITEM)
    }

    /// `n` values of a sequence, one level below `depth`.
    fn items(&mut self, n: usize, depth: u32) -> Result<Vec<Value>> {
        let d = self.enter(depth)?;
        // `n` was checked against the bytes left when the array header was read.
        self.sequence(n, d)
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

    /// The attachment a value refers to, each used at most once, charged as a Python object of
    /// header `py_header` holding a copy of its bytes.
    fn attachment(&mut self, py_header: u64) -> Result<Bytes> {
        let index = self.u64("an attachment index")?;
        let count = self.attachments.len();
        let i = match usize::try_from(index) {
            Ok(i) if i < count => i,
            _ => return Err(DecodeError::BadAttachment { index, count }),
        };
        if self.used.is_empty() {
            self.used = vec![false; count];
        }
        if std::mem::replace(&mut self.used[i], true) {
            return Err(DecodeError::AttachmentReused { index });
        }
        let bytes = &self.attachments[i];
        self.budget.charge_n(bytes.len(), 1)?;
        self.budget.charge(py_header)?;
        Ok(if self.dry {
            Bytes::new()
        } else {
            bytes.clone()
        })
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
        // The Rust copy, the `bytes` Python builds the int from, and the int's own digits.
        self.budget.charge_n(len, 3)?;
        self.budget.charge(budget::PY_BIGINT)?;
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
        Ok(Value::BigInt(if self.dry {
            Vec::new()
        } else {
            raw.to_vec()
        }))
    }
}
