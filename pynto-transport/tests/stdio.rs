//! The stdio transport. This test has its own `main` (no libtest harness, which would print
//! to stdout): run plainly, it re-runs its own executable as a child that takes over its stdio
//! and echoes frames, and checks that a stray print in the child went to stderr.

#[path = "common/mod.rs"]
mod common;

use std::io::Read;
use std::process::{Command, Stdio};

use pynto_transport::child::ChildTransport;
use pynto_transport::stdio::StdioTransport;
use pynto_transport::Transport;

const CHILD_ENV: &str = "PYNTO_TRANSPORT_STDIO_CHILD";

fn main() {
    if std::env::var_os(CHILD_ENV).is_some() {
        child();
    } else {
        parent();
        println!("stdio: ok");
    }
}

/// Take over stdio, print something stray, and echo frames until end of stream.
fn child() {
    let transport = StdioTransport::take_over().expect("take over stdio");
    println!("a stray print after the takeover");
    let mut line = String::new();
    let n = std::io::stdin().read_line(&mut line).unwrap();
    println!("stdin now reads {n} bytes");
    let (reader, writer) = Box::new(transport).split();
    let result = common::echo(reader, writer).join().unwrap();
    eprintln!("child echo ended: {result:?}");
}

fn parent() {
    let exe = std::env::current_exe().unwrap();
    let mut command = Command::new(exe);
    command.env(CHILD_ENV, "1").stderr(Stdio::piped());
    let (transport, mut child) = ChildTransport::spawn(&mut command).unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    });
    let (reader, writer) = Box::new(transport).split();
    let frames = common::test_frames().len();
    let waiter = std::thread::spawn(move || {
        assert!(child.wait().unwrap().success());
        Ok(frames)
    });
    common::exchange_with_echo(reader, writer, waiter);
    let stderr = stderr.join().unwrap();
    assert!(
        stderr.contains("a stray print after the takeover"),
        "{stderr}"
    );
    assert!(stderr.contains("stdin now reads 0 bytes"), "{stderr}");
    assert!(
        stderr.contains(&format!("child echo ended: Ok({frames})")),
        "{stderr}"
    );
}
