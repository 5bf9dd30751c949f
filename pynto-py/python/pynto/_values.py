"""Standard immutable value types that cross by value (protocol ``Value::Standard``).

An instance of one of these exact types travels as its qualified type name and by-value
constructor arguments, and the receiver rebuilds an equal object of its own: ``datetime``'s
``date``, ``time``, ``datetime``, ``timedelta`` and ``timezone``, ``decimal.Decimal``,
``fractions.Fraction``, ``pathlib.PurePosixPath`` and ``PureWindowsPath``, ``range``,
``uuid.UUID``, and builtin exception instances. ``STANDARD`` maps each type to the function that
gives its arguments (or ``None`` when this instance cannot cross by value, e.g. a ``datetime``
with a user ``tzinfo``); ``rebuild`` is the receiver's allow-list. Nothing here imports a module
named by the peer or unpickles anything.
"""

from __future__ import annotations

import array
import builtins
import collections
import datetime
import decimal
import fractions
import pathlib
import uuid
from typing import Any, Callable


def _tz_ok(tz: Any) -> bool:
    return tz is None or type(tz) is datetime.timezone


def _datetime(d: datetime.datetime) -> tuple | None:
    if not _tz_ok(d.tzinfo):
        return None
    return (d.year, d.month, d.day, d.hour, d.minute, d.second, d.microsecond, d.tzinfo, d.fold)


def _time(t: datetime.time) -> tuple | None:
    if not _tz_ok(t.tzinfo):
        return None
    return (t.hour, t.minute, t.second, t.microsecond, t.tzinfo, t.fold)


def _exception(e: BaseException) -> tuple:
    if isinstance(e, OSError) and (e.filename is not None or e.filename2 is not None) and len(e.args) == 2:
        # OSError(errno, strerror, filename, winerror, filename2) keeps the file names.
        return (*e.args, e.filename, None, e.filename2)
    return e.args


STANDARD: dict[type, tuple[str, Callable[[Any], tuple | None]]] = {
    datetime.date: ("datetime.date", lambda d: (d.year, d.month, d.day)),
    datetime.datetime: ("datetime.datetime", _datetime),
    datetime.time: ("datetime.time", _time),
    datetime.timedelta: ("datetime.timedelta", lambda t: (t.days, t.seconds, t.microseconds)),
    datetime.timezone: ("datetime.timezone", lambda tz: tz.__getinitargs__()),
    decimal.Decimal: ("decimal.Decimal", lambda d: (str(d),)),
    fractions.Fraction: ("fractions.Fraction", lambda f: (f.numerator, f.denominator)),
    pathlib.PurePosixPath: ("pathlib.PurePosixPath", lambda p: (str(p),)),
    pathlib.PureWindowsPath: ("pathlib.PureWindowsPath", lambda p: (str(p),)),
    range: ("builtins.range", lambda r: (r.start, r.stop, r.step)),
    uuid.UUID: ("uuid.UUID", lambda u: (u.int,)),
}
for _name in dir(builtins):
    _cls = getattr(builtins, _name)
    if isinstance(_cls, type) and issubclass(_cls, BaseException):
        STANDARD[_cls] = (f"builtins.{_name}", _exception)


def reduce(obj: Any) -> tuple[str, tuple] | None:
    """(type name, constructor args) of ``obj`` if it crosses by value (called by the compiled
    module for types found in ``STANDARD``)."""
    name, args_of = STANDARD[type(obj)]
    args = args_of(obj)
    return None if args is None else (name, tuple(args))


# Mutable standard containers that cross by value as the operand of an operator, a comparison,
# a key or an item only (like list, dict, set and bytearray), never as a result or argument.
OPERANDS: dict[type, tuple[str, Callable[[Any], tuple | None]]] = {
    collections.deque: ("collections.deque", lambda d: (list(d), d.maxlen)),
    collections.OrderedDict: ("collections.OrderedDict", lambda d: (list(d.items()),)),
    collections.Counter: ("collections.Counter", lambda c: (dict(c),)),
    collections.defaultdict: ("collections.defaultdict", lambda d: (None, dict(d))),
    collections.UserList: ("collections.UserList", lambda u: (list(u.data),)),
    collections.UserDict: ("collections.UserDict", lambda u: (dict(u.data),)),
    collections.UserString: ("collections.UserString", lambda u: (u.data,)),
    array.array: ("array.array", lambda a: (a.typecode, a.tolist())),
    type({}.keys()): ("builtins.dict_keys", lambda k: (list(k),)),
    type({}.items()): ("builtins.dict_items", lambda i: (list(i),)),
}


def reduce_operand(obj: Any) -> tuple[str, tuple] | None:
    """(type name, constructor args) of an operand in ``OPERANDS``."""
    name, args_of = OPERANDS[type(obj)]
    return name, tuple(args_of(obj))


def _build_datetime(y, mo, d, h, mi, s, us, tz, fold):
    return datetime.datetime(y, mo, d, h, mi, s, us, tz, fold=fold)


def _build_time(h, mi, s, us, tz, fold):
    return datetime.time(h, mi, s, us, tz, fold=fold)


_REBUILD: dict[str, Callable[..., Any]] = {
    "datetime.date": datetime.date,
    "datetime.datetime": _build_datetime,
    "datetime.time": _build_time,
    "datetime.timedelta": datetime.timedelta,
    "datetime.timezone": datetime.timezone,
    "decimal.Decimal": decimal.Decimal,
    "fractions.Fraction": fractions.Fraction,
    "pathlib.PurePosixPath": pathlib.PurePosixPath,
    "pathlib.PureWindowsPath": pathlib.PureWindowsPath,
    "builtins.range": range,
    "uuid.UUID": lambda i: uuid.UUID(int=i),
    "collections.deque": collections.deque,
    "collections.OrderedDict": collections.OrderedDict,
    "collections.Counter": collections.Counter,
    "collections.defaultdict": collections.defaultdict,
    "collections.UserList": collections.UserList,
    "collections.UserDict": collections.UserDict,
    "collections.UserString": collections.UserString,
    "array.array": array.array,
    "builtins.dict_keys": lambda keys: dict.fromkeys(keys).keys(),
    "builtins.dict_items": lambda items: dict(items).items(),
}


def rebuild(name: str, args: tuple) -> Any:
    """The local object for a standard value the peer sent (called by the compiled module).
    Only names on this side's allow-list are rebuilt."""
    build = _REBUILD.get(name)
    if build is None and name.startswith("builtins."):
        cls = getattr(builtins, name[len("builtins.") :], None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            build = cls
    if build is None:
        raise ValueError(f"pynto: the peer sent a value of type {name!r}, which this side does not rebuild")
    try:
        return build(*args)
    except Exception as e:
        if isinstance(build, type) and issubclass(build, BaseException):
            exc = build.__new__(build, *args)  # a constructor with other parameters
            exc.args = args
            return exc
        raise ValueError(f"pynto: the peer sent a malformed {name} value: {e}") from None
