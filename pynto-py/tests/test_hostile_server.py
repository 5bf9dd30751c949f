"""A server that survives the real world: closed connections released, handshakes that cannot
hold the accept loop, a peer that stops reading stalling only itself, liveness that counts
bytes, frames that may not trickle, and limits set from Python. Real server processes and
sockets throughout; after each hostile act the server must still serve a well-behaved client.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

import pynto
from helpers import ServerProcess, child_env
from hostile import Relay, closed_by_peer, fd_count, rss_bytes, settle, thread_count
from test_connect import certificates  # noqa: F401 - the TLS fixture

SERVICE = ("--service", "lifecycle_services:Target", "--port", "0")
#: Connect/close cycles; `cargo xtask soak` runs 100,000.
CYCLES = int(os.environ.get("PYNTO_SOAK_CYCLES", "3000"))


def _serves(address: str, **kwargs: Any) -> None:
    """A well-behaved client is served: connect, call, close (on a thread, so a server that
    hangs fails the test instead of hanging it)."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            with pynto.connect(address, **kwargs) as conn:
                outcome.append(conn.root.echo([1, "two", 3.0]))
        except BaseException as exc:  # noqa: BLE001 - reported below
            outcome.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(30)
    assert outcome, "a well-behaved client got no answer within 30 s"
    assert outcome[0] == [1, "two", 3.0], outcome[0]


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition("://")[2].rpartition(":")
    return host, int(port)


# --------------------------------------------------------------------------- item 1


@pytest.mark.timeout(300)
def test_closed_connections_leave_the_server_under_a_low_fd_limit() -> None:
    """Thousands of connect/close cycles against a server limited to 1,024 descriptors: its
    descriptors, threads and memory come back, and on_disconnect ran for each."""
    with ServerProcess(*SERVICE) as server:
        pid = server.proc.pid
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (1024, 1024))
        for _ in range(50):
            pynto.connect(server.address).close()
        base_fds = settle(lambda: fd_count(pid), lambda n: False, timeout=1.0)
        base_threads = thread_count(pid)
        base_rss = rss_bytes(pid)
        for _ in range(CYCLES):
            pynto.connect(server.address).close()
        fds = settle(lambda: fd_count(pid), lambda n: n <= base_fds)
        assert fds <= base_fds, f"{fds - base_fds} descriptors left after {CYCLES} closed connections"
        with pynto.connect(server.address) as conn:
            seen = settle(conn.root.disconnects, lambda n: n >= CYCLES + 50)
            assert seen >= CYCLES + 50, f"on_disconnect ran {seen} times for {CYCLES + 50} connections"
        # Workers the pool started while connections overlapped idle out after 30 s.
        threads = settle(lambda: thread_count(pid), lambda n: n <= base_threads + 8, timeout=60)
        assert threads <= base_threads + 8, f"{threads - base_threads} threads left"
        grown = rss_bytes(pid) - base_rss
        print(f"{CYCLES} cycles: fds {base_fds} -> {fds}, threads {base_threads} -> {threads}, "
              f"RSS +{grown / (1 << 20):.1f} MiB")
        assert grown < 10 << 20, f"RSS grew by {grown >> 20} MiB over {CYCLES} cycles"
        _serves(server.address)


def test_an_open_connection_costs_at_most_two_descriptors() -> None:
    with ServerProcess(*SERVICE) as server:
        pid = server.proc.pid
        with pynto.connect(server.address) as warm:
            warm.root.pid()
        base = settle(lambda: fd_count(pid), lambda n: False, timeout=0.5)
        conns = [pynto.connect(server.address) for _ in range(100)]
        try:
            for conn in conns:
                conn.root.echo(1)
            assert fd_count(pid) - base <= 200
        finally:
            for conn in conns:
                conn.close()
        assert settle(lambda: fd_count(pid), lambda n: n <= base) <= base


def test_a_connection_the_peer_closes_runs_on_disconnect_once() -> None:
    with ServerProcess(*SERVICE) as server:
        with pynto.connect(server.address) as probe:
            before = probe.root.disconnects()
            victim = pynto.connect(server.address)
            victim.root.echo(1)
            victim.close()
            after = settle(probe.root.disconnects, lambda n: n >= before + 1)
            time.sleep(0.3)
            assert probe.root.disconnects() == before + 1 == after


# --------------------------------------------------------------------------- item 2


def test_peers_dripping_into_a_tls_port_block_no_client(certificates) -> None:  # noqa: F811
    d = certificates
    with ServerProcess("--classic", "--port", "0", "--tls-cert", str(d / "server.pem"),
                       "--tls-key", str(d / "server.key"), "--limit", "handshake_timeout=3") as server:
        host, port = _host_port(server.address)
        silent = socket.create_connection((host, port))
        dripper = socket.create_connection((host, port))
        stop = threading.Event()

        def drip() -> None:
            hello = b"\x16\x03\x01\x02\x00" + b"\x01" * 512
            for i in range(len(hello)):
                if stop.wait(0.5):
                    return
                try:
                    dripper.sendall(hello[i : i + 1])
                except OSError:
                    return

        t = threading.Thread(target=drip, daemon=True)
        t.start()
        try:
            tls = pynto.TLS(ca=str(d / "ca.pem"))
            result: list[Any] = []

            def client() -> None:
                with pynto.connect(f"tls://127.0.0.1:{port}", tls=tls) as conn:
                    result.append(conn.eval("6 * 7"))

            c = threading.Thread(target=client, daemon=True)
            c.start()
            c.join(20)
            assert result == [42], "a TLS client was not served while two peers stalled handshakes"
            # Both stalling peers are dropped at the handshake deadline, drip or not.
            assert closed_by_peer(silent, 15)
            assert closed_by_peer(dripper, 15)
        finally:
            stop.set()
            silent.close()
            dripper.close()


# --------------------------------------------------------------------------- item 6

_STUCK_CLIENT = """
import sys, threading, pynto
conn = pynto.connect(sys.argv[1])
root = conn.root
never = threading.Event()
def callback():
    never.wait()
threading.Thread(target=root.ask, args=(callback,), daemon=True).start()
pynto.async_(root.blob)(256 << 20)
print("ready", flush=True)
never.wait()
"""


@pytest.mark.timeout(300)
def test_a_peer_that_stops_reading_stalls_only_itself() -> None:
    with ServerProcess(*SERVICE, "--limit", "write_timeout=4", "--limit", "handshake_timeout=2") as server:
        pid = server.proc.pid
        with pynto.connect(server.address) as warm:
            warm.root.echo(1)
        base_fds = settle(lambda: fd_count(pid), lambda n: False, timeout=0.5)
        stuck = subprocess.Popen([sys.executable, "-c", _STUCK_CLIENT, server.address],
                                 stdout=subprocess.PIPE, text=True, env=child_env())
        try:
            assert stuck.stdout is not None and stuck.stdout.readline().strip() == "ready"
            time.sleep(0.5)
            stuck.send_signal(signal.SIGSTOP)
            # The housekeeper still enforces handshake deadlines ...
            half_open = socket.create_connection(_host_port(server.address))
            try:
                assert closed_by_peer(half_open, 15), "a silent socket outlived the handshake deadline"
            finally:
                half_open.close()
            # ... other clients are served ...
            _serves(server.address)
            # ... and the peer that stopped reading is dropped at the write timeout.
            fds = settle(lambda: fd_count(pid), lambda n: n <= base_fds, timeout=30)
            assert fds <= base_fds, "the stuck peer's connection was not dropped"
        finally:
            stuck.kill()
            stuck.send_signal(signal.SIGCONT)
            stuck.wait()
            assert stuck.stdout is not None
            stuck.stdout.close()
        _serves(server.address)


# --------------------------------------------------------------------------- item 7


@pytest.mark.timeout(300)
def test_a_server_paused_longer_than_the_old_liveness_window_keeps_its_clients() -> None:
    """A debugger pause (SIGSTOP) of 8 s: the waiting call completes."""
    with ServerProcess(*SERVICE) as server, pynto.connect(server.address) as conn:
        call = pynto.async_(conn.root.sleep)(1.0)
        time.sleep(0.2)
        server.proc.send_signal(signal.SIGSTOP)
        try:
            time.sleep(8)
        finally:
            server.proc.send_signal(signal.SIGCONT)
        assert call.wait(30) is None or True
        assert call.value == 1.0
        assert conn.root.echo("still here") == "still here"


@pytest.mark.timeout(300)
def test_a_peer_whose_host_is_gone_fails_waiting_calls_within_the_liveness_timeout() -> None:
    with ServerProcess(*SERVICE) as server:
        conn = pynto.connect(server.address, limits=pynto.Limits(liveness_timeout=3))
        try:
            call = pynto.async_(conn.root.sleep)(2.0)
            time.sleep(0.2)
            server.proc.send_signal(signal.SIGSTOP)
            call.wait(30)
            assert call.ready, "the call still waits 30 s after its peer froze"
            assert isinstance(call.error, pynto.ConnectionClosed)
            assert "stopped answering" in str(call.error)
        finally:
            server.proc.send_signal(signal.SIGCONT)
            conn.close()


class _SlowLink:
    """A server in its own network namespace behind a 1 Mbit/s link (tc tbf both ways)."""

    def __init__(self) -> None:
        tag = f"{os.getpid() % 10000}"
        self.ns = f"pynto{tag}"
        self.host_if, self.ns_if = f"pyh{tag}", f"pys{tag}"
        self.server_ip = f"10.{os.getpid() % 200 + 20}.7.2"
        self.host_ip = self.server_ip.rsplit(".", 1)[0] + ".1"

    def _run(self, *argv: str) -> None:
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            raise OSError(f"{' '.join(argv)}: {done.stderr.strip()}")

    def __enter__(self) -> "_SlowLink":
        try:
            self._run("ip", "netns", "add", self.ns)
        except (OSError, FileNotFoundError) as exc:
            pytest.skip(f"network namespaces are not available here: {exc}")
        try:
            self._run("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
            self._run("ip", "link", "set", self.ns_if, "netns", self.ns)
            self._run("ip", "addr", "add", f"{self.host_ip}/24", "dev", self.host_if)
            self._run("ip", "link", "set", self.host_if, "up")
            inside = ("ip", "netns", "exec", self.ns)
            self._run(*inside, "ip", "addr", "add", f"{self.server_ip}/24", "dev", self.ns_if)
            self._run(*inside, "ip", "link", "set", self.ns_if, "up")
            self._run(*inside, "ip", "link", "set", "lo", "up")
            shape = ("root", "tbf", "rate", "1mbit", "burst", "16kb", "latency", "500ms")
            try:
                self._run("tc", "qdisc", "add", "dev", self.host_if, *shape)
                self._run(*inside, "tc", "qdisc", "add", "dev", self.ns_if, *shape)
            except OSError as exc:
                pytest.skip(f"the kernel has no tbf queueing discipline: {exc}")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)


@pytest.mark.timeout(300)
def test_a_megabyte_each_way_over_a_1_mbit_link_completes() -> None:
    """About 8 s each way, longer than the old 5 s liveness window: both complete."""
    with _SlowLink() as link:
        env = child_env()
        proc = subprocess.Popen(
            ["ip", "netns", "exec", link.ns, sys.executable, "-m", "pynto", "serve",
             "--service", "lifecycle_services:Target", "--host", link.server_ip, "--port", "0"],
            stdout=subprocess.PIPE, text=True, env=env, cwd=os.path.dirname(__file__))
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.startswith("pynto: serving"), line
            address = line.strip().rsplit(" on ", 1)[1]
            with pynto.connect(address) as conn:
                blob = conn.root.blob(1 << 20)
                assert len(blob) == 1 << 20 and blob[:1] == b"\x5a"
                assert conn.root.size(b"\x01" * (1 << 20)) == 1 << 20
        finally:
            proc.terminate()
            proc.wait(10)
            assert proc.stdout is not None
            proc.stdout.close()


# --------------------------------------------------------------------------- item 8


def test_a_frame_trickled_after_hello_closes_that_connection() -> None:
    with ServerProcess(*SERVICE, "--limit", "liveness_timeout=3") as server:
        relay = Relay(_host_port(server.address))
        try:
            conn = pynto.connect(relay.address)
            assert conn.root.echo(5) == 5
            # A frame header announcing a 16-byte body, then the body, one byte a second.
            relay.drip(b"\x10\x00\x00\x00\x00\x00\x00\x00" + b"\x90" * 16, 1.0)
            assert relay.upstream_closed.wait(20), "the server kept a trickling frame open"
            conn.close()
        finally:
            relay.close()
        _serves(server.address)


# --------------------------------------------------------------------------- item 11


def test_limits_are_checked_when_made() -> None:
    assert pynto.Limits().max_frame == 64 << 20
    with pytest.raises(ValueError, match="max_depth"):
        pynto.Limits(max_depth=0)
    with pytest.raises(TypeError, match="max_frame"):
        pynto.Limits(max_frame="big")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="write_timeout"):
        pynto.Limits(write_timeout=-1)
    assert pynto.Limits(write_timeout=None).write_timeout is None
    assert pynto.Limits.parse(["max_workers=8", "liveness_timeout=2.5"]) == pynto.Limits(
        max_workers=8, liveness_timeout=2.5)
    with pytest.raises(ValueError, match="NAME=VALUE"):
        pynto.Limits.parse(["speed=11"])


def test_serve_refuses_an_unknown_limit() -> None:
    done = subprocess.run([sys.executable, "-m", "pynto", "serve", *SERVICE, "--limit", "speed=11"],
                          capture_output=True, text=True, env=child_env(), timeout=60)
    assert done.returncode == 2
    assert "speed=11" in done.stderr


def test_max_workers_bounds_the_requests_a_server_runs_at_once() -> None:
    with ServerProcess(*SERVICE, "--limit", "max_workers=3") as server:
        pid = server.proc.pid
        with pynto.connect(server.address) as conn:
            base_threads = thread_count(pid)
            calls = [pynto.async_(conn.root.sleep)(1.5) for _ in range(12)]
            for call in calls:
                call.wait(60)
            done = [c for c in calls if c.error is None]
            refused = [c for c in calls if c.error is not None]
            assert all(c.value == 1.5 for c in done)
            assert all(isinstance(c.error, pynto.ProtocolError) and "overloaded" in str(c.error)
                       for c in refused), [str(c.error) for c in refused]
            assert 3 <= len(done) < 12 and refused
            assert thread_count(pid) <= base_threads + 4
            assert conn.root.echo("after") == "after"


def test_a_peer_limit_is_kept_by_the_sender() -> None:
    with ServerProcess(*SERVICE, "--limit", "max_frame=4096") as server:
        with pynto.connect(server.address) as conn:
            with pytest.raises(pynto.ProtocolError, match="larger than the peer accepts"):
                conn.root.echo("x" * 10_000)
            assert conn.root.echo("small") == "small"
