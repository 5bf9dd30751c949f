"""Proxy classes: one Python subclass of the compiled ``Proxy`` per remote type.

Each class holds exactly the special methods the remote type has, so ``len``, ``iter``,
``callable``, ``bool`` and ABC checks see what they would see on the remote object, and a
``__class__`` that is the local class of the same qualified name where one is loaded.
"""

from __future__ import annotations

import builtins
import collections
import collections.abc
import sys
import threading
import types

from . import _opcodes as op

# Special methods forwarded straight to a method of the compiled base (no Python frame).
_DIRECT = {
    "__call__": "_pynto_call",
    "__repr__": "_pynto_repr",
    "__str__": "_pynto_str",
    "__format__": "_pynto_format",
    "__hash__": "_pynto_hash",
    "__bool__": "_pynto_bool",
    "__len__": "_pynto_len",
    "__iter__": "_pynto_iter",
    "__next__": "_pynto_next",
    "__getitem__": "_pynto_getitem",
    "__setitem__": "_pynto_setitem",
    "__delitem__": "_pynto_delitem",
    "__contains__": "_pynto_contains",
    "__enter__": "_pynto_enter",
    "__exit__": "_pynto_exit",
}


def _compare(code: int):
    def method(self, other):
        return self._pynto_compare(code, other)

    return method


def _binary(code: int, form: int, name: str):
    def method(self, other, *more):
        if more:  # `RemoteClass.__or__(a, b)` called by name: the remote class's own function
            return self._pynto_attr(name)(other, *more)
        return self._pynto_binary(code, form, other)

    return method


def _unary(code: int):
    def method(self, *args):
        return self._pynto_unary(code)

    return method


# Builtin types that the builtins module does not name (an instance's `__class__` is the local
# type, so isinstance checks against it hold as they would locally).
_UNNAMED_BUILTINS = {
    t.__name__: t
    for t in (
        types.ModuleType, types.GeneratorType, types.MappingProxyType, types.CodeType, type({}.keys()), type({}.values()),
        type({}.items()), type(iter([])), type(iter(())), type(iter(range(0))), type(iter("")), type(iter({})),
        type(iter(set())), type(reversed([])),
    )
}


def _local_class(module: str, qualname: str):
    """The class of that name if its module is already loaded here (never imports)."""
    if module == "builtins" and qualname in _UNNAMED_BUILTINS:
        return _UNNAMED_BUILTINS[qualname]
    mod = builtins if module == "builtins" else sys.modules.get(module)
    obj = mod
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj if isinstance(obj, type) else None


def _reduce_ex(self, protocol):
    """Pickling a proxy pickles a local copy (``pynto.obtain``: the owner must allow pickling)."""
    from . import obtain

    try:
        local = obtain(self)
    except Exception as e:
        raise TypeError(f"cannot pickle a pynto proxy of {type(self).__qualname__}: the local copy failed ({e})") from e
    if isinstance(local, (type, types.FunctionType, types.BuiltinFunctionType)):
        return _same, (local,)  # pickled by reference, as pickle does with the local object
    return local.__reduce_ex__(protocol)


def _same(obj):
    """The identity function (the reconstructor of a pickled proxy of a class or function)."""
    return obj


def _reduce(self):
    """``proxy.__reduce__()`` called by name: the remote object's own (classic peers only;
    pickling a proxy goes through ``__reduce_ex__``, a local copy)."""
    return self._pynto_attr("__reduce__")()


def _copy(self):
    """``copy.copy(proxy)``: a shallow copy made where the object lives; a proxy to it."""
    return self._pynto_copy(False)


def _deepcopy(self, memo):
    """``copy.deepcopy(proxy)``: a deep copy made where the object lives; a proxy to it."""
    return self._pynto_copy(True)


def _init(self, *args, **kwargs):
    """``proxy.__init__(...)`` called by name re-runs the remote object's ``__init__``."""
    self._pynto_attr("__init__")(*args, **kwargs)


def _remote_check(self, name, arg):
    try:
        method = self._pynto_attr(name)
    except AttributeError as e:  # AccessDenied on a non-classic connection
        raise TypeError(f"{name[2:-2]} against a remote class needs its owner to allow {name}: {e}") from e
    return bool(method(arg))


def _instancecheck(self, instance):
    return _remote_check(self, "__instancecheck__", instance)


def _subclasscheck(self, subclass):
    return _remote_check(self, "__subclasscheck__", subclass)


def _sizeof(self):
    """``sys.getsizeof(proxy)``: the remote object's size where its owner tells it."""
    try:
        return self._pynto_attr("__sizeof__")()
    except AttributeError:
        return object.__sizeof__(self)


def _mro_entries(self, bases):
    raise TypeError(
        f"cannot subclass {self!r}: it is a class living in another process (a pynto proxy), and "
        "a local class cannot inherit from it; subclass it on its side (e.g. conn.execute) instead"
    )


def _dir(self):
    return list(self._pynto_dir())


# The asynchronous protocol: each special method starts the compiled base's non-blocking request
# (`_pynto_async_*`, a timeout first) and hands on its `AsyncResult` the way the protocol wants
# it: awaited by the caller, as an iterator of `__await__`, or waited for (`__aiter__` is not
# awaited).
def _awaited(start):
    async def method(self, *args):
        from ._async import AsyncResult

        return await AsyncResult(start(self, None, *args))

    return method


def _await_iter(start):
    def method(self):
        from ._async import AsyncResult

        return AsyncResult(start(self, None)).__await__()

    return method


def _waited(start):
    def method(self):
        from ._async import AsyncResult

        return AsyncResult(start(self, None)).value

    return method


_ASYNC_TABLE = {
    "__await__": ("_pynto_async_await", _await_iter),
    "__aiter__": ("_pynto_async_aiter", _waited),
    "__anext__": ("_pynto_async_anext", _awaited),
    "__aenter__": ("_pynto_async_aenter", _awaited),
    "__aexit__": ("_pynto_async_aexit", _awaited),
}


#: Proxy classes shared by every connection that describes a type the same way, least
#: recently used first. Bounded, so a peer sending endless distinct descriptions cannot grow it:
#: at most `MAX_SHARED_CLASSES` classes and `MAX_SHARED_WEIGHT` of weight (about the bytes the
#: names cost), and a description heavier than `MAX_SHARED_CLASS_WEIGHT` is never shared.
_classes: collections.OrderedDict = collections.OrderedDict()
_classes_weight = 0
_classes_lock = threading.Lock()
MAX_SHARED_CLASSES = 512
MAX_SHARED_WEIGHT = 4 << 20
MAX_SHARED_CLASS_WEIGHT = 64 << 10


def _weight(module: str, qualname: str, dunders: list, methods: list, abcs: list) -> int:
    """About the bytes a proxy class of this description costs (as the connection cache counts)."""
    names = sum(len(n) + 64 for n in (*dunders, *methods, *abcs))
    return 4096 + len(module) + len(qualname) + 2 * names


def make_class(base: type, module: str, qualname: str, dunders: list, methods: list, abcs: list) -> type:
    """The proxy class for one remote type (called by the compiled module). Classes are shared
    by every connection that describes the type the same way, within the bounds above."""
    global _classes_weight
    key = (base, module, qualname, tuple(dunders), tuple(methods), tuple(abcs))
    with _classes_lock:
        cls = _classes.get(key)
        if cls is not None:
            _classes.move_to_end(key)
            return cls[0]
    cls = _make_class(base, module, qualname, dunders, methods, abcs)
    weight = _weight(module, qualname, dunders, methods, abcs)
    if weight > MAX_SHARED_CLASS_WEIGHT:
        return cls
    with _classes_lock:
        if key in _classes:  # built meanwhile by another thread: share that one
            _classes.move_to_end(key)
            return _classes[key][0]
        _classes[key] = (cls, weight)
        _classes_weight += weight
        while len(_classes) > MAX_SHARED_CLASSES or _classes_weight > MAX_SHARED_WEIGHT:
            _, (_, old) = _classes.popitem(last=False)
            _classes_weight -= old
    return cls


def shared_classes() -> tuple[int, int]:
    """(classes, weight) of the shared proxy-class cache."""
    with _classes_lock:
        return len(_classes), _classes_weight


def _make_class(base: type, module: str, qualname: str, dunders: list, methods: list, abcs: list) -> type:
    ns: dict = {
        "__slots__": (),
        "__module__": "pynto.proxies",
        "__qualname__": qualname,
        "__dir__": _dir,
        "__reduce_ex__": _reduce_ex,
        "__reduce__": _reduce,
        "__copy__": _copy,
        "__deepcopy__": _deepcopy,
        "__init__": _init,
    }
    ns["__repr__"] = getattr(base, "_pynto_repr")
    for name in dunders:
        if name in _DIRECT:
            ns[name] = getattr(base, _DIRECT[name])
        elif name in op.COMPARE:
            ns[name] = _compare(op.COMPARE[name])
        elif name in op.BINARY:
            ns[name] = _binary(*op.BINARY[name], name)
        elif name in op.UNARY:
            ns[name] = _unary(op.UNARY[name])
        elif name in _ASYNC_TABLE:
            start, shape = _ASYNC_TABLE[name]
            ns[name] = shape(getattr(base, start))
        elif name == "__instancecheck__":
            ns[name] = _instancecheck
            ns["__mro_entries__"] = _mro_entries
        elif name == "__subclasscheck__":
            ns[name] = _subclasscheck
        elif name == "__sizeof__":
            ns[name] = _sizeof
    if "__hash__" not in dunders and "__eq__" in dunders:
        ns["__hash__"] = None
    if "__unhashable__" in dunders:
        ns["__hash__"] = None
    local = _local_class(module, qualname)

    def _class(self, _cls=local):
        return _cls if _cls is not None else type(self)

    ns["__class__"] = property(_class)

    def _doc(self):
        return base.__getattr__(self, "__doc__")

    ns["__doc__"] = property(_doc)
    cls = type(qualname.rpartition(".")[2] or "Proxy", (base,), ns)
    if local is None:
        for name in abcs:
            abc = getattr(collections.abc, name, None)
            if abc is not None:
                abc.register(cls)
    return cls
