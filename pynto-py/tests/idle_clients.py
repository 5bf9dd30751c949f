"""A client process for the idle-connection tests: holds many connections to one server.

Run as ``python idle_clients.py ADDRESS [CA_PEM]`` (with a CA, over TLS); reads commands from
stdin, one a line, and answers each with one line on stdout:

- ``open N``: open N more connections (each fetches the root once), answer ``opened TOTAL``;
- ``call K``: call ``echo`` on K connections spread over all of them, answer ``called K``
  (or ``failed WHY``);
- ``all``: call ``echo`` on every connection, answer ``called TOTAL``.

End of stdin closes every connection and exits.
"""

from __future__ import annotations

import resource
import sys

import pynto


def main() -> None:
    address = sys.argv[1]
    tls = pynto.TLS(ca=sys.argv[2]) if len(sys.argv) > 2 else None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 20000 if hard == resource.RLIM_INFINITY else min(20000, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    conns: list = []
    roots: list = []
    for line in sys.stdin:
        words = line.split()
        try:
            if words[0] == "open":
                for _ in range(int(words[1])):
                    conn = pynto.connect(address, timeout=60, tls=tls)
                    conns.append(conn)
                    roots.append(conn.root)
                print(f"opened {len(conns)}", flush=True)
            elif words[0] in ("call", "all"):
                k = len(roots) if words[0] == "all" else min(int(words[1]), len(roots))
                step = max(1, len(roots) // max(k, 1))
                picked = roots[::step][:k]
                for i, root in enumerate(picked):
                    if root.echo(i) != i:
                        raise AssertionError(f"connection {i} answered wrongly")
                print(f"called {len(picked)}", flush=True)
        except Exception as e:  # reported to the test, which fails with it
            print(f"failed {type(e).__name__}: {e}", flush=True)
    for conn in conns:
        conn.close()


if __name__ == "__main__":
    main()
