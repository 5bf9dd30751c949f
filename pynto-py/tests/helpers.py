"""Helpers shared by the tests: real server processes and polling."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pynto

TESTS_DIR = Path(__file__).resolve().parent
EXAMPLES_DIR = TESTS_DIR.parent / "examples"
SERVING_PREFIX = "pynto: serving "


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child process: this one, with the tests directory importable."""
    env = dict(os.environ)
    paths = [str(TESTS_DIR)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(extra)
    return env


def read_line(stream: Any, timeout: float) -> str:
    """One line from a child's pipe, or "" if it ends or nothing comes within `timeout`."""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(timeout):
            return ""
    return stream.readline()


class ServerProcess:
    """``python -m pynto serve ARGS`` in a child process, with the address it printed."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, timeout: float = 30) -> None:
        self.args = args
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pynto", "serve", *args],
            stdout=subprocess.PIPE,
            text=True,
            env=env or child_env(),
            cwd=TESTS_DIR,
        )
        line = read_line(self.proc.stdout, timeout)
        if not line.startswith(SERVING_PREFIX):
            self.stop()
            raise RuntimeError(
                f"pynto serve {' '.join(args)} printed {line!r} "
                f"(exit status {self.proc.returncode})"
            )
        self.line = line.rstrip("\n")
        self.address = self.line.rsplit(" on ", 1)[1]

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    def signal(self, signum: int) -> int:
        """Send `signum` and return the exit status."""
        self.proc.send_signal(signum)
        try:
            return self.proc.wait(15)
        finally:
            self.stop()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def in_process_server(service: Any, **options: Any) -> Iterator[Any]:
    """A `pynto.Server` on a background thread of this process, closed afterwards."""
    server = pynto.Server(service, **options)
    try:
        server.start()
        yield server
    finally:
        server.close()


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Poll `predicate` until it is true or `timeout` passes; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return bool(predicate())
        time.sleep(interval)
