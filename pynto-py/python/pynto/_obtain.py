"""`pynto.obtain`: a local copy of a remote object, and the restricted unpickler behind it.

This is the one place pynto unpickles what a peer sent. Unpickling runs whatever callable the
pickle names with arguments the pickle chooses (``os.system``, ``builtins.exec``...), so a copy
is unpickled by `RestrictedUnpickler` unless the caller says the peer is trusted: it loads only
the classes listed in `STANDARD_VALUE_TYPES` and those the caller names.

Copies are pickled with protocol 5 and their large buffers (a numpy array's data) kept out of
band (`dumps_buffers`): they cross beside the pickle, read in place on the owner's side, and
arrive as buffers the unpickled object shares (`pynto._pynto.ReceivedBuffer`).
"""

from __future__ import annotations

import _compat_pickle
import codecs
import collections
import copyreg
import datetime
import decimal
import fractions
import importlib
import io
import ipaddress
import pathlib
import pickle
import sys
import types
import uuid
from typing import Any, Callable, Iterable

__all__ = ["RestrictedUnpickler", "STANDARD_VALUE_TYPES", "obtain"]

#: Buffers smaller than this stay inside the pickle (copying them costs less than a separate
#: value would); the protocol's own bound for bytes carried inline in a frame.
OUT_OF_BAND_MIN = 64 << 10


def out_of_band(buffers: list[pickle.PickleBuffer]) -> Callable[[pickle.PickleBuffer], bool]:
    """A protocol-5 ``buffer_callback`` that keeps large contiguous buffers out of the pickle,
    appending them to `buffers` (a false return means out of band)."""

    def callback(buffer: pickle.PickleBuffer) -> bool:
        try:
            with buffer.raw() as raw:
                if raw.nbytes < OUT_OF_BAND_MIN:
                    return True
        except BufferError:
            return True  # not contiguous: in band
        buffers.append(buffer)
        return False

    return callback


def dumps_buffers(obj: Any) -> tuple[Any, ...]:
    """``(pickle, *buffers)``: `obj` pickled with protocol 5, its large buffers out of band (the
    owner's side of ``obtain``; the buffers cross by value, read in place)."""
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(obj, protocol=5, buffer_callback=out_of_band(buffers))
    return (data, *buffers)


def _bytes_from_data(cls: type, args: tuple) -> Any:
    if args and isinstance(args[0], int) and not isinstance(args[0], bool):
        raise pickle.UnpicklingError(
            f"pynto.obtain refused {cls.__name__}({args[0]!r}): a size, not data "
            f"(a pickle never needs it; it would only allocate memory)"
        )
    return cls(*args)


class _Guarded:
    """A standard constructor that refuses the one argument form that could amplify a small
    pickle into a large allocation or computation; every other call is the constructor's."""

    __slots__ = ("cls", "check")

    def __init__(self, cls: Any, check: Any) -> None:
        self.cls = cls
        self.check = check

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs:
            raise pickle.UnpicklingError(f"pynto.obtain refused {self.cls.__name__}() with keywords")
        return self.check(self.cls, args)

    def __repr__(self) -> str:
        return f"<pynto.obtain's guarded {self.cls.__module__}.{self.cls.__qualname__}>"


def _latin1(encode: Any, args: tuple) -> Any:
    # Protocols 0 to 2 spell bytes as _codecs.encode(text, "latin1"); no other codec.
    if len(args) != 2 or not isinstance(args[0], str) or args[1] not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("pynto.obtain admits _codecs.encode(text, 'latin1') only")
    return encode(*args)


def _fraction(cls: type, args: tuple) -> Any:
    # Fraction("1e999999999") computes 10**999999999; a pickled Fraction is (numerator,
    # denominator), so strings are refused.
    if any(isinstance(a, str) for a in args):
        raise pickle.UnpicklingError("pynto.obtain refused Fraction() of a string (pickles carry integers)")
    return cls(*args)


#: Classes (and two constants) a restricted `obtain` loads without being told: each is a value
#: whose reconstruction calls only its own constructor (or ``__new__`` and ``__setstate__``)
#: with the values in the pickle, and none of them reaches a callable it was given, imports a
#: module, touches a file or runs code named by the data:
#:
#: - builtins: ``object``, ``complex``, ``bytearray``, ``bytes`` (only from data, never ``bytes(size)``),
#:   ``set``, ``frozenset``, ``slice``, and the scalar and container types themselves (so
#:   ``defaultdict(list)`` can name its factory); ``Ellipsis``, ``NotImplemented``.
#:   Not ``range``: a tiny range handed to ``set`` or ``deque`` would expand to any size.
#: - ``datetime``: ``date``, ``time``, ``datetime``, ``timedelta``, ``timezone``.
#: - ``decimal.Decimal``; ``fractions.Fraction`` (from integers only).
#: - ``collections``: ``OrderedDict``, ``deque``, ``Counter``, ``defaultdict`` (its factory is
#:   loaded through this same check, and is only called later, by the caller's code).
#: - ``_codecs.encode(text, "latin1")`` and ``copyreg._reconstructor``: how pickle protocols
#:   0 to 2 spell bytes and plain objects.
#: - ``uuid.UUID``; ``pathlib`` paths (making one touches no file); ``ipaddress`` addresses,
#:   networks and interfaces; ``types.SimpleNamespace``.
#:
#: Not here, on purpose: enums and named tuples (user classes: name them in ``allow=``),
#: ``zoneinfo`` (reads files named by the data), ``re`` (compiles patterns), ``array``,
#: ``functools.partial`` and ``operator`` helpers, ``getattr``, other codecs and the rest of
#: ``copyreg`` (each of these calls or reaches things the data names).
STANDARD_VALUE_TYPES: dict[tuple[str, str], Any] = {}


def _admit(obj: Any, loaded: Any = None) -> None:
    module = getattr(obj, "__module__", None) or "builtins"
    name = getattr(obj, "__qualname__", None) or obj.__name__
    STANDARD_VALUE_TYPES[(module, name)] = obj if loaded is None else loaded


_BUILTIN_TYPES: tuple[Any, ...] = (
    object, complex, set, frozenset, slice, bool, int, float, str, list, tuple, dict,
)
_STANDARD_TYPES: tuple[Any, ...] = (
    datetime.date, datetime.time, datetime.datetime, datetime.timedelta, datetime.timezone,
    decimal.Decimal,
    collections.OrderedDict, collections.deque, collections.Counter, collections.defaultdict,
    uuid.UUID,
    pathlib.PurePath, pathlib.PurePosixPath, pathlib.PureWindowsPath, pathlib.Path,
    pathlib.PosixPath, pathlib.WindowsPath,
    ipaddress.IPv4Address, ipaddress.IPv6Address, ipaddress.IPv4Network, ipaddress.IPv6Network,
    ipaddress.IPv4Interface, ipaddress.IPv6Interface,
    types.SimpleNamespace,
)
for _cls in _BUILTIN_TYPES + _STANDARD_TYPES:
    _admit(_cls)
STANDARD_VALUE_TYPES[("builtins", "Ellipsis")] = Ellipsis
STANDARD_VALUE_TYPES[("builtins", "NotImplemented")] = NotImplemented
_admit(bytes, _Guarded(bytes, _bytes_from_data))
_admit(bytearray, _Guarded(bytearray, _bytes_from_data))
_admit(fractions.Fraction, _Guarded(fractions.Fraction, _fraction))
# What protocols 0 to 2 use to spell bytes and plain objects; `_reconstructor` only calls
# `__new__` and `__init__` of classes that passed this same check.
STANDARD_VALUE_TYPES[("_codecs", "encode")] = _Guarded(codecs.encode, _latin1)
_admit(getattr(copyreg, "_reconstructor"))
del _cls


def _named(obj: Any) -> tuple[str, str]:
    """(module, qualified name) under which pickle refers to `obj`."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<locals>" in qualname:
        raise TypeError(
            f"pynto.obtain(allow=...) takes classes (or functions) importable by name, "
            f"not {obj!r}"
        )
    return module, qualname


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that loads only `STANDARD_VALUE_TYPES` and the classes in `allow`.

    Every global a pickle names (including through the copyreg extension registry) passes
    through `find_class`; a name not admitted is refused before its module is imported, so
    nothing of the peer's choosing runs. Persistent ids are refused too.
    """

    def __init__(self, file: Any, allow: Iterable[Any] = (), buffers: Iterable[Any] = ()) -> None:
        super().__init__(file, buffers=buffers)
        self._allowed: dict[tuple[str, str], Any] = {}
        self._companions: dict[tuple[str, str], Any] = {}
        for obj in allow:
            self._allowed[_named(obj)] = obj
            self._companions.update(_companions(obj))

    def find_class(self, module: str, name: str) -> Any:
        # Pickles of Python 2 name some builtins by their old places.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        allowed = self._allowed.get((module, name), _REFUSED)
        if allowed is not _REFUSED:
            # Resolved by pickle as usual; it must still be the very object the caller named.
            found = super().find_class(module, name)
            if found is not allowed:
                raise pickle.UnpicklingError(
                    f"pynto.obtain refused {module}.{name}: it names "
                    f"{found!r}, not the allowed {allowed!r}"
                )
            return found
        companion = self._companions.get((module, name), _REFUSED)
        if companion is not _REFUSED:
            return companion
        standard = STANDARD_VALUE_TYPES.get((module, name), _REFUSED)
        if standard is not _REFUSED:
            return standard
        short = name.rpartition(".")[2]
        if module.partition(".")[0] == "numpy" and short in ("_frombuffer", "_reconstruct", "dtype"):
            short = "numpy.ndarray"  # what admits numpy's reconstructors (`_companions`)
        raise pickle.UnpicklingError(
            f"pynto.obtain refused to load {module}.{name}: it is neither a standard value type "
            f"nor allowed. If you trust what unpickling it does, name it: "
            f"pynto.obtain(proxy, allow=({short},)); trusted=True unpickles anything this peer "
            f"sends (and lets it run any code here)"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("pynto.obtain refused a persistent id")


_REFUSED = object()


def _empty_reconstruct(reconstruct: Any, args: tuple[Any, ...]) -> Any:
    # numpy pickles an array it cannot hand out of band as _reconstruct(cls, (0,), b"b") and then
    # sets its state (whose data must match its shape); any other shape would only allocate.
    if len(args) != 3 or args[1] != (0,):
        raise pickle.UnpicklingError("pynto.obtain admits numpy's _reconstruct(cls, (0,), dtype) only")
    return reconstruct(*args)


def _companions(obj: Any) -> dict[tuple[str, str], Any]:
    """What else a pickle of the allowed class `obj` names and only it needs: for
    ``numpy.ndarray``, the dtype and numpy's two array reconstructors (under numpy 2's and
    numpy 1's module names)."""
    numpy = sys.modules.get("numpy")
    if numpy is None or obj is not getattr(numpy, "ndarray", None):
        return {}
    try:
        package = "numpy._core"
        importlib.import_module(package)
    except ImportError:  # numpy before 1.26
        package = "numpy.core"
    multiarray = importlib.import_module(f"{package}.multiarray")
    numeric = importlib.import_module(f"{package}.numeric")
    reconstruct = _Guarded(getattr(multiarray, "_reconstruct"), _empty_reconstruct)
    frombuffer = getattr(numeric, "_frombuffer")
    found: dict[tuple[str, str], Any] = {("numpy", "dtype"): numpy.dtype}
    for name in ("numpy._core", "numpy.core"):  # what numpy 2 and numpy 1 write
        found[(f"{name}.numeric", "_frombuffer")] = frombuffer
        found[(f"{name}.multiarray", "_reconstruct")] = reconstruct
    return found


def loads(data: bytes, *, trusted: bool = False, allow: Iterable[Any] = (), buffers: Iterable[Any] = ()) -> Any:
    """Unpickle `data` (and its out-of-band `buffers`) as `obtain` does."""
    if trusted:
        return pickle.loads(data, buffers=buffers)
    return RestrictedUnpickler(io.BytesIO(data), allow, buffers).load()


def obtain(proxy: Any, *, trusted: bool = False, allow: Iterable[Any] = ()) -> Any:
    """A local copy of a remote object; a local object is returned as it is.

    The owner pickles the object (its policy must allow it: ``allow_pickle``, or a classic
    service) and this side unpickles the bytes. This is the one place pynto unpickles what a
    peer sends, and by default it does so with a restricted unpickler: only builtins values,
    the standard value types listed in ``pynto._obtain.STANDARD_VALUE_TYPES`` (datetime,
    Decimal, Fraction, OrderedDict, deque, Counter, defaultdict, UUID, paths, IP addresses,
    SimpleNamespace) and the classes named in ``allow`` are loaded; anything else raises
    `pickle.UnpicklingError` naming the class and how to allow it. Unpickling an allowed class
    runs its ``__reduce__`` counterpart (its constructor, ``__setstate__``...), so allow only
    classes whose reconstruction you trust with the peer's data.

    ``trusted=True`` unpickles with plain `pickle`: the peer can then run any code in this
    process (a malicious pickle's ``__reduce__`` names ``os.system``). Use it only for peers
    you would let do that.

    Large buffers (a numpy array's data, anything pickled as a ``pickle.PickleBuffer``) travel
    beside the pickle and are not copied on the way: the owner's side sends them from the
    object's own memory, and the copy here is built over the memory that arrived (a numpy
    array is writable, as one unpickled locally is). ``allow=[numpy.ndarray]`` admits what a
    pickled array names besides its class: ``numpy.dtype`` and numpy's two array
    reconstructors (``_frombuffer``; ``_reconstruct`` only in the form numpy writes).
    Scalars such as ``numpy.float64`` are classes of their own to allow.
    """
    from ._pynto import is_proxy

    if not is_proxy(proxy):
        return proxy
    allow = tuple(allow)
    for obj in allow:
        _named(obj)  # a bad entry fails before the round trip
    reply = proxy._pynto_pickle()
    data, buffers = reply if isinstance(reply, tuple) else (reply, [])
    return loads(data, trusted=trusted, allow=allow, buffers=buffers)
