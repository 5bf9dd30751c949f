//! `cargo xtask wheel`: the release wheel and sdist of pynto-py, and the test-all step that
//! installs that wheel into a fresh venv of every CPython 3.11+ on the machine.
//!
//! The wheel is built by maturin with zig as the linker (`ziglang` from PyPI) against the
//! manylinux2014 baseline (glibc 2.17), so it installs on older Linux than the build machine's,
//! and stripped (the release profile keeps line tables for profiling; a shipped wheel does not
//! need them). One abi3 wheel serves every CPython from 3.11 up.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{describe, run, Ctx, Failure, Venv};

/// The build tools, pinned so a wheel built today is built the same way tomorrow.
const WHEEL_TOOLS: &[&str] = &["maturin==1.16.0", "ziglang==0.15.2"];
/// The oldest Linux the wheel installs on: glibc 2.17 (manylinux2014).
const COMPATIBILITY: &str = "manylinux2014";
/// A wheel must stay under this (the target; an unstripped one is ~20 MB).
const MAX_WHEEL_BYTES: u64 = 8 * 1024 * 1024;
/// The CPython minor versions looked for; 3.11 must be there, later ones are used if found.
const REQUIRED_MINOR: u32 = 11;
const LOOKED_FOR_MINORS: std::ops::RangeInclusive<u32> = 11..=20;
/// Minor versions whose absence is reported (the machine is expected to have them).
const EXPECTED_MINORS: &[u32] = &[12, 13];

/// What `cargo xtask wheel` produced.
pub(crate) struct Built {
    pub wheel: PathBuf,
    pub sdist: PathBuf,
}

pub(crate) fn wheel_cmd(ctx: &Ctx) -> Result<(), Failure> {
    let built = build(ctx).map_err(|e| Failure::Message(format!("xtask wheel: {e}")))?;
    println!("xtask wheel: {}", built.wheel.display());
    println!("xtask wheel: {}", built.sdist.display());
    Ok(())
}

/// test-all step: build the wheel and the sdist, then install the wheel into a fresh venv of
/// each CPython 3.11+ found and run the smoke test there.
pub(crate) fn wheel_step(ctx: &Ctx) -> Result<(), String> {
    // Look for the interpreters first: a machine without 3.11 fails before a long build.
    let pythons = find_pythons()?;
    let built = build(ctx)?;
    let version = workspace_version(&ctx.root)?;
    let venvs = ctx.root.join("target/wheel-venvs");
    for python in &pythons {
        println!(
            "\n-- CPython {}.{} ({})",
            python.major,
            python.minor,
            python.path.display()
        );
        let dir = venvs.join(format!("py{}.{}", python.major, python.minor));
        if dir.exists() {
            fs::remove_dir_all(&dir)
                .map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
        }
        run(Command::new(&python.path).arg("-m").arg("venv").arg(&dir))?;
        let venv_python = dir.join("bin/python");
        run(Command::new(&venv_python)
            .args(["-m", "pip", "install", "--quiet", "--no-index"])
            .arg(&built.wheel))?;
        // From a directory outside the checkout, so the installed package is the one imported.
        run(Command::new(&venv_python)
            .arg(ctx.root.join("pynto-py/tests/wheel_smoke.py"))
            .arg(&version)
            .current_dir(&dir)
            .env_remove("PYTHONPATH")
            .env_remove("PYTHONHOME"))?;
    }
    println!(
        "\nxtask wheel: {} installed and smoke-tested on CPython {}",
        file_name(&built.wheel),
        pythons
            .iter()
            .map(|p| format!("{}.{}", p.major, p.minor))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// Build the wheel and sdist into target/wheels (emptied first) and check what came out.
fn build(ctx: &Ctx) -> Result<Built, String> {
    let venv = tools_venv(ctx)?;
    let out = ctx.root.join("target/wheels");
    if out.exists() {
        fs::remove_dir_all(&out).map_err(|e| format!("cannot empty {}: {e}", out.display()))?;
    }
    let maturin = venv.dir.join("bin/maturin");
    run(venv
        .command(&ctx.root, &maturin)
        .args(["build", "--release", "--strip", "--zig", "--compatibility"])
        .arg(COMPATIBILITY)
        .arg("--out")
        .arg(&out)
        .args(["-m", "pynto-py/Cargo.toml"]))?;
    run(venv
        .command(&ctx.root, &maturin)
        .arg("sdist")
        .arg("--out")
        .arg(&out)
        .args(["-m", "pynto-py/Cargo.toml"]))?;

    let wheel = only_file(&out, ".whl")?;
    let sdist = only_file(&out, ".tar.gz")?;
    let name = file_name(&wheel);
    check_wheel_name(&name)?;
    let size = fs::metadata(&wheel)
        .map_err(|e| format!("cannot read {}: {e}", wheel.display()))?
        .len();
    println!(
        "wheel: {name}, {:.2} MB (limit {:.0} MB)",
        mb(size),
        mb(MAX_WHEEL_BYTES)
    );
    if size >= MAX_WHEEL_BYTES {
        return Err(format!(
            "{name} is {:.2} MB, over the {:.0} MB limit (is it stripped?)",
            mb(size),
            mb(MAX_WHEEL_BYTES)
        ));
    }
    check_sdist(&sdist)?;
    println!("sdist: {}", file_name(&sdist));
    Ok(Built { wheel, sdist })
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The one file in `dir` whose name ends with `suffix`.
fn only_file(dir: &Path, suffix: &str) -> Result<PathBuf, String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| file_name(p).ends_with(suffix))
        .collect();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(format!(
            "expected one {suffix} file in {}, found {}",
            dir.display(),
            found.len()
        )),
    }
}

/// The wheel must be tagged for manylinux (not `linux_x86_64`, which PyPI and older systems
/// refuse) and for the stable ABI from CPython 3.11.
fn check_wheel_name(name: &str) -> Result<(), String> {
    let stem = name
        .strip_suffix(".whl")
        .ok_or_else(|| format!("{name} is not a wheel"))?;
    let parts: Vec<&str> = stem.split('-').collect();
    let [.., python, abi, platform] = parts.as_slice() else {
        return Err(format!("{name}: not a wheel file name"));
    };
    if !platform.split('.').all(|p| p.starts_with("manylinux")) {
        return Err(format!(
            "{name}: platform tag `{platform}` is not manylinux"
        ));
    }
    if *python != "cp311" || *abi != "abi3" {
        return Err(format!(
            "{name}: expected the cp311-abi3 tags, found {python}-{abi}"
        ));
    }
    Ok(())
}

/// Files an sdist cannot build or describe itself without.
const SDIST_MUST_HAVE: &[&str] = &[
    "PKG-INFO",
    "pyproject.toml",
    "README.md",
    "Cargo.toml",
    "Cargo.lock",
    "pynto-py/Cargo.toml",
    "pynto-py/src/lib.rs",
    "python/pynto/__init__.py",
    "python/pynto/py.typed",
];

/// The sdist holds the workspace crates pynto-py needs, the package and the README.
fn check_sdist(sdist: &Path) -> Result<(), String> {
    let output = Command::new("tar")
        .arg("tzf")
        .arg(sdist)
        .output()
        .map_err(|e| format!("cannot run tar to list {}: {e}", sdist.display()))?;
    if !output.status.success() {
        return Err(format!("tar cannot list {}", sdist.display()));
    }
    let listing = String::from_utf8_lossy(&output.stdout);
    let files: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_once('/').map(|(_, rest)| rest))
        .collect();
    let missing: Vec<&str> = SDIST_MUST_HAVE
        .iter()
        .copied()
        .filter(|f| !files.contains(f))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("{} lacks {}", file_name(sdist), missing.join(", ")))
    }
}

/// The workspace version from Cargo.toml's `[workspace.package]`.
fn workspace_version(root: &Path) -> Result<String, String> {
    let text = fs::read_to_string(root.join("Cargo.toml"))
        .map_err(|e| format!("cannot read Cargo.toml: {e}"))?;
    let mut in_package = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[workspace.package]";
        } else if in_package {
            if let Some(value) = line.strip_prefix("version") {
                let value = value.trim_start().trim_start_matches('=').trim();
                return Ok(value.trim_matches('"').to_string());
            }
        }
    }
    Err("Cargo.toml has no version in [workspace.package]".to_string())
}

/// The venv whose maturin and zig build the wheel: target/venv, with the pinned tools.
fn tools_venv(ctx: &Ctx) -> Result<Venv, String> {
    let dir = ctx.root.join("target/venv");
    let bin = dir.join("bin");
    let python = bin.join("python");
    if !python.exists() {
        run(Command::new("python3")
            .args(["-m", "venv"])
            .arg(&dir)
            .current_dir(&ctx.root))?;
    }
    let mut path = OsString::from(bin.as_os_str());
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    let venv = Venv { python, dir, path };
    venv.ensure_pinned(&ctx.root, WHEEL_TOOLS)?;
    Ok(venv)
}

/// One CPython interpreter found on this machine.
struct Python {
    path: PathBuf,
    major: u32,
    minor: u32,
}

/// Every CPython 3.11+ on this machine that can make a venv: one per minor version, from
/// `python3.M` on PATH or a pyenv install. 3.11 missing is an error; 3.12 or 3.13 missing is
/// said (CI machines are fresh, so nothing is assumed).
fn find_pythons() -> Result<Vec<Python>, String> {
    let mut found = Vec::new();
    for minor in LOOKED_FOR_MINORS {
        let candidates = candidates(minor);
        let mut tried = Vec::new();
        let mut chosen = None;
        for path in candidates {
            match probe(&path, minor) {
                Ok(()) => {
                    chosen = Some(path);
                    break;
                }
                Err(why) => tried.push(format!("{}: {why}", path.display())),
            }
        }
        match chosen {
            Some(path) => found.push(Python {
                path,
                major: 3,
                minor,
            }),
            None if minor == REQUIRED_MINOR => {
                return Err(format!(
                    "no usable CPython 3.{minor} found (looked for python3.{minor} on PATH and \
                     under $PYENV_ROOT/versions); tried: {}",
                    if tried.is_empty() {
                        "nothing".to_string()
                    } else {
                        tried.join("; ")
                    }
                ))
            }
            None if EXPECTED_MINORS.contains(&minor) => println!(
                "xtask wheel: SKIPPING CPython 3.{minor}: not on this machine ({})",
                if tried.is_empty() {
                    format!("no python3.{minor} on PATH or under $PYENV_ROOT/versions")
                } else {
                    tried.join("; ")
                }
            ),
            None => {}
        }
    }
    println!(
        "xtask wheel: CPython versions found: {}",
        found
            .iter()
            .map(|p| format!("3.{} ({})", p.minor, p.path.display()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(found)
}

/// Where CPython 3.`minor` may be: `python3.M` on PATH, then pyenv's installs (newest first).
fn candidates(minor: u32) -> Vec<PathBuf> {
    let exe = format!("python3.{minor}");
    let mut out = Vec::new();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(&exe);
            if candidate.is_file() && !out.contains(&candidate) {
                out.push(candidate);
            }
        }
    }
    let pyenv_root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")));
    if let Some(versions) = pyenv_root.map(|r| r.join("versions")) {
        let mut installs: Vec<(Vec<u32>, PathBuf)> = fs::read_dir(&versions)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let numbers: Vec<u32> = name
                    .split('.')
                    .map(|n| n.parse().ok())
                    .collect::<Option<_>>()?;
                (numbers.len() == 3 && numbers[0] == 3 && numbers[1] == minor)
                    .then(|| (numbers, e.path().join("bin").join(&exe)))
            })
            .filter(|(_, p)| p.is_file())
            .collect();
        installs.sort();
        out.extend(installs.into_iter().rev().map(|(_, p)| p));
    }
    out
}

/// Ok if `path` is CPython 3.`minor` and can make a venv with pip in it (ensurepip).
fn probe(path: &Path, minor: u32) -> Result<(), String> {
    let mut cmd = Command::new(path);
    cmd.args([
        "-c",
        "import sys, ensurepip, venv; \
         print(sys.implementation.name, sys.version_info[0], sys.version_info[1])",
    ])
    .stderr(Stdio::null())
    .env_remove("PYTHONHOME")
    .env_remove("PYTHONPATH");
    let line = describe(&cmd);
    let output = cmd.output().map_err(|e| format!("cannot run: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`{line}` failed ({}): not runnable here or no venv/ensurepip module",
            output.status
        ));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let expected = format!("cpython 3 {minor}");
    if text.trim() == expected {
        Ok(())
    } else {
        Err(format!("it is `{}`, not CPython 3.{minor}", text.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wheel_names() {
        assert!(check_wheel_name(
            "pynto_rpc-0.1.0-cp311-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
        )
        .is_ok());
        assert!(check_wheel_name("pynto_rpc-0.1.0-cp311-abi3-linux_x86_64.whl").is_err());
        assert!(check_wheel_name("pynto_rpc-0.1.0-cp312-cp312-manylinux2014_x86_64.whl").is_err());
        assert!(check_wheel_name("pynto_rpc-0.1.0.tar.gz").is_err());
    }

    #[test]
    fn the_workspace_version_is_read() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let version = workspace_version(root).unwrap();
        assert!(version.split('.').count() == 3, "{version}");
    }
}
