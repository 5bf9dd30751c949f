"""``pynto.connect_ssh`` through a real sshd on 127.0.0.1 (Debian's openssh-server), started by
the test with its own host key, user key and config; it fails (not skips) without sshd."""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Iterator

import pytest

import pynto
import pynto._ssh
from etcd_server import free_port
from helpers import wait_until
from pynto._ssh import SSHError, package_zip

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


class SSHServer:
    """``sshd -D`` on a free port of 127.0.0.1, accepting only the key it made."""

    def __init__(self, directory: Path) -> None:
        if not Path(SSHD).exists():
            raise RuntimeError("sshd is not installed (Debian: apt-get install openssh-server; .ci/run does it)")
        self.directory = directory
        self.user = getpass.getuser()
        host_key = directory / "host_key"
        self.key = directory / "user_key"
        for key in (host_key, self.key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        (directory / "authorized_keys").write_text(Path(f"{self.key}.pub").read_text())
        # sshd refuses to start without its privilege separation directory.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.port = free_port()
        config = directory / "sshd_config"
        config.write_text(
            f"Port {self.port}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {host_key}\n"
            f"PidFile {directory / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {directory / 'authorized_keys'}\n"
            "PermitRootLogin prohibit-password\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "UsePAM no\n"
            "StrictModes no\n"
        )
        self.log = open(directory / "sshd.log", "wb")
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=self.log, stderr=subprocess.STDOUT)
        self.options = [
            "-F", "/dev/null",
            "-p", str(self.port),
            "-i", str(self.key),
            "-o", "IdentitiesOnly=yes",
            "-o", "StrictHostKeyChecking=no",
            "-o", f"UserKnownHostsFile={directory / 'known_hosts'}",
            "-o", "LogLevel=ERROR",
        ]
        self.destination = f"{self.user}@127.0.0.1"
        deadline = time.monotonic() + 30
        while self.run("true").returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sshd did not start: {(directory / 'sshd.log').read_text()[-2000:]}")
            time.sleep(0.2)

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ssh", "-T", "-o", "BatchMode=yes", *self.options, self.destination, command],
            capture_output=True, text=True, timeout=60,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.log.close()


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    server = SSHServer(tmp_path_factory.mktemp("sshd"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The python of a fresh venv without pynto."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    probe = subprocess.run([python, "-c", "import pynto"], capture_output=True, text=True, cwd="/")
    assert probe.returncode != 0 and "No module named 'pynto'" in probe.stderr
    return python


def deploy_dirs() -> set[str]:
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    return {p.name for p in tmp.glob("pynto-deploy.*")}


def test_connect_ssh_to_a_host_with_pynto(sshd):
    with pynto.connect_ssh(sshd.destination, python=sys.executable, ssh_options=sshd.options) as conn:
        remote_pid = conn.modules.os.getpid()
        assert remote_pid != os.getpid()
        assert conn.modules.sys.executable == sys.executable
        # The server's parent is the session's shell or sshd: it runs on the far side of ssh.
        assert conn.modules.os.getppid() != os.getpid()
        assert conn.eval("6 * 7") == 42
        assert conn.process is not None and conn.process.args[0] == "ssh"
    assert conn.closed
    # The remote server ended with the session.
    assert wait_until(lambda: sshd.run(f"kill -0 {remote_pid}").returncode != 0, 10)


def test_connect_ssh_says_when_pynto_is_missing(sshd, bare_python):
    with pytest.raises(SSHError, match="pynto is not installed for .* there; deploy=True copies it over"):
        pynto.connect_ssh(sshd.destination, python=bare_python, ssh_options=sshd.options)


def test_deploy_into_a_fresh_venv_and_remove_it_at_close(sshd, bare_python):
    before = deploy_dirs()
    conn = pynto.connect_ssh(sshd.destination, python=bare_python, deploy=True, ssh_options=sshd.options)
    try:
        assert conn.modules.sys.executable == bare_python
        remote_file = conn.modules.pynto.__file__
        (directory,) = deploy_dirs() - before
        assert remote_file.endswith(f"/{directory}/lib/pynto/__init__.py")
        assert conn.modules.pynto.PROTOCOL_VERSION == pynto.PROTOCOL_VERSION
        assert conn.modules.math.sqrt(16.0) == 4.0
    finally:
        conn.close()
    assert deploy_dirs() == before, "the deploy directory was left behind"
    # The venv itself is untouched.
    probe = subprocess.run([bare_python, "-c", "import pynto"], capture_output=True, cwd="/")
    assert probe.returncode != 0


def test_deploy_a_given_wheel(sshd, bare_python, tmp_path):
    wheel = tmp_path / "pynto_rpc-0-cp311-abi3-linux_x86_64.whl"
    wheel.write_bytes(package_zip())
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "pynto/__init__.py" in names and any(n.startswith("pynto/_pynto") for n in names)
    assert not any("__pycache__" in n for n in names)
    before = deploy_dirs()
    with pynto.connect_ssh(sshd.destination, python=bare_python, deploy=True, wheel=wheel, ssh_options=sshd.options) as conn:
        assert conn.eval("__import__('pynto').__file__").endswith("/lib/pynto/__init__.py")
    assert deploy_dirs() == before


def test_deploy_is_skipped_when_pynto_is_there(sshd):
    before = deploy_dirs()
    with pynto.connect_ssh(sshd.destination, python=sys.executable, deploy=True, ssh_options=sshd.options) as conn:
        assert deploy_dirs() == before
        assert conn.modules.pynto.__file__ == pynto.__file__


def test_ssh_failures_are_reported(sshd, tmp_path):
    closed_port = ["-F", "/dev/null", "-p", str(free_port()), *sshd.options[4:]]
    with pytest.raises(SSHError, match="ssh .*127.0.0.1.*refused"):
        pynto.connect_ssh(sshd.destination, python=sys.executable, ssh_options=closed_port)
    with pytest.raises(SSHError, match="failed \\(exit status 127\\)"):
        pynto.connect_ssh(sshd.destination, python=str(tmp_path / "no-python"), ssh_options=sshd.options)
    with pytest.raises(ValueError, match="not an ssh destination"):
        pynto.connect_ssh("-oProxyCommand=evil")
    with pytest.raises(SSHError, match="cannot run the ssh client"):
        pynto.connect_ssh(sshd.destination, ssh=str(tmp_path / "no-ssh"))


def test_deploy_refuses_a_remote_of_another_platform(sshd, bare_python, monkeypatch):
    # Pretend this process's pynto was built elsewhere: its extension module could not load there.
    monkeypatch.setattr(pynto._ssh, "_local_platform", lambda: "plan9 mips")
    with pytest.raises(SSHError, match="this pynto is built for plan9 mips, the remote is linux .*; pass wheel="):
        pynto.connect_ssh(sshd.destination, python=bare_python, deploy=True, ssh_options=sshd.options)
