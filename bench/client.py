"""One benchmark client process: `python bench/client.py IMPL TASK --port P [options]`.

IMPL is pynto, rpyc, pyro5, mpm (multiprocessing.managers) or pyfloor (the pure-Python socket
floor). Prints one JSON object per line
on stdout: `{"metric": ..., "samples_ns": [...]}` (per-operation times) or
`{"metric": ..., "value": ..., "unit": ...}`. Every loop is bounded in count and in time.
Latencies are timed with time.perf_counter_ns around batches of --batch operations, and each
sample is the batch's mean, so the timer's own cost stays out of the figures.
"""

import argparse
import gc
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

ns = time.perf_counter_ns


def emit(metric, **fields):
    print(json.dumps({"metric": metric, **fields}), flush=True)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


# ---------------------------------------------------------------------------------------------
# the libraries, behind one face


class Pynto:
    def __init__(self):
        import pynto

        self.lib = pynto

    def connect(self, port):
        return self.lib.connect(f"tcp://127.0.0.1:{port}")

    def obtain(self, proxy):
        return self.lib.obtain(proxy)

    def ping(self, conn):
        conn.ping()


class Rpyc:
    def __init__(self):
        import rpyc
        from rpyc.utils.classic import obtain

        self.lib = rpyc
        self._obtain = obtain

    def connect(self, port):
        return self.lib.connect("127.0.0.1", port)

    def obtain(self, proxy):
        return self._obtain(proxy)

    def ping(self, conn):
        conn.ping()


class Pyro5:
    """Pyro5 5.x with the settings of bench/svc_pyro5.py; `conn.root` is a Proxy."""

    def __init__(self):
        import Pyro5.api
        import svc_pyro5

        svc_pyro5.configure()
        self.lib = Pyro5.api
        self._daemon = None

    def connect(self, port):
        def close(proxy):
            proxy._pyroClaimOwnership()  # a proxy belongs to the thread that made it
            proxy._pyroRelease()

        return _Conn(self.lib.Proxy(f"PYRO:bench@127.0.0.1:{port}"), close)

    def obtain(self, value):
        return value  # Pyro5 returns lists by value already

    def callback(self, fn):
        """An object the server can call back (`cb.call()`), served by a daemon thread here."""
        import threading

        if self._daemon is None:
            self._daemon = self.lib.Daemon(host="127.0.0.1")
            threading.Thread(target=self._daemon.requestLoop, daemon=True).start()

        @self.lib.expose
        class Callback:
            def call(self):
                return fn()

        return self.lib.Proxy(self._daemon.register(Callback()))


class Mpm:
    """multiprocessing.managers: `conn.root` is an AutoProxy to the server's shared object."""

    def __init__(self):
        import svc_mp

        self.svc = svc_mp
        self.lib = None

    def connect(self, port):
        manager = self.svc.Manager(address=("127.0.0.1", port), authkey=self.svc.AUTHKEY)
        manager.connect()
        return _Conn(manager.root(), lambda p: p._close() if hasattr(p, "_close") else None)

    def obtain(self, value):
        return value  # AutoProxy methods return values


class _Conn:
    """A peer's connection face: `.root` and `.close()`."""

    def __init__(self, root, close):
        self.root = root
        self._close = close

    def close(self):
        self._close(self.root)
        self.root = None


class PyFloor:
    def __init__(self):
        import pyfloor

        self.lib = pyfloor

    def connect(self, port):
        return self.lib.Client(port)


IMPLS = {"pynto": Pynto, "rpyc": Rpyc, "pyro5": Pyro5, "mpm": Mpm, "pyfloor": PyFloor}


# ---------------------------------------------------------------------------------------------
# timing


def timed_batches(op, args):
    """Run `op` in batches until --n operations or --max-secs; return per-op ns (batch means)."""
    batch = args.batch
    for _ in range(min(args.warmup, args.n)):
        op()
    samples = []
    batches = max(1, args.n // batch)
    deadline = ns() + int(args.max_secs * 1e9)
    rng = range(batch)
    while len(samples) < batches:
        t = ns()
        for _ in rng:
            op()
        t2 = ns()
        samples.append((t2 - t) / batch)
        if t2 > deadline:
            break
    return samples


def timed_each(op, reps, max_secs, warmup=1):
    """Time `op` once per rep (for operations that take milliseconds or more)."""
    for _ in range(warmup):
        op()
    samples = []
    deadline = ns() + int(max_secs * 1e9)
    for _ in range(reps):
        t = ns()
        op()
        t2 = ns()
        samples.append(t2 - t)
        if t2 > deadline:
            break
    return samples


# ---------------------------------------------------------------------------------------------
# tasks


def task_latency(impl, args):
    """S1 (naive and cached), S2, S3, S4: small round trips, one metric each per --what."""
    conn = impl.connect(args.port)
    whats = args.what.split(",")
    for what in whats:
        if isinstance(impl, PyFloor):
            # The floor has one operation: a 32-byte echo round trip.
            op = conn.echo
        elif what == "s1":
            op = lambda: conn.root.f()  # noqa: E731  (as users write it)
        elif what == "s1c":
            f = conn.root.f
            op = f
        elif what == "s2":
            if isinstance(impl, Pyro5):
                # Pyro5 5.17's marshal serializer fails on attribute reads (kwargs None): serpent.
                conn.root._pyroSerializer = "serpent"
            op = lambda: conn.root.value  # noqa: E731
        elif what == "s3":
            op = lambda: conn.root.g(1, "two", 3.0)  # noqa: E731
        elif what == "s3l":
            op = lambda: conn.root.h([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])  # noqa: E731
        elif what == "s4":

            def cb():
                return None

            if hasattr(impl, "callback"):
                cb = impl.callback(cb)
            op = lambda: conn.root.call(cb)  # noqa: E731
        else:
            raise SystemExit(f"unknown --what {what}")
        emit(what, samples_ns=timed_batches(op, args))
    conn.close()


def task_bulk(impl, args):
    """S5: bytes up (`put(data)`), down (`get(n)`) and both ways (`echo(data)`)."""
    conn = impl.connect(args.port)
    size = args.size
    data = bytes(size)
    if isinstance(impl, PyFloor):
        ops = {
            "put": lambda: conn.put(data),
            "get": lambda: conn.get(size),
            "echo": lambda: conn.echo_bulk(data),
        }
    else:
        root = conn.root
        ops = {
            "put": lambda: root.put(data),
            "get": lambda: root.get(size),
            "echo": lambda: root.echo(data),
        }
    for op_name in args.what.split(","):
        op = ops[op_name]
        warm = 1 if args.reps > 1 else 0
        emit(op_name, samples_ns=timed_each(op, args.reps, args.max_secs, warmup=warm), size=size)
    conn.close()


def task_iterate(impl, args):
    """S6: iterate a remote list of 10,000 items, naively and with the library's faster idioms."""
    conn = impl.connect(args.port)
    root = conn.root

    def naive():
        for _x in root.items():
            pass

    def as_list():
        list(root.items())

    def obtain():
        value = impl.obtain(root.items())
        assert len(value) == 10_000

    for name, op in (("naive", naive), ("list", as_list), ("obtain", obtain)):
        try:
            emit(name, samples_ns=timed_each(op, args.reps, args.max_secs, warmup=min(1, args.warmup)))
        except Exception as e:  # an idiom the library lacks is reported, not fatal
            emit(name, error=f"{type(e).__name__}: {e}"[:200])
    conn.close()


def task_hammer(impl, args):
    """S7: `conn.root.f()` in a loop from --start-at (unix ns) for --secs; prints the count."""
    conn = impl.connect(args.port)
    if isinstance(impl, PyFloor):
        op = conn.echo
    else:
        op = lambda: conn.root.f()  # noqa: E731
    for _ in range(50):
        op()
    delay = (args.start_at - time.time_ns()) / 1e9
    if delay > 0:
        time.sleep(delay)
    end = time.time_ns() + int(args.secs * 1e9)
    calls = 0
    while time.time_ns() < end:
        for _ in range(10):
            op()
        calls += 10
    emit("hammer", value=calls, unit="calls")
    conn.close()


def task_connect(impl, args):
    """S8: connection set-up plus the first call, then close; one sample per connection."""
    samples = []
    deadline = ns() + int(args.max_secs * 1e9)
    for i in range(args.n + 3):
        t = ns()
        conn = impl.connect(args.port)
        if isinstance(impl, PyFloor):
            conn.echo()
        else:
            conn.root.f()
        t2 = ns()
        conn.close()
        if i >= 3:  # the first few warm imports and caches
            samples.append(t2 - t)
        if t2 > deadline:
            break
    emit("connect", samples_ns=samples)


def task_idle(impl, args):
    """Hold --count idle connections (each made one call, 8 opened at a time) until stdin closes."""
    from concurrent.futures import ThreadPoolExecutor

    def open_one(_):
        conn = impl.connect(args.port)
        if isinstance(impl, PyFloor):
            conn.echo()
        else:
            conn.root.f()
        return conn

    # Several at a time: a peer whose set-up waits on delayed ACKs (mp.managers: ~200 ms) would
    # otherwise take minutes.
    with ThreadPoolExecutor(8) as pool:
        held = list(pool.map(open_one, range(args.count)))
    print(f"READY {len(held)}", flush=True)
    sys.stdin.readline()
    for conn in held:
        conn.close()


def settle(impl, conn, server_pid):
    """Let queued releases reach the server, then read its RSS (KiB)."""
    gc.collect()
    for _ in range(3):
        time.sleep(0.2)
        impl.ping(conn)
    return rss_kib(server_pid)


def task_memory(impl, args):
    """S9: server RSS after N proxies created and dropped, and bytes per live reference."""
    conn = impl.connect(args.port)
    root = conn.root
    pid = root.pid()
    n, chunk = args.n, 1000
    deadline = time.monotonic() + args.max_secs

    # Created and dropped: fresh server objects, each crossing by reference, dropped at once.
    for _ in range(5):
        tuple(root.fresh(chunk))
    base = settle(impl, conn, pid)
    made = 0
    while made < n and time.monotonic() < deadline:
        got = tuple(root.fresh(chunk))
        made += len(got)
        del got
    after = settle(impl, conn, pid)
    emit("churn_rss_delta", value=(after - base) * 1024, unit="bytes", proxies=made)
    if hasattr(conn, "stats"):  # pynto: live proxies left on the client (the root is one)
        emit("churn_imported_left", value=conn.stats().get("imported"), unit="proxies")

    # Held live: the objects already exist on the server; only the references are new.
    root.prepare(n)
    server_base = settle(impl, conn, pid)
    client_base = rss_kib(os.getpid())
    held = []
    while len(held) < n and time.monotonic() < deadline + args.max_secs:
        held.extend(root.pool(len(held), chunk))
    server_held = settle(impl, conn, pid)
    client_held = rss_kib(os.getpid())
    count = len(held)
    emit("held_server_bytes_per_ref", value=(server_held - server_base) * 1024 / count, unit="B", refs=count)
    emit("held_client_bytes_per_ref", value=(client_held - client_base) * 1024 / count, unit="B", refs=count)
    del held
    after_drop = settle(impl, conn, pid)
    emit("held_dropped_rss_delta", value=(after_drop - server_base) * 1024, unit="bytes")
    root.prepare(0)
    conn.close()


def task_proxies(impl, args):
    """C2: hold --count live proxies (server objects made beforehand; made within --hold-secs),
    then time `conn.root.f()` (--n calls, --max-secs)."""
    conn = impl.connect(args.port)
    root = conn.root
    pid = root.pid()
    n, chunk = args.count, 10_000
    root.prepare(n)
    server_base, client_base = rss_kib(pid), rss_kib(os.getpid())
    deadline = time.monotonic() + args.hold_secs
    t = ns()
    held = []
    while len(held) < n and time.monotonic() < deadline:
        held.extend(root.pool(len(held), min(chunk, n - len(held))))
    made = ns() - t
    emit("held", value=len(held), unit="proxies", secs=made / 1e9,
         client_bytes=(rss_kib(os.getpid()) - client_base) * 1024,
         server_bytes=(rss_kib(pid) - server_base) * 1024)
    emit("s1", samples_ns=timed_batches(lambda: root.f(), args), proxies=len(held))
    del held
    conn.close()


def task_await(impl, args):
    """S10: asynchronous calls from one asyncio loop in this one process.

    pynto: `await_seq` is a sequential `await pynto.async_(f)()`; `await_gather100` is
    `await asyncio.gather(*(pynto.async_(f)() for _ in range(100)))`, one sample per gather
    divided by 100; `await_sync` is a blocking `f()` called from the same running loop. `f` is
    `conn.root.f`, looked up once. RPyC has no asyncio: its closest equivalents are
    `rpyc.async_(f)().value` in sequence, 100 `rpyc.async_(f)()` sent before their `.value`s
    are read, and `f()`, all without a loop.
    """
    conn = impl.connect(args.port)
    f = conn.root.f
    lib = impl.lib
    if isinstance(impl, Pynto):
        import asyncio

        async_ = lib.async_

        async def seq_batches():
            batch = args.batch
            for _ in range(min(args.warmup, args.n)):
                await async_(f)()
            samples = []
            batches = max(1, args.n // batch)
            deadline = ns() + int(args.max_secs * 1e9)
            rng = range(batch)
            while len(samples) < batches:
                t = ns()
                for _ in rng:
                    await async_(f)()
                t2 = ns()
                samples.append((t2 - t) / batch)
                if t2 > deadline:
                    break
            return samples

        async def gather_each():
            width = 100
            gather = asyncio.gather
            for _ in range(max(1, min(args.warmup, args.n) // width)):
                await gather(*(async_(f)() for _ in range(width)))
            samples = []
            reps = max(1, args.n // width)
            deadline = ns() + int(args.max_secs * 1e9)
            for _ in range(reps):
                t = ns()
                results = await gather(*(async_(f)() for _ in range(width)))
                t2 = ns()
                assert len(results) == width
                samples.append((t2 - t) / width)
                if t2 > deadline:
                    break
            return samples

        async def main():
            emit("await_seq", samples_ns=await seq_batches())
            emit("await_gather100", samples_ns=await gather_each())
            emit("await_sync", samples_ns=timed_batches(f, args))  # blocks the running loop

        asyncio.run(main())
    else:
        async_ = lib.async_

        def seq():
            async_(f)().value

        def hundred():
            width = 100
            pending = [async_(f)() for _ in range(width)]
            for r in pending:
                r.value

        emit("await_seq", samples_ns=timed_batches(seq, args))
        width = 100
        reps = max(1, args.n // width)
        samples = timed_each(hundred, reps, args.max_secs, warmup=max(1, min(args.warmup, args.n) // width))
        emit("await_gather100", samples_ns=[s / width for s in samples])
        emit("await_sync", samples_ns=timed_batches(f, args))
    conn.close()


TASKS = {
    "await": task_await,
    "latency": task_latency,
    "bulk": task_bulk,
    "iterate": task_iterate,
    "hammer": task_hammer,
    "connect": task_connect,
    "idle": task_idle,
    "proxies": task_proxies,
    "memory": task_memory,
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("impl", choices=sorted(IMPLS))
    parser.add_argument("task", choices=sorted(TASKS))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--what", default="s1")
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--max-secs", type=float, default=2.0)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--size", type=int, default=1 << 20)
    parser.add_argument("--secs", type=float, default=3.0)
    parser.add_argument("--start-at", type=int, default=0)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--hold-secs", type=float, default=60.0)
    args = parser.parse_args()
    TASKS[args.task](IMPLS[args.impl](), args)


if __name__ == "__main__":
    main()
