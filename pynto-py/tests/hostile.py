"""Tools of the hostile-peer tests: what a server process holds, and a relay that misbehaves
between a real client and a real server."""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Callable


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def thread_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def settle(measure: Callable[[], int], target: Callable[[int], bool], timeout: float = 20.0) -> int:
    """Poll ``measure`` until ``target`` holds (returns the last value either way)."""
    deadline = time.monotonic() + timeout
    value = measure()
    while not target(value) and time.monotonic() < deadline:
        time.sleep(0.05)
        value = measure()
    return value


def closed_by_peer(sock: socket.socket, timeout: float) -> bool:
    """True if the peer closes ``sock`` (or resets it) within ``timeout`` seconds."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            if sock.recv(65536) == b"":
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except (socket.timeout, TimeoutError):
        return False
    return False


class Relay:
    """A TCP relay between clients and ``upstream``: forwards both ways until told to
    misbehave. ``drip(data, interval)`` stops forwarding the client's bytes and sends ``data``
    to the server one byte per ``interval`` instead; ``upstream_closed`` is set when the server
    closes its side."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = "tcp://127.0.0.1:%d" % self.listener.getsockname()[1]
        self.upstream_closed = threading.Event()
        self._forward = threading.Event()
        self._forward.set()
        self._server_sock: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        client, _ = self.listener.accept()
        server = socket.create_connection(self.upstream)
        self._server_sock = server
        self._sockets += [client, server]
        threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, from_client: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if from_client and not self._forward.is_set():
                    continue  # swallowed: the relay speaks for the client now
                dst.sendall(data)
        except OSError:
            pass
        if not from_client:
            self.upstream_closed.set()

    def drip(self, data: bytes, interval: float) -> None:
        """Stop forwarding the client; send ``data`` to the server one byte at a time."""
        self._forward.clear()

        def run() -> None:
            assert self._server_sock is not None
            for i in range(len(data)):
                if self._stop or self.upstream_closed.is_set():
                    return
                try:
                    self._server_sock.sendall(data[i : i + 1])
                except OSError:
                    return
                time.sleep(interval)

        threading.Thread(target=run, daemon=True).start()

    def close(self) -> None:
        self._stop = True
        self.listener.close()
        for sock in self._sockets:
            sock.close()
