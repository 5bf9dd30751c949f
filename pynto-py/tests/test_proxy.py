"""Proxies: what crosses by value, and a proxy behaving as the object it stands for."""

from __future__ import annotations

import collections.abc
import math
import operator
import sys

import pytest

import pynto
import services
from helpers import in_process_server

BIG = 10**5000 + 7  # more digits than int("...") accepts by default (4300)

BY_VALUE = [
    None, True, False, 0, 1, -1, 2**63 - 1, 2**63, -(2**64) - 5, BIG, -BIG,
    1.5, -0.0, float("inf"), float("-inf"), 1e-308, 2 + 3j, complex(0, -0.0),
    "", "héllo wörld \x00 ✓", "x" * 100_000, b"", b"\x00\xff" * 10, b"z" * 200_000,
    Ellipsis, NotImplemented, slice(1, None, -1), slice(None), slice("a", (1, 2), None),
    (), (1,), (1, "a", (2.5, None, (b"x",))), frozenset(), frozenset({1, "a", (2, 3)}),
    (frozenset({(1, 2)}), slice(0, 1)),
]


def same_value(a, b) -> bool:
    """Equal, with the same exact types all the way down (and -0.0 kept)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, tuple):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, complex):
        return same_value(a.real, b.real) and same_value(a.imag, b.imag)
    return a == b


@pytest.mark.parametrize("value", BY_VALUE, ids=lambda v: type(v).__name__)
def test_by_value_round_trip(root, value):
    result = root.echo(value)
    assert not pynto.is_proxy(result)
    assert same_value(result, value), (result, value)


@pytest.mark.parametrize("value", BY_VALUE, ids=lambda v: type(v).__name__)
def test_by_value_arrives_by_value_on_the_other_side(root, value):
    assert root.is_proxy(value) is False


def test_big_ints_computed_remotely(root):
    assert root.add(BIG, 1) == BIG + 1
    assert root.double(-BIG) == -2 * BIG
    assert root.add(2**64, 2**64) == 2**65


def test_tuple_with_a_mutable_item_crosses_by_reference(root):
    remote = root.make("tuple_with_list")
    assert pynto.is_proxy(remote)
    assert isinstance(remote, tuple)
    assert remote[0] == 1
    assert remote[1] == [2]
    local = (1, [2])
    assert root.is_proxy(local) is True
    assert root.echo(local) is local


@pytest.mark.parametrize("kind", ["mystr", "myint", "enum", "namedtuple"])
def test_subclasses_of_by_value_types_cross_by_reference(root, kind):
    remote = root.make(kind)
    assert pynto.is_proxy(remote)
    assert isinstance(remote, pynto.Proxy)


def test_remote_str_subclass_behaves_as_a_str(root):
    remote = root.make("mystr")
    assert remote == "hello"
    assert remote.upper() == "HELLO"
    assert len(remote) == 5
    assert str(remote) == "hello"
    assert remote + "!" == "hello!"
    assert "ell" in remote
    assert isinstance(remote, str)


def test_remote_int_subclass_and_enum_behave_as_ints(root):
    five = root.make("myint")
    assert five == 5
    assert five + 1 == 6
    assert int(five) == 5
    assert float(five) == 5.0
    assert operator.index(five) == 5
    assert [0, 1, 2, 3, 4, 5][five] == 5
    green = root.make("enum")
    assert green == 2
    assert int(green) == 2
    assert isinstance(green, int)


def test_remote_namedtuple_behaves_as_a_tuple(root):
    point = root.make("namedtuple")
    assert point[0] == 1
    assert tuple(point) == (1, 2)
    assert len(point) == 2
    x, y = point
    assert (x, y) == (1, 2)


def test_local_subclasses_go_by_reference_and_come_home(root):
    for local in (services.MyStr("a"), services.MyInt(3), services.Color.RED,
                  services.Point(1, 2)):
        assert root.is_proxy(local) is True
        assert root.echo(local) is local


# --------------------------------------------------------------------------- is_proxy


def test_is_proxy_and_proxy_class(root):
    remote = root.make("list")
    assert pynto.is_proxy(remote)
    assert isinstance(remote, pynto.Proxy)
    assert not pynto.is_proxy([1, 2, 3])
    assert not isinstance([1, 2, 3], pynto.Proxy)
    assert not pynto.is_proxy(root.echo(5))


# --------------------------------------------------------------------------- containers


def test_container_operand_crosses_by_value(root):
    remote_list = root.make("list")
    assert remote_list == [1, 2, 3]
    assert [1, 2, 3] == remote_list
    assert remote_list != [1, 2]
    assert remote_list < [1, 2, 4]
    assert remote_list + [4] == [1, 2, 3, 4]
    remote_set = root.make("set")
    assert remote_set == {1, 2}
    assert remote_set | {3} == {1, 2, 3}
    assert remote_set - {1} == {2}
    assert remote_set <= {1, 2, 3}
    remote_dict = root.make("dict")
    assert remote_dict == {"a": 1, "b": 2}
    remote_dict[("t", 1)] = "tuple key"
    assert remote_dict[("t", 1)] == "tuple key"
    remote_bytes = root.make("bytearray")
    assert remote_bytes == bytearray(b"ab")
    assert remote_bytes + bytearray(b"c") == b"abc"


def test_container_with_a_by_reference_item_is_not_copied(root):
    marker = object()
    remote_list = root.make("list")
    assert (remote_list == [marker]) is False
    remote_list.append(marker)
    assert remote_list[-1] is marker


def test_remote_list_behaves_as_a_list(root):
    remote = root.make("list")
    assert len(remote) == 3
    assert list(remote) == [1, 2, 3]
    assert [x * 2 for x in remote] == [2, 4, 6]
    assert remote[0] == 1
    assert remote[-1] == 3
    assert remote[1:] == [2, 3]
    assert remote[::-1] == [3, 2, 1]
    assert 2 in remote
    assert 5 not in remote
    assert list(reversed(remote)) == [3, 2, 1]
    assert sorted(remote, reverse=True) == [3, 2, 1]
    remote[0] = 10
    del remote[1]
    assert remote == [10, 3]
    remote[0:1] = [7, 8]
    assert remote == [7, 8, 3]
    before = remote
    remote += [4]
    assert remote is before
    remote *= 2
    assert remote is before
    assert remote == [7, 8, 3, 4, 7, 8, 3, 4]
    assert remote.index(3) == 2
    assert remote.count(7) == 2
    assert bool(remote)
    remote.clear()
    assert not remote
    assert len(remote) == 0


def test_remote_dict_behaves_as_a_dict(root):
    remote = root.make("dict")
    assert remote["a"] == 1
    assert "a" in remote
    assert sorted(remote) == ["a", "b"]
    assert sorted(remote.keys()) == ["a", "b"]
    assert dict(remote) == {"a": 1, "b": 2}
    with pytest.raises(KeyError):
        remote["missing"]
    remote["c"] = 3
    del remote["a"]
    assert remote == {"b": 2, "c": 3}


def test_unhashable_stays_unhashable(root):
    with pytest.raises(TypeError):
        hash(root.make("list"))


def test_generator_proxy(root):
    gen = root.make("generator")
    assert isinstance(gen, collections.abc.Iterator)
    assert isinstance(gen, collections.abc.Generator)
    assert next(gen) == 0
    assert list(gen) == [1, 2]
    with pytest.raises(StopIteration):
        next(gen)


def test_isinstance_with_builtins_and_abcs(root):
    remote_list = root.make("list")
    remote_dict = root.make("dict")
    remote_set = root.make("set")
    assert isinstance(remote_list, list)
    assert not isinstance(remote_list, dict)
    assert isinstance(remote_list, collections.abc.MutableSequence)
    assert isinstance(remote_list, collections.abc.Sequence)
    assert isinstance(remote_list, collections.abc.Iterable)
    assert isinstance(remote_list, collections.abc.Sized)
    assert not isinstance(remote_list, collections.abc.Mapping)
    assert isinstance(remote_dict, dict)
    assert isinstance(remote_dict, collections.abc.MutableMapping)
    assert isinstance(remote_set, set)
    assert isinstance(remote_set, collections.abc.MutableSet)
    assert isinstance(root.make("bytearray"), bytearray)
    assert isinstance(root.function, collections.abc.Callable)
    assert callable(root.function)
    assert not callable(remote_list)
    assert not isinstance(root.plain(), collections.abc.Iterable)


# --------------------------------------------------------------------------- operators


def test_binary_operators_and_reflected(root):
    rec = root.recorder()
    for name in services.BINARY_OPERATORS:
        fn = divmod if name == "divmod" else getattr(operator, name if name not in (
            "and", "or") else name + "_")
        assert fn(rec, 5) == (name, 5), name
        assert fn(5, rec) == ("r" + name, 5), name
        assert fn(rec, "s") == (name, "s"), name


def test_in_place_operators(root):
    for name in services.BINARY_OPERATORS:
        if name == "divmod":
            continue
        rec = root.recorder()
        fn = getattr(operator, "i" + name)
        assert fn(rec, 5) == ("i" + name, 5), name
    rec = root.recorder()
    rec += 1
    assert rec == ("iadd", 1)


def test_unary_operators(root):
    rec = root.recorder()
    assert -rec == ("neg",)
    assert +rec == ("pos",)
    assert abs(rec) == ("abs",)
    assert ~rec == ("invert",)


def test_comparisons(root):
    rec = root.recorder()
    assert (rec < 1) == ("lt", 1)
    assert (rec <= 1) == ("le", 1)
    assert (rec == 1) == ("eq", 1)
    assert (rec != 1) == ("ne", 1)
    assert (rec > 1) == ("gt", 1)
    assert (rec >= 1) == ("ge", 1)
    assert (1 < rec) == ("gt", 1)
    assert (1 >= rec) == ("le", 1)


def test_hash_bool_int_float_index(root):
    rec = root.recorder()
    assert hash(rec) == 424242
    assert bool(rec) is False
    assert not rec
    assert int(rec) == 7
    assert float(rec) == 2.5
    assert operator.index(rec) == 3
    assert ["a", "b", "c", "d"][rec] == "d"
    assert bin(rec) == "0b11"


def test_len_iter_contains_items(root):
    rec = root.recorder()
    assert len(rec) == 4
    assert list(rec) == ["a", "b", "c"]
    assert "inside" in rec
    assert "outside" not in rec
    assert rec[1] == ("getitem", 1)
    assert rec["k"] == ("getitem", "k")
    assert rec[1:3] == ("getitem", slice(1, 3, None))
    assert rec[1:2, ...] == ("getitem", (slice(1, 2, None), Ellipsis))
    rec["k"] = "v"
    del rec["k"]
    assert rec.log() == (("setitem", "k", "v"), ("delitem", "k"))


def test_calls_with_keyword_arguments(root):
    rec = root.recorder()
    assert rec(1, 2, b=4, a=3) == ("call", (1, 2), (("a", 3), ("b", 4)))
    assert rec() == ("call", (), ())
    assert root.signature(1, *[2, 3], x="y", **{"z": None}) == (
        (1, 2, 3), (("x", "y"), ("z", None)))
    assert root.add(a=1, b=2) == 3
    with pytest.raises(TypeError):
        root.add(1, 2, 3)


def test_repr_str_format(root):
    rec = root.recorder()
    assert repr(rec) == "<Recorder repr>"
    assert str(rec) == "Recorder str"
    assert format(rec, ">5") == "format:>5"
    assert f"{rec:x}" == "format:x"
    assert f"{rec}" == "format:"


def test_with_statement(root):
    rec = root.recorder()
    with rec as value:
        assert value == "entered"
    with rec:
        raise ValueError("suppressed by the remote __exit__")
    assert rec.log() == (("enter",), ("exit", False), ("enter",), ("exit", True))


def test_dir_and_doc(root):
    rec = root.recorder()
    assert "log" in dir(rec)
    assert "_log" not in dir(rec)
    assert rec.__doc__ == services.Recorder.__doc__
    assert root.function.__doc__ == services.module_function.__doc__
    assert root.function.__name__ == "module_function"


def test_proxy_without_dunders_uses_defaults(root):
    plain = root.plain()
    assert bool(plain) is True
    with pytest.raises(TypeError):
        len(plain)
    with pytest.raises(TypeError):
        iter(plain)
    assert plain == plain
    assert hash(plain) == hash(plain)


# --------------------------------------------------------------------------- identity


def test_same_remote_object_is_the_same_proxy(root):
    first = root.counter()
    second = root.counter()
    assert first is second
    assert root.new_counter() is not root.new_counter()


def test_local_objects_come_home_as_themselves(root):
    for local in (object(), [1, 2], {"a": 1}, {1}, bytearray(b"x"), lambda: 1, sys):
        assert root.echo(local) is local
        root.keep(local)
        assert root.kept() is local
    root.forget()


def test_the_peer_sees_one_proxy_per_local_object(root):
    local = object()
    assert root.is_same(local, local)
    root.store("k", local)
    assert root.is_stored("k", local)
    assert not root.is_stored("k", object())
    root.forget()


# --------------------------------------------------------------------------- obtain / deliver


def test_obtain_on_classic(classic):
    remote = classic.eval("[1, {'a': (2, 3)}, {4}]")
    local = pynto.obtain(remote)
    assert not pynto.is_proxy(local)
    assert type(local) is list
    assert local == [1, {"a": (2, 3)}, {4}]
    local.append(5)
    assert len(remote) == 3


def test_obtain_refused_without_allow_pickle(root):
    with pytest.raises(pynto.AccessDenied):
        pynto.obtain(root.make("list"))


def test_obtain_with_allow_pickle():
    with in_process_server(services.SampleService, allow_pickle=True) as server:
        with pynto.connect(server.address) as conn:
            remote = conn.root.make("deque")
            local = pynto.obtain(remote)
            assert not pynto.is_proxy(local)
            assert local == collections.deque([1, 2])


def test_deliver_to_classic(classic):
    local = {"k": [1, 2]}
    remote = pynto.deliver(classic, local)
    assert pynto.is_proxy(remote)
    assert sorted(remote) == ["k"]
    assert remote["k"] == [1, 2]
    remote["k"].append(3)
    assert remote["k"] == [1, 2, 3]
    assert local == {"k": [1, 2]}
    assert classic.builtins.type(remote).__name__ == "dict"


def test_comparison_with_nested_containers(classic):
    # Locally these are plain comparisons; through a proxy they must give the same answers
    # (and never bounce the comparison back and forth between the two sides).
    remote = classic.eval("{'k': [1, 2]}")
    assert remote == {"k": [1, 2]}
    assert remote != {"k": [3]}
    assert classic.eval("[[1], [2]]") == [[1], [2]]
    assert classic.eval("[[1], [2]]") != [[1], [3]]
