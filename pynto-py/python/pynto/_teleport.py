"""``conn.teleport(func)``: what may go, and how it goes.

A function is re-created on the peer from its source when the source can be found (a file,
or a console that keeps what was typed, as ``python -m pynto shell`` does). A function typed
at a plain interactive prompt has no source; it goes as its compiled code object instead
(``marshal``), which needs the same Python bytecode version on both sides.

Either way the function runs in a fresh namespace on the peer, so it may use only its
arguments, builtins and what it imports or defines itself. A function that reads a global of
this process (a module-level import, constant or helper) is refused here, when it is
teleported, rather than failing with ``NameError`` when it is called there.
"""

from __future__ import annotations

import builtins
import dis
import importlib.util
import marshal
import types
from typing import Any

from ._service import teleport_source

__all__ = ["teleport"]


def _global_reads(code: types.CodeType) -> set[str]:
    """Names `code` (and the functions and comprehensions nested in it) read as globals, less
    those it assigns as globals itself."""
    reads: set[str] = set()
    writes: set[str] = set()
    pending = [code]
    while pending:
        current = pending.pop()
        for instruction in dis.get_instructions(current):
            if instruction.opname == "LOAD_GLOBAL":
                reads.add(instruction.argval)
            elif instruction.opname in ("STORE_GLOBAL", "DELETE_GLOBAL"):
                writes.add(instruction.argval)
        pending.extend(c for c in current.co_consts if isinstance(c, types.CodeType))
    return reads - writes


def _check_globals(func: types.FunctionType) -> None:
    missing = sorted(
        name
        for name in _global_reads(func.__code__)
        if name != func.__name__ and not hasattr(builtins, name)
    )
    if missing:
        names = ", ".join(missing)
        them = "it" if len(missing) == 1 else "them"
        raise TypeError(
            f"cannot teleport {func.__qualname__}(): it reads the global name"
            f"{'' if len(missing) == 1 else 's'} {names} of this process, which the peer does "
            f"not have; import or define {them} inside the function, or pass {them} as "
            f"arguments"
        )


def teleport(conn: Any, func: Any) -> Any:
    """Define the plain function `func` on the peer of `conn` (classic) and return it there."""
    try:
        name, source = teleport_source(func)
    except TypeError as exc:
        # Without source (typed at a prompt): send the compiled code, checked the same way.
        if not isinstance(exc.__cause__, (OSError, TypeError)):
            raise
        _check_globals(func)
        return _teleport_code(conn, func)
    _check_globals(func)
    return conn._classic().teleport(name, source)


def _teleport_code(conn: Any, func: types.FunctionType) -> Any:
    remote_magic = conn.modules["importlib.util"].MAGIC_NUMBER
    if remote_magic != importlib.util.MAGIC_NUMBER:
        version = conn.modules.sys.version.split()[0]
        raise TypeError(
            f"cannot teleport {func.__qualname__}(): its source is not available (was it typed "
            f"at an interactive prompt?) and the peer runs another Python ({version}), so its "
            f"compiled code cannot be sent instead; define it in a file or in "
            f"'python -m pynto shell'"
        )
    code = conn.modules.marshal.loads(marshal.dumps(func.__code__))
    namespace = conn.builtins.dict(__name__="__pynto_teleport__", __builtins__=conn.builtins)
    function = conn.modules.types.FunctionType(code, namespace, func.__name__, func.__defaults__)
    if func.__kwdefaults__:
        function.__kwdefaults__ = dict(func.__kwdefaults__)
    namespace[func.__name__] = function
    return function
