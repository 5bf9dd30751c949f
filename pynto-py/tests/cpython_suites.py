"""CPython's own container test suites, run with the object under test living in a server
process: the suites' classes are given remote types (``conn.builtins.list``,
``conn.modules.collections.deque``, ...), so every object they make is a proxy.

``run(name, conn)`` runs one suite and returns the ids of the tests that failed, with their
first error line; ``python cpython_suites.py ADDRESS`` prints every suite's count.
"""

from __future__ import annotations

import contextlib
import io
import signal
import unittest
import warnings
from typing import Any, Callable


def _classes(conn: Any) -> dict[str, Callable[[], list[type]]]:
    import test.list_tests as list_tests
    import test.mapping_tests as mapping_tests
    import test.test_bytes as test_bytes
    import test.test_collections as test_collections
    import test.test_deque as test_deque
    import test.test_ordered_dict as test_ordered_dict
    import test.test_set as test_set
    import test.test_userdict as test_userdict
    import test.test_userlist as test_userlist

    rb = conn.builtins
    rc = conn.modules.collections

    def lists():
        class RemoteList(list_tests.CommonTest):
            type2test = rb.list

        return [RemoteList]

    def mappings():
        class RemoteDictBasic(mapping_tests.BasicTestMappingProtocol):
            type2test = rb.dict

        class RemoteDict(mapping_tests.TestMappingProtocol):
            type2test = rb.dict

        class RemoteDictHash(mapping_tests.TestHashMappingProtocol):
            type2test = rb.dict

        return [RemoteDictBasic, RemoteDict, RemoteDictHash]

    def sets():
        class RemoteSet(test_set.TestSet):
            thetype = rb.set

        return [RemoteSet]

    def deques():
        test_deque.deque = rc.deque

        class RemoteDequeSequence(test_deque.TestSequence):
            type2test = rc.deque

        return [test_deque.TestBasic, test_deque.TestVariousIteratorArgs, RemoteDequeSequence]

    def bytearrays():
        class RemoteByteArray(test_bytes.ByteArrayTest):
            type2test = rb.bytearray

        return [RemoteByteArray]

    def userlists():
        class RemoteUserList(test_userlist.UserListTest):
            type2test = rc.UserList

        return [RemoteUserList]

    def userdicts():
        class RemoteUserDict(test_userdict.UserDictTest):
            type2test = rc.UserDict

        return [RemoteUserDict]

    def ordered_dicts():
        class RemoteOrderedDict(test_ordered_dict.CPythonOrderedDictTests):
            OrderedDict = rc.OrderedDict

        return [RemoteOrderedDict]

    def counters():
        test_collections.Counter = rc.Counter
        return [test_collections.TestCounter]

    return {
        "list_tests": lists,
        "mapping_tests": mappings,
        "test_set": sets,
        "test_deque": deques,
        "test_bytes(bytearray)": bytearrays,
        "test_userlist": userlists,
        "test_userdict": userdicts,
        "test_ordered_dict": ordered_dicts,
        "Counter": counters,
    }


SUITES = [
    "list_tests", "mapping_tests", "test_set", "test_deque", "test_bytes(bytearray)", "test_userlist",
    "test_userdict", "test_ordered_dict", "Counter",
]


def _short(test: unittest.TestCase) -> str:
    return f"{type(test).__name__}.{test._testMethodName}"


class _TimedResult(unittest.TestResult):
    """A result that also records how long each test took."""

    def __init__(self) -> None:
        super().__init__()
        self.durations: dict[str, float] = {}
        self._start = 0.0

    def startTest(self, test: unittest.TestCase) -> None:
        import time

        self._start = time.monotonic()
        signal.setitimer(signal.ITIMER_REAL, TEST_SECONDS)
        super().startTest(test)

    def stopTest(self, test: unittest.TestCase) -> None:
        import time

        signal.setitimer(signal.ITIMER_REAL, 0)
        self.durations[_short(test)] = time.monotonic() - self._start
        super().stopTest(test)


class TooSlow(Exception):
    """A test ran past TEST_SECONDS."""


# Each test gets this long at most (a guard against a hang: a test that runs past it fails).
TEST_SECONDS = 30.0


def _too_slow(signum: int, frame: Any) -> None:
    raise TooSlow(f"ran past {TEST_SECONDS} s")


def run(name: str, conn: Any, skip: tuple = ()) -> tuple[int, dict[str, str]]:
    """(tests run, {failed test: first line of its error}) for suite ``name``."""
    import test.test_collections as test_collections
    import test.test_deque as test_deque

    saved = (test_deque.deque, test_collections.Counter)
    try:
        classes = _classes(conn)[name]()
        loader = unittest.TestLoader()
        slow = set(skip)
        suite = unittest.TestSuite(
            t for c in classes for t in loader.loadTestsFromTestCase(c) if _short(t) not in slow
        )
        result = _TimedResult()
        previous = signal.signal(signal.SIGALRM, _too_slow)
        try:
            with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                suite.run(result)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    finally:
        test_deque.deque, test_collections.Counter = saved
    failed = {}
    for test, text in result.failures + result.errors:
        lines = [ln for ln in text.strip().splitlines() if ln and not ln.startswith((" ", "[pynto: exception"))]
        failed[_short(test)] = lines[-1][:200] if lines else "?"
    for test, _ in result.unexpectedSuccesses:
        failed[_short(test)] = "unexpected success"
    skipped = len(result.skipped)
    run.durations = result.durations  # type: ignore[attr-defined]
    return result.testsRun - skipped, failed


if __name__ == "__main__":
    import sys

    import pynto

    with pynto.connect(sys.argv[1]) as conn:
        total = passed = 0
        for suite_name in SUITES:
            n, failed = run(suite_name, conn)
            total += n
            passed += n - len(failed)
            print(f"| {suite_name} | {n - len(failed)} | {n} |")
            for k, v in sorted(failed.items()):
                print(f"    {suite_name}\t{k}\t{v}", file=sys.stderr)
            for k, d in sorted(run.durations.items(), key=lambda kv: -kv[1])[:15]:  # type: ignore[attr-defined]
                print(f"TIME\t{suite_name}\t{k}\t{d:.2f}", file=sys.stderr)
        print(f"| **all** | {passed} | {total} |")
