"""Drive the `serve_rust_object` example from Python: a Python client of a Rust object.

    cargo build -p pynto-runtime --example serve_rust_object
    python tests/interop/python_client.py target/debug/examples/serve_rust_object

Starts the Rust server (the path in argv[1]), connects with pynto, calls ``add``, and passes a
Python callback to ``notify``, checking it ran n times, in order, on the calling thread (the
Rust side calls back while this thread waits in ``notify``). Prints ``ok`` and exits 0.
"""

from __future__ import annotations

import subprocess
import sys
import threading

import pynto


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} PATH/TO/serve_rust_object", file=sys.stderr)
        return 2
    server = subprocess.Popen([argv[1]], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        prefix = "listening on "
        if not line.startswith(prefix):
            raise SystemExit(f"unexpected first line from the server: {line!r}")
        address = line[len(prefix):].strip()

        with pynto.connect(address) as conn:
            assert conn.root.add(2, 3) == 5, "add(2, 3)"
            assert conn.root.add(1.5, 2.25) == 3.75, "add(1.5, 2.25)"

            caller = threading.get_ident()
            calls: list[tuple[int, int]] = []

            def callback(i: int) -> int:
                calls.append((i, threading.get_ident()))
                return i * i

            n = 5
            results = conn.root.notify(callback, n)
            assert [i for i, _ in calls] == list(range(n)), calls
            assert all(thread == caller for _, thread in calls), "callbacks ran on another thread"
            assert list(results) == [i * i for i in range(n)], results

            try:
                conn.root.add("a", 1)
            except TypeError as exc:
                assert "add takes" in str(exc), exc
            else:
                raise AssertionError("add('a', 1) did not raise TypeError")
        print("ok")
        return 0
    finally:
        assert server.stdin is not None
        server.stdin.close()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
