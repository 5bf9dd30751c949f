"""Connections: ``pynto.connect`` and friends, and the ``Connection`` users hold."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import weakref
from dataclasses import dataclass
from typing import Any

from . import _pynto
from ._errors import ConnectionClosed, ProtocolError
from ._service import ClassicService, Service, policy_for, teleport_source

__all__ = ["TLS", "Connection", "connect", "connect_subprocess", "connect_thread"]

# Every connection not yet closed, so they can be closed at exit.
_open: "weakref.WeakSet[Connection]" = weakref.WeakSet()


@dataclass(frozen=True)
class TLS:
    """TLS settings. On a client: ``ca`` verifies the server, ``cert``/``key`` authenticate the
    client. On a server: ``cert``/``key`` are the server's, ``ca`` verifies client certificates
    (which are then required)."""

    ca: str | os.PathLike | None = None
    cert: str | os.PathLike | None = None
    key: str | os.PathLike | None = None


def _service_instance(service: Any) -> Any:
    if service is None:
        return Service()
    return service() if isinstance(service, type) else service


class _Modules:
    """``conn.modules``: the peer's import system (classic servers)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: "Connection") -> None:
        self._conn = conn

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> Any:
        try:
            return self._conn._classic().getmodule(name)
        except ModuleNotFoundError as exc:
            raise ModuleNotFoundError(f"the peer has no module {name!r}", name=name) from exc

    def __contains__(self, name: str) -> bool:
        try:
            self[name]
        except ImportError:
            return False
        return True

    def __repr__(self) -> str:
        return f"<modules of {self._conn.peer}>"


class Connection(_pynto.Connection):
    """A connection to a peer. Use ``conn.root``; on classic servers also ``conn.modules``,
    ``conn.builtins``, ``conn.eval``, ``conn.execute``, ``conn.namespace`` and
    ``conn.teleport``. Close it with ``conn.close()`` or a ``with`` block."""

    def __init__(self) -> None:
        self._root: Any = None
        self._service: Any = None
        self._on_close: list = []
        self.process: subprocess.Popen | None = None
        self._root_lock = threading.Lock()
        # The event loop that runs `async def` methods of this side's service (pynto.aio).
        self._loop: Any = None
        _open.add(self)

    @property
    def root(self) -> Any:
        """The peer's root object (its service instance), as a proxy."""
        if self.closed:
            raise ConnectionClosed(self.close_reason or "the connection is closed")
        root = self._root
        if root is None:
            with self._root_lock:
                if self._root is None:
                    self._root = self._fetch_root()
                root = self._root
        return root

    def _classic(self) -> Any:
        root = self.root
        if self.peer_service != "classic":
            raise ProtocolError(f"{self.peer} is not a classic server (it serves {self.peer_service!r}); use conn.root")
        return root

    @property
    def modules(self) -> _Modules:
        """The peer's modules: ``conn.modules.math``, ``conn.modules["os.path"]`` (classic)."""
        self._classic()
        return _Modules(self)

    @property
    def builtins(self) -> Any:
        """The peer's ``builtins`` module (classic)."""
        return self._classic().getmodule("builtins")

    @property
    def namespace(self) -> Any:
        """The per-connection namespace of ``eval``/``execute`` on the peer (classic)."""
        return self._classic().namespace

    def eval(self, expression: str) -> Any:
        """Evaluate ``expression`` on the peer, in this connection's namespace (classic)."""
        return self._classic().eval(expression)

    def execute(self, source: str) -> None:
        """Execute ``source`` on the peer, in this connection's namespace (classic)."""
        self._classic().execute(source)

    def teleport(self, func: Any) -> Any:
        """Define the plain function ``func`` on the peer and return the remote function
        (classic). Closures are refused with a clear error."""
        name, source = teleport_source(func)
        remote = self._classic().teleport(name, source)
        self.namespace[name] = remote  # defined in the namespace, as `def` would: conn.eval("f(3)")
        return remote

    def close(self) -> None:
        """End the connection; everything the peer held for us is released."""
        super().close()
        for hook in self._on_close:
            hook()
        self._on_close.clear()

    def _on_disconnect(self) -> None:
        service, self._service = self._service, None
        if service is not None:
            hook = getattr(service, "on_disconnect", None)
            if hook is not None:
                hook(self)

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        try:
            peer = self.peer
        except Exception:
            peer = "?"
        return f"<pynto.Connection to {peer} ({state})>"


def _service_name(service: Any) -> str:
    if isinstance(service, ClassicService):
        return "classic"
    return type(service).__name__


def _policy(service: Any, options: dict) -> Any:
    return policy_for(service, **options)


def _prepare(service: Any, options: dict) -> tuple[Any, Any]:
    instance = _service_instance(service)
    return instance, _policy(instance, options)


def _bind(conn: Connection, instance: Any) -> Connection:
    """Attach this side's service to a new connection, run its ``on_connect``, then let the
    peer's requests in (they are held until then, so the service is ready for the first one)."""
    conn._service = instance
    try:
        hook = getattr(instance, "on_connect", None)
        if hook is not None:
            hook(conn)
    finally:
        conn._start_serving()
    return conn


def connect(
    address: Any,
    port: int | None = None,
    *,
    service: Any = None,
    token: str | None = None,
    timeout: float | None = None,
    tls: TLS | None = None,
    **policy: bool,
) -> Connection:
    """Connect to a pynto server: ``"host:port"``, ``("host", port)``, ``"host", port``,
    ``"tcp://host:port"``, ``"unix:///path"`` or ``"tls://host:port"`` (with ``tls=``)."""
    if isinstance(address, tuple):
        address, port = address
    if port is not None:
        address = f"{address}:{int(port)}"
    address = os.fspath(address) if isinstance(address, os.PathLike) else str(address)
    if address.startswith("tls://") and tls is None:
        raise ValueError("a tls:// address needs tls=pynto.TLS(ca=...)")
    instance, pol = _prepare(service, policy)
    conn = _pynto.connect_address(
        Connection,
        address,
        instance,
        pol,
        token=token,
        timeout=timeout,
        service_name=_service_name(instance),
        tls_ca=None if tls is None or tls.ca is None else os.fspath(tls.ca),
        tls_cert=None if tls is None or tls.cert is None else os.fspath(tls.cert),
        tls_key=None if tls is None or tls.key is None else os.fspath(tls.key),
    )
    return _bind(conn, instance)


def connect_subprocess(
    argv: list[str] | None = None,
    *,
    service: Any = None,
    token: str | None = None,
    timeout: float | None = None,
    **policy: bool,
) -> Connection:
    """Start a child that serves over its stdin/stdout and connect to it. By default the child
    is ``python -m pynto serve --classic --stdio`` with this interpreter. ``conn.process`` is the
    child; ``conn.close()`` ends it."""
    if argv is None:
        argv = [sys.executable, "-m", "pynto", "serve", "--classic", "--stdio"]
    env = dict(os.environ)
    if token is not None:
        env["PYNTO_TOKEN"] = token
        if "--token-env" not in argv:
            argv = [*argv, "--token-env", "PYNTO_TOKEN"]
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    assert process.stdin is not None and process.stdout is not None
    read_fd, write_fd = os.dup(process.stdout.fileno()), os.dup(process.stdin.fileno())
    process.stdout.close()
    process.stdin.close()
    instance, pol = _prepare(service, policy)
    try:
        conn = _pynto.connect_pipes(
            Connection, read_fd, write_fd, instance, pol, token=token, timeout=timeout, service_name=_service_name(instance)
        )
    except BaseException:
        _stop(process)
        raise
    conn.process = process
    conn._on_close.append(lambda: _stop(process))
    return _bind(conn, instance)


def _stop(process: subprocess.Popen) -> None:
    try:
        process.wait(timeout=2)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def connect_thread(service: Any = None, *, client_service: Any = None, **policy: bool) -> Connection:
    """A server for ``service`` (default: classic) in this process, connected; for tests and
    demos. Policy options apply to the server side."""
    server = _service_instance(service if service is not None else ClassicService)
    client = _service_instance(client_service)
    client_conn, server_conn = _pynto.connect_thread_pair(
        Connection,
        client,
        policy_for(client),
        server,
        _policy(server, policy),
        service_name=_service_name(server),
    )
    _bind(server_conn, server)
    client_conn._peer_conn = server_conn
    return _bind(client_conn, client)
