"""Classic-mode helpers: copy files to and from a classic server, lend it this terminal.

These work on a connection to a classic server (``python -m pynto serve --classic``)::

    import pynto, pynto.classic
    conn = pynto.connect("localhost:18812")
    pynto.classic.upload(conn, "data/", "/tmp/data")        # a file or a directory tree
    pynto.classic.download(conn, "/var/log/app.log", "app.log", progress=True)
    with pynto.classic.redirected_stdio(conn):
        conn.execute("print('shown here')")
    pynto.classic.interact(conn)                             # a console running on the server
    pynto.classic.pm(conn)                                   # pdb on the last remote exception

Files cross in chunks of `CHUNK` bytes, read and written on the remote side with
``os.pread``/``os.pwrite`` at explicit offsets, so a few chunks are in flight at once; each
chunk crosses as one bulk attachment. What the server is lent for redirection and consoles
(this side's streams and ``input``) exposes only what those need, so a client serving the
default policy opens nothing else.
"""

from __future__ import annotations

import contextlib
import os
import sys
import weakref
from collections import deque
from typing import Any, Callable, Iterator, Union

from ._async import async_
from ._connection import Connection
from ._service import exposed

__all__ = ["CHUNK", "download", "interact", "pm", "redirected_stdio", "upload"]

#: Bytes per chunk read or written on the remote side.
CHUNK = 8 << 20

#: Chunks in flight at once for one file.
_WINDOW = 3

Progress = Union[bool, Callable[[int, int], Any], None]


# --------------------------------------------------------------------------- progress


class _Progress:
    """Reports bytes copied: a tqdm or rich bar, a stderr line, or a callable's (done, total)."""

    def __init__(self, progress: Progress, total: int, description: str) -> None:
        self.done = 0
        self.total = total
        self._callback: Callable[[int, int], Any] | None = None
        self._bar: Any = None
        self._rich: Any = None
        self._line = False
        if callable(progress):
            self._callback = progress
        elif progress:
            self._start_display(description)
        self._report()

    def _start_display(self, description: str) -> None:
        try:
            from tqdm import tqdm  # type: ignore[import-untyped]
        except ImportError:
            pass
        else:
            self._bar = tqdm(total=self.total, unit="B", unit_scale=True, unit_divisor=1024,
                             desc=description)
            return
        try:
            from rich.progress import Progress as RichProgress  # type: ignore[import-not-found]
        except ImportError:
            self._line = True
            self._description = description
            return
        progress = RichProgress()
        progress.start()
        self._rich = (progress, progress.add_task(description, total=self.total))

    def advance(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self._rich is not None:
            self._rich[0].update(self._rich[1], advance=n)
        self._report()

    def _report(self) -> None:
        if self._callback is not None:
            self._callback(self.done, self.total)
        elif self._line:
            percent = 100.0 if self.total == 0 else 100.0 * self.done / self.total
            sys.stderr.write(f"\r{self._description}: {self.done}/{self.total} bytes ({percent:.0f}%)")
            sys.stderr.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self._rich is not None:
            self._rich[0].stop()
        elif self._line:
            sys.stderr.write("\n")
            sys.stderr.flush()


# --------------------------------------------------------------------------- the remote side


def _remote_tree(root: str) -> tuple:
    """Runs on the server: what `root` is, as ``(relative path, kind, size, mode)`` tuples with
    kind ``"dir"`` or ``"file"``, directories before their contents. A file root is one entry
    with relative path ``""``. Symbolic links to files count as files; links to directories,
    devices, sockets and dangling links are left out."""
    import os
    import stat

    info = os.stat(root)
    if not stat.S_ISDIR(info.st_mode):
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{root!r} is neither a regular file nor a directory")
        return (("", "file", info.st_size, stat.S_IMODE(info.st_mode)),)
    entries = [("", "dir", 0, stat.S_IMODE(info.st_mode))]
    pending = [""]
    while pending:
        rel = pending.pop()
        with os.scandir(os.path.join(root, rel)) as listing:
            for entry in sorted(listing, key=lambda e: e.name):
                path = os.path.join(rel, entry.name)
                if entry.is_dir(follow_symlinks=False):
                    mode = stat.S_IMODE(entry.stat(follow_symlinks=False).st_mode)
                    entries.append((path, "dir", 0, mode))
                    pending.append(path)
                elif entry.is_file():
                    try:
                        info = entry.stat()
                    except FileNotFoundError:
                        continue
                    entries.append((path, "file", info.st_size, stat.S_IMODE(info.st_mode)))
    return tuple(entries)


_tree_functions: "weakref.WeakKeyDictionary[Connection, Any]" = weakref.WeakKeyDictionary()


def _tree(conn: Connection, root: str) -> tuple:
    function = _tree_functions.get(conn)
    if function is None:
        function = _tree_functions[conn] = conn.teleport(_remote_tree)
    return tuple(function(root))


def _local_tree(root: str) -> tuple:
    # The same walk, here: the function does not depend on where it runs.
    return _remote_tree(root)


# --------------------------------------------------------------------------- upload / download


def upload(conn: Connection, local: str | os.PathLike, remote: str | os.PathLike, *,
           progress: Progress = False) -> None:
    """Copy the local file or directory tree ``local`` to the path ``remote`` on the peer of
    ``conn`` (a classic server). A directory's contents land in ``remote``, which is created
    if missing; files are replaced; permission bits are copied.

    ``progress=True`` shows a progress bar (tqdm or rich when installed, else a line on
    stderr); a callable is called with ``(bytes_done, bytes_total)`` as chunks arrive."""
    local, remote = os.fspath(local), os.fspath(remote)
    entries = _local_tree(local)
    total = sum(size for _, kind, size, _ in entries if kind == "file")
    ros = conn.modules.os
    flags = ros.O_WRONLY | ros.O_CREAT | ros.O_TRUNC
    report = _Progress(progress, total, f"upload {os.path.basename(local) or local}")
    try:
        for rel, kind, size, mode in entries:
            source = os.path.join(local, rel) if rel else local
            target = ros.path.join(remote, rel) if rel else remote
            if kind == "dir":
                ros.makedirs(target, mode | 0o700, exist_ok=True)
                continue
            fd = ros.open(target, flags, mode | 0o600)
            try:
                with open(source, "rb") as f:
                    _send(ros, fd, f, size, report)
                ros.fchmod(fd, mode)
            finally:
                ros.close(fd)
        for rel, kind, _, mode in entries:
            # Directory modes last, so a read-only directory was still writable while filled.
            if kind == "dir" and mode & 0o700 != 0o700:
                ros.chmod(ros.path.join(remote, rel) if rel else remote, mode)
    finally:
        report.close()


def _send(ros: Any, fd: int, f: Any, size: int, report: _Progress) -> None:
    pwrite = async_(ros.pwrite)
    in_flight: deque = deque()
    offset = 0
    while True:
        while len(in_flight) < _WINDOW:
            chunk = f.read(CHUNK)
            if not chunk:
                break
            in_flight.append((offset, chunk, pwrite(fd, chunk, offset)))
            offset += len(chunk)
        if not in_flight:
            return
        at, chunk, result = in_flight.popleft()
        written = result.value
        while written < len(chunk):  # a short write: finish this chunk before the next
            written += ros.pwrite(fd, chunk[written:], at + written)
        report.advance(len(chunk))


def download(conn: Connection, remote: str | os.PathLike, local: str | os.PathLike, *,
             progress: Progress = False) -> None:
    """Copy the file or directory tree ``remote`` on the peer of ``conn`` (a classic server)
    to the local path ``local``. A directory's contents land in ``local``, which is created if
    missing; files are replaced; permission bits are copied.

    ``progress`` as for `upload`."""
    remote, local = os.fspath(remote), os.fspath(local)
    entries = _tree(conn, remote)
    total = sum(size for _, kind, size, _ in entries if kind == "file")
    ros = conn.modules.os
    report = _Progress(progress, total, f"download {os.path.basename(remote) or remote}")
    try:
        for rel, kind, size, mode in entries:
            source = ros.path.join(remote, rel) if rel else remote
            target = os.path.join(local, rel) if rel else local
            if kind == "dir":
                os.makedirs(target, mode | 0o700, exist_ok=True)
                continue
            fd = ros.open(source, ros.O_RDONLY)
            try:
                with open(target, "wb") as f:
                    _receive(ros, fd, f, size, source, report)
                os.chmod(target, mode)
            finally:
                ros.close(fd)
        for rel, kind, _, mode in entries:
            if kind == "dir" and mode & 0o700 != 0o700:
                os.chmod(os.path.join(local, rel) if rel else local, mode)
    finally:
        report.close()


def _receive(ros: Any, fd: int, f: Any, size: int, name: str, report: _Progress) -> None:
    pread = async_(ros.pread)
    in_flight: deque = deque()
    offset = 0
    while True:
        while len(in_flight) < _WINDOW and offset < size:
            n = min(CHUNK, size - offset)
            in_flight.append((n, pread(fd, n, offset)))
            offset += n
        if not in_flight:
            return
        n, result = in_flight.popleft()
        data = result.value
        if len(data) != n:
            for _, later in in_flight:
                later.wait()
            raise OSError(f"{name} shrank while it was being copied")
        f.write(data)
        report.advance(n)


# --------------------------------------------------------------------------- lent streams


@exposed
class LentStream:
    """One of this side's text streams, lent to the server as its ``sys.stdin``,
    ``sys.stdout`` or ``sys.stderr``: only reading and writing text are reachable."""

    def __init__(self, stream: Any, *, interactive_input: bool = False) -> None:
        self._stream = stream
        # Read lines with `input()` (line editing) when the stream is this side's terminal.
        self._interactive_input = interactive_input

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str:
        return getattr(self._stream, "errors", None) or "strict"

    def write(self, text: str) -> int:
        return self._stream.write(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self._stream.write(line)

    def flush(self) -> None:
        self._stream.flush()

    def readline(self, size: int = -1) -> str:
        if self._interactive_input:
            try:
                return input() + "\n"
            except EOFError:
                return ""
        return self._stream.readline(size)

    def read(self, size: int = -1) -> str:
        return self._stream.read(size)

    def isatty(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"<pynto.classic.LentStream of {self._stream!r}>"


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


@contextlib.contextmanager
def redirected_stdio(conn: Connection) -> Iterator[None]:
    """While open, the peer's ``sys.stdin``, ``sys.stdout`` and ``sys.stderr`` (a classic
    server's) are this side's: remote prints appear here, remote ``input()`` reads here. The
    peer's own streams are put back on exit, also when the block raises. The redirection is
    process-wide on the server, as ``sys.stdout`` is."""
    rsys = conn.modules.sys
    saved = (rsys.stdin, rsys.stdout, rsys.stderr)
    stdin = LentStream(sys.stdin, interactive_input=_is_terminal(sys.stdin))
    rsys.stdin, rsys.stdout, rsys.stderr = stdin, LentStream(sys.stdout), LentStream(sys.stderr)
    try:
        yield
    finally:
        if not conn.closed:
            rsys.stdin, rsys.stdout, rsys.stderr = saved


def interact(conn: Connection, namespace: Any = None) -> None:
    """A Python console running on the peer (a classic server), typed at and shown here: each
    line you type runs there, in ``namespace`` (default: the connection's ``conn.namespace``).
    Leave with Ctrl-D (end of input)."""
    if namespace is None:
        namespace = conn.namespace
    banner = f"pynto: remote console on {conn.peer}; leave with Ctrl-D"
    with redirected_stdio(conn):
        conn.modules.code.interact(banner=banner, readfunc=input, local=namespace, exitmsg="")


def pm(conn: Connection) -> None:
    """Post-mortem debugging (pdb) of the last exception raised on the peer (a classic
    server) while serving this or another classic connection, on the server's own traceback
    and frames; pdb's prompt and output are here. Raises `ValueError` when the server has not
    seen an exception yet."""
    rsys = conn.modules.sys
    traceback = getattr(rsys, "last_traceback", None)
    if traceback is None:
        raise ValueError(f"{conn.peer} has no last exception to debug")
    with redirected_stdio(conn):
        debugger = conn.modules.pdb.Pdb(nosigint=True)
        debugger.reset()
        debugger.interaction(None, traceback)

