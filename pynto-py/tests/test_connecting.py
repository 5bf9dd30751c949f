"""Connecting robustly: timeouts over connect and handshake, Ctrl-C, retries, errors that name
the address, servers that speak TLS or HTTP, refused tokens, TLS options and the system trust
store, logging of connections, and AccessDenied suggestions."""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import subprocess
import sys
import threading
from typing import Iterator

import pytest

import pynto
from helpers import ServerProcess, child_env, read_line, wait_until
from test_connect import certificates  # noqa: F401 - the fixture, shared

TOKEN = "connecting-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def full_accept_queue() -> Iterator[str]:
    """A listener that never accepts, with its accept queue full: a new connect gets no answer."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    try:
        for _ in range(64):
            filler = socket.socket()
            filler.settimeout(0.5)
            try:
                filler.connect(listener.getsockname())
            except (TimeoutError, OSError):
                filler.close()
                break
            fillers.append(filler)
        else:
            pytest.fail("the accept queue never filled")
        host, port = listener.getsockname()
        yield f"tcp://{host}:{port}"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


@contextlib.contextmanager
def silent_listener() -> Iterator[str]:
    """A listener that never accepts: connections are made, no Hello ever comes back."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        host, port = listener.getsockname()
        yield f"tcp://{host}:{port}"


def test_refused_names_the_address_and_keeps_errno():
    port = _free_port()
    with pytest.raises(ConnectionRefusedError) as info:
        pynto.connect("127.0.0.1", port)
    assert info.value.errno == 111
    assert f"tcp://127.0.0.1:{port}" in str(info.value)


def test_missing_unix_socket_names_the_path(tmp_path):
    path = tmp_path / "nobody-listens.sock"
    with pytest.raises(FileNotFoundError, match=f"unix://{path}"):
        pynto.connect(f"unix://{path}")


def test_timeout_bounds_connect_when_the_accept_queue_is_full():
    with full_accept_queue() as address:
        with pytest.raises(TimeoutError, match=address):
            pynto.connect(address, timeout=1)


def test_timeout_bounds_the_handshake():
    with silent_listener() as address:
        with pytest.raises(TimeoutError, match=f"{address}.*Hello"):
            pynto.connect(address, timeout=1)


@pytest.mark.parametrize("stalls", ["full_accept_queue", "silent_listener"])
def test_ctrl_c_interrupts_a_connect_that_hangs(stalls):
    # In the dial (a full accept queue) and in the handshake (no Hello comes).
    script = (
        "import socket, sys, pynto\n"
        f"from test_connecting import {stalls}\n"
        f"with {stalls}() as address:\n"
        "    print('READY', flush=True)\n"
        "    try:\n"
        "        pynto.connect(address)\n"
        "    except KeyboardInterrupt:\n"
        "        print('INTERRUPTED', flush=True)\n"
        "        sys.exit(3)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            env=child_env())
    try:
        assert read_line(proc.stdout, 30) == "READY\n"
        threading.Event().wait(0.5)  # let it start connecting
        proc.send_signal(signal.SIGINT)
        assert read_line(proc.stdout, 20) == "INTERRUPTED\n"
        assert proc.wait(20) == 3
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def test_retries_wait_for_a_server_that_is_starting(caplog):
    port = _free_port()
    with pytest.raises(ConnectionRefusedError):
        pynto.connect("127.0.0.1", port)
    caplog.set_level(logging.INFO, logger="pynto.connection")
    server = subprocess.Popen(
        [sys.executable, "-m", "pynto", "serve", "--classic", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=child_env())
    try:
        with pynto.connect("127.0.0.1", port, retries=50, retry_delay=0.05) as conn:
            assert conn.modules.os.getpid() == server.pid
        assert any("try 2 of 51" in r.getMessage() for r in caplog.records)
    finally:
        server.terminate()
        server.wait(10)


def test_retries_give_up_with_the_last_error():
    port = _free_port()
    with pytest.raises(ConnectionRefusedError, match=str(port)):
        pynto.connect("127.0.0.1", port, retries=2, retry_delay=0.01)
    with pytest.raises(ValueError):
        pynto.connect("127.0.0.1", port, retries=-1)


@pytest.fixture(scope="module")
def token_server() -> Iterator[ServerProcess]:
    with ServerProcess("--classic", "--port", "0", "--token-env", "PYNTO_TEST_TOKEN",
                       env=child_env(PYNTO_TEST_TOKEN=TOKEN)) as server:
        yield server


def test_a_refused_token_is_an_authentication_error(token_server, caplog):
    caplog.set_level(logging.INFO, logger="pynto.connection")
    assert issubclass(pynto.AuthenticationError, pynto.ProtocolError)
    with pytest.raises(pynto.AuthenticationError, match="wrong token"):
        pynto.connect(token_server.address, token="not-it", retries=3, retry_delay=0.01)
    # Not retried: a wrong token stays wrong.
    assert not any("try 2" in r.getMessage() for r in caplog.records)
    with pytest.raises(pynto.AuthenticationError, match="a token is required"):
        pynto.connect(token_server.address)
    with pynto.connect(token_server.address, token=TOKEN) as conn:
        assert conn.eval("6 * 7") == 42


def test_a_plain_client_on_a_tls_port_is_told_so(certificates):  # noqa: F811
    d = certificates
    with ServerProcess("--classic", "--port", "0", "--tls-cert", str(d / "server.pem"),
                       "--tls-key", str(d / "server.key")) as server:
        port = server.port
        with pytest.raises(pynto.ProtocolError, match=f"answered with TLS.*tls://127.0.0.1:{port}"):
            pynto.connect(f"tcp://127.0.0.1:{port}", timeout=10)
        with pynto.connect(f"tls://127.0.0.1:{port}", tls=pynto.TLS(ca=d / "ca.pem")) as conn:
            assert conn.eval("1 + 1") == 2


def test_a_pynto_client_on_an_http_server_is_told_so():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def answer() -> None:
        peer, _ = listener.accept()
        with peer:
            peer.recv(65536)
            peer.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                         b"Connection: close\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        host, port = listener.getsockname()
        with pytest.raises(pynto.ProtocolError, match=f"tcp://{host}:{port} is an HTTP server"):
            pynto.connect(host, port, timeout=10)
    finally:
        thread.join(10)
        listener.close()


def test_tls_options_need_a_tls_address(classic_server):
    with pytest.raises(ValueError, match="tls://"):
        pynto.connect(classic_server.address, tls=pynto.TLS(ca="ca.pem"))


def test_tls_uses_the_system_trust_store_by_default(certificates, monkeypatch):  # noqa: F811
    d = certificates
    with ServerProcess("--classic", "--port", "0", "--tls-cert", str(d / "server.pem"),
                       "--tls-key", str(d / "server.key")) as server:
        address = f"tls://127.0.0.1:{server.port}"
        # The test CA is not one the system trusts...
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        with pytest.raises(ConnectionError, match="certificate|UnknownIssuer"):
            pynto.connect(address, timeout=10)
        # ...until the system's trust store (here through OpenSSL's SSL_CERT_FILE) has it.
        monkeypatch.setenv("SSL_CERT_FILE", str(d / "ca.pem"))
        for tls in (None, pynto.TLS()):
            with pynto.connect(address, tls=tls, timeout=10) as conn:
                assert conn.modules.os.getpid() == server.proc.pid


def test_connections_are_logged_with_the_reason_they_closed(classic_server, caplog):
    caplog.set_level(logging.INFO, logger="pynto.connection")
    conn = pynto.connect(classic_server.address)
    conn.close()
    messages = lambda: [r.getMessage() for r in caplog.records]  # noqa: E731
    assert f"connected to {classic_server.address}" in messages()
    assert wait_until(lambda: any("closed: " in m and "this side" in m for m in messages()))


def test_access_denied_suggests_close_exposed_names(svc):
    with pytest.raises(pynto.AccessDenied, match="did you mean 'echo'"):
        svc.root.ech
    with pytest.raises(pynto.AccessDenied, match="is not exposed"):
        svc.root.zzzzzz
    assert svc.root.echo(5) == 5
