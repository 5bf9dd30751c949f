"""Errors: remote exceptions, closed connections, timeouts, access checks, malformed peers."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time

import pytest

import pynto
import services
from helpers import in_process_server, wait_until


def test_error_classes():
    assert issubclass(pynto.ConnectionClosed, ConnectionError)
    assert issubclass(pynto.Timeout, TimeoutError)
    assert issubclass(pynto.AccessDenied, AttributeError)
    assert issubclass(pynto.RemoteError, Exception)
    assert issubclass(pynto.ProtocolError, Exception)


@pytest.mark.parametrize("kind", [ValueError, KeyError, OSError, ZeroDivisionError])
def test_builtin_exceptions_come_back_as_themselves(root, kind):
    with pytest.raises(kind) as info:
        root.raise_builtin(kind.__name__, "boom")
    exc = info.value
    assert exc.args[0] == "boom"
    traceback = exc.remote_traceback
    assert isinstance(traceback, str)
    assert "raise_builtin" in traceback
    assert "services.py" in traceback
    assert kind.__name__ in traceback
    assert str(exc).rstrip().endswith(traceback.rstrip())
    assert "boom" in str(exc)


def test_classic_errors(classic):
    with pytest.raises(KeyError) as info:
        classic.eval("{}['missing']")
    assert info.value.args[0] == "missing"
    assert "missing" in info.value.remote_traceback
    with pytest.raises(AttributeError):
        classic.modules.math.no_such_function  # noqa: B018


def test_other_exceptions_are_remote_errors(root):
    with pytest.raises(pynto.RemoteError) as info:
        root.raise_custom("custom boom")
    exc = info.value
    assert exc.remote_type.endswith("CustomError")
    assert "custom boom" in str(exc)
    assert not isinstance(exc, services.CustomError)


def test_rebuild_exceptions_for_classes_imported_here(service_server):
    with pynto.connect(service_server.address, rebuild_exceptions=True) as conn:
        with pytest.raises(services.CustomError) as info:
            conn.root.raise_custom("rebuilt")
        assert "rebuilt" in str(info.value)
        assert "raise_custom" in info.value.remote_traceback


def test_rebuild_exceptions_never_imports_a_module(service_server):
    assert "remote_only_errors" not in sys.modules
    with pynto.connect(service_server.address, rebuild_exceptions=True) as conn:
        with pytest.raises(pynto.RemoteError) as info:
            conn.root.raise_remote_only()
    assert info.value.remote_type.endswith("RemoteOnlyError")
    assert "remote_only_errors" not in sys.modules


def test_classic_client_rebuilds_importable_exceptions(classic_server):
    with pynto.connect(classic_server.address, rebuild_exceptions=True) as conn:
        with pytest.raises(json.JSONDecodeError):
            conn.modules.json.loads("{")


# --------------------------------------------------------------------------- closed


def test_connection_closed_when_the_server_dies_mid_call(fresh_server):
    conn = pynto.connect(fresh_server.address)
    try:
        root = conn.root
        assert root.echo(1) == 1
        outcomes: list[BaseException | str] = []

        def second_caller() -> None:
            try:
                outcomes.append(root.sleep(60))
            except BaseException as exc:  # noqa: BLE001
                outcomes.append(exc)

        other = threading.Thread(target=second_caller)
        other.start()
        killer = threading.Timer(0.5, fresh_server.kill)
        killer.start()
        start = time.monotonic()
        with pytest.raises(pynto.ConnectionClosed):
            root.sleep(60)
        assert time.monotonic() - start < 10
        other.join(10)
        killer.join()
        assert len(outcomes) == 1 and isinstance(outcomes[0], pynto.ConnectionClosed)
        assert wait_until(lambda: conn.closed)
        with pytest.raises(pynto.ConnectionClosed):
            root.echo(2)
    finally:
        conn.close()


def test_calls_after_close_fail(service_server):
    conn = pynto.connect(service_server.address)
    root = conn.root
    counter = root.new_counter()
    conn.close()
    assert conn.closed
    with pytest.raises(pynto.ConnectionClosed):
        root.echo(1)
    with pytest.raises(pynto.ConnectionClosed):
        counter.increment()


def test_timeout_on_a_service_call(service_server):
    with pynto.connect(service_server.address, timeout=0.3) as conn:
        with pytest.raises(pynto.Timeout):
            conn.root.sleep(3)
        assert conn.root.echo("after") == "after"


# --------------------------------------------------------------------------- access


INTERNALS = [
    "__globals__", "__code__", "__closure__", "__builtins__", "__defaults__", "__kwdefaults__",
    "__func__", "__wrapped__", "__subclasses__", "__bases__", "__mro__", "__base__",
    "__reduce_ex__", "__getstate__", "__init__", "__dict__",
]


def assert_unreachable(get) -> None:
    """`get()` must fail, or give a local object (the proxy's own attribute), never a remote one."""
    try:
        value = get()
    except AttributeError:
        return
    except TypeError:
        return
    assert not pynto.is_proxy(value), f"reached a remote object: {value!r}"
    if isinstance(value, dict):
        assert value.get("IMPORTED_BY_PID") in (None, services.IMPORTED_BY_PID)


def test_interpreter_internals_are_unreachable(root):
    function = root.function
    assert function(5) == 5
    for name in ("__globals__", "__code__", "__closure__", "__builtins__", "__defaults__",
                 "__kwdefaults__", "__wrapped__"):
        with pytest.raises(pynto.AccessDenied):
            getattr(function, name)
    for target in (function, root, root.echo, root.counter(), root.recorder(), root.plain()):
        for name in INTERNALS:
            assert_unreachable(lambda: getattr(target, name))
        assert_unreachable(lambda: vars(target))
        assert not pynto.is_proxy(target.__class__)


def test_cve_2019_16328_pattern(root, server_pid):
    """Reaching an exposed function's globals through a method or comparison path must fail."""
    function = root.function
    paths = [
        lambda: function.__globals__["IMPORTED_BY_PID"],
        lambda: root.echo.__func__.__globals__["IMPORTED_BY_PID"],
        lambda: root.double.__func__.__globals__["IMPORTED_BY_PID"],
        lambda: function.__eq__.__globals__["IMPORTED_BY_PID"],
        lambda: function.__getattribute__("__globals__")["IMPORTED_BY_PID"],
        lambda: getattr(function, "__getattribute__")("__globals__")["IMPORTED_BY_PID"],
        lambda: function.__class__.__dict__["__globals__"].__get__(function)["IMPORTED_BY_PID"],
        lambda: root.__init__.__globals__["IMPORTED_BY_PID"],
        lambda: root.on_connect.__globals__["IMPORTED_BY_PID"],
        lambda: root.counter().increment.__func__.__globals__["IMPORTED_BY_PID"],
        lambda: root.counter().__init__.__globals__["IMPORTED_BY_PID"],
    ]
    for path in paths:
        try:
            value = path()
        except (AttributeError, TypeError, KeyError):
            continue
        assert value != server_pid, "reached the server's globals"
    # The comparison itself works and leaks nothing.
    assert (function == function) is True
    assert function != root.echo


def test_format_strings_cannot_walk_attributes(root):
    remote_str = root.make("mystr")
    for call in (lambda: remote_str.format(root.function),
                 lambda: remote_str.format_map({"f": root.function})):
        with pytest.raises(pynto.AccessDenied):
            call()


def test_frames_unreachable_even_with_allow_public_attrs():
    with in_process_server(services.SampleService, allow_public_attrs=True) as server:
        with pynto.connect(server.address) as conn:
            gen = conn.root.make("generator")
            for name in ("gi_frame", "gi_code", "gi_yieldfrom"):
                with pytest.raises(pynto.AccessDenied):
                    getattr(gen, name)
            assert next(gen) == 0
            function = conn.root.function
            for name in ("__globals__", "__code__", "__closure__"):
                with pytest.raises(pynto.AccessDenied):
                    getattr(function, name)


# --------------------------------------------------------------------------- malformed peers


def _drain_until_closed(sock: socket.socket, timeout: float) -> bool:
    """Read until the peer closes; False if it is still open after `timeout`."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    return False


@pytest.mark.parametrize("garbage", [
    b"\xff" * 64,
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\x00\x00\x00\x10" + b"\xc1" * 16,
])
def test_garbage_sending_client_is_dropped_others_keep_working(service_server, svc, garbage):
    assert svc.root.echo("before") == "before"
    host, port = service_server.address.removeprefix("tcp://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        try:
            raw.sendall(garbage)
        except (ConnectionResetError, BrokenPipeError):
            pass
        assert _drain_until_closed(raw, 10), "the server kept a garbage-sending client"
    assert svc.root.echo("after") == "after"
    with pynto.connect(service_server.address) as other:
        assert other.root.double(4) == 8


def test_client_raises_protocol_error_on_a_garbage_server():
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(20)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve_garbage() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.sendall(b"\xff" * 64)
            stop.wait(20)

    thread = threading.Thread(target=serve_garbage)
    thread.start()
    try:
        with pytest.raises(pynto.ProtocolError):
            conn = pynto.connect("127.0.0.1", port)
            conn.close()
    finally:
        stop.set()
        thread.join(10)
        listener.close()
