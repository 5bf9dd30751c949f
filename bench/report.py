"""docs/benchmarks.md from the records of bench/run.py: tables, targets (issue 13) and curves."""

import re

IMPLS = ["pynto", "rpyc", "pyro5", "mpm", "pyfloor", "rustfloor"]
PEERS = ["rpyc", "pyro5", "mpm"]
IMPL_NAMES = {"pynto": "pynto", "rpyc": "RPyC", "pyro5": "Pyro5", "mpm": "mp.managers",
              "pyfloor": "Python floor", "rustfloor": "Rust floor"}
MIB = 1 << 20

# (scenario, metric, label, unit kind); unit kinds: lat (us), ms, mbps, cps (calls/s), bytes, count.
METRICS = [
    ("S1", "s1", "`conn.root.f()` (floor: 32-byte round trip)", "lat"),
    ("S1", "s1c", "`f = conn.root.f; f()`", "lat"),
    ("S2", "s2", "`conn.root.value`", "lat"),
    ("S3", "s3", '`conn.root.g(1, "two", 3.0)`', "lat"),
    ("S3", "s3l", "`conn.root.h([0, 1, ..., 9])`, a 10-item list argument", "lat"),
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
KIND = {m: k for _, m, _, k in METRICS}
UNITS = {"lat": "us", "ms": "ms", "mbps": "MB/s", "cps": "calls/s", "bytes": "B", "count": ""}

#: What a peer lacks, by (impl, scenario): the footnote its "-" cells point to.
GAPS = {
    ("mpm", "S2"): "a",
    ("mpm", "S4"): "b",
    ("pyro5", "S9"): "c",
    ("mpm", "S9"): "c",
    ("pyro5", "S10"): "d",
    ("mpm", "S10"): "d",
}
FOOTNOTES = {
    "a": "multiprocessing.managers proxies expose methods only: there is no attribute read.",
    "b": "multiprocessing.managers has no callbacks: a local function does not pickle, and a "
         "client serves nothing.",
    "c": "Pyro5 and multiprocessing.managers return these objects by value (or not at all), so there "
         "are no remote references to count.",
    "d": "Pyro5 and multiprocessing.managers have no asyncio and no asynchronous calls (Pyro5 dropped "
         "Pyro4's async proxies).",
}


def gap(impl, metric):
    scenario = next((s for s, m, _, _ in METRICS if m == metric), None)
    return GAPS.get((impl, scenario))


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
    if metric in ("s1", "s1c", "s2", "s3", "s3l", "await_seq"):
        return recs.get((mode, impl, "s1"))
    if metric == "s4":
        r = recs.get((mode, impl, "s1"))
        if r is None or r.get("status") != "ok":
            return r
        return {**r, "metric": "s4", "median_ns": 2 * r["median_ns"], "p99_ns": 2 * r["p99_ns"]}
    return recs.get((mode, impl, metric))


def fmt_fig(main, kind):
    if kind in ("lat", "ms"):
        return f"{main:.3g}" if main < 100 else f"{main:.0f}"
    if kind in ("bytes", "cps", "mbps"):
        return f"{main:,.0f}"
    return str(main)


def cell(rec, kind, footnote=None):
    main, p99 = figure(rec, kind)
    if main is None:
        if rec is None:
            return f"- ({footnote})" if footnote else "-"
        return rec.get("status", "-")
    text = fmt_fig(main, kind)
    if p99 is not None:
        text += f" ({fmt_fig(p99, kind)})"
    return text


def ratio_of(a, b):
    if not a or not b:
        return "-"
    r = a / b
    return f"{r:.2f}x" if r >= 0.1 else f"{r:.2g}x"


def better(kind):
    """The better of two figures of this kind."""
    return max if kind in ("mbps", "cps") else min


def best_peer(recs, mode, metric, kind):
    """(figure, impl) of the best peer that measured `metric`, or (None, None)."""
    got = [(figure(recs.get((mode, impl, metric)), kind)[0], impl) for impl in PEERS]
    got = [(f, impl) for f, impl in got if f]
    if not got:
        return None, None
    return better(kind)(got, key=lambda x: x[0])


def report(runner, facts, curves_text):
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
    w("for MB/s and calls/s higher is better; \"best peer\" is the best of RPyC, Pyro5 and")
    w("mp.managers on that row. The floors are a length-prefixed TCP echo (`bench/floor.rs`,")
    w("`bench/pyfloor.py`, TCP_NODELAY); a floor's S2-S3 comparison is its 32-byte round trip, S4 is")
    w("two of them.")
    w("")
    w("The peers: RPyC 6 with its `ThreadedServer`; Pyro5 5.x with the `marshal` serializer (the default")
    w("`serpent` would send bytes as base64), TCP_NODELAY and a 400-thread pool, one shared service")
    w("instance, the server keeping one proxy per callback (S2 uses `serpent`: 5.17's `marshal` fails")
    w("on attribute reads); `multiprocessing.managers` (`BaseManager`, stdlib, as it comes: it leaves")
    w("Nagle's algorithm on). Pyro5 and mp.managers return S6's list by value, so their three S6 rows")
    w("all time a copy.")
    w("")
    w("Scenarios: S1 null call, S2 attribute read, S3 small arguments and a 10-item list (crosses by")
    w("reference in pynto and RPyC, by value in Pyro5 and mp.managers), S4 server-to-client callback,")
    w("S5 bulk bytes, S6 iterating a remote list (pynto fetches a list's items one per round trip,")
    w("so a mutation between two `next` calls is seen; `obtain` copies it in one), S7 concurrency,")
    w("S8 connection set-up,")
    w("S9 memory (measured once, unpinned; N given per row), S10 asynchronous calls (pynto awaited in")
    w("one asyncio loop; RPyC has no asyncio, so its closest equivalent `rpyc.async_(f)().value` is")
    w("shown; the floors' figure is their S1 round trip). S10's 100-way row times each `gather` of")
    w("100 calls and divides by 100, so")
    w("its p99 is that of gather means. RPyC's 100-way row is dominated by a stall of about 45 ms per")
    w("batch of pipelined calls, whatever the batch width, so it shows that stall rather than a")
    w("per-call cost.")
    w("")
    targets(w, recs, only)
    for mode in ("pinned", "unpinned"):
        w(f"## Results, {mode}")
        w("")
        w("| scenario | what | unit | " + " | ".join(IMPL_NAMES[i] for i in IMPLS)
          + " | pynto/best peer | pynto/Rust floor |")
        w("|" + "---|" * (len(IMPLS) + 5))
        for scenario, metric, label, kind in METRICS:
            if scenario not in only:
                continue
            if scenario == "S9" and mode == "pinned":
                continue
            m = "unpinned" if scenario == "S9" else mode
            row = [recs.get((m, impl, metric)) for impl in ("pynto", *PEERS)]
            floors = [floor_record(recs, m, impl, metric) for impl in ("pyfloor", "rustfloor")]
            if all(r is None for r in row + floors):
                continue
            unit = {"lat": "us (p99)", "ms": "ms (p99)"}.get(kind, UNITS[kind])
            if scenario == "S9":
                n = next((r.get("refs") or r.get("proxies") or r.get("n") for r in row if r), "")
                label = label.replace("N ", f"{n:,} " if isinstance(n, int) else "N ")
            cells = [cell(r, kind, gap(impl, metric)) for r, impl in zip(row + floors, IMPLS)]
            p = figure(row[0], kind)[0]
            bp, _ = best_peer(recs, m, metric, kind)
            w(f"| {scenario} | {label} | {unit} | " + " | ".join(cells)
              + f" | {ratio_of(p, bp)} | {ratio_of(p, figure(floors[1], kind)[0])} |")
        w("")
    used = sorted({GAPS[k] for k in GAPS if k[1] in only})
    if used:
        for key in used:
            w(f"- ({key}) {FOOTNOTES[key]}")
        w("")
    if curves_text:
        w(curves_text)
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


def targets(w, recs, only):
    """Issue 13's targets and DESIGN.md section 8's aims, each judged pinned and unpinned."""
    rows = []

    def fig(mode, impl, metric):
        return figure(floor_record(recs, mode, impl, metric) if impl.endswith("floor")
                      else recs.get((mode, impl, metric)), KIND[metric])[0]

    def unit(x, kind):
        return f"{fmt_fig(x, kind)} {UNITS[kind]}"

    def ahead(metric, mode):
        """pynto against the best peer and the Python floor: (text, ok)."""
        kind = KIND[metric]
        p = fig(mode, "pynto", metric)
        others = [(fig(mode, impl, metric), impl) for impl in PEERS + ["pyfloor"]]
        others = [(f, impl) for f, impl in others if f]
        if not p or not others:
            return "not measured", None
        b, who = better(kind)(others, key=lambda x: x[0])
        ok = better(kind)(p, b) == p and p != b
        return f"{unit(p, kind)} vs {IMPL_NAMES[who]} {unit(b, kind)} = {p / b:.2f}x", ok

    def against(metric, mode, base_impl, base_metric, limit, at_least, scale=1.0):
        kind = KIND[metric]
        p = fig(mode, "pynto", metric)
        b = fig(mode, base_impl, base_metric)
        if not p or not b:
            return "not measured", None
        b *= scale
        r = p / b
        return f"{unit(p, kind)} vs {unit(b, kind)} = {r:.2f}x", (r >= limit if at_least else r <= limit)

    def line(scenario, what, aim, judge):
        if not set(scenario.split("+")) <= set(only):
            return
        cells = []
        for mode in ("pinned", "unpinned"):
            text, ok = judge(mode)
            verdict = "n/a" if ok is None else ("**met**" if ok else "**missed**")
            cells.append(f"{text}: {verdict}")
        rows.append(f"| {what} | {aim} | {cells[0]} | {cells[1]} |")

    ahead_aim = "ahead of every peer and the Python floor"
    line("S1", "`conn.root.f()`", ahead_aim, lambda m: ahead("s1", m))
    line("S3", "10-item list argument", ahead_aim, lambda m: ahead("s3l", m))
    line("S4", "server-to-client callback", ahead_aim, lambda m: ahead("s4", m))
    line("S5", "64 MiB up", ahead_aim, lambda m: ahead("put_64MiB", m))
    line("S5", "64 MiB down", ahead_aim, lambda m: ahead("get_64MiB", m))
    line("S7", "8 client processes, calls/s", ahead_aim, lambda m: ahead("hammer", m))
    line("S8", "connect + first call", ahead_aim, lambda m: ahead("connect", m))
    line("S10+S1", "sequential `await`", ahead_aim + " (its round trip)", lambda m: ahead("await_seq", m))
    line("S5", "64 MiB up", ">= 70% of the Rust floor",
         lambda m: against("put_64MiB", m, "rustfloor", "put_64MiB", 0.7, True))
    line("S5", "64 MiB down", ">= 70% of the Rust floor",
         lambda m: against("get_64MiB", m, "rustfloor", "get_64MiB", 0.7, True))
    line("S8", "connect + first call", "<= 2x the Rust floor's connect + round trip",
         lambda m: against("connect", m, "rustfloor", "connect", 2.0, False))
    line("S10", "sequential `await`", "<= 1.3x a blocking call (same run)",
         lambda m: against("await_seq", m, "pynto", "await_sync", 1.3, False))
    line("S4+S1", "server-to-client callback", "<= 2x the Rust floor's two round trips",
         lambda m: against("s4", m, "rustfloor", "s4", 2.0, False))
    line("S7", "8 client processes, calls/s", ">= 50% of the Rust floor",
         lambda m: against("hammer", m, "rustfloor", "hammer", 0.5, True))
    line("S1", "`conn.root.f()`", "<= 1.5x the Rust floor (DESIGN.md)",
         lambda m: against("s1", m, "rustfloor", "s1", 1.5, False))

    def iterate(mode):
        p = fig(mode, "pynto", "naive")
        return (f"{p:.2f} ms", p <= 10) if p else ("not measured", None)

    line("S6", "iterate 10,000 remote items", "<= 10 ms (DESIGN.md)", iterate)
    w("## Targets (issue 13; DESIGN.md section 8), judged pinned and unpinned")
    w("")
    w("Each cell: pynto's figure against the one it is judged by, their ratio, the verdict.")
    w("")
    w("| target | aim | pinned | unpinned |")
    w("|---|---|---|---|")
    for r in rows:
        w(r)
    w("")
