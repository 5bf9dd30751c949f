//! The codec: messages to msgpack frames and back, with every limit enforced while decoding.
//!
//! TODO(helper): implement per the encoding in docs/protocol.md.

use bytes::Bytes;

use crate::limits::Limits;
use crate::message::{Frame, Message};

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
    /// A tag (op, value kind, error kind, operator) is not one this version knows.
    UnknownTag {
        /// What the tag was for, e.g. `"value"`, `"op"`.
        what: &'static str,
        /// The tag read.
        tag: u64,
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
        write!(f, "{self:?}")
    }
}

impl std::error::Error for DecodeError {}

/// Encode a message into a frame. Bytes-like values longer than [`crate::INLINE_BYTES_MAX`]
/// become attachments that share the value's buffer (no copy).
pub fn encode(msg: &Message) -> Frame {
    let mut body = Vec::new();
    let mut attachments = Vec::new();
    encode_into(msg, &mut body, &mut attachments);
    Frame { body: Bytes::from(body), attachments }
}

/// Encode a message, appending its body to `body` and its attachments to `attachments`.
pub fn encode_into(_msg: &Message, _body: &mut Vec<u8>, _attachments: &mut Vec<Bytes>) {
    todo!()
}

/// Decode one frame, enforcing `limits` (frame size, nesting depth) before allocating.
pub fn decode(_frame: &Frame, _limits: &Limits) -> Result<Message, DecodeError> {
    todo!()
}
