"""The smallest useful service: a clock that other processes can read.

The service is an ordinary class; members named ``exposed_...`` are what clients may call.
This file is both the service's module and its client: ``main()`` serves ``TimeService``
with the command line (``python -m pynto serve --service time_service:TimeService``) and
then calls it.
"""

import os
import subprocess
import sys
import time

import pynto


class TimeService(pynto.Service):
    def exposed_get_time(self) -> float:
        """Seconds since the epoch, by the server's clock."""
        return time.time()

    def exposed_get_ctime(self) -> str:
        return time.ctime()

    def clock_internals(self) -> str:
        """Not exposed: clients cannot call this."""
        return "internal"


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    server = subprocess.Popen(
        [sys.executable, "-m", "pynto", "serve", "--service", "time_service:TimeService",
         "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=here,  # so that the server can import time_service
    )
    try:
        line = server.stdout.readline()
        print("server says:", line.strip())
        address = line.rsplit(" on ", 1)[1].strip()

        with pynto.connect(address) as conn:
            clock = conn.root
            remote = clock.get_time()
            print("server time:", time.strftime("%H:%M:%S", time.localtime(remote)))
            print("server ctime:", clock.get_ctime())
            print(f"clocks differ by {abs(remote - time.time()):.3f} s")
            try:
                clock.clock_internals()
            except pynto.AccessDenied as exc:
                print("not exposed:", str(exc).splitlines()[0])
    finally:
        server.terminate()
        server.wait()
        server.stdout.close()


if __name__ == "__main__":
    main()
