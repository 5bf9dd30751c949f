"""Every example runs, exits 0 and shows what it is about. Examples are documentation."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import EXAMPLES_DIR

EXAMPLES = sorted(path.name for path in EXAMPLES_DIR.glob("*.py"))

# A line (or fragment) each example must print: proof it did what it says.
EXPECTED = {
    "chat.py": ["[ann] hi bob!", "[bob] hello ann", "* bob left", "mallory: wrong user"],
    "classic_math.py": ["math.pow(3, 2) = 9.0"],
    "file_monitor.py": ["sizes reported: [5, 12, 14]"],
    "file_server.py": ["read remotely: 'first line\\nsecond line\\n'", "line 2: second line",
                       "removed: True"],
    "teleport.py": ["digest: ", "closure refused:"],
    "time_service.py": ["server says: pynto: serving TimeService on tcp://", "not exposed:"],
    "tour.py": ["modules.math.pow(3, 2) = 9.0", "remote map with a local callback: [10, 20, 30] | ran on: {'MainThread'}",
                "a remote KeyError: KeyError('missing')", "awaited in asyncio: [2.0, 3.0, 4.0]"],
}


def test_every_example_is_checked():
    assert EXAMPLES == sorted(EXPECTED)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs(name):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES_DIR / name)],
        capture_output=True, text=True, timeout=50, cwd=EXAMPLES_DIR,
    )
    assert result.returncode == 0, result.stderr
    for fragment in EXPECTED[name]:
        assert fragment in result.stdout, (fragment, result.stdout, result.stderr)
