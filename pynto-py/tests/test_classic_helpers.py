"""pynto.classic: upload/download of files and trees, redirected stdio, and the remote console
and post-mortem debugger driven through a pseudo-terminal, all against a real server process."""

from __future__ import annotations

import io
import os
import sys

import pytest

import pynto
import pynto.classic
from terminal import Terminal, python


def _tree(root) -> dict[str, bytes | None]:
    """Every directory (None) and file (its bytes) under `root`, by relative path."""
    found: dict[str, bytes | None] = {}
    for directory, dirs, files in os.walk(root):
        rel = os.path.relpath(directory, root)
        for d in dirs:
            found[os.path.normpath(os.path.join(rel, d))] = None
        for f in files:
            with open(os.path.join(directory, f), "rb") as handle:
                found[os.path.normpath(os.path.join(rel, f))] = handle.read()
    return found


@pytest.fixture
def source_tree(tmp_path):
    root = tmp_path / "source"
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "empty-dir").mkdir()
    (root / "empty.txt").write_bytes(b"")
    (root / "a" / "small.txt").write_text("hello from the tree\n")
    (root / "a" / "b" / "c" / "deep.bin").write_bytes(bytes(range(256)) * 3)
    # Larger than two chunks and not a multiple of one, so the last chunk is short.
    (root / "a" / "b" / "large.bin").write_bytes(os.urandom(2 * pynto.classic.CHUNK + 12345))
    (root / "a" / "b" / "attachment-sized.bin").write_bytes(os.urandom(100_000))
    return root


def test_upload_then_download_a_tree_byte_for_byte(classic, source_tree, tmp_path):
    remote = tmp_path / "on-the-server"
    back = tmp_path / "downloaded"
    pynto.classic.upload(classic, source_tree, remote)
    # The server made them: its own walk sees them.
    assert classic.modules.os.path.isfile(str(remote / "a" / "b" / "large.bin"))
    assert _tree(remote) == _tree(source_tree)
    pynto.classic.download(classic, str(remote), back)
    expected = _tree(source_tree)
    assert _tree(back) == expected
    assert expected["empty.txt"] == b"" and expected["empty-dir"] is None
    assert len(expected[os.path.join("a", "b", "large.bin")]) == 2 * pynto.classic.CHUNK + 12345


def test_single_files_and_permissions(classic, tmp_path):
    local = tmp_path / "script.sh"
    local.write_bytes(b"#!/bin/sh\necho hi\n")
    local.chmod(0o750)
    remote = tmp_path / "remote-script.sh"
    pynto.classic.upload(classic, local, remote)
    assert remote.read_bytes() == local.read_bytes()
    assert remote.stat().st_mode & 0o777 == 0o750
    back = tmp_path / "back.sh"
    pynto.classic.download(classic, remote, back)
    assert back.read_bytes() == local.read_bytes()
    assert back.stat().st_mode & 0o777 == 0o750


def test_download_of_a_missing_path_raises_file_not_found(classic, tmp_path):
    with pytest.raises(FileNotFoundError):
        pynto.classic.download(classic, str(tmp_path / "no-such-file"), tmp_path / "x")
    assert classic.eval("1 + 1") == 2


def test_progress_callback_reports_every_chunk(classic, tmp_path):
    local = tmp_path / "big.bin"
    local.write_bytes(os.urandom(pynto.classic.CHUNK + 5))
    seen: list[tuple[int, int]] = []
    pynto.classic.upload(classic, local, tmp_path / "copy.bin", progress=lambda d, t: seen.append((d, t)))
    total = pynto.classic.CHUNK + 5
    assert seen[0] == (0, total) and seen[-1] == (total, total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    seen.clear()
    pynto.classic.download(classic, tmp_path / "copy.bin", tmp_path / "again.bin",
                           progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (total, total) and len(seen) == 3


def test_progress_true_without_a_progress_library_prints_a_line(classic, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # `import tqdm` fails
    monkeypatch.setitem(sys.modules, "rich", None)
    monkeypatch.setitem(sys.modules, "rich.progress", None)
    local = tmp_path / "f.bin"
    local.write_bytes(b"x" * 70_000)
    pynto.classic.upload(classic, local, tmp_path / "g.bin", progress=True)
    err = capsys.readouterr().err
    assert "upload f.bin: 70000/70000 bytes (100%)" in err


def test_redirected_stdio_shows_remote_prints_here(classic, classic_server, capsys):
    with pynto.classic.redirected_stdio(classic):
        classic.execute("import os, sys\nprint('printed by', os.getpid())\n"
                        "print('to stderr', file=sys.stderr)")
    captured = capsys.readouterr()
    assert f"printed by {classic_server.proc.pid}" in captured.out
    assert "to stderr" in captured.err
    # Restored: the server's own streams are back.
    assert classic.eval("type(__import__('sys').stdout).__name__") == "TextIOWrapper"
    classic.execute("print('not shown here')")
    assert "not shown here" not in capsys.readouterr().out


def test_redirected_stdio_reads_input_here_and_restores_after_an_error(classic, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("typed here\n"))
    with pytest.raises(ZeroDivisionError):
        with pynto.classic.redirected_stdio(classic):
            assert classic.eval("input('prompt> ')") == "typed here"
            classic.execute("1 / 0")
    assert "prompt> " in capsys.readouterr().out
    assert classic.eval("type(__import__('sys').stdin).__name__") == "TextIOWrapper"


def test_lent_streams_open_nothing_but_text_io(classic):
    # The client serves the default policy: the server reaches write/readline, not internals.
    with pynto.classic.redirected_stdio(classic):
        classic.execute(
            "import sys\n"
            "try:\n"
            "    sys.stdout._stream\n"
            "except AttributeError as exc:\n"
            "    denied = str(exc)\n")
    assert "access denied" in classic.eval("denied")


def _client_script(address: str, body: str) -> list[str]:
    return python("-c", "import pynto, pynto.classic\n"
                        f"conn = pynto.connect({address!r})\n" + body + "\nprint('CLIENT DONE')\n")


def test_interact_is_a_console_on_the_server(classic_server):
    argv = _client_script(classic_server.address, "pynto.classic.interact(conn)")
    with Terminal(argv) as term:
        term.expect("remote console on tcp://")
        term.expect(">>> ")
        term.type_line("import os; os.getpid()")
        term.expect(rf"\b{classic_server.proc.pid}\n")
        term.type_line("def twice(x):")
        term.expect(r"\.\.\. ")
        term.type_line("    return 2 * x")
        term.type_line("")
        term.type_line("twice(21)")
        term.expect(r"\b42\n")
        term.type_line("1 / 0")
        term.expect("ZeroDivisionError: division by zero")
        term.end_input()  # Ctrl-D ends the console, not the client
        term.expect("CLIENT DONE")
        assert term.wait() == 0


def test_pm_debugs_the_last_remote_exception_on_the_server(classic_server):
    body = (
        "conn.execute('def boom(n):\\n    secret = n * 3\\n    raise ValueError(secret)\\n')\n"
        "try:\n"
        "    conn.eval('boom')(14)\n"
        "except ValueError:\n"
        "    print('CAUGHT HERE')\n"
        "pynto.classic.pm(conn)\n"
    )
    with Terminal(_client_script(classic_server.address, body)) as term:
        term.expect("CAUGHT HERE")
        term.expect(r"\(Pdb\) ")
        term.type_line("p secret")
        term.expect(r"\b42\n")
        term.type_line("p __import__('os').getpid()")
        term.expect(rf"\b{classic_server.proc.pid}\n")
        term.line("q")  # leaves pdb: no prompt follows
        term.expect("CLIENT DONE")
        assert term.wait() == 0


def _square_and_pid(x):
    import os

    return x * x, os.getpid()


def test_aio_attribute_chains_need_one_await_and_classic_helpers_exist(classic_server):
    import asyncio

    import pynto.aio

    async def main() -> None:
        async with await pynto.aio.connect(classic_server.address) as conn:
            assert await conn.modules.math.pow(3, 2) == 9.0
            assert await conn.modules.os.path.join("a", "b") == os.path.join("a", "b")
            assert await conn.modules["os.path"].sep == os.sep
            assert await conn.builtins.len("abcd") == 4
            await conn.execute("answer = 6 * 7")
            assert await conn.eval("answer") == 42
            namespace = await conn.namespace
            assert await namespace.get("answer") == 42
            remote = await conn.teleport(_square_and_pid)
            assert await remote(12) == (144, classic_server.proc.pid)

    asyncio.run(main())
