//! The wire layout of a frame, and framed reading and writing over any byte stream.
//!
//! One frame on the wire is:
//!
//! ```text
//! u32 LE  body length
//! u32 LE  attachment count
//!         body bytes
//! then, for each attachment:
//! u64 LE  attachment length
//!         attachment bytes
//! ```
//!
//! [`StreamReader`] checks the receiver's [`Limits`] against each length before reading what
//! it announces, and never trusts a length for allocation beyond what the peer has actually
//! sent. [`StreamWriter`] sends a frame with vectored writes straight from the frame's buffers.

use std::io::{self, BufRead, BufReader, IoSlice, Read, Write};
use std::sync::Arc;

use bytes::Bytes;
use pynto_proto::{Frame, Limits};

use crate::bulk::{Partial, Parts, Record};
use crate::poller::Wake;
use crate::progress::Counted;
use crate::socket::{poll_readable, Readiness, WakeFd};
use crate::{FrameReader, FrameWriter, Progress, TransportError};

/// The most attachments one frame may carry. Checked by both [`StreamReader`] and
/// [`StreamWriter`].
pub const MAX_ATTACHMENTS: u32 = 65_536;

/// The size of the frame header: body length and attachment count.
pub const HEADER_LEN: usize = 8;

/// How far ahead of the bytes actually received a payload buffer may be allocated at first.
/// Past this, a buffer grows by at most the amount already received, so a hostile length
/// costs at most about twice what the peer really sent. The first reservation is address space
/// only (the kernel maps pages as data lands in them), so it is sized for bulk transfers to
/// arrive without regrowing and copying.
pub(crate) const PREALLOC_MAX: usize = 256 << 20;

/// The capacity of the read buffer: small frames cost one read system call.
const READ_BUFFER: usize = 64 << 10;

/// The most slices handed to one `write_vectored` call (the usual `IOV_MAX`).
const MAX_IOV: usize = 1024;

/// Check a whole frame against `limits`, as [`StreamReader`] does piecewise while reading.
/// Used by transports that carry frames without the wire format (the in-memory pair).
pub fn check_limits(frame: &Frame, limits: &Limits) -> Result<(), TransportError> {
    let body = frame.body.len() as u64;
    if body > u64::from(limits.max_frame) {
        return Err(TransportError::FrameTooLarge {
            len: body,
            max: u64::from(limits.max_frame),
        });
    }
    let count = frame.attachments.len() as u64;
    if count > u64::from(MAX_ATTACHMENTS) {
        return Err(TransportError::TooManyAttachments {
            count,
            max: u64::from(MAX_ATTACHMENTS),
        });
    }
    let total = frame.len();
    if total > limits.max_message {
        return Err(TransportError::MessageTooLarge {
            len: total,
            max: limits.max_message,
        });
    }
    Ok(())
}

/// Reads frames from a byte stream, through a 64 KiB buffer (given back while the reader is
/// parked).
///
/// Implements [`FrameReader`] for any `R: Read + Send + Readiness`.
pub struct StreamReader<R: Read> {
    inner: Buffer<Counted<R>>,
    limits: Limits,
    /// An event fd polled beside the stream, written by [`crate::Interrupter`]s (which hold it
    /// weakly: it closes with this reader).
    wake: Option<Arc<WakeFd>>,
    /// A frame whose attachments are arriving in chunks (`bulk.rs`).
    partial: Option<Partial>,
    /// `recv` may give up between frames at the stream's idle timeout.
    idle: bool,
}

/// The read buffer: allocated while the stream is being read, freed while it is parked.
enum Buffer<R> {
    On(BufReader<R>),
    Off(R),
    /// Only inside [`Buffer::on`] and [`Buffer::off`].
    Swapping,
}

impl<R: Read> Buffer<R> {
    fn on(&mut self) -> &mut BufReader<R> {
        if !matches!(self, Buffer::On(_)) {
            if let Buffer::Off(r) = std::mem::replace(self, Buffer::Swapping) {
                *self = Buffer::On(BufReader::with_capacity(READ_BUFFER, r));
            }
        }
        match self {
            Buffer::On(b) => b,
            _ => unreachable!("the buffer was just made"),
        }
    }

    /// Free the buffer if it holds nothing.
    fn off(&mut self) {
        if matches!(self, Buffer::On(b) if b.buffer().is_empty()) {
            if let Buffer::On(b) = std::mem::replace(self, Buffer::Swapping) {
                *self = Buffer::Off(b.into_inner());
            }
        }
    }

    fn buffer(&self) -> &[u8] {
        match self {
            Buffer::On(b) => b.buffer(),
            _ => &[],
        }
    }

    fn get_ref(&self) -> &R {
        match self {
            Buffer::On(b) => b.get_ref(),
            Buffer::Off(r) => r,
            Buffer::Swapping => unreachable!("never seen outside a swap"),
        }
    }

    fn get_mut(&mut self) -> &mut R {
        match self {
            Buffer::On(b) => b.get_mut(),
            Buffer::Off(r) => r,
            Buffer::Swapping => unreachable!("never seen outside a swap"),
        }
    }
}

impl<R: Read> StreamReader<R> {
    /// A reader with the default [`Limits`].
    pub fn new(inner: R) -> Self {
        Self::with_limits(inner, &Limits::default())
    }

    /// A reader enforcing `limits`.
    pub fn with_limits(inner: R, limits: &Limits) -> Self {
        StreamReader {
            inner: Buffer::Off(Counted {
                inner,
                progress: Progress::default(),
            }),
            wake: None,
            limits: *limits,
            partial: None,
            idle: false,
        }
    }

    /// The limits currently enforced.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &R {
        &self.inner.get_ref().inner
    }

    fn get_mut(&mut self) -> &mut R {
        &mut self.inner.get_mut().inner
    }

    /// The bytes read so far and the frame being read.
    pub fn progress(&self) -> &Progress {
        &self.inner.get_ref().progress
    }

    /// Read the next frame: `Ok(None)` on end of stream exactly between frames,
    /// [`TransportError::Torn`] on end of stream inside one.
    pub fn read_frame(&mut self) -> Result<Option<Frame>, TransportError> {
        let result = self.read_frame_parts();
        self.progress().frame_ends();
        result
    }

    /// Read records until a frame is whole: a plain frame at once, a chunked one when its last
    /// chunk arrives (plain frames between its chunks are returned as they come).
    fn read_frame_parts(&mut self) -> Result<Option<Frame>, TransportError> {
        loop {
            let mut header = [0u8; HEADER_LEN];
            if !self.read_header(&mut header)? {
                if self.partial.is_some() {
                    return Err(TransportError::Torn);
                }
                return Ok(None);
            }
            let first = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
            let word = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
            match Record::of(word) {
                Record::Frame(count) => return self.read_plain(first, count).map(Some),
                Record::Head(count) => {
                    if self.partial.is_some() {
                        return Err(TransportError::Chunks(
                            "a chunked frame began before the previous one ended".into(),
                        ));
                    }
                    let partial = self.read_head(first, count)?;
                    if partial.is_complete() {
                        return Ok(Some(partial.into_frame()));
                    }
                    self.partial = Some(partial);
                }
                Record::Chunk => {
                    let Some(partial) = self.partial.as_mut() else {
                        return Err(TransportError::Chunks(
                            "a chunk came with no chunked frame in flight".into(),
                        ));
                    };
                    partial.read_chunk(self.inner.on(), first)?;
                    if partial.is_complete() {
                        return Ok(self.partial.take().map(Partial::into_frame));
                    }
                }
            }
            // Between records of a chunked frame the stream is idle, as between frames.
            self.progress().frame_ends();
        }
    }

    /// Check a frame's body length and attachment count against the limits.
    fn check_header(&self, body_len: u32, count: u32) -> Result<(), TransportError> {
        if body_len > self.limits.max_frame {
            return Err(TransportError::FrameTooLarge {
                len: u64::from(body_len),
                max: u64::from(self.limits.max_frame),
            });
        }
        if count > MAX_ATTACHMENTS {
            return Err(TransportError::TooManyAttachments {
                count: u64::from(count),
                max: u64::from(MAX_ATTACHMENTS),
            });
        }
        self.check_total(u64::from(body_len))
    }

    /// The rest of a plain frame: body, then each attachment's length and bytes.
    fn read_plain(&mut self, body_len: u32, count: u32) -> Result<Frame, TransportError> {
        self.check_header(body_len, count)?;
        let mut total = u64::from(body_len);
        let body = self.read_payload(total)?;
        let mut attachments = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let len = self.read_length()?;
            total = total.saturating_add(len);
            self.check_total(total)?;
            attachments.push(self.read_payload(len)?);
        }
        Ok(Frame { body, attachments })
    }

    /// The rest of a chunked frame's head: body, then every attachment's length.
    fn read_head(&mut self, body_len: u32, count: u32) -> Result<Partial, TransportError> {
        self.check_header(body_len, count)?;
        let mut total = u64::from(body_len);
        let body = self.read_payload(total)?;
        let mut lengths = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let len = self.read_length()?;
            total = total.saturating_add(len);
            self.check_total(total)?;
            lengths.push(len);
        }
        Ok(Partial::new(body, lengths))
    }

    fn read_length(&mut self) -> Result<u64, TransportError> {
        let mut len = [0u8; 8];
        self.inner.on().read_exact(&mut len).map_err(torn_on_eof)?;
        Ok(u64::from_le_bytes(len))
    }

    fn check_total(&self, total: u64) -> Result<(), TransportError> {
        if total > self.limits.max_message {
            return Err(TransportError::MessageTooLarge {
                len: total,
                max: self.limits.max_message,
            });
        }
        Ok(())
    }

    /// Fill `header`; false when the stream ends before its first byte.
    fn read_header(&mut self, header: &mut [u8; HEADER_LEN]) -> Result<bool, TransportError> {
        let mut filled = 0;
        while filled < HEADER_LEN {
            match self.inner.on().read(&mut header[filled..]) {
                Ok(0) if filled == 0 => return Ok(false),
                Ok(0) => return Err(TransportError::Torn),
                Ok(n) => {
                    if filled == 0 {
                        self.progress().frame_begins();
                    }
                    filled += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if filled > 0 => return Err(torn_on_eof(e)),
                Err(e) => return Err(TransportError::Io(e)),
            }
        }
        Ok(true)
    }

    /// Read exactly `len` bytes into a fresh buffer. The buffer is never allocated more than
    /// `max(PREALLOC_MAX, bytes received so far)` ahead of the bytes received. It is allocated
    /// zeroed (`calloc`: a large one comes straight from `mmap`, already zero and not yet
    /// touched), advised into huge pages, and read into with `read_exact`, which hands it to the
    /// stream directly once the read buffer is drained. (`read_to_end` into spare capacity would
    /// zero-fill every piece first: `Counted` has no `read_buf`, which is unstable.)
    fn read_payload(&mut self, len: u64) -> Result<Bytes, TransportError> {
        let len = usize::try_from(len).map_err(|_| TransportError::MessageTooLarge {
            len,
            max: usize::MAX as u64,
        })?;
        if len == 0 {
            return Ok(Bytes::new());
        }
        let mut buf: Vec<u8> = vec![0; len.min(PREALLOC_MAX)];
        advise_huge_pages(&mut buf);
        let mut filled = 0;
        loop {
            self.inner
                .on()
                .read_exact(&mut buf[filled..])
                .map_err(torn_on_eof)?;
            filled = buf.len();
            if filled == len {
                return Ok(Bytes::from(buf));
            }
            let grow = (len - filled).min(filled.max(PREALLOC_MAX));
            buf.reserve_exact(grow);
            buf.resize(filled + grow, 0);
        }
    }
}

impl<R: Read> Read for StreamReader<R> {
    /// Raw bytes from the buffered stream, for callers that read something other than frames
    /// (e.g. a preamble) before framing starts.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.on().read(buf)
    }
}

impl<R: Read + Send + Readiness> FrameReader for StreamReader<R> {
    fn recv(&mut self) -> Result<Option<Frame>, TransportError> {
        if self.idle && self.inner.buffer().is_empty() {
            // The first read of a frame may give up at the idle timeout; none after it may.
            self.get_mut().allow_idle(true);
            let first = self.inner.on().fill_buf().map(|_| ());
            self.get_mut().allow_idle(false);
            match first {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(TransportError::Idle)
                }
                Err(e) if e.kind() != io::ErrorKind::Interrupted => {
                    return Err(TransportError::Io(e))
                }
                _ => {}
            }
        }
        self.read_frame()
    }

    fn set_limits(&mut self, limits: &Limits) {
        self.limits = *limits;
    }

    fn wait_readable(&mut self, timeout: std::time::Duration) -> Result<bool, TransportError> {
        if !self.inner.buffer().is_empty() {
            return Ok(true);
        }
        let Some(fd) = self.get_ref().readiness_fd() else {
            return Ok(true);
        };
        let wake = self.wake.as_ref().and_then(|w| w.fd());
        poll_readable(fd, wake, timeout)
    }

    fn interrupter(&mut self) -> Option<crate::Interrupter> {
        self.get_ref().readiness_fd()?;
        let wake = self.wake.get_or_insert_with(WakeFd::new);
        Some(crate::socket::poke(Arc::downgrade(wake)))
    }

    fn progress(&self) -> Option<Progress> {
        Some(StreamReader::progress(self).clone())
    }

    fn set_idle_timeout(&mut self, idle: std::time::Duration) -> bool {
        self.idle = self.get_mut().set_idle_timeout(idle);
        self.idle
    }

    fn park(&mut self, wake: Wake) -> Result<(), Wake> {
        if !self.inner.buffer().is_empty() {
            return Err(wake);
        }
        self.get_mut().park(wake)?;
        // Nothing to keep while parked: the buffer and the event fd come back on next use.
        self.inner.off();
        if let Some(w) = &self.wake {
            w.close();
        }
        Ok(())
    }
}

/// Ask for transparent huge pages for a large buffer about to be filled: a 64 MiB payload then
/// costs 32 page faults instead of 16,384 (which cost more than the copy itself). Best effort.
pub fn advise_huge_pages<T>(buf: &mut [T]) {
    const HUGE: usize = 2 << 20;
    let len = std::mem::size_of_val(buf);
    if len < 2 * HUGE {
        return;
    }
    let start = buf.as_mut_ptr() as usize;
    let aligned = (start + HUGE - 1) & !(HUGE - 1);
    let end = (start + len) & !(HUGE - 1);
    if end > aligned {
        // SAFETY: the range lies inside `buf`; MADV_HUGEPAGE only changes how pages are backed.
        unsafe {
            libc::madvise(
                aligned as *mut libc::c_void,
                end - aligned,
                libc::MADV_HUGEPAGE,
            );
        }
    }
}

/// The writing half of a pipe transport (a child's stdin, our stdout): shutting it down
/// drops the pipe, so the other end reads end of stream.
pub(crate) struct PipeWriter<W: Write + Send> {
    pub(crate) writer: Option<StreamWriter<W>>,
}

impl<W: Write + Send> FrameWriter for PipeWriter<W> {
    fn send(&mut self, frame: &Frame) -> Result<(), TransportError> {
        match &mut self.writer {
            Some(w) => w.send(frame),
            None => Err(TransportError::Closed),
        }
    }

    fn send_batch(&mut self, frames: &[&Frame]) -> Result<(), TransportError> {
        match &mut self.writer {
            Some(w) => w.send_batch(frames),
            None => Err(TransportError::Closed),
        }
    }

    fn send_part(&mut self, frame: &Frame, parts: &mut Parts) -> Result<bool, TransportError> {
        match &mut self.writer {
            Some(w) => w.send_part(frame, parts),
            None => Err(TransportError::Closed),
        }
    }

    fn shutdown(&mut self) {
        self.writer = None;
    }

    fn progress(&self) -> Option<Progress> {
        self.writer.as_ref().map(|w| w.progress().clone())
    }
}

fn torn_on_eof(e: io::Error) -> TransportError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        TransportError::Torn
    } else {
        TransportError::Io(e)
    }
}

/// Writes frames to a byte stream with vectored writes, unbuffered: each
/// [`send`](StreamWriter::send) hands header, body and attachments to the stream in as few
/// `write_vectored` calls as the stream accepts, without copying the payloads.
pub struct StreamWriter<W: Write> {
    inner: Counted<W>,
    headers: Vec<u8>,
}

impl<W: Write> StreamWriter<W> {
    /// A writer over `inner`.
    pub fn new(inner: W) -> Self {
        StreamWriter {
            inner: Counted {
                inner,
                progress: Progress::default(),
            },
            headers: Vec::with_capacity(64),
        }
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &W {
        &self.inner.inner
    }

    /// The bytes written so far and the frame being written.
    pub fn progress(&self) -> &Progress {
        &self.inner.progress
    }

    /// The underlying stream, mutably. Writing to it directly between frames breaks the
    /// framing unless the peer expects it.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner.inner
    }

    /// The underlying stream.
    pub fn into_inner(self) -> W {
        self.inner.inner
    }

    /// Write one frame and flush the stream.
    pub fn send(&mut self, frame: &Frame) -> Result<(), TransportError> {
        self.send_batch(&[frame])
    }

    /// Write `frames` in order with as few vectored writes as the stream takes (one, for
    /// small frames): a reply and the releases queued before it cost one system call.
    pub fn send_batch(&mut self, frames: &[&Frame]) -> Result<(), TransportError> {
        let headers = &mut self.headers;
        headers.clear();
        for frame in frames {
            let body_len =
                u32::try_from(frame.body.len()).map_err(|_| TransportError::FrameTooLarge {
                    len: frame.body.len() as u64,
                    max: u64::from(u32::MAX),
                })?;
            let count = frame.attachments.len();
            if count > MAX_ATTACHMENTS as usize {
                return Err(TransportError::TooManyAttachments {
                    count: count as u64,
                    max: u64::from(MAX_ATTACHMENTS),
                });
            }
            headers.extend_from_slice(&body_len.to_le_bytes());
            headers.extend_from_slice(&(count as u32).to_le_bytes());
            for a in &frame.attachments {
                headers.extend_from_slice(&(a.len() as u64).to_le_bytes());
            }
        }
        let mut pieces: Vec<&[u8]> = Vec::with_capacity(frames.len() * 2);
        let mut at = 0;
        for frame in frames {
            pieces.push(&headers[at..at + HEADER_LEN]);
            pieces.push(&frame.body);
            at += HEADER_LEN;
            for a in &frame.attachments {
                pieces.push(&headers[at..at + 8]);
                pieces.push(a);
                at += 8;
            }
        }
        self.inner.progress.frame_begins();
        let written = write_all_pieces(&mut self.inner, &pieces).and_then(|()| self.inner.flush());
        self.inner.progress.frame_ends();
        written?;
        Ok(())
    }
}

impl<W: Write> StreamWriter<W> {
    /// Write the next record of `frame` sent in parts (`bulk.rs`): its head, then one chunk
    /// per call. True once the last record has gone out.
    pub fn send_part(&mut self, frame: &Frame, parts: &mut Parts) -> Result<bool, TransportError> {
        if u32::try_from(frame.body.len()).is_err() {
            return Err(TransportError::FrameTooLarge {
                len: frame.body.len() as u64,
                max: u64::from(u32::MAX),
            });
        }
        if frame.attachments.len() > MAX_ATTACHMENTS as usize {
            return Err(TransportError::TooManyAttachments {
                count: frame.attachments.len() as u64,
                max: u64::from(MAX_ATTACHMENTS),
            });
        }
        let Some((pieces, after)) = parts.next(frame, &mut self.headers) else {
            return Ok(true);
        };
        self.inner.progress.frame_begins();
        let written = write_all_pieces(&mut self.inner, &pieces).and_then(|()| self.inner.flush());
        self.inner.progress.frame_ends();
        written?;
        *parts = after;
        Ok(parts.done(frame))
    }
}

/// Write every byte of `pieces`, in order, with vectored writes, looping over partial writes.
pub fn write_all_pieces<W: Write + ?Sized>(w: &mut W, pieces: &[&[u8]]) -> io::Result<()> {
    let mut idx = 0;
    let mut off = 0;
    let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(pieces.len().min(MAX_IOV));
    loop {
        // Skip what is done, including empty pieces.
        while idx < pieces.len() && off == pieces[idx].len() {
            idx += 1;
            off = 0;
        }
        if idx == pieces.len() {
            return Ok(());
        }
        slices.clear();
        slices.push(IoSlice::new(&pieces[idx][off..]));
        slices.extend(
            pieces[idx + 1..]
                .iter()
                .filter(|p| !p.is_empty())
                .take(MAX_IOV - 1)
                .map(|p| IoSlice::new(p)),
        );
        let mut n = match w.write_vectored(&slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        while n > 0 {
            let left = pieces[idx].len() - off;
            if n >= left {
                n -= left;
                idx += 1;
                off = 0;
            } else {
                off += n;
                n = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests;
