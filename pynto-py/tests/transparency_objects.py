"""The objects of the differential transparency suite, built the same way on both sides.

Imported by the test process and by the classic server process (the tests directory is on its
path): ``make(kind)`` gives a fresh object of that kind; the suite runs each operation on one
made here and on one made in the server, and compares the outcomes.
"""

from __future__ import annotations

import array
import collections
import contextlib
import dataclasses
import datetime
import decimal
import enum
import fractions
import functools
import io
import json
import math
import os
import pathlib
import types
import uuid
from typing import NamedTuple

import pynto


@dataclasses.dataclass
class Point:
    x: int
    y: int

    def norm1(self) -> int:
        return abs(self.x) + abs(self.y)


@dataclasses.dataclass(frozen=True, order=True)
class FrozenPoint:
    x: int
    y: int


class Pair(NamedTuple):
    a: int
    b: int


class Color(enum.Enum):
    RED = 1
    GREEN = 2


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 3


class Perm(enum.Flag):
    R = 4
    W = 2
    X = 1


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self, a: int = 1, b: int = 2) -> None:
        self.a = a
        self.b = b

    def __repr__(self) -> str:
        return f"Slotted({self.a}, {self.b})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Slotted) and (self.a, self.b) == (other.a, other.b)

    def __hash__(self) -> int:
        return hash((self.a, self.b))


class WithProperty:
    def __init__(self) -> None:
        self._v = 10

    @property
    def v(self) -> int:
        return self._v

    @v.setter
    def v(self, value: int) -> None:
        if value < 0:
            raise ValueError("negative")
        self._v = value

    def __repr__(self) -> str:
        return f"WithProperty({self._v})"


class Dynamic:
    """Attributes made up by __getattr__."""

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):
            raise AttributeError(name)
        return name.upper()

    def __repr__(self) -> str:
        return "Dynamic()"


class Vector:
    """A user numeric type with every operator, reflected ones included."""

    def __init__(self, *items: float) -> None:
        self.items = list(items)

    def __repr__(self) -> str:
        return f"Vector{tuple(self.items)}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vector) and self.items == other.items

    __hash__ = None  # type: ignore[assignment]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]

    def __add__(self, other):
        if isinstance(other, (int, float)):
            return Vector(*(x + other for x in self.items))
        if isinstance(other, Vector):
            return Vector(*(x + y for x, y in zip(self.items, other.items)))
        return NotImplemented

    __radd__ = __add__

    def __mul__(self, other):
        if isinstance(other, (int, float)):
            return Vector(*(x * other for x in self.items))
        return NotImplemented

    __rmul__ = __mul__

    def __neg__(self):
        return Vector(*(-x for x in self.items))

    def __abs__(self):
        return math.hypot(*self.items)

    def __bool__(self) -> bool:
        return any(self.items)


class Managed:
    """A class-based context manager that records what it saw and suppresses KeyError."""

    def __init__(self) -> None:
        self.log: list = []

    def __enter__(self):
        self.log.append("enter")
        return self

    def __exit__(self, exc_type, exc, tb):
        self.log.append(("exit", exc_type.__name__ if exc_type else None, type(exc).__name__ if exc else None))
        return exc_type is KeyError

    def __repr__(self) -> str:
        return f"Managed({self.log})"


@contextlib.contextmanager
def generator_cm(log: list):
    log.append("enter")
    try:
        yield log
    except KeyError as e:
        log.append(("caught", type(e).__name__))
    finally:
        log.append("exit")


class AppError(Exception):
    """A user exception class (imported on both sides)."""


def plain_function(a, b=2, *rest, key=None):
    """A plain function."""
    return (a, b, rest, key)


async def coroutine_function(a, b):
    """An async function."""
    return a + b


async def failing_coroutine(a):
    raise KeyError(a)


class AsyncCounter:
    """An async iterator over 0..n-1."""

    def __init__(self, n: int = 3) -> None:
        self.i = 0
        self.n = n

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self.i >= self.n:
            raise StopAsyncIteration
        self.i += 1
        return self.i - 1

    def __repr__(self) -> str:
        return f"AsyncCounter({self.i}/{self.n})"


def _gen():
    yield from (1, 2, 3)


def call_with(fn, *args):
    """Call ``fn`` (often a callback from the peer) with ``args``: lets a peer's exception pass
    through this side."""
    return fn(*args)


def raise_it(exc):
    """Raise ``exc`` here (an exception object made by the peer or by this side)."""
    raise exc


def exit_raising(kind: str):
    """Raise a BaseException that is not an Exception."""
    if kind == "SystemExit":
        raise SystemExit(3)
    if kind == "KeyboardInterrupt":
        raise KeyboardInterrupt()
    raise GeneratorExit()


MAKERS = {
    "list": lambda: [3, 1, 2],
    "list_nested": lambda: [[1], [2, 3]],
    "dict": lambda: {"a": 1, "b": 2},
    "set": lambda: {1, 2, 3},
    "frozenset": lambda: frozenset({1, 2}),
    "tuple_mutable": lambda: (1, [2]),
    "bytearray": lambda: bytearray(b"abc"),
    "deque": lambda: collections.deque([1, 2, 3]),
    "OrderedDict": lambda: collections.OrderedDict([("a", 1), ("b", 2)]),
    "defaultdict": lambda: collections.defaultdict(list, {"a": [1]}),
    "Counter": lambda: collections.Counter("abca"),
    "ChainMap": lambda: collections.ChainMap({"a": 1}, {"b": 2}),
    "UserList": lambda: collections.UserList([1, 2]),
    "UserDict": lambda: collections.UserDict({"a": 1}),
    "UserString": lambda: collections.UserString("abc"),
    "namedtuple": lambda: Pair(1, 2),
    "dataclass": lambda: Point(1, 2),
    "frozen_dataclass": lambda: FrozenPoint(1, 2),
    "enum": lambda: Color.RED,
    "intenum": lambda: Level.HIGH,
    "flag": lambda: Perm.R | Perm.W,
    "slots": lambda: Slotted(1, 2),
    "property": WithProperty,
    "getattr_class": Dynamic,
    "vector": lambda: Vector(1.0, 2.0),
    "class": lambda: Point,
    "exception": lambda: ValueError("bad", 1),
    "keyerror": lambda: KeyError((1, 2)),
    "oserror": lambda: FileNotFoundError(2, "No such file", "/nope"),
    "user_exception": lambda: AppError("app"),
    "datetime": lambda: datetime.datetime(2024, 1, 2, 3, 4, 5),
    "date": lambda: datetime.date(2024, 1, 2),
    "time": lambda: datetime.time(3, 4, 5),
    "timedelta": lambda: datetime.timedelta(days=1, seconds=5),
    "decimal": lambda: decimal.Decimal("1.25"),
    "fraction": lambda: fractions.Fraction(1, 3),
    "purepath": lambda: pathlib.PurePosixPath("/a/b.txt"),
    "range": lambda: range(1, 7, 2),
    "uuid": lambda: uuid.UUID(int=12345),
    "array": lambda: array.array("i", [1, 2, 3]),
    "dict_keys": lambda: {"a": 1, "b": 2}.keys(),
    "generator": _gen,
    "list_iterator": lambda: iter([1, 2, 3]),
    "map": lambda: map(abs, [-1, -2]),
    "stringio": lambda: io.StringIO("line1\nline2\n"),
    "bytesio": lambda: io.BytesIO(b"abc"),
    "function": lambda: plain_function,
    "lambda": lambda: (lambda x: x * 2),
    "builtin": lambda: len,
    "partial": lambda: functools.partial(plain_function, 1),
    "module": lambda: math,
    "json_module": lambda: json,
    "os_module": lambda: os,
    "context_manager": Managed,
    "generator_cm": lambda: generator_cm([]),
    "async_iterator": AsyncCounter,
    "coroutine_function": lambda: coroutine_function,
    "simple_namespace": lambda: types.SimpleNamespace(a=1, b=2),
    "mappingproxy": lambda: types.MappingProxyType({"a": 1}),
    "mystr": lambda: UStr("abc"),
    "myint": lambda: UInt(5),
}


class Words(pynto.Service):
    """A service exposing a method under an alias (``exposed_add_word = add_word``)."""

    def __init__(self) -> None:
        self.words: list = []

    def add_word(self, word: str) -> int:
        self.words.append(word)
        return len(self.words)

    exposed_add_word = add_word


class UStr(str):
    """A str subclass."""


class UInt(int):
    """An int subclass."""


def make(kind: str):
    """A fresh object of ``kind``."""
    return MAKERS[kind]()
