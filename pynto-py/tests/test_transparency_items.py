"""One test per transparency fix (issue 12) and for remote BaseExceptions (issue 10, item 9),
each against a real classic server process."""

from __future__ import annotations

import asyncio
import copy
import datetime
import decimal
import fractions
import json
import pathlib
import pickle
import types
import uuid

import pytest

import pynto


@pytest.fixture
def objs(classic):
    return classic.modules.transparency_objects


@pytest.mark.parametrize("kind", ["SystemExit", "KeyboardInterrupt", "GeneratorExit"])
def test_remote_base_exception_never_arrives_as_itself(classic, objs, kind):
    """A peer raising SystemExit / KeyboardInterrupt / GeneratorExit cannot end or interrupt
    this process: it arrives as pynto.RemoteError naming it, and `except Exception:` catches it."""
    caught = None
    try:
        objs.exit_raising(kind)
    except Exception as e:  # the point: not a BaseException escaping this clause
        caught = e
    assert isinstance(caught, pynto.RemoteError)
    assert caught.remote_type == f"builtins.{kind}"
    assert kind in str(caught)
    # The server serves on.
    assert classic.modules.math.pow(2, 3) == 8


@pytest.mark.parametrize(
    "value",
    [
        datetime.datetime(2024, 1, 2, 3, 4, 5, 6),
        datetime.datetime(2024, 1, 2, tzinfo=datetime.timezone(datetime.timedelta(hours=2), "X")),
        datetime.date(2024, 1, 2),
        datetime.time(1, 2, 3),
        datetime.timedelta(days=1, microseconds=5),
        decimal.Decimal("-0.00"),
        decimal.Decimal("NaN"),
        fractions.Fraction(-3, 7),
        pathlib.PurePosixPath("/a/b"),
        range(1, 10, 3),
        uuid.UUID(int=2**100),
        KeyError((1, 2)),
    ],
    ids=lambda v: type(v).__name__,
)
def test_standard_values_cross_by_value_both_ways(classic, value):
    echo = classic.eval("lambda x: (x, type(x).__module__ + '.' + type(x).__qualname__)")
    back, remote_type = echo(value)
    assert not pynto.is_proxy(back)
    assert type(back) is type(value)
    assert remote_type == f"{type(value).__module__}.{type(value).__qualname__}"
    if isinstance(value, BaseException):
        assert back.args == value.args
    elif isinstance(value, decimal.Decimal) and value.is_nan():
        assert back.is_nan()
    else:
        assert back == value and str(back) == str(value)


def test_a_datetime_with_a_user_tzinfo_stays_a_reference(classic):
    classic.execute(
        "import datetime\n"
        "class TZ(datetime.tzinfo):\n"
        "    def utcoffset(self, dt): return datetime.timedelta(0)\n"
        "aware = datetime.datetime(2024, 1, 1, tzinfo=TZ())\n"
    )
    assert pynto.is_proxy(classic.namespace["aware"])


def test_value_like_operands_and_lookups(classic):
    d = classic.eval("{__import__('datetime').date(2024, 1, 2): 'x'}")
    assert d[datetime.date(2024, 1, 2)] == "x"
    td = classic.eval("__import__('datetime').timedelta(1)")
    assert td + datetime.timedelta(2) == datetime.timedelta(3)
    dq = classic.modules.collections.deque([1, 2])
    assert dq == __import__("collections").deque([1, 2])
    intenum = classic.modules.transparency_objects.make("intenum")
    assert intenum + 1 == 4 and 2.5 + intenum == 5.5
    assert classic.modules.transparency_objects.make("namedtuple") == (1, 2)


def test_reflected_operators_with_sequences(classic):
    remote_list = classic.builtins.list([1, 2])
    assert [0] + remote_list == [0, 1, 2]
    remote_bytes = classic.builtins.bytearray(b"yz")
    assert b"x" + remote_bytes == b"xyz"
    with pytest.raises(TypeError):
        1 + remote_list


def test_copy_deepcopy_and_pickle(classic):
    remote = classic.eval("[[1], [2]]")
    shallow = copy.copy(remote)
    deep = copy.deepcopy(remote)
    assert pynto.is_proxy(shallow) and shallow is not remote and shallow == remote
    remote[0].append(9)
    assert shallow[0] == [1, 9] and deep[0] == [1]
    assert pickle.loads(pickle.dumps(remote)) == [[1, 9], [2]]


def test_exception_args_and_filename_are_kept(classic):
    with pytest.raises(KeyError) as info:
        classic.builtins.dict()[(1, 2)]
    assert info.value.args == ((1, 2),)
    with pytest.raises(FileNotFoundError) as info:
        classic.builtins.open("/no/such/pynto/file")
    assert info.value.filename == "/no/such/pynto/file"
    assert info.value.errno == 2


def test_json_decode_error_is_rebuilt_on_a_classic_connection(classic):
    with pytest.raises(json.JSONDecodeError):
        classic.modules.json.loads("{bad")


def test_remote_traceback_always_has_its_header(classic):
    with pytest.raises(KeyError) as info:
        classic.builtins.dict()["missing"]
    assert info.value.remote_traceback.startswith("Traceback (most recent call last):")


def test_a_local_exception_comes_home_as_itself(classic, objs):
    mine = ValueError("mine")

    def callback():
        raise mine

    with pytest.raises(ValueError) as info:
        objs.call_with(callback)
    assert info.value is mine

    class Local(Exception):
        pass

    own = Local("own class")

    def callback2():
        raise own

    with pytest.raises(Local) as info:
        classic.builtins.sorted([2, 1], key=lambda v: callback2())
    assert info.value is own


def test_raise_a_remote_exception_instance(classic):
    exc = classic.eval("ValueError('made there', 3)")
    with pytest.raises(ValueError) as info:
        raise exc
    assert info.value.args == ("made there", 3)


def test_iteration_sees_mutations(classic):
    remote = classic.builtins.list([1, 2, 3])
    it = iter(remote)
    assert next(it) == 1
    remote.append(9)
    assert list(it) == [2, 3, 9]
    d = classic.builtins.dict(a=1, b=2)
    with pytest.raises(RuntimeError):
        for key in d:
            d["new" + key] = 0


def test_dunders_by_name(classic):
    remote = classic.builtins.list([1])
    remote.__init__([4, 5, 6])
    assert remote == [4, 5, 6]


def test_isinstance_with_remote_classes_and_modules(classic, objs):
    import transparency_objects as local_objs

    assert isinstance(local_objs.Point(1, 2), objs.Point)
    assert not isinstance(3, objs.Point)
    assert isinstance(classic.modules.math, types.ModuleType)


def test_exception_inside_with_reaches_the_remote_exit(classic, objs):
    cm = objs.make("generator_cm")
    with cm as log:
        raise KeyError("inside")  # suppressed by the remote generator
    assert list(log) == ["enter", ("caught", "KeyError"), "exit"]
    managed = objs.make("context_manager")
    with pytest.raises(ValueError):
        with managed:
            raise ValueError("x")
    assert managed.log[-1] == ("exit", "ValueError", "ValueError")


def test_subclassing_a_remote_class_says_why_it_cannot(classic):
    with pytest.raises(TypeError, match="living in another process"):

        class Sub(classic.builtins.list):  # noqa: F811
            pass


def test_remote_coroutine_functions_return_coroutines(classic, objs):
    import inspect

    fn = objs.coroutine_function
    assert inspect.iscoroutinefunction(fn)
    assert not inspect.iscoroutinefunction(objs.plain_function)
    coroutine = fn(1, 2)
    assert asyncio.iscoroutine(coroutine)
    assert asyncio.run(coroutine) == 3

    async def main():
        single = await fn(3, 4)
        both = await asyncio.gather(fn(1, 1), fn(2, 2))
        return single, both

    assert asyncio.run(main()) == (7, [2, 4])
    with pytest.raises(KeyError) as info:
        asyncio.run(objs.failing_coroutine("k"))
    assert info.value.args == ("k",)


def test_an_exposed_alias_works_through_two_hops():
    """this process -> a relay server (in-process) -> a server process: the relay passes on a
    proxy of the server process's service, and `add_word` (exposed as `exposed_add_word =
    add_word`) is reachable through it."""
    from helpers import ServerProcess, in_process_server

    with ServerProcess("--service", "transparency_objects:Words", "--port", "0") as far:
        upstream = pynto.connect(far.address)

        class Relay(pynto.Service):
            def exposed_words(self):
                return upstream.root

        try:
            with in_process_server(Relay) as relay, pynto.connect(relay.address) as conn:
                words = conn.root.words()
                assert words.add_word("hello") == 1
                assert words.add_word("again") == 2
        finally:
            upstream.close()


def test_teleport_defines_the_name_in_the_namespace(classic):
    def triple(x):
        return 3 * x

    remote = classic.teleport(triple)
    assert remote(2) == 6
    assert classic.eval("triple(3)") == 9


def test_an_operand_holding_remote_items_compares_by_value(classic):
    item = classic.eval("bytearray(b'x')")
    remote = classic.builtins.list()
    remote.append(item)
    assert remote == [item]
    assert [item] == remote
    assert classic.eval("{'k': bytearray(b'x')}") == {"k": bytearray(b"x")}


def test_sizeof_and_reduce_by_name(classic):
    import sys

    remote = classic.modules.collections.deque([1, 2, 3])
    assert sys.getsizeof(remote) == sys.getsizeof(__import__("collections").deque([1, 2, 3]))
    od = classic.modules.collections.OrderedDict(a=1)
    assert od.__reduce__()[2] is None


def test_remote_class_or_by_name(classic):
    counter = classic.modules.collections.Counter
    p, q = counter("ab"), counter("bc")
    assert counter.__or__(p, q) == {"a": 1, "b": 1, "c": 1}
