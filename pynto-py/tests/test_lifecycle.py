"""A process using pynto exits cleanly: pynto's threads stop entering Python once the
interpreter shuts down, whatever is still in flight."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import child_env

CLIENT = """
import sys, pynto
conn = pynto.connect(sys.argv[1])
for _ in range(50):
    conn.root.echo(1)
result = pynto.async_(conn.root.echo)(2)
result.add_callback(lambda r: None)
result.wait()
pynto.async_(conn.root.sleep)(0.2)   # still in flight at exit
if sys.argv[2] == "close":
    conn.close()
"""


def test_clients_exit_cleanly_with_calls_in_flight(service_server):
    for i in range(8):
        mode = "close" if i % 2 else "leave-open"
        result = subprocess.run(
            [sys.executable, "-c", CLIENT, service_server.address, mode],
            capture_output=True, text=True, timeout=30, env=child_env(),
        )
        assert result.returncode == 0, (mode, result.stderr)
        assert "panicked" not in result.stderr, result.stderr


def test_a_signal_interrupts_a_waiting_call_and_the_connection_stays(svc):
    import signal

    def handler(*_):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    try:
        with pytest.raises(KeyboardInterrupt):
            svc.root.sleep(10)  # far longer than the alarm
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert svc.root.echo("after") == "after"
