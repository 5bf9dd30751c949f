"""Types for checkers: the policy keyword arguments and the addresses ``pynto.connect`` takes.

``**policy: Unpack[PolicyOptions]`` on `pynto.connect`, `pynto.Server` and friends lets a type
checker (``mypy --strict``) report a misspelled policy keyword, and `Address` lets it report a
port number passed where an address belongs (``pynto.connect(12345)``).
"""

from __future__ import annotations

import os
from typing import TypedDict, Union

__all__ = ["Address", "PolicyOptions"]


class PolicyOptions(TypedDict, total=False):
    """The policy keyword arguments: what this side lets its peer do with what it exports.

    Every keyword defaults to ``False``. A classic service ignores them (it allows everything).
    """

    #: Also expose every public (not ``_``-prefixed) attribute of exported objects.
    allow_public_attrs: bool
    #: Let the peer set attributes of exported objects.
    allow_setattr: bool
    #: Let the peer delete attributes of exported objects.
    allow_delattr: bool
    #: Let the peer ask for pickled copies of exported objects (``pynto.obtain``).
    allow_pickle: bool
    #: Rebuild remote exceptions of non-builtin classes already imported on this side.
    rebuild_exceptions: bool


#: Where a server is: ``"host:port"``, ``"tcp://host:port"``, ``"unix:///path"``,
#: ``"tls://host:port"``, a path-like (read as a string), or ``("host", port)``.
Address = Union[str, "os.PathLike[str]", tuple[str, int]]
