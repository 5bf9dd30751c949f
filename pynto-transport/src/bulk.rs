//! Bulk attachments: frames whose attachments cross in chunks, so that other frames can go
//! between them, and received values handed on without doubling their memory.
//!
//! A frame carrying large attachments is sent as one *head* record and then *chunk* records.
//! The runtime lets go of the connection's writer between records, so a small call's frame
//! waits for at most one chunk, not for a whole gigabyte (DESIGN §2). On the wire, beside the
//! plain frame of `framing.rs`:
//!
//! ```text
//! head:   u32 LE body length | u32 LE (HEAD_FLAG | attachment count) | body | count x u64 LE length
//! chunk:  u32 LE chunk length | u32 LE CHUNK_TAG | chunk bytes
//! ```
//!
//! Chunks carry the attachments' bytes in order; a chunk never spans two attachments. At most
//! one chunked frame is in flight in each direction (the sender sends them one after another);
//! plain frames may come between its chunks, and the receiver hands those on at once. A writer
//! sends chunked frames only to a peer whose Hello announced [`FEATURE`].
//!
//! The receiver checks a head like a plain frame's header (body, attachment count, total
//! against `max_message`), refuses a chunk that is too long, overruns its attachment, or comes
//! with no head before it, and grows each attachment's buffer only as its bytes arrive.

use std::io::{self, Read};

use bytes::Bytes;
use pynto_proto::Frame;

use crate::framing::{advise_huge_pages, PREALLOC_MAX};
use crate::TransportError;

/// The Hello feature a peer announces when it reads chunked frames.
pub const FEATURE: &str = "chunked-attachments";

/// Set in a header's count word: the frame's attachments follow in chunk records.
pub(crate) const HEAD_FLAG: u32 = 1 << 31;

/// A header's count word for a chunk record.
pub(crate) const CHUNK_TAG: u32 = u32::MAX;

/// The chunk size writers use: small enough that a frame waiting behind one chunk is delayed
/// by about a millisecond, large enough that the per-record cost vanishes beside the copy.
pub const CHUNK: usize = 1 << 20;

/// The longest chunk a reader accepts.
pub const MAX_CHUNK: u32 = 16 << 20;

/// Frames whose attachments total at least this many bytes are worth sending in chunks.
pub const CHUNKED_MIN: u64 = 2 * CHUNK as u64;

/// What a header's count word announces.
pub(crate) enum Record {
    /// A plain frame with this many attachments, which follow the body.
    Frame(u32),
    /// The head of a chunked frame with this many attachments.
    Head(u32),
    /// A chunk of the chunked frame in flight.
    Chunk,
}

impl Record {
    pub(crate) fn of(word: u32) -> Record {
        if word == CHUNK_TAG {
            Record::Chunk
        } else if word & HEAD_FLAG != 0 {
            Record::Head(word & !HEAD_FLAG)
        } else {
            Record::Frame(word)
        }
    }
}

/// Where a frame sent in parts has got to: the head first, then each attachment's bytes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Parts {
    head_sent: bool,
    attachment: usize,
    offset: usize,
}

impl Parts {
    /// Whether every record of `frame` has been sent.
    pub fn done(&self, frame: &Frame) -> bool {
        self.head_sent && self.attachment >= frame.attachments.len()
    }

    /// The next record of `frame`: its header (written into `header`) and payload pieces, and
    /// where the parts stand once it is written. `None` when every record has been sent.
    pub(crate) fn next<'f>(
        &self,
        frame: &'f Frame,
        header: &'f mut Vec<u8>,
    ) -> Option<(Vec<&'f [u8]>, Parts)> {
        header.clear();
        if !self.head_sent {
            header.extend_from_slice(&(frame.body.len() as u32).to_le_bytes());
            header.extend_from_slice(&(HEAD_FLAG | frame.attachments.len() as u32).to_le_bytes());
            for a in &frame.attachments {
                header.extend_from_slice(&(a.len() as u64).to_le_bytes());
            }
            let (fixed, lens) = header.split_at(8);
            let after = Parts {
                head_sent: true,
                ..Parts::default()
            }
            .skip_empty(frame);
            return Some((vec![fixed, &frame.body[..], lens], after));
        }
        let attachment = frame.attachments.get(self.attachment)?;
        let len = (attachment.len() - self.offset).min(CHUNK);
        header.extend_from_slice(&(len as u32).to_le_bytes());
        header.extend_from_slice(&CHUNK_TAG.to_le_bytes());
        let piece = &attachment[self.offset..self.offset + len];
        let after = Parts {
            offset: self.offset + len,
            ..self.clone()
        }
        .skip_empty(frame);
        Some((vec![&header[..], piece], after))
    }

    /// Move past finished (and empty) attachments.
    fn skip_empty(mut self, frame: &Frame) -> Parts {
        while let Some(a) = frame.attachments.get(self.attachment) {
            if self.offset < a.len() {
                break;
            }
            self.attachment += 1;
            self.offset = 0;
        }
        self
    }
}

/// A chunked frame being received: its body and announced lengths, and the attachments so far.
pub(crate) struct Partial {
    body: Bytes,
    lengths: Vec<u64>,
    done: Vec<Bytes>,
    /// The attachment being filled: zeroed room (calloc'd, so untouched pages cost nothing),
    /// of which the first `filled` bytes have arrived.
    filling: Vec<u8>,
    filled: usize,
}

impl Partial {
    pub(crate) fn new(body: Bytes, lengths: Vec<u64>) -> Partial {
        let mut partial = Partial {
            done: Vec::with_capacity(lengths.len()),
            body,
            lengths,
            filling: Vec::new(),
            filled: 0,
        };
        partial.finish_empty();
        partial
    }

    /// Whether every attachment has arrived.
    pub(crate) fn is_complete(&self) -> bool {
        self.done.len() == self.lengths.len()
    }

    /// The frame, once complete.
    pub(crate) fn into_frame(self) -> Frame {
        Frame {
            body: self.body,
            attachments: self.done,
        }
    }

    /// Read one chunk of `len` bytes from `from` into the attachment being filled.
    pub(crate) fn read_chunk(
        &mut self,
        from: &mut impl Read,
        len: u32,
    ) -> Result<(), TransportError> {
        let Some(&want) = self.lengths.get(self.done.len()) else {
            return Err(TransportError::Chunks(
                "a chunk came after its frame was complete".into(),
            ));
        };
        if len > MAX_CHUNK {
            return Err(TransportError::Chunks(format!(
                "a chunk of {len} bytes is longer than the limit of {MAX_CHUNK}"
            )));
        }
        let left = want - self.filled as u64;
        if u64::from(len) > left {
            return Err(TransportError::Chunks(format!(
                "a chunk of {len} bytes overruns its attachment, which has {left} bytes left"
            )));
        }
        let len = len as usize;
        let have = self.filled;
        if self.filling.len() - have < len {
            // Room as read_payload makes it: zeroed address space ahead of what arrived, never
            // more than about twice the bytes the peer really sent, whatever it announced.
            if have == 0 {
                // The whole attachment as zeroed address space if the system grants it (pages
                // cost memory only once bytes land in them); else room for the first part.
                self.filling = zeroed(want as usize)
                    .unwrap_or_else(|| vec![0; (want as usize).min(PREALLOC_MAX).max(len)]);
                advise_huge_pages(&mut self.filling);
            } else {
                let grow = (want as usize - have).min(have.max(PREALLOC_MAX)).max(len);
                self.filling.reserve_exact(have + grow - self.filling.len());
                self.filling.resize(have + grow, 0);
            }
        }
        from.read_exact(&mut self.filling[have..have + len])
            .map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => TransportError::Torn,
                _ => TransportError::Io(e),
            })?;
        self.filled += len;
        self.finish_empty();
        Ok(())
    }

    /// Close the attachments that are whole (including empty ones).
    fn finish_empty(&mut self) {
        while let Some(&want) = self.lengths.get(self.done.len()) {
            if (self.filled as u64) < want {
                break;
            }
            let mut whole = std::mem::take(&mut self.filling);
            whole.truncate(self.filled);
            self.filled = 0;
            self.done.push(Bytes::from(whole));
        }
    }
}

/// `len` zeroed bytes straight from the allocator (`calloc`: a large block is fresh zero pages
/// from `mmap`, untouched, so it costs address space, not memory, until bytes land in it), or
/// `None` if the system refuses that much address space (a hostile announced length).
fn zeroed(len: usize) -> Option<Vec<u8>> {
    if len == 0 {
        return Some(Vec::new());
    }
    let layout = std::alloc::Layout::array::<u8>(len).ok()?;
    // SAFETY: the layout has a non-zero size; a non-null result is `len` zeroed bytes owned by
    // the Vec from here on, with the global allocator's layout for `u8`.
    unsafe {
        let ptr = std::alloc::alloc_zeroed(layout);
        (!ptr.is_null()).then(|| Vec::from_raw_parts(ptr, len, len))
    }
}

/// How much of a large value is copied between two releases of the source's pages.
const DRAIN_STEP: usize = 32 << 20;

/// Copy `bytes` into `dst` (of the same length, perhaps uninitialized) and let it go. When
/// `bytes` is the only handle on its buffer, the source's pages are given back to the system as
/// the copy passes them, so a received 1 GiB value costs the value and about [`DRAIN_STEP`]
/// more at the peak instead of twice the value. Bindings use it to turn a received attachment
/// into their own object.
pub fn drain_into(bytes: Bytes, dst: &mut [std::mem::MaybeUninit<u8>]) {
    assert_eq!(bytes.len(), dst.len(), "drain_into: lengths differ");
    let release = bytes.is_unique();
    let mut done = 0;
    while done < bytes.len() {
        let step = (bytes.len() - done).min(DRAIN_STEP);
        // SAFETY: both ranges are in bounds (equal lengths, checked above), and a received
        // buffer never overlaps the destination the caller just allocated.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes[done..].as_ptr(),
                dst[done..].as_mut_ptr().cast::<u8>(),
                step,
            );
        }
        done += step;
        if release {
            release_pages(&bytes[..done]);
        }
    }
}

/// Give back the whole pages inside `copied`, whose contents are no longer needed.
fn release_pages(copied: &[u8]) {
    const PAGE: usize = 4096;
    let start = copied.as_ptr() as usize;
    let first = (start + PAGE - 1) & !(PAGE - 1);
    let end = (start + copied.len()) & !(PAGE - 1);
    if end > first {
        // SAFETY: the range lies inside a buffer this thread holds the only handle on and
        // never reads again (it is dropped when `drain_into` returns); MADV_DONTNEED only
        // replaces those pages with zero pages, and the allocator's own bookkeeping lies
        // outside the buffer.
        unsafe {
            libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_DONTNEED);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framing::{StreamReader, StreamWriter};
    use pynto_proto::Limits;

    fn frame(body: &[u8], atts: &[Vec<u8>]) -> Frame {
        Frame {
            body: Bytes::copy_from_slice(body),
            attachments: atts.iter().map(|a| Bytes::copy_from_slice(a)).collect(),
        }
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect()
    }

    /// The bytes of `big` sent in parts, with a plain frame written after every record.
    fn interleaved(big: &Frame, small: &Frame) -> (Vec<u8>, usize) {
        let mut w = StreamWriter::new(Vec::new());
        let mut parts = Parts::default();
        let mut records = 0;
        loop {
            let done = w.send_part(big, &mut parts).unwrap();
            records += 1;
            w.send(small).unwrap();
            if done {
                break;
            }
        }
        (w.into_inner(), records)
    }

    fn as_uninit(v: &mut [u8]) -> &mut [std::mem::MaybeUninit<u8>] {
        // SAFETY: initialized bytes are valid MaybeUninit bytes, and nothing uninitialized is
        // written through the result.
        unsafe { &mut *(v as *mut [u8] as *mut [std::mem::MaybeUninit<u8>]) }
    }

    #[test]
    fn drain_into_copies_exactly_whether_or_not_it_may_release() {
        let data = pattern(3 * DRAIN_STEP + 12_345, 9);
        let unique = Bytes::from(data.clone());
        let mut dst = vec![0u8; data.len()];
        drain_into(unique, as_uninit(&mut dst));
        assert_eq!(dst, data);
        // A shared buffer is copied but left alone: the other handle still reads it.
        let shared = Bytes::from(data.clone());
        let other = shared.clone();
        let mut dst = vec![0u8; data.len()];
        drain_into(shared, as_uninit(&mut dst));
        assert_eq!(dst, data);
        assert_eq!(&other[..], &data[..]);
    }

    #[test]
    fn plain_frames_come_through_between_chunks() {
        let big = frame(
            b"head",
            &[
                pattern(3 * CHUNK + 17, 1),
                Vec::new(),
                pattern(5, 2),
                pattern(CHUNK, 3),
            ],
        );
        let small = frame(b"small", &[b"tiny".to_vec()]);
        let (data, records) = interleaved(&big, &small);
        // The head, four chunks for the first attachment, one for the third, one for the last.
        assert_eq!(records, 1 + 4 + 1 + 1);
        let mut r = StreamReader::new(&data[..]);
        // Every small frame but the last comes before the big one is whole.
        for _ in 0..records - 1 {
            assert_eq!(r.read_frame().unwrap().as_ref(), Some(&small));
        }
        assert_eq!(r.read_frame().unwrap().as_ref(), Some(&big));
        assert_eq!(r.read_frame().unwrap().as_ref(), Some(&small));
        assert!(r.read_frame().unwrap().is_none());
    }

    #[test]
    fn a_frame_of_empty_attachments_is_whole_at_its_head() {
        let big = frame(b"only a head", &[Vec::new(), Vec::new()]);
        let (data, records) = interleaved(&big, &frame(b"s", &[]));
        assert_eq!(records, 1);
        let mut r = StreamReader::new(&data[..]);
        assert_eq!(r.read_frame().unwrap().as_ref(), Some(&big));
    }

    #[test]
    fn a_stream_ending_inside_a_chunked_frame_is_torn() {
        let big = frame(b"b", &[pattern(CHUNK + 1, 4)]);
        let mut w = StreamWriter::new(Vec::new());
        let mut parts = Parts::default();
        w.send_part(&big, &mut parts).unwrap();
        w.send_part(&big, &mut parts).unwrap();
        let data = w.into_inner();
        let mut r = StreamReader::new(&data[..]);
        assert!(matches!(r.read_frame(), Err(TransportError::Torn)));
    }

    fn record(first: u32, word: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = first.to_le_bytes().to_vec();
        v.extend_from_slice(&word.to_le_bytes());
        v.extend_from_slice(payload);
        v
    }

    fn head(body: &[u8], lengths: &[u64]) -> Vec<u8> {
        let mut payload = body.to_vec();
        for len in lengths {
            payload.extend_from_slice(&len.to_le_bytes());
        }
        record(
            body.len() as u32,
            HEAD_FLAG | lengths.len() as u32,
            &payload,
        )
    }

    fn refused(data: &[u8], limits: &Limits) -> TransportError {
        let mut r = StreamReader::with_limits(data, limits);
        loop {
            match r.read_frame() {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the stream was accepted"),
                Err(e) => return e,
            }
        }
    }

    #[test]
    fn records_out_of_order_are_refused_precisely() {
        let limits = Limits::default();
        let chunk = |payload: &[u8]| record(payload.len() as u32, CHUNK_TAG, payload);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (chunk(b"abc"), "no chunked frame in flight"),
            (
                [head(b"x", &[10]), head(b"y", &[10])].concat(),
                "began before",
            ),
            (
                [head(b"x", &[2]), chunk(b"abc")].concat(),
                "overruns its attachment",
            ),
            (
                [
                    head(b"x", &[1 << 30]),
                    record(MAX_CHUNK + 1, CHUNK_TAG, b""),
                ]
                .concat(),
                "longer than the limit",
            ),
        ];
        for (data, why) in cases {
            match refused(&data, &limits) {
                TransportError::Chunks(msg) => assert!(msg.contains(why), "{msg} vs {why}"),
                other => panic!("{why}: got {other:?}"),
            }
        }
    }

    #[test]
    fn a_head_is_checked_against_the_limits() {
        let limits = Limits {
            max_frame: 16,
            max_message: 100,
            ..Limits::default()
        };
        assert!(matches!(
            refused(&head(b"x", &[60, 60]), &limits),
            TransportError::MessageTooLarge { max: 100, .. }
        ));
        assert!(matches!(
            refused(&head(&[0u8; 17], &[1]), &limits),
            TransportError::FrameTooLarge { len: 17, max: 16 }
        ));
        assert!(matches!(
            refused(
                &record(0, HEAD_FLAG | (crate::MAX_ATTACHMENTS + 1), b""),
                &limits
            ),
            TransportError::TooManyAttachments { .. }
        ));
    }

    #[test]
    fn an_announced_length_is_not_allocated_before_its_bytes_arrive() {
        // 512 GiB announced, one small chunk sent: the buffer is bounded by what arrived
        // (plus the fixed read-ahead reservation), and the stream is then torn.
        let data = [head(b"x", &[1 << 39]), record(3, CHUNK_TAG, b"abc")].concat();
        let mut r = StreamReader::new(&data[..]);
        assert!(matches!(r.read_frame(), Err(TransportError::Torn)));
    }
}
