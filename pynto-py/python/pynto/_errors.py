"""pynto's exceptions, and remote failures turned back into exceptions."""

from __future__ import annotations

import builtins
import sys
import traceback as _traceback
from typing import Any

__all__ = [
    "AccessDenied",
    "AuthenticationError",
    "ConnectionClosed",
    "ProtocolError",
    "RemoteError",
    "Timeout",
]


class ConnectionClosed(ConnectionError):
    """The connection ended; every call waiting on it fails with this at once."""


class Timeout(TimeoutError):
    """A call ran past its timeout."""


class AccessDenied(AttributeError):
    """The owner's policy refused the attribute or operation."""


class ProtocolError(Exception):
    """The peer sent something malformed, or the handshake failed (version, token)."""


class AuthenticationError(ProtocolError):
    """The server refused this side's token (wrong, or missing where one is required)."""


class Unimplemented(NotImplementedError):
    """The peer does not implement this operation."""


class RemoteError(Exception):
    """A remote exception whose class is not rebuilt on this side.

    ``remote_type`` is its qualified name, ``remote_traceback`` the remote traceback.
    """

    def __init__(self, remote_type: str, message: str, remote_traceback: str = "") -> None:
        super().__init__(f"{remote_type}: {message}")
        self.remote_type = remote_type
        self.remote_message = message
        self.remote_traceback = remote_traceback

    def __str__(self) -> str:
        text = super().__str__()
        if self.remote_traceback:
            text += "\n\n========= Remote Traceback =========\n" + self.remote_traceback.rstrip()
        return text


_PYNTO_TYPES = {
    "pynto.AccessDenied": AccessDenied,
    "pynto.ConnectionClosed": ConnectionClosed,
    "pynto.Timeout": Timeout,
    "pynto.ProtocolError": ProtocolError,
    "pynto.Unimplemented": Unimplemented,
}

# One subclass per rebuilt class, so str() can carry the remote traceback while the exception
# is still an instance of (and caught as) the original class.
_remote_classes: dict[type, type] = {}


def _with_remote_traceback(cls: type) -> type:
    sub = _remote_classes.get(cls)
    if sub is None:

        def __str__(self: BaseException) -> str:
            text = cls.__str__(self)
            tb = getattr(self, "remote_traceback", "")
            if tb:
                text += "\n\n========= Remote Traceback =========\n" + tb.rstrip()
            return text

        try:
            sub = type(cls.__name__, (cls,), {"__str__": __str__, "__module__": cls.__module__, "__qualname__": cls.__qualname__})
        except TypeError:  # a class that cannot be subclassed
            sub = cls
        _remote_classes[cls] = sub
    return sub


def _local_class(type_name: str, rebuild: bool) -> type | None:
    module, _, qualname = type_name.rpartition(".")
    if module == "builtins":
        cls = getattr(builtins, qualname, None)
    elif type_name in _PYNTO_TYPES:
        return _PYNTO_TYPES[type_name]
    elif (rebuild or module.partition(".")[0] in sys.stdlib_module_names) and module in sys.modules:
        # Standard-library exceptions (json.JSONDecodeError, ...) are rebuilt like builtins.
        # Never import: only classes already loaded here are rebuilt.
        cls = sys.modules[module]
        for part in qualname.split("."):
            cls = getattr(cls, part, None)
            if cls is None:
                break
    else:
        return None
    if isinstance(cls, type) and issubclass(cls, BaseException):
        return cls
    return None


def remote_exception(kind: str, type_name: str, message: str, args: tuple, remote_tb: str, rebuild: bool) -> BaseException:
    """The local exception for a remote failure (called by the compiled module)."""
    if kind == "access_denied":
        exc: BaseException = AccessDenied(message)
    elif kind == "no_such_object":
        exc = ProtocolError(f"the peer no longer has that object: {message}")
    elif kind == "unimplemented":
        exc = Unimplemented(message)
    elif kind == "overloaded":
        exc = ProtocolError(f"the peer is overloaded: {message}")
    else:
        original = _came_home(type_name, remote_tb)
        if original is not None:
            return original
        cls = _local_class(type_name, rebuild)
        if cls is not None and not issubclass(cls, Exception):
            # SystemExit, KeyboardInterrupt, GeneratorExit, ...: a peer must never end or
            # interrupt this process by raising one; `except Exception:` catches this.
            cls = None
        if cls is None:
            exc = RemoteError(type_name, message, remote_tb)
        else:
            sub = _with_remote_traceback(cls)
            try:
                exc = sub(*args) if args or not message else sub(message)
            except Exception:
                # A constructor with other parameters (e.g. JSONDecodeError): make the
                # instance without running it; its args still carry the message.
                try:
                    exc = sub.__new__(sub, *(args or (message,)))
                except Exception:
                    exc = RemoteError(type_name, message, remote_tb)
    exc.remote_traceback = remote_tb  # type: ignore[attr-defined]
    exc.remote_type = type_name  # type: ignore[attr-defined]
    return exc


# A traceback relayed through many peers is cut to this many characters.
_MAX_TRACEBACK = 64 * 1024

# Exceptions raised here while serving the peer, by the marker their traceback carries, so one
# that passes back through the peer comes home as the original object. Bounded: the newest few.
_SENT_MAX = 16
_sent: dict[str, tuple[BaseException, str, str]] = {}
_sent_count = 0
_PROCESS_TOKEN = __import__("os").urandom(6).hex()
_MARKER_PREFIX = "[pynto: exception "


def _remember(exc: BaseException, type_name: str, text: str) -> str:
    """``text`` with a marker line; ``exc`` remembered under it."""
    global _sent_count
    _sent_count += 1
    marker = f"{_MARKER_PREFIX}{_PROCESS_TOKEN}-{_sent_count} raised in process {__import__('os').getpid()}]"
    text = text.rstrip("\n") + "\n" + marker + "\n"
    _sent[marker] = (exc, type_name, text)
    while len(_sent) > _SENT_MAX:
        del _sent[next(iter(_sent))]
    return text


def _came_home(type_name: str, remote_tb: str) -> BaseException | None:
    """The original exception if this failure is one raised here, relayed back unchanged."""
    start = remote_tb.find(_MARKER_PREFIX)
    if start < 0:
        return None
    end = remote_tb.find("]", start)
    entry = _sent.get(remote_tb[start : end + 1])
    if entry is None:
        return None
    exc, sent_type, sent_text = entry
    if sent_type != type_name or not remote_tb.startswith(sent_text.rstrip("\n")):
        return None
    if remote_tb.rstrip("\n") == sent_text.rstrip("\n"):
        # Straight from this process's own serving side (a server in this process), not
        # relayed by a peer (which adds its frames): it is a remote failure like any other.
        return None
    if not isinstance(exc, Exception):
        return None
    return exc


def describe_exception(exc: BaseException, tb: Any = None) -> tuple[str, str, str, tuple, str]:
    """(kind, qualified type, message, by-value args, formatted traceback) of an exception
    raised while serving (called by the compiled module)."""
    cls = type(exc)
    kind = "remote"
    if isinstance(exc, AccessDenied):
        kind = "access_denied"
    elif isinstance(exc, Unimplemented):
        kind = "unimplemented"
    type_name = f"{cls.__module__}.{cls.__qualname__}"
    if cls.__module__ == "pynto._errors":
        type_name = f"pynto.{cls.__qualname__}"
    if isinstance(exc, RemoteError) and cls is RemoteError:
        # Relaying a failure this side could not rebuild: keep its own name.
        type_name = exc.remote_type
    args = exc.args
    if isinstance(exc, OSError) and len(args) == 2 and (exc.filename is not None or exc.filename2 is not None):
        args = (*args, exc.filename, None, exc.filename2)  # OSError's constructor keeps the names
    try:
        if isinstance(exc, RemoteError) and cls is RemoteError:
            message = exc.remote_message
        else:
            message = cls.__str__(exc) if cls in _remote_classes.values() else str(exc)
    except Exception:
        message = repr(exc)
    text = "".join(_traceback.format_exception(cls, exc, tb if tb is not None else exc.__traceback__))
    if not text.startswith("Traceback"):
        text = "Traceback (most recent call last):\n  (raised by native code, no Python frame)\n" + text
    earlier = getattr(exc, "remote_traceback", "")
    if earlier:
        # The exception came from a further peer: keep its story too.
        text = earlier.rstrip() + "\n\n========= Relayed through =========\n" + text
    if len(text) > _MAX_TRACEBACK:
        text = text[: _MAX_TRACEBACK // 2] + "\n[... traceback cut ...]\n" + text[-_MAX_TRACEBACK // 2 :]
    if len(message) > _MAX_TRACEBACK:
        message = message[:_MAX_TRACEBACK] + " [...]"
    if kind == "remote" and not earlier:
        text = _remember(exc, type_name, text)
    return kind, type_name, message, args, text
