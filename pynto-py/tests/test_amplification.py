"""Amplification: hostile frames sent over a raw socket after a valid Hello cost the server
memory in proportion to what arrived, are refused, and leave it serving other clients.

The frames are the ones issue 10 reproduced: one 1 MiB attachment referenced 1,200 times, a
16 MiB body of nils, and a 16 MiB body of small tuples of nils (over budget only part way
through). The server is a real ``python -m pynto serve`` process; its peak RSS (``VmHWM``) is read
from /proc.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
from pathlib import Path
from typing import Iterator

import pytest

import pynto
from helpers import ServerProcess, wait_until

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads the server's memory from /proc"
)

MIB = 1 << 20
#: pynto_proto's DECODE_BUDGET_FACTOR and DECODE_BUDGET_FLOOR (docs/protocol.md, "Limits").
BUDGET_FACTOR = 24
BUDGET_FLOOR = 32 * MIB
#: What the server may grow by besides the decode budget: the frame itself as read, a copy in
#: the socket buffers, allocator slack.
SLACK = 48 * MIB


def frame(body: bytes, attachments: tuple[bytes, ...] = ()) -> bytes:
    """A frame: u32 LE body length, u32 LE attachment count, body, u64 LE-length attachments."""
    out = [struct.pack("<II", len(body), len(attachments)), body]
    for attachment in attachments:
        out += [struct.pack("<Q", len(attachment)), attachment]
    return b"".join(out)


def msgpack_str(text: str) -> bytes:
    raw = text.encode()
    assert len(raw) < 32
    return bytes([0xA0 | len(raw)]) + raw


#: Hello: `[0, {"protocol": 1}]`; every other field takes its default.
HELLO = frame(b"\x92\x00\x81" + msgpack_str("protocol") + b"\x01")


def call_root_method(name: str, positional: bytes, count: int) -> bytes:
    """The body of `Request(seq 1, chain 1, root, CallMethod(name, <count> positional, {}))`,
    `positional` being the encoded arguments."""
    header = b"\x95\x01\x01\x01\x00" + b"\x94\x06" + msgpack_str(name)
    return header + b"\xdd" + struct.pack(">I", count) + positional + b"\x80"


def reused_attachment() -> bytes:
    """One 1 MiB attachment, referenced 1,200 times (`[7, 0]` each)."""
    body = call_root_method("echo", b"\x92\x07\x00" * 1200, 1200)
    return frame(body, (b"\xab" * MIB,))


def nil_body(size: int = 16 * MIB) -> bytes:
    """A body of `size` bytes, nearly all of it one-byte nils as positional arguments."""
    count = size - len(call_root_method("echo", b"", 0))
    return frame(call_root_method("echo", b"\xc0" * count, count))


def tuples_of_nils(size: int = 16 * MIB) -> bytes:
    """A body of `size` bytes of 16-byte tuples `(None,) * 14`: each is cheap to read, so the
    decoder is well into the body before the budget runs out."""
    count = (size - len(call_root_method("echo", b"", 0))) // 16
    return frame(call_root_method("echo", (b"\x9f\x0b" + b"\xc0" * 14) * count, count))


def status(pid: int, field: str) -> int:
    """A size field (`VmRSS`, `VmHWM`) of /proc/<pid>/status, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def read_frame(sock: socket.socket) -> bytes:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed mid-frame")
            data += chunk
        return data

    body_len, count = struct.unpack("<II", exactly(8))
    body = exactly(body_len)
    for _ in range(count):
        (length,) = struct.unpack("<Q", exactly(8))
        exactly(length)
    return body


def send_hostile(address: str, hostile: bytes) -> bytes:
    """Hello, then `hostile`; return the last frame body the server sent before closing."""
    host, port = address.removeprefix("tcp://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(HELLO)
        assert read_frame(sock)[:2] == b"\x92\x00", "the server's first frame is not a Hello"
        try:
            sock.sendall(hostile)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before it was all read
        last = b""
        try:
            while True:
                last = read_frame(sock)
        except (ConnectionError, OSError):
            return last


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess("--service", "services:SampleService", "--port", "0") as server:
        yield server


def serves_normally(address: str) -> None:
    with pynto.connect(address) as conn:
        assert conn.root.echo("after") == "after"
        assert conn.root.double(21) == 42
        payload = b"x" * (2 * MIB)
        assert conn.root.echo(payload) == payload


CASES = {
    "reused attachment": (reused_attachment, b"attachment 0 is used a second time"),
    "16 MiB of nils": (nil_body, b"decoding budget"),
    "16 MiB of tuples of nils": (tuples_of_nils, b"decoding budget"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_frame_is_refused_within_its_budget(server, case):
    make, reason = CASES[case]
    hostile = make()
    with pynto.connect(server.address) as conn:
        pid = conn.root.pid()
    serves_normally(server.address)  # warm: threads, caches, a 2 MiB attachment each way
    peak_before = status(pid, "VmHWM")

    goodbye = send_hostile(server.address, hostile)

    assert reason in goodbye, f"the server said {goodbye[:200]!r}"
    growth = status(pid, "VmHWM") - peak_before
    bound = max(BUDGET_FACTOR * len(hostile), BUDGET_FLOOR) + len(hostile) + SLACK
    assert growth <= bound, f"{case}: peak RSS grew {growth / MIB:.0f} MiB (bound {bound / MIB:.0f})"
    # What was decoded before the refusal is freed, and other clients are served.
    assert wait_until(lambda: status(pid, "VmRSS") <= peak_before + SLACK), (
        f"{case}: RSS {status(pid, 'VmRSS') / MIB:.0f} MiB, peak before {peak_before / MIB:.0f} MiB"
    )
    serves_normally(server.address)


def test_large_ordinary_arguments_are_within_budget(server):
    # 9 MiB of floats and 5 MiB of 4-byte ints each way: under 24 bytes per byte decoded.
    floats = tuple(i / 3 for i in range(1_000_000))
    ints = tuple(range(1 << 20, (1 << 20) + 1_000_000))
    with pynto.connect(server.address) as conn:
        assert conn.root.echo(floats) == floats
        assert conn.root.echo(ints) == ints


def test_refused_connection_releases_its_fds(server):
    with pynto.connect(server.address) as conn:
        pid = conn.root.pid()
    send_hostile(server.address, reused_attachment())
    fds = open_fds(pid)
    for _ in range(3):
        send_hostile(server.address, reused_attachment())
    assert wait_until(lambda: open_fds(pid) <= fds), (open_fds(pid), fds)
