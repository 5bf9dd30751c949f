//! `pynto connect` at a terminal, driven through a pseudo-terminal against a Rust server in
//! this test process: Ctrl-C cancels the running call and keeps the session, Ctrl-C at the
//! prompt only clears the line, and Tab completes names and the peer's attributes.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::pty::Pty;
use common::{rust_server, SLEEPS_STARTED};

/// A fresh HOME, so the history file of the test stays out of the user's; removed on drop.
struct Home(std::path::PathBuf);

impl Home {
    fn new(name: &str) -> Home {
        let dir = std::env::temp_dir().join(format!("pynto-cli-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Home(dir)
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn ctrl_c_cancels_the_running_call_and_keeps_the_session() {
    let addr = rust_server(None);
    let home = Home::new("ctrl-c");
    let mut term = Pty::spawn(&["connect", &addr], &home.0);
    term.expect("pynto> ");
    let before = SLEEPS_STARTED.load(Ordering::SeqCst);
    term.send("root.sleep(600)\r");
    // Wait until the server is inside the call, so the Ctrl-C hits a waiting call.
    let deadline = Instant::now() + Duration::from_secs(30);
    while SLEEPS_STARTED.load(Ordering::SeqCst) == before {
        assert!(
            Instant::now() < deadline,
            "the call never reached the server"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    term.send("\x03");
    term.expect("KeyboardInterrupt: the call was cancelled");
    term.expect("pynto> ");
    // The same session still serves calls.
    term.send("root.add(40, 2)\r");
    term.expect("42\r\n");
    term.expect("pynto> ");
    // Ctrl-C at the prompt clears the line and keeps the CLI.
    term.send("root.add(1, 1)\x03");
    term.expect("pynto> ");
    term.send("root.add(300, 33)\r");
    term.expect("333\r\n");
    term.expect("pynto> ");
    term.send("exit\r");
    let status = term.wait();
    assert_eq!(status.code(), Some(0), "{status:?}: {}", term.rest());
}

#[test]
fn tab_completes_names_and_remote_attributes() {
    let addr = rust_server(None);
    let home = Home::new("tab");
    let mut term = Pty::spawn(&["connect", &addr], &home.0);
    term.expect("pynto> ");
    // `ro` completes to the name `root`, `root.a` to the peer's method `add`: had either not
    // completed, the line would fail instead of printing 42.
    term.send("ro\t");
    term.expect("root");
    term.send(".a\t");
    term.expect("add");
    term.send("(20, 22)\r");
    term.expect("42\r\n");
    term.expect("pynto> ");
    // Two Tabs list the candidates the peer's dir() offers.
    term.send("root.\t\t");
    term.expect("hangup");
    term.expect("sleep");
    term.send("\x15exit\r");
    let status = term.wait();
    assert_eq!(status.code(), Some(0), "{status:?}: {}", term.rest());
}
