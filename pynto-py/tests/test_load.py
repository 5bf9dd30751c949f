"""Many clients at once against one server process: 300 threads of one client and 8 client
processes, each making calls that call back into the caller. Every answer must be right, none
lost, and the server's threads must come back afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

import pynto
from helpers import ServerProcess, child_env
from hostile import settle, thread_count

#: Calls per client thread and per client process; `cargo xtask soak` runs 1,000.
CALLS = int(os.environ.get("PYNTO_LOAD_CALLS", "100"))

_CLIENT_PROCESS = """
import sys, pynto
calls = int(sys.argv[2])
with pynto.connect(sys.argv[1]) as conn:
    root = conn.root
    wrong = 0
    for i in range(calls):
        if root.twice(lambda x: x + 1, i) != 2 * (i + 1):
            wrong += 1
    print(calls, wrong, flush=True)
"""


@pytest.mark.timeout(300)
def test_300_threads_and_8_processes_with_callbacks() -> None:
    with ServerProcess("--service", "lifecycle_services:Target", "--port", "0") as server:
        pid = server.proc.pid
        with pynto.connect(server.address) as warm:
            warm.root.echo(0)
        base_threads = settle(lambda: thread_count(pid), lambda n: False, timeout=0.5)
        processes = [
            subprocess.Popen([sys.executable, "-c", _CLIENT_PROCESS, server.address, str(CALLS)],
                             stdout=subprocess.PIPE, text=True, env=child_env())
            for _ in range(8)
        ]
        results: list[tuple[int, int]] = []
        errors: list[BaseException] = []
        lock = threading.Lock()
        with pynto.connect(server.address) as conn:
            root = conn.root

            def client(n: int) -> None:
                right = 0
                try:
                    for i in range(CALLS):
                        if root.twice(lambda x: x * 3, n * 10_000 + i) == 6 * (n * 10_000 + i):
                            right += 1
                except BaseException as exc:  # noqa: BLE001 - reported below
                    with lock:
                        errors.append(exc)
                with lock:
                    results.append((n, right))

            threads = [threading.Thread(target=client, args=(n,)) for n in range(300)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(600)
            assert not errors, errors[:3]
            assert sorted(n for n, _ in results) == list(range(300))
            assert all(right == CALLS for _, right in results), [r for r in results if r[1] != CALLS][:5]
        outputs = []
        for proc in processes:
            out, _ = proc.communicate(timeout=600)
            outputs.append(out.split())
        assert outputs == [[str(CALLS), "0"]] * 8, outputs
        # The pool's extra workers idle out after 30 s; the read loops of the closed connections
        # are gone at once. Allow the pool's idle workers, not one thread per client.
        threads_after = settle(lambda: thread_count(pid), lambda n: n <= base_threads + 16, timeout=60)
        assert threads_after <= base_threads + 16, f"{threads_after - base_threads} threads left"
