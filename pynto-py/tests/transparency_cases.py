"""The differential transparency suite: operations, outcome comparison and scoring.

Every operation runs on an object made locally (``transparency_objects.make``) and on the same
kind of object made in a server process; the outcomes (the result, or the exception's type and
args, and the object's state afterwards) are compared by value. A case is *applicable* when the
local run does not answer "this kind of object does not do that" (TypeError, AttributeError,
NotImplementedError, io.UnsupportedOperation), unless the operation is marked strict (then the
error itself is the behaviour under test). Used by ``test_transparency_differential.py`` and by
``python transparency_cases.py ADDRESS`` (prints the table for docs/transparency.md).
"""

from __future__ import annotations

import abc
import asyncio
import bisect
import collections.abc as cabc
import copy
import dataclasses
import datetime
import decimal
import fractions
import heapq
import inspect
import io
import json
import math
import numbers
import operator
import pickle
import re
import types
from typing import Any, Callable

import transparency_objects as objs

Op = Callable[[Any, Any], Any]

# ------------------------------------------------------------------ operations, per family

FAMILIES: dict[str, list[tuple[str, Op, bool]]] = {}


def family(name: str, *ops: tuple, strict: bool = False) -> None:
    FAMILIES.setdefault(name, []).extend((op_name, fn, strict) for op_name, fn in ops)


def _mutate_during_iteration(x, _):
    for _k in x:
        x[object()] = 1  # dicts: RuntimeError; lists: TypeError
    return None


def _iter_then_append(x, _):
    it = iter(x)
    first = next(it)
    x.append(9)
    return first, list(it)


family(
    "container",
    ("len", lambda x, t: len(x)),
    ("getitem0", lambda x, t: x[0]),
    ("getitem-1", lambda x, t: x[-1]),
    ("slice", lambda x, t: x[0:2]),
    ("slice_step", lambda x, t: x[::-1]),
    ("getitem_a", lambda x, t: x["a"]),
    ("getitem_missing", lambda x, t: x["zz"]),
    ("getitem_tuple_key", lambda x, t: x[(1, 2)]),
    ("setitem0", lambda x, t: x.__setitem__(0, 7)),
    ("setitem_a", lambda x, t: x.__setitem__("a", [5])),
    ("setitem_local_key", lambda x, t: x.__setitem__(datetime.date(2020, 1, 1), 1) or x[datetime.date(2020, 1, 1)]),
    ("delitem0", lambda x, t: x.__delitem__(0)),
    ("delitem_a", lambda x, t: x.__delitem__("a")),
    ("contains1", lambda x, t: 1 in x),
    ("contains_a", lambda x, t: "a" in x),
    ("contains_list", lambda x, t: [2] in x),
    ("get", lambda x, t: x.get("a")),
    ("keys", lambda x, t: sorted(x.keys())),
    ("values", lambda x, t: list(x.values())),
    ("items", lambda x, t: list(x.items())),
    ("append", lambda x, t: x.append([4])),
    ("extend_local", lambda x, t: x.extend([4, 5])),
    ("add", lambda x, t: x.add(9)),
    ("update", lambda x, t: x.update({"z": 26})),
    ("pop", lambda x, t: x.pop()),
    ("count", lambda x, t: x.count(1)),
    ("index", lambda x, t: x.index(1)),
    ("sort_key_local", lambda x, t: x.sort(key=lambda v: -v)),
    ("setdefault", lambda x, t: x.setdefault("q", []).append(1)),
    ("missing_defaultdict", lambda x, t: x["new"]),
    ("most_common", lambda x, t: x.most_common(1)),
    ("rotate", lambda x, t: x.rotate(1)),
    ("move_to_end", lambda x, t: x.move_to_end("a")),
    ("copy_method", lambda x, t: x.copy()),
)

family(
    "iteration",
    ("list", lambda x, t: list(x)),
    ("tuple", lambda x, t: tuple(x)),
    ("reversed", lambda x, t: list(reversed(x))),
    ("next_iter", lambda x, t: next(iter(x))),
    ("next", lambda x, t: next(x)),
    ("enumerate", lambda x, t: list(enumerate(x))),
    ("zip", lambda x, t: list(zip(x, "abcdef"))),
    ("unpack", lambda x, t: (lambda a, *b: (a, b))(*x)),
    ("iter_then_append", _iter_then_append),
    ("mutate_during_iteration", _mutate_during_iteration),
    ("iter_is_self", lambda x, t: iter(x) is x),
    ("exhaust_twice", lambda x, t: (list(x), list(x))),
    ("readline", lambda x, t: x.readline()),
    ("read", lambda x, t: x.read()),
    ("comprehension", lambda x, t: [v for v in x if v]),
)

family(
    "attributes",
    ("real", lambda x, t: x.real),
    ("year", lambda x, t: x.year),
    ("days", lambda x, t: x.days),
    ("name", lambda x, t: x.name),
    ("value", lambda x, t: x.value),
    ("args", lambda x, t: x.args),
    ("filename", lambda x, t: x.filename),
    ("errno", lambda x, t: x.errno),
    ("x", lambda x, t: x.x),
    ("a", lambda x, t: x.a),
    ("v", lambda x, t: x.v),
    ("set_v", lambda x, t: setattr(x, "v", 3) or x.v),
    ("set_v_bad", lambda x, t: setattr(x, "v", -1)),
    ("set_frozen", lambda x, t: setattr(x, "x", 5)),
    ("dynamic", lambda x, t: x.anything),
    ("missing", lambda x, t: x.no_such_attribute_here),
    ("hasattr_append", lambda x, t: hasattr(x, "append")),
    ("hasattr_missing", lambda x, t: hasattr(x, "no_such_attribute_here")),
    ("getattr_default", lambda x, t: getattr(x, "no_such_attribute_here", 42)),
    ("doc", lambda x, t: (x.__doc__ or "")[:20]),
    ("class_name", lambda x, t: x.__class__.__name__),
    ("class_qualname", lambda x, t: x.__class__.__qualname__),
    ("type_name", lambda x, t: type(x).__name__),
    ("dir_has_public", lambda x, t: sorted(n for n in dir(x) if not n.startswith("_"))[:5]),
    ("module_attr", lambda x, t: x.pi),
    ("suffix", lambda x, t: x.suffix),
    ("parts", lambda x, t: x.parts),
    ("start_stop", lambda x, t: (x.start, x.stop, x.step)),
    ("maps", lambda x, t: len(x.maps)),
    ("data", lambda x, t: x.data),
    ("default_factory", lambda x, t: x.default_factory),
    ("fields", lambda x, t: x._fields),
    ("asdict_ns", lambda x, t: vars(x)),
)


def _call_init(x, _):
    x.__init__([4, 5, 6])
    return None


family(
    "calls",
    ("call0", lambda x, t: x()),
    ("call1", lambda x, t: x(1)),
    ("call2", lambda x, t: x(2, 3)),
    ("call_kw", lambda x, t: x(1, key="k")),
    ("call_star", lambda x, t: x(*[1, 2, 3])),
    ("call_list_arg", lambda x, t: x([1, 2])),
    ("method_norm1", lambda x, t: x.norm1()),
    ("method_upper", lambda x, t: x.upper()),
    ("method_isoformat", lambda x, t: x.isoformat()),
    ("method_replace", lambda x, t: x.replace(year=2000)),
    ("method_quantize", lambda x, t: x.quantize(decimal.Decimal("0.1"))),
    ("method_with_suffix", lambda x, t: x.with_suffix(".py")),
    ("method_bad_args", lambda x, t: x.append()),
    ("dunder_len", lambda x, t: x.__len__()),
    ("dunder_getitem", lambda x, t: x.__getitem__(0)),
    ("dunder_eq_twin", lambda x, t: x.__eq__(t)),
    ("dunder_init", _call_init),
    ("type_method_len", lambda x, t: type(x).__len__(x)),
    ("class_or", lambda x, t: type(x).__or__(x, t)),
    ("callable", lambda x, t: callable(x)),
    ("sqrt", lambda x, t: x.sqrt(16)),
    ("partial_args", lambda x, t: (x.args, x.keywords)),
)


_OPERANDS = [
    ("int", 1),
    ("float", 2.5),
    ("list", [0]),
    ("tuple", (0,)),
    ("str", "s"),
    ("bytes", b"x"),
    ("set", {1}),
    ("timedelta", datetime.timedelta(1)),
    ("decimal", decimal.Decimal("1.5")),
    ("fraction", fractions.Fraction(1, 2)),
]

_BINARY = [
    ("+", operator.add),
    ("-", operator.sub),
    ("*", operator.mul),
    ("/", operator.truediv),
    ("//", operator.floordiv),
    ("%", operator.mod),
    ("**", operator.pow),
    ("&", operator.and_),
    ("|", operator.or_),
    ("^", operator.xor),
    ("<<", operator.lshift),
    ("divmod", divmod),
]


def _binary_ops():
    ops = []
    for sym, fn in _BINARY:
        ops.append((f"x{sym}twin", lambda x, t, fn=fn: fn(x, t)))
        ops.append((f"twin{sym}x", lambda x, t, fn=fn: fn(t, x)))
        for oname, operand in _OPERANDS:
            ops.append((f"x{sym}{oname}", lambda x, t, fn=fn, o=operand: fn(x, copy.copy(o))))
            ops.append((f"{oname}{sym}x", lambda x, t, fn=fn, o=operand: fn(copy.copy(o), x)))
    return ops


family("operators", *_binary_ops())
family(
    "operators",
    ("neg", lambda x, t: -x),
    ("pos", lambda x, t: +x),
    ("invert", lambda x, t: ~x),
    ("matmul", lambda x, t: x @ t),
)

_INPLACE = [
    ("+=", operator.iadd),
    ("-=", operator.isub),
    ("*=", operator.imul),
    ("|=", operator.ior),
    ("&=", operator.iand),
    ("^=", operator.ixor),
]


def _inplace(fn, operand):
    def op(x, t):
        y = fn(x, copy.copy(operand) if operand is not None else t)
        return y is x

    return op


family(
    "in_place",
    *[(f"x{sym}{oname}", _inplace(fn, operand)) for sym, fn in _INPLACE for oname, operand in _OPERANDS[:7] + [("twin", None)]],
)

_COMPARE = [("==", operator.eq), ("!=", operator.ne), ("<", operator.lt), ("<=", operator.le), (">", operator.gt), (">=", operator.ge)]


def _compare_ops():
    ops = []
    for sym, fn in _COMPARE:
        ops.append((f"x{sym}twin", lambda x, t, fn=fn: fn(x, t)))
        ops.append((f"twin{sym}x", lambda x, t, fn=fn: fn(t, x)))
        ops.append((f"x{sym}x", lambda x, t, fn=fn: fn(x, x)))
    for oname, operand in _OPERANDS[:4] + _OPERANDS[7:]:
        ops.append((f"x==({oname})", lambda x, t, o=operand: x == o))
        ops.append((f"x<{oname}", lambda x, t, o=operand: x < o))
    ops.append(("twin_in_list_x", lambda x, t: t in [x]))
    ops.append(("x_in_list_twin", lambda x, t: x in [t]))
    return ops


family("comparisons", *_compare_ops())

family(
    "hashing",
    ("hash_eq_twin", lambda x, t: hash(x) == hash(t)),
    ("in_set_of_twin", lambda x, t: x in {t}),
    ("twin_in_set_of_x", lambda x, t: t in {x}),
    ("dict_key_lookup", lambda x, t: {x: 1}.get(t)),
    ("dict_key_lookup_rev", lambda x, t: {t: 1}.get(x)),
    ("set_dedupe", lambda x, t: len({x, t})),
    strict=False,
)
family("hashing", ("hash_raises", lambda x, t: hash(x) is not None), strict=True)

family(
    "text",
    ("repr", lambda x, t: repr(x)),
    ("str", lambda x, t: str(x)),
    ("format_empty", lambda x, t: format(x, "")),
    ("format_spec", lambda x, t: format(x, ">30")),
    ("format_num", lambda x, t: format(x, ".2f")),
    ("format_date", lambda x, t: format(x, "%Y")),
    ("fstring_r", lambda x, t: f"{x!r}"),
    ("percent", lambda x, t: "%s" % (x,)),
    ("percent_d", lambda x, t: "%d" % x),
    ("bytes", lambda x, t: bytes(x)),
    ("ascii", lambda x, t: ascii(x)),
)

family(
    "numeric",
    ("int", lambda x, t: int(x)),
    ("float", lambda x, t: float(x)),
    ("complex", lambda x, t: complex(x)),
    ("bool", lambda x, t: bool(x)),
    ("index", lambda x, t: operator.index(x)),
    ("round", lambda x, t: round(x)),
    ("round2", lambda x, t: round(x, 2)),
    ("floor", lambda x, t: math.floor(x)),
    ("trunc", lambda x, t: math.trunc(x)),
    ("abs", lambda x, t: abs(x)),
    ("range_index", lambda x, t: [10, 20, 30, 40, 50, 60][x]),
    ("hex", lambda x, t: hex(x)),
    ("isqrt", lambda x, t: math.isqrt(x)),
    ("fsum", lambda x, t: math.fsum([x, 1])),
)


def _json_roundtrip(x, t):
    return json.loads(json.dumps(x))


family(
    "stdlib",
    ("sorted", lambda x, t: sorted(x)),
    ("sum", lambda x, t: sum(x)),
    ("min", lambda x, t: min(x)),
    ("max", lambda x, t: max(x)),
    ("any", lambda x, t: any(x)),
    ("json_dumps", lambda x, t: json.dumps(x)),
    ("json_roundtrip", _json_roundtrip),
    ("heapq_nlargest", lambda x, t: heapq.nlargest(2, x)),
    ("heapify", lambda x, t: heapq.heapify(x)),
    ("bisect", lambda x, t: bisect.bisect(sorted(x), 2)),
    ("bisect_on", lambda x, t: bisect.bisect(x, 2)),
    ("asdict", lambda x, t: dataclasses.asdict(x)),
    ("astuple", lambda x, t: dataclasses.astuple(x)),
    ("is_dataclass", lambda x, t: dataclasses.is_dataclass(x)),
    ("replace", lambda x, t: dataclasses.replace(x, x=9)),
    ("signature", lambda x, t: str(inspect.signature(x))),
    ("dict", lambda x, t: dict(x)),
    ("set", lambda x, t: sorted(set(x), key=repr)),
    ("join", lambda x, t: ",".join(map(str, x))),
    ("map_str", lambda x, t: list(map(str, x))),
    ("len_of_list", lambda x, t: len(list(x))),
    ("namedtuple_asdict", lambda x, t: x._asdict()),
    ("enum_members", lambda x, t: [m.name for m in type(x)]),
    ("operator_itemgetter", lambda x, t: operator.itemgetter(0)(x)),
    ("functools_reduce", lambda x, t: __import__("functools").reduce(operator.add, x)),
    ("str_join_self", lambda x, t: "".join(x)),
    ("bytes_join", lambda x, t: b"".join([x, b"!"])),
    ("memoryview", lambda x, t: bytes(memoryview(x))),
    ("fspath_str", lambda x, t: str(x)),
    ("datetime_combine", lambda x, t: datetime.datetime.combine(x, datetime.time(1))),
    ("isoformat_roundtrip", lambda x, t: type(t).fromisoformat(x.isoformat()) == t),
)

_ABCS = [
    "Iterable", "Iterator", "Sized", "Container", "Collection", "Sequence", "MutableSequence", "Set",
    "MutableSet", "Mapping", "MutableMapping", "Hashable", "Callable", "Reversible", "Generator",
    "AsyncIterator", "Awaitable", "KeysView",
]


def _isinstance_ops():
    ops = [(f"isinstance_{name}", lambda x, t, a=getattr(cabc, name): isinstance(x, a)) for name in _ABCS]
    ops += [
        ("isinstance_own_class", lambda x, t: isinstance(x, type(t))),
        ("isinstance_Number", lambda x, t: isinstance(x, numbers.Number)),
        ("isinstance_Real", lambda x, t: isinstance(x, numbers.Real)),
        ("isinstance_ModuleType", lambda x, t: isinstance(x, types.ModuleType)),
        ("isinstance_Exception", lambda x, t: isinstance(x, Exception)),
        ("isinstance_date", lambda x, t: isinstance(x, datetime.date)),
        ("isinstance_local_of_x", lambda x, t: isinstance(t, x)),
        ("issubclass_x", lambda x, t: issubclass(x, object)),
        ("issubclass_local_of_x", lambda x, t: issubclass(type(t), x)),
        ("iscoroutinefunction", lambda x, t: inspect.iscoroutinefunction(x)),
        ("isfunction", lambda x, t: inspect.isfunction(x) or inspect.isbuiltin(x)),
        ("ismodule", lambda x, t: inspect.ismodule(x)),
        ("isclass", lambda x, t: inspect.isclass(x)),
        ("isgenerator", lambda x, t: inspect.isgenerator(x)),
        ("isabstract", lambda x, t: inspect.isabstract(x)),
        ("abc_instance", lambda x, t: isinstance(x, abc.ABC)),
    ]
    return ops


family("isinstance", *_isinstance_ops())


def _with_plain(x, t):
    with x as y:
        r = y is x
    return r


def _with_raise(exc_type):
    def op(x, t):
        try:
            with x:
                raise exc_type("inside")
        except exc_type as e:
            return ("escaped", type(e).__name__, e.args)
        return "suppressed"

    return op


family(
    "with",
    ("with_plain", _with_plain),
    ("with_keyerror_inside", _with_raise(KeyError)),
    ("with_valueerror_inside", _with_raise(ValueError)),
    ("with_app_error_inside", _with_raise(objs.AppError)),
)

family(
    "copy_pickle",
    ("copy", lambda x, t: copy.copy(x)),
    ("deepcopy", lambda x, t: copy.deepcopy(x)),
    ("copy_is_new", lambda x, t: copy.copy(x) is not x or isinstance(t, (tuple, frozenset, str, int, type))),
    ("copy_independent", lambda x, t: (lambda c: (c.append(99), len(x))[1])(copy.copy(x))),
    ("pickle_roundtrip", lambda x, t: pickle.loads(pickle.dumps(x))),
)


def _identity_item(x, t):
    return x[0] is x[0]


family(
    "identity",
    ("self_is_self", lambda x, t: x is x),
    ("item_is_item", _identity_item),
    ("attr_is_attr", lambda x, t: x.maps is x.maps),
    ("id_stable", lambda x, t: id(x) == id(x)),
    ("echo_is", lambda x, t: objs.call_with(lambda v: v, x) is x),
)


def _raise_x(x, t):
    raise x


def _local_through_remote(make_exc):
    """A local exception raised by a local callback that the object calls: comes home as itself."""

    def op(x, t):
        exc = make_exc()

        def callback(*_a):
            raise exc

        try:
            x.sort(key=callback)
        except BaseException as e:
            return ("same" if e is exc else "other", type(e).__name__)
        return "no error"

    return op


family(
    "exceptions",
    ("raise_x", _raise_x),
    ("raise_catch_type", lambda x, t: _catch(x, type(t))),
    ("exc_args", lambda x, t: x.args),
    ("exc_str", lambda x, t: str(x)),
    ("exc_repr", lambda x, t: repr(x)),
    ("exc_with_traceback", lambda x, t: x.with_traceback(None) is x),
    ("keyerror_tuple_key", lambda x, t: x[(9, 9)]),
    ("local_exc_through_remote", _local_through_remote(lambda: ValueError("mine"))),
    ("local_user_exc_through_remote", _local_through_remote(lambda: objs.AppError("mine"))),
    ("index_error", lambda x, t: x[100]),
    ("zero_div", lambda x, t: x / 0),
    ("json_bad", lambda x, t: x.loads("{bad")),
    ("fnf", lambda x, t: x.path.getsize("/no/such/file") if hasattr(x, "path") else x.open("/no/such/file")),
)


def _catch(x, cls):
    try:
        raise x
    except cls as e:
        return type(e).__name__
    except BaseException as e:
        return ("other", type(e).__name__)


def _run(coro_factory):
    return asyncio.run(coro_factory())


async def _collect_async(x):
    return [v async for v in x]


async def _gather(x):
    return await asyncio.gather(x(1, 2), x(3, 4))


async def _await_call(x):
    return await x(1, 2)


family(
    "async",
    ("await_call", lambda x, t: _run(lambda: _await_call(x))),
    ("asyncio_run", lambda x, t: asyncio.run(x(1, 2))),
    ("gather", lambda x, t: _run(lambda: _gather(x))),
    ("call_returns_coroutine", lambda x, t: (lambda c: (inspect.isawaitable(c), c.close() if hasattr(c, "close") else None)[0])(x(1, 2))),
    ("async_for", lambda x, t: _run(lambda: _collect_async(x))),
    ("aiter_anext", lambda x, t: _run(lambda: anext(aiter(x)))),
)

# Cases no Python-level proxy can pass on this interpreter, kept out of the score.
# (family, operation, kind or "*") -> reason.
UNPASSABLE: dict[tuple[str, str, str], str] = {
    ("attributes", "type_name", "*"): "`type(proxy)` is the proxy class; `type()` cannot be overridden (only `__class__` can)",
    ("stdlib", "memoryview", "*"): "the buffer protocol cannot be implemented in Python before 3.12",
    ("text", "bytes", "bytearray"): "bytes(x) of a bytearray uses the buffer protocol (not implementable in Python before 3.12)",
    ("text", "bytes", "array"): "bytes(x) of an array uses the buffer protocol (not implementable in Python before 3.12)",
    ("stdlib", "bytes_join", "*"): "bytes.join needs the buffer protocol (not implementable in Python before 3.12)",
    ("identity", "id_stable", "*"): "trivially true; kept for completeness",
    ("container", "update", "set"): "a set holding str items iterates in the order of the per-process (salted) str hash",
}

# ------------------------------------------------------------------ outcomes

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_NOT_APPLICABLE = (TypeError, AttributeError, NotImplementedError, io.UnsupportedOperation)
_SCALARS = (type(None), bool, int, float, complex, str, bytes)


def _strip(text: str) -> str:
    return _ADDRESS.sub(" at 0x?", text)


def _cls(v: Any) -> type:
    try:
        cls = v.__class__
    except Exception:
        cls = type(v)
    return cls if isinstance(cls, type) else type(v)


def norm(v: Any, depth: int = 0) -> Any:
    """A comparable form of ``v``: exact types and values for data, the class and the
    address-free repr for everything else."""
    if depth > 6:
        return "..."
    cls = _cls(v)
    name = f"{cls.__module__}.{cls.__qualname__}"
    try:
        if cls in _SCALARS:
            if cls is float and math.isnan(v):
                return (name, "nan")
            if cls is str:
                return (name, _strip(v))
            return (name, v)
        if cls in (list, tuple):
            return (name, [norm(i, depth + 1) for i in v])
        if cls in (set, frozenset):
            return (name, sorted((repr(norm(i, depth + 1)) for i in v)))
        if cls is dict:
            return (name, sorted((repr(norm(k, depth + 1)), repr(norm(val, depth + 1))) for k, val in v.items()))
        if isinstance(v, BaseException):
            return ("raise", name, norm(v.args, depth + 1))
        return (name, _strip(repr(v)))
    except Exception as e:  # a result that cannot be inspected
        return ("unreadable", name, type(e).__name__)


def outcome(op: Op, x: Any, twin: Any) -> tuple[str, Any, Any]:
    """(kind, value, state after) of running ``op`` on ``x``."""
    try:
        result = op(x, twin)
        kind, value = "ok", norm(result)
        if inspect.iscoroutine(result):
            result.close()
    except BaseException as e:  # noqa: BLE001 - the outcome is the point
        if isinstance(e, (SystemExit, KeyboardInterrupt)) and type(e).__module__ == "builtins" and not hasattr(e, "remote_type"):
            raise
        cls = type(e)
        # A rebuilt remote exception is a subclass named like the original.
        kind, value = "raise", (cls.__module__, cls.__qualname__, norm(e.args))
    try:
        state = _strip(repr(x))
    except Exception as e:
        state = ("unreadable", type(e).__name__)
    return kind, value, state


def applicable(local: tuple, strict: bool) -> bool:
    if strict or local[0] == "ok":
        return True
    module, qualname, _ = local[1]
    cls = getattr(__import__("builtins"), qualname, None) if module == "builtins" else None
    if module == "io" and qualname == "UnsupportedOperation":
        return False
    return not (isinstance(cls, type) and issubclass(cls, _NOT_APPLICABLE))


# Kinds whose equality is identity (functions, classes, modules, enum members): a twin made in
# this process is by definition another object than the one in the server.
IDENTITY_KINDS = {
    "function", "lambda", "builtin", "partial", "coroutine_function", "class", "module", "json_module", "os_module",
    "enum", "flag",
}
# Kinds whose hash comes from a str hash, which is salted per process (PYTHONHASHSEED).
SALTED_HASH_KINDS = {"mystr", "UserString"}
# Operations done by C code that checks the real type (PyList_Check and kin), not __class__.
REAL_TYPE_OPS = {
    ("stdlib", "json_dumps"): "the json C encoder checks the real type (PyList_Check, ...)",
    ("stdlib", "json_roundtrip"): "the json C encoder checks the real type (PyList_Check, ...)",
    ("stdlib", "heapify"): "heapq's C functions require a real list",
    ("stdlib", "is_dataclass"): "dataclasses look fields up on type(obj), the proxy class",
    ("stdlib", "asdict"): "dataclasses look fields up on type(obj), the proxy class",
    ("stdlib", "astuple"): "dataclasses look fields up on type(obj), the proxy class",
    ("stdlib", "replace"): "dataclasses look fields up on type(obj), the proxy class",
    ("stdlib", "enum_members"): "iterating type(x) iterates the proxy class, not the enum",
    ("numeric", "int"): "int() parses str, bytes and buffers by their real type",
    ("numeric", "float"): "float() parses str, bytes and buffers by their real type",
    ("numeric", "complex"): "complex() parses str by its real type",
}


def unpassable(fam: str, op_name: str, kind: str) -> str | None:
    uses_twin = "twin" in op_name or (fam == "hashing" and op_name != "hash_raises")
    if kind in IDENTITY_KINDS and uses_twin and fam in ("comparisons", "hashing", "calls", "operators", "in_place"):
        return "equality is identity for this kind; the server's object is another object than this process's twin"
    if kind in SALTED_HASH_KINDS and fam == "hashing":
        return "the hash is computed in the server, where str hashes are salted differently (PYTHONHASHSEED)"
    if (fam, op_name) in REAL_TYPE_OPS and kind not in ("decimal", "fraction", "datetime", "range"):
        return REAL_TYPE_OPS[(fam, op_name)]
    return UNPASSABLE.get((fam, op_name, kind)) or UNPASSABLE.get((fam, op_name, "*"))


def run_all(remote_make: Callable[[str], Any], kinds: list[str] | None = None) -> dict:
    """Run every (family, operation, kind). Returns {family: {"matched", "applicable",
    "misses": [...], "unpassable": [...]}}."""
    report: dict = {}
    for fam, ops in FAMILIES.items():
        entry = report.setdefault(fam, {"matched": 0, "applicable": 0, "misses": [], "unpassable": []})
        for kind in kinds or list(objs.MAKERS):
            for op_name, op, strict in ops:
                local = outcome(op, objs.make(kind), objs.make(kind))
                if not applicable(local, strict):
                    continue
                why = unpassable(fam, op_name, kind)
                if why:
                    entry["unpassable"].append((op_name, kind, why))
                    continue
                remote = outcome(op, remote_make(kind), objs.make(kind))
                entry["applicable"] += 1
                if remote == local:
                    entry["matched"] += 1
                else:
                    entry["misses"].append((op_name, kind, local, remote))
    return report


def table(report: dict) -> str:
    lines = ["| family | matched | applicable | score |", "|---|---:|---:|---:|"]
    total_m = total_a = 0
    for fam, e in report.items():
        m, a = e["matched"], e["applicable"]
        total_m += m
        total_a += a
        lines.append(f"| {fam} | {m} | {a} | {100 * m / max(a, 1):.1f}% |")
    lines.append(f"| **all** | {total_m} | {total_a} | {100 * total_m / max(total_a, 1):.1f}% |")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    import pynto

    with pynto.connect(sys.argv[1]) as conn:
        maker = conn.modules.transparency_objects.make
        rep = run_all(maker, sys.argv[2:] or None)
        print(table(rep))
        if "-v" in sys.argv or True:
            for fam, e in rep.items():
                for miss in e["misses"]:
                    print(fam, *miss, sep="\t", file=sys.stderr)
