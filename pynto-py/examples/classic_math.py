"""Use another Python process's modules as if they were imported here.

A classic server (``python -m pynto serve --classic``) gives its client the whole interpreter:
``conn.modules.math`` is the server's ``math`` module, and calling ``pow`` on it runs there.
"""

import os
import subprocess
import sys

import pynto


def start_classic_server() -> tuple[subprocess.Popen, str]:
    """Run ``python -m pynto serve --classic`` on a free port; return it and its address."""
    server = subprocess.Popen(
        [sys.executable, "-m", "pynto", "serve", "--classic", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = server.stdout.readline()  # "pynto: serving classic on tcp://127.0.0.1:PORT"
    return server, line.rsplit(" on ", 1)[1].strip()


def main() -> None:
    server, address = start_classic_server()
    try:
        with pynto.connect(address) as conn:
            math = conn.modules.math
            print("math.pow(3, 2) =", math.pow(3, 2))
            print("the server's path separator:", repr(conn.modules.os.path.sep))
            print("os.path, imported by name:", conn.modules["os.path"].join("usr", "lib"))
            print("server pid:", conn.modules.os.getpid(), "client pid:", os.getpid())
    finally:
        server.terminate()
        server.wait()
        server.stdout.close()


if __name__ == "__main__":
    main()
