"""Calls that do not block: ``pynto.async_``, ``pynto.timed`` and ``AsyncResult``.

An ``AsyncResult`` is also awaitable: inside asyncio, ``await result`` suspends the coroutine
without blocking the loop. Completions reach the loop through an event fd it watches
(``loop.add_reader``), written without taking the GIL by whichever thread reads the reply off
the connection (the runtime has no reader thread per connection: a waiting caller or a pool
thread takes the reading role).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import weakref
from typing import Any, Callable

from . import _pynto
from ._pynto import is_proxy

__all__ = ["AsyncResult", "Completion", "async_", "timed"]

_UNSET = object()


class AsyncResult:
    """The result of a call sent without waiting.

    ``ready`` tells whether it is here; ``value`` waits for it (raising the remote error);
    ``error`` waits and returns the exception or None; ``wait(timeout)`` waits at most that
    long; ``add_callback(fn)`` calls ``fn(result)`` once when it is here. ``await result``
    works inside asyncio."""

    __slots__ = ("_pending", "_value", "_error", "_callbacks", "_lock", "__weakref__")

    def __init__(self, pending: Any) -> None:
        self._pending = pending
        self._value: Any = _UNSET
        self._error: BaseException | None = None
        self._callbacks: list[Callable[[AsyncResult], Any]] = []
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        """True once the reply, a failure or the timeout is here."""
        return self._value is not _UNSET or self._error is not None or self._pending.ready

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until ready, at most ``timeout`` seconds; True if ready."""
        if self._value is not _UNSET or self._error is not None:
            return True
        return self._pending.wait(timeout)

    def _collect(self) -> None:
        with self._lock:
            if self._value is not _UNSET or self._error is not None:
                return
            try:
                self._value = self._pending.take()
            except BaseException as exc:  # the remote error, Timeout, ConnectionClosed
                self._error = exc

    @property
    def value(self) -> Any:
        """The result; waits for it, and raises the remote error if the call failed."""
        self.wait()
        self._collect()
        if self._error is not None:
            raise self._error
        return self._value

    @property
    def error(self) -> BaseException | None:
        """The exception the call failed with, or None; waits for the outcome."""
        self.wait()
        self._collect()
        return self._error

    def add_callback(self, fn: Callable[["AsyncResult"], Any]) -> None:
        """Call ``fn(self)`` once the result is here (at once if it is), on pynto's callback
        thread."""
        with self._lock:
            self._callbacks.append(fn)
            first = len(self._callbacks) == 1
        if first:
            ref = weakref.ref(self)

            def fire() -> None:
                me = ref()
                if me is not None:
                    me._fire()

            self._pending.set_on_ready(fire)

    def _fire(self) -> None:
        self._collect()
        with self._lock:
            callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            fn(self)

    def cancel(self) -> None:
        """Stop waiting; the peer is asked to cancel the call."""
        self._pending.cancel()

    def __await__(self):
        if not self.ready:
            loop = asyncio.get_running_loop()
            future = loop.create_future()
            local = isinstance(self._pending, Completion)
            (_ThreadWaker(loop) if local else _waker(loop)).watch(self, future)
            try:
                yield from future.__await__()
            except asyncio.CancelledError:
                self._pending.cancel()
                raise
        return self.value

    def __repr__(self) -> str:
        if not self.ready:
            state = "pending"
        elif self._error is not None:
            state = f"failed: {self._error!r}"
        else:
            state = "ready"
        return f"<pynto.AsyncResult {state}>"


class Completion:
    """An outcome produced in Python rather than by a reply (``pynto.Pool.submit``):
    ``AsyncResult(completion)`` reads it like a pending reply. ``set_result`` or ``set_error``
    completes it once; ``on_cancel`` is called by ``AsyncResult.cancel`` while it is not."""

    def __init__(self, on_cancel: Callable[[], Any] | None = None) -> None:
        self._done = threading.Event()
        self._outcome: tuple[bool, Any] = (False, None)
        self._on_ready: list[Callable[[], Any]] = []
        self._lock = threading.Lock()
        self._on_cancel = on_cancel

    @property
    def ready(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def take(self) -> Any:
        self._done.wait()
        failed, value = self._outcome
        if failed:
            raise value
        return value

    def _complete(self, failed: bool, value: Any) -> bool:
        with self._lock:
            if self._done.is_set():
                return False
            self._outcome = (failed, value)
            self._done.set()
            callbacks, self._on_ready = self._on_ready, []
        for fn in callbacks:
            fn()
        return True

    def set_result(self, value: Any) -> bool:
        """Complete with ``value``; False if it was already complete."""
        return self._complete(False, value)

    def set_error(self, error: BaseException) -> bool:
        """Complete with ``error``; False if it was already complete."""
        return self._complete(True, error)

    def set_on_ready(self, callback: Callable[[], Any]) -> None:
        with self._lock:
            if not self._done.is_set():
                self._on_ready.append(callback)
                return
        callback()

    def cancel(self) -> None:
        if not self._done.is_set() and self._on_cancel is not None:
            self._on_cancel()


class _LoopWaker:
    """One event fd per event loop, watched with ``add_reader``. Whichever thread reads a reply
    queues its token and writes the fd; the loop resolves exactly the futures that are ready."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.native = _pynto.LoopWaker()
        self.waiting: dict[int, asyncio.Future] = {}
        self.tokens = itertools.count(1)
        loop.add_reader(self.native.fd, self.drain)

    def watch(self, result: AsyncResult, future: asyncio.Future) -> None:
        token = next(self.tokens)
        self.waiting[token] = future
        future.add_done_callback(lambda _: self.waiting.pop(token, None))
        result._pending.set_waker(self.native, token)

    def drain(self) -> None:
        for token in self.native.take():
            future = self.waiting.pop(token, None)
            if future is not None and not future.done():
                future.set_result(None)

    def close(self) -> None:
        self.loop.remove_reader(self.native.fd)


class _ThreadWaker:
    """Fallback for loops without ``add_reader``: a callback wakes the loop thread-safely."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def watch(self, result: AsyncResult, future: asyncio.Future) -> None:
        def ready(_: AsyncResult) -> None:
            self.loop.call_soon_threadsafe(lambda: future.done() or future.set_result(None))

        result.add_callback(ready)


_wakers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any]" = weakref.WeakKeyDictionary()


def _waker(loop: asyncio.AbstractEventLoop) -> Any:
    waker = _wakers.get(loop)
    if waker is None:
        try:
            waker = _LoopWaker(loop)
        except (NotImplementedError, AttributeError, OSError):
            waker = _ThreadWaker(loop)
        _wakers[loop] = waker
    return waker


def _start(proxy_callable: Any, timeout: float | None, args: tuple, kwargs: dict) -> AsyncResult:
    start = getattr(proxy_callable, "_pynto_async_call", None)
    if start is None:
        if not is_proxy(proxy_callable):
            raise TypeError(f"pynto.async_ needs a remote callable (a proxy), not {type(proxy_callable).__name__}")
        raise TypeError("this proxy cannot be called asynchronously")
    return AsyncResult(start(timeout, *args, **kwargs))


def async_(proxy_callable: Any) -> Callable[..., AsyncResult]:
    """``pynto.async_(proxy.f)(*args, **kwargs)`` sends the call and returns an
    ``AsyncResult`` at once."""
    if not hasattr(proxy_callable, "_pynto_async_call"):
        _start(proxy_callable, None, (), {})  # raises the right TypeError

    def call(*args: Any, **kwargs: Any) -> AsyncResult:
        return _start(proxy_callable, None, args, kwargs)

    return call


def timed(proxy_callable: Any, seconds: float) -> Callable[..., AsyncResult]:
    """Like ``async_``; the result fails with ``pynto.Timeout`` after ``seconds`` (and the peer
    is asked to cancel the call)."""
    if not hasattr(proxy_callable, "_pynto_async_call"):
        _start(proxy_callable, None, (), {})

    def call(*args: Any, **kwargs: Any) -> AsyncResult:
        return _start(proxy_callable, seconds, args, kwargs)

    return call
