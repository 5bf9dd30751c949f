"""Two builds of pynto side by side in one run: the null call, the callback and 64 MiB each way.

    python bench/before_after.py --before PYTHON --after PYTHON [--rounds N]

Each PYTHON is an interpreter with one build of pynto installed (say a venv built from an older
commit with `maturin develop --release`). Both builds' servers and clients run pinned to core 0,
alternating build by build for N rounds so that machine noise falls on both alike; the table
gives the median of the rounds' medians (S1 and S4 in microseconds, S5 in MB/s).
"""

import argparse
import statistics
import types

from procs import stop
from report import figure
from run import Runner

ROWS = [
    ("S1", "s1", "`conn.root.f()`", "us"),
    ("S4", "s4", "`conn.root.call(cb)`, server calls `cb()`", "us"),
    ("S5", "put_64MiB", "64 MiB up", "MB/s"),
    ("S5", "get_64MiB", "64 MiB down", "MB/s"),
]


def measure(python, quick):
    args = types.SimpleNamespace(pynto_python=python, peers_python=python, floor="", quick=quick,
                                 only=["S1", "S4", "S5"])
    runner = Runner(args)
    server, port = runner.start_server("pynto", "pinned")
    try:
        runner.s1("pinned", "pynto", port)
        runner.s4("pinned", "pynto", port)
        runner.s5("pinned", "pynto", port)
    finally:
        stop(server)
    found = {}
    for rec in runner.records:
        kind = "mbps" if rec["scenario"] == "S5" else "lat"
        value, _ = figure(rec, kind)
        if value is not None:
            found[rec["metric"]] = value
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True)
    parser.add_argument("--after", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    seen = {"before": [], "after": []}
    for _ in range(args.rounds):
        for build in ("before", "after"):
            seen[build].append(measure(getattr(args, build), args.quick))
    print("| scenario | what | unit | before | after | after/before |")
    print("|---|---|---|---|---|---|")
    for scenario, metric, what, unit in ROWS:
        cells = []
        for build in ("before", "after"):
            values = [r[metric] for r in seen[build] if metric in r]
            cells.append(statistics.median(values) if values else None)
        b, a = cells
        ratio = f"{a / b:.2f}x" if a and b else "-"
        fmt = lambda v: "-" if v is None else (f"{v:.1f}" if unit == "us" else f"{v:,.0f}")
        print(f"| {scenario} | {what} | {unit} | {fmt(b)} | {fmt(a)} | {ratio} |")


if __name__ == "__main__":
    main()
