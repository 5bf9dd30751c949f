"""The package as users see it: ``pynto.__version__``, ``dir(pynto)``, and the typed signatures
that let ``mypy --strict`` catch a wrong address or a misspelled policy keyword."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path


import pynto

REPO = Path(__file__).resolve().parents[2]


def _cargo_version() -> str:
    workspace = tomllib.loads((REPO / "Cargo.toml").read_text())
    return workspace["workspace"]["package"]["version"]


def test_version_is_the_cargo_version() -> None:
    assert isinstance(pynto.__version__, str)
    assert pynto.__version__ == _cargo_version()


def test_dir_shows_the_public_api_only() -> None:
    names = dir(pynto)
    assert names == sorted([*pynto.__all__, "__version__"])
    assert not [n for n in names if n.startswith("_") and n != "__version__"]
    # Implementation modules are still importable, just not listed.
    assert "atexit" not in names and "_connection" not in names
    for name in pynto.__all__:
        assert hasattr(pynto, name), name


def test_all_has_no_duplicates() -> None:
    assert len(pynto.__all__) == len(set(pynto.__all__))


def _mypy(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "example.py").write_text(textwrap.dedent(source))
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--no-error-summary",
         "example.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )


def test_mypy_strict_reports_a_port_as_address_and_a_misspelled_policy_keyword(tmp_path: Path) -> None:
    result = _mypy(tmp_path, """\
        import pynto

        conn = pynto.connect(12345)
        other = pynto.connect("localhost:18812", allow_pikle=True)
        server = pynto.Server(pynto.Service, allow_setatr=True)
        pair = pynto.connect_thread(rebuild_exception=True)
        """)
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert 'example.py:3: error: Argument 1 to "connect" has incompatible type "int"' in out, out
    assert 'example.py:4: error: Unexpected keyword argument "allow_pikle" for "connect"' in out, out
    assert 'example.py:5: error: Unexpected keyword argument "allow_setatr" for "Server"' in out, out
    assert 'example.py:6: error: Unexpected keyword argument "rebuild_exception"' in out, out


def test_mypy_strict_accepts_correct_calls(tmp_path: Path) -> None:
    result = _mypy(tmp_path, """\
        import pynto


        def main() -> None:
            with pynto.connect("localhost:18812", timeout=5.0, allow_pickle=True) as conn:
                print(conn.ping(), pynto.__version__)
            with pynto.connect(("localhost", 18812), token="secret") as conn2:
                conn2.close()
            with pynto.connect("localhost", 18812, tls=pynto.TLS(ca="ca.pem")) as conn3:
                conn3.close()
            server = pynto.Server(pynto.Service, port=0, allow_public_attrs=True, allow_setattr=True)
            server.close()
            pair = pynto.connect_thread(rebuild_exceptions=True, allow_delattr=False)
            pair.close()
            child = pynto.connect_subprocess(allow_pickle=True)
            child.close()
        """)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""



def test_every_python_helper_the_compiled_module_calls_exists() -> None:
    # The compiled module calls into this package (and the standard library) by name, from one
    # table resolved on first use; a helper renamed or moved is listed here.
    assert pynto._pynto._check_helpers() == []


def test_operator_codes_are_pynto_protos_with_pythons_names() -> None:
    import operator

    from pynto import _opcodes

    # The codes are pynto-proto's, read from the compiled module: dense from 0.
    assert sorted(_opcodes.COMPARE.values()) == list(range(6))
    assert sorted(_opcodes.UNARY.values()) == list(range(len(_opcodes.UNARY)))
    operators = {code for code, _ in _opcodes.BINARY.values()}
    assert operators == set(range(len(operators)))
    # The names are the data model's: every comparison is an `object` method, every plain and
    # in-place operator is an `operator` function, every reflected one mirrors a plain one.
    assert all(hasattr(object, name) for name in _opcodes.COMPARE)
    for name, (code, form) in _opcodes.BINARY.items():
        if form == _opcodes.REFLECTED:
            assert _opcodes.BINARY["__" + name[3:]] == (code, _opcodes.PLAIN)
        elif name != "__divmod__":
            assert hasattr(operator, name), name
    assert "__idivmod__" not in _opcodes.BINARY
    samples = (1, 1.5, 1j, [], iter([]))
    for name in _opcodes.UNARY:
        assert any(hasattr(type(s), name) for s in samples), name
