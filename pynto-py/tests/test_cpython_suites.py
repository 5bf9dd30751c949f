"""CPython's own container test suites (list_tests, mapping_tests, test_set, test_deque,
test_bytes' bytearray tests, test_userlist, test_userdict, test_ordered_dict, Counter's tests)
with the object under test living in a real server process (see ``cpython_suites.py``).

Every test must pass except those in ``EXPECTED_FAILURES``, each listed with its reason; a new
failure fails this test. The scores are in docs/transparency.md.
"""

from __future__ import annotations

import sys

import pytest

import cpython_suites
import pynto

# Tests left out: each loops over thousands of remote operations (a round trip each) and would
# take far too long for test-all through a proxy. Not counted as passed.
TOO_SLOW = {
    'Counter': ['TestCounter.test_multiset_operations', 'TestCounter.test_multiset_operations_equivalent_to_set_operations'],
    'mapping_tests': ['RemoteDict.test_popitem', 'RemoteDictHash.test_popitem', 'RemoteDictHash.test_repr_deep'],
    'test_bytes(bytearray)': ['RemoteByteArray.test_extended_getslice'],
    'test_deque': ['TestBasic.test_big_queue_popleft', 'TestBasic.test_big_queue_popright', 'TestBasic.test_big_stack_left', 'TestBasic.test_big_stack_right', 'TestBasic.test_getitem', 'TestBasic.test_index', 'TestBasic.test_long_steadystate_queue_popleft', 'TestBasic.test_long_steadystate_queue_popright', 'TestBasic.test_reverse', 'TestBasic.test_rotate'],
    'test_ordered_dict': ['RemoteOrderedDict.test_highly_nested'],
    'test_userdict': ['RemoteUserDict.test_popitem'],
}

# Expected failures, each with its reason. Entries starting "open:" are not fixed yet (and
# could be); the others no Python-level proxy can pass on this interpreter.
EXPECTED_FAILURES = {
    'Counter': {
        'TestCounter.test_basics': 'issubclass() with the remote class as its first argument: it must be a real class',
        'TestCounter.test_copy_subclass': 'subclasses the type under test: a local class cannot inherit from a class living in another process',
        'TestCounter.test_helper_function': 'open: [pynto: exception 6765941c74b1-9790 raised in process 21916]',
    },
    'list_tests': {
        'RemoteList.test_addmul': 'subclasses the type under test: a local class cannot inherit from a class living in another process',
        'RemoteList.test_free_after_iterating': 'subclasses the type under test: a local class cannot inherit from a class living in another process',
        'RemoteList.test_getitemoverwriteiter': 'subclasses the type under test: a local class cannot inherit from a class living in another process',
        'RemoteList.test_pickle': "open: TypeError: cannot pickle 'list' object",
    },
    'mapping_tests': {
        'RemoteDict.test_fromkeys': 'subclasses the type under test: a local class cannot inherit from a class living in another process',
        'RemoteDict.test_update': 'open: KeyError: 0',
        'RemoteDictBasic.test_update': 'open: KeyError: 0',
        'RemoteDictHash.test_fromkeys': 'subclasses the type under test: a local class cannot inherit from a class living in another process',
        'RemoteDictHash.test_update': 'open: KeyError: 0',
    },
    'test_bytes(bytearray)': {
        'RemoteByteArray.test_basics': 'checks type(obj) against the real type: type() of a proxy is its proxy class',
        'RemoteByteArray.test_center': 'open: [pynto: exception 6765941c74b1-9530 raised in process 21916]',
        'RemoteByteArray.test_free_after_iterating': 'subclasses the type under test: a local class cannot inherit from a class living in another process',
        'RemoteByteArray.test_imod': 'checks type(obj) against the real type: type() of a proxy is its proxy class',
        'RemoteByteArray.test_iterator_pickling': 'checks type(obj) against the real type: type() of a proxy is its proxy class',
        'RemoteByteArray.test_join': 'open: [pynto: exception 6765941c74b1-9642 raised in process 21916]',
        'RemoteByteArray.test_ljust': 'open: [pynto: exception 6765941c74b1-9643 raised in process 21916]',
        'RemoteByteArray.test_mod': 'checks type(obj) against the real type: type() of a proxy is its proxy class',
        'RemoteByteArray.test_ord': "ord() of a bytearray reads the real type's buffer",
        'RemoteByteArray.test_rjust': 'open: [pynto: exception 6765941c74b1-9659 raised in process 21916]',
        'RemoteByteArray.test_rmod': 'open: AssertionError: "bytearray(b\'abc\')" is not NotImplemented',
        'RemoteByteArray.test_split_unicodewhitespace': "open: AssertionError: [bytearray(b'a\\x1cb')] != [bytearray(b'a\\x1cb')]",
        'RemoteByteArray.test_sq_item': 'open: AssertionError: IndexError not raised',
        'RemoteByteArray.test_strip_bytearray': 'open: [pynto: exception 6765941c74b1-9665 raised in process 21916]',
        'RemoteByteArray.test_translate': 'open: [pynto: exception 6765941c74b1-9675 raised in process 21916]',
    },
    'test_deque': {
        'RemoteDequeSequence.test_addmul': 'subclasses the type under test: a local class cannot inherit from a class living in another process',
        'RemoteDequeSequence.test_getitemoverwriteiter': 'subclasses the type under test: a local class cannot inherit from a class living in another process',
        'TestBasic.test_container_iterator': 'gc of a reference cycle through the server: cycles across a connection are not collected (ARCHITECTURE)',
        'TestBasic.test_copy': 'open: AssertionError: False is not true',
        'TestBasic.test_iterator_pickle': 'checks type(obj) against the real type: type() of a proxy is its proxy class',
        'TestBasic.test_pickle_recursive': 'open: AssertionError: 139971270061376 != 139971270054176',
        'TestBasic.test_reversed_new': "open: while processing 'seed'",
        'TestBasic.test_sizeof': 'open: AssertionError: 96 != 216',
    },
    'test_ordered_dict': {
        'RemoteOrderedDict.test_abc': 'issubclass() with the remote class as its first argument: it must be a real class',
        'RemoteOrderedDict.test_delitem_hash_collision': 'open: (139971268217232, Ellipsis)',
        'RemoteOrderedDict.test_dict_clear': 'calls a C method of the real type with the proxy (dict.update(od) and kin): C code needs the real type',
        'RemoteOrderedDict.test_dict_delitem': 'calls a C method of the real type with the proxy (dict.update(od) and kin): C code needs the real type',
        'RemoteOrderedDict.test_dict_pop': 'calls a C method of the real type with the proxy (dict.update(od) and kin): C code needs the real type',
        'RemoteOrderedDict.test_dict_popitem': 'calls a C method of the real type with the proxy (dict.update(od) and kin): C code needs the real type',
        'RemoteOrderedDict.test_dict_setdefault': 'calls a C method of the real type with the proxy (dict.update(od) and kin): C code needs the real type',
        'RemoteOrderedDict.test_dict_setitem': 'calls a C method of the real type with the proxy (dict.update(od) and kin): C code needs the real type',
        'RemoteOrderedDict.test_dict_update': 'calls a C method of the real type with the proxy (dict.update(od) and kin): C code needs the real type',
        'RemoteOrderedDict.test_free_after_iterating': 'subclasses the type under test: a local class cannot inherit from a class living in another process',
        'RemoteOrderedDict.test_highly_nested_subclass': 'subclasses the type under test: a local class cannot inherit from a class living in another process',
        'RemoteOrderedDict.test_init_calls': 'open: [pynto: exception 6765941c74b1-9769 raised in process 21916]',
        'RemoteOrderedDict.test_merge_operator': 'checks type(obj) against the real type: type() of a proxy is its proxy class',
        'RemoteOrderedDict.test_overridden_init': 'subclasses the type under test: a local class cannot inherit from a class living in another process',
        'RemoteOrderedDict.test_override_update': 'subclasses the type under test: a local class cannot inherit from a class living in another process',
        'RemoteOrderedDict.test_pickle_recursive': 'open: AssertionError: OrderedDict([(1, ...)]) is not OrderedDict([(1, OrderedDict([(1, ...)]))])',
        'RemoteOrderedDict.test_pop': 'subclasses the type under test: a local class cannot inherit from a class living in another process',
        'RemoteOrderedDict.test_reduce_not_too_fat': "open: TypeError: cannot pickle 'OrderedDict' object",
        'RemoteOrderedDict.test_reference_loop': "open: AssertionError: <class 'test.test_ordered_dict.OrderedDictTests.test_reference_loop.<locals>.A'> is not None",
        'RemoteOrderedDict.test_setdefault': 'subclasses the type under test: a local class cannot inherit from a class living in another process',
        'RemoteOrderedDict.test_sizeof': 'open: AssertionError: 112 not greater than 184',
        'RemoteOrderedDict.test_sizeof_exact': "open: AssertionError: 112 != 128 : wrong size for <class 'pynto.proxies.OrderedDict'>: got 112, expected 128",
        'RemoteOrderedDict.test_yaml_linkage': "open: TypeError: cannot pickle 'OrderedDict' object",
        '_SubTest.runTest': 'open: [pynto: exception 6765941c74b1-9762 raised in process 21916])',
    },
    'test_set': {
        'RemoteSet.test_copy': 'checks type(obj) against the real type: type() of a proxy is its proxy class',
        'RemoteSet.test_cyclical_repr': 'open: ? ++++++          +',
        'RemoteSet.test_difference': 'checks type(obj) against the real type: type() of a proxy is its proxy class',
        'RemoteSet.test_do_not_rehash_dict_keys': 'open: AssertionError: 20 != 10',
        'RemoteSet.test_free_after_iterating': 'subclasses the type under test: a local class cannot inherit from a class living in another process',
        'RemoteSet.test_intersection': 'checks type(obj) against the real type: type() of a proxy is its proxy class',
        'RemoteSet.test_pickling': 'open: [pynto: exception 6765941c74b1-5616 raised in process 21916]',
        'RemoteSet.test_remove_keyerror_set': 'open: AssertionError: False is not true : KeyError should be {3, 4}, not {3, 4}',
        'RemoteSet.test_subclass_with_custom_hash': 'subclasses the type under test: a local class cannot inherit from a class living in another process',
        'RemoteSet.test_symmetric_difference': 'checks type(obj) against the real type: type() of a proxy is its proxy class',
        'RemoteSet.test_union': 'checks type(obj) against the real type: type() of a proxy is its proxy class',
    },
    'test_userdict': {
        'RemoteUserDict.test_fromkeys': 'subclasses the type under test: a local class cannot inherit from a class living in another process',
    },
    'test_userlist': {
        'RemoteUserList.test_addmul': 'subclasses the type under test: a local class cannot inherit from a class living in another process',
        'RemoteUserList.test_free_after_iterating': 'subclasses the type under test: a local class cannot inherit from a class living in another process',
        'RemoteUserList.test_getitemoverwriteiter': 'subclasses the type under test: a local class cannot inherit from a class living in another process',
    },
}


@pytest.fixture(scope="module")
def conn(classic_server):
    with pynto.connect(classic_server.address) as c:
        yield c


@pytest.mark.timeout(300, method="thread")
@pytest.mark.parametrize("suite", cpython_suites.SUITES)
def test_cpython_suite(conn, suite):
    ran, failed = cpython_suites.run(suite, conn, tuple(TOO_SLOW.get(suite, ())))
    expected = EXPECTED_FAILURES.get(suite, {})
    unexpected = {name: why for name, why in failed.items() if name not in expected}
    now_passing = sorted(set(expected) - set(failed))
    print(f"{suite}: {ran - len(failed)}/{ran} passed; expected failures now passing: {now_passing}", file=sys.stderr)
    assert ran > 0
    assert not unexpected, "new failures:\n" + "\n".join(f"  {n}: {w}" for n, w in sorted(unexpected.items()))


def test_every_expected_failure_has_a_reason():
    for suite, entries in EXPECTED_FAILURES.items():
        assert suite in cpython_suites.SUITES
        for name, why in entries.items():
            assert why and len(why) > 10, (suite, name)
