"""The cost curves of `cargo xtask bench` (C1-C3), one run each, pinned to core 0.

C1: `conn.root.f()` latency against the number of idle connections open to the same pynto
server (held by other client processes, up to 1,000 each). C2: the same against the number of
live proxies the measuring client holds. C3: MB/s up and down against the payload size, for
pynto and the two floors. A point that cannot be measured (a holder that does not get its
connections, a client that overruns) is recorded as "failed: reason" and the curve goes on.
"""

import subprocess
import tempfile
import time

from procs import read_line, stop
from report import figure

MODE = "pinned"
KIB = 1 << 10
PER_HOLDER = 1000


def points(quick):
    if quick:
        return dict(idle=[1, 100], proxies=[1, 10_000],
                    sizes=[KIB << (2 * k) for k in range(0, 7)])  # 1 KiB .. 4 MiB
    return dict(idle=[1, 100, 1_000, 10_000], proxies=[1, 100_000, 1_000_000],
                sizes=[KIB << (2 * k) for k in range(0, 11)])  # 1 KiB .. 1 GiB


def run(runner, which):
    """Run the curves in `which` (C1, C2, C3); returns their markdown."""
    if not which:
        return ""
    pts = points(runner.args.quick)
    out = ["## Cost curves, pinned", "",
           "One run each, every process under `taskset -c 0`; latencies are median (p99) in us.", ""]
    if "C1" in which:
        out += idle_curve(runner, pts["idle"])
    if "C2" in which:
        out += proxies_curve(runner, pts["proxies"])
    if "C3" in which:
        out += size_curve(runner, pts["sizes"])
    return "\n".join(out)


def proc_status(pid):
    """(RSS bytes, threads) of a process, or (None, None)."""
    rss = threads = None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("Threads:"):
                    threads = int(line.split()[1])
    except OSError:
        pass
    return rss, threads


def lat(rec):
    main, p99 = figure(rec, "lat")
    if main is None:
        return f"failed: {rec.get('error') or rec.get('status', '?')}"
    return f"{main:.3g} ({p99:.3g})"


def mib(x):
    return "-" if x is None else f"{x / (1 << 20):,.1f}"


def idle_curve(runner, counts):
    p = runner.p
    rows = []
    for count in counts:
        metric = f"idle_{count}"
        server_err = tempfile.TemporaryFile(mode="w+")
        server, port = runner.start_server("pynto", MODE, stderr=server_err)
        holders, errs = [], []
        try:
            began = time.monotonic()
            left = count
            while left > 0:
                k = min(PER_HOLDER, left)
                left -= k
                err = tempfile.TemporaryFile(mode="w+")
                errs.append(err)
                holders.append(subprocess.Popen(
                    runner.client_cmd("pynto", MODE, port, "idle", ["--count", str(k)]),
                    stdout=subprocess.PIPE, stdin=subprocess.PIPE, stderr=err, text=True))
            failure = None
            for i, holder in enumerate(holders):
                wait = max(1.0, began + 60 + count * 0.05 - time.monotonic())
                line = read_line(holder, wait)
                if not line.startswith("READY"):
                    holder.poll()
                    err = errs[i]
                    err.seek(0)
                    tail = [x for x in err.read().splitlines() if x.strip()][-1:]
                    why = tail[0][:200] if tail else (
                        f"exited with {holder.returncode}" if holder.returncode is not None
                        else f"no READY within {wait:.0f} s")
                    failure = f"holder {i + 1} of {len(holders)}: {why}"
                    break
            setup = time.monotonic() - began

            def server_said():
                server_err.seek(0)
                said = [x for x in server_err.read().splitlines() if x.strip()]
                return f" (server: {said[-1][:200]})" if said else ""
            rss, threads = proc_status(server.pid)
            extra = dict(count=count, setup_secs=setup, server_rss=rss, server_threads=threads)
            if failure:
                runner.record(MODE, "pynto", "C1", metric, status="failed", error=failure + server_said(),
                              **extra)
            else:
                status, lines = runner.run_client("pynto", MODE, port, "latency",
                                                  ["--what", "s1"] + runner.lat_args(), p["task_timeout"])
                why = runner.last_error + (server_said() if status != "ok" else "")
                runner.record_lines(MODE, "pynto", "C1", status, lines, [metric],
                                    rename={"s1": metric}, error=why, **extra)
        finally:
            for holder in holders:
                try:
                    holder.stdin.close()
                    holder.wait(timeout=30)
                except (subprocess.TimeoutExpired, OSError):
                    holder.kill()
                    holder.wait()
            for err in errs:
                err.close()
            stop(server)
            server_err.close()
        rec = runner.records[-1]
        secs = rec.get("setup_secs")
        rows.append(f"| {count:,} | {lat(rec)} | {'-' if secs is None else f'{secs:.1f}'} | "
                    f"{mib(rec.get('server_rss'))} | {rec.get('server_threads') or '-'} |")
    return ["### C1: `conn.root.f()` against idle connections open to the server", "",
            f"Idle connections are held by other client processes ({PER_HOLDER:,} each), each made "
            "one call; the server's RSS and threads are read with all of them open.", "",
            "| idle connections | `conn.root.f()`, us (p99) | seconds to open them | server RSS, MiB "
            "| server threads |",
            "|---|---|---|---|---|", *rows, ""]


def proxies_curve(runner, counts):
    p = runner.p
    rows = []
    for count in counts:
        metric = f"proxies_{count}"
        server, port = runner.start_server("pynto", MODE)
        try:
            extra = ["--count", str(count), "--hold-secs", str(60 + count / 5_000)] + runner.lat_args()
            status, lines = runner.run_client("pynto", MODE, port, "proxies", extra,
                                              p["task_timeout"] + 60 + count / 5_000)
        finally:
            stop(server)
        held = next((x for x in lines if x.get("metric") == "held"), {})
        info = dict(count=count, held=held.get("value"), hold_secs=held.get("secs"),
                    client_bytes=held.get("client_bytes"), server_bytes=held.get("server_bytes"))
        got = [x for x in lines if x.get("metric") == "s1"]
        runner.record_lines(MODE, "pynto", "C2", status, got, [metric], rename={"s1": metric}, **info)
        rec = runner.records[-1]
        if info["held"] is not None and info["held"] < count:
            rec["note"] = f"only {info['held']:,} of {count:,} proxies made in time"
        per = lambda b: f"{b / max(1, info['held']):,.0f}" if b is not None and info["held"] else "-"  # noqa: E731
        secs = f"{info['hold_secs']:.2f}" if info["hold_secs"] is not None else "-"
        rows.append(f"| {count:,} | {info['held'] if info['held'] is not None else '-':,} | {lat(rec)} | "
                    f"{secs} | {per(info['client_bytes'])} | {per(info['server_bytes'])} |")
    return ["### C2: `conn.root.f()` against live proxies held by the client", "",
            "The client holds proxies to objects the server made beforehand (`root.pool(start, n)`, "
            "10,000 at a time), then calls `conn.root.f()`.", "",
            "| proxies asked | held | `conn.root.f()`, us (p99) | seconds to get them "
            "| client bytes per proxy | server bytes per reference |",
            "|---|---|---|---|---|---|", *rows, ""]


def size_label(size):
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift:
            return f"{size >> shift} {unit}"
    return f"{size} B"


def size_curve(runner, sizes):
    p = runner.p
    impls = ["pynto", "pyfloor", "rustfloor"]
    for impl in impls:
        server, port = runner.start_server(impl, MODE)
        try:
            for size in sizes:
                # Many reps of small payloads; one or two of the largest (memory and time).
                reps = max(1, min(200, (256 << 20) // size))
                secs = 1.0 if size <= (1 << 20) else 10.0
                timeout = p["task_timeout"] + size / 20e6
                rename = {op: f"{op}_{size}" for op in ("put", "get")}
                for op in ("put", "get"):
                    if impl == "rustfloor":
                        status, lines = runner.run_client(
                            impl, MODE, port, "bw",
                            ["--op", op, "--size", str(size), "--reps", str(reps), "--max-secs", str(secs)],
                            timeout)
                        runner.record_lines(MODE, impl, "C3", status, lines, [rename[op]],
                                            rename={"bandwidth": rename[op]}, size=size)
                    else:
                        extra = ["--what", op, "--size", str(size), "--reps", str(reps),
                                 "--max-secs", str(secs)]
                        status, lines = runner.run_client(impl, MODE, port, "bulk", extra, timeout)
                        runner.record_lines(MODE, impl, "C3", status, lines, [rename[op]],
                                            rename=rename, size=size)
                if server.poll() is not None:
                    break
        finally:
            stop(server)
    recs = {(r["impl"], r["metric"]): r for r in runner.records if r["scenario"] == "C3"}

    def mbps(impl, metric):
        rec = recs.get((impl, metric))
        main, _ = figure(rec, "mbps")
        if main is None:
            return rec.get("status", "-") if rec else "-"
        return f"{main:,.0f}"

    rows = []
    for size in sizes:
        cells = [mbps(impl, f"{op}_{size}") for op in ("put", "get") for impl in impls]
        rows.append(f"| {size_label(size)} | " + " | ".join(cells) + " |")
    return ["### C3: MB/s against payload size", "",
            "`conn.root.put(data)` (up) and `conn.root.get(n)` (down) against the floors' put and get; "
            "median of up to 200 repetitions (fewer above 1 MiB: one at 256 MiB and more).", "",
            "| payload | pynto up | Python floor up | Rust floor up | pynto down | Python floor down "
            "| Rust floor down |",
            "|---|---|---|---|---|---|---|", *rows, ""]

