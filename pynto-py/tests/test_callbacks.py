"""Callbacks both ways, on the right threads, without any thread started by the user."""

from __future__ import annotations

import io
import threading

import pytest

import pynto


def test_server_calls_back_while_the_client_waits(root):
    seen = []

    def callback(a, b=None):
        seen.append(threading.get_ident())
        return (a, b, "from the client")

    assert root.call(callback, 1, b=2) == (1, 2, "from the client")
    # The callback ran on the thread that was blocked in root.call, like local recursion.
    assert seen == [threading.get_ident()]


def test_callback_exception_travels_through_both_sides(root):
    def callback():
        raise ValueError("raised by the client")

    with pytest.raises(ValueError, match="raised by the client"):
        root.call(callback)
    assert root.echo("still fine") == "still fine"


def test_idle_client_receives_a_callback_from_a_server_thread(root):
    received = []
    done = threading.Event()

    def on_event(value):
        received.append((value, threading.get_ident()))
        done.set()

    root.call_later(on_event, "event", 0.1)
    # No thread of ours: the main thread just waits and pynto delivers the call.
    assert done.wait(10), "callback never arrived"
    assert received[0][0] == "event"
    assert received[0][1] != threading.get_ident()


def test_many_idle_callbacks(root):
    received = []
    lock = threading.Lock()
    done = threading.Event()

    def on_event(value):
        with lock:
            received.append(value)
            if len(received) == 20:
                done.set()

    for i in range(20):
        root.call_later(on_event, i, 0.01)
    assert done.wait(15)
    assert sorted(received) == list(range(20))


def test_nested_callbacks_stay_on_the_waiting_thread(root):
    idents = []

    def ping(depth):
        idents.append(threading.get_ident())
        return root.nested(ping, depth - 1)

    server_thread = root.nested(ping, 30)
    assert isinstance(server_thread, int)
    assert len(idents) == 30
    assert set(idents) == {threading.get_ident()}


def test_four_threads_holding_rlocks_across_calls_with_callbacks(root):
    """Each thread holds its own RLock across a call whose callback takes that lock.

    A callback served on any thread but the caller's would block on the lock (and fail
    here after the acquire timeout) instead of re-entering it.
    """
    errors: list[BaseException] = []
    counts = [0] * 4

    def worker(index: int) -> None:
        lock = threading.RLock()
        me = threading.get_ident()

        def callback(i):
            if threading.get_ident() != me:
                raise AssertionError("callback on the wrong thread")
            if not lock.acquire(timeout=5):
                raise AssertionError("callback could not take the caller's RLock")
            try:
                counts[index] += 1
                if i % 10 == 0:
                    # A nested round trip from inside the callback.
                    assert root.echo(i) == i
                return i * 2
            finally:
                lock.release()

        try:
            for i in range(100):
                with lock:
                    assert root.call(callback, i) == i * 2
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(40)
    assert not any(thread.is_alive() for thread in threads), "deadlock"
    assert not errors, errors
    assert counts == [100] * 4


def test_local_file_and_iterator_used_by_the_remote(classic_server):
    # The client decides what it exposes: its file's `write` needs allow_public_attrs.
    with pynto.connect(classic_server.address, allow_public_attrs=True) as conn:
        buffer = io.StringIO()
        conn.builtins.print("hello", "file", sep="-", file=buffer)
        assert buffer.getvalue() == "hello-file\n"

        def numbers():
            yield from range(5)

        assert conn.builtins.sum(numbers()) == 10
        assert conn.builtins.sorted(iter([3, 1, 2])) == [1, 2, 3]


def test_client_policy_protects_the_client(classic):
    buffer = io.StringIO()
    with pytest.raises(pynto.AccessDenied):
        classic.builtins.print("hello", file=buffer)
    assert buffer.getvalue() == ""
    # Iteration is a data-model operation: always allowed.
    assert classic.builtins.sum(iter([1, 2, 3])) == 6


def test_client_service_serves_calls_from_the_server(service_server):
    import services

    with pynto.connect(service_server.address, service=services.ClientService) as conn:
        results = [conn.root.ask_peer("hello", str(i)) for i in range(5)]
    assert results == [f"hello {i} from the client" for i in range(5)]


def test_callbacks_from_the_server_to_a_classic_client(service_server):
    # Both sides exposing everything: the server can drive the client.
    with pynto.connect(service_server.address, service=pynto.ClassicService) as conn:
        assert conn.root.ask_peer("eval", "6 * 7") == 42
