"""``python -m pynto serve`` logging options and IPv6 hosts; ``python -m pynto shell`` with TLS,
Tab completion and teleport of functions typed into it; teleport from a plain REPL. Every
console is driven through a pseudo-terminal, every server is a real process."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import pytest

import pynto
from helpers import SERVING_PREFIX, TESTS_DIR, ServerProcess, child_env, read_line, wait_until
from terminal import Terminal, python
from test_connect import certificates  # noqa: F401 - the fixture, shared


def _serve(*args: str, merged: bool = False) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pynto", "serve", *args], stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merged else subprocess.PIPE, text=True, env=child_env(),
        cwd=TESTS_DIR)


def _address(proc: subprocess.Popen) -> str:
    line = read_line(proc.stdout, 30)
    assert line.startswith(SERVING_PREFIX), line
    return line.rstrip("\n").rsplit(" on ", 1)[1]


def _stop(proc: subprocess.Popen) -> tuple[str, str]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    return out, err or ""


def test_ipv6_host():
    proc = _serve("--classic", "--host", "::1", "--port", "0")
    try:
        address = _address(proc)
        assert address.startswith("tcp://[::1]:")
        with pynto.connect(address) as conn:
            assert conn.modules.os.getpid() == proc.pid
            assert conn.peer.startswith("tcp://[::1]:")
    finally:
        _stop(proc)


def test_one_start_line_and_connections_logged():
    proc = _serve("--classic", "--port", "0", merged=True)
    try:
        address = _address(proc)
        with pynto.connect(address) as conn:
            conn.eval("1")
    finally:
        out, _ = _stop(proc)
    assert "serving classic on" not in out  # the one start line was read by _address
    assert "accepted a connection from tcp://127.0.0.1:" in out


def test_quiet_hides_connections_and_logfile_takes_the_log(tmp_path):
    proc = _serve("--classic", "--port", "0", "-q")
    try:
        with pynto.connect(_address(proc)) as conn:
            conn.eval("1")
    finally:
        _, err = _stop(proc)
    assert "accepted a connection" not in err
    logfile = tmp_path / "serve.log"
    proc = _serve("--classic", "--port", "0", "--logfile", str(logfile))
    try:
        address = _address(proc)
        with pynto.connect(address) as conn:
            conn.eval("1")
        # Bytes that are not pynto: a refused handshake, logged as a warning.
        with socket.create_connection(("127.0.0.1", int(address.rsplit(":", 1)[1]))) as raw:
            raw.sendall(b"GET / HTTP/1.0\r\n\r\n")
            raw.recv(100)
        assert wait_until(lambda: "refused a connection" in logfile.read_text())
        assert wait_until(lambda: "closed: connection closed: the peer closed" in logfile.read_text())
    finally:
        _, err = _stop(proc)
    log = logfile.read_text()
    assert f"serving classic on {address}" in log
    assert "pynto.connection INFO: accepted a connection from" in log
    assert "pynto.connection WARNING: refused a connection from" in log
    assert err == ""


def test_log_exceptions_level_and_verbose():
    proc = _serve("--classic", "--port", "0", "--log-exceptions", "warning")
    try:
        with pynto.connect(_address(proc)) as conn:
            with pytest.raises(ZeroDivisionError):
                conn.eval("1 / 0")
    finally:
        _, err = _stop(proc)
    assert "pynto.service WARNING: a service raised ZeroDivisionError" in err
    assert "Traceback" in err
    proc = _serve("--classic", "--port", "0")
    try:
        with pynto.connect(_address(proc)) as conn:
            with pytest.raises(ZeroDivisionError):
                conn.eval("1 / 0")
    finally:
        _, err = _stop(proc)
    assert "ZeroDivisionError" not in err  # DEBUG by default: not shown without -v
    proc = _serve("--classic", "--port", "0", "-v")
    try:
        with pynto.connect(_address(proc)) as conn:
            with pytest.raises(ZeroDivisionError):
                conn.eval("1 / 0")
    finally:
        _, err = _stop(proc)
    assert "pynto.service DEBUG: a service raised ZeroDivisionError" in err


def test_shell_over_tls(certificates):  # noqa: F811
    d = certificates
    with ServerProcess("--classic", "--port", "0", "--tls-cert", str(d / "server.pem"),
                       "--tls-key", str(d / "server.key")) as server:
        address = f"tls://127.0.0.1:{server.port}"
        with Terminal(python("-m", "pynto", "shell", address, "--tls-ca", str(d / "ca.pem"))) as term:
            term.expect("classic server")
            term.expect(">>> ")
            term.type_line("modules.os.getpid()")
            term.expect(rf"\b{server.proc.pid}\n")
            term.end_input()
            assert term.wait() == 0
        # Without --tls-ca the system's trust store is used, which lacks the test CA.
        result = subprocess.run(python("-m", "pynto", "shell", address), capture_output=True,
                                text=True, env=child_env(), timeout=60, stdin=subprocess.DEVNULL)
        assert result.returncode == 1
        assert "cannot connect" in result.stderr and "certificate" in result.stderr.lower()


def test_shell_tab_completes_remote_names(classic_server):
    with Terminal(python("-m", "pynto", "shell", classic_server.address)) as term:
        term.expect(">>> ")
        term.send("modules.math.facto\t")
        term.expect("modules.math.factorial")
        term.send("5)\n")
        term.expect(r"\b120\n")
        term.end_input()
        assert term.wait() == 0


def test_shell_teleports_functions_typed_into_it(classic_server):
    with Terminal(python("-m", "pynto", "shell", classic_server.address)) as term:
        term.expect(">>> ")
        term.type_line("def where(x):")
        term.expect(r"\.\.\. ")
        term.type_line("    import os")
        term.type_line("    return os.getpid(), x * 2")
        term.type_line("")
        term.expect(">>> ")
        term.type_line("conn.teleport(where)(21)")
        term.expect(rf"\({classic_server.proc.pid}, 42\)")
        term.type_line("HERE = 1")
        term.type_line("def reads_global():")
        term.type_line("    return HERE")
        term.type_line("")
        term.expect(">>> ")
        start = term.mark()
        term.type_line("conn.teleport(reads_global)")
        term.expect("TypeError: cannot teleport reads_global.*global name HERE")
        assert "NameError" not in term.output[start:]
        term.end_input()
        assert term.wait() == 0


def test_plain_repl_teleports_typed_functions_as_code(classic_server):
    env = child_env(PYTHON_BASIC_REPL="1")
    with Terminal(python("-i", "-q"), env=env) as term:
        term.expect(">>> ")
        term.type_line(f"import pynto; conn = pynto.connect({classic_server.address!r})")
        term.expect(">>> ")
        term.type_line("def cube(x, offset=0):")
        term.expect(r"\.\.\. ")
        term.type_line("    import os")
        term.type_line("    return os.getpid(), x ** 3 + offset")
        term.type_line("")
        term.expect(">>> ")
        term.type_line("conn.teleport(cube)(3, offset=1)")
        term.expect(rf"\({classic_server.proc.pid}, 28\)")
        term.type_line("import math")
        term.type_line("def uses_math(x):")
        term.type_line("    return math.sqrt(x)")
        term.type_line("")
        term.expect(">>> ")
        term.type_line("conn.teleport(uses_math)")
        term.expect("TypeError: cannot teleport uses_math.*global name math")
        term.type_line("conn.close()")
        term.end_input()
        assert term.wait() == 0


def test_teleport_refuses_globals_in_a_module_function(classic):
    with pytest.raises(TypeError, match="global name subprocess"):
        classic.teleport(_reads_a_module_import)
    assert classic.teleport(_recursive)(5) == 120


def _reads_a_module_import():
    return subprocess.run


def _recursive(n):
    return 1 if n <= 1 else n * _recursive(n - 1)
