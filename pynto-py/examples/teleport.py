"""Teleport a function: define it on a remote interpreter and call it there.

``conn.teleport(f)`` sends the source of a plain function to a classic server and returns
the function defined there. The function must be self-contained: it imports what it needs
inside its body. A closure cannot travel (the variables it closes over stay here), and
pynto says so instead of sending a function that would fail later.
"""

import os

import pynto


def heavy_function(rounds: int) -> tuple[int, str]:
    import hashlib
    import os

    digest = b"pynto"
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
    return os.getpid(), digest.hex()[:16]


def make_multiplier(factor: int):
    def multiply(x: int) -> int:
        return x * factor  # `factor` lives in this process only

    return multiply


def main() -> None:
    with pynto.connect_subprocess() as conn:
        remote_heavy = conn.teleport(heavy_function)
        pid, digest = remote_heavy(100_000)
        print(f"ran in pid {pid} (the server, pid {conn.process.pid}); this is pid {os.getpid()}")
        print("digest:", digest)

        try:
            conn.teleport(make_multiplier(3))
        except TypeError as exc:
            print("closure refused:", exc)


if __name__ == "__main__":
    main()
