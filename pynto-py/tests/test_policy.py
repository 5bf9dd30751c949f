"""The access policy on its own: `resolve_attr`, `check_setattr`, `check_delattr`, `exposed_names`.

Pure Python, no connection: these are the checks the host runs for every attribute request.
"""

from __future__ import annotations

import dataclasses
import types

import pytest

from pynto import AccessDenied
from pynto._service import (
    ClassicService,
    Policy,
    Service,
    check_delattr,
    check_setattr,
    exposed,
    exposed_names,
    resolve_attr,
    teleport_source,
)

DEFAULT = Policy()
PUBLIC = Policy(allow_public_attrs=True)
CLASSIC = Policy(classic=True)
WRITABLE = Policy(allow_setattr=True, allow_delattr=True)

# Everything a peer must never read on a non-classic connection, whatever the policy.
INTERNALS = [
    "__globals__", "__code__", "__closure__", "__subclasses__", "__dict__", "__builtins__",
    "__reduce__", "__reduce_ex__", "__class__", "__base__", "__bases__", "__mro__",
    "__init_subclass__", "__getattribute__", "__func__", "__self__", "__init__", "__setattr__",
    "__getstate__", "_private", "__weakref__", "__wrapped__", "__kwdefaults__", "__defaults__",
]
FRAME_ATTRS = ["f_globals", "f_locals", "f_back", "f_builtins", "gi_frame", "gi_code",
               "cr_frame", "ag_frame", "tb_frame", "tb_next"]


def helper(x):
    return x


class Svc(Service):
    public_but_hidden = 1

    def exposed_echo(self, x):
        return x

    @exposed
    def double(self, x):
        return 2 * x

    @exposed
    @staticmethod
    def static_marked():
        return "static"

    @staticmethod
    @exposed
    def static_inner():
        return "inner"

    @exposed
    @classmethod
    def class_marked(cls):
        return cls.__name__

    @property
    @exposed
    def prop_inner(self):
        return 1

    @exposed
    @property
    def prop_outer(self):
        return 2

    exposed_function = staticmethod(helper)
    exposed_f_like = 3

    def secret(self):
        return "secret"

    def _private(self):
        return "private"


@exposed
class Marked:
    def __init__(self):
        self.value = 1
        self._hidden = 2

    def method(self):
        return self.value


class MarkedChild(Marked):
    pass


class Plain:
    def __init__(self):
        self.value = 1

    def method(self):
        return 1


class Dynamic:
    """Answers any attribute; the policy must not run it."""

    calls = 0

    def __getattr__(self, name):
        Dynamic.calls += 1
        return lambda: name


class Holder:
    """A plain object holding an instance of an exposed class as an attribute."""

    def __init__(self):
        self.marked = Marked()


# --------------------------------------------------------------------------- exposed


def test_exposed_prefix_maps_to_real_name():
    assert resolve_attr(Svc(), "echo", DEFAULT) == "exposed_echo"
    assert resolve_attr(Svc, "echo", DEFAULT) == "exposed_echo"
    assert resolve_attr(Svc(), "function", DEFAULT) == "exposed_function"


def test_full_exposed_name_is_the_same_member():
    assert resolve_attr(Svc(), "exposed_echo", DEFAULT) == "exposed_echo"


def test_exposed_decorator_on_methods_and_wrappers():
    svc = Svc()
    for name in ["double", "static_marked", "static_inner", "class_marked", "prop_inner",
                 "prop_outer"]:
        assert resolve_attr(svc, name, DEFAULT) == name, name


def test_exposed_decorator_sets_marker_and_returns_object():
    def f():
        pass

    assert exposed(f) is f
    assert f._pynto_exposed is True
    prop = property(lambda self: 1)
    assert exposed(prop) is prop
    assert prop.fget._pynto_exposed is True


def test_not_exposed_members_are_denied_with_a_clear_message():
    svc = Svc()
    for name in ["secret", "public_but_hidden", "on_connect", "on_disconnect", "nonexistent"]:
        with pytest.raises(AccessDenied) as info:
            resolve_attr(svc, name, DEFAULT)
        message = str(info.value)
        assert name in message
        assert "Svc" in message


def test_access_denied_is_an_attribute_error():
    with pytest.raises(AttributeError):
        resolve_attr(Svc(), "secret", DEFAULT)


def test_exposed_class_exposes_public_members_of_instances_and_subclasses():
    for obj in (Marked(), MarkedChild(), Marked):
        assert resolve_attr(obj, "method", DEFAULT) == "method"
    assert resolve_attr(Marked(), "value", DEFAULT) == "value"
    with pytest.raises(AccessDenied):
        resolve_attr(Marked(), "_hidden", DEFAULT)


def test_exposed_class_does_not_expose_attributes_holding_its_instances():
    # Holder.marked is an instance of an exposed class, but Holder does not expose it.
    with pytest.raises(AccessDenied):
        resolve_attr(Holder(), "marked", DEFAULT)


def test_plain_objects_need_allow_public_attrs():
    with pytest.raises(AccessDenied):
        resolve_attr(Plain(), "method", DEFAULT)
    with pytest.raises(AccessDenied):
        resolve_attr(Plain(), "value", DEFAULT)
    assert resolve_attr(Plain(), "method", PUBLIC) == "method"
    assert resolve_attr(Plain(), "value", PUBLIC) == "value"


def test_policy_does_not_run_code_of_the_object():
    Dynamic.calls = 0
    with pytest.raises(AccessDenied):
        resolve_attr(Dynamic(), "anything", DEFAULT)
    assert exposed_names(Dynamic(), DEFAULT) == []
    assert Dynamic.calls == 0


# --------------------------------------------------------------------------- builtins


@pytest.mark.parametrize(
    ("obj", "name"),
    [
        ([], "append"), ([], "sort"), ({}, "items"), ({}, "get"), (set(), "add"),
        (frozenset(), "union"), ((), "count"), ("", "upper"), (b"", "hex"),
        (bytearray(), "extend"), (1, "bit_length"), (1.5, "is_integer"), (1j, "conjugate"),
        (range(3), "index"), (True, "bit_length"), ({}.keys(), "isdisjoint"), (1, "real"),
    ],
)
def test_public_methods_of_builtin_containers_and_scalars(obj, name):
    assert resolve_attr(obj, name, DEFAULT) == name


def test_builtin_subclass_instances_get_the_builtin_methods_only():
    class MyList(list):
        def extra(self):
            return 1

    assert resolve_attr(MyList(), "append", DEFAULT) == "append"
    with pytest.raises(AccessDenied):
        resolve_attr(MyList(), "extra", DEFAULT)


def test_str_format_is_refused_on_exported_strings():
    # "{0.__globals__}".format(f) walks attributes of f on the owner's side.
    class MyStr(str):
        pass

    for name in ("format", "format_map"):
        with pytest.raises(AccessDenied):
            resolve_attr(MyStr("{0.__globals__}"), name, DEFAULT)


def test_builtin_members_are_not_writable():
    with pytest.raises(AccessDenied):
        check_setattr([], "append", WRITABLE)


# --------------------------------------------------------------------------- internals


@pytest.mark.parametrize("policy", [DEFAULT, PUBLIC, Policy(allow_public_attrs=True,
                                                           allow_setattr=True,
                                                           allow_delattr=True,
                                                           allow_pickle=True)])
@pytest.mark.parametrize("name", INTERNALS)
def test_internals_are_never_reachable_without_classic(policy, name):
    for obj in (helper, Svc(), Svc, Marked(), Plain(), [], types, ValueError("x")):
        with pytest.raises(AccessDenied):
            resolve_attr(obj, name, policy)
        with pytest.raises(AccessDenied):
            check_setattr(obj, name, policy)
        with pytest.raises(AccessDenied):
            check_delattr(obj, name, policy)


def _frame_objects():
    def gen():
        yield 1

    async def coro():
        return 1

    async def agen():
        yield 1

    try:
        raise ValueError
    except ValueError as exc:
        tb = exc.__traceback__
    import sys

    c = coro()
    objects = [sys._getframe(), gen(), c, agen(), tb]
    return objects, c


@pytest.mark.parametrize("policy", [DEFAULT, PUBLIC])
@pytest.mark.parametrize("name", FRAME_ATTRS)
def test_frame_attributes_are_never_reachable_without_classic(policy, name):
    objects, coroutine = _frame_objects()
    try:
        for obj in objects:
            with pytest.raises(AccessDenied):
                resolve_attr(obj, name, policy)
    finally:
        coroutine.close()


def test_frame_prefixed_names_a_service_exposes_itself_are_fine():
    assert resolve_attr(Svc(), "f_like", DEFAULT) == "exposed_f_like"


@pytest.mark.parametrize("name", ["__doc__", "__name__", "__qualname__", "__module__"])
def test_safe_dunders_are_readable(name):
    assert resolve_attr(helper, name, DEFAULT) == name
    assert resolve_attr(Plain(), name, DEFAULT) == name


def test_classic_allows_everything():
    for name in INTERNALS + ["secret", "f_globals"]:
        assert resolve_attr(Svc(), name, CLASSIC) == name
        assert check_setattr(Svc(), name, CLASSIC) == name
        assert check_delattr(Svc(), name, CLASSIC) == name


# --------------------------------------------------------------------------- set / del


def test_setattr_and_delattr_are_off_by_default():
    for obj in (Marked(), Plain(), Svc()):
        with pytest.raises(AccessDenied, match="value|echo"):
            check_setattr(obj, "value" if not isinstance(obj, Svc) else "echo", DEFAULT)
        with pytest.raises(AccessDenied):
            check_delattr(obj, "value", DEFAULT)


def test_setattr_when_allowed_follows_the_read_rules():
    assert check_setattr(Marked(), "value", WRITABLE) == "value"
    assert check_delattr(Marked(), "value", WRITABLE) == "value"
    assert check_setattr(Svc(), "echo", WRITABLE) == "exposed_echo"
    with pytest.raises(AccessDenied):
        check_setattr(Plain(), "value", WRITABLE)
    both = Policy(allow_public_attrs=True, allow_setattr=True)
    assert check_setattr(Plain(), "value", both) == "value"
    assert check_setattr(Plain(), "new_name", both) == "new_name"
    with pytest.raises(AccessDenied):
        check_delattr(Plain(), "value", both)


def test_safe_dunders_are_not_writable():
    for name in ("__doc__", "__name__"):
        with pytest.raises(AccessDenied):
            check_setattr(helper, name, Policy(allow_public_attrs=True, allow_setattr=True))


# --------------------------------------------------------------------------- names


def test_exposed_names_of_a_service():
    names = exposed_names(Svc(), DEFAULT)
    assert {"echo", "double", "static_marked", "class_marked", "prop_inner", "prop_outer",
            "function", "f_like"} <= set(names)
    for hidden in ("secret", "_private", "on_connect", "public_but_hidden", "exposed_echo",
                   "__class__"):
        assert hidden not in names
    assert names == sorted(names)


def test_exposed_names_of_other_objects():
    assert exposed_names(Plain(), DEFAULT) == []
    assert exposed_names(Plain(), PUBLIC) == ["method", "value"]
    assert exposed_names(Marked(), DEFAULT) == ["method", "value"]
    assert "append" in exposed_names([], DEFAULT)
    assert not [n for n in exposed_names([], DEFAULT) if n.startswith("_")]
    assert "__class__" in exposed_names([], CLASSIC)


# --------------------------------------------------------------------------- policy / services


def test_policy_defaults_and_frozen():
    policy = Policy()
    assert dataclasses.astuple(policy) == (False, False, False, False, False, False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.allow_setattr = True  # type: ignore[misc]


def test_service_hooks_are_noops():
    svc = Service()
    assert svc.on_connect(object()) is None
    assert svc.on_disconnect(object()) is None
    assert Service._pynto_classic is False
    assert ClassicService._pynto_classic is True


def test_classic_service_members():
    import builtins
    import os.path

    svc = ClassicService()
    assert svc.exposed_getmodule("os.path") is os.path
    assert svc.exposed_builtins is builtins
    assert svc.exposed_execute("x = 6 * 7") is None
    assert svc.exposed_eval("x") == 42
    assert svc.exposed_namespace is svc.namespace
    assert svc.namespace["x"] == 42
    assert ClassicService().exposed_namespace is not svc.namespace


def test_classic_service_teleport():
    def heavy(n):
        import math

        return math.factorial(n)

    name, source = teleport_source(heavy)
    assert name == "heavy"
    assert source.startswith("def heavy")
    remote = ClassicService().exposed_teleport(name, source)
    assert remote is not heavy
    assert remote(5) == 120
    assert remote.__globals__ is not heavy.__globals__


def test_teleport_source_refuses_closures_and_lambdas():
    factor = 3

    def closure(x):
        return x * factor

    with pytest.raises(TypeError, match="closure over factor"):
        teleport_source(closure)
    with pytest.raises(TypeError, match="lambda"):
        teleport_source(lambda: 1)
    with pytest.raises(TypeError):
        teleport_source(len)
