"""`pynto.obtain`: copies are unpickled by a restricted unpickler unless the peer is trusted.

A malicious server (a real process serving `hostile_services.PickleService` with pickling
allowed) hands out objects whose pickles would run a command or touch a file on the client.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import os
import pickle
import uuid
from pathlib import Path
from typing import Iterator

import pytest

import pynto
from hostile_services import ScriptServer, UserValue
from pynto._obtain import RestrictedUnpickler, STANDARD_VALUE_TYPES, loads


@pytest.fixture(scope="module")
def pickle_server() -> Iterator[ScriptServer]:
    with ScriptServer("PickleService", "--allow-pickle") as server:
        yield server


@pytest.fixture
def root(pickle_server: ScriptServer) -> Iterator[object]:
    with pynto.connect(pickle_server.address) as conn:
        yield conn.root


def test_a_pickle_that_runs_a_command_is_refused(root, tmp_path: Path) -> None:
    marker = tmp_path / "command-ran"
    evil = root.runs_command(str(marker))
    with pytest.raises(pickle.UnpicklingError, match=r"refused to load posix\.system") as info:
        pynto.obtain(evil)
    assert "allow=(system,)" in str(info.value)
    assert "trusted=True" in str(info.value)
    assert not marker.exists()


def test_a_method_of_an_admitted_class_is_refused(root, tmp_path: Path) -> None:
    # pathlib.Path is a standard value type; its method Path.touch, named "Path.touch", is not.
    marker = tmp_path / "touched"
    with pytest.raises(pickle.UnpicklingError, match=r"pathlib\.Path\.touch"):
        pynto.obtain(root.touches_file(str(marker)))
    assert not marker.exists()


def test_trusted_unpickles_anything(root, tmp_path: Path) -> None:
    # What trusted=True means, shown on the attack itself: the peer's code runs here.
    marker = tmp_path / "command-ran"
    assert pynto.obtain(root.runs_command(str(marker)), trusted=True) == 0
    assert marker.exists()


def test_a_user_class_needs_trusted_or_allow(root) -> None:
    remote = root.user_value((1, "two"))
    with pytest.raises(pickle.UnpicklingError, match=r"hostile_services\.UserValue.*allow=\(UserValue,\)"):
        pynto.obtain(remote)
    assert pynto.obtain(remote, trusted=True) == UserValue((1, "two"))
    local = pynto.obtain(remote, allow=(UserValue,))
    assert type(local) is UserValue and local.x == (1, "two")


def test_allow_admits_only_the_named_classes(root, tmp_path: Path) -> None:
    marker = tmp_path / "command-ran"
    with pytest.raises(pickle.UnpicklingError, match="posix.system"):
        pynto.obtain(root.runs_command(str(marker)), allow=(UserValue,))
    assert not marker.exists()


def test_standard_values_need_no_trust(root) -> None:
    local = pynto.obtain(root.standard())
    assert local == {
        "when": datetime.datetime(2026, 12, 6, 3, 0, tzinfo=datetime.timezone.utc),
        "day": datetime.date(2026, 12, 6),
        "amount": decimal.Decimal("12.50"),
        "lists": {"a": [1, 2], "b": [3]},
        "ordered": collections.OrderedDict(x=1),
        "grouped": {"k": [1]},
        "id": uuid.UUID(int=7),
        "raw": bytearray(b"ab"),
    }
    assert type(local["grouped"]) is collections.defaultdict
    assert local["grouped"]["new"] == []


def test_local_objects_are_returned_as_they_are() -> None:
    value = UserValue(1)
    assert pynto.obtain(value) is value


def test_allow_takes_importable_classes(root) -> None:
    class Local:
        pass

    with pytest.raises(TypeError, match="importable by name"):
        pynto.obtain(root.user_value(1), allow=(Local,))
    with pytest.raises(TypeError, match="importable by name"):
        pynto.obtain(root.user_value(1), allow=("hostile_services.UserValue",))


# --------------------------------------------------------------------------- the unpickler alone


def _global(module: str, name: str, *args: bytes) -> bytes:
    """A protocol-4 pickle calling ``module.name(*args)`` (args are pickled already)."""
    body = b"".join(args)
    return (
        b"\x80\x04"
        + b"\x8c" + bytes([len(module)]) + module.encode()
        + b"\x8c" + bytes([len(name)]) + name.encode()
        + b"\x93(" + body + b"tR."
    )


def test_size_arguments_that_would_only_allocate_are_refused() -> None:
    one_gib = b"J\x00\x00\x00\x40"  # BININT 2**30
    for name in ("bytes", "bytearray"):
        with pytest.raises(pickle.UnpicklingError, match="a size, not data"):
            loads(_global("builtins", name, one_gib))
    # Fraction("1e999999999") would compute 10**999999999.
    with pytest.raises(pickle.UnpicklingError, match="Fraction"):
        loads(_global("fractions", "Fraction", b"\x8c\x0b1e999999999"))


def test_globals_outside_the_list_are_refused_before_import(tmp_path: Path) -> None:
    # Naming a module that is not loaded must not import it (importing runs its code).
    module = tmp_path / "pynto_obtain_probe_module.py"
    module.write_text("import pathlib\npathlib.Path(__file__).with_suffix('.imported').touch()\nx = 1\n")
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(pickle.UnpicklingError, match="pynto_obtain_probe_module.x"):
            loads(_global("pynto_obtain_probe_module", "x"))
        assert not (tmp_path / "pynto_obtain_probe_module.imported").exists()
    finally:
        sys.path.remove(str(tmp_path))


def test_every_protocol_of_the_standard_values_loads() -> None:
    values = [
        datetime.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=datetime.timezone.utc),
        datetime.timedelta(days=3), decimal.Decimal("-1.25e3"),
        collections.deque([1, 2], maxlen=5), collections.Counter("aab"),
        collections.defaultdict(int, {"a": 1}), uuid.UUID(int=1), Path("/tmp/x"),
        {"k": [1, (2, 3)], "s": {4}, "f": frozenset({5})}, b"\x00\xff", bytearray(b"\x01"),
        1 + 2j, slice(1, 2, 3), ..., NotImplemented, 10**40, "é",
    ]
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        for value in values:
            assert loads(pickle.dumps(value, protocol=protocol)) == value, (protocol, value)


def test_the_allow_list_holds_no_callable_that_reaches_code() -> None:
    # The names a pickle could use to run or reach arbitrary code are not admitted.
    for module, name in [
        ("builtins", "eval"), ("builtins", "exec"), ("builtins", "getattr"), ("builtins", "__import__"),
        ("builtins", "type"), ("builtins", "range"), ("os", "system"), ("posix", "system"),
        ("subprocess", "Popen"), ("copyreg", "__newobj__"), ("functools", "partial"),
        ("operator", "attrgetter"), ("builtins", "open"), ("io", "open"),
    ]:
        assert (module, name) not in STANDARD_VALUE_TYPES
        with pytest.raises(pickle.UnpicklingError):
            RestrictedUnpickler(__import__("io").BytesIO(b"")).find_class(module, name)


def test_marker_directory_is_untouched_by_refusals(root, tmp_path: Path) -> None:
    # Both attacks, refused one after the other on one connection; the client still works.
    for make in (root.runs_command, root.touches_file):
        with pytest.raises(pickle.UnpicklingError):
            pynto.obtain(make(str(tmp_path / "m")))
    assert os.listdir(tmp_path) == []
    assert pynto.obtain(root.user_value(3), allow=(UserValue,)) == UserValue(3)
