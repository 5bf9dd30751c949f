"""A service for the asyncio tests, and a server script that runs it on an event loop."""

from __future__ import annotations

import asyncio
import sys
import threading
import time

import pynto


class AsyncService(pynto.Service):
    def __init__(self) -> None:
        self.barrier: threading.Barrier | None = None
        self.conn: pynto.Connection | None = None

    def on_connect(self, conn: pynto.Connection) -> None:
        self.conn = conn

    def exposed_echo(self, value):
        return value

    def exposed_arm(self, parties: int) -> None:
        """The next `parties` calls of `gather` wait for each other: they only finish if all
        are in flight at once."""
        self.barrier = threading.Barrier(parties, timeout=20)

    def exposed_gather(self, i: int) -> int:
        assert self.barrier is not None
        self.barrier.wait()
        return i

    def exposed_sleep(self, seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    def exposed_stats(self) -> dict:
        assert self.conn is not None
        return dict(self.conn.stats())

    async def exposed_on_loop(self, x: int):
        await asyncio.sleep(0)
        return x * 2, threading.current_thread().name

    def exposed_call_back(self, callback, x):
        return callback(x)

    async def exposed_countdown(self, n: int):
        for i in range(n, 0, -1):
            await asyncio.sleep(0)
            yield i

    def exposed_ticker(self, n: int):
        return self.exposed_countdown(n)

    def exposed_resource(self):
        return Resource()


class Resource:
    """An async context manager with an awaitable close."""

    def __init__(self) -> None:
        self.state = "new"

    @pynto.exposed
    def get_state(self) -> str:
        return self.state

    async def __aenter__(self):
        await asyncio.sleep(0)
        self.state = "entered"
        return self

    async def __aexit__(self, *exc):
        await asyncio.sleep(0)
        self.state = "exited"
        return False


async def main() -> None:
    threading.current_thread().name = "server-loop"
    server = await pynto.aio.serve(AsyncService, port=0)
    print(f"pynto: serving AsyncService on {server.address}", flush=True)
    try:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    finally:
        server.close()


if __name__ == "__main__":
    asyncio.run(main())
