"""Services, lifecycle hooks, symmetry, and `pynto.Server`."""

from __future__ import annotations

import os
import queue
import threading
import time

import pytest

import pynto
import services
from helpers import in_process_server, wait_until


def test_exposed_prefix_and_decorator(root):
    assert root.echo("hi") == "hi"
    assert root.add(2, 3) == 5
    assert root.double(21) == 42
    assert root.constant == 42
    assert root.function(7) == 7


def test_not_exposed_members_are_denied(root):
    for name in ("secret", "_private", "on_connect", "on_disconnect", "conn", "events",
                 "counter_not_there"):
        with pytest.raises(pynto.AccessDenied) as info:
            getattr(root, name)
        assert name in str(info.value)
        assert isinstance(info.value, AttributeError)


def test_the_exposed_prefix_itself_is_not_needed_but_hidden_stays_hidden(root):
    assert not hasattr(root, "secret")
    assert hasattr(root, "echo")


def test_dir_lists_exposed_names_only(root):
    names = dir(root)
    for name in ("echo", "add", "double", "constant", "function", "call", "nested"):
        assert name in names
    for name in ("secret", "_private", "on_connect", "exposed_echo", "events"):
        assert name not in names


def test_exposed_class_instances(root):
    counter = root.new_counter(10)
    assert pynto.is_proxy(counter)
    assert counter.increment() == 11
    assert counter.increment(by=5) == 16
    assert counter.value == 16
    with pytest.raises(pynto.AccessDenied):
        counter._hidden


def test_plain_objects_expose_nothing_but_data_model(root):
    plain = root.plain()
    assert pynto.is_proxy(plain)
    with pytest.raises(pynto.AccessDenied):
        plain.attr
    with pytest.raises(pynto.AccessDenied):
        plain.method()
    assert "Plain" in repr(plain)


def test_builtin_container_methods_are_allowed(root):
    remote = root.make("list")
    remote.append(4)
    assert remote == [1, 2, 3, 4]
    mapping = root.make("dict")
    assert sorted(mapping.items()) == [("a", 1), ("b", 2)]
    assert mapping.get("zz", "default") == "default"
    remote_set = root.make("set")
    remote_set.add(9)
    assert 9 in remote_set
    data = root.make("bytearray")
    data.extend(b"cd")
    assert data == bytearray(b"abcd")


def test_one_instance_per_connection_for_a_class(service_server):
    with pynto.connect(service_server.address) as first, \
            pynto.connect(service_server.address) as second:
        assert first.root.ident() != second.root.ident()
        first.root.keep("mine")
        assert first.root.kept() == "mine"
        assert second.root.kept() is None


def test_a_shared_instance():
    shared = services.SampleService()
    with in_process_server(shared) as server:
        with pynto.connect(server.address) as first, pynto.connect(server.address) as second:
            assert first.root.ident() == second.root.ident() == id(shared)
            first.root.keep("shared value")
            assert second.root.kept() == "shared value"


class Lifecycle(pynto.Service):
    events: queue.Queue = queue.Queue()

    def on_connect(self, conn):
        # The hook gets the connection to the peer and may call the peer's root.
        Lifecycle.events.put(("connect", conn.root.hello("server"), conn.closed))

    def on_disconnect(self, conn):
        Lifecycle.events.put(("disconnect", None, None))

    def exposed_ping(self):
        return "pong"


def test_on_connect_and_on_disconnect():
    with in_process_server(Lifecycle) as server:
        with pynto.connect(server.address, service=services.ClientService) as conn:
            assert Lifecycle.events.get(timeout=10) == (
                "connect", "hello server from the client", False)
            assert conn.root.ping() == "pong"
            assert Lifecycle.events.empty()
        assert Lifecycle.events.get(timeout=10) == ("disconnect", None, None)


class SlowToConnect(pynto.Service):
    """Takes a while in on_connect; its methods need what on_connect set."""

    def on_connect(self, conn):
        time.sleep(0.3)
        self.peer = conn.peer

    def exposed_hello(self):
        return f"hello, {self.peer}"


def test_on_connect_runs_before_the_first_request_of_a_client_in_this_process():
    # The client's calling thread waits in this process, on the request's chain; that must not
    # make the request a callback served before on_connect (a race seen in docs/services.md).
    with in_process_server(SlowToConnect) as server:
        for _ in range(3):
            with pynto.connect(server.address) as conn:
                assert conn.root.hello().startswith("hello, ")


def test_hooks_of_a_connect_thread_service():
    events = services.SampleService.events
    before = len(events)
    with pynto.connect_thread(services.SampleService) as conn:
        assert conn.root.echo(1) == 1
        assert events[before:] == ["connect"]
    assert wait_until(lambda: events[before:] == ["connect", "disconnect"])


def test_symmetry_server_calls_client_root(service_server):
    with pynto.connect(service_server.address, service=services.ClientService) as conn:
        assert conn.root.ask_peer("hello", "server") == "hello server from the client"
        assert conn.root.ask_peer("pid") == os.getpid()


def test_client_without_service_exposes_nothing(root):
    with pytest.raises((pynto.AccessDenied, pynto.RemoteError)) as info:
        root.ask_peer("hello", "server")
    if isinstance(info.value, pynto.RemoteError):
        assert info.value.remote_type.endswith("AccessDenied")


# --------------------------------------------------------------------------- Server


def assert_refused(address: str) -> None:
    """A closed server refuses connections at once (no handshake that never comes)."""
    start = time.monotonic()
    with pytest.raises(OSError):
        pynto.connect(address)
    assert time.monotonic() - start < 3, "the closed server's port still accepted the connection"


def test_server_port_address_start_close():
    server = pynto.Server(services.SampleService, host="127.0.0.1", port=0)
    try:
        assert isinstance(server.port, int) and server.port > 0
        assert server.address == f"tcp://127.0.0.1:{server.port}"
        server.start()
        with pynto.connect(server.address) as conn:
            assert conn.root.pid() == os.getpid()
    finally:
        server.close()
    assert_refused(server.address)


def test_server_context_manager():
    with pynto.Server(services.SampleService) as server:
        server.start()
        with pynto.connect("127.0.0.1", server.port) as conn:
            assert conn.root.double(2) == 4
    assert_refused(server.address)


def test_server_on_unix_socket(tmp_path):
    path = tmp_path / "s.sock"
    with in_process_server(services.SampleService, unix=str(path)) as server:
        assert server.address == f"unix://{path}"
        with pynto.connect(server.address) as conn:
            assert conn.root.echo("unix") == "unix"


def test_serve_forever_returns_after_close():
    server = pynto.Server(services.SampleService)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pynto.connect(server.address) as conn:
            assert conn.root.echo(3) == 3
    finally:
        server.close()
    thread.join(10)
    assert not thread.is_alive()


def test_close_ends_open_connections():
    server = pynto.Server(services.SampleService)
    server.start()
    conn = pynto.connect(server.address)
    try:
        assert conn.root.echo(1) == 1
        server.close()
        assert wait_until(lambda: conn.closed, timeout=10)
        with pytest.raises(pynto.ConnectionClosed):
            conn.root.echo(2)
    finally:
        conn.close()


def test_many_clients_at_once(service_server):
    results: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(16)

    def client(i: int) -> None:
        try:
            with pynto.connect(service_server.address) as conn:
                barrier.wait(10)
                total = 0
                for j in range(50):
                    total += conn.root.add(i, j)
                results.append(total)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    assert sorted(results) == sorted(50 * i + sum(range(50)) for i in range(16))


def test_policy_keywords_on_server():
    with in_process_server(services.SampleService, allow_public_attrs=True) as server:
        with pynto.connect(server.address) as conn:
            plain = conn.root.plain()
            assert plain.attr == "plain"
            assert plain.method() == "method"
            with pytest.raises(pynto.AccessDenied):
                plain.attr = "changed"
            with pytest.raises(pynto.AccessDenied):
                plain._private_thing  # noqa: B018
            with pytest.raises(pynto.AccessDenied):
                conn.root.secret.__globals__  # noqa: B018


def test_setattr_and_delattr_policy(root):
    counter = root.new_counter(1)
    with pytest.raises(pynto.AccessDenied):
        counter.value = 5
    with pytest.raises(pynto.AccessDenied):
        del counter.value
    assert counter.value == 1


def test_setattr_and_delattr_when_allowed():
    with in_process_server(services.SampleService, allow_setattr=True,
                           allow_delattr=True) as server:
        with pynto.connect(server.address) as conn:
            counter = conn.root.new_counter(1)
            counter.value = 5
            assert counter.value == 5
            assert counter.increment() == 6
            del counter.value
            with pytest.raises(AttributeError):
                counter.value  # noqa: B018
            with pytest.raises(pynto.AccessDenied):
                counter._hidden = 1
            with pytest.raises(pynto.AccessDenied):
                conn.root.plain().attr = 1


def test_on_connect_gets_the_connection(service_server):
    # on_connect stored the connection: the server sees its own side of it.
    with pynto.connect(service_server.address) as conn:
        exported, _imported = conn.root.stats()
        assert exported >= 1  # at least the root it lent us
