"""Discovery on etcd: servers announce their address under a NAME, clients find them.

An ``etcd://HOST:PORT/NAME`` target names a group of servers. A server announces itself with a
lease it keeps alive (`Announcer`); clients list the group (`resolve`), connect to one of its
members (`connect_registered`) or follow it as it changes (`Watch`, used by ``pynto.Pool``).

The etcd client is etcd's own v3 HTTP/JSON gateway (``/v3/kv/*``, ``/v3/lease/*``,
``/v3/watch``) over the standard library's ``http.client``: no dependency, and the gateway ships
in every etcd server since 3.3 (ARCHITECTURE.md, "Discovery: etcd through its JSON gateway").

Keys: ``/pynto/NAME/<lease id in hex>`` holds the server's address (``tcp://host:port``, ...),
attached to the server's lease, so the key disappears when the lease expires (the server died)
or is revoked (the server closed).
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import random
import socket
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable, Iterator

__all__ = ["Announcer", "EtcdClient", "EtcdError", "EtcdTarget", "Watch", "connect_registered", "resolve"]

log = logging.getLogger("pynto.discovery")

#: Where announcements live in etcd's key space.
KEY_ROOT = "/pynto/"

#: Default lease time to live, in seconds: how long a dead server stays registered at most.
DEFAULT_TTL = 10.0


class EtcdError(ConnectionError):
    """etcd could not be reached, or refused a request."""


@dataclass(frozen=True)
class EtcdTarget:
    """A parsed ``etcd://HOST:PORT/NAME``."""

    host: str
    port: int
    name: str

    @classmethod
    def parse(cls, url: str) -> "EtcdTarget":
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "etcd":
            raise ValueError(f"{url!r} is not an etcd:// address")
        name = parts.path.lstrip("/")
        if not parts.hostname or not name or name.endswith("/"):
            raise ValueError(f"{url!r}: expected etcd://HOST:PORT/NAME")
        if parts.query or parts.fragment:
            raise ValueError(f"{url!r}: an etcd:// address has no query or fragment")
        try:
            port = parts.port or 2379
        except ValueError:
            raise ValueError(f"{url!r}: the port is not a number") from None
        return cls(parts.hostname, port, name)

    @property
    def prefix(self) -> str:
        """The key prefix under which the servers of NAME are announced."""
        return f"{KEY_ROOT}{self.name}/"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"etcd://{host}:{self.port}/{self.name}"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def _unb64(text: str) -> str:
    return base64.b64decode(text).decode()


def _prefix_end(prefix: str) -> str:
    """The first key after every key that starts with ``prefix`` (etcd's range_end)."""
    raw = bytearray(prefix.encode())
    raw[-1] += 1  # prefixes end with "/", never with 0xff
    return raw.decode()


class EtcdClient:
    """The few etcd v3 calls discovery needs, through the JSON gateway. Thread-safe: each
    request opens its own HTTP connection (they are rare: grants, puts, keep-alives)."""

    def __init__(self, host: str, port: int, timeout: float = 5.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout

    def _connection(self, timeout: float | None) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def call(self, path: str, body: dict) -> dict:
        """POST ``body`` to ``/v3/<path>``; the decoded reply, or `EtcdError`."""
        conn = self._connection(self.timeout)
        try:
            conn.request("POST", f"/v3/{path}", body=json.dumps(body), headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            data = response.read()
        except OSError as exc:
            raise EtcdError(f"cannot reach etcd at {self.host}:{self.port}: {exc}") from exc
        finally:
            conn.close()
        try:
            reply = json.loads(data or b"{}")
        except ValueError:
            raise EtcdError(f"etcd at {self.host}:{self.port} answered {path} with non-JSON: {data[:200]!r}") from None
        if response.status != 200 or "error" in reply:
            message = reply.get("message") or reply.get("error") or data[:200].decode(errors="replace")
            raise EtcdError(f"etcd at {self.host}:{self.port} refused {path}: {message} (HTTP {response.status})")
        return reply

    def grant(self, ttl: float) -> int:
        """A new lease of ``ttl`` seconds (rounded up; etcd counts whole seconds)."""
        reply = self.call("lease/grant", {"TTL": max(1, int(-(-ttl // 1)))})
        return int(reply["ID"])

    def keepalive(self, lease: int) -> int:
        """Renew ``lease``; the TTL it has again, 0 if it had already expired."""
        reply = self.call("lease/keepalive", {"ID": str(lease)})
        return int(reply.get("result", {}).get("TTL", 0))

    def revoke(self, lease: int) -> None:
        """End ``lease`` and delete its keys now."""
        self.call("lease/revoke", {"ID": str(lease)})

    def put(self, key: str, value: str, lease: int = 0) -> None:
        self.call("kv/put", {"key": _b64(key), "value": _b64(value), "lease": str(lease)})

    def get_prefix(self, prefix: str) -> tuple[dict[str, str], int]:
        """Every key under ``prefix`` with its value, and the store's revision."""
        reply = self.call("kv/range", {"key": _b64(prefix), "range_end": _b64(_prefix_end(prefix))})
        revision = int(reply.get("header", {}).get("revision", 0))
        found = {_unb64(kv["key"]): _unb64(kv.get("value", "")) for kv in reply.get("kvs", [])}
        return found, revision

    def watch_prefix(self, prefix: str, start_revision: int) -> "_WatchStream":
        """A stream of the changes under ``prefix`` from ``start_revision`` on."""
        conn = self._connection(self.timeout)
        body = {
            "create_request": {
                "key": _b64(prefix),
                "range_end": _b64(_prefix_end(prefix)),
                "start_revision": str(start_revision),
            }
        }
        try:
            conn.request("POST", "/v3/watch", body=json.dumps(body), headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            if response.status != 200:
                raise EtcdError(f"etcd at {self.host}:{self.port} refused watch (HTTP {response.status})")
            # The stream stays open: no timeout on reads from now on.
            if conn.sock is not None:
                conn.sock.settimeout(None)
        except OSError as exc:
            conn.close()
            raise EtcdError(f"cannot reach etcd at {self.host}:{self.port}: {exc}") from exc
        return _WatchStream(conn, response)


class _WatchStream:
    """An open ``/v3/watch`` response: one JSON message per line."""

    def __init__(self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse) -> None:
        self._conn = conn
        self._response = response

    def events(self) -> Iterator[tuple[str, str, str]]:
        """``(kind, key, value)`` with kind "PUT" or "DELETE", until the stream ends."""
        while True:
            try:
                line = self._response.readline()
            except Exception:  # the socket was shut down under the read, or the stream broke
                return
            if not line:
                return
            if not line.strip():
                continue
            message = json.loads(line)
            result = message.get("result", {})
            if "error" in message or result.get("canceled"):
                return
            for event in result.get("events", []):
                kv = event.get("kv", {})
                kind = event.get("type", "PUT")
                yield kind, _unb64(kv.get("key", "")), _unb64(kv.get("value", ""))

    def interrupt(self) -> None:
        """End the stream from another thread: its reader sees the end."""
        sock = self._conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        """Release the connection (by the thread that reads the stream)."""
        self.interrupt()
        self._conn.close()


def _member_key(target: EtcdTarget, key: str) -> bool:
    """True for a server's key directly under NAME (not under a longer NAME/sub)."""
    return key.startswith(target.prefix) and "/" not in key[len(target.prefix):]


def resolve(url: str | EtcdTarget, timeout: float = 5.0) -> dict[str, str]:
    """The servers registered under an ``etcd://HOST:PORT/NAME``: ``{key: address}``."""
    target = url if isinstance(url, EtcdTarget) else EtcdTarget.parse(url)
    found, _ = EtcdClient(target.host, target.port, timeout).get_prefix(target.prefix)
    return {key: address for key, address in found.items() if _member_key(target, key)}


def connect_registered(target: str | list, connect: Callable[[Any], Any]) -> Any:
    """Connect (with ``connect(address)``) to one live server of ``target``: those registered
    under an ``etcd://`` address, or a list of addresses. They are tried in random order, so
    clients spread across them; a server that does not answer (dead, its lease not yet
    expired) is skipped."""
    if isinstance(target, str):
        etcd = EtcdTarget.parse(target)
        addresses: list[Any] = list(resolve(etcd).values())
        where = f"registered under {etcd.name!r} in etcd at {etcd.host}:{etcd.port}"
        if not addresses:
            raise ConnectionRefusedError(f"no server is {where}")
    else:
        addresses = list(target)
        where = "in the list"
        if not addresses:
            raise ValueError("connect needs at least one address")
    random.shuffle(addresses)
    failures = []
    for address in addresses:
        try:
            return connect(address)
        except OSError as exc:
            failures.append(f"{address}: {exc}")
    raise ConnectionRefusedError(
        f"none of the {len(addresses)} servers {where} accepted a connection ({'; '.join(failures)})"
    )


class Announcer:
    """Keeps ``address`` registered under ``url`` while it runs: a lease of ``ttl`` seconds,
    renewed every third of it by a background thread, and the key attached to the lease.
    `stop` revokes the lease, so the key goes at once; if the process dies, etcd drops the
    key when the lease expires. A lease lost meanwhile (etcd unreachable for longer than the
    TTL) is replaced by a new one and the key put again."""

    def __init__(self, url: str, address: str, ttl: float = DEFAULT_TTL) -> None:
        if ttl <= 0:
            raise ValueError(f"announce_ttl must be positive, not {ttl!r}")
        self.target = EtcdTarget.parse(url)
        self.address = address
        self.ttl = ttl
        self._client = EtcdClient(self.target.host, self.target.port, timeout=max(1.0, min(5.0, ttl / 2)))
        self._lease = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def key(self) -> str:
        """The key this server is registered under (valid once started)."""
        return f"{self.target.prefix}{self._lease:x}"

    def _register(self) -> None:
        lease = self._client.grant(self.ttl)
        self._lease = lease
        self._client.put(self.key, self.address, lease)

    def start(self) -> "Announcer":
        """Register now (raises `EtcdError` if etcd refuses), then keep the lease alive."""
        with self._lock:
            if self._thread is not None:
                return self
            self._register()
            log.info("announced %s as %s under %s", self.address, self.key, self.target)
            self._thread = threading.Thread(target=self._keep_alive, name="pynto-announce", daemon=True)
            self._thread.start()
        return self

    def _keep_alive(self) -> None:
        interval = self.ttl / 3
        while not self._stop.wait(interval):
            try:
                if self._client.keepalive(self._lease) == 0:
                    log.warning("the lease of %s under %s expired; announcing it again", self.address, self.target)
                    with self._lock:
                        if self._stop.is_set():
                            return
                        self._register()
            except EtcdError as exc:
                log.warning("keeping %s announced under %s: %s", self.address, self.target, exc)

    def stop(self) -> None:
        """Withdraw the announcement (revoke the lease) and stop renewing it."""
        with self._lock:
            self._stop.set()
            thread, self._thread = self._thread, None
        if thread is None:
            return
        thread.join()
        try:
            self._client.revoke(self._lease)
        except EtcdError as exc:
            log.warning("withdrawing %s from %s: %s (it expires with its lease)", self.address, self.target, exc)


def advertised_address(address: str) -> str:
    """The address to announce for a server listening on ``address``: a wildcard host
    (0.0.0.0, ::) is replaced by this machine's name, which other machines can resolve."""
    scheme, sep, rest = address.partition("://")
    if not sep or scheme == "unix":
        return address
    host, _, port = rest.rpartition(":")
    if host in ("0.0.0.0", "[::]", "::", ""):
        return f"{scheme}://{socket.getfqdn()}:{port}"
    return address


class Watch:
    """Follows the servers under an etcd target: ``on_change(added, removed)`` is called with
    ``{key: address}`` dicts, first with everything registered, then with every change, on a
    background thread. If the watch stream breaks (etcd restarted), it lists again, reports
    the difference and watches on."""

    def __init__(self, target: EtcdTarget, on_change: Callable[[dict[str, str], dict[str, str]], None]) -> None:
        self.target = target
        self._client = EtcdClient(target.host, target.port)
        self._on_change = on_change
        self._known: dict[str, str] = {}
        self._stopped = threading.Event()
        self._stream: _WatchStream | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> "Watch":
        """List the servers now (raises `EtcdError` if etcd cannot be reached), then follow."""
        revision = self._sync()
        self._thread = threading.Thread(target=self._run, args=(revision,), name="pynto-watch", daemon=True)
        self._thread.start()
        return self

    def _sync(self) -> int:
        found, revision = self._client.get_prefix(self.target.prefix)
        current = {k: v for k, v in found.items() if _member_key(self.target, k)}
        added = {k: v for k, v in current.items() if self._known.get(k) != v}
        removed = {k: v for k, v in self._known.items() if k not in current}
        self._known = current
        if added or removed:
            self._report(added, removed)
        return revision

    def _report(self, added: dict[str, str], removed: dict[str, str]) -> None:
        try:
            self._on_change(added, removed)
        except Exception:
            log.exception("following %s: the change handler failed", self.target)

    def _run(self, revision: int) -> None:
        while not self._stopped.is_set():
            try:
                stream = self._client.watch_prefix(self.target.prefix, revision + 1)
            except EtcdError as exc:
                log.warning("watching %s: %s", self.target, exc)
                if self._stopped.wait(1.0):
                    return
                continue
            with self._lock:
                if self._stopped.is_set():
                    stream.close()
                    return
                self._stream = stream
            for kind, key, value in stream.events():
                if not _member_key(self.target, key):
                    continue
                if kind == "DELETE":
                    old = self._known.pop(key, None)
                    if old is not None:
                        self._report({}, {key: old})
                elif self._known.get(key) != value:
                    self._known[key] = value
                    self._report({key: value}, {})
            with self._lock:
                self._stream = None
            stream.close()
            if self._stopped.is_set():
                return
            # The stream ended under us: list again, so nothing missed goes unreported.
            try:
                revision = self._sync()
            except EtcdError as exc:
                log.warning("watching %s: %s", self.target, exc)
                if self._stopped.wait(1.0):
                    return

    def stop(self) -> None:
        with self._lock:
            self._stopped.set()
            stream, self._stream = self._stream, None
        if stream is not None:
            stream.interrupt()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)
