"""Services the hostile-peer tests serve from a real server process."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import pynto


class Target(pynto.Service):
    """What a hostile or slow peer talks to."""

    #: Connections whose on_disconnect ran, in this process.
    disconnects = 0
    _lock = threading.Lock()

    def on_disconnect(self, conn: Any) -> None:
        with Target._lock:
            Target.disconnects += 1

    def exposed_pid(self) -> int:
        return os.getpid()

    def exposed_echo(self, x: Any) -> Any:
        return x

    def exposed_blob(self, n: int) -> bytes:
        """``n`` bytes (bulk data crosses as an attachment)."""
        return b"\x5a" * n

    def exposed_ask(self, callback: Any) -> Any:
        """Call the peer's callback and return what it returns."""
        return callback()

    def exposed_sleep(self, seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    def exposed_disconnects(self) -> int:
        return Target.disconnects

    def exposed_twice(self, callback: Any, x: Any) -> Any:
        """A round trip back into the caller: callback(x), doubled."""
        return 2 * callback(x)

    def exposed_size(self, data: Any) -> int:
        return len(data)
