"""Asynchronous calls and asyncio, against a server process whose service runs on its own
event loop."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading

import pytest

import pynto
from helpers import TESTS_DIR, child_env, read_line, wait_until


@pytest.fixture(scope="module")
def aio_server():
    proc = subprocess.Popen(
        [sys.executable, "async_services.py"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=TESTS_DIR,
        env=child_env(),
    )
    line = read_line(proc.stdout, 30)
    assert line.startswith("pynto: serving AsyncService on "), line
    yield line.rstrip().rsplit(" on ", 1)[1]
    proc.stdin.close()
    proc.wait(10)
    proc.stdout.close()


@pytest.fixture
def conn(aio_server):
    with pynto.connect(aio_server) as c:
        yield c


def test_async_result_value_ready_error_and_wait(conn):
    result = pynto.async_(conn.root.echo)([1, 2])
    assert result.wait(10)
    assert result.ready
    assert result.value == [1, 2]
    assert result.error is None
    failing = pynto.async_(conn.root.echo)()
    assert isinstance(failing.error, TypeError)
    with pytest.raises(TypeError):
        failing.value


def test_add_callback_fires_once(conn):
    fired = []
    done = threading.Event()

    def callback(res):
        fired.append(res.value)
        done.set()

    result = pynto.async_(conn.root.sleep)(0.05)
    result.add_callback(callback)
    assert done.wait(10)
    result.wait()
    # A callback added after completion runs at once, and the first never fires again.
    late = []
    result.add_callback(lambda res: late.append(res.value))
    assert late == [0.05]
    assert fired == [0.05]


def test_timed_call_fails_with_timeout_and_the_connection_stays_usable(conn):
    before = conn.root.stats()["cancels_received"]
    result = pynto.timed(conn.root.sleep, 0.1)(2)
    with pytest.raises(pynto.Timeout):
        result.value
    assert conn.root.echo("still here") == "still here"
    assert wait_until(lambda: conn.root.stats()["cancels_received"] == before + 1, 10), "the server saw no Cancel"


def test_hundred_concurrent_awaits_are_in_flight_at_once(conn):
    # The server's barrier lets the calls finish only when all 100 wait at the same time,
    # so they complete only if the client really has them in flight concurrently.
    conn.root.arm(100)

    async def main():
        return await asyncio.gather(*(pynto.async_(conn.root.gather)(i) for i in range(100)))

    assert asyncio.run(main()) == list(range(100))


def test_cancelling_an_awaiting_task_sends_cancel(conn):
    before = conn.root.stats()["cancels_received"]

    async def main():
        task = asyncio.ensure_future(pynto.async_(conn.root.sleep)(1))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert wait_until(lambda: conn.root.stats()["cancels_received"] == before + 1, 10), "the server saw no Cancel"


def test_async_def_methods_run_on_the_servers_event_loop(conn):
    coroutine = conn.root.on_loop(21)  # as locally: calling an async def gives a coroutine
    assert asyncio.iscoroutine(coroutine)
    assert asyncio.run(coroutine) == (42, "server-loop")


def test_aio_connection_awaitable_calls_and_attributes(aio_server):
    async def main():
        async with await pynto.aio.connect(aio_server) as aconn:
            assert await aconn.root.echo("x") == "x"
            doubled, thread = await aconn.root.on_loop(2)
            resource = await aconn.root.resource()
            assert isinstance(resource, pynto.aio.AsyncProxy)
            assert await resource.get_state() == "new"
            return doubled, thread

    assert asyncio.run(main()) == (4, "server-loop")


def test_blocking_call_from_the_loop_thread_is_refused(aio_server):
    async def main():
        aconn = await pynto.aio.connect(aio_server)
        try:
            with pytest.raises(RuntimeError, match="await it instead"):
                aconn.sync.root.echo(1)
            # From another thread the same blocking call is fine.
            loop = asyncio.get_running_loop()
            assert await loop.run_in_executor(None, lambda: aconn.sync.root.echo(1)) == 1
        finally:
            await aconn.close()

    asyncio.run(main())


def test_callback_during_an_await_runs_without_blocking_the_loop(conn):
    ticks = []
    callback_threads = []

    def callback(x):
        callback_threads.append(threading.current_thread())
        return x + 1

    async def ticker():
        for _ in range(5):
            ticks.append(1)
            await asyncio.sleep(0.01)

    async def main():
        loop_thread = threading.current_thread()
        tick_task = asyncio.ensure_future(ticker())
        value = await pynto.async_(conn.root.call_back)(callback, 41)
        await tick_task
        return value, loop_thread

    value, loop_thread = asyncio.run(main())
    assert value == 42
    assert len(ticks) == 5
    assert callback_threads and callback_threads[0] is not loop_thread


def test_await_async_for_and_async_with_on_remote_objects(conn):
    async def main():
        countdown = [i async for i in conn.root.ticker(3)]
        resource = conn.root.resource()
        async with resource as entered:
            inside = entered.get_state()
        return countdown, inside, resource.get_state()

    assert asyncio.run(main()) == ([3, 2, 1], "entered", "exited")
