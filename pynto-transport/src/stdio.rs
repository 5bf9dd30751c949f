//! Frames over this process's own stdin and stdout, for a peer that spawned us.
//!
//! [`StdioTransport::take_over`] protects the protocol from the rest of the process: it
//! duplicates file descriptors 0 and 1 for the transport (close-on-exec, so subprocesses do
//! not inherit them), then points fd 1 at fd 2 and fd 0 at `/dev/null`. From then on a stray
//! `print` goes to stderr instead of corrupting the frame stream, and a stray read of stdin
//! sees end of file instead of stealing protocol bytes.
//!
//! Shutting down closes the transport's copy of stdout, so the peer sees end of stream; a
//! read blocked on stdin cannot be interrupted portably and returns when the peer closes its
//! end (which it does on seeing ours close).

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use crate::framing::{PipeWriter, StreamReader, StreamWriter};
use crate::{FrameReader, FrameWriter, Transport, TransportError};

/// A transport over a pair of files, typically this process's stdin and stdout.
#[derive(Debug)]
pub struct StdioTransport {
    input: File,
    output: File,
    peer: String,
}

impl StdioTransport {
    /// Take over stdin and stdout for the protocol, as described in the module
    /// documentation. Call it once, early, before anything reads stdin or writes stdout:
    /// bytes already buffered by other readers of stdin are lost to the transport.
    pub fn take_over() -> Result<Self, TransportError> {
        // Whatever the process already wrote to stdout goes out before the takeover.
        let _ = io::stdout().flush();
        let input = dup_cloexec(0)?;
        let output = dup_cloexec(1)?;
        // SAFETY: dup2 on valid descriptor numbers has no memory-safety requirements; fds 1
        // and 2 stay open (fd 1 now refers to what fd 2 does).
        if unsafe { libc::dup2(2, 1) } < 0 {
            return Err(io::Error::last_os_error().into());
        }
        if let Ok(null) = File::open("/dev/null") {
            use std::os::fd::AsRawFd;
            // SAFETY: as above; fd 0 now reads from /dev/null, and `null` is closed after.
            unsafe { libc::dup2(null.as_raw_fd(), 0) };
        }
        Ok(StdioTransport {
            input: File::from(input),
            output: File::from(output),
            peer: "stdio".to_string(),
        })
    }

    /// Speak over `input` and `output` (e.g. the two ends of pipes). `peer` names the other
    /// end for logs.
    pub fn from_files(input: File, output: File, peer: String) -> Self {
        StdioTransport {
            input,
            output,
            peer,
        }
    }
}

/// A close-on-exec duplicate of `fd`, numbered 3 or above.
fn dup_cloexec(fd: RawFd) -> Result<OwnedFd, TransportError> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) only creates a new descriptor; on success we own it.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        return Err(io::Error::last_os_error().into());
    }
    // SAFETY: `new` is a freshly created descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

impl Transport for StdioTransport {
    fn split(self: Box<Self>) -> (Box<dyn FrameReader>, Box<dyn FrameWriter>) {
        (
            Box::new(StreamReader::new(self.input)),
            Box::new(PipeWriter {
                writer: Some(StreamWriter::new(self.output)),
            }),
        )
    }

    fn peer(&self) -> String {
        self.peer.clone()
    }
}
