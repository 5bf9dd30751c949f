//! Limits a receiver enforces on what a peer sends. Each side announces its own in Hello; a
//! sender keeps within the peer's. Breaking one is a protocol error that closes that connection.

/// What one side accepts from its peer. Defaults are generous for trusted peers and still bound
/// memory and recursion for hostile ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Largest msgpack body of one frame, in bytes. Checked against the length header before the
    /// body is allocated.
    pub max_frame: u32,
    /// Largest message, body plus attachments, in bytes. Attachments carry bulk bytes with
    /// 64-bit lengths, so this may exceed 4 GiB.
    pub max_message: u64,
    /// Deepest nesting of containers inside one value. Keeps decoding and boxing off the stack's
    /// edge.
    pub max_depth: u32,
    /// Most objects one side holds exported for the peer at once.
    pub max_objects: u64,
    /// Most requests from the peer being served at once.
    pub max_in_flight: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame: 64 << 20,
            max_message: 1 << 40,
            max_depth: 128,
            max_objects: 1 << 22,
            max_in_flight: 1 << 14,
        }
    }
}

/// Bytes-like values shorter than this travel inline in the msgpack body; longer ones travel as
/// attachments after it, written straight from the sender's buffer.
pub const INLINE_BYTES_MAX: usize = 64 << 10;

/// Decoding a message may cost at most this many times the bytes of its frame (body plus
/// attachments) in memory: the Rust values the decoder builds and the objects a binding makes
/// from them, together. A message that would cost more is refused with
/// [`crate::DecodeError::OverBudget`]. Floats, ints of 65536 and more, strings of five or more
/// characters and bytes of three or more cost less than this per byte, so messages made of them
/// are never refused, whatever their size.
pub const DECODE_BUDGET_FACTOR: u64 = 24;

/// The budget of a small frame: every message may cost this much, whatever its size, so a
/// frame of up to 200 KiB is never refused whatever it holds (the densest encodings cost at most
/// 160 bytes per byte of body).
pub const DECODE_BUDGET_FLOOR: u64 = 32 << 20;

/// What decoding a frame of `frame_bytes` (body plus attachments) may cost in memory:
/// `max(DECODE_BUDGET_FACTOR x frame_bytes, DECODE_BUDGET_FLOOR)`.
pub fn decode_budget(frame_bytes: u64) -> u64 {
    frame_bytes
        .saturating_mul(DECODE_BUDGET_FACTOR)
        .max(DECODE_BUDGET_FLOOR)
}
