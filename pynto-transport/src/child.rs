//! Frames over a child process's stdin and stdout.
//!
//! [`ChildTransport::spawn`] starts a [`Command`] with piped stdin and stdout (stderr is left
//! as the command says, inherited by default) and returns the transport together with the
//! [`Child`], whose handles to stdin and stdout now belong to the transport. Shutting down
//! closes the child's stdin, so the child sees end of stream; the reader's `recv` returns once
//! the child closes its stdout (usually by exiting). Reap the child with [`Child::wait`].

use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use crate::framing::{PipeWriter, StreamReader, StreamWriter};
use crate::{FrameReader, FrameWriter, Transport, TransportError};

/// A transport over a child process's pipes.
pub struct ChildTransport {
    stdin: ChildStdin,
    stdout: ChildStdout,
    peer: String,
}

impl ChildTransport {
    /// Spawn `command` with piped stdin and stdout and speak over them.
    pub fn spawn(command: &mut Command) -> Result<(ChildTransport, Child), TransportError> {
        let program = command.get_program().to_string_lossy().into_owned();
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let (stdin, stdout) = match (child.stdin.take(), child.stdout.take()) {
            (Some(i), Some(o)) => (i, o),
            _ => unreachable!("stdin and stdout were configured as pipes"),
        };
        let peer = format!("child:{program} (pid {})", child.id());
        Ok((ChildTransport::from_pipes(stdin, stdout, peer), child))
    }

    /// Speak over pipes already taken from a child. `peer` names the child for logs.
    pub fn from_pipes(stdin: ChildStdin, stdout: ChildStdout, peer: String) -> Self {
        ChildTransport {
            stdin,
            stdout,
            peer,
        }
    }
}

impl Transport for ChildTransport {
    fn split(self: Box<Self>) -> (Box<dyn FrameReader>, Box<dyn FrameWriter>) {
        (
            Box::new(StreamReader::new(self.stdout)),
            Box::new(PipeWriter {
                writer: Some(StreamWriter::new(self.stdin)),
            }),
        )
    }

    fn peer(&self) -> String {
        self.peer.clone()
    }
}
