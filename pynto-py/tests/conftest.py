"""Fixtures: real `python -m pynto serve` processes and connections to them."""

from __future__ import annotations

import os
from typing import Iterator

import pytest

import pynto
from helpers import ServerProcess


@pytest.fixture(scope="session")
def classic_server() -> Iterator[ServerProcess]:
    """``python -m pynto serve --classic --port 0``, shared by the session."""
    with ServerProcess("--classic", "--port", "0") as server:
        yield server


@pytest.fixture(scope="session")
def service_server() -> Iterator[ServerProcess]:
    """``python -m pynto serve --service services:SampleService --port 0``, shared."""
    with ServerProcess("--service", "services:SampleService", "--port", "0") as server:
        yield server


@pytest.fixture(scope="session")
def unix_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A classic server on a Unix socket."""
    path = tmp_path_factory.mktemp("unix") / "pynto.sock"
    with ServerProcess("--classic", "--unix", str(path)) as server:
        yield server


@pytest.fixture
def fresh_server() -> Iterator[ServerProcess]:
    """A service server of this test's own, for tests that stop or kill it."""
    with ServerProcess("--service", "services:SampleService", "--port", "0") as server:
        yield server


@pytest.fixture
def classic(classic_server: ServerProcess) -> Iterator[pynto.Connection]:
    """A connection to the shared classic server."""
    with pynto.connect(classic_server.address) as conn:
        yield conn


@pytest.fixture
def svc(service_server: ServerProcess) -> Iterator[pynto.Connection]:
    """A connection to the shared SampleService server."""
    with pynto.connect(service_server.address) as conn:
        yield conn


@pytest.fixture
def root(svc: pynto.Connection) -> object:
    return svc.root


@pytest.fixture
def server_pid(svc: pynto.Connection) -> int:
    pid = svc.root.pid()
    assert pid != os.getpid()
    return pid
