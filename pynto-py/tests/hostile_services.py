"""Services for the hostile-peer tests (access-decision cache, obtain), and a way to serve them
with policy options from a child process: ``python hostile_services.py SERVICE [--allow-pickle]
[--allow-public-attrs]`` prints ``pynto: serving SERVICE on ADDRESS`` like ``pynto serve``.

Imported by the test process too, so it has no side effects beyond definitions unless run.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import decimal
import os
import pathlib
import signal
import subprocess
import sys
import threading
import uuid
from typing import Any

import pynto
from helpers import ServerProcess, TESTS_DIR, child_env, read_line

# --------------------------------------------------------------------------- decision cache


@pynto.exposed
class ExposedClass:
    """Exposed: every public member of the class and its instances is reachable."""

    greeting = "hello"


class UnexposedClass:
    """Not exposed: nothing of the class itself is reachable by a peer."""

    api_key = "SECRET-API-KEY"
    reset_done = False

    @classmethod
    def reset_all(cls) -> str:
        cls.reset_done = True
        return "everything was reset"


class CacheService(pynto.Service):
    """Hands out an exposed and an unexposed class, and tells whether the reset ran."""

    exposed_exposed_class = ExposedClass
    exposed_unexposed_class = UnexposedClass

    def exposed_was_reset(self) -> bool:
        return UnexposedClass.reset_done


# --------------------------------------------------------------------------- obtain


class UserValue:
    """A plain user class: obtained only with trusted=True or allow=(UserValue,)."""

    def __init__(self, x: Any) -> None:
        self.x = x

    def __eq__(self, other: Any) -> bool:
        return type(other) is UserValue and other.x == self.x

    __hash__ = None  # type: ignore[assignment]


class RunsCommand:
    """Unpickling this runs a shell command that creates `marker` (the classic pickle attack)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (os.system, (f"touch {self.marker}",))


class TouchesFile:
    """Unpickling this calls ``pathlib.Path.touch`` on `marker`: a method of an admitted class,
    named with a dotted qualified name."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


class PickleService(pynto.Service):
    """Objects to obtain: standard values, a user class, and two malicious pickles."""

    def exposed_standard(self) -> Any:
        return {
            "when": datetime.datetime(2026, 12, 6, 3, 0, tzinfo=datetime.timezone.utc),
            "day": datetime.date(2026, 12, 6),
            "amount": decimal.Decimal("12.50"),
            "lists": {"a": [1, 2], "b": [3]},
            "ordered": collections.OrderedDict(x=1),
            "grouped": collections.defaultdict(list, {"k": [1]}),
            "id": uuid.UUID(int=7),
            "raw": bytearray(b"ab"),
        }

    def exposed_user_value(self, x: Any) -> UserValue:
        return UserValue(x)

    def exposed_runs_command(self, marker: str) -> RunsCommand:
        return RunsCommand(marker)

    def exposed_touches_file(self, marker: str) -> TouchesFile:
        return TouchesFile(marker)


SERVICES = {"CacheService": CacheService, "PickleService": PickleService}


# --------------------------------------------------------------------------- serving


class ScriptServer(ServerProcess):
    """``python hostile_services.py SERVICE OPTIONS`` in a child process."""

    def __init__(self, *args: str, timeout: float = 30) -> None:
        self.args = args
        self.proc = subprocess.Popen(
            [sys.executable, str(TESTS_DIR / "hostile_services.py"), *args],
            stdout=subprocess.PIPE,
            text=True,
            env=child_env(),
            cwd=TESTS_DIR,
        )
        line = read_line(self.proc.stdout, timeout)
        if not line.startswith("pynto: serving "):
            self.stop()
            raise RuntimeError(f"hostile_services.py {' '.join(args)} printed {line!r}")
        self.line = line.rstrip("\n")
        self.address = self.line.rsplit(" on ", 1)[1]

    def __enter__(self) -> "ScriptServer":
        return self


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("service", choices=sorted(SERVICES))
    parser.add_argument("--allow-pickle", action="store_true")
    parser.add_argument("--allow-public-attrs", action="store_true")
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server = pynto.Server(
        SERVICES[args.service],
        allow_pickle=args.allow_pickle,
        allow_public_attrs=args.allow_public_attrs,
    )
    with server:
        server.start()
        print(f"pynto: serving {args.service} on {server.address}", flush=True)
        while not stop.wait(0.2):
            pass


if __name__ == "__main__":
    # Served from the importable module, so pickles name `hostile_services.X`, not `__main__.X`.
    import hostile_services

    hostile_services.main()
