"""Many idle connections on one server: they cost no thread each, one descriptor each and a
few kilobytes each, and leave the server's busy connections as fast as before (issue 13).

The server is a real ``python -m pynto serve`` process; the clients are 2-4 other processes
(each connection costs them descriptors too), which open their share of the connections at
once and keep them open while the server is measured.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from helpers import TESTS_DIR, ServerProcess, child_env, read_line
from hostile import fd_count, rss_bytes, settle, thread_count
from test_connect import certificates  # noqa: F401  (a fixture)

import pynto

SERVICE = ("--service", "lifecycle_services:Target", "--port", "0")
#: Connections held open at once (PYNTO_IDLE_CONNECTIONS overrides, for measuring).
CONNECTIONS = int(os.environ.get("PYNTO_IDLE_CONNECTIONS", "10000"))
#: The same over TLS (handshakes cost more).
TLS_CONNECTIONS = int(os.environ.get("PYNTO_IDLE_TLS_CONNECTIONS", "1000"))
CLIENT_PROCESSES = 3
#: What an idle connection may cost the server, on average.
MAX_BYTES_PER_CONNECTION = 32 << 10


def thread_bound() -> int:
    """Threads the server may run with every connection idle: a small multiple of the cores."""
    return 4 * (os.cpu_count() or 2) + 16


class Clients:
    """``CLIENT_PROCESSES`` processes running ``idle_clients.py`` against one address."""

    def __init__(self, address: str, *extra: str) -> None:
        self.procs = [
            subprocess.Popen(
                [sys.executable, str(TESTS_DIR / "idle_clients.py"), address, *extra],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=child_env(),
            )
            for _ in range(CLIENT_PROCESSES)
        ]

    def ask(self, commands: list[str], expect: str, timeout: float) -> list[str]:
        """Send one command to each process (all run at once) and collect their answers."""
        for proc, command in zip(self.procs, commands):
            assert proc.stdin is not None
            proc.stdin.write(command + "\n")
            proc.stdin.flush()
        answers = []
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            line = read_line(proc.stdout, max(0.1, deadline - time.monotonic())).strip()
            assert line.startswith(expect), f"a client process answered {line!r}"
            answers.append(line)
        return answers

    def close(self) -> None:
        for proc in self.procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in self.procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


@pytest.mark.timeout(300)
def test_ten_thousand_idle_connections_hold_few_threads_and_little_memory() -> None:
    hold_idle_connections(SERVICE, CONNECTIONS)


@pytest.mark.timeout(300)
def test_idle_tls_connections_hold_few_threads_and_little_memory(certificates) -> None:  # noqa: F811
    d = certificates
    tls = ("--tls-cert", str(d / "server.pem"), "--tls-key", str(d / "server.key"))
    hold_idle_connections((*SERVICE, *tls), TLS_CONNECTIONS, str(d / "ca.pem"))


def hold_idle_connections(serve: tuple[str, ...], connections: int, *client_args: str) -> None:
    """Open `connections` from the client processes to a ``pynto serve *serve`` and check
    what they cost the server while idle, and that all of them still answer."""
    tls = {"tls": pynto.TLS(ca=client_args[0])} if client_args else {}
    with ServerProcess(*serve) as server:
        pid = server.proc.pid
        for _ in range(20):
            with pynto.connect(server.address, **tls) as warm:
                warm.root.echo(1)
        bound = thread_bound()
        base_threads = settle(lambda: thread_count(pid), lambda n: n <= bound, timeout=40)
        base_fds = settle(lambda: fd_count(pid), lambda n: False, timeout=0.5)
        base_rss = rss_bytes(pid)
        clients = Clients(server.address, *client_args)
        try:
            share = [connections // CLIENT_PROCESSES] * CLIENT_PROCESSES
            share[0] += connections - sum(share)
            started = time.monotonic()
            clients.ask([f"open {n}" for n in share], "opened", timeout=200)
            opened_in = time.monotonic() - started
            peak_threads = thread_count(pid)
            # Workers started while connections were being opened idle out (pool.rs).
            threads = settle(lambda: thread_count(pid), lambda n: n <= bound, timeout=60)
            fds = fd_count(pid)
            grown = rss_bytes(pid) - base_rss
            per_connection = grown / connections
            kind = "TLS" if client_args else "TCP"
            print(
                f"\n{connections} idle {kind} connections (opened in {opened_in:.1f} s): threads "
                f"{base_threads} -> {threads} (peak {peak_threads}, bound {bound}), fds "
                f"{base_fds} -> {fds}, RSS +{grown / (1 << 20):.1f} MiB = "
                f"{per_connection / 1024:.1f} KiB per connection"
            )
            assert threads <= bound, f"{threads} threads for {connections} idle connections"
            assert connections <= fds - base_fds <= connections + 64, (
                f"{fds - base_fds} descriptors for {connections} connections"
            )
            assert per_connection < MAX_BYTES_PER_CONNECTION, (
                f"{per_connection / 1024:.1f} KiB per idle connection"
            )
            # A busy connection beside them is served, and calls back.
            with pynto.connect(server.address, **tls) as busy:
                for i in range(2000):
                    assert busy.root.echo(i) == i
                assert busy.root.twice(lambda x: x + 1, 20) == 42
            # Every idle connection still answers (a sample of each process's, then all).
            clients.ask(["call 200"] * CLIENT_PROCESSES, "called", timeout=60)
            clients.ask(["all"] * CLIENT_PROCESSES, "called", timeout=200)
            assert settle(lambda: thread_count(pid), lambda n: n <= bound, timeout=60) <= bound
        finally:
            clients.close()
        # Closing them gives the descriptors back.
        assert settle(lambda: fd_count(pid), lambda n: n <= base_fds, timeout=60) <= base_fds
