"""``python -m pynto serve`` and ``python -m pynto shell``."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import pytest

import pynto
from helpers import TESTS_DIR, ServerProcess, child_env

SERVING = re.compile(r"^pynto: serving (\S+) on (tcp://127\.0\.0\.1:(\d+)|unix://\S+|stdio)$")


def output_words(text: str) -> list[str]:
    """The words a console printed, without its prompts."""
    return [word for word in text.split() if word not in (">>>", "...")]


def run_pynto(*args: str, input: str | None = None, env: dict[str, str] | None = None,
              timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pynto", *args],
        input=input, capture_output=True, text=True, timeout=timeout,
        env=env or child_env(), cwd=TESTS_DIR,
    )


def test_serve_classic_prints_the_line(classic_server):
    match = SERVING.match(classic_server.line)
    assert match, classic_server.line
    assert match.group(1) == "classic"
    assert int(match.group(3)) > 0


def test_serve_service_prints_its_name(service_server):
    match = SERVING.match(service_server.line)
    assert match, service_server.line
    assert match.group(1) == "SampleService"


def test_serve_unix(unix_server):
    match = SERVING.match(unix_server.line)
    assert match and match.group(2).startswith("unix:///")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_serve_stops_cleanly_on_signals(signum):
    with ServerProcess("--classic", "--port", "0") as server:
        conn = pynto.connect(server.address)
        try:
            assert conn.eval("1 + 1") == 2
            assert server.signal(signum) == 0
            with pytest.raises(pynto.ConnectionClosed):
                conn.eval("1 + 1")
        finally:
            conn.close()
    with pytest.raises(OSError):
        pynto.connect(server.address)


def test_serve_stops_cleanly_when_idle():
    with ServerProcess("--service", "services:SampleService", "--port", "0") as server:
        assert server.signal(signal.SIGTERM) == 0


def test_classic_refuses_a_non_loopback_host():
    result = run_pynto("serve", "--classic", "--host", "0.0.0.0", "--port", "0")
    assert result.returncode == 2
    assert "pynto: serving" not in result.stdout
    assert "--allow-remote-classic" in result.stderr


def test_token_env_must_be_set():
    env = child_env()
    env.pop("PYNTO_TEST_UNSET_TOKEN", None)
    result = run_pynto("serve", "--classic", "--port", "0", "--token-env",
                       "PYNTO_TEST_UNSET_TOKEN", env=env)
    assert result.returncode == 2
    assert "PYNTO_TEST_UNSET_TOKEN" in result.stderr
    assert "pynto: serving" not in result.stdout


@pytest.mark.parametrize("spec", ["services", "services:NoSuchService", "no_such_module:X"])
def test_bad_service_spec(spec):
    result = run_pynto("serve", "--service", spec, "--port", "0")
    assert result.returncode == 2
    assert spec.split(":")[0] in result.stderr


@pytest.mark.parametrize("args", [[], ["serve"], ["serve", "--classic", "--service", "a:B"],
                                  ["serve", "--classic", "--tls-cert", "only-cert.pem"]])
def test_usage_errors(args):
    result = run_pynto(*args)
    assert result.returncode == 2
    assert "usage" in result.stderr.lower() or "error" in result.stderr.lower()


def test_serve_stdio_announces_on_stderr():
    result = run_pynto("serve", "--classic", "--stdio", input="")
    assert "pynto: serving classic on stdio" in result.stderr.splitlines()
    assert "pynto: serving" not in result.stdout
    assert result.returncode == 0


def test_shell_on_a_classic_server(classic_server):
    result = run_pynto(
        "shell", classic_server.address,
        input="print(modules.math.pow(3, 2))\nprint(root.eval('40 + 2'))\n"
              "print(conn.modules.os.getpid())\n",
    )
    assert result.returncode == 0, result.stderr
    lines = output_words(result.stdout)
    assert "9.0" in lines
    assert "42" in lines
    assert str(classic_server.proc.pid) in lines


def test_shell_on_a_service_server(service_server):
    result = run_pynto(
        "shell", service_server.address,
        input="print(root.double(21))\nprint('modules' in dir())\n",
    )
    assert result.returncode == 0, result.stderr
    assert output_words(result.stdout) == ["42", "False"]


def test_shell_with_token():
    env = child_env(PYNTO_TEST_TOKEN="shell-token")
    with ServerProcess("--classic", "--port", "0", "--token-env", "PYNTO_TEST_TOKEN",
                       env=env) as server:
        result = run_pynto("shell", server.address, "--token-env", "PYNTO_TEST_TOKEN",
                           input="print(6 * modules.math.factorial(3))\n", env=env)
        assert result.returncode == 0, result.stderr
        assert output_words(result.stdout) == ["36"]
