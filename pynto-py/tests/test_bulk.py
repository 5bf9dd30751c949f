"""Bulk data against a real server process: a large transfer does not hold up small calls on the
same connection (its attachments cross in chunks), and a large value costs about its own size,
not twice it, on either side."""

from __future__ import annotations

import threading
from typing import Iterator

import pytest

import pynto
from bulk_services import peak_rss, reset_peak
from helpers import ServerProcess

MIB = 1 << 20


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess("--service", "bulk_services:Bulk", "--port", "0") as server:
        yield server


@pytest.mark.timeout(300)
def test_small_calls_complete_while_a_large_upload_is_in_flight(server: ServerProcess) -> None:
    conn = pynto.connect(server.address)
    try:
        root = conn.root
        root.reset()
        data = bytes(512 * MIB)
        done = threading.Event()
        result: list[int] = []

        def upload() -> None:
            result.append(root.put(data))
            done.set()

        uploader = threading.Thread(target=upload)
        uploader.start()
        # Small calls on the same connection while the upload is on the way: each comes back
        # before the upload's value has arrived (the server has not run `put`). Without
        # chunks, a call made during the upload waits behind all of it.
        overtaking = 0
        while not done.is_set():
            if not root.arrived() and not done.is_set():
                overtaking += 1
        uploader.join()
        assert result == [512 * MIB]
        assert overtaking >= 5, f"only {overtaking} small calls completed during the upload"
    finally:
        conn.close()




@pytest.mark.timeout(300)
def test_a_large_value_costs_about_its_size_on_each_side(server: ServerProcess) -> None:
    size = 1024 * MIB
    slack = 64 * MIB + 32 * MIB  # the target's 64 MiB, and room for the interpreter's noise
    conn = pynto.connect(server.address)
    try:
        root = conn.root
        # Upload: the server receives 1 GiB and hands it to `put`.
        data = bytes(size)
        root.reset_peak()
        base = root.peak_rss()
        assert root.put(data) == size
        server_growth = root.peak_rss() - base
        del data
        # Download: this process receives 1 GiB.
        reset_peak()
        base = peak_rss()
        got = root.get(size)
        client_growth = peak_rss() - base
        assert len(got) == size
        del got
    finally:
        conn.close()
    assert server_growth <= size + slack, f"server peak grew {server_growth / MIB:.0f} MiB"
    assert client_growth <= size + slack, f"client peak grew {client_growth / MIB:.0f} MiB"
