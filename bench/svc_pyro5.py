"""The Pyro5 benchmark service and server (run by bench/server.py with target/bench-venv).

Settings a Pyro5 user would pick for speed, on both ends: the `marshal` serializer (bytes
cross as bytes; the default `serpent` would base64 them), TCP_NODELAY, and a thread pool large
enough for S7's 100 idle connections plus the clients (the default, 80, would turn the rest
away). The service is one instance shared by every connection, like the others'.
"""

import threading

import Pyro5.api

from svc_common import BenchMixin, plain_methods


def configure():
    """The settings both the server and the clients use."""
    Pyro5.api.config.SERIALIZER = "marshal"
    Pyro5.api.config.SOCK_NODELAY = True
    Pyro5.api.config.THREADPOOL_SIZE = 400


_local = threading.local()


def _call(self, cb):
    """S4: call the client back. `cb` arrives as a proxy to the client's daemon; Pyro5 would
    connect it anew for every call, so each server thread keeps one per callback URI."""
    cache = getattr(_local, "proxies", None)
    if cache is None:
        cache = _local.proxies = {}
    proxy = cache.get(cb._pyroUri)
    if proxy is None:
        proxy = cache[cb._pyroUri] = cb
    else:
        cb._pyroRelease()
    return proxy.call()


Bench = type("Bench", (), {**plain_methods(), "call": _call,
                           "value": property(lambda self: BenchMixin.exposed_value)})
Bench = Pyro5.api.behavior(instance_mode="single")(Pyro5.api.expose(Bench))


def serve(port, ready):
    configure()
    daemon = Pyro5.api.Daemon(host="127.0.0.1", port=port)
    daemon.register(Bench, "bench")
    ready(daemon.locationStr.rsplit(":", 1)[1])
    daemon.requestLoop()
