"""The benchmark driver behind `cargo xtask bench` (stdlib only; any Python 3.11 runs it).

Starts each server (pynto, RPyC, Pyro5, multiprocessing.managers, the Python socket floor, the
Rust floor) in its own process, runs the scenarios S1-S10 against it from separate client
processes, once with every process pinned to core 0 (`taskset -c 0`) and once unpinned, then the
cost curves C1-C3 (bench/curves.py, pynto and the floors only, pinned), and writes JSON lines and
the markdown report (bench/report.py). Every client process runs under a timeout; one that
overruns is killed and its metrics are reported as "timeout".

`cargo xtask bench` passes `--only` with its own scenario list even when not asked to restrict
the run; when its `--command` carries no `--only`, every scenario here runs.
"""

import argparse
import datetime
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

from procs import read_line, stop
from report import IMPL_NAMES, IMPLS, MIB, report

import curves

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS = ["S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8", "S9", "S10", "C1", "C2", "C3"]
CURVES = ["C1", "C2", "C3"]


def params(quick):
    """Iteration counts and time bounds (seconds)."""
    if quick:
        return dict(n=2000, lat_secs=0.3, bulk_reps=5, bulk_secs=1.0, big_reps=2, big_secs=5.0,
                    big_timeout=30, iter_reps=1, iter_warmup=0, iter_secs=3.0, hammer_secs=1.0, connect_n=50,
                    connect_secs=1.0, memory_n=10_000, memory_secs=20.0, task_timeout=60)
    return dict(n=20_000, lat_secs=1.5, bulk_reps=20, bulk_secs=2.0, big_reps=3, big_secs=8.0,
                big_timeout=60, iter_reps=5, iter_warmup=1, iter_secs=6.0, hammer_secs=3.0, connect_n=300,
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
        #: The markdown of the cost curves (bench/curves.py), empty when none ran.
        self.curves = ""
        self.date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    def python(self, impl):
        return self.args.peers_python if impl in ("rpyc", "pyro5", "mpm") else self.args.pynto_python

    def prefix(self, mode):
        return ["taskset", "-c", "0"] if mode == "pinned" else []

    def start_server(self, impl, mode, stderr=subprocess.DEVNULL):
        if impl == "rustfloor":
            cmd = [self.args.floor, "server"]
        else:
            cmd = [self.python(impl), os.path.join(HERE, "server.py"), impl]
        proc = subprocess.Popen(self.prefix(mode) + cmd, stdout=subprocess.PIPE,
                                stderr=stderr, stdin=subprocess.DEVNULL, text=True)
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
        """Run one client to completion: (status, [json objects]); a client that fails leaves
        its telling stderr line in `self.last_error`."""
        self.last_error = ""
        cmd = self.client_cmd(impl, mode, port, task, extra)
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return "timeout", []
        lines = [json.loads(x) for x in out.stdout.splitlines() if x.startswith("{")]
        if out.returncode != 0:
            how = f"signal {-out.returncode}" if out.returncode < 0 else f"status {out.returncode}"
            said = [x for x in out.stderr.splitlines() if x.strip()]
            first = next((x for x in said if "panicked" in x or "Error" in x), said[-1] if said else "")
            self.last_error = first.strip()[:300]
            sys.stderr.write(f"  ! {mode} {impl} {task} exited with {how} {first[:200]}\n")
            self.warnings.append(f"{mode} {IMPL_NAMES[impl]} client `{task}` ended with {how}"
                                 + (" after printing its results" if lines else "")
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

    def record_lines(self, mode, impl, scenario, status, lines, expected, rename=None, error=None, **extra):
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
                self.record(mode, impl, scenario, metric, status=status if status != "ok" else "missing",
                            **({"error": error} if error else {}), **extra)

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
        if not impl.endswith("floor") and impl != "mpm":  # mp.managers: methods only
            self.latency(mode, impl, port, "S2", ["s2"])

    def s3(self, mode, impl, port):
        if not impl.endswith("floor"):
            self.latency(mode, impl, port, "S3", ["s3", "s3l"])

    def s4(self, mode, impl, port):
        if impl.endswith("floor") or impl == "mpm":
            return  # floors: two S1 round trips, in the report; mp.managers has no callbacks
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
        extra = ["--reps", str(p["iter_reps"]), "--max-secs", str(p["iter_secs"]),
                 "--warmup", str(p["iter_warmup"])]
        # RPyC's naive iteration takes a second or more per pass: allow for it.
        status, lines = self.run_client(impl, mode, port, "iterate", extra, p["task_timeout"])
        self.record_lines(mode, impl, "S6", status, lines, ["naive", "list", "obtain"])

    def s7(self, mode, impl, port):
        p = self.p
        secs = p["hammer_secs"]
        # Enough head start for 8 interpreters to import and connect, even on one core.
        head_start = (3.0 if mode == "pinned" else 2.0) * (0.5 if self.args.quick else 1.0)
        start_at = time.time_ns() + int(head_start * 1e9)
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
        if impl not in ("pynto", "rpyc"):  # the others have no remote references
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
        if impl not in ("pynto", "rpyc"):  # the others have no asynchronous calls
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
                wanted = [s for s in SCENARIOS if s in only and s != "S9" and s not in CURVES]
                if not wanted:
                    continue
                began = time.monotonic()
                server, port = self.start_server(impl, mode)
                try:
                    for s in wanted:
                        if server.poll() is not None:
                            self.record(mode, impl, s, "server", status="server died")
                            break
                        getattr(self, s.lower())(mode, impl, port)
                finally:
                    stop(server)
                print(f"  ({mode} {impl}: {time.monotonic() - began:.0f} s)", flush=True)
            # Memory does not depend on pinning: measure it once, unpinned.
            if mode == "unpinned" and "S9" in only:
                for impl in IMPLS:
                    self.s9(mode, impl)
        self.curves = curves.run(self, [c for c in CURVES if c in only])


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
        ("rpyc", args.peers_python, "import sys, rpyc; print(sys.version.split()[0], rpyc.__version__)"),
        ("pyro5", args.peers_python, "import sys, Pyro5; print(sys.version.split()[0], Pyro5.__version__)"),
    ):
        out = subprocess.run([py, "-c", code], capture_output=True, text=True).stdout.split()
        versions[name] = out
    if versions["pynto"]:
        facts["Python"] = f"CPython {versions['pynto'][0]}"
    if versions["rpyc"]:
        facts["RPyC"] = versions["rpyc"][1]
    if versions["pyro5"]:
        facts["Pyro5"] = versions["pyro5"][1]
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
    parser.add_argument("--peers-python", required=True, help="a Python with rpyc 6 and Pyro5 5")
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

    # C1 holds up to 10,000 connections (a pynto server may use two descriptors for each):
    # every process started from here may use 65,536 files where the hard limit can be raised
    # (root), else as many as the hard limit allows.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(hard, 65536),) * 2)
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    facts = machine_facts(args)
    facts["Open files limit"] = str(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    runner = Runner(args)
    began = time.monotonic()
    runner.run()
    facts["Run time"] = f"{time.monotonic() - began:.0f} s{' (--quick)' if args.quick else ''}"
    try:
        with open("/proc/loadavg") as f:
            facts["Load average at the end"] = " ".join(f.read().split()[:3])
    except OSError:
        pass
    loads = [float(facts[k].split()[0]) for k in ("Load average at start", "Load average at the end")
             if k in facts]
    if loads and max(loads) > (os.cpu_count() or 1):
        facts["Note"] = ("the load average exceeded the number of cores: other work shared them, so "
                         "absolute figures are noisier than on a quiet machine; each row's ratios come "
                         "from the same run")

    os.makedirs(os.path.dirname(args.results), exist_ok=True)
    with open(args.results, "w") as f:
        for rec in runner.records:
            f.write(json.dumps(rec) + "\n")
    text = report(runner, facts, runner.curves)
    os.makedirs(os.path.dirname(args.doc), exist_ok=True)
    with open(args.doc, "w") as f:
        f.write(text)
    print(f"\nwrote {args.results} ({len(runner.records)} records) and {args.doc}")


if __name__ == "__main__":
    main()
