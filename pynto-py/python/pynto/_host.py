"""The serving side's helpers: type descriptions, dir, batched next, lifecycle hooks.

Called by the compiled host while it serves a request, with the GIL held.
"""

from __future__ import annotations

import collections.abc
import inspect
import types
import weakref

from . import _opcodes as op
from ._service import exposed_names, resolve_attr

_DIRECT = {
    "__call__", "__repr__", "__str__", "__format__", "__hash__", "__bool__", "__len__", "__iter__", "__next__",
    "__getitem__", "__setitem__", "__delitem__", "__contains__", "__enter__", "__exit__",
}
_ASYNC = {"__await__", "__aiter__", "__anext__", "__aenter__", "__aexit__"}
_BY_NAME = {"__instancecheck__", "__subclasscheck__", "__sizeof__"}  # forwarded as calls by name
_CANDIDATES = sorted(_DIRECT | _ASYNC | _BY_NAME | set(op.COMPARE) | set(op.BINARY) | set(op.UNARY))
# Special methods only `object` defines are not forwarded: they would only add round trips
# (the proxy is unique per remote object, so identity, equality and hashing still agree).

_ABCS = [
    "Callable", "Iterable", "Iterator", "Reversible", "Generator", "Sized", "Container", "Collection",
    "Sequence", "MutableSequence", "Set", "MutableSet", "Mapping", "MutableMapping", "MappingView",
    "KeysView", "ItemsView", "ValuesView", "Awaitable", "Coroutine", "AsyncIterable", "AsyncIterator",
    "AsyncGenerator", "Hashable",
]

_METHOD_TYPES = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.ClassMethodDescriptorType,
    staticmethod,
    classmethod,
)


#: Descriptions already computed: type -> {policy: description}. Weak on the type, so a class
#: (and the namespace it was defined in, a closed connection's for instance) is not kept alive
#: by having been described; the descriptions hold only strings.
_descriptions: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def describe(obj, policy) -> tuple:
    """(module, qualname, dunders, methods, abcs) of ``type(obj)`` as the peer may see it.

    Computed once per type and policy in this process (each connection still sends it once)."""
    cls = type(obj)
    try:
        by_policy = _descriptions.get(cls)
    except TypeError:  # a type that cannot be weakly referenced
        return _describe(obj, policy)
    try:
        if by_policy is not None:
            return by_policy[policy]
    except KeyError:
        pass
    except TypeError:  # an unhashable policy
        return _describe(obj, policy)
    description = _describe(obj, policy)
    if by_policy is None:
        by_policy = _descriptions.setdefault(cls, {})
    by_policy[policy] = description
    return description


def cache_stats() -> dict:
    """The sizes of this process's caches a peer's requests fill: the per-connection ones
    (`pynto._pynto._cache_stats`), the shared proxy classes and the described types."""
    from . import _proxy, _pynto

    stats = dict(_pynto._cache_stats())
    stats["shared_proxy_classes"], stats["shared_proxy_class_weight"] = _proxy.shared_classes()
    stats["described_types"] = len(_descriptions)
    return stats


def _describe(obj, policy) -> tuple:
    cls = type(obj)
    dunders = []
    for name in _CANDIDATES:
        owner = _defining_class(cls, name)
        if owner is None or (owner is object and name != "__repr__"):
            continue
        if vars(owner)[name] is None:
            continue
        dunders.append(name)
    if _defining_class(cls, "__hash__") is not None and vars(_defining_class(cls, "__hash__"))["__hash__"] is None:
        dunders.append("__unhashable__")
    # A type with `__add__` but no `__radd__` (list, str, deque, ...): the proxy still gets the
    # reflected form, so `[0] + remote_list` reaches the owner, which runs the whole operator
    # with the by-value operand (as the caller's interpreter would have run it locally).
    for name in list(dunders):
        if name in op.BINARY and op.BINARY[name][1] == op.PLAIN:
            reflected = "__r" + name[2:]
            if reflected not in dunders:
                dunders.append(reflected)
    methods = []
    for name in exposed_names(obj, policy):
        try:
            real = resolve_attr(obj, name, policy)
        except AttributeError:
            continue
        attr = inspect.getattr_static(cls, real, None)
        if isinstance(attr, _METHOD_TYPES) and not _instance_shadows(obj, real):
            methods.append(name)
    abcs = [name for name in _ABCS if isinstance(obj, getattr(collections.abc, name))]
    return cls.__module__, cls.__qualname__, dunders, methods, abcs


def _defining_class(cls: type, name: str):
    """The class in ``cls``'s MRO that defines ``name`` (metaclass attributes do not count)."""
    for klass in cls.__mro__:
        if name in vars(klass):
            return klass
    return None


def _instance_shadows(obj, name: str) -> bool:
    try:
        return name in vars(obj)
    except TypeError:
        return False


def dir_for(obj, policy) -> tuple:
    """``dir(obj)`` as the peer may see it."""
    if policy.classic:
        return tuple(dir(obj))
    return tuple(sorted(set(exposed_names(obj, policy))))


# Iterators over immutable containers: their `next` has no side effects beyond advancing and
# nothing can change what they yield, so fetching ahead is invisible. (Iterators of lists,
# dicts, sets and bytearrays are not here: a mutation between two `next` calls must show.)
_PREFETCHABLE = tuple(
    type(it)
    for it in (iter(()), iter(range(0)), iter(range(2**64)), iter(""), iter("\u20ac"), iter(b""), reversed(range(0)))
)


def next_batch(it, n: int) -> tuple:
    """Up to ``n`` items of ``next(it)`` (1 for iterators that are not plain containers'),
    and whether it is exhausted. An error with no items gathered propagates."""
    if not isinstance(it, _PREFETCHABLE):
        n = 1
    items = []
    nxt = it.__next__
    try:
        for _ in range(n):
            items.append(nxt())
    except StopIteration:
        return items, True
    return items, False


def isinstance_by_name(obj, module: str, qualname: str) -> bool:
    """isinstance(obj, C) where C is named by module and qualified name (loaded classes only)."""
    from ._proxy import _local_class

    cls = _local_class(module, qualname)
    return cls is not None and isinstance(obj, cls)


def on_disconnect(conn) -> None:
    """The session ended (either side closed it): run the connection's end-of-life hooks."""
    ended = getattr(conn, "_ended_now", None)
    if ended is not None:
        ended()


# --------------------------------------------------------------------------- awaitables

_background_loop = None
_background_lock = __import__("threading").Lock()


def _loop_for(conn):
    """The event loop that drives awaitables for ``conn``: its own (an ``aio`` connection or
    server) or pynto's background loop, started on first use."""
    loop = getattr(conn, "_loop", None) if conn is not None else None
    if loop is not None and not loop.is_closed():
        return loop
    global _background_loop
    with _background_lock:
        if _background_loop is None or _background_loop.is_closed():
            import asyncio
            import threading

            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="pynto-asyncio", daemon=True)
            thread.start()
            _background_loop = loop
        return _background_loop


async def _await_remote(proxy):
    return await proxy


def local_coroutine(proxy):
    """A coroutine of this process standing for a remote coroutine (called by the compiled
    module when one arrives): awaiting it drives the remote one on its owner's loop."""
    coro = _await_remote(proxy)
    return coro


def is_remote_coroutine(obj) -> bool:
    """True for the coroutines ``local_coroutine`` makes."""
    return type(obj) is types.CoroutineType and obj.cr_code is _await_remote.__code__


def drive(awaitable, conn):
    """Run ``awaitable`` to completion on its owner's event loop; its result (called by the
    compiled host for ``await proxy``, ``async for``, ``async with`` and ``async def`` methods)."""
    import asyncio

    loop = _loop_for(conn)
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        raise RuntimeError("pynto: cannot wait for a coroutine on its own event loop's thread")

    async def run():
        return await awaitable

    return asyncio.run_coroutine_threadsafe(run(), loop).result()
