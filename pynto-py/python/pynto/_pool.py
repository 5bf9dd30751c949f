"""``pynto.Pool``: many servers used as one, for spreading work.

A pool holds one connection to every server of its target: the servers registered under an
``etcd://HOST:PORT/NAME`` (followed as they join and leave, through an etcd watch) or a fixed
list of addresses. ``pool.submit(func, *args)`` queues one call and returns an ``AsyncResult``;
``pool.map(func, items)`` queues one call per item and returns the results in order. Each
server takes the next queued call as soon as it has a free slot (``concurrency`` calls at a
time), so faster servers take more.

``func`` is a plain function, teleported once to each classic server (``conn.teleport``), or
the name of a method of the servers' root (``pool.map("square", items)``) for service servers.

When a server's connection ends while a call is on it, the call may or may not have run there;
with ``retry=True`` (the default) it is queued again for another server (at-least-once), and the
pool records it in ``pool.retries`` and logs a warning on the ``pynto.pool`` logger; with
``retry=False`` it fails with ``ConnectionClosed`` (at-most-once). A call that never reached a
server is queued again silently. See docs/discovery.md.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, NamedTuple

from ._async import AsyncResult, Completion
from ._connection import TLS, Connection, connect
from ._errors import ConnectionClosed
from ._service import teleport_source

__all__ = ["Pool", "Retry"]

log = logging.getLogger("pynto.pool")


class Retry(NamedTuple):
    """A call queued again because its server's connection ended before it replied: it may
    have run on ``server`` as well. ``error`` is why the connection ended."""

    func: Any
    args: tuple
    server: str
    error: BaseException


@dataclass(eq=False)
class _Task:
    func: Any
    args: tuple
    kwargs: dict
    retry: bool
    completion: Completion
    #: A server took it (under the pool's lock): cancelling no longer drops it.
    taken: bool = False
    #: Cancelled while queued: workers skip it.
    cancelled: bool = False


class _Member:
    """One server of the pool: its connection, its worker threads, its teleported functions."""

    def __init__(self, key: str, address: str, conn: Connection) -> None:
        self.key = key
        self.address = address
        self.conn = conn
        #: False once it takes no more calls (its server left, or its connection ended).
        self.alive = True
        self.threads: list[threading.Thread] = []
        self.running = 0
        self._functions: dict[Any, Any] = {}

    def function(self, func: Any) -> Any:
        """The remote callable for ``func`` on this server (teleported once)."""
        remote = self._functions.get(func)
        if remote is None:
            if isinstance(func, str):
                remote = getattr(self.conn.root, func)
            else:
                remote = self.conn.teleport(func)
            remote = self._functions.setdefault(func, remote)
        return remote


class Pool:
    """Connections to every server of ``target`` (``"etcd://HOST:PORT/NAME"`` or a list of
    addresses), and work spread across them. ``concurrency`` calls run on each server at a
    time; ``retry`` is the default for ``map`` and ``submit``. The connection keywords
    (``service``, ``token``, ``timeout``, ``tls`` and the policy) are those of
    ``pynto.connect``. Close it with ``pool.close()`` or a ``with`` block."""

    def __init__(
        self,
        target: str | Iterable[Any],
        *,
        concurrency: int = 1,
        retry: bool = True,
        service: Any = None,
        token: str | None = None,
        timeout: float | None = None,
        tls: TLS | None = None,
        **policy: bool,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency!r}")
        self.concurrency = concurrency
        self.retry = retry
        self._connect_options: dict[str, Any] = dict(service=service, token=token, timeout=timeout, tls=tls, **policy)
        self._cond = threading.Condition()
        self._tasks: collections.deque[_Task] = collections.deque()
        self._members: dict[str, _Member] = {}
        self._closed = False
        self._watch: Any = None
        self._retries: list[Retry] = []
        self.target = target if isinstance(target, str) and target.startswith("etcd://") else None
        if self.target is not None:
            from ._discovery import EtcdTarget, Watch

            etcd = EtcdTarget.parse(self.target)
            self._watch = Watch(etcd, self._servers_changed)
            self._watch.start()
            if not self._members:
                self.close()
                raise ConnectionRefusedError(f"no server registered under {etcd.name!r} in etcd at {etcd.host}:{etcd.port} accepted a connection")
        else:
            entries = [target] if isinstance(target, (str, tuple, Connection)) else list(target)
            if not entries:
                raise ValueError("a pool needs an etcd:// target or at least one address")
            failures = []
            for entry in entries:
                try:
                    self._add(*self._open(entry))
                except OSError as exc:
                    failures.append(f"{entry}: {exc}")
            if failures:
                self.close()
                raise ConnectionRefusedError(f"cannot connect to every server of the pool: {'; '.join(failures)}")

    # ------------------------------------------------------------------ membership

    def _open(self, entry: Any) -> tuple[str, str, Connection]:
        if isinstance(entry, Connection):
            return f"conn:{id(entry)}", entry.peer, entry
        if isinstance(entry, tuple):
            entry = f"{entry[0]}:{int(entry[1])}"
        address = str(entry)
        return address, address, connect(address, **self._connect_options)

    def _add(self, key: str, address: str, conn: Connection) -> None:
        member = _Member(key, address, conn)
        with self._cond:
            if self._closed or key in self._members:
                conn.close()
                return
            self._members[key] = member
            for i in range(self.concurrency):
                thread = threading.Thread(target=self._work, args=(member,), name=f"pynto-pool {address} #{i}", daemon=True)
                member.threads.append(thread)
                thread.start()
        log.info("pool: %s joined", address)

    def _servers_changed(self, added: dict[str, str], removed: dict[str, str]) -> None:
        """From the etcd watch: servers registered and withdrawn (or expired)."""
        for key in removed:
            self._retire(key, "it left etcd")
        for key, address in added.items():
            try:
                conn = connect(address, **self._connect_options)
            except OSError as exc:
                log.warning("pool: cannot connect to %s (registered as %s): %s", address, key, exc)
                continue
            self._add(key, address, conn)

    def _retire(self, key: str, why: str) -> None:
        """Take no more calls to ``key``; its calls in flight finish (or fail) first."""
        with self._cond:
            member = self._members.pop(key, None)
            if member is None:
                return
            member.alive = False
            idle = member.running == 0
            self._cond.notify_all()
            orphans = self._take_queued_locked() if not self._members else []
        self._fail(orphans)
        log.info("pool: %s left (%s)", member.address, why)
        if idle:
            member.conn.close()

    def _take_queued_locked(self) -> list[_Task]:
        """Empty the queue (called with the lock held)."""
        tasks, self._tasks = list(self._tasks), collections.deque()
        return tasks

    def _fail(self, tasks: list[_Task]) -> None:
        """No server is left: these calls fail (called without the lock: callbacks run)."""
        for task in tasks:
            task.completion.set_error(self._no_server_error())

    def _no_server_error(self) -> BaseException:
        if self._closed:
            return ConnectionClosed("the pool is closed")
        where = self.target or "the pool"
        return ConnectionRefusedError(f"no live server is left in {where}")

    # ------------------------------------------------------------------ working

    def _work(self, member: _Member) -> None:
        while True:
            with self._cond:
                while not self._tasks and member.alive and not self._closed:
                    self._cond.wait()
                if not member.alive or self._closed:
                    return
                task = self._tasks.popleft()
                if task.cancelled:
                    continue
                task.taken = True
                member.running += 1
            try:
                self._run(member, task)
            finally:
                with self._cond:
                    member.running -= 1
                    retired = not member.alive and member.running == 0
                if retired:  # its last call is done
                    member.conn.close()

    def _run(self, member: _Member, task: _Task) -> None:
        called = False
        try:
            if member.conn.closed:
                raise ConnectionClosed(member.conn.close_reason or "the connection is closed")
            remote = member.function(task.func)
            called = True
            value = remote(*task.args, **task.kwargs)
        except ConnectionClosed as exc:
            if not member.conn.closed:
                task.completion.set_error(exc)  # the function's own error
                return
            self._lost(member, task, exc, maybe_ran=called)
        except BaseException as exc:
            task.completion.set_error(exc)
        else:
            task.completion.set_result(value)

    def _lost(self, member: _Member, task: _Task, error: BaseException, maybe_ran: bool) -> None:
        """``member``'s connection ended under ``task``."""
        self._retire(member.key, f"its connection ended: {error}")
        if self._closed:
            task.completion.set_error(ConnectionClosed("the pool is closed"))
            return
        if maybe_ran:
            if not task.retry:
                task.completion.set_error(error)
                return
            record = Retry(task.func, task.args, member.address, error)
            with self._cond:
                self._retries.append(record)
            log.warning(
                "pool: %s%r is sent again: the connection to %s ended before it replied (%s), "
                "so it may have run there too",
                _name(task.func), task.args, member.address, error,
            )
        with self._cond:
            if self._members:
                task.taken = False
                self._tasks.appendleft(task)
                self._cond.notify()
                return
        task.completion.set_error(self._no_server_error())

    # ------------------------------------------------------------------ the user's side

    @property
    def servers(self) -> list[str]:
        """The addresses of the servers the pool sends calls to now (a server whose
        connection ended is dropped here, even if no call has noticed yet)."""
        with self._cond:
            members = list(self._members.values())
        for member in members:
            if member.conn.closed:
                self._retire(member.key, f"its connection ended: {member.conn.close_reason}")
        with self._cond:
            return [m.address for m in self._members.values()]

    @property
    def retries(self) -> list[Retry]:
        """Every call sent again after its server's connection ended before it replied (so
        it may have run twice), oldest first."""
        with self._cond:
            return list(self._retries)

    def submit(self, func: Any, *args: Any, retry: bool | None = None, **kwargs: Any) -> AsyncResult:
        """Queue ``func(*args, **kwargs)`` for the next free server; an ``AsyncResult``."""
        _check(func)
        return AsyncResult(self._queue(func, args, kwargs, self.retry if retry is None else retry))

    def _queue(self, func: Any, args: tuple, kwargs: dict, retry: bool) -> Completion:
        holder: list[_Task] = []
        completion = Completion(on_cancel=lambda: self._cancel(holder[0]))
        task = _Task(func, args, kwargs, retry, completion)
        holder.append(task)
        with self._cond:
            accepted = not self._closed and bool(self._members)
            if accepted:
                self._tasks.append(task)
                self._cond.notify()
        if not accepted:
            self._fail([task])
        return completion

    def _cancel(self, task: _Task) -> None:
        """Drop ``task`` if no server has taken it yet (one that has runs to its end)."""
        with self._cond:
            if task.taken or task.cancelled:
                return
            task.cancelled = True  # left in the queue; workers skip it
        task.completion.set_error(concurrent.futures.CancelledError())

    def map(self, func: Any, items: Iterable[Any], *, retry: bool | None = None) -> list[Any]:
        """``[func(item) for item in items]``, the calls spread across the servers; results in
        the order of ``items``. The first failing item (in order) raises its error, and the
        calls not yet started are cancelled."""
        _check(func)
        retry = self.retry if retry is None else retry
        results = [AsyncResult(self._queue(func, (item,), {}, retry)) for item in items]
        values = []
        try:
            for result in results:
                values.append(result.value)
        except BaseException:
            for result in results:
                result.cancel()
            raise
        return values

    def close(self) -> None:
        """Stop following the servers, fail the queued calls, and close every connection
        (calls in flight fail with ``ConnectionClosed``)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            members, self._members = list(self._members.values()), {}
            for member in members:
                member.alive = False
            orphans = self._take_queued_locked()
            self._cond.notify_all()
        self._fail(orphans)
        if self._watch is not None:
            self._watch.stop()
        for member in members:
            member.conn.close()
        current = threading.current_thread()
        for member in members:
            for thread in member.threads:
                if thread is not current:
                    thread.join(5)

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self.servers)} servers"
        return f"<pynto.Pool {self.target or 'of addresses'} ({state})>"


def _check(func: Any) -> None:
    """Refuse now, not on a server, what cannot be teleported (closures, lambdas, ...)."""
    if isinstance(func, str):
        return
    if not callable(func):
        raise TypeError(f"a pool runs a plain function or a root method's name, not {type(func).__name__}")
    teleport_source(func)


def _name(func: Callable[..., Any] | str) -> str:
    return func if isinstance(func, str) else getattr(func, "__qualname__", repr(func))
