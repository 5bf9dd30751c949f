"""Services the tests serve, in a server process (``python -m pynto serve --service
services:SampleService``) or in-process (``pynto.Server(SampleService)``).

Imported by the test process too, so it must not have side effects beyond definitions.
"""

from __future__ import annotations

import collections
import enum
import os
import threading
import time
from typing import Any, NamedTuple

import pynto

#: The pid of the process that imported this module: on a server, the server's pid. A test that
#: finds this value equal to a server's pid through a proxy has reached the server's globals.
IMPORTED_BY_PID = os.getpid()


class CustomError(Exception):
    """A non-builtin exception: crosses as pynto.RemoteError unless rebuilt."""


class Color(enum.IntEnum):
    RED = 1
    GREEN = 2


class Point(NamedTuple):
    x: int
    y: int


class MyStr(str):
    pass


class MyInt(int):
    pass


def module_function(x: Any) -> Any:
    """A plain module-level function, exported by the service as a value."""
    return x


@pynto.exposed
class Counter:
    """An exposed class: every public member of its instances is reachable."""

    def __init__(self, start: int = 0) -> None:
        self.value = start
        self._hidden = "hidden"

    def increment(self, by: int = 1) -> int:
        self.value += by
        return self.value


class Plain:
    """Not exposed: only data-model operations and nothing else are reachable."""

    def __init__(self) -> None:
        self.attr = "plain"

    def method(self) -> str:
        return "method"


@pynto.exposed
class Recorder:
    """Answers every data-model operation with a by-value record of what was asked."""

    def __init__(self) -> None:
        self._log: list[tuple[Any, ...]] = []

    def log(self) -> tuple[tuple[Any, ...], ...]:
        return tuple(self._log)

    # A table-driven set of binary operators: `op(self, other)` returns ("op", other).


def _binary(name: str) -> Any:
    def method(self: Recorder, other: Any) -> Any:
        return (name, other if _byvalue(other) else repr(other))

    method.__name__ = f"__{name}__"
    return method


def _byvalue(x: Any) -> bool:
    return x is None or type(x) in (bool, int, float, complex, str, bytes, tuple, slice)


BINARY_OPERATORS = [
    "add", "sub", "mul", "matmul", "truediv", "floordiv", "mod", "divmod", "pow",
    "lshift", "rshift", "and", "xor", "or",
]
COMPARISONS = ["lt", "le", "eq", "ne", "gt", "ge"]

for _name in BINARY_OPERATORS:
    for _prefix in ("", "r", "i"):
        if _prefix == "i" and _name == "divmod":
            continue
        setattr(Recorder, f"__{_prefix}{_name}__", _binary(_prefix + _name))
for _name in COMPARISONS:
    setattr(Recorder, f"__{_name}__", _binary(_name))


def _recorder_extras() -> None:
    def __neg__(self: Recorder) -> Any:
        return ("neg",)

    def __pos__(self: Recorder) -> Any:
        return ("pos",)

    def __abs__(self: Recorder) -> Any:
        return ("abs",)

    def __invert__(self: Recorder) -> Any:
        return ("invert",)

    def __hash__(self: Recorder) -> int:
        return 424242

    def __bool__(self: Recorder) -> bool:
        return False

    def __int__(self: Recorder) -> int:
        return 7

    def __float__(self: Recorder) -> float:
        return 2.5

    def __index__(self: Recorder) -> int:
        return 3

    def __len__(self: Recorder) -> int:
        return 4

    def __iter__(self: Recorder) -> Any:
        return iter(["a", "b", "c"])

    def __contains__(self: Recorder, item: Any) -> bool:
        return item == "inside"

    def __getitem__(self: Recorder, key: Any) -> Any:
        return ("getitem", key)

    def __setitem__(self: Recorder, key: Any, value: Any) -> None:
        self._log.append(("setitem", key, value))

    def __delitem__(self: Recorder, key: Any) -> None:
        self._log.append(("delitem", key))

    def __call__(self: Recorder, *args: Any, **kwargs: Any) -> Any:
        return ("call", args, tuple(sorted(kwargs.items())))

    def __repr__(self: Recorder) -> str:
        return "<Recorder repr>"

    def __str__(self: Recorder) -> str:
        return "Recorder str"

    def __format__(self: Recorder, spec: str) -> str:
        return f"format:{spec}"

    def __enter__(self: Recorder) -> str:
        self._log.append(("enter",))
        return "entered"

    def __exit__(self: Recorder, exc_type: Any, exc: Any, tb: Any) -> bool:
        self._log.append(("exit", exc_type is not None))
        return True  # suppress

    for function in (__neg__, __pos__, __abs__, __invert__, __hash__, __bool__, __int__,
                     __float__, __index__, __len__, __iter__, __contains__, __getitem__,
                     __setitem__, __delitem__, __call__, __repr__, __str__, __format__,
                     __enter__, __exit__):
        setattr(Recorder, function.__name__, function)


_recorder_extras()


class SampleService(pynto.Service):
    """The service of most tests. One instance per connection."""

    #: A plain function stored as a value (not a method): `root.function` is the function.
    exposed_function = staticmethod(module_function)
    exposed_constant = 42

    #: Class attribute shared by every instance: connections seen by on_connect / on_disconnect.
    events: list[str] = []

    def __init__(self) -> None:
        self.conn: Any = None
        self.kept: Any = None
        self.stored: dict[str, Any] = {}
        self.counter = Counter()
        self.plain = Plain()
        self.threads: list[threading.Thread] = []

    def on_connect(self, conn: Any) -> None:
        self.conn = conn
        SampleService.events.append("connect")

    def on_disconnect(self, conn: Any) -> None:
        SampleService.events.append("disconnect")

    # --- plain calls

    def exposed_echo(self, x: Any) -> Any:
        return x

    def exposed_add(self, a: Any, b: Any = 0) -> Any:
        return a + b

    def exposed_signature(self, *args: Any, **kwargs: Any) -> Any:
        return args, tuple(sorted(kwargs.items()))

    @pynto.exposed
    def double(self, x: Any) -> Any:
        return 2 * x

    def exposed_pid(self) -> int:
        return os.getpid()

    def exposed_disconnects(self) -> int:
        """How many connections this process has seen end (on_disconnect ran)."""
        return SampleService.events.count("disconnect")

    def exposed_ident(self) -> int:
        return id(self)

    def exposed_type_name(self, x: Any) -> str:
        cls = type(x)
        return f"{cls.__module__}.{cls.__qualname__}"

    def exposed_is_proxy(self, x: Any) -> bool:
        return pynto.is_proxy(x)

    def exposed_is_same(self, a: Any, b: Any) -> bool:
        return a is b

    def exposed_sleep(self, seconds: float) -> str:
        time.sleep(seconds)
        return "slept"

    def secret(self) -> str:
        """Not exposed."""
        return "secret"

    def _private(self) -> str:
        return "private"

    # --- objects by reference

    def exposed_counter(self) -> Counter:
        return self.counter

    def exposed_new_counter(self, start: int = 0) -> Counter:
        return Counter(start)

    def exposed_plain(self) -> Plain:
        return self.plain

    def exposed_recorder(self) -> Recorder:
        return Recorder()

    def exposed_make(self, kind: str) -> Any:
        return {
            "list": lambda: [1, 2, 3],
            "dict": lambda: {"a": 1, "b": 2},
            "set": lambda: {1, 2},
            "bytearray": lambda: bytearray(b"ab"),
            "tuple_with_list": lambda: (1, [2]),
            "mystr": lambda: MyStr("hello"),
            "myint": lambda: MyInt(5),
            "enum": lambda: Color.GREEN,
            "namedtuple": lambda: Point(1, 2),
            "deque": lambda: collections.deque([1, 2]),
            "generator": lambda: (i for i in range(3)),
            "object": object,
        }[kind]()

    def exposed_objects(self, n: int) -> list[Counter]:
        return [Counter(i) for i in range(n)]

    def exposed_keep(self, obj: Any) -> None:
        self.kept = obj

    def exposed_kept(self) -> Any:
        return self.kept

    def exposed_store(self, key: str, obj: Any) -> None:
        self.stored[key] = obj

    def exposed_is_stored(self, key: str, obj: Any) -> bool:
        return self.stored[key] is obj

    def exposed_forget(self) -> None:
        self.kept = None
        self.stored.clear()

    # --- callbacks

    def exposed_call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    def exposed_call_later(self, fn: Any, arg: Any, delay: float) -> None:
        """Call fn(arg) from a fresh server thread, outside any call from the peer."""

        def run() -> None:
            time.sleep(delay)
            try:
                fn(arg)
            except pynto.ConnectionClosed:
                pass

        thread = threading.Thread(target=run, daemon=True)
        self.threads.append(thread)
        thread.start()

    def exposed_nested(self, fn: Any, depth: int) -> Any:
        """Ping-pong: call fn(depth), which is expected to call nested(fn, depth - 1)."""
        if depth <= 0:
            return threading.get_ident()
        return fn(depth)

    def exposed_ask_peer(self, name: str, *args: Any) -> Any:
        """Symmetry: call `name` on the peer's root."""
        return getattr(self.conn.root, name)(*args)

    # --- errors

    def exposed_raise_builtin(self, kind: str, message: str) -> None:
        raise {"ValueError": ValueError, "KeyError": KeyError, "OSError": OSError,
               "ZeroDivisionError": ZeroDivisionError}[kind](message)

    def exposed_raise_custom(self, message: str) -> None:
        raise CustomError(message)

    def exposed_raise_remote_only(self) -> None:
        import remote_only_errors

        raise remote_only_errors.RemoteOnlyError("only on the server")

    # --- reference counting, seen from this side

    def exposed_stats(self) -> tuple[int, int]:
        stats = self.conn.stats()
        return int(stats["exported"]), int(stats["imported"])


class ClientService(pynto.Service):
    """What a client exposes to the server as its own root."""

    def exposed_hello(self, name: str) -> str:
        return f"hello {name} from the client"

    def exposed_pid(self) -> int:
        return os.getpid()
