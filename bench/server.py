"""Start one benchmark server: `python bench/server.py pynto|rpyc|pyro5|mpm|pyfloor [--port P]`.

Prints `READY <port>` on stdout once it accepts connections, then serves until killed.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def ready(port):
    print(f"READY {port}", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("impl", choices=["pynto", "rpyc", "pyro5", "mpm", "pyfloor"])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if args.impl == "pynto":
        import svc_pynto as svc
    elif args.impl == "rpyc":
        import svc_rpyc as svc
    elif args.impl == "pyro5":
        import svc_pyro5 as svc
    elif args.impl == "mpm":
        import svc_mp as svc
    else:
        import pyfloor as svc
    svc.serve(args.port, ready)


if __name__ == "__main__":
    main()
