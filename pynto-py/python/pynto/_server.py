"""``pynto.Server``: one listening socket, one thread-safe server for many clients."""

from __future__ import annotations

import logging
import os
import threading
import weakref
from typing import Any, Unpack

from . import _pynto
from ._connection import TLS, Connection, _bind, _service_name
from ._errors import ConnectionClosed, ProtocolError
from ._limits import Limits
from ._service import policy_for
from ._types import PolicyOptions

__all__ = ["Server", "serve_stdio"]

log = logging.getLogger("pynto")


class Server:
    """Serve ``service`` to every client that connects. A service class gets one instance
    per connection; an instance is shared by all. With ``unix=PATH`` it listens on that Unix
    socket only."""

    def __init__(
        self,
        service: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        unix: str | os.PathLike | None = None,
        tls: TLS | None = None,
        token: str | None = None,
        limits: Limits | None = None,
        announce: str | None = None,
        announce_ttl: float = 10.0,
        **policy: Unpack[PolicyOptions],
    ) -> None:
        self.service = service
        self.token = token
        self.limits = limits
        self._policy_options = policy
        # Fails now, not at the first connection, if an option is unknown.
        policy_for(service, **policy)
        if unix is not None:
            address = f"unix://{os.fspath(unix)}"
        else:
            scheme = "tls" if tls is not None else "tcp"
            bracketed = f"[{host}]" if ":" in host and not host.startswith("[") else host
            address = f"{scheme}://{bracketed}:{int(port)}"
        if tls is not None and (tls.cert is None or tls.key is None):
            raise ValueError("a TLS server needs tls=pynto.TLS(cert=..., key=...)")
        self._raw = _pynto.Server(
            address,
            tls_cert=None if tls is None else os.fspath(tls.cert),
            tls_key=None if tls is None else os.fspath(tls.key),
            tls_ca=None if tls is None or tls.ca is None else os.fspath(tls.ca),
        )
        self._lock = threading.Lock()
        self._connections: set[Connection] = set()
        self._closed = threading.Event()
        self._started = False
        # The event loop that runs `async def` service methods (set by pynto.aio.serve).
        self._loop: Any = None
        # `announce="etcd://HOST:PORT/NAME"`: registered by start(), withdrawn by close().
        self._announcer: Any = None
        if announce is not None:
            from ._discovery import Announcer, advertised_address

            try:
                self._announcer = Announcer(announce, advertised_address(self.address), announce_ttl)
            except BaseException:
                self._raw.close()
                raise

    @property
    def address(self) -> str:
        """Where it listens: ``tcp://host:port`` or ``unix:///path``."""
        return self._raw.address

    @property
    def port(self) -> int | None:
        """The TCP port (the one picked, with port 0); None on a Unix socket."""
        address = self.address
        if address.startswith("unix://"):
            return None
        return int(address.rpartition(":")[2])

    @property
    def connections(self) -> list[Connection]:
        """The open connections."""
        with self._lock:
            return [c for c in self._connections if not c.closed]

    def _accept(self, accepted: Any) -> None:
        if self._closed.is_set():
            return
        service = self.service
        instance = service() if isinstance(service, type) else service
        policy = policy_for(instance, **self._policy_options)
        try:
            conn = accepted.open(
                Connection, instance, policy, token=self.token, service_name=_service_name(instance), limits=self.limits
            )
        except (ProtocolError, ConnectionError, OSError):
            return  # logged by the compiled side (pynto.connection)
        # Whichever side closes it, the connection leaves the server's table: the hook runs
        # once it is closed, so one closed before the check below is never added. (The hook
        # holds the connection weakly: a strong one would make a cycle.)
        ref = weakref.ref(conn)
        conn._on_close.append(lambda: self._forget(ref()))
        with self._lock:
            if self._closed.is_set():
                stopping = True
            else:
                stopping = False
                if not conn.closed:
                    self._connections.add(conn)
        if stopping:
            conn.close()
            return
        conn._loop = self._loop
        # Every accepted connection gets on_connect, then on_disconnect once, even one its
        # peer closed at once.
        try:
            _bind(conn, instance)
        except Exception:
            log.exception("pynto: on_connect failed for %s; closing it", accepted.peer)
            conn.close()

    def _forget(self, conn: Connection | None) -> None:
        with self._lock:
            self._connections.discard(conn)

    def start(self) -> "Server":
        """Accept connections on a background thread."""
        if not self._started:
            self._started = True
            self._raw.start(self._accept)
            if self._announcer is not None:
                try:
                    self._announcer.start()
                except BaseException:
                    self.close()
                    raise
        return self

    def serve_forever(self) -> None:
        """Accept connections until ``close()`` (or Ctrl-C, which closes it)."""
        self.start()
        try:
            while not self._closed.wait(0.2):
                pass
        finally:
            self.close()

    def close(self) -> None:
        """Stop accepting and close every connection."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self._announcer is not None:
            self._announcer.stop()
        self._raw.close()
        with self._lock:
            conns, self._connections = list(self._connections), set()
        for conn in conns:
            conn.close()

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<pynto.Server {_service_name_of(self.service)} on {self.address}>"


def _service_name_of(service: Any) -> str:
    return service.__name__ if isinstance(service, type) else type(service).__name__


def serve_stdio(service: Any, token: str | None = None, limits: Limits | None = None, **policy: Unpack[PolicyOptions]) -> None:
    """Serve one connection over this process's stdin/stdout until it ends."""
    instance = service() if isinstance(service, type) else service
    pol = policy_for(instance, **policy)

    def opened(conn: Connection) -> None:
        _bind(conn, instance)

    try:
        _pynto.serve_stdio(
            Connection, instance, pol, token=token, service_name=_service_name(instance), on_open=opened, limits=limits
        )
    except ConnectionClosed:
        # The peer went away before or during the handshake: nothing to serve.
        log.info("pynto: the stdio peer closed the connection")
