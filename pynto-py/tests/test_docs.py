"""Every ``python`` code block of the documentation (docs/*.md and README.md) runs.

Blocks fenced ``py`` instead need services a page cannot start by itself (an etcd cluster, an
SSH host): docs/discovery.md and docs/ssh.md; test_etcd.py, test_pool.py and test_ssh.py run
the same calls against real ones.

Each page's blocks run in order, in one namespace, in a child process of their own, against
real servers: a classic server process the test starts stands in for ``localhost:18812`` (the
address the pages use), and TLS certificates made with openssl sit in the working directory
(``ca.pem``, ``server.pem``/``server.key``, ``client.pem``/``client.key``). A traceback points
at the page and line of the failing block.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ServerProcess, child_env

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
#: The address the pages connect to; the test puts its own server's address in its place.
DOC_ADDRESS = "localhost:18812"
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def pages() -> list[Path]:
    return sorted(DOCS.glob("*.md")) + [REPO / "README.md"]


def blocks(page: Path) -> list[tuple[int, str]]:
    """The ``python`` blocks of `page`: (line of the block's first line, source)."""
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start(1)) + 1
        found.append((line, match.group(1)))
    return found


# The blocks run in this script's own globals, which are `__main__`'s, as in a user's script
# (classes they define are then importable as `__main__.Name`).
RUNNER = """\
import sys as _sys
for _line, _source in _BLOCKS:
    _source = _source.replace({doc_address!r}, _sys.argv[2])
    # Blank lines in front, so a traceback names the line of the page.
    exec(compile("\\n" * (_line - 1) + _source, _sys.argv[1], "exec"), globals())
"""


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with a CA, a server certificate for 127.0.0.1/localhost and a client one."""
    if shutil.which("openssl") is None:
        pytest.fail("the documentation's TLS examples need the openssl command (.ci/run installs it)")
    d = tmp_path_factory.mktemp("docs")
    (d / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    (d / "client.ext").write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=pynto docs CA", cwd=d)
    for name in ("server", "client"):
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
                 cwd=d)
    return d


def test_the_guide_has_examples() -> None:
    """The pages this test is about exist and have examples (so it cannot pass on nothing)."""
    names = {p.name for p in pages() if blocks(p)}
    for expected in ("getting-started.md", "classic.md", "services.md", "callbacks.md", "async.md",
                     "errors.md", "security.md", "transports.md", "cli.md", "README.md"):
        assert expected in names, f"{expected} has no python example"


@pytest.mark.timeout(180)
@pytest.mark.parametrize("page", [p for p in pages() if blocks(p)], ids=lambda p: p.name)
def test_examples_run(page: Path, classic_server: ServerProcess, workdir: Path) -> None:
    address = classic_server.address.removeprefix("tcp://")
    script = workdir / f"run_{page.stem}.py"
    script.write_text(
        f"_BLOCKS = {blocks(page)!r}\n"
        + RUNNER.format(doc_address=DOC_ADDRESS))
    result = subprocess.run(
        [sys.executable, str(script), str(page), address],
        cwd=workdir, env=child_env(), capture_output=True, text=True, timeout=150)
    assert result.returncode == 0, (
        f"an example of {page.relative_to(REPO)} failed:\n{result.stderr}\n{result.stdout}")


def test_examples_use_the_documented_address() -> None:
    """Pages name the server as ``localhost:18812`` (the default port), which the test replaces;
    another literal address would reach no server."""
    for page in pages():
        for line, source in blocks(page):
            for address in re.findall(r"\"(?:tcp://)?(?:localhost|127\.0\.0\.1):(\d+)\"", source):
                assert address == "18812", f"{page.name}:{line}: port {address}"


def test_relative_links_resolve() -> None:
    """Links from the README and the pages to files of the repository lead somewhere (a clone
    has no ../shared/)."""
    link = re.compile(r"\]\(([^)\s]+)\)")
    for page in pages() + [REPO / "ARCHITECTURE.md"]:
        for target in link.findall(page.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#", 1)[0]).resolve()
            assert path.exists(), f"{page.relative_to(REPO)} links to {target}, which does not exist"
            assert REPO in path.parents, f"{page.relative_to(REPO)} links outside the repository: {target}"


def test_reference_documents_names_that_land_later() -> None:
    """docs/conf.py adds to the reference every public name the page leaves out, so a name
    added to ``pynto.__all__`` is documented (and its docstring checked by the -W build)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("pynto_docs_conf", DOCS / "conf.py")
    assert spec is not None and spec.loader is not None
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    page = (DOCS / "reference.md").read_text()
    source = [page.replace(".. autofunction:: pynto.connect\n", "")]
    conf._add_late_names(None, "reference", source)
    assert "## Other names" in source[0] and ".. autofunction:: pynto.connect\n" in source[0]
    source = [page]
    conf._add_late_names(None, "getting-started", source)
    assert source == [page]
