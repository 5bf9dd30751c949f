"""Distributed reference counting: proxies that die release what the peer held for them."""

from __future__ import annotations

import gc
import weakref

import pynto
from helpers import wait_until


def _server_exported(root) -> int:
    exported, _imported = root.stats()
    return exported


def test_100k_proxies_created_and_dropped_leave_nothing_behind(svc):
    root = svc.root
    base_server = _server_exported(root)
    base_imported = svc.stats()["imported"]

    objects = root.objects(100_000)
    samples = []
    count = 0
    for index, proxy in enumerate(objects):
        count += 1
        if index % 997 == 0:
            samples.append(weakref.ref(proxy))
            assert proxy.value == index
    assert count == 100_000
    assert svc.stats()["imported"] > base_imported  # at least the list itself
    assert _server_exported(root) > base_server

    del objects, proxy
    gc.collect()
    assert samples and all(ref() is None for ref in samples)
    assert wait_until(lambda: svc.stats()["imported"] == base_imported, timeout=20), svc.stats()
    assert wait_until(lambda: _server_exported(root) == base_server, timeout=20), root.stats()


def test_proxies_from_many_calls_are_released(svc):
    root = svc.root
    base_server = _server_exported(root)
    base_imported = svc.stats()["imported"]
    for i in range(3000):
        counter = root.new_counter(i)
        assert counter.increment() == i + 1
    del counter
    gc.collect()
    assert wait_until(lambda: _server_exported(root) == base_server, timeout=20), root.stats()
    assert wait_until(lambda: svc.stats()["imported"] == base_imported, timeout=20), svc.stats()


def test_local_objects_lent_to_the_peer_are_released(svc):
    root = svc.root
    base_exported = svc.stats()["exported"]
    callbacks = []
    for i in range(3000):
        def callback(i=i):
            return i

        assert root.call(callback) == i
        if i % 300 == 0:
            callbacks.append(weakref.ref(callback))
    del callback
    # The peer released every callback it was lent: our table is back where it started...
    assert wait_until(lambda: svc.stats()["exported"] == base_exported, timeout=20), svc.stats()
    # ...and nothing of pynto keeps the functions alive any more.
    gc.collect()
    assert all(ref() is None for ref in callbacks)


def test_an_object_kept_by_the_peer_stays_alive_until_released(svc):
    root = svc.root

    class Thing:
        pass

    thing = Thing()
    ref = weakref.ref(thing)
    root.keep(thing)
    del thing
    gc.collect()
    assert ref() is not None  # the peer holds it
    assert root.kept() is ref()
    root.forget()
    assert wait_until(lambda: (gc.collect(), ref() is None)[1], timeout=20)


# --------------------------------------------------------------------------- connections


class _Holder(pynto.Service):
    """A client-side service that keeps its connection, as services often do: a cycle through
    the root object the session serves."""

    def on_connect(self, conn) -> None:
        self.conn = conn


def _drop_and_collect(server, build) -> None:
    """Open a connection to `server` with `build(conn)` making cycles through it, drop every
    reference, collect, and check that the connection object was freed and that the server saw
    the connection end."""
    with pynto.connect(server.address) as observer:
        before = observer.root.disconnects()
        gc.disable()  # the test collects, at the moment it chooses
        try:
            conn = build()
            ref = weakref.ref(conn)
            del conn
            assert ref() is not None, "the cycles should keep the connection until collected"
            gc.collect()
            assert ref() is None, [type(r) for r in gc.get_referrers(ref())]
        finally:
            gc.enable()
        assert wait_until(lambda: observer.root.disconnects() == before + 1, timeout=20)


def test_a_connection_whose_root_was_fetched_is_collected_and_closed(fresh_server):
    def build():
        conn = pynto.connect(fresh_server.address)
        root = conn.root  # cached on the connection: connection -> root proxy -> connection
        counter = root.new_counter(5)
        conn.kept = [counter, root.echo, counter.increment]  # proxies and bound methods
        assert counter.increment() == 6
        return conn

    _drop_and_collect(fresh_server, build)


def test_a_connection_held_by_its_own_service_is_collected_and_closed(fresh_server):
    def build():
        conn = pynto.connect(fresh_server.address, service=_Holder)
        conn.ping()  # no root fetched: the only cycle runs through this side's service
        return conn

    _drop_and_collect(fresh_server, build)


def test_a_connection_held_through_a_pending_reply_is_collected_and_closed(fresh_server):
    def build():
        conn = pynto.connect(fresh_server.address)
        conn.pending = pynto.async_(conn.root.echo)(7)  # AsyncResult -> reply -> connection
        assert conn.pending.value == 7
        conn.waiting = pynto.async_(conn.root.sleep)(0.05)
        conn.waiting.add_callback(lambda result, conn=conn: None)  # callback -> connection
        conn.waiting.wait()
        return conn

    _drop_and_collect(fresh_server, build)
