//! `cargo xtask bench`: pynto against RPyC, Pyro5, multiprocessing.managers and two raw-socket
//! floors, in one run, then its cost curves.
//!
//! This prepares what the run needs and hands over to the driver `bench/run.py`:
//! - `target/venv` with pynto (built with maturin only when `import pynto` fails there),
//! - `target/bench-venv` with RPyC 6 and Pyro5 5 from PyPI (a separate virtualenv, so pynto's
//!   stays clean; multiprocessing.managers is the standard library's),
//! - the Rust floor, `cargo build --release -p pynto-bench --bin floor`.
//!
//! The driver runs every scenario pinned to one core and unpinned, the cost curves C1-C3 pinned,
//! and writes `target/bench/results.jsonl` and `docs/benchmarks.md`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{describe, run, Ctx, Failure};

/// The scenarios of docs/benchmarks.md (C1-C3: the cost curves).
pub const SCENARIOS: &[&str] = &[
    "S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8", "S9", "S10", "C1", "C2", "C3", "R1",
];

/// The scenario xtask runs itself: the Rust-to-Rust null call against the raw floor
/// (`bench/rust_null_call.rs`); the others are `bench/run.py`'s.
const RUST_SCENARIO: &str = "R1";

/// The peers the comparison installs from PyPI (pip requirements).
const PEERS: &[&str] = &["rpyc==6.*", "Pyro5==5.*"];

#[derive(Debug, PartialEq, Eq)]
pub struct BenchArgs {
    /// Fewer iterations: a smoke run of a minute or two.
    pub quick: bool,
    /// The scenarios to run, in order.
    pub only: Vec<String>,
}

pub fn parse_args(args: &[String]) -> Result<BenchArgs, String> {
    let mut quick = false;
    let mut only: Option<Vec<String>> = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let list = match arg.strip_prefix("--only") {
            Some("") => Some(
                it.next()
                    .ok_or("bench: --only needs a list such as S1,S4")?
                    .as_str(),
            ),
            Some(rest) if rest.starts_with('=') => Some(&rest[1..]),
            _ => None,
        };
        if let Some(list) = list {
            let mut chosen = Vec::new();
            for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let name = name.to_ascii_uppercase();
                if !SCENARIOS.contains(&name.as_str()) {
                    return Err(format!(
                        "bench: unknown scenario `{name}`; choose from {}",
                        SCENARIOS.join(",")
                    ));
                }
                if !chosen.contains(&name) {
                    chosen.push(name);
                }
            }
            if chosen.is_empty() {
                return Err("bench: --only needs at least one scenario".to_string());
            }
            only = Some(chosen);
        } else if arg == "--quick" {
            quick = true;
        } else {
            return Err(format!("bench: unknown argument `{arg}`"));
        }
    }
    let only = only.unwrap_or_else(|| SCENARIOS.iter().map(|s| s.to_string()).collect());
    Ok(BenchArgs { quick, only })
}

pub fn bench(ctx: &Ctx, args: &BenchArgs) -> Result<(), Failure> {
    let venv = ctx.root.join("target/venv");
    let python = venv.join("bin/python");
    ensure_pynto(ctx, &venv)?;
    let peers_python = ensure_peers(ctx)?;
    let floor = build_floor(ctx)?;

    let mut command = String::from("cargo xtask bench");
    if args.quick {
        command.push_str(" --quick");
    }
    if args.only.len() != SCENARIOS.len() {
        command.push_str(&format!(" --only {}", args.only.join(",")));
    }
    let python_scenarios: Vec<&String> = args.only.iter().filter(|s| *s != RUST_SCENARIO).collect();
    if python_scenarios.is_empty() {
        return rust_scenario(ctx, args.quick, None);
    }
    let mut driver = Command::new(&python);
    driver
        .current_dir(&ctx.root)
        .arg(ctx.root.join("bench/run.py"))
        .arg("--root")
        .arg(&ctx.root)
        .arg("--pynto-python")
        .arg(&python)
        .arg("--peers-python")
        .arg(&peers_python)
        .arg("--floor")
        .arg(&floor)
        .arg("--results")
        .arg(ctx.root.join("target/bench/results.jsonl"))
        .arg("--doc")
        .arg(ctx.root.join("docs/benchmarks.md"))
        .arg("--command")
        .arg(&command)
        .arg("--only")
        .arg(
            python_scenarios
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(","),
        )
        .env_remove("PYTHONHOME")
        .env_remove("PYTHONPATH");
    if args.quick {
        driver.arg("--quick");
    }
    run(&mut driver).map_err(|e| Failure::Message(format!("xtask bench: {e}")))?;
    if args.only.iter().any(|s| s == RUST_SCENARIO) {
        rust_scenario(ctx, args.quick, Some(&ctx.root.join("docs/benchmarks.md")))?;
    }
    println!("xtask bench: results in target/bench/results.jsonl, report in docs/benchmarks.md");
    Ok(())
}

/// R1: the Rust-to-Rust null call over TCP and a Unix socket against the raw floor, pinned
/// and unpinned, in one run; its table is appended to `doc` when given.
fn rust_scenario(ctx: &Ctx, quick: bool, doc: Option<&Path>) -> Result<(), Failure> {
    run(&mut ctx.cargo(&[
        "build",
        "--release",
        "-p",
        "pynto-bench",
        "--bin",
        "rust_null_call",
    ]))
    .map_err(|e| Failure::Message(format!("xtask bench: cannot build rust_null_call: {e}")))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| ctx.root.join("target"));
    let n = if quick { "5000" } else { "50000" };
    let output = Command::new(target.join("release/rust_null_call"))
        .args(["run", "--n", n])
        .output()
        .map_err(|e| Failure::Message(format!("xtask bench: cannot run rust_null_call: {e}")))?;
    if !output.status.success() {
        return Err(Failure::Message(format!(
            "xtask bench: rust_null_call failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let table = String::from_utf8_lossy(&output.stdout);
    print!("{table}");
    if let Some(doc) = doc {
        let mut text = std::fs::read_to_string(doc).unwrap_or_default();
        text.push_str(&format!(
            "\n## R1: Rust to Rust\n\nA Rust client calls `root.f()` on a Rust server (the runtime's native host), against a \
             32-byte echo over the same socket kind, {n} round trips each, medians (p99) in microseconds, \
             in one run (`bench/rust_null_call.rs`).\n\n{table}"
        ));
        std::fs::write(doc, text).map_err(|e| {
            Failure::Message(format!("xtask bench: cannot write {}: {e}", doc.display()))
        })?;
    }
    Ok(())
}

/// Whether `python -c code` succeeds, quietly.
fn python_ok(python: &Path, code: &str) -> bool {
    Command::new(python)
        .args(["-c", code])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// pynto in target/venv: used as installed; built (maturin, release) only when missing.
fn ensure_pynto(ctx: &Ctx, venv: &Path) -> Result<(), Failure> {
    let python = venv.join("bin/python");
    if python_ok(&python, "import pynto") {
        println!("xtask bench: using the pynto installed in target/venv (rebuild it with maturin develop --release to measure new code)");
        return Ok(());
    }
    println!("xtask bench: pynto is not importable in target/venv; building it");
    if !python.exists() {
        run(Command::new("python3")
            .args(["-m", "venv", "target/venv"])
            .current_dir(&ctx.root))?;
    }
    let bin = venv.join("bin");
    if !bin.join("maturin").exists() {
        run(Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "maturin"])
            .current_dir(&ctx.root))?;
    }
    let mut path = bin.clone().into_os_string();
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    run(Command::new(bin.join("maturin"))
        .args(["develop", "--release", "-m", "pynto-py/Cargo.toml"])
        .current_dir(&ctx.root)
        .env("VIRTUAL_ENV", venv)
        .env("PATH", path)
        .env_remove("CONDA_PREFIX"))?;
    Ok(())
}

/// target/bench-venv with RPyC 6 and Pyro5 5; returns its python.
fn ensure_peers(ctx: &Ctx) -> Result<PathBuf, Failure> {
    let venv = ctx.root.join("target/bench-venv");
    let python = venv.join("bin/python");
    let check = "import rpyc, Pyro5, sys; \
                 sys.exit(0 if rpyc.__version__.startswith('6.') and Pyro5.__version__.startswith('5.') else 1)";
    if python_ok(&python, check) {
        return Ok(python);
    }
    if !python.exists() {
        run(Command::new("python3")
            .args(["-m", "venv", "target/bench-venv"])
            .current_dir(&ctx.root))?;
    }
    run(Command::new(&python)
        .args(["-m", "pip", "install", "--quiet"])
        .args(PEERS)
        .current_dir(&ctx.root))?;
    if !python_ok(&python, check) {
        return Err(Failure::Message(format!(
            "xtask bench: `{}` still not importable in target/bench-venv",
            PEERS.join("`, `")
        )));
    }
    Ok(python)
}

/// Builds the Rust floor and returns the path of its binary.
fn build_floor(ctx: &Ctx) -> Result<PathBuf, Failure> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { ctx.root.join(p) })
        .unwrap_or_else(|| ctx.root.join("target"));
    let floor = target.join("release/floor");
    let mut cmd = ctx.cargo(&["build", "--release", "-p", "pynto-bench", "--bin", "floor"]);
    match run(&mut cmd) {
        Ok(()) => Ok(floor),
        // The floor needs only std, but its crate depends on the runtime: while that is mid-edit
        // and fails to build, a floor built earlier measures the same thing.
        Err(e) if floor.exists() => {
            eprintln!(
                "xtask bench: {e}; using the floor built earlier, {}",
                floor.display()
            );
            Ok(floor)
        }
        Err(e) => Err(Failure::Message(format!(
            "xtask bench: cannot build the Rust floor ({}): {e}",
            describe(&cmd)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn bench_arguments() {
        let all: Vec<String> = SCENARIOS.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            parse_args(&args(&[])),
            Ok(BenchArgs {
                quick: false,
                only: all.clone()
            })
        );
        assert_eq!(
            parse_args(&args(&["--quick"])),
            Ok(BenchArgs {
                quick: true,
                only: all
            })
        );
        assert_eq!(
            parse_args(&args(&["--only", "S1,s4", "--quick"])),
            Ok(BenchArgs {
                quick: true,
                only: args(&["S1", "S4"])
            })
        );
        assert_eq!(
            parse_args(&args(&["--only=S9,S9"])).map(|a| a.only),
            Ok(args(&["S9"]))
        );
        assert!(parse_args(&args(&["--only"])).is_err());
        assert!(parse_args(&args(&["--only", ","])).is_err());
        assert!(parse_args(&args(&["--only", "S11"])).is_err());
        assert_eq!(
            parse_args(&args(&["--only", "c1,C3"])).map(|a| a.only),
            Ok(args(&["C1", "C3"]))
        );
        assert_eq!(
            parse_args(&args(&["--only", "S10,R1"])).map(|a| a.only),
            Ok(args(&["S10", "R1"]))
        );
        assert!(parse_args(&args(&["--fast"])).is_err());
    }
}
