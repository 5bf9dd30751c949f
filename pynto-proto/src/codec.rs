//! The codec: messages to msgpack frames and back, with every limit enforced while decoding.
//!
//! The byte layout is frozen; `docs/protocol.md` describes it in prose and the golden-byte tests
//! in `tests/golden.rs` pin it down. In short: a message is a msgpack array whose first element is
//! the message code; values use native msgpack where that is unambiguous and a `[tag, ...]` array
//! otherwise; bulk bytes travel as attachments after the body, referenced by index.
//!
//! Encoding writes straight into the caller's buffer. Decoding walks a byte cursor over the
//! frame's body, checks every declared length against the bytes that remain before allocating,
//! bounds recursion by [`Limits::max_depth`], charges what it builds against a memory budget
//! proportional to the frame (`budget.rs`), and hands out inline byte strings as zero-copy
//! slices of the body.

mod budget;
mod decode;
mod encode;

use bytes::Bytes;

use crate::ids::Seq;
use crate::limits::Limits;
use crate::message::{Frame, Message};

/// The longest big integer (in bytes of two's complement) the codec accepts: 1 MiB, about
/// 2.5 million decimal digits.
pub const MAX_BIGINT_BYTES: usize = 1 << 20;

/// Wire codes of messages, values and ops. Private: the numbers are documented in
/// `docs/protocol.md` and frozen by the golden tests.
pub(crate) mod code {
    // Messages.
    pub const HELLO: u8 = 0;
    pub const REQUEST: u8 = 1;
    pub const REPLY: u8 = 2;
    pub const FAILURE: u8 = 3;
    pub const RELEASE: u8 = 4;
    pub const CANCEL: u8 = 5;
    pub const FINISH: u8 = 6;
    pub const GOODBYE: u8 = 7;

    // Value tags (declaration order of `Value`). Tags 0, 1, 2, 4 and 6 never appear in a tagged
    // array: those variants are native msgpack.
    pub const V_NONE: u8 = 0;
    pub const V_BOOL: u8 = 1;
    pub const V_INT: u8 = 2;
    pub const V_BIGINT: u8 = 3;
    pub const V_FLOAT: u8 = 4;
    pub const V_COMPLEX: u8 = 5;
    pub const V_STR: u8 = 6;
    pub const V_BYTES: u8 = 7;
    pub const V_ELLIPSIS: u8 = 8;
    pub const V_NOT_IMPLEMENTED: u8 = 9;
    pub const V_SLICE: u8 = 10;
    pub const V_TUPLE: u8 = 11;
    pub const V_FROZENSET: u8 = 12;
    pub const V_LIST: u8 = 13;
    pub const V_SET: u8 = 14;
    pub const V_DICT: u8 = 15;
    pub const V_BYTEARRAY: u8 = 16;
    pub const V_REF: u8 = 17;
    pub const V_RETURNED: u8 = 18;
    pub const V_STANDARD: u8 = 19;

    // Op codes (declaration order of `Op`).
    pub const OP_GET_ROOT: u8 = 0;
    pub const OP_PING: u8 = 1;
    pub const OP_GET_ATTR: u8 = 2;
    pub const OP_SET_ATTR: u8 = 3;
    pub const OP_DEL_ATTR: u8 = 4;
    pub const OP_CALL: u8 = 5;
    pub const OP_CALL_METHOD: u8 = 6;
    pub const OP_REPR: u8 = 7;
    pub const OP_STR: u8 = 8;
    pub const OP_FORMAT: u8 = 9;
    pub const OP_HASH: u8 = 10;
    pub const OP_DIR: u8 = 11;
    pub const OP_BOOL: u8 = 12;
    pub const OP_LEN: u8 = 13;
    pub const OP_ITER: u8 = 14;
    pub const OP_NEXT: u8 = 15;
    pub const OP_GET_ITEM: u8 = 16;
    pub const OP_SET_ITEM: u8 = 17;
    pub const OP_DEL_ITEM: u8 = 18;
    pub const OP_CONTAINS: u8 = 19;
    pub const OP_COMPARE: u8 = 20;
    pub const OP_BINARY: u8 = 21;
    pub const OP_UNARY: u8 = 22;
    pub const OP_ENTER: u8 = 23;
    pub const OP_EXIT: u8 = 24;
    pub const OP_IS_INSTANCE: u8 = 25;
    pub const OP_PICKLE: u8 = 26;
    pub const OP_AWAIT: u8 = 27;
    pub const OP_AITER: u8 = 28;
    pub const OP_ANEXT: u8 = 29;
    pub const OP_AENTER: u8 = 30;
    pub const OP_AEXIT: u8 = 31;
    pub const OP_PICKLE_BUFFERS: u8 = 32;
}

/// Why a frame could not be decoded. Every malformed input maps to one of these; decoding never
/// panics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The body ended in the middle of a value.
    Truncated,
    /// Bytes remain after the message.
    TrailingBytes {
        /// How many bytes were left over.
        extra: usize,
    },
    /// The message code is not one this version knows.
    UnknownMessage(u64),
    /// A tag (value kind, error kind, operator) is not one this version knows.
    UnknownTag {
        /// What the tag was for, e.g. `"value"`, `"error kind"`.
        what: &'static str,
        /// The tag read.
        tag: u64,
    },
    /// A well-formed request for an op this version does not know. Not a broken stream: the
    /// receiver answers request `seq` with `Failure(Unimplemented)` and goes on reading. (No
    /// `Op` stands for it, so such a request cannot be encoded.)
    UnknownOp {
        /// The request's sequence number, to answer.
        seq: Seq,
        /// The op code read.
        code: u64,
    },
    /// Containers nest deeper than the limit.
    TooDeep {
        /// The limit.
        max: u32,
    },
    /// A string is not valid UTF-8.
    InvalidUtf8,
    /// An integer is larger than the codec accepts (a msgpack uint above `i64::MAX`, or a big
    /// integer longer than its limit, or in a non-canonical form).
    BadInteger(String),
    /// An attachment index points past the frame's attachments.
    BadAttachment {
        /// The index read.
        index: u64,
        /// How many attachments the frame has.
        count: usize,
    },
    /// An attachment index is used a second time: each attachment backs at most one value, so
    /// what a message decodes to never outgrows what arrived.
    AttachmentReused {
        /// The index read.
        index: u64,
    },
    /// Decoding the message would cost more memory than its budget
    /// ([`crate::decode_budget`] of the frame's bytes).
    OverBudget {
        /// The frame's bytes, body plus attachments.
        frame: u64,
        /// The budget those bytes allow, in bytes.
        budget: u64,
    },
    /// The body is larger than the limit.
    FrameTooLarge {
        /// The body length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// Anything else that is not the shape the protocol requires: a wrong msgpack type, a wrong
    /// number of fields.
    Malformed(String),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("the frame ended in the middle of a message"),
            DecodeError::TrailingBytes { extra } => {
                write!(f, "{extra} unexpected byte(s) after the end of the message")
            }
            DecodeError::UnknownMessage(code) => {
                write!(f, "unknown message code {code} (a newer protocol version?)")
            }
            DecodeError::UnknownTag { what, tag } => write!(f, "unknown {what} code {tag}"),
            DecodeError::UnknownOp { seq, code } => {
                write!(f, "request {seq} asks for unknown op code {code}")
            }
            DecodeError::TooDeep { max } => {
                write!(f, "values nest deeper than the limit of {max} levels")
            }
            DecodeError::InvalidUtf8 => f.write_str("a string is not valid UTF-8"),
            DecodeError::BadInteger(why) => write!(f, "bad integer: {why}"),
            DecodeError::BadAttachment { index, count } => write!(
                f,
                "attachment index {index} is out of range: the frame has {count} attachment(s)"
            ),
            DecodeError::AttachmentReused { index } => write!(
                f,
                "attachment {index} is used a second time: each attachment backs at most one value"
            ),
            DecodeError::OverBudget { frame, budget } => write!(
                f,
                "the message would cost more than its decoding budget of {budget} bytes of \
                 memory (a frame of {frame} bytes may cost {} times its size, and at least {} \
                 bytes)",
                crate::limits::DECODE_BUDGET_FACTOR,
                crate::limits::DECODE_BUDGET_FLOOR
            ),
            DecodeError::FrameTooLarge { len, max } => {
                write!(
                    f,
                    "frame of {len} bytes is larger than the limit of {max} bytes"
                )
            }
            DecodeError::Malformed(why) => write!(f, "malformed message: {why}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Encode a message into a frame. Bytes-like values of [`crate::INLINE_BYTES_MAX`] bytes or more
/// become attachments that share the value's buffer (no copy).
///
/// # Panics
///
/// Panics if a single string, or the item count of a single container, exceeds `u32::MAX`
/// (msgpack cannot express it; no peer would accept such a frame anyway).
pub fn encode(msg: &Message) -> Frame {
    let mut body = Vec::with_capacity(64);
    let mut attachments = Vec::new();
    encode_into(msg, &mut body, &mut attachments);
    Frame {
        body: Bytes::from(body),
        attachments,
    }
}

/// Encode a message, appending its body to `body` and its attachments to `attachments`.
///
/// Attachment indices in the body count from the start of `attachments` as passed in, so pass an
/// empty vector unless the caller knows what it is doing.
///
/// # Panics
///
/// As [`encode`].
pub fn encode_into(msg: &Message, body: &mut Vec<u8>, attachments: &mut Vec<Bytes>) {
    encode::message(msg, body, attachments);
}

/// Decode one frame, enforcing `limits` (frame size, nesting depth) and the decode budget
/// ([`crate::decode_budget`] of the frame's bytes) before allocating.
///
/// The body must hold exactly one message. Inline byte strings in the result are zero-copy
/// slices of `frame.body`; attachment-borne ones are clones of `frame.attachments` entries, each
/// attachment used by at most one value.
pub fn decode(frame: &Frame, limits: &Limits) -> Result<Message, DecodeError> {
    let len = frame.body.len() as u64;
    if len > u64::from(limits.max_frame) {
        return Err(DecodeError::FrameTooLarge {
            len,
            max: u64::from(limits.max_frame),
        });
    }
    decode::message(frame, limits)
}
