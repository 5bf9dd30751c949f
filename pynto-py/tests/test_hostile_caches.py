"""Caches a peer fills cannot grow without bound, and go with the connection.

Against real server processes: a client sends thousands of distinct type descriptions,
megabyte-long attribute names, thousands of distinct names; the server's caches stay within
their bounds (read with ``pynto._host.cache_stats()``), its memory stays flat, and it then
serves a well-behaved client. A class the server described to a peer is not kept alive by
having been described.
"""

from __future__ import annotations

import ctypes.util
from typing import Any, Iterator

import pytest

import pynto
from helpers import ServerProcess, wait_until
from hostile_services import ScriptServer

# The bounds the caches promise (pynto-py/src/caches.rs, pynto/_proxy.py).
MAX_DECISIONS = 4096
MAX_CACHED_NAME = 256
MAX_CONNECTION_CLASSES = 1024
MAX_CONNECTION_CLASS_WEIGHT = 8 << 20
MAX_SHARED_CLASSES = 512


@pytest.fixture
def classic_process() -> Iterator[ServerProcess]:
    """A classic server of this test's own (its memory is measured)."""
    with ServerProcess("--classic", "--port", "0") as server:
        yield server


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def settle(address: str) -> dict[str, int]:
    """Collect garbage on the server, give freed memory back to the system where the C library
    can, and return the server's cache sizes (through a connection of its own, closed after)."""
    with pynto.connect(address) as conn:
        conn.modules.gc.collect()
        if ctypes.util.find_library("c") and conn.eval("__import__('sys').platform") == "linux":
            conn.execute("import ctypes; ctypes.CDLL(None).malloc_trim(0)")
        return dict(conn.modules["pynto._host"].cache_stats())


def serves_normally(address: str) -> None:
    with pynto.connect(address) as conn:
        assert conn.eval("6 * 7") == 42
        assert conn.modules.math.pow(3, 2) == 9
        remote = conn.eval("[1, 2, 3]")
        assert len(remote) == 3 and remote[1] == 2


# Many methods per type, as a peer crafting descriptions would send.
METHODS: dict[str, Any] = {f"method_{k}": (lambda self: None) for k in range(50)}
for _dunder in ("__len__", "__iter__", "__eq__", "__lt__", "__add__", "__getitem__", "__contains__", "__call__"):
    METHODS[_dunder] = lambda self, *args: None


@pytest.mark.timeout(180)
def test_distinct_type_descriptions_stay_bounded(classic_process: ServerProcess) -> None:
    # 3,000 distinct types (past every bound), each described once: before, the shared
    # proxy-class cache kept every class for good (10,000 such types: 66 MB).
    address = classic_process.address
    settle(address)
    baseline = rss_mb(classic_process.proc.pid)
    with pynto.connect(address) as hostile:
        sink = hostile.eval("lambda *objects: len(objects)")
        for chunk in range(30):
            objects = [type(f"T{chunk}_{i}", (), METHODS)() for i in range(100)]
            assert sink(*objects) == 100
        during = settle(address)
        assert during["connection_proxy_classes"] <= MAX_CONNECTION_CLASSES + 50
        assert during["connection_proxy_class_weight"] <= MAX_CONNECTION_CLASS_WEIGHT + (1 << 20)
        assert during["shared_proxy_classes"] <= MAX_SHARED_CLASSES
    assert wait_until(lambda: settle(address)["connection_proxy_classes"] < 50)
    after = settle(address)
    assert after["shared_proxy_classes"] <= MAX_SHARED_CLASSES
    grown = rss_mb(classic_process.proc.pid) - baseline
    assert grown < 30, f"the server grew by {grown:.1f} MB"
    serves_normally(address)


def test_megabyte_names_are_not_cached(classic_process: ServerProcess) -> None:
    # 200 requests for 1 MiB names: before, the access-decision cache kept all of them (the
    # server grew by 407 MB).
    address = classic_process.address
    settle(address)
    baseline = rss_mb(classic_process.proc.pid)
    with pynto.connect(address) as hostile:
        target = hostile.eval("type('Target', (), {})()")
        for i in range(200):
            with pytest.raises(AttributeError):
                getattr(target, f"n{i}" + "x" * (1 << 20))
        stats = settle(address)
        assert stats["access_decision_name_bytes"] <= MAX_DECISIONS * MAX_CACHED_NAME
    grown = rss_mb(classic_process.proc.pid) - baseline
    assert grown < 100, f"the server grew by {grown:.1f} MB"
    serves_normally(address)


def test_megabyte_names_are_not_cached_under_a_policy() -> None:
    # The same on a non-classic server whose policy allows every public name.
    with ScriptServer("CacheService", "--allow-public-attrs") as server:
        with pynto.connect(server.address) as conn:
            root = conn.root
            for i in range(20):
                with pytest.raises(AttributeError):
                    pynto.AsyncResult(root._pynto_async_getattr(None, f"n{i}" + "x" * (1 << 20))).value
            assert root.exposed_class.greeting == "hello"
            assert root.was_reset() is False


def test_distinct_names_stay_bounded(classic_process: ServerProcess) -> None:
    address = classic_process.address
    with pynto.connect(address) as hostile:
        target = hostile.eval("type('Target', (), {})()")
        for i in range(MAX_DECISIONS + 2000):
            with pytest.raises(AttributeError):
                getattr(target, f"name_{i}")
        stats = settle(address)
        assert 0 < stats["access_decisions"] <= MAX_DECISIONS + 100
    serves_normally(address)


def make_secret_class() -> Any:
    """Teleported to the server: a class that lives only in this call, an instance of it, and
    a weak reference to the class."""
    import weakref

    class Secret:
        def reveal(self) -> str:
            return "secret"

        def __len__(self) -> int:
            return 1

    return Secret(), weakref.ref(Secret)


def test_a_described_class_is_not_kept(classic_process: ServerProcess) -> None:
    # The server describes Secret to the client when it hands out an instance (and caches the
    # access decision for `reveal`); once the client lets go of the instance, nothing of pynto
    # may keep the class and the namespace it was defined in alive.
    with pynto.connect(classic_process.address) as conn:
        pair = conn.teleport(make_secret_class)()
        secret = pair[0]
        conn.namespace["class_ref"] = pair[1]  # goes home as the server's own weakref
        assert len(secret) == 1 and secret.reveal() == "secret"
        assert conn.modules["pynto._host"].cache_stats()["described_types"] >= 1
        del secret, pair

        def collected() -> bool:
            conn.modules.gc.collect()
            return conn.eval("class_ref() is None")

        assert wait_until(collected), "the described class is still alive"
    serves_normally(classic_process.address)


def make_fresh_class(i: int) -> Any:
    """Teleported to the server: an instance of a brand-new class; even ones are sized, odd
    ones iterable."""
    if i % 2 == 0:
        cls = type(f"Sized{i}", (), {"__len__": lambda self: i})
    else:
        cls = type(f"Iterable{i}", (), {"__iter__": lambda self: iter([i])})
    return cls()


def test_a_dead_class_address_reused_gets_its_own_description(classic_process: ServerProcess) -> None:
    # Described classes are not kept alive, so a new class can be allocated where a described
    # one was; the peer must get the new class's description, not the dead one's.
    with pynto.connect(classic_process.address) as conn:
        make = conn.teleport(make_fresh_class)
        collect = conn.modules.gc.collect
        for i in range(200):
            obj = make(i)
            if i % 2 == 0:
                assert type(obj).__name__ == f"Sized{i}"
                assert len(obj) == i
            else:
                assert type(obj).__name__ == f"Iterable{i}"
                assert list(obj) == [i]
            del obj
            collect()


def test_a_closed_connection_leaves_no_cache_entries(classic_process: ServerProcess) -> None:
    address = classic_process.address
    empty = settle(address)
    with pynto.connect(address) as peer:
        sink = peer.eval("lambda *objects: None")
        sink(*[type(f"Closing{i}", (), {"method": lambda self: 1})() for i in range(50)])
        target = peer.eval("type('Target', (), {'a': 1})()")
        for i in range(200):
            with pytest.raises(AttributeError):
                getattr(target, f"closing_{i}")
        full = settle(address)
        assert full["connection_proxy_classes"] >= empty["connection_proxy_classes"] + 50
        assert full["access_decisions"] >= empty["access_decisions"] + 200

    def emptied() -> bool:
        now = settle(address)
        return (
            now["connection_proxy_classes"] <= empty["connection_proxy_classes"]
            and now["access_decisions"] <= empty["access_decisions"]
        )

    assert wait_until(emptied), settle(address)
    serves_normally(address)


def test_the_shared_classes_still_serve_a_second_connection(classic_process: ServerProcess) -> None:
    # The cache is bounded, not gone: two connections describing a type identically share
    # one proxy class.
    address = classic_process.address
    with pynto.connect(address) as first, pynto.connect(address) as second:
        a = first.eval("[1]")
        b = second.eval("[2]")
        assert type(a) is type(b)
