"""Services and the access policy.

A *service* is the object a side exposes to its peer as ``conn.root``. What a peer may reach on
an exported object is decided here, in one place: the compiled host calls `resolve_attr` for
every attribute a peer asks for, `check_setattr` / `check_delattr` for writes, and
`exposed_names` for ``dir()`` and type descriptions. Data-model operations (``len``, operators,
comparisons, iteration, ``with``...) are not attribute requests and are decided by the host.

The rules for a non-classic policy, in order:

1. Interpreter internals are never reachable: every ``_``-prefixed name except a few harmless
   ones (`SAFE_DUNDERS`), and the frame, generator, coroutine and traceback attributes
   (``f_globals``, ``gi_frame``, ``tb_frame``...) whatever else the policy allows (only a
   service's own ``exposed_f_x`` or ``@exposed`` member may have such a name).
2. ``x`` resolves to ``exposed_x`` when the object or its type has one.
3. A member marked with `exposed` (also through ``staticmethod``, ``classmethod`` and
   ``property``) is reachable under its own name.
4. Every public member of an instance of a class marked with `exposed` is reachable.
5. The public methods of the builtin containers and scalars (``list.append``, ``dict.items``...)
   are reachable on their instances.
6. With ``allow_public_attrs``, every public name is reachable.

Anything else raises `pynto.AccessDenied`, whose message names the type and the attribute.
A classic policy (`ClassicService`) allows everything.
"""

from __future__ import annotations

import builtins
import dataclasses
import difflib
import importlib
import inspect
import linecache
import textwrap
import threading
import types
from typing import Any, Callable, TypeVar

from ._pynto import is_proxy

__all__ = [
    "CLASSIC_POLICY",
    "DEFAULT_POLICY",
    "ClassicService",
    "Policy",
    "Service",
    "check_delattr",
    "check_setattr",
    "exposed",
    "exposed_names",
    "is_classic",
    "resolve_attr",
    "teleport_source",
]

#: The prefix that makes a service member reachable by peers without its prefix.
EXPOSED_PREFIX = "exposed_"

#: The marker attribute `exposed` sets.
_MARK = "_pynto_exposed"

#: ``_``-prefixed names a peer may read on any exported object: plain strings, no internals.
SAFE_DUNDERS = frozenset({"__doc__", "__name__", "__qualname__", "__module__"})

#: Attribute prefixes of frames, generators, coroutines, async generators and tracebacks.
#: Each of them leads to ``f_globals`` / ``f_locals``, hence to everything.
FRAME_PREFIXES = ("f_", "gi_", "cr_", "ag_", "tb_")

#: Builtin containers and scalars whose public methods every peer may use.
_BUILTIN_VALUE_TYPES: tuple[type, ...] = (
    list, dict, set, frozenset, tuple, str, bytes, bytearray,
    int, float, complex, range, bool,
    type({}.keys()), type({}.values()), type({}.items()),
)

#: Iterators over those. They have no public methods today; listed so they stay harmless.
_BUILTIN_ITERATOR_TYPES: tuple[type, ...] = tuple({
    type(iter(x)) for x in (
        [], (), "", b"", bytearray(), {}, set(), frozenset(), range(0), range(1 << 70),
        {}.keys(), {}.values(), {}.items(),
    )
} | {
    type(reversed([])), type(reversed({})), type(reversed({}.values())),
    type(reversed({}.items())), type(reversed(range(0))),
    enumerate, zip, map, filter, reversed,
})

#: Members of builtin types that are refused even though they are public: ``str.format``
#: walks attributes of its arguments (``"{0.__globals__}".format(f)``), which would let a
#: peer send one of our own objects home and read its internals on a str subclass we export.
_BUILTIN_REFUSED = frozenset({"format", "format_map"})


T = TypeVar("T")


# --------------------------------------------------------------------------- services


class Service:
    """Base class of services: the object a side exposes to its peer as ``conn.root``.

    Members named ``exposed_x``, or decorated with `pynto.exposed`, are reachable by the peer
    as ``x``; nothing else is. Pass the class to `pynto.Server` for one instance per
    connection, or an instance to share it between connections.
    """

    #: Set on `ClassicService`: the host skips the policy for such a service.
    _pynto_classic = False

    def on_connect(self, conn: Any) -> None:
        """Called when a peer connects; `conn` is the connection to it (``conn.root`` is its root)."""

    def on_disconnect(self, conn: Any) -> None:
        """Called once the connection to the peer has ended."""


def exposed(obj: T) -> T:
    """Mark a function, method or class as reachable by peers.

    On a method it has the effect of the ``exposed_`` prefix without renaming the method.
    On a class it exposes every public member of its instances (and of the class itself).
    Works above or below ``staticmethod``, ``classmethod`` and ``property``.
    """
    if isinstance(obj, property):
        # property objects have no instance dict; mark the getter, which is what we look at.
        for accessor in (obj.fget, obj.fset, obj.fdel):
            if accessor is not None:
                setattr(accessor, _MARK, True)
        return obj
    if isinstance(obj, (staticmethod, classmethod)):
        setattr(obj.__func__, _MARK, True)
        try:
            setattr(obj, _MARK, True)
        except AttributeError:
            pass
        return obj
    setattr(obj, _MARK, True)
    return obj


def _own_mark(x: Any) -> bool:
    """True if `x` itself (not its class) carries the `exposed` mark."""
    if isinstance(x, types.MethodType):
        x = x.__func__
    try:
        namespace = object.__getattribute__(x, "__dict__")
    except AttributeError:
        return False
    try:
        return namespace.get(_MARK) is True
    except (AttributeError, TypeError):
        return False


def _member_marked(member: Any) -> bool:
    """True if a member found with `inspect.getattr_static` is marked, looking through wrappers."""
    if _own_mark(member):
        return True
    if isinstance(member, (staticmethod, classmethod)):
        return _own_mark(member.__func__)
    if isinstance(member, property):
        return member.fget is not None and _own_mark(member.fget)
    return False


def _class_marked(cls: type) -> bool:
    """True if `cls` or one of its bases was decorated with `exposed`."""
    try:
        mro = cls.__mro__
    except AttributeError:
        return False
    return any(_own_mark(klass) for klass in mro if klass is not object)


class ClassicService(Service):
    """Full access to this interpreter: modules, builtins, eval/execute, teleport, every attribute.

    For trusted peers only. Each instance (one per connection when the class is served) keeps
    its own namespace for `exposed_eval` and `exposed_execute`.
    """

    _pynto_classic = True

    #: The remote ``builtins`` module (``conn.builtins``).
    exposed_builtins = builtins

    def __init__(self) -> None:
        #: The per-connection namespace of ``conn.eval`` / ``conn.execute`` (``conn.namespace``).
        self.namespace: dict[str, Any] = {"__name__": "__pynto__", "__builtins__": builtins}

    @property
    def exposed_namespace(self) -> dict[str, Any]:
        return self.namespace

    def exposed_getmodule(self, name: str) -> types.ModuleType:
        """Import a module by its dotted name and return it (``conn.modules[name]``)."""
        return importlib.import_module(name)

    def exposed_eval(self, source: str) -> Any:
        """Evaluate an expression in this connection's namespace."""
        return eval(source, self.namespace)

    def exposed_execute(self, source: str) -> None:
        """Execute statements in this connection's namespace."""
        exec(source, self.namespace)

    def exposed_teleport(self, name: str, source: str) -> Any:
        """Define the function `name` from its `source` in a fresh namespace and return it."""
        filename = f"<pynto teleport {name}>"
        # Lets remote tracebacks show the teleported lines.
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        namespace: dict[str, Any] = {"__name__": "__pynto_teleport__", "__builtins__": builtins}
        exec(compile(source, filename, "exec"), namespace)
        try:
            return namespace[name]
        except KeyError:
            raise NameError(f"the teleported source does not define {name!r}") from None


def teleport_source(func: Callable[..., Any]) -> tuple[str, str]:
    """The ``(name, source)`` to send for ``conn.teleport(func)``; explains what cannot go.

    Only a plain function defined with ``def`` can be teleported: it is re-created on the peer
    from its source, so it must not depend on anything of this process but its arguments and
    what it imports itself. Raises `TypeError` for closures, lambdas, methods, builtins and
    anything without source.
    """
    if isinstance(func, (types.MethodType, types.BuiltinFunctionType)) or not isinstance(
        func, types.FunctionType
    ):
        raise TypeError(
            f"cannot teleport {func!r}: only plain functions defined with 'def' can be teleported"
        )
    name = func.__name__
    if name == "<lambda>":
        raise TypeError("cannot teleport a lambda: define the function with 'def'")
    free = func.__code__.co_freevars
    if free:
        raise TypeError(
            f"cannot teleport {func.__qualname__}(): it is a closure over "
            f"{', '.join(free)}; pass {'it' if len(free) == 1 else 'them'} as arguments or "
            f"import inside the function"
        )
    try:
        source = inspect.getsource(func)
    except (OSError, TypeError) as exc:
        raise TypeError(f"cannot teleport {func.__qualname__}(): its source is not available") from exc
    return name, textwrap.dedent(source)


# --------------------------------------------------------------------------- policy


@dataclasses.dataclass(frozen=True)
class Policy:
    """What a side lets its peer do with the objects it exports.

    Mirrors the policy keyword arguments of `pynto.Server`, `pynto.connect`,
    `pynto.connect_subprocess` and `pynto.connect_thread`.
    """

    #: Also expose every public (not ``_``-prefixed) attribute of exported objects.
    allow_public_attrs: bool = False
    #: Let the peer set attributes of exported objects.
    allow_setattr: bool = False
    #: Let the peer delete attributes of exported objects.
    allow_delattr: bool = False
    #: Let the peer ask for pickled copies (``pynto.obtain``).
    allow_pickle: bool = False
    #: Rebuild remote exceptions of non-builtin classes already imported on this side.
    rebuild_exceptions: bool = False
    #: Full access (`ClassicService`): every check passes.
    classic: bool = False


#: The policy of a service that does not say otherwise.
DEFAULT_POLICY = Policy()

#: The policy of `ClassicService`: everything, pickle included, and exceptions rebuilt.
CLASSIC_POLICY = Policy(
    allow_public_attrs=True,
    allow_setattr=True,
    allow_delattr=True,
    allow_pickle=True,
    rebuild_exceptions=True,
    classic=True,
)


def is_classic(service: Any) -> bool:
    """True if `service` (a class or an instance) is a classic, full-access service."""
    cls = service if isinstance(service, type) else type(service)
    return inspect.getattr_static(cls, "_pynto_classic", False) is True


def policy_for(service: Any, **options: bool) -> Policy:
    """The policy of a side that serves `service` with the given keyword options.

    A classic service gets `CLASSIC_POLICY` whatever the options say.
    """
    if is_classic(service):
        return CLASSIC_POLICY
    return Policy(**options)


def _access_denied(message: str) -> AttributeError:
    from pynto._errors import AccessDenied  # lazily: _errors may import this module

    return AccessDenied(message)


def _type_name(obj: Any) -> str:
    cls = type(obj)
    module = getattr(cls, "__module__", None)
    qualname = getattr(cls, "__qualname__", cls.__name__)
    if module in (None, "builtins"):
        return qualname
    return f"{module}.{qualname}"


def _static(obj: Any, name: str) -> Any:
    """The member `name` of `obj` without running any code of `obj`, or `_MISSING`."""
    try:
        return inspect.getattr_static(obj, name)
    except AttributeError:
        return _MISSING
    except Exception:  # a broken __dict__ / __mro__ must not widen access
        return _MISSING


_MISSING = object()


def _builtin_member(obj: Any, name: str) -> bool:
    """Rule 5: `name` is a public member of a builtin container or scalar type `obj` is."""
    if name in _BUILTIN_REFUSED and isinstance(obj, str):
        return False
    for base in _BUILTIN_VALUE_TYPES + _BUILTIN_ITERATOR_TYPES:
        if isinstance(obj, base) and any(
            name in klass.__dict__ for klass in base.__mro__ if klass is not object
        ):
            return True
    return False


def _resolve(obj: Any, name: str, policy: Policy, *, write: bool) -> str:
    if not isinstance(name, str):
        raise TypeError(f"attribute name must be a str, not {type(name).__name__}")
    if policy.classic:
        return name
    verb = "set" if write else "get"
    if not name or name.startswith("_") and (write or name not in SAFE_DUNDERS):
        raise _access_denied(
            f"access denied: cannot {verb} attribute {name!r} of a {_type_name(obj)!r} object "
            f"(interpreter internals are never exposed)"
        )
    if name in SAFE_DUNDERS:
        return name
    if is_proxy(obj):
        # A proxy passed on: its owner makes the access decision for its own object.
        return name
    # Rule 2: exposed_<name>.
    prefixed = EXPOSED_PREFIX + name
    if _static(obj, prefixed) is not _MISSING:
        return prefixed
    # The full name of an exposed_ member is the same member.
    if name.startswith(EXPOSED_PREFIX) and len(name) > len(EXPOSED_PREFIX):
        if _static(obj, name) is not _MISSING:
            return name
    # Rule 3: a member marked with @exposed.
    member = _static(obj, name)
    if member is not _MISSING and _member_marked(member):
        return name
    # Rule 1, second half: what follows would open frames, generators and tracebacks.
    if name.startswith(FRAME_PREFIXES):
        raise _access_denied(
            f"access denied: cannot {verb} attribute {name!r} of a {_type_name(obj)!r} object "
            f"(frame, generator and traceback internals are never exposed)"
        )
    # Rule 4: an instance (or a class) marked with @exposed.
    if _class_marked(type(obj)) or (isinstance(obj, type) and _class_marked(obj)):
        return name
    # Rule 5: public methods of builtin containers and scalars.
    if not write and _builtin_member(obj, name):
        return name
    # Rule 6.
    if policy.allow_public_attrs:
        return name
    if _static(obj, name) is _MISSING:
        suggestion = _did_you_mean(obj, name, policy)
        if suggestion:
            raise _access_denied(
                f"access denied: {_type_name(obj)!r} object has no exposed attribute "
                f"{name!r}; {suggestion}"
            )
    raise _access_denied(
        f"access denied: attribute {name!r} of a {_type_name(obj)!r} object is not exposed "
        f"(name it 'exposed_{name}' or decorate it with @pynto.exposed)"
    )


_suggesting = threading.local()


def _did_you_mean(obj: Any, name: str, policy: Policy) -> str:
    """``did you mean 'x'?`` naming the exposed attributes of `obj` closest to `name`."""
    if getattr(_suggesting, "active", False):  # listing the names resolves each of them
        return ""
    _suggesting.active = True
    try:
        close = difflib.get_close_matches(name, exposed_names(obj, policy), n=3)
    except Exception:
        return ""
    finally:
        _suggesting.active = False
    if not close:
        return ""
    return f"did you mean {' or '.join(repr(c) for c in close)}?"


def resolve_attr(obj: Any, name: str, policy: Policy) -> str:
    """The real attribute name to read for a peer's request of `name` on `obj`.

    ``"x"`` becomes ``"exposed_x"`` where that exists. Raises `pynto.AccessDenied` when the
    policy does not let the peer read `name`. Never runs code of `obj` (no ``__getattr__``,
    no properties): membership is checked with `inspect.getattr_static`.
    """
    return _resolve(obj, name, policy, write=False)


def check_setattr(obj: Any, name: str, policy: Policy) -> str:
    """Raise `pynto.AccessDenied` unless the peer may set `name` on `obj`; return the real name."""
    if not policy.classic and not policy.allow_setattr:
        raise _access_denied(
            f"access denied: cannot set attribute {name!r} of a {_type_name(obj)!r} object "
            f"(the owner does not allow setattr)"
        )
    return _resolve(obj, name, policy, write=True)


def check_delattr(obj: Any, name: str, policy: Policy) -> str:
    """Raise `pynto.AccessDenied` unless the peer may delete `name` of `obj`; return the real name."""
    if not policy.classic and not policy.allow_delattr:
        raise _access_denied(
            f"access denied: cannot delete attribute {name!r} of a {_type_name(obj)!r} object "
            f"(the owner does not allow delattr)"
        )
    return _resolve(obj, name, policy, write=True)


def _dir(obj: Any) -> list[str]:
    try:
        names = dir(obj)
    except Exception:
        names = dir(type(obj))
    return [n for n in names if isinstance(n, str)]


def exposed_names(obj: Any, policy: Policy) -> list[str]:
    """The attribute names a peer may use on `obj`, as the peer spells them, sorted.

    Used for ``dir(proxy)`` and for the method list of a type description. ``exposed_x``
    is listed as ``x``; the safe dunders are left out (the proxy class provides them).
    """
    if policy.classic:
        return sorted(set(_dir(obj)))
    names: set[str] = set()
    for name in _dir(obj):
        if name.startswith("_"):
            continue
        if name.startswith(EXPOSED_PREFIX):
            short = name[len(EXPOSED_PREFIX):]
            if short and not short.startswith("_"):
                names.add(short)
            continue
        try:
            resolve_attr(obj, name, policy)
        except AttributeError:
            continue
        names.add(name)
    return sorted(names)
