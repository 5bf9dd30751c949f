"""Connections: ``pynto.connect`` and friends, and the ``Connection`` users hold."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any, Unpack

from . import _pynto
from ._errors import ConnectionClosed, ProtocolError
from ._limits import Limits
from ._service import ClassicService, Service, policy_for
from ._types import Address, PolicyOptions

__all__ = ["TLS", "Connection", "connect", "connect_subprocess", "connect_thread"]

_log = logging.getLogger("pynto.connection")

#: The longest wait between two tries of ``connect(..., retries=n)``.
_MAX_RETRY_DELAY = 30.0

# Every connection not yet closed, so they can be closed at exit.
log = logging.getLogger("pynto")

_open: "weakref.WeakSet[Connection]" = weakref.WeakSet()


@dataclass(frozen=True)
class TLS:
    """TLS settings. On a client: ``ca`` verifies the server (``None``: the system's trusted
    CAs), ``cert``/``key`` authenticate the client. On a server: ``cert``/``key`` are the server's, ``ca`` verifies client certificates
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

    def __dir__(self) -> list[str]:
        """The top-level modules the peer has imported (for completion in consoles)."""
        loaded = self._conn._classic().getmodule("sys").modules
        return sorted({name.partition(".")[0] for name in list(loaded)})

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
        self._ended = threading.Lock()
        # Set once the end-of-life hooks have run; `_ending` is the thread running them.
        self._ended_done = threading.Event()
        self._ending: int | None = None
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
        (classic). Closures, and functions that read globals of this process, are refused
        with a clear error; a function typed at an interactive prompt goes as compiled code
        (same Python version on both sides). The name is defined in the connection's
        namespace too, as ``def`` would: ``conn.eval("f(3)")``."""
        from ._teleport import teleport

        remote = teleport(self, func)
        self.namespace[func.__name__] = remote
        return remote

    def close(self) -> None:
        """End the connection; everything the peer held for us is released."""
        super().close()
        self._ended_now()

    def _ended_now(self) -> None:
        """The connection ended, whichever side ended it (the runtime calls this once it has
        closed; ``close()`` calls it too, so its hooks have run when it returns). Runs the
        service's ``on_disconnect`` and the close hooks exactly once."""
        if not self._ended.acquire(blocking=False):
            # Another thread runs them: wait until they are done (unless a hook closes its
            # own connection, on the thread running the hooks).
            if self._ending != threading.get_ident():
                self._ended_done.wait()
            return
        self._ending = threading.get_ident()
        try:
            hooks, self._on_close = self._on_close, []
            self._disconnect_service()
            for hook in hooks:
                try:
                    hook()
                except Exception:
                    log.exception("pynto: a close hook failed for %r", self)
        finally:
            self._ended_done.set()

    def _disconnect_service(self) -> None:
        """Run this side's service's ``on_disconnect``, if a service is bound and nobody ran it
        yet (the swap hands the service to one caller only)."""
        service, self._service = self._service, None
        if service is not None:
            hook = getattr(service, "on_disconnect", None)
            if hook is not None:
                try:
                    hook(self)
                except Exception:
                    log.exception("pynto: on_disconnect failed for %r", self)

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


def _policy(service: Any, options: PolicyOptions) -> Any:
    return policy_for(service, **options)


def _prepare(service: Any, options: PolicyOptions) -> tuple[Any, Any]:
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
    if conn.closed:
        # It ended while binding: its end may not have run yet (and must run while the object
        # is alive), or ran before the service was bound. Both calls are idempotent.
        conn._ended_now()
        conn._disconnect_service()
    return conn


def _system_ca() -> str:
    """The system's bundle of trusted CA certificates (``SSL_CERT_FILE`` when set), as
    OpenSSL on this machine finds it."""
    import ssl

    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and os.path.isfile(candidate):
            return candidate
    raise FileNotFoundError(
        "no system CA bundle found (set SSL_CERT_FILE, or pass tls=pynto.TLS(ca=...))"
    )


def _tls_arguments(address: str, tls: TLS | None) -> dict[str, str | None]:
    """The compiled connect's TLS keywords for ``address`` and ``tls``."""
    if not address.lower().startswith("tls://"):
        if tls is not None:
            raise ValueError(
                f"tls= was given but {address!r} is not a tls:// address; "
                "write it as tls://host:port"
            )
        return {}
    if tls is None:
        tls = TLS()
    ca = _system_ca() if tls.ca is None else os.fspath(tls.ca)
    return {
        "tls_ca": ca,
        "tls_cert": None if tls.cert is None else os.fspath(tls.cert),
        "tls_key": None if tls.key is None else os.fspath(tls.key),
    }


def connect(
    address: Address,
    port: int | None = None,
    *,
    service: Any = None,
    token: str | None = None,
    timeout: float | None = None,
    tls: TLS | None = None,
    retries: int = 0,
    retry_delay: float = 0.5,
    limits: Limits | None = None,
    **policy: Unpack[PolicyOptions],
) -> Connection:
    """Connect to a pynto server: ``"host:port"``, ``("host", port)``, ``"host", port``,
    ``"tcp://host:port"``, ``"unix:///path"`` or ``"tls://host:port"``; or
    ``"etcd://HOST:PORT/NAME"`` or a list of addresses: one of those servers (docs/discovery.md).

    ``timeout`` bounds connecting and the handshake together, then each call. ``tls`` is for
    ``tls://`` addresses only (default ``pynto.TLS()``: the system's trusted CAs). With
    ``retries=n``, a connection that cannot be made (refused, unreachable, timed out) is tried
    up to n more times, waiting ``retry_delay`` seconds, then twice as long each time (at most
    30 s). A refused token raises `pynto.AuthenticationError` at once. ``limits`` is a
    `pynto.Limits`; policy keywords say what this side lends the peer."""
    if isinstance(address, list) or isinstance(address, str) and address.startswith("etcd://"):
        from ._discovery import connect_registered

        return connect_registered(
            address,
            lambda a: connect(
                a, service=service, token=token, timeout=timeout, tls=tls, retries=retries,
                retry_delay=retry_delay, limits=limits, **policy,
            ),
        )
    if isinstance(address, tuple):
        address, port = address
    if port is not None:
        address = f"{address}:{int(port)}"
    address = os.fspath(address) if isinstance(address, os.PathLike) else str(address)
    if retries < 0 or retry_delay < 0:
        raise ValueError("retries and retry_delay must not be negative")
    tls_arguments = _tls_arguments(address, tls)
    instance, pol = _prepare(service, policy)
    delay = retry_delay
    attempt = 0
    while True:
        try:
            conn = _pynto.connect_address(
                Connection,
                address,
                instance,
                pol,
                token=token,
                timeout=timeout,
                service_name=_service_name(instance),
                limits=limits,
                **tls_arguments,
            )
        except OSError as exc:  # refused, unreachable, timed out, closed in the handshake
            if attempt >= retries:
                raise
            attempt += 1
            _log.info("connecting to %s failed (%s); try %d of %d in %.1f s",
                      address, exc, attempt + 1, retries + 1, delay)
            time.sleep(delay)
            delay = min(delay * 2, _MAX_RETRY_DELAY)
            continue
        return _bind(conn, instance)


def connect_subprocess(
    argv: list[str] | None = None,
    *,
    service: Any = None,
    token: str | None = None,
    timeout: float | None = None,
    limits: Limits | None = None,
    **policy: Unpack[PolicyOptions],
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
            Connection,
            read_fd,
            write_fd,
            instance,
            pol,
            token=token,
            timeout=timeout,
            service_name=_service_name(instance),
            limits=limits,
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


def connect_thread(
    service: Any = None, *, client_service: Any = None, limits: Limits | None = None, **policy: Unpack[PolicyOptions]
) -> Connection:
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
        limits=limits,
    )
    _bind(server_conn, server)
    client_conn._peer_conn = server_conn
    return _bind(client_conn, client)
