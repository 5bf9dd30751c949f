//! The `pynto` binary driven as a user would, against a Rust server in this test process (a
//! `NativeHost` object on a real TCP socket), so these run without Python: results, JSON,
//! scripted sessions, ping, bench, and every exit code.

mod common;

use std::net::TcpListener;

use common::*;

#[test]
fn call_prints_results_as_python_reprs() {
    let addr = rust_server(None);
    let (out, _) = expect(&pynto(&["call", &addr, "root.add(2, 3)"]), 0);
    assert_eq!(out, "5\n");
    let (out, _) = expect(
        &pynto(&["call", &addr, "x = root.echo([1, 'a', None, -2.5]); x[1:]"]),
        0,
    );
    assert_eq!(out, "['a', None, -2.5]\n");
    let (out, _) = expect(&pynto(&["call", &addr, "root"]), 0);
    assert_eq!(out, "<Calc (Rust object)>\n");
    let (out, _) = expect(&pynto(&["call", &addr, "dir(root)"]), 0);
    assert_eq!(out, "['add', 'echo', 'hangup', 'sleep']\n");
}

#[test]
fn call_json() {
    let addr = rust_server(None);
    let (out, _) = expect(
        &pynto(&[
            "call",
            &addr,
            "root.echo({'k': [1, 'a\"b', None, True], 'b': b'hi'})",
            "--json",
        ]),
        0,
    );
    assert_eq!(
        out,
        "{\"k\": [1, \"a\\\"b\", null, true], \"b\": {\"bytes_b64\": \"aGk=\"}}\n"
    );
    let (out, _) = expect(&pynto(&["call", &addr, "root", "--json"]), 0);
    assert_eq!(
        out,
        "{\"ref\": \"<Calc (Rust object)>\", \"type\": \"rust.Calc\"}\n"
    );
}

#[test]
fn call_reports_remote_errors_with_exit_1() {
    let addr = rust_server(None);
    let (_, err) = expect(&pynto(&["call", &addr, "root.add('a', 1)"]), 1);
    one_line(&err, "pynto: TypeError: add takes two ints");
    let (out, err) = expect(&pynto(&["call", &addr, "root.nope()", "--json"]), 1);
    assert!(err.contains("AttributeError"), "{err}");
    assert!(
        out.starts_with("{\"error\": {\"type\": \"AttributeError\", \"message\": "),
        "{out}"
    );
    let (_, err) = expect(&pynto(&["call", &addr, "undefined_name"]), 1);
    one_line(&err, "NameError: name 'undefined_name' is not defined");
    let (_, err) = expect(&pynto(&["call", &addr, "modules.math"]), 1);
    one_line(&err, "only available on classic servers");
    let (_, err) = expect(&pynto(&["call", &addr, "builtins.len([])"]), 1);
    one_line(
        &err,
        "NameError: 'builtins' is only available on classic servers",
    );
}

#[test]
fn scripted_session_continues_after_errors() {
    let addr = rust_server(None);
    let script = "x = root.add(1, 2)\nx\nroot.add('bad', 1)\nroot.add(x, 10)\nf(\n# comment\n\nhelp\nroot.echo(None)\nexit\nroot.add(5, 5)\n";
    let out = pynto_with(&["connect", &addr], &[], Some(script));
    // The session goes on after a failed line, and exits with 1 at the end because of it.
    let (stdout, stderr) = expect(&out, 1);
    let results: Vec<&str> = stdout.lines().filter(|l| !l.starts_with(' ')).collect();
    assert_eq!(results[0], "3");
    assert_eq!(results[1], "13");
    assert!(stdout.contains("Statements"), "help was printed: {stdout}");
    assert!(
        !stdout.lines().any(|l| l == "10"),
        "nothing runs after exit: {stdout}"
    );
    assert!(
        !stdout.lines().any(|l| l == "None"),
        "None results are not printed: {stdout}"
    );
    let errors: Vec<&str> = stderr.lines().collect();
    assert_eq!(errors.len(), 3, "{stderr}");
    assert_eq!(errors[0], "TypeError: add takes two ints");
    assert!(
        errors[1].starts_with("syntax error at column 3"),
        "{stderr}"
    );
    assert_eq!(errors[2], "pynto: 2 of 10 lines failed");
    // A script without failures exits with 0.
    let out = pynto_with(
        &["connect", &addr],
        &[],
        Some(
            "root.add(1, 2)
",
        ),
    );
    assert_eq!(
        expect(&out, 0).0,
        "3
"
    );
}

#[test]
fn ping_and_bench() {
    let addr = rust_server(None);
    let (out, _) = expect(&pynto(&["ping", &addr, "-n", "3"]), 0);
    assert!(
        out.starts_with("3 round trips to tcp://127.0.0.1:"),
        "{out}"
    );
    for word in ["min", "median", "mean", "p99", "max"] {
        assert!(out.contains(word), "{word}: {out}");
    }
    let (out, _) = expect(&pynto(&["bench", &addr, "--seconds", "0.2"]), 0);
    assert!(out.contains("ping (null round trip)"), "{out}");
    assert!(out.contains("skipped: not a classic server"), "{out}");
    let (_, err) = expect(&pynto(&["ping", &addr, "-n", "0"]), 2);
    one_line(&err, "at least 1");
}

#[test]
fn tokens() {
    let addr = rust_server(Some("sesame"));
    let (_, err) = expect(&pynto(&["call", &addr, "root.add(1, 1)"]), 5);
    one_line(&err, "authentication failed");
    let out = pynto_with(
        &["call", &addr, "root.add(1, 1)", "--token-env", "PYNTO_T"],
        &[("PYNTO_T", "wrong")],
        None,
    );
    let (_, err) = expect(&out, 5);
    one_line(&err, "authentication failed: wrong token");
    let out = pynto_with(
        &["call", &addr, "root.add(1, 1)", "--token-env", "PYNTO_T"],
        &[("PYNTO_T", "sesame")],
        None,
    );
    assert_eq!(expect(&out, 0).0, "2\n");
    let out = pynto_with(
        &["ping", &addr, "--token-env", "PYNTO_UNSET_FOR_TEST"],
        &[],
        None,
    );
    let (_, err) = expect(&out, 2);
    one_line(&err, "PYNTO_UNSET_FOR_TEST is not set");
}

#[test]
fn refused_connection_exits_4() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let (_, err) = expect(&pynto(&["call", &addr, "root"]), 4);
    one_line(&err, "cannot connect to tcp://127.0.0.1:");
    let (_, err) = expect(&pynto(&["ping", "unix:///nonexistent/pynto.sock"]), 4);
    one_line(&err, "cannot connect");
}

#[test]
fn bad_addresses_exit_3() {
    for addr in ["localhost", "ftp://h:1", "tcp://h:99999", ""] {
        let (_, err) = expect(&pynto(&["call", addr, "root"]), 3);
        one_line(&err, "bad address");
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["frobnicate"][..],
        &["call"],
        &["call", "127.0.0.1:1"],
        &["call", "127.0.0.1:1", "f("],
        &["call", "127.0.0.1:1", ";"],
        &["ping", "127.0.0.1:1", "-n", "many"],
        &["call", "tls://127.0.0.1:1", "root"],
        &[
            "call",
            "127.0.0.1:1",
            "root",
            "--tls-ca",
            "/nonexistent.pem",
        ],
    ] {
        let (_, err) = expect(&pynto(args), 2);
        one_line(&err, "pynto: ");
    }
    let (_, err) = expect(&pynto(&[]), 2);
    assert!(err.contains("Usage"), "{err}");
    expect(&pynto(&["--help"]), 0);
}

#[test]
fn lost_connection_exits_7() {
    let addr = rust_server(None);
    let (_, err) = expect(&pynto(&["call", &addr, "root.hangup()"]), 7);
    one_line(&err, "connection lost");
    let out = pynto_with(
        &["connect", &addr],
        &[],
        Some("root.hangup()\nroot.add(1, 2)\n"),
    );
    let (stdout, stderr) = expect(&out, 7);
    assert_eq!(stdout, "");
    one_line(&stderr, "connection lost");
}
