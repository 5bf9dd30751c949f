//! Progress of one direction of a transport: bytes moved so far, and the frame in flight.
//!
//! The runtime judges a peer by bytes, not frames: a peer whose long frame keeps arriving over a
//! slow link is alive, and a peer that starts a frame and then trickles it (or stops) is not.
//! [`Progress`] is what the framing updates and the runtime's housekeeper reads, from any
//! thread, without locks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Bytes moved in one direction, and when the frame in flight began. Cheap to clone; clones
/// share the counters.
#[derive(Clone, Debug, Default)]
pub struct Progress(Arc<Counters>);

#[derive(Debug, Default)]
struct Counters {
    /// Bytes moved so far.
    bytes: AtomicU64,
    /// When the frame in flight began, in milliseconds of [`clock_ms`] plus one; 0 between
    /// frames.
    frame_began: AtomicU64,
    /// `bytes` when the frame in flight began.
    frame_base: AtomicU64,
}

/// The frame in flight: how long it has been moving and how many bytes of it have moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InFlight {
    /// Time since its first byte.
    pub elapsed: Duration,
    /// Bytes moved since its first byte (including buffered read-ahead).
    pub bytes: u64,
}

/// Milliseconds on a process-wide monotonic clock.
fn clock_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

impl Progress {
    /// Bytes moved so far.
    pub fn bytes(&self) -> u64 {
        self.0.bytes.load(Ordering::Relaxed)
    }

    /// The frame in flight, if one has begun and not ended.
    pub fn in_flight(&self) -> Option<InFlight> {
        let began = self.0.frame_began.load(Ordering::Acquire);
        if began == 0 {
            return None;
        }
        let elapsed = clock_ms().saturating_sub(began - 1);
        Some(InFlight {
            elapsed: Duration::from_millis(elapsed),
            bytes: self
                .bytes()
                .saturating_sub(self.0.frame_base.load(Ordering::Relaxed)),
        })
    }

    /// Count `n` bytes moved.
    pub(crate) fn moved(&self, n: usize) {
        self.0.bytes.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// A frame begins now (no-op if one is in flight).
    pub(crate) fn frame_begins(&self) {
        if self.0.frame_began.load(Ordering::Relaxed) == 0 {
            self.0.frame_base.store(self.bytes(), Ordering::Relaxed);
            self.0.frame_began.store(clock_ms() + 1, Ordering::Release);
        }
    }

    /// The frame in flight ended (completely, or with an error).
    pub(crate) fn frame_ends(&self) {
        self.0.frame_began.store(0, Ordering::Release);
    }
}

/// A stream that counts the bytes read from or written to it.
pub(crate) struct Counted<T> {
    pub(crate) inner: T,
    pub(crate) progress: Progress,
}

impl<T: std::io::Read> std::io::Read for Counted<T> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.moved(n);
        Ok(n)
    }
}

impl<T: std::io::Write> std::io::Write for Counted<T> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.progress.moved(n);
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
        let n = self.inner.write_vectored(bufs)?;
        self.progress.moved(n);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_bytes_and_frames() {
        let p = Progress::default();
        assert_eq!(p.in_flight(), None);
        p.moved(10);
        p.frame_begins();
        p.moved(5);
        let f = p.in_flight().expect("a frame is in flight");
        assert_eq!(f.bytes, 5);
        assert_eq!(p.bytes(), 15);
        p.frame_ends();
        assert_eq!(p.in_flight(), None);
    }
}
