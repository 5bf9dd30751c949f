//! The child-process transport, against `cat`, which echoes every frame back.

mod common;

use std::process::Command;

use common::*;
use pynto_transport::child::ChildTransport;
use pynto_transport::Transport;

#[test]
fn child_cat_echoes_frames() {
    let (transport, mut child) = ChildTransport::spawn(&mut Command::new("cat")).unwrap();
    assert!(
        transport.peer().starts_with("child:cat (pid "),
        "{}",
        transport.peer()
    );
    let (reader, writer) = Box::new(transport).split();
    // `cat` is the echo; there is no echo thread on our side, so stand one in that reports
    // the count once the child has exited.
    let frames = test_frames().len();
    let waiter = std::thread::spawn(move || {
        let status = child.wait().unwrap();
        assert!(status.success());
        Ok(frames)
    });
    exchange_with_echo(reader, writer, waiter);
}

#[test]
fn spawn_failure_is_an_error() {
    let r = ChildTransport::spawn(&mut Command::new("/nonexistent/pynto-no-such-program"));
    assert!(r.is_err());
}
