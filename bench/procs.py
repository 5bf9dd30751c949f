"""Process helpers shared by bench/run.py and bench/curves.py."""

import subprocess


def read_line(proc, timeout):
    """The first stdout line of `proc`, or '' after `timeout` seconds."""
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    if sel.select(timeout):
        return proc.stdout.readline().strip()
    return ""


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
