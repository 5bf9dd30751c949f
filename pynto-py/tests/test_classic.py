"""Classic mode: modules, builtins, eval / execute / namespace, teleport."""

from __future__ import annotations

import os

import pytest

import pynto


def test_modules_by_attribute(classic, classic_server):
    assert classic.modules.math.pow(3, 2) == 9.0
    assert classic.modules.os.path.sep == os.path.sep
    assert classic.modules.os.getpid() == classic_server.proc.pid
    assert pynto.is_proxy(classic.modules.math)


def test_modules_by_dotted_name(classic):
    path = classic.modules["os.path"]
    assert path is classic.modules.os.path
    assert path.join("a", "b") == os.path.join("a", "b")
    assert classic.modules["xml.dom.minidom"].parseString("<a/>").documentElement.tagName == "a"


def test_missing_module_raises_import_error(classic):
    with pytest.raises(ImportError):
        classic.modules["no_such_module_pynto_test"]


def test_builtins(classic, classic_server):
    assert classic.builtins.len([1, 2, 3]) == 3
    assert classic.builtins.sum(range(10)) == 45
    remote_list = classic.builtins.list((1, 2))
    assert pynto.is_proxy(remote_list)
    assert remote_list == [1, 2]
    # The remote builtins really are the remote's: they run there.
    assert classic.builtins.__import__("os").getpid() == classic_server.proc.pid


def test_eval_execute_namespace(classic):
    assert classic.execute("x = 6 * 7") is None
    assert classic.eval("x") == 42
    assert classic.namespace["x"] == 42
    classic.namespace["y"] = "set from the client"
    assert classic.eval("y") == "set from the client"
    classic.execute("def f(a):\n    return a * x\n")
    assert classic.eval("f")(2) == 84
    assert classic.namespace["f"](1) == 42


def test_namespace_is_per_connection(classic_server):
    with pynto.connect(classic_server.address) as first, \
            pynto.connect(classic_server.address) as second:
        first.execute("only_here = 1")
        assert first.eval("only_here") == 1
        with pytest.raises(NameError):
            second.eval("only_here")


def test_eval_errors_come_back(classic):
    with pytest.raises(SyntaxError):
        classic.eval("1 +")
    with pytest.raises(ZeroDivisionError):
        classic.execute("1 / 0")


def test_classic_allows_everything(classic):
    func = classic.eval("lambda: 1")
    # Internals are reachable on a classic connection (trusted peers only).
    assert "__builtins__" in func.__globals__
    assert classic.eval("type")(func.__code__).__name__ == "code"
    obj = classic.eval("type('Obj', (), {})()")
    obj.attr = 5
    assert obj.attr == 5
    del obj.attr
    assert not classic.builtins.hasattr(obj, "attr")


def heavy_function(n):
    import hashlib
    import os

    digest = b"pynto"
    for _ in range(n):
        digest = hashlib.sha256(digest).digest()
    return os.getpid(), digest.hex()


def local_reference(n):
    import hashlib

    digest = b"pynto"
    for _ in range(n):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()


def test_teleport(classic, classic_server):
    remote = classic.teleport(heavy_function)
    assert pynto.is_proxy(remote)
    assert callable(remote)
    pid, digest = remote(1000)
    assert pid == classic_server.proc.pid
    assert digest == local_reference(1000)


def test_teleported_function_raises_with_remote_traceback(classic):
    def fails(x):
        return 1 / x

    remote = classic.teleport(fails)
    with pytest.raises(ZeroDivisionError) as info:
        remote(0)
    assert "fails" in info.value.remote_traceback


def test_teleport_closure_is_a_clear_error(classic):
    factor = 3

    def closure(x):
        return x * factor

    with pytest.raises(TypeError, match="closure"):
        classic.teleport(closure)
    # The connection is untouched by the refusal.
    assert classic.eval("1 + 1") == 2


def test_classic_members_on_a_service_server(svc):
    for use in (lambda: svc.modules.math, lambda: svc.builtins, lambda: svc.eval("1"),
                lambda: svc.execute("x = 1"), lambda: svc.teleport(heavy_function)):
        with pytest.raises(Exception) as info:
            use()
        assert not isinstance(info.value, pynto.ConnectionClosed)
    assert svc.root.echo(1) == 1
