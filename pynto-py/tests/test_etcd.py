"""Discovery on a real etcd: ``Server(announce=)``, ``serve --announce``, ``connect("etcd://")``."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from typing import Iterator

import pytest

import pynto
from etcd_server import EtcdServer, free_port
from helpers import TESTS_DIR, ServerProcess, child_env, wait_until
from pynto._discovery import EtcdClient, EtcdError, EtcdTarget, Watch, resolve


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    server = EtcdServer(tmp_path_factory.mktemp("etcd"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """A group name of this test's own."""
    return f"tests/{request.node.name}"


def announced(url: str) -> set[str]:
    return set(resolve(url).values())


def test_server_announces_itself_and_withdraws_at_close(etcd, name):
    url = etcd.url(name)
    server = pynto.Server(pynto.ClassicService, announce=url)
    assert announced(url) == set(), "announced before start()"
    server.start()
    try:
        assert announced(url) == {server.address}
        with pynto.connect(url) as conn:
            assert conn.eval("1 + 1") == 2
    finally:
        server.close()
    # Revoked by close() itself: no lease left to expire.
    assert announced(url) == set()


def test_serve_announce_and_connect_spread_across_servers(etcd, name):
    url = etcd.url(name)
    servers = [ServerProcess("--classic", "--port", "0", "--announce", url) for _ in range(2)]
    try:
        assert announced(url) == {s.address for s in servers}
        pids = set()
        for _ in range(20):
            with pynto.connect(url) as conn:
                pids.add(conn.modules.os.getpid())
        assert pids == {s.proc.pid for s in servers}
    finally:
        for s in servers:
            s.stop()


def test_killed_server_disappears_when_its_lease_expires(etcd, name):
    url = etcd.url(name)
    ttl = 2
    victim = ServerProcess("--classic", "--port", "0", "--announce", url, "--announce-ttl", str(ttl))
    other = ServerProcess("--classic", "--port", "0", "--announce", url, "--announce-ttl", str(ttl))
    try:
        assert announced(url) == {victim.address, other.address}
        (other_key,) = [k for k, a in resolve(url).items() if a == other.address]
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(10)
        # The lease is no longer renewed: etcd drops the key once it expires.
        assert wait_until(lambda: announced(url) == {other.address}, ttl + 5), announced(url)
        # The survivor renews its lease: the same key outlives several TTLs.
        time.sleep(ttl * 1.5)
        assert resolve(url) == {other_key: other.address}
    finally:
        victim.stop()
        other.stop()


def test_stopped_server_withdraws_at_once(etcd, name):
    url = etcd.url(name)
    server = ServerProcess("--classic", "--port", "0", "--announce", url, "--announce-ttl", "60")
    try:
        assert announced(url) == {server.address}
        assert server.signal(signal.SIGTERM) == 0
        # Gone as soon as the process is: not after the 60 s lease.
        assert announced(url) == set()
    finally:
        server.stop()


def test_connect_says_when_no_server_is_registered(etcd, name):
    with pytest.raises(ConnectionRefusedError, match=r"no server is registered under 'tests/.*' in etcd at 127\.0\.0\.1"):
        pynto.connect(etcd.url(name))


def test_connect_skips_a_dead_registration(etcd, name):
    url = etcd.url(name)
    client = EtcdClient("127.0.0.1", etcd.port)
    lease = client.grant(60)
    client.put(f"{EtcdTarget.parse(url).prefix}dead", f"tcp://127.0.0.1:{free_port()}", lease)
    try:
        with pynto.Server(pynto.ClassicService, announce=url) as server:
            assert len(announced(url)) == 2
            for _ in range(10):
                with pynto.connect(url) as conn:
                    assert conn.peer.endswith(f":{server.port}")
    finally:
        client.revoke(lease)


def test_connect_says_when_no_registered_server_answers(etcd, name):
    url = etcd.url(name)
    client = EtcdClient("127.0.0.1", etcd.port)
    lease = client.grant(60)
    client.put(f"{EtcdTarget.parse(url).prefix}dead", f"tcp://127.0.0.1:{free_port()}", lease)
    try:
        with pytest.raises(ConnectionRefusedError, match="none of the 1 servers registered under"):
            pynto.connect(url)
    finally:
        client.revoke(lease)


def test_a_lost_lease_is_replaced(etcd, name):
    url = etcd.url(name)
    with pynto.Server(pynto.ClassicService, announce=url, announce_ttl=1.5) as server:
        (key,) = resolve(url)
        EtcdClient("127.0.0.1", etcd.port).revoke(int(key.rsplit("/", 1)[1], 16))
        assert announced(url) == set()
        # The keep-alive finds the lease gone and announces the server again, under a new key.
        assert wait_until(lambda: announced(url) == {server.address}, 10)
        assert set(resolve(url)) != {key}


def test_names_do_not_overlap(etcd, name):
    with pynto.Server(pynto.ClassicService, announce=etcd.url(f"{name}/sub")):
        with pynto.Server(pynto.ClassicService, announce=etcd.url(name)) as top:
            assert announced(etcd.url(name)) == {top.address}


def test_watch_reports_servers_joining_and_leaving(etcd, name):
    url = etcd.url(name)
    changes: list[tuple[dict, dict]] = []
    seen = threading.Condition()

    def on_change(added: dict, removed: dict) -> None:
        with seen:
            changes.append((added, removed))
            seen.notify_all()

    first = pynto.Server(pynto.ClassicService, announce=url).start()
    watch = Watch(EtcdTarget.parse(url), on_change).start()
    try:
        assert [set(a.values()) for a, _ in changes] == [{first.address}]
        with pynto.Server(pynto.ClassicService, announce=url) as second:
            with seen:
                assert seen.wait_for(lambda: len(changes) == 2, 10)
            assert set(changes[1][0].values()) == {second.address} and changes[1][1] == {}
        with seen:
            assert seen.wait_for(lambda: len(changes) == 3, 10)
        assert changes[2][0] == {} and set(changes[2][1].values()) == {second.address}
    finally:
        watch.stop()
        first.close()


def test_bad_announce_addresses():
    for bad in ("etcd://127.0.0.1", "etcd://127.0.0.1:2379/", "http://127.0.0.1:2379/x", "etcd://127.0.0.1:port/x"):
        with pytest.raises(ValueError, match="etcd"):
            pynto.Server(pynto.ClassicService, announce=bad)
    with pytest.raises(ValueError, match="announce_ttl"):
        pynto.Server(pynto.ClassicService, announce="etcd://127.0.0.1:2379/x", announce_ttl=0)


def test_unreachable_etcd_fails_start_and_closes_the_server():
    server = pynto.Server(pynto.ClassicService, announce=f"etcd://127.0.0.1:{free_port()}/x")
    with pytest.raises(EtcdError, match="cannot reach etcd at 127.0.0.1"):
        server.start()
    with pytest.raises(OSError):
        pynto.connect(server.address)


def run_serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pynto", "serve", "--classic", "--port", "0", *args],
        capture_output=True, text=True, timeout=30, env=child_env(), cwd=TESTS_DIR,
    )


def test_serve_announce_errors():
    done = run_serve("--announce", "etcd://127.0.0.1")
    assert done.returncode == 2 and "--announce: 'etcd://127.0.0.1': expected etcd://HOST:PORT/NAME" in done.stderr
    done = run_serve("--announce", "etcd://127.0.0.1:1/x", "--announce-ttl", "0")
    assert done.returncode == 2 and "--announce-ttl must be positive" in done.stderr
    done = run_serve("--stdio", "--announce", "etcd://127.0.0.1:1/x")
    assert done.returncode == 2 and "--stdio cannot be combined with --announce" in done.stderr
    done = run_serve("--announce", f"etcd://127.0.0.1:{free_port()}/x")
    assert done.returncode == 1 and "pynto: cannot announce: cannot reach etcd" in done.stderr

