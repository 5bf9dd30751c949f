"""``pynto.Pool``: many real server processes used as one, from a list or from etcd."""

from __future__ import annotations

import asyncio
import concurrent.futures
import signal
import threading
from pathlib import Path
from typing import Iterator

import pytest

import pynto
from etcd_server import EtcdServer, free_port
from helpers import ServerProcess, wait_until
from pynto._discovery import resolve


def square(x):
    return x * x


def where(x):
    import os
    import time

    time.sleep(0.02)
    return os.getpid(), x


def run_logged(item):
    """Record that the item ran, in a file of this server process, then take a while."""
    directory, x = item
    import os
    import time

    with open(os.path.join(directory, str(os.getpid())), "a") as f:
        f.write(f"{x}\n")
    time.sleep(0.05)
    return x * 10


def slow_once(marker, seconds):
    import os
    import time

    with open(marker, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(seconds)
    return os.getpid()


def burn(n):
    """A CPU-bound item: a pure-Python loop."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def fail_on(x):
    if x == 3:
        raise ValueError(f"item {x} is bad")
    return x


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    server = EtcdServer(tmp_path_factory.mktemp("etcd"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def three() -> Iterator[list[ServerProcess]]:
    servers = [ServerProcess("--classic", "--port", "0") for _ in range(3)]
    try:
        yield servers
    finally:
        for s in servers:
            s.stop()


def test_map_over_a_list_returns_results_in_order_and_uses_every_server(three):
    with pynto.Pool([s.address for s in three]) as pool:
        assert sorted(pool.servers) == sorted(s.address for s in three)
        assert pool.map(square, range(100)) == [x * x for x in range(100)]
        results = pool.map(where, range(60))
    assert [x for _, x in results] == list(range(60))
    assert {pid for pid, _ in results} == {s.proc.pid for s in three}


def test_submit_returns_an_async_result(three):
    with pynto.Pool([s.address for s in three[:2]], concurrency=2) as pool:
        result = pool.submit(square, 7)
        assert isinstance(result, pynto.AsyncResult)
        assert result.value == 49 and result.ready and result.error is None
        failed = pool.submit(fail_on, 3)
        with pytest.raises(ValueError, match="item 3 is bad"):
            failed.value
        assert isinstance(failed.error, ValueError)
        called = threading.Event()
        later = pool.submit(square, 5)
        later.add_callback(lambda r: called.set() if r.value == 25 else None)
        assert called.wait(10)

        async def both():
            return await pool.submit(square, 3), await pool.submit(square, 4)

        assert asyncio.run(both()) == (9, 16)


def test_map_raises_the_first_failure_in_order(three):
    with pynto.Pool([three[0].address]) as pool:
        with pytest.raises(ValueError, match="item 3 is bad"):
            pool.map(fail_on, range(10))
        # The pool still works.
        assert pool.map(square, [2]) == [4]


def test_a_server_idle_past_the_liveness_interval_takes_a_long_call(three):
    """Regression: a connection idle for longer than liveness_interval + liveness_timeout (2 +
    3 s) was declared dead one housekeeper tick after its next call's ping was sent, because
    the silence was counted from the last frame rather than from the ping."""
    import time

    with pynto.Pool([s.address for s in three]) as pool:
        assert pool.map(square, [1, 2, 3]) == [1, 4, 9]
        time.sleep(6)
        assert pool.map(burn, [300_000] * 9) == [burn(300_000)] * 9
        assert pool.retries == [] and len(pool.servers) == 3


def test_closures_and_lambdas_are_refused_at_once(three):
    factor = 3

    def scaled(x):
        return x * factor

    with pynto.Pool([three[0].address]) as pool:
        with pytest.raises(TypeError, match="closure over factor"):
            pool.map(scaled, [1])
        with pytest.raises(TypeError, match="lambda"):
            pool.submit(lambda x: x, 1)


def test_a_root_method_by_name_on_service_servers():
    servers = [ServerProcess("--service", "services:SampleService", "--port", "0") for _ in range(2)]
    try:
        with pynto.Pool([s.address for s in servers]) as pool:
            assert pool.map("add", range(5)) == list(range(5))
            assert pool.submit("add", 2, b=3).value == 5
            # Teleporting needs a classic server: the error says so.
            with pytest.raises(pynto.ProtocolError, match="not a classic server"):
                pool.map(square, [1])
    finally:
        for s in servers:
            s.stop()


def test_a_server_killed_mid_map_has_its_items_run_elsewhere(three, tmp_path):
    """Every item is done; an item done twice is one the pool reported in ``retries``."""
    items = [(str(tmp_path), x) for x in range(60)]
    victim = three[1]
    victim_log = tmp_path / str(victim.proc.pid)

    def kill_when_busy() -> None:
        if wait_until(lambda: victim_log.exists() and len(victim_log.read_text().split()) >= 3, 30):
            victim.proc.send_signal(signal.SIGKILL)

    killer = threading.Thread(target=kill_when_busy)
    with pynto.Pool([s.address for s in three]) as pool:
        killer.start()
        results = pool.map(run_logged, items)
        killer.join()
        assert victim.proc.wait(10) == -signal.SIGKILL
        assert results == [x * 10 for x in range(60)]
        assert victim.address not in pool.servers and len(pool.servers) == 2
        retried = [r.args[0][1] for r in pool.retries]
        assert all(r.server == victim.address for r in pool.retries)
        assert all(isinstance(r.error, pynto.ConnectionClosed) for r in pool.retries)
    runs: dict[int, int] = {}
    for log in tmp_path.iterdir():
        for line in log.read_text().split():
            runs[int(line)] = runs.get(int(line), 0) + 1
    assert set(runs) == set(range(60)), "an item never ran"
    twice = {x for x, n in runs.items() if n > 1}
    assert twice <= set(retried), f"items {twice - set(retried)} ran twice unreported"
    assert all(n <= 2 for n in runs.values())


@pytest.mark.parametrize("retry", [True, False])
def test_a_call_whose_server_dies(three, tmp_path, retry):
    marker = tmp_path / "started"
    with pynto.Pool([s.address for s in three[:2]], retry=retry) as pool:
        result = pool.submit(slow_once, str(marker), 1.0)
        assert wait_until(marker.exists, 30) and wait_until(lambda: marker.read_text() != "", 5)
        pid = int(marker.read_text())
        (victim,) = [s for s in three if s.proc.pid == pid]
        victim.proc.send_signal(signal.SIGKILL)
        if retry:
            # Sent again to the other server, and reported.
            (survivor,) = [s for s in three[:2] if s is not victim]
            assert result.value == survivor.proc.pid
            assert [(r.server, r.args) for r in pool.retries] == [(victim.address, (str(marker), 1.0))]
        else:
            # At most once: the caller gets the connection's end and decides.
            assert isinstance(result.error, pynto.ConnectionClosed)
            assert pool.retries == []
        assert pool.servers == [s.address for s in three[:2] if s is not victim]


def test_calls_fail_when_no_server_is_left(three):
    with pynto.Pool([three[0].address]) as pool:
        assert pool.map(square, [3]) == [9]
        three[0].proc.send_signal(signal.SIGKILL)
        three[0].proc.wait(10)
        with pytest.raises((ConnectionRefusedError, pynto.ConnectionClosed)):
            pool.map(square, range(3))
        assert wait_until(lambda: pool.servers == [], 10)
        with pytest.raises(ConnectionRefusedError, match="no live server is left in the pool"):
            pool.submit(square, 1).value


def test_close_fails_queued_calls_and_cancel_drops_them(three, tmp_path):
    pool = pynto.Pool([three[0].address])
    first = pool.submit(slow_once, str(tmp_path / "a"), 1.0)
    queued = [pool.submit(square, x) for x in range(3)]
    queued[0].cancel()
    assert isinstance(queued[0].error, concurrent.futures.CancelledError)
    pool.close()
    for result in [first, *queued[1:]]:
        assert isinstance(result.error, pynto.ConnectionClosed)
    with pytest.raises(pynto.ConnectionClosed, match="the pool is closed"):
        pool.submit(square, 1).value
    pool.close()  # twice is fine


def test_pool_of_unreachable_addresses_says_so():
    with pytest.raises(ConnectionRefusedError, match="cannot connect to every server of the pool"):
        pynto.Pool([f"127.0.0.1:{free_port()}"])
    with pytest.raises(ValueError, match="at least one address"):
        pynto.Pool([])
    with pytest.raises(ValueError, match="concurrency"):
        pynto.Pool(["127.0.0.1:1"], concurrency=0)


def test_pool_follows_servers_joining_and_leaving_in_etcd(etcd):
    url = etcd.url("pool/follow")
    with pytest.raises(ConnectionRefusedError, match="no server registered under 'pool/follow'"):
        pynto.Pool(url)
    first = ServerProcess("--classic", "--port", "0", "--announce", url)
    second = None
    try:
        with pynto.Pool(url) as pool:
            assert pool.servers == [first.address]
            second = ServerProcess("--classic", "--port", "0", "--announce", url)
            assert wait_until(lambda: sorted(pool.servers) == sorted([first.address, second.address]), 10)
            results = pool.map(where, range(40))
            assert {pid for pid, _ in results} == {first.proc.pid, second.proc.pid}
            assert second.signal(signal.SIGTERM) == 0
            assert wait_until(lambda: pool.servers == [first.address], 10)
            assert pool.map(square, range(5)) == [0, 1, 4, 9, 16]
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_pool_map_over_three_announced_servers_with_one_killed(etcd, tmp_path):
    """The issue's scenario end to end: discovery through etcd, a SIGKILL mid-map."""
    url = etcd.url("pool/kill")
    servers = [ServerProcess("--classic", "--port", "0", "--announce", url, "--announce-ttl", "2") for _ in range(3)]
    victim = servers[0]
    victim_log = tmp_path / str(victim.proc.pid)
    try:
        with pynto.Pool(url) as pool:
            assert len(pool.servers) == 3
            killer = threading.Thread(
                target=lambda: wait_until(victim_log.exists, 30) and victim.proc.send_signal(signal.SIGKILL)
            )
            killer.start()
            results = pool.map(run_logged, [(str(tmp_path), x) for x in range(45)])
            killer.join()
            assert results == [x * 10 for x in range(45)]
            retried = {r.args[0][1] for r in pool.retries}
            # Its lease expires, and the pool stays at the two survivors.
            assert wait_until(lambda: len(resolve(url)) == 2, 10)
            assert sorted(pool.servers) == sorted(s.address for s in servers[1:])
        runs: dict[int, int] = {}
        for log in Path(tmp_path).iterdir():
            for line in log.read_text().split():
                runs[int(line)] = runs.get(int(line), 0) + 1
        assert set(runs) == set(range(45))
        assert {x for x, n in runs.items() if n > 1} <= retried
    finally:
        for s in servers:
            s.stop()


def test_connect_to_one_of_a_list_without_etcd(three):
    dead = f"127.0.0.1:{free_port()}"
    pids = set()
    for _ in range(20):
        with pynto.connect([dead, *(s.address for s in three)]) as conn:
            pids.add(conn.modules.os.getpid())
    assert pids == {s.proc.pid for s in three}
    with pytest.raises(ConnectionRefusedError, match=r"none of the 1 servers in the list accepted a connection \(127\.0\.0\.1:"):
        pynto.connect([dead])
    with pytest.raises(ValueError, match="at least one address"):
        pynto.connect([])


def test_a_pool_of_open_connections_owns_them():
    conns = [pynto.connect_subprocess() for _ in range(2)]
    with pynto.Pool(conns) as pool:
        results = pool.map(where, range(20))
        assert {pid for pid, _ in results} == {c.process.pid for c in conns}
    assert all(c.closed for c in conns)
