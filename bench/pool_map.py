"""Speed of ``pynto.Pool.map`` for a CPU-bound function: 1, 2 and 3 local classic servers.

Each server is a ``python -m pynto serve --classic --port 0`` process pinned to one core
(``sched_setaffinity``; server i on core i mod the number of cores), so on a machine with N
cores at most N servers compute at once. The client is not pinned; it mostly waits. Each
pool of the first 1, 2, ... servers maps the same items (``--items`` calls of
``burn(--work)``); rounds interleave the pools and the plain local loop, so a change in the
machine's load hits them all, and the median of each is reported.

    python bench/pool_map.py [--items 48] [--work 300000] [--rounds 5] [--servers 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import pynto


def burn(n):
    """A CPU-bound item: a pure-Python loop (holds the GIL all the time)."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def start_server(core: int | None) -> tuple[subprocess.Popen, str]:
    def pin() -> None:
        if core is not None:
            os.sched_setaffinity(0, {core})

    proc = subprocess.Popen(
        [sys.executable, "-m", "pynto", "serve", "--classic", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, preexec_fn=pin,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("pynto: serving "):
        proc.kill()
        raise RuntimeError(f"the server printed {line!r}")
    return proc, line.strip().rsplit(" on ", 1)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=48)
    parser.add_argument("--work", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--servers", type=int, default=3, help="the largest pool (default: 3)")
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    items = [args.work] * args.items
    expected = [burn(args.work)] * args.items
    counts = list(range(1, args.servers + 1))
    placement = [cores[i % len(cores)] for i in range(args.servers)]
    print(f"cores: {len(cores)} {cores}; {args.items} items of burn({args.work}); median of {args.rounds} rounds")
    servers = [start_server(core) for core in placement]
    timings: dict[str, list[float]] = {"local": [], **{str(n): [] for n in counts}}
    try:
        pools = {n: pynto.Pool([address for _, address in servers[:n]]) for n in counts}
        for n, pool in pools.items():
            assert pool.map(burn, items[:n]) == expected[:n]  # teleport, warm up
        # Rounds interleave the configurations, so a change in the machine's load hits all.
        for _ in range(args.rounds):
            start = time.perf_counter()
            assert [burn(x) for x in items] == expected
            timings["local"].append(time.perf_counter() - start)
            for n, pool in pools.items():
                start = time.perf_counter()
                assert pool.map(burn, items) == expected
                timings[str(n)].append(time.perf_counter() - start)
        for pool in pools.values():
            pool.close()
    finally:
        for proc, _ in servers:
            proc.terminate()
            proc.wait()
    local = statistics.median(timings["local"])
    one = statistics.median(timings["1"])
    print(f"local loop in this process:          {local:7.3f} s  ({local / args.items * 1000:.1f} ms per item)")
    for n in counts:
        elapsed = statistics.median(timings[str(n)])
        where = ", ".join(str(c) for c in placement[:n])
        label = f"Pool.map, {n} server{'s' if n > 1 else ''} (cores {where}):"
        print(f"{label:<37}{elapsed:7.3f} s  speed-up {one / elapsed:.2f}x against one server")


if __name__ == "__main__":
    main()
