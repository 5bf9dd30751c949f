"""pynto in asyncio: ``conn = await pynto.aio.connect(...)``, awaitable calls, and servers
whose ``async def`` methods run on the server's event loop.

    conn = await pynto.aio.connect("localhost:18812")
    result = await conn.root.compute(21)       # one round trip; the loop keeps running
    value = await conn.root.setting            # an attribute, fetched without blocking

A blocking call on such a connection from the loop's own thread is refused with a clear
error instead of stalling the loop.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from ._async import AsyncResult
from ._connection import Connection, connect as _connect
from . import _host
from ._pynto import is_proxy
from ._server import Server

__all__ = ["AsyncConnection", "AsyncProxy", "connect", "serve"]


def _wrap(value: Any) -> Any:
    return AsyncProxy(value) if is_proxy(value) else value


async def _settle(pending: Any) -> Any:
    value = await AsyncResult(pending)
    if _host.is_remote_coroutine(value):  # `await aconn.root.async_method()`: its value
        value = await value
    return _wrap(value)


class _Member:
    """``aproxy.name``: call it (``await aproxy.name(...)``, one round trip) or await it
    (``await aproxy.name``, the attribute)."""

    __slots__ = ("_proxy", "_name")

    def __init__(self, proxy: Any, name: str) -> None:
        self._proxy = proxy
        self._name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _settle(self._proxy._pynto_async_method(self._name, None, *args, **kwargs))

    def __await__(self):
        return _settle(self._proxy._pynto_async_getattr(self._name, None)).__await__()

    def __repr__(self) -> str:
        return f"<pynto.aio member {self._name!r}>"


class AsyncProxy:
    """An awaitable view of a proxy: attribute access and calls return awaitables."""

    __slots__ = ("_proxy",)

    def __init__(self, proxy: Any) -> None:
        self._proxy = proxy

    def __getattr__(self, name: str) -> _Member:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Member(self._proxy, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _settle(self._proxy._pynto_async_call(None, *args, **kwargs))

    @property
    def sync(self) -> Any:
        """The plain (blocking) proxy."""
        return self._proxy

    def __repr__(self) -> str:
        return f"<pynto.AsyncProxy of oid {self._proxy._pynto_oid}>"


class _AsyncModules:
    __slots__ = ("_conn",)

    def __init__(self, conn: "AsyncConnection") -> None:
        self._conn = conn

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> Any:
        return self._conn.root.getmodule(name)


class AsyncConnection:
    """A connection used from asyncio. ``root`` is an ``AsyncProxy``; ``sync`` is the plain
    ``Connection``."""

    def __init__(self, conn: Connection, root: Any) -> None:
        self.sync = conn
        self.root = AsyncProxy(root)

    @property
    def modules(self) -> _AsyncModules:
        """``math = await conn.modules.math`` on classic servers."""
        return _AsyncModules(self)

    @property
    def closed(self) -> bool:
        return self.sync.closed

    async def ping(self) -> float:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.sync.ping)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.sync.close)

    async def __aenter__(self) -> "AsyncConnection":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


async def connect(address: Any, port: int | None = None, **kwargs: Any) -> AsyncConnection:
    """Connect without blocking the running loop; same arguments as ``pynto.connect``.
    ``async def`` methods of the ``service`` given here run on this loop."""
    loop = asyncio.get_running_loop()
    conn = await loop.run_in_executor(None, functools.partial(_connect, address, port, **kwargs))
    conn._loop = loop
    conn._guard_loop(True)
    root = await loop.run_in_executor(None, lambda: conn.root)
    return AsyncConnection(conn, root)


async def serve(service: Any, **kwargs: Any) -> Server:
    """Start a ``pynto.Server`` whose ``async def`` service methods run on the running loop;
    same arguments as ``pynto.Server``. Close it with ``server.close()``."""
    loop = asyncio.get_running_loop()
    server = Server(service, **kwargs)
    server._loop = loop
    return server.start()
