"""What the bulk-data tests serve from a real server process."""

from __future__ import annotations

import os
import threading
from typing import Any

import pynto


class Bulk(pynto.Service):
    """Takes and gives large values, and says whether a large upload has arrived yet."""

    _arrived = threading.Event()

    def exposed_put(self, data: Any) -> int:
        Bulk._arrived.set()
        return len(data)

    def exposed_arrived(self) -> bool:
        """Whether a `put` has run: false while its value is still on the way."""
        return Bulk._arrived.is_set()

    def exposed_reset(self) -> None:
        Bulk._arrived.clear()

    def exposed_get(self, n: int) -> bytes:
        return bytes(n)

    def exposed_peak_rss(self) -> int:
        """This process's peak resident memory so far, in bytes."""
        return peak_rss()

    def exposed_reset_peak(self) -> None:
        reset_peak()


def peak_rss() -> int:
    """The process's peak resident set (VmHWM), in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def reset_peak() -> None:
    """Start counting the peak from the current resident set (Linux 4.0+)."""
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")


def pid() -> int:
    return os.getpid()
