//! The decode budget: what decoding one message may cost in memory, and what each decoded part
//! is charged.
//!
//! A message may cost at most [`decode_budget`]`(frame bytes)`: [`DECODE_BUDGET_FACTOR`] times
//! the bytes that arrived (body plus attachments), and never less than [`DECODE_BUDGET_FLOOR`].
//! The decoder charges each part *before* it allocates it, so a message over budget is refused
//! having cost at most the budget. Costs cover both lives of a value: the Rust [`Value`] tree the
//! decoder builds, and the objects a Python binding makes from it while that tree is still alive
//! (CPython 3.11+, 64-bit). Each charge is an estimate that rounds up, so the real peak stays
//! below the budget; `tests/decoded_memory.rs` measures the Rust side.
//!
//! [`Value`]: crate::Value
//! [`decode_budget`]: crate::decode_budget
//! [`DECODE_BUDGET_FACTOR`]: crate::DECODE_BUDGET_FACTOR
//! [`DECODE_BUDGET_FLOOR`]: crate::DECODE_BUDGET_FLOOR

use crate::codec::DecodeError;
use crate::limits::decode_budget;
use crate::message::Frame;
use crate::value::{TypeDesc, Value};

/// One `Value` inside a container's vector (charged when the vector is allocated).
pub(super) const VALUE: u64 = std::mem::size_of::<Value>() as u64;
/// One `String` inside a vector of names (its bytes are charged separately).
pub(super) const STRING: u64 = std::mem::size_of::<String>() as u64;
/// The boxed type description of a `Ref` that carries one.
pub(super) const TYPE_DESC: u64 = std::mem::size_of::<TypeDesc>() as u64;
/// One `(oid, count)` pair of a `Release`.
pub(super) const RELEASE_PAIR: u64 = 16;

/// What the Python side allocates per value, besides what the value itself is charged: a
/// pointer in the enclosing container and one in the vector boxing collects items in first.
pub(super) const PY_SLOT: u64 = 16;
/// An `int` object outside CPython's cache of small ints (-5..=256).
pub(super) const PY_INT: u64 = 32;
/// A `float`.
pub(super) const PY_FLOAT: u64 = 24;
/// A `complex`.
pub(super) const PY_COMPLEX: u64 = 32;
/// A `str` object's header; its characters cost one byte each when the text is ASCII, else at
/// most four (CPython stores every character of a string at the width of its widest one).
pub(super) const PY_STR: u64 = 64;
/// A `bytes` object's header; its contents are copied in (one byte per byte).
pub(super) const PY_BYTES: u64 = 40;
/// A `bytearray` object with its separate buffer's header.
pub(super) const PY_BYTEARRAY: u64 = 64;
/// A big `int` (the header; its digits and the `bytes` it is built from are charged per byte).
pub(super) const PY_BIGINT: u64 = 64;
/// A `tuple` object's header (GC header included; items are charged as slots).
pub(super) const PY_TUPLE: u64 = 56;
/// A `list` object with its separate item array's header.
pub(super) const PY_LIST: u64 = 72;
/// A `set` or `frozenset` object (its small table included).
pub(super) const PY_SET: u64 = 216;
/// Each item of a set: a 16-byte table entry, the table at most one third full after a resize.
pub(super) const PY_SET_ITEM: u64 = 48;
/// A `dict` object.
pub(super) const PY_DICT: u64 = 64;
/// Each pair of a dict: its entry and index slot, with the table's growth room.
pub(super) const PY_DICT_PAIR: u64 = 64;
/// A `slice` object.
pub(super) const PY_SLICE: u64 = 56;
/// A proxy for a reference: the proxy object, its weak reference and its import-table entry.
pub(super) const PY_REF: u64 = 160;
/// The proxy class a type description may lead to (built once per type per connection).
pub(super) const PY_CLASS: u64 = 1024;

/// Each byte of a `Hello`, which serde decodes: a one-byte empty string becomes a 24-byte
/// `String` in a vector that serde grows by doubling (old and new buffers held at once).
pub(super) const HELLO_PER_BYTE: u64 = 96;

/// The most a byte of body can cost: what the densest encodings (an empty set, `92 0e`; a
/// reference with an empty type description, ten bytes) are charged per byte, rounded up.
/// `tests` below checks that no dense encoding costs more.
pub(super) const MAX_COST_PER_BODY_BYTE: u64 = 160;

/// Whether decoding `frame` could cost more than its budget: its body at the densest, plus each
/// attachment copied once into a Python object.
pub(super) fn may_exceed(frame: &Frame) -> bool {
    let body = (frame.body.len() as u64).saturating_mul(MAX_COST_PER_BODY_BYTE);
    let attachments = frame.attachments.iter().fold(0u64, |sum, a| {
        sum.saturating_add(a.len() as u64 + PY_BYTEARRAY)
    });
    body.saturating_add(attachments) > decode_budget(frame.len())
}

/// What decoding one frame may still spend.
pub(super) struct Budget {
    left: u64,
    frame: u64,
    total: u64,
}

impl Budget {
    /// The budget of a frame of `frame_bytes` (body plus attachments).
    pub(super) fn for_frame(frame_bytes: u64) -> Self {
        let total = decode_budget(frame_bytes);
        Budget {
            left: total,
            frame: frame_bytes,
            total,
        }
    }

    /// Spend `cost` bytes, or refuse the message.
    #[inline]
    pub(super) fn charge(&mut self, cost: u64) -> Result<(), DecodeError> {
        match self.left.checked_sub(cost) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => Err(DecodeError::OverBudget {
                frame: self.frame,
                budget: self.total,
            }),
        }
    }

    /// Spend `n` times `each` bytes (a vector about to be allocated), or refuse the message.
    #[inline]
    pub(super) fn charge_n(&mut self, n: usize, each: u64) -> Result<(), DecodeError> {
        self.charge((n as u64).saturating_mul(each))
    }

    /// How much has been spent so far.
    #[cfg(any(test, fuzzing))]
    pub(super) fn spent(&self) -> u64 {
        self.total - self.left
    }
}

/// What the Python object of int `v` costs beyond its slot: nothing when CPython has it cached.
#[inline]
pub(super) fn int(v: i64) -> u64 {
    if (-5..=256).contains(&v) {
        0
    } else {
        PY_INT
    }
}

/// What a string of UTF-8 bytes `text` costs beyond its slot: its Rust copy and its Python
/// `str`.
#[inline]
pub(super) fn string(text: &[u8]) -> u64 {
    let len = text.len() as u64;
    let py_chars = if text.is_ascii() { len } else { 4 * len };
    PY_STR + len + py_chars
}
