//! The `pynto` binary against a real Python server (`python -m pynto serve --classic`).
//!
//! These need a Python with pynto installed, named by `PYNTO_TEST_PYTHON`, so they are
//! `#[ignore]`d in the plain `cargo test` (which runs before the Python package is built) and
//! run from the Python step:
//!
//! ```text
//! PYNTO_TEST_PYTHON=target/venv/bin/python cargo test -p pynto-cli -- --ignored
//! ```
//!
//! Run that way without the variable, they fail rather than pass vacuously.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};

/// A `python -m pynto serve --classic --port 0` process, killed on drop.
struct PythonServer {
    child: Child,
    address: String,
}

impl PythonServer {
    fn start(extra: &[&str], env: &[(&str, &str)]) -> PythonServer {
        let python = std::env::var("PYNTO_TEST_PYTHON").unwrap_or_else(|_| {
            panic!("PYNTO_TEST_PYTHON is not set: point it at a Python with pynto installed")
        });
        let mut cmd = Command::new(&python);
        cmd.args(["-m", "pynto", "serve", "--classic", "--port", "0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {python}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let address = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(addr) = line.strip_prefix("pynto: serving classic on ") {
                        break addr.trim().to_string();
                    }
                }
                other => {
                    let _ = child.kill();
                    panic!("the server did not announce its address: {other:?}");
                }
            }
        };
        PythonServer { child, address }
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pynto(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
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

#[track_caller]
fn expect(out: &Output, code: i32) -> (String, String) {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (stdout, stderr)
}

#[test]
#[ignore = "needs PYNTO_TEST_PYTHON (a Python with pynto installed)"]
fn scripted_session_against_python() {
    let server = PythonServer::start(&[], &[]);
    let script = "m = modules.math\nm.pow(3, 2)\ndir(m)\nm\nm.sqrt(-1)\nm.pow(2, 3)\nbuiltins.sorted([3, 1, 2])\nexit\n";
    let out = pynto(&["connect", &server.address], &[], Some(script));
    // A line failed: the session went on, and exits with 1 at the end.
    let (stdout, stderr) = expect(&out, 1);
    assert_eq!(
        stderr.lines().last(),
        Some("pynto: 1 of 8 lines failed"),
        "{stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    assert_eq!(
        lines[4], "[1, 2, 3]",
        "builtins is the server's builtins module"
    );
    assert_eq!(lines[0], "9.0");
    assert!(
        lines[1].starts_with('[') && lines[1].contains("'pow'"),
        "{stdout}"
    );
    assert!(lines[2].starts_with("<module 'math'"), "{stdout}");
    assert_eq!(lines[3], "8.0", "the session went on after the error");
    assert_eq!(
        stderr.lines().next(),
        Some("ValueError: math domain error"),
        "{stderr}"
    );
}

#[test]
#[ignore = "needs PYNTO_TEST_PYTHON (a Python with pynto installed)"]
fn call_with_and_without_json() {
    let server = PythonServer::start(&[], &[]);
    let addr = server.address.as_str();
    let (out, _) = expect(
        &pynto(&["call", addr, "modules.math.pow(3, 2)"], &[], None),
        0,
    );
    assert_eq!(out, "9.0\n");
    let (out, _) = expect(
        &pynto(
            &["call", addr, "modules.math.pow(3, 2)", "--json"],
            &[],
            None,
        ),
        0,
    );
    assert_eq!(out, "9.0\n");
    let (out, _) = expect(
        &pynto(
            &[
                "call",
                addr,
                "j = modules.json; j.loads('{\"a\": [1, 2.5, null, \"x\"]}')",
                "--json",
            ],
            &[],
            None,
        ),
        0,
    );
    // A dict crosses by reference; --json prints its value (and the list inside it).
    assert_eq!(out, "{\"a\": [1, 2.5, null, \"x\"]}\n");
    // So do remote lists, nested ones included, and `builtins` is the server's builtins.
    let (out, _) = expect(
        &pynto(
            &["call", addr, "builtins.sorted([3, 1, 2])", "--json"],
            &[],
            None,
        ),
        0,
    );
    assert_eq!(out, "[1, 2, 3]\n");
    let (out, _) = expect(
        &pynto(
            &[
                "call",
                addr,
                "modules.json.loads('[{\"k\": [1, {\"n\": null}]}, [], {}, 2]')",
                "--json",
            ],
            &[],
            None,
        ),
        0,
    );
    assert_eq!(out, "[{\"k\": [1, {\"n\": null}]}, [], {}, 2]\n");
    let (out, _) = expect(
        &pynto(&["call", addr, "builtins.len([1, 2, 3])"], &[], None),
        0,
    );
    assert_eq!(out, "3\n");
    let (out, _) = expect(
        &pynto(
            &[
                "call",
                addr,
                "modules.builtins.tuple(['a', 1, None, True])",
                "--json",
            ],
            &[],
            None,
        ),
        0,
    );
    assert_eq!(out, "[\"a\", 1, null, true]\n");
    let (out, _) = expect(
        &pynto(&["call", addr, "modules.math", "--json"], &[], None),
        0,
    );
    assert!(
        out.starts_with("{\"ref\": \"<module 'math'")
            && out.contains("\"type\": \"builtins.module\""),
        "{out}"
    );
    let (out, err) = expect(
        &pynto(
            &["call", addr, "modules.math.sqrt(-1)", "--json"],
            &[],
            None,
        ),
        1,
    );
    assert_eq!(
        err.lines().next(),
        Some("pynto: ValueError: math domain error")
    );
    assert!(
        out.starts_with("{\"error\": {\"type\": \"ValueError\""),
        "{out}"
    );
    // Keyword arguments and lists arrive as Python lists.
    let (out, _) = expect(
        &pynto(
            &[
                "call",
                addr,
                "modules.builtins.sorted([3, 1, 2], reverse=True)",
            ],
            &[],
            None,
        ),
        0,
    );
    assert_eq!(out, "[3, 2, 1]\n");
}

#[test]
#[ignore = "needs PYNTO_TEST_PYTHON (a Python with pynto installed)"]
fn ping_python() {
    let server = PythonServer::start(&[], &[]);
    let (out, _) = expect(&pynto(&["ping", &server.address, "-n", "5"], &[], None), 0);
    assert!(out.starts_with("5 round trips to "), "{out}");
    for word in ["min", "median", "mean", "p99", "max"] {
        assert!(out.contains(word), "{word}: {out}");
    }
    let (out, _) = expect(
        &pynto(&["bench", &server.address, "--seconds", "0.2"], &[], None),
        0,
    );
    assert!(out.contains("modules.math.pow(2, 10)"), "{out}");
}

#[test]
#[ignore = "needs PYNTO_TEST_PYTHON (a Python with pynto installed)"]
fn wrong_token_exits_5() {
    let server = PythonServer::start(
        &["--token-env", "PYNTO_SERVER_TOKEN"],
        &[("PYNTO_SERVER_TOKEN", "right")],
    );
    let addr = server.address.as_str();
    let args = [
        "call",
        addr,
        "modules.math.pi",
        "--token-env",
        "PYNTO_CLIENT_TOKEN",
    ];
    let (_, err) = expect(&pynto(&args, &[("PYNTO_CLIENT_TOKEN", "wrong")], None), 5);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("pynto: ") && err.contains("authentication failed"),
        "{err}"
    );
    let (_, err) = expect(&pynto(&["call", addr, "root"], &[], None), 5);
    assert!(err.contains("authentication failed"), "{err}");
    let (out, _) = expect(&pynto(&args, &[("PYNTO_CLIENT_TOKEN", "right")], None), 0);
    assert_eq!(out, "3.141592653589793\n");
}

#[test]
#[ignore = "needs PYNTO_TEST_PYTHON (a Python with pynto installed)"]
fn refused_exits_4() {
    // A port that a Python server just gave up.
    let address = {
        let server = PythonServer::start(&[], &[]);
        server.address.clone()
    };
    let (_, err) = expect(&pynto(&["call", &address, "root"], &[], None), 4);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("pynto: cannot connect"), "{err}");
    // And a port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    expect(
        &pynto(&["ping", &format!("127.0.0.1:{port}")], &[], None),
        4,
    );
}
