"""``pynto.connect_ssh``: a pynto server started over SSH, connected through the session.

The system ``ssh`` client runs ``python -m pynto serve --stdio`` on the remote machine, and the
connection speaks the protocol over the session's stdin/stdout (``connect_subprocess`` with an
ssh argv). Authentication is ssh's own (agent, keys, ``~/.ssh/config``); pynto opens no port
on the remote, so there is no port to pick and no race for it.

With ``deploy=True``, when the remote interpreter has no pynto (or one speaking another
protocol version), pynto is copied there first: a wheel given as ``wheel=PATH``, or else this
process's own ``pynto`` package (pure Python plus the abi3 extension module, so the same
version as the caller) is sent through the session into a fresh ``mktemp -d`` directory,
unpacked with the remote Python's ``zipfile``, and put on ``PYTHONPATH`` for the server. The
directory is removed when the server exits and, again, when the connection closes.
"""

from __future__ import annotations

import io
import os
import platform
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any, Sequence

from . import _pynto
from ._connection import Connection, connect_subprocess

__all__ = ["connect_ssh"]

#: What the probe prints: "pynto <protocol version>" or "missing <major> <minor>", then the
#: platform ("<sys.platform> <machine>") on a second line.
_PROBE = """\
import platform, sys
try:
    import pynto
except ImportError:
    print("missing", *sys.version_info[:2])
else:
    print("pynto", pynto.PROTOCOL_VERSION)
print(sys.platform, platform.machine())
"""

#: Seconds a helper ssh command (probe, upload, cleanup) may take.
_HELPER_TIMEOUT = 120.0


class SSHError(ConnectionError):
    """ssh could not reach the host, or a command run there for pynto failed."""


def _ssh_argv(ssh: str, options: Sequence[str], destination: str, command: str) -> list[str]:
    # -T: no terminal (the session carries frames); BatchMode: never prompt, since stdin is ours.
    return [ssh, "-T", "-o", "BatchMode=yes", *options, destination, command]


def _run(argv: list[str], destination: str, what: str, data: bytes | None = None) -> str:
    try:
        done = subprocess.run(argv, input=data, capture_output=True, timeout=_HELPER_TIMEOUT)
    except FileNotFoundError:
        raise SSHError(f"cannot run the ssh client {argv[0]!r}: not found") from None
    except subprocess.TimeoutExpired:
        raise SSHError(f"ssh {destination}: {what} took longer than {_HELPER_TIMEOUT:.0f} s") from None
    if done.returncode == 255:
        raise SSHError(f"ssh {destination}: {done.stderr.decode(errors='replace').strip()}")
    if done.returncode != 0:
        raise SSHError(
            f"ssh {destination}: {what} failed (exit status {done.returncode}): "
            f"{done.stderr.decode(errors='replace').strip()}"
        )
    return done.stdout.decode(errors="replace").strip()


def package_zip() -> bytes:
    """This process's ``pynto`` package as a zip holding ``pynto/...`` (what a wheel holds),
    with the compiled extension module and without caches."""
    root = Path(__file__).resolve().parent
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_dir() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            archive.write(path, f"pynto/{path.relative_to(root).as_posix()}")
    return buffer.getvalue()


def connect_ssh(
    destination: str,
    *,
    python: str = "python3",
    deploy: bool = False,
    wheel: str | os.PathLike | None = None,
    ssh_options: Sequence[str] = (),
    ssh: str = "ssh",
    remote_service: str | None = None,
    service: Any = None,
    timeout: float | None = None,
    **policy: bool,
) -> Connection:
    """Start ``python -m pynto serve --stdio`` on ``destination`` (``[user@]host``, or an
    ``ssh://`` URI) over SSH and connect through the session. The remote serves classic unless
    ``remote_service="module:Class"``. ``python`` is the remote interpreter; ``ssh_options``
    are extra ssh arguments (``["-p", "2222", "-i", key]``). With ``deploy=True`` a remote
    without pynto gets a copy (``wheel=PATH``, or this process's own package) in a temporary
    directory removed at close. ``conn.process`` is the local ssh process."""
    if not destination or destination.startswith("-"):
        raise ValueError(f"not an ssh destination: {destination!r}")
    options = list(ssh_options)
    py = shlex.quote(python)
    state = _run(_ssh_argv(ssh, options, destination, f"{py} -c {shlex.quote(_PROBE)}"), destination, f"running {python}")
    lines = state.splitlines()
    if len(lines) < 2:
        raise SSHError(f"ssh {destination}: unexpected answer from {python}: {state!r}")
    kind, _, detail = lines[-2].partition(" ")
    remote_platform = lines[-1]
    installed = kind == "pynto" and detail == str(_pynto.PROTOCOL_VERSION)
    if kind == "missing" and tuple(int(n) for n in detail.split()) < (3, 11):
        raise SSHError(f"ssh {destination}: {python} is Python {detail.replace(' ', '.')}; pynto needs 3.11 or later")
    if kind not in ("pynto", "missing"):
        raise SSHError(f"ssh {destination}: unexpected answer from {python}: {state!r}")

    what = "--classic" if remote_service is None else f"--service {shlex.quote(remote_service)}"
    serve = f"{py} -m pynto serve {what} --stdio"
    directory = None
    if not installed:
        if not deploy:
            found = "is not installed" if kind == "missing" else f"speaks protocol {detail}, not {_pynto.PROTOCOL_VERSION}"
            raise SSHError(f"ssh {destination}: pynto {found} for {python} there; deploy=True copies it over")
        if wheel is None and remote_platform != _local_platform():
            raise SSHError(
                f"ssh {destination}: this pynto is built for {_local_platform()}, the remote is "
                f"{remote_platform}; pass wheel= with a wheel built for it"
            )
        data = Path(wheel).read_bytes() if wheel is not None else package_zip()
        unpack = (
            'd=$(mktemp -d "${TMPDIR:-/tmp}/pynto-deploy.XXXXXX") || exit 1; '
            'if cat > "$d/pynto.zip" && '
            f'{py} -m zipfile -e "$d/pynto.zip" "$d/lib" && rm -f "$d/pynto.zip"; '
            'then echo "$d"; else rm -rf "$d"; exit 1; fi'
        )
        directory = _run(_ssh_argv(ssh, options, destination, unpack), destination, "copying pynto", data)
        if not directory.startswith("/"):
            raise SSHError(f"ssh {destination}: copying pynto printed {directory!r}, not a directory")
        d = shlex.quote(directory)
        # No exec: the shell stays to remove the directory once the server exits.
        serve = f'cd {d} && PYTHONPATH={d}/lib"${{PYTHONPATH:+:$PYTHONPATH}}" {serve}; rm -rf {d}'

    try:
        argv = _ssh_argv(ssh, options, destination, serve)
        conn = connect_subprocess(argv, service=service, token=None, timeout=timeout, **policy)
    except BaseException:
        if directory is not None:
            _remove(ssh, options, destination, directory)
        raise
    if directory is not None:
        conn._on_close.append(lambda: _remove(ssh, options, destination, directory))
    return conn


def _local_platform() -> str:
    return f"{sys.platform} {platform.machine()}"


def _remove(ssh: str, options: list[str], destination: str, directory: str) -> None:
    """Remove the deploy directory (if the server's shell has not already)."""
    try:
        _run(_ssh_argv(ssh, options, destination, f"rm -rf {shlex.quote(directory)}"), destination, "cleaning up")
    except SSHError:
        pass
