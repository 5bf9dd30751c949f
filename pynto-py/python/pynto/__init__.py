"""pynto: two Python processes acting as one.

An object in one process is used from another, on the same machine or across a network,
through a proxy that forwards every operation. Immutable primitives cross by value,
everything else by reference; both sides serve and call.

    import pynto
    conn = pynto.connect("localhost:18812")
    conn.modules.math.pow(3, 2)
"""

from __future__ import annotations

import atexit
from importlib import metadata as _metadata
from typing import Any

from . import _connection, aio, classic
from ._async import AsyncResult, async_, timed
from ._connection import TLS, Connection, connect, connect_subprocess, connect_thread
from ._errors import AccessDenied, AuthenticationError, ConnectionClosed, ProtocolError, RemoteError, Timeout
from ._limits import Limits
from ._obtain import obtain
from ._pool import Pool
from ._pynto import PROTOCOL_VERSION, BoundMethod, Proxy, _mark_exiting, is_proxy
from ._server import Server, serve_stdio
from ._service import ClassicService, Service, exposed
from ._ssh import connect_ssh

try:
    #: The version of the installed distribution (``pynto-rpc``), the workspace's Cargo version.
    __version__: str = _metadata.version("pynto-rpc")
except _metadata.PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "PROTOCOL_VERSION",
    "TLS",
    "AccessDenied",
    "AsyncResult",
    "AuthenticationError",
    "BoundMethod",
    "ClassicService",
    "Connection",
    "ConnectionClosed",
    "Limits",
    "Pool",
    "ProtocolError",
    "Proxy",
    "RemoteError",
    "Server",
    "Service",
    "Timeout",
    "aio",
    "async_",
    "classic",
    "connect",
    "connect_ssh",
    "connect_subprocess",
    "connect_thread",
    "deliver",
    "exposed",
    "is_proxy",
    "obtain",
    "serve_stdio",
    "timed",
]




def __dir__() -> list[str]:
    """``dir(pynto)``: the public API only, the names in ``__all__`` and ``__version__``."""
    return sorted([*__all__, "__version__"])


@atexit.register
def _at_exit() -> None:
    # Close what is still open (calls waiting on it fail at once), then keep pynto's own
    # threads out of the interpreter before it starts finalizing.
    for conn in list(_connection._open):
        try:
            conn.close()
        except Exception:
            pass
    _mark_exiting()


def deliver(conn: Connection, obj: Any) -> Any:
    """A copy of the local object ``obj`` on the peer of ``conn`` (a classic server), by
    pickle. By-value objects and proxies of that peer are returned as they are. Large buffers
    (a numpy array's data) go beside the pickle (protocol 5, out of band), sent from the
    object's own memory."""
    if is_proxy(obj) and obj._pynto_conn is conn:
        return obj
    import pickle

    from ._obtain import out_of_band

    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(obj, protocol=5, buffer_callback=out_of_band(buffers))
    loads = conn._classic().getmodule("pickle").loads
    return loads(data, buffers=tuple(buffers)) if buffers else loads(data)
