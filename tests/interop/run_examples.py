"""Run the runtime's Rust examples (pynto-runtime/examples) against real Python peers (called by
`cargo xtask test-all`'s interop step).

Usage: python run_examples.py EXAMPLES_DIR
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    examples = Path(sys.argv[1])
    # A Rust program calls a Python classic server.
    server = subprocess.Popen(
        [sys.executable, "-m", "pynto", "serve", "--classic", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        line = server.stdout.readline()
        assert line.startswith("pynto: serving classic on "), line
        address = line.rstrip().rsplit(" on ", 1)[1]
        out = subprocess.run([examples / "call_python_classic", address], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip().splitlines()[-1] == "9.0", out.stdout
        print(f"call_python_classic: {out.stdout.strip()}")
    finally:
        server.terminate()
        server.wait(10)
        server.stdout.close()
    # A Python client calls a Rust server and passes it a Python callback.
    out = subprocess.run(
        [sys.executable, HERE / "python_client.py", examples / "serve_rust_object"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
    print(f"serve_rust_object + python_client.py: {out.stdout.strip()}")


if __name__ == "__main__":
    main()
