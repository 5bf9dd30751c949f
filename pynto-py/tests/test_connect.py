"""Connecting: every address form, tokens, timeouts, connect_thread and connect_subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

import pynto
import services
from helpers import ServerProcess, child_env, wait_until

TOKEN = "s3cret-token"


def _host_port(address: str) -> tuple[str, int]:
    host, port = address.removeprefix("tcp://").rsplit(":", 1)
    return host, int(port)


def test_address_is_tcp_with_the_picked_port(classic_server):
    host, port = _host_port(classic_server.address)
    assert classic_server.address.startswith("tcp://")
    assert host == "127.0.0.1"
    assert 0 < port < 65536


@pytest.mark.parametrize("form", ["tcp://host:port", "host:port", "host, port"])
def test_connect_forms(classic_server, form):
    host, port = _host_port(classic_server.address)
    if form == "tcp://host:port":
        conn = pynto.connect(f"tcp://{host}:{port}")
    elif form == "host:port":
        conn = pynto.connect(f"{host}:{port}")
    else:
        conn = pynto.connect(host, port)
    with conn:
        assert conn.modules.math.pow(3, 2) == 9.0
        assert conn.modules.os.getpid() == classic_server.proc.pid
    assert conn.closed


def test_connect_localhost_name(classic_server):
    _, port = _host_port(classic_server.address)
    with pynto.connect("localhost", port) as conn:
        assert conn.eval("1 + 1") == 2


def test_unix_socket(unix_server, tmp_path_factory):
    assert unix_server.address.startswith("unix:///")
    assert unix_server.line == f"pynto: serving classic on {unix_server.address}"
    path = unix_server.address.removeprefix("unix://")
    assert os.path.exists(path)
    with pynto.connect(unix_server.address) as conn:
        assert conn.modules.os.getpid() == unix_server.proc.pid
        assert conn.modules["os.path"].join("a", "b") == os.path.join("a", "b")


def test_connection_basics(classic):
    assert not classic.closed
    elapsed = classic.ping()
    assert isinstance(elapsed, float)
    assert 0 < elapsed < 5
    stats = classic.stats()
    assert isinstance(stats["exported"], int)
    assert isinstance(stats["imported"], int)


def test_close_is_idempotent_and_context_manager_closes(classic_server):
    with pynto.connect(classic_server.address) as conn:
        assert not conn.closed
    assert conn.closed
    conn.close()
    assert conn.closed


def test_connection_refused():
    with ServerProcess("--classic", "--port", "0") as server:
        address = server.address
    with pytest.raises(OSError):
        pynto.connect(address)


# --------------------------------------------------------------------------- tokens


@pytest.fixture(scope="module")
def token_server():
    with ServerProcess("--classic", "--port", "0", "--token-env", "PYNTO_TEST_TOKEN",
                       env=child_env(PYNTO_TEST_TOKEN=TOKEN)) as server:
        yield server


def test_right_token(token_server):
    with pynto.connect(token_server.address, token=TOKEN) as conn:
        assert conn.eval("6 * 7") == 42


@pytest.mark.parametrize("token", ["wrong", None, TOKEN + "x"])
def test_wrong_or_missing_token_is_refused_before_anything_is_reachable(token_server, token):
    with pytest.raises(Exception) as info:
        with pynto.connect(token_server.address, token=token) as conn:
            conn.eval("6 * 7")
    error = info.value
    assert isinstance(error, (ConnectionError, pynto.ProtocolError, PermissionError)), repr(error)
    assert any(word in str(error).lower() for word in ("token", "auth")), str(error)


# --------------------------------------------------------------------------- timeout


def test_timeout(classic_server):
    with pynto.connect(classic_server.address, timeout=0.5) as conn:
        start = time.monotonic()
        with pytest.raises(pynto.Timeout):
            conn.modules.time.sleep(5)
        assert time.monotonic() - start < 4
        # The connection stays usable after a call timed out.
        assert conn.modules.math.pow(2, 3) == 8.0


def test_timeout_is_a_timeout_error():
    assert issubclass(pynto.Timeout, TimeoutError)


def test_no_timeout_by_default(classic):
    assert classic.modules.time.sleep(0.3) is None


# --------------------------------------------------------------------------- connect_thread


def test_connect_thread_default_is_classic_in_this_process():
    with pynto.connect_thread() as conn:
        assert conn.modules.os.getpid() == os.getpid()
        assert conn.eval("21 * 2") == 42
        # Same process, but still a connection: a list built there is a proxy here.
        remote = conn.eval("[1, 2]")
        assert pynto.is_proxy(remote)
        assert remote == [1, 2]


def test_connect_thread_with_a_service():
    with pynto.connect_thread(services.SampleService) as conn:
        assert conn.root.echo("x") == "x"
        assert conn.root.double(4) == 8
        with pytest.raises(pynto.AccessDenied):
            conn.root.secret()


# --------------------------------------------------------------------------- connect_subprocess


def test_connect_subprocess_default_child():
    conn = pynto.connect_subprocess()
    try:
        assert isinstance(conn.process, subprocess.Popen)
        assert conn.modules.os.getpid() == conn.process.pid != os.getpid()
        assert conn.modules.sys.executable == sys.executable
        assert conn.modules.math.pow(3, 2) == 9.0
    finally:
        conn.close()
    assert conn.closed
    assert wait_until(lambda: conn.process.poll() is not None, timeout=10)


def test_connect_subprocess_child_may_print(monkeypatch):
    # Standard output carries the protocol; a print on the remote side must not break it.
    with pynto.connect_subprocess() as conn:
        conn.builtins.print("a line printed by the child")
        conn.execute("import sys; sys.stdout.write('more\\n'); sys.stdout.flush()")
        assert conn.modules.math.pow(3, 2) == 9.0


def test_connect_subprocess_with_argv_and_service(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", child_env()["PYTHONPATH"])
    argv = [sys.executable, "-m", "pynto", "serve", "--service", "services:SampleService",
            "--stdio"]
    with pynto.connect_subprocess(argv) as conn:
        assert conn.root.pid() == conn.process.pid
        assert conn.root.add(2, b=3) == 5
    assert wait_until(lambda: conn.process.poll() is not None, timeout=10)


def test_connect_subprocess_with_token(monkeypatch):
    monkeypatch.setenv("PYNTO_TEST_TOKEN", TOKEN)
    argv = [sys.executable, "-m", "pynto", "serve", "--classic", "--stdio",
            "--token-env", "PYNTO_TEST_TOKEN"]
    with pynto.connect_subprocess(argv, token=TOKEN) as conn:
        assert conn.eval("2 ** 10") == 1024


# --------------------------------------------------------------------------- TLS


def _openssl(*args: str, cwd) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1 / localhost and a client certificate."""
    if shutil.which("openssl") is None:
        pytest.fail("the TLS tests need the openssl command (.ci/run installs it)")
    d = tmp_path_factory.mktemp("tls")
    (d / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    (d / "client.ext").write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=pynto test CA",
             cwd=d)
    for name in ("server", "client"):
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.pem", "-days", "2",
                 "-extfile", f"{name}.ext", cwd=d)
    return d


def test_tls_connection(certificates):
    d = certificates
    with ServerProcess("--classic", "--port", "0", "--tls-cert", str(d / "server.pem"),
                       "--tls-key", str(d / "server.key")) as server:
        host, port = _host_port(server.address.replace("tls://", "tcp://"))
        tls = pynto.TLS(ca=str(d / "ca.pem"))
        with pynto.connect(f"tls://127.0.0.1:{port}", tls=tls) as conn:
            assert conn.modules.os.getpid() == server.proc.pid
        # A client that does not speak TLS gets nothing.
        with pytest.raises((ConnectionError, pynto.ProtocolError, OSError)):
            with pynto.connect(f"127.0.0.1:{port}") as conn:
                conn.eval("1")


def test_tls_with_client_certificates(certificates):
    d = certificates
    with ServerProcess("--classic", "--port", "0", "--tls-cert", str(d / "server.pem"),
                       "--tls-key", str(d / "server.key"), "--tls-ca", str(d / "ca.pem")) as server:
        _, port = _host_port(server.address.replace("tls://", "tcp://"))
        address = f"tls://127.0.0.1:{port}"
        client_tls = pynto.TLS(ca=str(d / "ca.pem"), cert=str(d / "client.pem"),
                               key=str(d / "client.key"))
        with pynto.connect(address, tls=client_tls) as conn:
            assert conn.eval("6 * 7") == 42
        with pytest.raises((ConnectionError, pynto.ProtocolError, OSError)):
            with pynto.connect(address, tls=pynto.TLS(ca=str(d / "ca.pem"))) as conn:
                conn.eval("1")
