"""What every benchmarked service does, whatever RPC library exposes it (a mixin)."""

import os

#: The list that S6 iterates.
ITEMS = list(range(10_000))

#: Objects that S9 hands out by reference while they stay alive on the server.
POOL: list = []


class Obj:
    """A small object that crosses by reference."""

    __slots__ = ("i",)

    def __init__(self, i):
        self.i = i


class BenchMixin:
    """The members every benchmark service exposes (the library's Service class comes second)."""

    exposed_value = 42

    def exposed_f(self):
        return None

    def exposed_g(self, a, b, c):
        return None

    def exposed_call(self, cb):
        return cb()

    def exposed_h(self, items):
        return None

    def exposed_echo(self, data):
        return data

    def exposed_put(self, data):
        return len(data)

    def exposed_get(self, n):
        return bytes(n)

    def exposed_items(self):
        return ITEMS

    def exposed_prepare(self, n):
        """Create the pool of S9 on the server, before its baseline is measured."""
        POOL.clear()
        POOL.extend(Obj(i) for i in range(n))
        return len(POOL)

    def exposed_pool(self, start, n):
        return tuple(POOL[start : start + n])

    def exposed_fresh(self, n):
        return tuple(Obj(i) for i in range(n))

    def exposed_pid(self):
        return os.getpid()


def plain_methods():
    """BenchMixin's methods under their plain names (`f` for `exposed_f`), for the peers that
    expose a class's public methods as they are (Pyro5, multiprocessing.managers)."""
    return {
        name[len("exposed_"):]: member
        for name, member in vars(BenchMixin).items()
        if name.startswith("exposed_") and callable(member)
    }
