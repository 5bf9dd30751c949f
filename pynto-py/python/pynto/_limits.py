"""``pynto.Limits``: the resource limits of a connection, a server, or this process."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

__all__ = ["Limits"]


@dataclasses.dataclass(frozen=True)
class Limits:
    """Resource limits, given as ``limits=`` to ``Server``, ``connect``, ``connect_subprocess``
    and ``connect_thread`` (and ``--limit NAME=VALUE`` to ``python -m pynto serve``).

    What this side accepts from its peer (announced to it in the handshake):

    - ``max_frame``: the largest message body in bytes (default 64 MiB); bulk bytes travel
      beside it and count only against ``max_message``.
    - ``max_message``: the largest message, body and bulk bytes together (default 1 TiB).
    - ``max_depth``: the deepest nesting of containers in one value (default 128).
    - ``max_objects``: the most objects this side keeps exported for the peer (default 2**22).
    - ``max_in_flight``: the most requests from the peer served at once (default 16,384).

    Time limits, in seconds:

    - ``handshake_timeout``: the whole opening handshake, TLS included (default 10).
    - ``liveness_timeout``: how long a peer may move no bytes at all while calls wait on it
      before they fail with ``ConnectionClosed`` (it is pinged after a seventh of this, at most
      5 s). The same window bounds a message that stalls, or trickles in slower than 1 KiB/s,
      half-way (default 35: a 20 s debugger pause or a slow link survive it).
    - ``write_timeout``: how long sending may wait for the peer to take any bytes before that
      connection is dropped (default 30; ``None`` waits for ever).

    Process-wide:

    - ``max_workers``: the most requests this process serves at once, from every peer
      together; a request past it fails at once (the caller gets ``pynto.ProtocolError``,
      "the peer is overloaded") rather than starting a thread. ``None`` (the default) keeps the current
      setting (512 unless changed). Callbacks of this process's own waiting calls run on the
      waiting threads and are not counted.
    """

    max_frame: int = 64 << 20
    max_message: int = 1 << 40
    max_depth: int = 128
    max_objects: int = 1 << 22
    max_in_flight: int = 1 << 14
    handshake_timeout: float = 10.0
    liveness_timeout: float = 35.0
    write_timeout: float | None = 30.0
    max_workers: int | None = None

    def __post_init__(self) -> None:
        bounds = {
            "max_frame": (1, 2**32 - 1),
            "max_message": (1, 2**64 - 1),
            "max_depth": (1, 2**32 - 1),
            "max_objects": (1, 2**64 - 1),
            "max_in_flight": (1, 2**32 - 1),
        }
        for name, (low, high) in bounds.items():
            _check_int(name, getattr(self, name), low, high)
        if self.max_workers is not None:
            _check_int("max_workers", self.max_workers, 1, 2**32 - 1)
        for name in ("handshake_timeout", "liveness_timeout", "write_timeout"):
            value = getattr(self, name)
            if value is None and name == "write_timeout":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"Limits.{name} must be a positive number of seconds, not {value!r}")

    @classmethod
    def parse(cls, items: list[str]) -> "Limits":
        """Limits from ``NAME=VALUE`` strings (the command line's ``--limit``)."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for item in items:
            name, sep, text = item.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or name not in fields:
                known = ", ".join(fields)
                raise ValueError(f"--limit {item!r}: expected NAME=VALUE with NAME one of {known}")
            text = text.strip()
            if text.lower() == "none":
                values[name] = None
            elif name.endswith("_timeout"):
                values[name] = float(text)
            else:
                values[name] = int(text, 0)
        return cls(**values)


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"Limits.{name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"Limits.{name} must be between {low} and {high}, not {value}")
