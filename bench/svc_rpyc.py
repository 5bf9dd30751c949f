"""The RPyC benchmark service and server (run by bench/server.py with target/bench-venv)."""

import rpyc
from rpyc.utils.server import ThreadedServer

from svc_common import BenchMixin


class Bench(BenchMixin, rpyc.Service):
    pass


def serve(port, ready):
    # RPyC's own threaded server; pickling allowed so that `rpyc.classic.obtain` can be measured.
    server = ThreadedServer(
        Bench, hostname="127.0.0.1", port=port, protocol_config={"allow_pickle": True}
    )
    ready(server.port)
    server.start()
