"""pynto in asyncio: ``conn = await pynto.aio.connect(...)``, awaitable calls, and servers
whose ``async def`` methods run on the server's event loop.

    conn = await pynto.aio.connect("localhost:18812")
    result = await conn.root.compute(21)       # one round trip; the loop keeps running
    value = await conn.root.setting            # an attribute, fetched without blocking
    nine = await conn.modules.math.pow(3, 2)   # one await for a whole chain (classic)

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
    """An attribute chain on a proxy, resolved when awaited or called, so one ``await``
    covers the whole chain: ``await aproxy.a.b`` fetches ``a`` then ``b``; ``await
    aproxy.a.f(1)`` fetches ``a`` then calls its method ``f`` (one round trip for the call).
    Each step runs without blocking the loop."""

    __slots__ = ("_start", "_names")

    def __init__(self, start: Any, names: tuple[str, ...]) -> None:
        # A proxy (or a value), or a coroutine function giving one.
        self._start = start
        self._names = names

    def __getattr__(self, name: str) -> "_Member":
        if name.startswith("__"):
            raise AttributeError(name)
        return _Member(self._start, self._names + (name,))

    async def _resolve(self, names: tuple[str, ...]) -> Any:
        target = self._start
        if callable(target) and not is_proxy(target):
            target = await target()
        for name in names:
            if is_proxy(target):
                target = await AsyncResult(target._pynto_async_getattr(None, name))
            else:
                target = getattr(target, name)
        return target

    async def _call(self, args: tuple, kwargs: dict) -> Any:
        if not self._names:
            target = await self._resolve(())
            if is_proxy(target):
                return await _settle(target._pynto_async_call(None, *args, **kwargs))
            return _wrap(target(*args, **kwargs))
        owner = await self._resolve(self._names[:-1])
        name = self._names[-1]
        if is_proxy(owner):
            return await _settle(owner._pynto_async_method(None, name, *args, **kwargs))
        return _wrap(getattr(owner, name)(*args, **kwargs))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(args, kwargs)

    def __await__(self):
        async def value() -> Any:
            return _wrap(await self._resolve(self._names))

        return value().__await__()

    def __repr__(self) -> str:
        return f"<pynto.aio member {'.'.join(self._names)!r}>"


class AsyncProxy:
    """An awaitable view of a proxy: attribute chains and calls return awaitables, so one
    ``await`` covers ``aproxy.a.b.method(x)``."""

    __slots__ = ("_proxy",)

    def __init__(self, proxy: Any) -> None:
        self._proxy = proxy

    def __getattr__(self, name: str) -> _Member:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Member(self._proxy, (name,))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _settle(self._proxy._pynto_async_call(None, *args, **kwargs))

    @property
    def sync(self) -> Any:
        """The plain (blocking) proxy."""
        return self._proxy

    def __repr__(self) -> str:
        return f"<pynto.AsyncProxy of oid {self._proxy._pynto_oid}>"


class _AsyncModules:
    """``conn.modules`` of an `AsyncConnection`: ``await conn.modules.math.pow(3, 2)``."""

    __slots__ = ("_conn",)

    def __init__(self, conn: "AsyncConnection") -> None:
        self._conn = conn

    def __getattr__(self, name: str) -> _Member:
        if name.startswith("__"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> _Member:
        root = self._conn.root.sync

        async def module() -> Any:
            return await AsyncResult(root._pynto_async_method(None, "getmodule", name))

        return _Member(module, ())


class AsyncConnection:
    """A connection used from asyncio. ``root`` is an ``AsyncProxy``; ``sync`` is the plain
    ``Connection``. On classic servers ``modules``, ``builtins``, ``namespace``, ``eval``,
    ``execute`` and ``teleport`` are here too, awaitable."""

    def __init__(self, conn: Connection, root: Any) -> None:
        self.sync = conn
        self.root = AsyncProxy(root)

    @property
    def modules(self) -> _AsyncModules:
        """``await conn.modules.math.pow(3, 2)`` on classic servers."""
        return _AsyncModules(self)

    @property
    def builtins(self) -> _Member:
        """The peer's ``builtins`` module: ``await conn.builtins.len("abc")`` (classic)."""
        return _Member(self.root.sync, ("builtins",))

    @property
    def namespace(self) -> _Member:
        """The per-connection namespace of ``eval``/``execute`` (classic): ``await
        conn.namespace``."""
        return _Member(self.root.sync, ("namespace",))

    async def eval(self, expression: str) -> Any:
        """Evaluate ``expression`` on the peer, in this connection's namespace (classic)."""
        return await self.root.eval(expression)

    async def execute(self, source: str) -> None:
        """Execute ``source`` on the peer, in this connection's namespace (classic)."""
        await self.root.execute(source)

    async def teleport(self, func: Any) -> Any:
        """``conn.teleport(func)`` without blocking the loop; the remote function comes back
        as an `AsyncProxy` (``await (await conn.teleport(f))(x)``)."""
        loop = asyncio.get_running_loop()
        # On an executor thread: the loop guard refuses blocking calls only on the loop's.
        remote = await loop.run_in_executor(None, self.sync.teleport, func)
        return _wrap(remote)

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
