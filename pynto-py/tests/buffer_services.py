"""What the buffer tests use inside a real classic server process (``conn.modules.buffer_services``):
arrays kept alive between calls, the pickle protocols an object was asked for, and peak memory."""

from __future__ import annotations

import array
import hashlib
import pickle
from typing import Any

import numpy as np

from bulk_services import peak_rss, reset_peak
from pynto._errors import Unimplemented

__all__ = ["peak_rss", "reset_peak"]

#: Values made here and held until the test lets them go.
held: dict[str, Any] = {}

#: The protocols `Recorder.__reduce_ex__` was called with, in order.
protocols: list[int] = []


def make(name: str, mib: int) -> np.ndarray:
    """A float64 array of `mib` MiB (0, 1, 2, ...), held under `name`."""
    held[name] = np.arange(mib * (1 << 20) // 8, dtype=np.float64)
    return held[name]


def digest(obj: Any) -> str:
    """The SHA-256 of `obj`'s bytes in C order (an array's data)."""
    return hashlib.sha256(memoryview(np.ascontiguousarray(obj)).cast("B")).hexdigest()


def describe(obj: Any) -> tuple[str, tuple[int, ...], bool, str]:
    """(type name, shape, writable, digest) of an array this side received."""
    return type(obj).__name__, obj.shape, bool(obj.flags.writeable), digest(obj)


def keep(name: str, obj: Any) -> None:
    held[name] = obj


def drop() -> None:
    held.clear()


def pickle_buffer(kind: str) -> pickle.PickleBuffer:
    """A `PickleBuffer` over a fresh exporter: `bytearray`, `array` (array.array of doubles),
    `readonly` (a memoryview of bytes) or `strided` (every other byte: not contiguous)."""
    data = bytes(range(256)) * 1024
    exporter: Any = {
        "bytearray": lambda: bytearray(data),
        "array": lambda: array.array("d", range(len(data) // 8)),
        "readonly": lambda: memoryview(data),
        "strided": lambda: memoryview(data)[::2],
    }[kind]()
    held[kind] = exporter
    return pickle.PickleBuffer(exporter)


class Recorder:
    """Records the protocol it is pickled with; refuses protocol 5 with `Unimplemented`
    when `refuse_5` (what an owner that does not know `PickleBuffers` answers)."""

    def __init__(self, value: int, refuse_5: bool = False) -> None:
        self.value = value
        self.refuse_5 = refuse_5

    def __reduce_ex__(self, protocol: Any) -> Any:
        protocols.append(protocol)
        if protocol >= 5 and self.refuse_5:
            raise Unimplemented("this owner does not pickle with protocol 5")
        return Recorder, (self.value,)
