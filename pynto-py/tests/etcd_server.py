"""A real etcd server for the tests (Debian's etcd-server), on free ports in a temp dir."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EtcdServer:
    """``etcd`` with its data in ``directory``, listening for clients on 127.0.0.1; ``url(name)``
    is the ``etcd://`` address of a group. Fails (not skips) when etcd is not installed."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("etcd") or "/usr/bin/etcd"
        if not Path(binary).exists():
            raise RuntimeError("etcd is not installed (Debian: apt-get install etcd-server; .ci/run does it)")
        self.port = free_port()
        peer = free_port()
        self.log = open(directory / "etcd.log", "wb")
        self.proc = subprocess.Popen(
            [
                binary,
                "--name", "pynto-test",
                "--data-dir", str(directory / "data"),
                "--listen-client-urls", f"http://127.0.0.1:{self.port}",
                "--advertise-client-urls", f"http://127.0.0.1:{self.port}",
                "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                "--initial-cluster", f"pynto-test=http://127.0.0.1:{peer}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1) as response:
                    if json.loads(response.read()).get("health") == "true":
                        break
            except (OSError, ValueError):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"etcd did not start: {(directory / 'etcd.log').read_text()[-2000:]}")
            time.sleep(0.1)

    def url(self, name: str) -> str:
        return f"etcd://127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
