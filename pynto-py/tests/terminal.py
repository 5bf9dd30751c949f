"""A child process on a pseudo-terminal, typed at and read like a person would."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from typing import Sequence

from helpers import TESTS_DIR, child_env


class Terminal:
    """Runs ``argv`` with a pseudo-terminal as its stdin, stdout and stderr."""

    def __init__(self, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.master, slave = pty.openpty()
        environment = env or child_env()
        environment.setdefault("TERM", "dumb")
        self.proc = subprocess.Popen(
            list(argv), stdin=slave, stdout=slave, stderr=slave, env=environment,
            cwd=TESTS_DIR, start_new_session=True,
        )
        os.close(slave)
        self.output = ""

    def _read_some(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(self.master, 65536)
        except OSError:  # the child closed the terminal
            return False
        if not data:
            return False
        self.output += data.decode("utf-8", "replace").replace("\r\n", "\n")
        return True

    def expect(self, pattern: str, timeout: float = 20.0, since: int = 0) -> re.Match:
        """Wait until the output from `since` (default: the start) matches `pattern` (a regex);
        return the match."""
        deadline = time.monotonic() + timeout
        while True:
            match = re.compile(pattern).search(self.output, since)
            if match:
                return match
            left = deadline - time.monotonic()
            if left <= 0 or (not self._read_some(min(left, 0.5)) and self.proc.poll() is not None
                             and not self._read_some(0.1)):
                raise AssertionError(f"{pattern!r} not seen; the terminal shows:\n{self.output}")

    def end_input(self, prompt: str = ">>> ") -> None:
        """Wait for the next `prompt` after the last output seen, then type Ctrl-D. (Typed
        earlier, it could be discarded while readline sets the terminal up.)"""
        self.expect(re.escape(prompt) + "$", since=max(0, self.mark() - len(prompt)))
        self.send("\x04")

    def type_line(self, text: str) -> None:
        """Type `text` and Enter, then wait for the console's next prompt (``>>>``, ``...`` or
        ``(Pdb)``), so nothing is typed ahead of what the console is ready to read."""
        start = self.mark()
        self.line(text)
        self.expect(r"(>>> |\.\.\. |\(Pdb\) )$", since=start)

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def line(self, text: str) -> None:
        self.send(text + "\n")

    def mark(self) -> int:
        """Where the output ends now (to look only at what comes after)."""
        return len(self.output)

    def wait(self, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._read_some(0.2)
        while self._read_some(0.1):
            pass
        return self.proc.wait(max(0.1, deadline - time.monotonic()))

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        os.close(self.master)

    def __enter__(self) -> "Terminal":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def python(*args: str) -> list[str]:
    """The command line of this interpreter with `args`."""
    return [sys.executable, *args]
