//! Helpers shared by the CLI's integration tests: a Rust `Calc` server on a real socket (a
//! `NativeHost` object in the test process, so no Python is needed), running the `pynto`
//! binary, and (in `pty`) driving it through a pseudo-terminal.
#![allow(dead_code)]

pub mod pty;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use pynto_proto::Value;
use pynto_runtime::native::{type_error, Methods, NativeHost, Object};
use pynto_runtime::{Config, Role, Session};
use pynto_transport::{Address, Listener};

/// How many `Calc.sleep` calls have started in this test process.
pub static SLEEPS_STARTED: AtomicUsize = AtomicUsize::new(0);

/// The test service: `add(a, b)`, `echo(x)`, `hangup()` (closes the session from the
/// server's side) and `sleep(seconds)` (counts itself in [`SLEEPS_STARTED`], then sleeps).
pub fn calc() -> Methods {
    Methods::new("Calc")
        .method("add", |args| match args.positional.as_slice() {
            [Value::Int(a), Value::Int(b)] => Ok(Value::Int(a + b).into()),
            _ => Err(type_error("add takes two ints")),
        })
        .method("echo", |args| {
            Ok(args
                .positional
                .first()
                .cloned()
                .unwrap_or(Value::None)
                .into())
        })
        .method_with_call("hangup", |call| {
            call.session().close();
            Ok(Value::None.into())
        })
        .method("sleep", |args| match args.positional.as_slice() {
            [Value::Int(seconds)] => {
                SLEEPS_STARTED.fetch_add(1, Ordering::SeqCst);
                thread::sleep(Duration::from_secs(*seconds as u64));
                Ok(Value::None.into())
            }
            _ => Err(type_error("sleep takes an int")),
        })
}

/// Serve a `Calc` to every connection `listener` accepts; the address to give `pynto`.
pub fn serve(listener: Listener, token: Option<&str>) -> String {
    let addr = listener.local_addr();
    let token = token.map(str::to_string);
    thread::spawn(move || {
        while let Ok(transport) = listener.accept() {
            let config = Config {
                token: token.clone(),
                service_name: "Calc".into(),
                ..Config::default()
            };
            thread::spawn(move || {
                let root = Object::new(calc());
                if let Ok(session) =
                    Session::connect(transport, Role::Acceptor, NativeHost::new(), root, config)
                {
                    while !session.is_closed() {
                        thread::sleep(Duration::from_millis(20));
                    }
                }
            });
        }
    });
    addr
}

/// Serve a `Calc` on a fresh TCP port; the address.
pub fn rust_server(token: Option<&str>) -> String {
    serve(
        Listener::bind(&Address::parse("127.0.0.1:0").unwrap(), None).unwrap(),
        token,
    )
}

/// Run `pynto` with `args`, extra environment and standard input (closed when `None`).
pub fn pynto_with(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pynto"));
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start pynto");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().expect("pynto ran")
}

/// Run `pynto` with `args`.
pub fn pynto(args: &[&str]) -> Output {
    pynto_with(args, &[], None)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The process exited with `code`; its standard output and error.
#[track_caller]
pub fn expect(out: &Output, code: i32) -> (String, String) {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (stdout, stderr)
}

/// One `pynto: ` line on stderr.
#[track_caller]
pub fn one_line(stderr: &str, needle: &str) {
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("pynto: "), "{stderr}");
    assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
}
