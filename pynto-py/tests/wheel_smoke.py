"""Smoke test of an installed pynto wheel: ``python wheel_smoke.py EXPECTED_VERSION``.

``cargo xtask wheel``'s test-all step runs it in a fresh venv of each CPython on the machine,
from a directory outside the checkout, after installing the wheel there. It checks that the
installed package (not a source tree) is imported, its version and metadata, a classic round
trip in this process and a round trip with a real server process.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path


def main(expected_version: str) -> None:
    import pynto

    site_packages = Path(sysconfig.get_paths()["purelib"]).resolve()
    location = Path(pynto.__file__).resolve()
    assert site_packages in location.parents, f"pynto imported from {location}, not {site_packages}"
    assert pynto.__version__ == expected_version, (pynto.__version__, expected_version)
    assert "__version__" in dir(pynto) and "_connection" not in dir(pynto)
    description = metadata.metadata("pynto-rpc").get_payload()  # type: ignore[attr-defined]
    assert "pynto makes two Python processes act as one" in description, "README is not the long description"

    # A classic server on a thread of this process.
    with pynto.connect_thread() as conn:
        assert conn.eval("6 * 7") == 42
        assert conn.modules.math.pow(3, 2) == 9.0

    # A server process over its stdin/stdout.
    with pynto.connect_subprocess() as conn:
        assert conn.modules.os.getpid() == conn.process.pid
        assert conn.eval("sum(range(10))") == 45

    # A server process on a TCP port, as `python -m pynto serve` starts it.
    server = subprocess.Popen(
        [sys.executable, "-m", "pynto", "serve", "--classic", "--port", "0"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline().strip()
        assert line.startswith("pynto: serving classic on "), line
        address = line.rsplit(" on ", 1)[1]
        with pynto.connect(address) as conn:
            squares = conn.eval("[n * n for n in range(5)]")
            assert squares == [0, 1, 4, 9, 16] and pynto.is_proxy(squares)
            assert conn.modules.os.getpid() == server.pid
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"smoke test passed: pynto {pynto.__version__} on Python {sys.version.split()[0]} ({location.parent})")


if __name__ == "__main__":
    main(sys.argv[1])
