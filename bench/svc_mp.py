"""The multiprocessing.managers benchmark server (run by bench/server.py; stdlib only).

One shared object registered as `root`: a client's `manager.root()` returns an AutoProxy to it,
whose method calls go over the client's connection. The proxies expose methods only, so there
is no attribute read (S2) and no callback (S4: a local function does not pickle).
"""

from multiprocessing.managers import BaseManager

from svc_common import plain_methods

AUTHKEY = b"pynto-bench"

Bench = type("Bench", (), plain_methods())
_ROOT = Bench()


class Manager(BaseManager):
    pass


Manager.register("root", callable=lambda: _ROOT)


def serve(port, ready):
    server = Manager(address=("127.0.0.1", port), authkey=AUTHKEY).get_server()
    ready(server.address[1])
    server.serve_forever()
