"""A short tour of pynto against a running classic server: `python tour.py ADDRESS`.

Without an address it starts its own server as a child process, over a pipe."""

from __future__ import annotations

import asyncio
import sys
import threading

import pynto


def main(address: str | None) -> None:
    conn = pynto.connect(address) if address else pynto.connect_subprocess()
    with conn:
        print(f"connected to {conn.peer} ({conn.peer_service})")

        # Remote modules, as if they were local.
        math = conn.modules.math
        print("modules.math.pow(3, 2) =", math.pow(3, 2))
        print("modules.os.path.sep    =", conn.modules["os.path"].sep)

        # Remote objects behave like the objects they stand for.
        squares = conn.eval("[n * n for n in range(10)]")
        print("a remote list:", squares, "| len", len(squares), "| 81 in it:", 81 in squares,
              "| isinstance list:", isinstance(squares, list))
        squares.append(100)
        print("after append:", squares[-3:])

        # Callbacks: the server calls back into this process, on the calling thread.
        seen = []

        def callback(x):
            seen.append(threading.current_thread().name)
            return x * 10

        apply = conn.eval("lambda f, xs: [f(x) for x in xs]")
        print("remote map with a local callback:", apply(callback, [1, 2, 3]),
              "| ran on:", set(seen))

        # Remote exceptions come back as themselves, with the remote traceback.
        try:
            conn.eval("{}['missing']")
        except KeyError as exc:
            print("a remote KeyError:", repr(exc), "| remote traceback lines:",
                  len(exc.remote_traceback.splitlines()))

        # Teleport a function and run it there.
        def word_count(text):
            import collections

            return collections.Counter(text.split()).most_common(2)

        remote_count = conn.teleport(word_count)
        print("teleported word_count:", remote_count("a b a c a b"))

        # Asynchronous calls, and asyncio.
        result = pynto.async_(math.factorial)(20)
        print("async factorial(20):", result.value)

        async def gather():
            return await asyncio.gather(*(pynto.async_(math.sqrt)(n) for n in (4, 9, 16)))

        print("awaited in asyncio:", asyncio.run(gather()))
        print(f"round trip: {conn.ping() * 1e6:.0f} us")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
