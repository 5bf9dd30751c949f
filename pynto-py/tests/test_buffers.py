"""Large buffers by value without copies, against a real classic server process: `obtain` and
`deliver` pickle with protocol 5 and send a numpy array's data beside the pickle, read in place
on the sending side and shared by the array rebuilt on the receiving side; the restricted
unpickler still refuses what it refused; an owner that does not know the new op still serves
`obtain` the old way."""

from __future__ import annotations

import array
import pickle
from typing import Any, Iterator

import numpy as np
import pytest

import buffer_services
import pynto
from bulk_services import peak_rss, reset_peak
from helpers import ServerProcess
from pynto._obtain import loads

MIB = 1 << 20
SIZE = 64 * MIB
#: A receiver's peak may pass the value's own size by this: the 32 MiB a bytearray is drained
#: in (`drain_into`), and the interpreter's noise.
SLACK = 48 * MIB


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess("--classic", "--port", "0") as server:
        yield server


@pytest.fixture
def conn(server: ServerProcess) -> Iterator[pynto.Connection]:
    with pynto.connect(server.address) as conn:
        yield conn
        conn.modules.buffer_services.drop()


def expected(n_bytes: int) -> np.ndarray:
    return np.arange(n_bytes // 8, dtype=np.float64)


def shares_a_received_buffer(arr: np.ndarray) -> bool:
    base: Any = arr
    while isinstance(base, np.ndarray):
        base = base.base
    return isinstance(base, pynto._pynto.ReceivedBuffer)


@pytest.mark.timeout(120)
def test_obtain_of_a_large_array_copies_nothing_on_the_owner_and_once_here(conn: pynto.Connection) -> None:
    remote = conn.modules.buffer_services
    arr = remote.make("a", SIZE // MIB)
    remote.reset_peak()
    owner_base = remote.peak_rss()
    reset_peak()
    base = peak_rss()
    got = pynto.obtain(arr, allow=[np.ndarray])
    growth = peak_rss() - base
    owner_growth = remote.peak_rss() - owner_base
    # The owner sent the array's own memory (a pickle of it would be another 64 MiB); this
    # side's array is the memory that arrived (unpickling from bytes would copy it again).
    assert owner_growth < SIZE // 4, f"the owner's peak grew {owner_growth / MIB:.0f} MiB"
    assert growth < SIZE + SLACK, f"this side's peak grew {growth / MIB:.0f} MiB"
    assert isinstance(got, np.ndarray) and got.dtype == np.float64
    assert shares_a_received_buffer(got)
    assert np.array_equal(got, expected(SIZE))
    assert got.flags.writeable
    got[0] = 5.0
    assert got[0] == 5.0
    assert remote.held["a"][0] == 0.0  # a copy, not a view of the remote array


@pytest.mark.timeout(120)
def test_deliver_of_a_large_array_copies_nothing_here_and_once_on_the_peer(conn: pynto.Connection) -> None:
    remote = conn.modules.buffer_services
    local = expected(SIZE)
    remote.reset_peak()
    peer_base = remote.peak_rss()
    reset_peak()
    base = peak_rss()
    copy = pynto.deliver(conn, local)
    growth = peak_rss() - base
    peer_growth = remote.peak_rss() - peer_base
    assert growth < SIZE // 4, f"this side's peak grew {growth / MIB:.0f} MiB"
    assert peer_growth < SIZE + SLACK, f"the peer's peak grew {peer_growth / MIB:.0f} MiB"
    assert pynto.is_proxy(copy)
    assert remote.describe(copy) == ("ndarray", (SIZE // 8,), True, buffer_services.digest(local))
    # The array sent from in place is free again: resizing needs no export on it.
    local.resize(10, refcheck=False)


@pytest.mark.parametrize("order", ["C", "F"])
def test_arrays_of_any_layout_come_back_equal(conn: pynto.Connection, order: str) -> None:
    np_remote = conn.modules.numpy
    source = np.arange(512 * 300, dtype=np.int32).reshape(512, 300)
    arr = np_remote.asarray(pynto.deliver(conn, source), order=order)
    strided = arr[:, ::3]  # neither C- nor Fortran-contiguous: pickled in band
    for remote, local in [(arr, source), (strided, source[:, ::3]), (arr.T, source.T)]:
        got = pynto.obtain(remote, allow=[np.ndarray])
        assert got.dtype == np.int32
        assert np.array_equal(got, local)
        assert got.flags.writeable
    assert pynto.obtain(arr, allow=[np.ndarray]).flags.f_contiguous == (order == "F")


def test_small_structured_and_object_arrays(conn: pynto.Connection) -> None:
    np_remote = conn.modules.numpy
    small = np_remote.arange(5)  # in band: below the out-of-band size
    assert pynto.obtain(small, allow=[np.ndarray]).tolist() == [0, 1, 2, 3, 4]
    records = np.zeros(100_000, dtype=[("x", "i4"), ("y", "f8")])
    records["x"] = np.arange(100_000)
    got = pynto.obtain(pynto.deliver(conn, records), allow=[np.ndarray])
    assert got.dtype == records.dtype and np.array_equal(got, records)
    objects = np.array([1, "two", (3,)], dtype=object)
    assert pynto.obtain(pynto.deliver(conn, objects), allow=[np.ndarray]).tolist() == [1, "two", (3,)]


def test_a_read_only_array_comes_back_read_only_as_pickle_does(conn: pynto.Connection) -> None:
    local = expected(MIB)
    local.flags.writeable = False
    remote = pynto.deliver(conn, local)
    assert not remote.flags.writeable
    got = pynto.obtain(remote, allow=[np.ndarray])
    assert np.array_equal(got, local)
    assert not got.flags.writeable


def test_buffers_of_other_exporters_cross_by_value(conn: pynto.Connection) -> None:
    remote = conn.modules.buffer_services
    data = bytes(range(256)) * 1024
    # A PickleBuffer crosses by value: a writable one as a bytearray, a read-only one as bytes,
    # a non-contiguous one copied in C order.
    assert remote.pickle_buffer("bytearray") == bytearray(data)
    assert remote.pickle_buffer("array") == bytearray(array.array("d", range(len(data) // 8)).tobytes())
    readonly = remote.pickle_buffer("readonly")
    assert type(readonly) is bytes and readonly == data
    strided = remote.pickle_buffer("strided")
    assert type(strided) is bytes and strided == data[::2]
    # obtain of a bytearray and an array.array (pickled in band by their own reducers).
    assert pynto.obtain(conn.builtins.bytearray(data)) == bytearray(data)
    doubles = conn.modules.array.array("d", [1.5] * 100_000)
    assert pynto.obtain(doubles, trusted=True) == array.array("d", [1.5] * 100_000)
    # A large bytearray operand is read in place and let go once the call returns.
    local = bytearray(data)
    remote_list = conn.builtins.list([bytes(data)])
    assert local in remote_list
    local.extend(b"more")  # would raise BufferError while still exported


def test_the_restricted_unpickler_refuses_an_array_unless_numpy_is_allowed(conn: pynto.Connection) -> None:
    arr = conn.modules.numpy.arange(100_000)
    with pytest.raises(pickle.UnpicklingError, match=r"allow=\(numpy\.ndarray,\)"):
        pynto.obtain(arr)
    with pytest.raises(pickle.UnpicklingError, match="numpy"):
        pynto.obtain(arr, allow=[np.float64])
    assert pynto.obtain(arr, trusted=True).tolist() == list(range(100_000))
    # numpy's _reconstruct only in the form numpy writes: (cls, (0,), dtype), then its state.
    from numpy._core.multiarray import _reconstruct

    class Huge:
        def __reduce__(self) -> Any:
            return _reconstruct, (np.ndarray, (1 << 40,), b"b")

    with pytest.raises(pickle.UnpicklingError, match="_reconstruct"):
        loads(pickle.dumps(Huge()), allow=[np.ndarray])


def test_an_owner_answering_unimplemented_is_asked_the_old_way(conn: pynto.Connection) -> None:
    remote = conn.modules.buffer_services
    allow = [buffer_services.Recorder]
    remote.protocols.clear()
    assert pynto.obtain(remote.Recorder(1), allow=allow).value == 1
    assert list(remote.protocols) == [5]
    # The owner fails PickleBuffers with Unimplemented (as one that does not know the op
    # does): obtain asks Pickle instead, and keeps doing so on this connection.
    assert pynto.obtain(remote.Recorder(2, True), allow=allow).value == 2
    assert pynto.obtain(remote.Recorder(3), allow=allow).value == 3
    assert list(remote.protocols)[1:] == [5, pickle.DEFAULT_PROTOCOL, pickle.DEFAULT_PROTOCOL]
    # Arrays then come in band, as before, and unpickle the same.
    arr = remote.make("b", 1)
    assert np.array_equal(pynto.obtain(arr, allow=[np.ndarray]), expected(MIB))
    remote.protocols.clear()
