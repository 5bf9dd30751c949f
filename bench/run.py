"""The benchmark driver behind `cargo xtask bench` (stdlib only; any Python 3.11 runs it).

Starts each server (pynto, RPyC, the Python socket floor, the Rust floor) in its own process,
runs the scenarios S1-S10 against it from separate client processes, once with every process
pinned to core 0 (`taskset -c 0`) and once unpinned, then writes JSON lines and the markdown
report. Every client process runs under a timeout; one that overruns is killed and its metrics
are reported as "timeout".

`cargo xtask bench` passes `--only` with its own scenario list (S1-S9) even when not asked to
restrict the run; when its `--command` carries no `--only`, every scenario here runs, S10 included.
"""

import argparse
import datetime
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
IMPLS = ["pynto", "rpyc", "pyfloor", "rustfloor"]
IMPL_NAMES = {"pynto": "pynto", "rpyc": "RPyC", "pyfloor": "Python floor", "rustfloor": "Rust floor"}
SCENARIOS = ["S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8", "S9", "S10"]
MIB = 1 << 20

# (scenario, metric, label, unit kind); unit kinds: lat (us), ms, mbps, cps (calls/s), bytes, count.
METRICS = [
    ("S1", "s1", "`conn.root.f()` (floor: 32-byte round trip)", "lat"),
    ("S1", "s1c", "`f = conn.root.f; f()`", "lat"),
    ("S2", "s2", "`conn.root.value`", "lat"),
    ("S3", "s3", '`conn.root.g(1, "two", 3.0)`', "lat"),
    ("S4", "s4", "`conn.root.call(cb)`, server calls `cb()` (floor: 2 round trips)", "lat"),
    ("S5", "put_1MiB", "1 MiB up, `conn.root.put(data)`", "mbps"),
    ("S5", "get_1MiB", "1 MiB down, `conn.root.get(n)`", "mbps"),
    ("S5", "echo_1MiB", "1 MiB both ways, `conn.root.echo(data)` (2 MiB moved)", "mbps"),
    ("S5", "put_64MiB", "64 MiB up", "mbps"),
    ("S5", "get_64MiB", "64 MiB down", "mbps"),
    ("S5", "echo_64MiB", "64 MiB both ways (128 MiB moved)", "mbps"),
    ("S6", "naive", "`for x in conn.root.items(): pass` (10,000 items)", "ms"),
    ("S6", "list", "`list(conn.root.items())`", "ms"),
    ("S6", "obtain", "`obtain(conn.root.items())` (pickled copy)", "ms"),
    ("S7", "hammer", "8 client processes, `conn.root.f()`, total", "cps"),
    ("S7", "s1_idle100", "`conn.root.f()` with 100 idle connections open", "lat"),
    ("S8", "connect", "connect + first `conn.root.f()` (+ close)", "lat"),
    ("S9", "churn_rss_delta", "server RSS growth after N proxies created and dropped", "bytes"),
    ("S9", "churn_imported_left", "client proxies still alive after the drop (root included)", "count"),
    ("S9", "held_server_bytes_per_ref", "server bytes per live reference (N held)", "bytes"),
    ("S9", "held_client_bytes_per_ref", "client bytes per live proxy (N held)", "bytes"),
    ("S9", "held_dropped_rss_delta", "server RSS above baseline after the N are dropped (the allocator may keep freed pages)", "bytes"),
    ("S10", "await_seq", "`await pynto.async_(f)()` in sequence, `f = conn.root.f` (RPyC has no asyncio: "
     "`rpyc.async_(f)().value`)", "lat"),
    ("S10", "await_gather100", "`await asyncio.gather(*(pynto.async_(f)() for _ in range(100)))`, per call "
     "(RPyC: 100 `rpyc.async_(f)()` sent, then their `.value`s)", "lat"),
    ("S10", "await_sync", "blocking `f()` in the same run, for comparison", "lat"),
]
UNITS = {"lat": "us", "ms": "ms", "mbps": "MB/s", "cps": "calls/s", "bytes": "B", "count": ""}


def params(quick):
    """Iteration counts and time bounds (seconds)."""
    if quick:
        return dict(n=2000, lat_secs=0.3, bulk_reps=5, bulk_secs=1.0, big_reps=1, big_secs=5.0,
                    big_timeout=30, iter_reps=1, iter_secs=3.0, hammer_secs=1.0, connect_n=50,
                    connect_secs=1.0, memory_n=10_000, memory_secs=20.0, task_timeout=60)
    return dict(n=20_000, lat_secs=1.5, bulk_reps=20, bulk_secs=2.0, big_reps=3, big_secs=8.0,
                big_timeout=60, iter_reps=5, iter_secs=6.0, hammer_secs=3.0, connect_n=300,
                connect_secs=2.0, memory_n=100_000, memory_secs=40.0, task_timeout=120)


# ---------------------------------------------------------------------------------------------
# processes


class Runner:
    def __init__(self, args):
        self.args = args
        self.p = params(args.quick)
        self.records = []
        #: Clients that printed their results but then ended badly (crash at exit and the like).
        self.warnings = []
        self.date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    def python(self, impl):
        return self.args.rpyc_python if impl == "rpyc" else self.args.pynto_python

    def prefix(self, mode):
        return ["taskset", "-c", "0"] if mode == "pinned" else []

    def start_server(self, impl, mode):
        if impl == "rustfloor":
            cmd = [self.args.floor, "server"]
        else:
            cmd = [self.python(impl), os.path.join(HERE, "server.py"), impl]
        proc = subprocess.Popen(self.prefix(mode) + cmd, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)
        line = read_line(proc, 30)
        if not line.startswith("READY "):
            proc.kill()
            raise RuntimeError(f"{impl} server did not start: {line!r}")
        return proc, int(line.split()[1])

    def client_cmd(self, impl, mode, port, task, extra):
        if impl == "rustfloor":
            return self.prefix(mode) + [self.args.floor, task, "--addr", f"127.0.0.1:{port}"] + extra
        return self.prefix(mode) + [self.python(impl), os.path.join(HERE, "client.py"), impl, task,
                                    "--port", str(port)] + extra

    def run_client(self, impl, mode, port, task, extra, timeout):
        """Run one client to completion: (status, [json objects])."""
        cmd = self.client_cmd(impl, mode, port, task, extra)
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return "timeout", []
        lines = [json.loads(x) for x in out.stdout.splitlines() if x.startswith("{")]
        if out.returncode != 0:
            how = f"signal {-out.returncode}" if out.returncode < 0 else f"status {out.returncode}"
            first = next((x for x in out.stderr.splitlines() if "panicked" in x or "Error" in x), "")
            sys.stderr.write(f"  ! {mode} {impl} {task} exited with {how} {first[:200]}\n")
            self.warnings.append(f"{mode} {IMPL_NAMES[impl]} client `{task}` ended with {how}"
                                 + (f" after printing its results" if lines else "")
                                 + (f": `{first.strip()[:160]}`" if first else ""))
            return ("error" if not lines else "ok"), lines
        if "panicked" in out.stderr:
            first = next(x for x in out.stderr.splitlines() if "panicked" in x)
            self.warnings.append(f"{mode} {IMPL_NAMES[impl]} client `{task}` exited 0 but a thread "
                                 f"panicked: `{first.strip()[:160]}`")
        return "ok", lines

    # -----------------------------------------------------------------------------------------
    # recording

    def record(self, mode, impl, scenario, metric, status="ok", samples=None, value=None, **extra):
        rec = {"date": self.date, "mode": mode, "impl": impl, "scenario": scenario, "metric": metric,
               "status": status}
        if samples is not None:
            if samples:
                s = sorted(samples)
                rec.update(n=len(s), median_ns=statistics.median(s), p99_ns=nearest_rank(s, 0.99),
                           min_ns=s[0])
            else:
                rec["status"] = "no samples"
        if value is not None:
            rec["value"] = value
        rec.update(extra)
        self.records.append(rec)
        show = rec.get("median_ns", rec.get("value"))
        print(f"  {mode:8} {impl:9} {scenario} {metric:26} {rec['status']:8} {fmt_num(show)}",
              flush=True)

    def record_lines(self, mode, impl, scenario, status, lines, expected, rename=None, **extra):
        seen = set()
        for obj in lines:
            metric = obj.get("metric") or obj.get("kind")
            metric = (rename or {}).get(metric, metric)
            seen.add(metric)
            if "error" in obj:
                self.record(mode, impl, scenario, metric, status="unavailable", error=obj["error"])
            elif "samples_ns" in obj:
                self.record(mode, impl, scenario, metric, samples=obj["samples_ns"], **extra)
            else:
                fields = {k: v for k, v in obj.items() if k not in ("metric", "kind", "value")}
                self.record(mode, impl, scenario, metric, value=obj.get("value"), **{**extra, **fields})
        for metric in expected:
            if metric not in seen:
                self.record(mode, impl, scenario, metric, status=status if status != "ok" else "missing")

    # -----------------------------------------------------------------------------------------
    # scenarios

    def lat_args(self):
        p = self.p
        return ["--n", str(p["n"]), "--max-secs", str(p["lat_secs"])]

    def latency(self, mode, impl, port, scenario, whats, rename=None):
        p = self.p
        if impl == "rustfloor":
            status, lines = self.run_client(impl, mode, port, "latency", self.lat_args(), p["task_timeout"])
            rename = {"latency": whats[0]} if rename is None else rename
        else:
            extra = ["--what", ",".join(whats)] + self.lat_args()
            status, lines = self.run_client(impl, mode, port, "latency", extra, p["task_timeout"])
        expected = [(rename or {}).get(w, w) for w in whats] if impl != "rustfloor" else list(rename.values())
        self.record_lines(mode, impl, scenario, status, lines, expected, rename=rename)

    def s1(self, mode, impl, port):
        whats = ["s1"] if impl.endswith("floor") else ["s1", "s1c"]
        self.latency(mode, impl, port, "S1", whats)

    def s2(self, mode, impl, port):
        if not impl.endswith("floor"):
            self.latency(mode, impl, port, "S2", ["s2"])

    def s3(self, mode, impl, port):
        if not impl.endswith("floor"):
            self.latency(mode, impl, port, "S3", ["s3"])

    def s4(self, mode, impl, port):
        if impl.endswith("floor"):
            return  # derived from the floor's S1 in the report: two round trips
        self.latency(mode, impl, port, "S4", ["s4"])

    def s5(self, mode, impl, port):
        p = self.p
        for size, label, reps, secs, timeout, ops in (
            (MIB, "1MiB", p["bulk_reps"], p["bulk_secs"], p["task_timeout"], [["put", "get", "echo"]]),
            (64 * MIB, "64MiB", p["big_reps"], p["big_secs"], p["big_timeout"], [["put"], ["get"], ["echo"]]),
        ):
            for group in ops:
                rename = {op: f"{op}_{label}" for op in group}
                if impl == "rustfloor":
                    for op in group:
                        status, lines = self.run_client(
                            impl, mode, port, "bw",
                            ["--op", op, "--size", str(size), "--reps", str(reps), "--max-secs", str(secs)],
                            timeout)
                        self.record_lines(mode, impl, "S5", status, lines, [rename[op]],
                                          rename={"bandwidth": rename[op]}, size=size)
                else:
                    extra = ["--what", ",".join(group), "--size", str(size), "--reps", str(reps),
                             "--max-secs", str(secs)]
                    status, lines = self.run_client(impl, mode, port, "bulk", extra, timeout)
                    self.record_lines(mode, impl, "S5", status, lines, list(rename.values()),
                                      rename=rename, size=size)

    def s6(self, mode, impl, port):
        if impl.endswith("floor"):
            return
        p = self.p
        extra = ["--reps", str(p["iter_reps"]), "--max-secs", str(p["iter_secs"])]
        # RPyC's naive iteration takes about a second per pass: allow for it.
        status, lines = self.run_client(impl, mode, port, "iterate", extra, p["task_timeout"])
        self.record_lines(mode, impl, "S6", status, lines, ["naive", "list", "obtain"])

    def s7(self, mode, impl, port):
        p = self.p
        secs = p["hammer_secs"]
        # Enough head start for 8 interpreters to import and connect, even on one core.
        start_at = time.time_ns() + int((3.0 if mode == "pinned" else 2.0) * 1e9)
        task = "hammer"
        extra = ["--secs", str(secs), "--start-at", str(start_at)]
        procs = [subprocess.Popen(self.client_cmd(impl, mode, port, task, extra),
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                 for _ in range(8)]
        total, status = 0, "ok"
        for proc in procs:
            try:
                out, _ = proc.communicate(timeout=secs + 30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                status = "timeout"
                continue
            got = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
            if not got:
                status = "error"
                continue
            total += got[0].get("value", got[0].get("calls", 0))
        if status == "ok":
            self.record(mode, impl, "S7", "hammer", value=total / secs, clients=8, secs=secs)
        else:
            self.record(mode, impl, "S7", "hammer", status=status)

        # S1 latency with 100 idle connections held open by another process.
        holder = subprocess.Popen(self.client_cmd(impl, mode, port, "idle", ["--count", "100"]),
                                  stdout=subprocess.PIPE, stdin=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)
        line = read_line(holder, 60)
        if line.startswith("READY"):
            self.latency(mode, impl, port, "S7", ["s1"], rename={"s1": "s1_idle100"} if impl != "rustfloor"
                         else {"latency": "s1_idle100"})
        else:
            self.record(mode, impl, "S7", "s1_idle100", status="error", note="idle connections failed")
        try:
            holder.stdin.close()
            holder.wait(timeout=20)
        except (subprocess.TimeoutExpired, OSError):
            holder.kill()
            holder.wait()

    def s8(self, mode, impl, port):
        p = self.p
        extra = ["--n", str(p["connect_n"]), "--max-secs", str(p["connect_secs"])]
        status, lines = self.run_client(impl, mode, port, "connect", extra, p["task_timeout"])
        self.record_lines(mode, impl, "S8", status, lines, ["connect"])

    def s9(self, mode, impl):
        """Memory, on a fresh server of its own."""
        if impl.endswith("floor"):
            return
        p = self.p
        server, port = self.start_server(impl, mode)
        try:
            extra = ["--n", str(p["memory_n"]), "--max-secs", str(p["memory_secs"])]
            status, lines = self.run_client(impl, mode, port, "memory", extra,
                                            3 * p["memory_secs"] + 30)
            expected = ["churn_rss_delta", "held_server_bytes_per_ref", "held_client_bytes_per_ref",
                        "held_dropped_rss_delta"]
            self.record_lines(mode, impl, "S9", status, lines, expected, n=p["memory_n"])
        finally:
            stop(server)

    def s10(self, mode, impl, port):
        """Asynchronous calls: pynto inside one asyncio loop, RPyC's `async_(...).value`."""
        if impl.endswith("floor"):
            return
        extra = ["--what", "await"] + self.lat_args()
        status, lines = self.run_client(impl, mode, port, "await", extra, self.p["task_timeout"])
        self.record_lines(mode, impl, "S10", status, lines,
                          ["await_seq", "await_gather100", "await_sync"])

    def run(self):
        only = self.args.only
        for mode in ("pinned", "unpinned"):
            print(f"== {mode}", flush=True)
            for impl in IMPLS:
                wanted = [s for s in SCENARIOS if s in only and s != "S9"]
                if not wanted:
                    continue
                server, port = self.start_server(impl, mode)
                try:
                    for s in wanted:
                        if server.poll() is not None:
                            self.record(mode, impl, s, "server", status="server died")
                            break
                        getattr(self, s.lower())(mode, impl, port)
                finally:
                    stop(server)
            # Memory does not depend on pinning: measure it once, unpinned.
            if mode == "unpinned" and "S9" in only:
                for impl in IMPLS:
                    self.s9(mode, impl)


def read_line(proc, timeout):
    """The first stdout line of `proc`, or '' after `timeout` seconds."""
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    if sel.select(timeout):
        return proc.stdout.readline().strip()
    return ""


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def nearest_rank(sorted_samples, q):
    k = max(0, min(len(sorted_samples) - 1, math.ceil(q * len(sorted_samples)) - 1))
    return sorted_samples[k]


def fmt_num(x):
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


# ---------------------------------------------------------------------------------------------
# report


def figure(rec, kind):
    """(main figure, p99 or None) of a record in the unit of `kind`, or (None, None)."""
    if rec is None or rec.get("status") != "ok":
        return None, None
    if kind == "lat":
        return rec["median_ns"] / 1e3, rec["p99_ns"] / 1e3
    if kind == "ms":
        return rec["median_ns"] / 1e6, rec["p99_ns"] / 1e6
    if kind == "mbps":
        moved = rec["size"] * (2 if rec["metric"].startswith("echo") else 1)
        return moved / (rec["median_ns"] / 1e9) / 1e6, None
    return rec.get("value"), None


def floor_record(recs, mode, impl, metric):
    """The floor's record that `metric` compares with (S4: two S1 round trips)."""
    if metric in ("s1", "s1c", "s2", "s3"):
        return recs.get((mode, impl, "s1"))
    if metric == "s4":
        r = recs.get((mode, impl, "s1"))
        if r is None or r.get("status") != "ok":
            return r
        return {**r, "metric": "s4", "median_ns": 2 * r["median_ns"], "p99_ns": 2 * r["p99_ns"]}
    return recs.get((mode, impl, metric))


def fmt_fig(main, p99, kind):
    if main is None:
        return None
    if kind in ("lat", "ms"):
        return f"{main:.3g}" if main < 100 else f"{main:.0f}"
    if kind == "bytes":
        return f"{main:,.0f}"
    if kind in ("cps",):
        return f"{main:,.0f}"
    if kind == "mbps":
        return f"{main:,.0f}"
    return str(main)


def cell(rec, kind):
    main, p99 = figure(rec, kind)
    if main is None:
        if rec is None:
            return "-"
        return rec.get("status", "-")
    text = fmt_fig(main, p99, kind)
    if p99 is not None:
        text += f" ({fmt_fig(p99, None, kind)})"
    return text


def ratio(a, b, kind):
    fa, _ = figure(a, kind)
    fb, _ = figure(b, kind)
    if not fa or not fb:
        return "-"
    r = fa / fb
    return f"{r:.2f}x" if r >= 0.1 else f"{r:.2g}x"


def report(runner, facts):
    recs = {(r["mode"], r["impl"], r["metric"]): r for r in runner.records}
    only = runner.args.only
    lines = []
    w = lines.append
    w("# pynto benchmarks")
    w("")
    w("Generated by `cargo xtask bench`; do not edit by hand (the next run overwrites it).")
    w("")
    w(f"- Command: `{runner.args.command}`")
    w(f"- Date: {runner.date}")
    for k, v in facts.items():
        w(f"- {k}: {v}")
    w("")
    w("Client and server run in separate processes on 127.0.0.1. **pinned**: every process of the")
    w("scenario under `taskset -c 0` (CPU cost, no cross-core wake-ups); **unpinned**: the scheduler")
    w("decides (what users see). Latencies are median (p99) in microseconds per operation, timed with")
    w("`time.perf_counter_ns` around batches of 10 operations, so p99 is that of batch means")
    w("(Rust floor: each round trip timed). Bandwidth is MB/s (10^6 bytes) at the median time.")
    w("Ratios are pynto / other, in the row's unit, from this one run: for times lower is better,")
    w("for MB/s and calls/s higher is better. The floors are a length-prefixed TCP echo")
    w("(`bench/floor.rs`, `bench/pyfloor.py`, TCP_NODELAY); a floor's S2-S3 comparison is its")
    w("32-byte round trip, S4 is two of them.")
    w("")
    w("Scenarios: S1 null call, S2 attribute read, S3 small arguments, S4 server-to-client callback,")
    w("S5 bulk bytes, S6 iterating a remote list, S7 concurrency, S8 connection set-up,")
    w("S9 memory (measured once, unpinned; N given per row), S10 asynchronous calls (pynto awaited in")
    w("one asyncio loop; RPyC has no asyncio, so its closest equivalent `rpyc.async_(f)().value` is")
    w("shown; no floors). S10's 100-way row times each `gather` of 100 calls and divides by 100, so")
    w("its p99 is that of gather means. RPyC's 100-way row is dominated by a stall of about 45 ms per")
    w("batch of pipelined calls, whatever the batch width (checked by hand: 10 at a time costs ~4 ms per")
    w("call), so it shows that stall rather than a per-call cost.")
    w("")
    budget(w, recs, runner)
    for mode in ("pinned", "unpinned"):
        w(f"## Results, {mode}")
        w("")
        w("| scenario | what | unit | pynto | RPyC | Python floor | Rust floor | pynto/RPyC | pynto/Rust floor |")
        w("|---|---|---|---|---|---|---|---|---|")
        for scenario, metric, label, kind in METRICS:
            if scenario not in only:
                continue
            m = "unpinned" if scenario == "S9" else mode
            if scenario == "S9" and mode == "pinned":
                continue
            row = [recs.get((m, impl, metric)) for impl in ("pynto", "rpyc")]
            floors = [floor_record(recs, m, impl, metric) for impl in ("pyfloor", "rustfloor")]
            if all(r is None for r in row + floors):
                continue
            unit = UNITS[kind]
            if kind == "lat":
                unit = "us (p99)"
            elif kind == "ms":
                unit = "ms (p99)"
            if scenario == "S9":
                n = next((r.get("refs") or r.get("proxies") or r.get("n") for r in row if r), "")
                if not isinstance(n, int):
                    n = next((r.get("n") for r in row if r), "")
                label = label.replace("N ", f"{n:,} " if isinstance(n, int) else "N ")
            cells = [cell(r, kind) for r in row + floors]
            w(f"| {scenario} | {label} | {unit} | " + " | ".join(cells)
              + f" | {ratio(row[0], row[1], kind)} | {ratio(row[0], floors[1], kind)} |")
        w("")
    errors = [r for r in runner.records if r["status"] not in ("ok",)]
    if errors:
        w("## Not measured")
        w("")
        for r in errors:
            note = r.get("error") or r.get("note") or ""
            w(f"- {r['mode']} {IMPL_NAMES.get(r['impl'], r['impl'])} {r['scenario']} `{r['metric']}`: "
              f"{r['status']}{' - ' + note if note else ''}")
        w("")
    if runner.warnings:
        w("## Client processes that ended badly")
        w("")
        w("Their results were printed before the failure and are kept above.")
        w("")
        counts = {}
        for text in runner.warnings:
            text = re.sub(r"\(\d+\)", "(N)", text.split(" ", 1)[1])  # both modes together
            counts[text] = counts.get(text, 0) + 1
        for text, k in counts.items():
            w(f"- {k} x {text}")
        w("")
    w("Raw records (one JSON object per line): `target/bench/results.jsonl`.")
    w("")
    return "\n".join(lines)


def budget(w, recs, runner):
    """DESIGN.md section 8, line by line, judged on the pinned run."""
    mode = "pinned"
    get = lambda impl, metric: recs.get((mode, impl, metric))  # noqa: E731
    fig = lambda impl, metric, kind: figure(get(impl, metric), kind)[0]  # noqa: E731
    uf = lambda impl, metric, kind: figure(recs.get(("unpinned", impl, metric)), kind)[0]  # noqa: E731
    rows = []

    def line(path, aim, measured, verdict):
        rows.append(f"| {path} | {aim} | {measured} | {verdict} |")

    def v(ok):
        return "n/a" if ok is None else ("**met**" if ok else "**missed**")

    only = runner.args.only
    rf = fig("rustfloor", "s1", "lat")
    pf = fig("pyfloor", "s1", "lat")
    if "S1" in only:
        line("round trip, Rust, TCP (Unix not measured)", "floor (DESIGN: 4.9 us)", f"{rf:.1f} us" if rf else "-", "info")
        line("round trip, pure-Python socket", "floor (DESIGN: 15.7 us)", f"{pf:.1f} us" if pf else "-", "info")
        p1 = fig("pynto", "s1", "lat")
        r1 = fig("rpyc", "s1", "lat")
        ok = p1 / rf <= 1.5 if p1 and rf else None
        m = f"{p1:.1f} us = {p1 / rf:.2f}x the Rust floor" if p1 and rf else "-"
        if r1:
            m += f"; RPyC {r1:.0f} us"
        line("`conn.root.f()`", "<= 1.5x the Rust floor", m, v(ok))
    if "S4" in only and "S1" in only:
        p4 = fig("pynto", "s4", "lat")
        r4 = fig("rpyc", "s4", "lat")
        ok = p4 / (2 * rf) <= 2 if p4 and rf else None
        m = f"{p4:.1f} us = {p4 / (2 * rf):.2f}x two floor round trips" if p4 and rf else "-"
        if r4:
            m += f"; RPyC {r4:.0f} us"
        line("server-to-client callback", "<= 2x the floor's two round trips", m, v(ok))
    if "S5" in only:
        parts, oks = [], []
        for op in ("put", "get"):
            a = fig("pynto", f"{op}_64MiB", "mbps")
            b = fig("rustfloor", f"{op}_64MiB", "mbps")
            if a and b:
                parts.append(f"{'up' if op == 'put' else 'down'} {a:,.0f} MB/s = {a / b:.0%} of {b:,.0f}")
                oks.append(a / b >= 0.7)
            else:
                parts.append(f"{op}: not measured")
                oks.append(None)
        ok = None if None in oks else all(oks)
        line("64 MiB bytes each way", ">= 70% of the Rust floor", "; ".join(parts), v(ok))
    if "S6" in only:
        p6 = fig("pynto", "naive", "ms")
        r6 = fig("rpyc", "naive", "ms")
        m = f"{p6:.2f} ms naive" if p6 else "-"
        if r6:
            m += f"; RPyC {r6:.0f} ms"
        line("iterate 10,000 remote items", "<= 10 ms", m, v(p6 <= 10 if p6 else None))
    if "S7" in only:
        p7 = fig("pynto", "hammer", "cps")
        r7 = fig("rpyc", "hammer", "cps")
        ok = p7 / r7 >= 4 if p7 and r7 else None
        m = f"{p7:,.0f} calls/s = {p7 / r7:.2f}x RPyC's {r7:,.0f}" if p7 and r7 else "-"
        line("8 client processes, calls/s", ">= 4x RPyC", m, v(ok))
    if "S8" in only:
        p8 = fig("pynto", "connect", "lat")
        r8 = fig("rpyc", "connect", "lat")
        m = f"{p8:.0f} us" if p8 else "-"
        if r8:
            m += f"; RPyC {r8:.0f} us"
        line("connect + first call", "<= 150 us", m, v(p8 <= 150 if p8 else None))
    if "S10" in only:
        pa = fig("pynto", "await_seq", "lat")
        pg = fig("pynto", "await_gather100", "lat")
        ps = fig("pynto", "await_sync", "lat")
        ra = fig("rpyc", "await_seq", "lat")
        m = f"{pa:.1f} us per sequential await" if pa else "sequential await not measured"
        if ps:
            m += f" (blocking `f()` {ps:.1f} us in the same run)"
        m += f"; 100-way `gather`: {pg:.1f} us per call" if pg else "; 100-way `gather` not measured"
        if ra:
            m += f"; RPyC `async_(f)().value` {ra:.0f} us"
        line("await of a remote call", "<= 10 us", m, v(pa <= 10 if pa else None))
    else:
        line("await of a remote call", "<= 10 us", "not measured: S10 not run", "n/a")
    w("## Speed budget (DESIGN.md section 8), judged on the pinned run")
    w("")
    w("| path | aim | measured | verdict |")
    w("|---|---|---|---|")
    for r in rows:
        w(r)
    u1, uf1 = uf("pynto", "s1", "lat"), uf("rustfloor", "s1", "lat")
    if u1 and uf1:
        w("")
        w(f"Unpinned, `conn.root.f()` takes {u1:.1f} us against the Rust floor's {uf1:.1f} us "
          f"({u1 / uf1:.2f}x).")
    w("")


# ---------------------------------------------------------------------------------------------
# machine facts


def machine_facts(args):
    facts = {}
    model, mhz = "?", "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model == "?":
                    model = line.split(":", 1)[1].strip()
                if line.startswith("cpu MHz") and mhz == "?":
                    mhz = line.split(":", 1)[1].strip()
    except OSError:
        pass
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    facts["CPU"] = f"{model}, {mhz} MHz (/proc/cpuinfo), nproc {nproc}"
    facts["Kernel"] = platform.release()
    try:
        with open("/proc/loadavg") as f:
            facts["Load average at start"] = " ".join(f.read().split()[:3])
    except OSError:
        pass
    versions = {}
    for name, py, code in (
        ("pynto", args.pynto_python, "import sys, pynto; print(sys.version.split()[0], getattr(pynto, '__version__', '?'))"),
        ("rpyc", args.rpyc_python, "import sys, rpyc; print(sys.version.split()[0], rpyc.__version__)"),
    ):
        out = subprocess.run([py, "-c", code], capture_output=True, text=True).stdout.split()
        versions[name] = out
    if versions["pynto"]:
        facts["Python"] = f"CPython {versions['pynto'][0]}"
    if versions["rpyc"]:
        facts["RPyC"] = versions["rpyc"][1]
    commit = subprocess.run(["git", "-C", args.root, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", args.root, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    package = versions["pynto"][1] if len(versions["pynto"]) > 1 else "?"
    facts["pynto"] = f"git {commit or '?'}{' + uncommitted changes' if dirty else ''}" + (
        f", package {package}" if package != "?" else "") + ", as installed in target/venv"
    return facts


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", required=True)
    parser.add_argument("--pynto-python", required=True)
    parser.add_argument("--rpyc-python", required=True)
    parser.add_argument("--floor", required=True)
    parser.add_argument("--results", required=True)
    parser.add_argument("--doc", required=True)
    parser.add_argument("--command", default="cargo xtask bench")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default=",".join(SCENARIOS))
    args = parser.parse_args()
    args.only = [s.strip().upper() for s in args.only.split(",") if s.strip()]
    if "--only" not in args.command:
        # Not restricted by the user: xtask's list may predate a scenario added here.
        args.only = list(SCENARIOS)
    unknown = [s for s in args.only if s not in SCENARIOS]
    if unknown:
        raise SystemExit(f"bench: unknown scenario(s) {unknown}; choose from {','.join(SCENARIOS)}")

    facts = machine_facts(args)
    runner = Runner(args)
    began = time.monotonic()
    runner.run()
    facts["Run time"] = f"{time.monotonic() - began:.0f} s{' (--quick)' if args.quick else ''}"

    os.makedirs(os.path.dirname(args.results), exist_ok=True)
    with open(args.results, "w") as f:
        for rec in runner.records:
            f.write(json.dumps(rec) + "\n")
    text = report(runner, facts)
    os.makedirs(os.path.dirname(args.doc), exist_ok=True)
    with open(args.doc, "w") as f:
        f.write(text)
    print(f"\nwrote {args.results} ({len(runner.records)} records) and {args.doc}")


if __name__ == "__main__":
    main()
