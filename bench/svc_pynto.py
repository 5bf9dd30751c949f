"""The pynto benchmark service and server (run by bench/server.py with target/venv)."""

import pynto

from svc_common import BenchMixin


class Bench(BenchMixin, pynto.Service):
    pass


def serve(port, ready):
    # Pickling allowed so that `pynto.obtain` can be measured.
    server = pynto.Server(Bench, host="127.0.0.1", port=port, allow_pickle=True)
    ready(server.port)
    server.serve_forever()
