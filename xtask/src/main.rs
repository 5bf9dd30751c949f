//! `cargo xtask`: pynto's one entry point for the full test run, tidy checks, fuzzing, demo and benchmarks.
//!
//! Std only, so it builds in seconds. Run `cargo xtask` with no arguments for usage.

mod bench;
mod deps;
mod docs;
mod imports_graph;
mod json;
mod layout;
mod soak;
mod tidy;
mod variants;
mod wheel;

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  test-all           fmt check, clippy, tests, tidy, then the Python tests (if pynto-py/pyproject.toml exists)
  tidy               module docs, dependency rules, protocol-doc coverage, file lengths, code map, import cycles
  fuzz [--target NAME] [--seconds N]
                     run a cargo-fuzz target for N seconds (default 60): `decode` (pynto-proto's
                     decoder, the default) or `session` (a live pynto-runtime session fed frames)
  demo               build pynto into target/venv, start a classic server, run the tour against it
  wheel [--install]  build the release wheel (manylinux, stripped) and the sdist into target/wheels;
                     --install also installs it into a fresh venv of each CPython 3.11+ and smoke-tests it
  docs               build the user guide and API reference (Sphinx, warnings as errors) into target/docs/html
  soak               100,000 connect/close cycles under ulimit -n 1024, and 300 threads + 8 processes
                     making 1,000 calls each with callbacks, against one server
  bench [--quick] [--only S1,S4]
                     pynto against RPyC, Pyro5, mp.managers and raw-socket floors, and
                     its cost curves (C1-C3); writes docs/benchmarks.md
";

/// Exit status for usage errors and commands that do not exist yet.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ctx = Ctx::new();
    let result = match args.first().map(String::as_str) {
        Some("test-all") if args.len() == 1 => test_all(&ctx),
        Some("tidy") if args.len() == 1 => tidy_cmd(&ctx),
        Some("fuzz") => match parse_fuzz_args(&args[1..]) {
            Ok(fuzz_args) => fuzz(&ctx, &fuzz_args),
            Err(e) => return usage_error(&e),
        },
        Some("demo") if args.len() == 1 => demo(&ctx),
        Some("wheel") if args.len() == 1 => wheel::wheel_cmd(&ctx),
        Some("wheel") if args.len() == 2 && args[1] == "--install" => wheel::wheel_step(&ctx)
            .map_err(|e| Failure::Message(format!("xtask wheel --install: {e}"))),
        Some("docs") if args.len() == 1 => docs::docs_cmd(&ctx),
        Some("soak") if args.len() == 1 => soak::soak_cmd(&ctx),
        Some("bench") => match bench::parse_args(&args[1..]) {
            Ok(bench_args) => bench::bench(&ctx, &bench_args),
            Err(e) => return usage_error(&e),
        },
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(_) => {
            return usage_error(&format!(
                "unknown command or arguments: `{}`",
                args.join(" ")
            ))
        }
        None => return usage_error("no command given"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Message(message)) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("xtask: {message}\n\n{USAGE}");
    ExitCode::from(EXIT_USAGE)
}

enum Failure {
    /// Print this and exit with status 1.
    Message(String),
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure::Message(message)
    }
}

/// What every command needs: where the workspace is and which cargo to call.
struct Ctx {
    root: PathBuf,
    cargo: String,
}

impl Ctx {
    fn new() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask lives one level below the workspace root")
            .to_path_buf();
        // `cargo run` sets CARGO to the cargo that is running us; use the same one.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        Ctx { root, cargo }
    }

    fn cargo(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.cargo);
        cmd.args(args).current_dir(&self.root);
        cmd
    }
}

/// The command line of `cmd` as a shell-like string, with any environment it sets in front.
fn describe(cmd: &Command) -> String {
    let mut parts: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| {
            let k = k.to_string_lossy();
            match v {
                Some(v) if k != "PATH" => Some(format!("{k}={}", v.to_string_lossy())),
                _ => None,
            }
        })
        .collect();
    let program = cmd.get_program().to_string_lossy().into_owned();
    // Show `cargo`, not the toolchain path of the running cargo.
    let program = match Path::new(&program).file_name() {
        Some(name) if name == "cargo" => "cargo".to_string(),
        _ => program,
    };
    parts.push(program);
    parts.extend(cmd.get_args().map(|a| {
        let a = a.to_string_lossy();
        if a.contains(' ') {
            format!("'{a}'")
        } else {
            a.into_owned()
        }
    }));
    parts.join(" ")
}

/// Echoes and runs `cmd`, inheriting stdio; `Err` names the command and how it ended.
fn run(cmd: &mut Command) -> Result<(), String> {
    let line = describe(cmd);
    println!("$ {line}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run `{line}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{line}` failed ({status})"))
    }
}

// ---------------------------------------------------------------------------------------------
// test-all

struct Step<'a> {
    name: &'static str,
    run: Box<dyn Fn() -> Result<(), String> + 'a>,
}

fn test_all(ctx: &Ctx) -> Result<(), Failure> {
    let mut steps: Vec<Step> = vec![
        Step {
            name: "fmt",
            run: Box::new(|| run(&mut ctx.cargo(&["fmt", "--all", "--", "--check"]))),
        },
        Step {
            name: "clippy",
            run: Box::new(|| {
                run(&mut ctx.cargo(&[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ]))
            }),
        },
        Step {
            name: "test",
            run: Box::new(|| run(&mut ctx.cargo(&["test", "--workspace"]))),
        },
        Step {
            name: "tidy",
            run: Box::new(|| tidy_step(ctx)),
        },
    ];
    if ctx.root.join("pynto-py/pyproject.toml").exists() {
        steps.push(Step {
            name: "python",
            run: Box::new(|| python_step(ctx)),
        });
        steps.push(Step {
            name: "interop",
            run: Box::new(|| interop_step(ctx)),
        });
        steps.push(Step {
            name: "docs",
            run: Box::new(|| docs::docs_step(ctx)),
        });
        steps.push(Step {
            name: "wheel",
            run: Box::new(|| wheel::wheel_step(ctx)),
        });
    } else {
        println!("xtask test-all: no pynto-py/pyproject.toml yet, so no Python step");
    }

    let total = steps.len();
    for (i, step) in steps.iter().enumerate() {
        println!(
            "\n==> xtask test-all: step {}/{total}: {}",
            i + 1,
            step.name
        );
        (step.run)().map_err(|e| {
            format!(
                "\nxtask test-all: step {}/{total} ({}) FAILED: {e}",
                i + 1,
                step.name
            )
        })?;
    }
    println!("\nxtask test-all: {total} steps passed");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// tidy

fn tidy_step(ctx: &Ctx) -> Result<(), String> {
    println!("$ cargo xtask tidy");
    let report = tidy::run(&ctx.root, &ctx.cargo);
    for note in &report.notes {
        println!("tidy: note: {}: {}", note.file, note.reason);
    }
    let problems = report.problems;
    if problems.is_empty() {
        println!("tidy: all checks passed");
        return Ok(());
    }
    for p in &problems {
        eprintln!("tidy: {}: {}", p.file, p.reason);
    }
    Err(format!(
        "tidy found {} problem(s), listed above",
        problems.len()
    ))
}

fn tidy_cmd(ctx: &Ctx) -> Result<(), Failure> {
    tidy_step(ctx).map_err(|e| Failure::Message(format!("xtask tidy: {e}")))
}

// ---------------------------------------------------------------------------------------------
// python

const PYTHON_TOOLS: &[&str] = &[
    "maturin",
    "pytest",
    "pytest-timeout",
    "mypy==2.4.1",
    "numpy",
];

/// The project's virtualenv (target/venv) with pynto built into it.
struct Venv {
    python: PathBuf,
    dir: PathBuf,
    path: OsString,
}

impl Venv {
    /// A command run "inside" the venv, from the repository root.
    fn command(&self, root: &Path, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(root)
            .env("VIRTUAL_ENV", &self.dir)
            .env("PATH", &self.path)
            .env_remove("CONDA_PREFIX")
            .env_remove("PYTHONHOME");
        cmd
    }

    /// Install `tools` (pinned `name==version` requirements) unless exactly those are there.
    fn ensure_pinned(&self, root: &Path, tools: &[&str]) -> Result<(), String> {
        let check = "import importlib.metadata as m, sys; \
                     want = dict(a.split('==') for a in sys.argv[1:]); \
                     sys.exit(any(m.version(k) != v for k, v in want.items()))";
        let have = self
            .command(root, &self.python)
            .args(["-c", check])
            .args(tools)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if have {
            return Ok(());
        }
        run(self
            .command(root, &self.python)
            .args(["-m", "pip", "install", "--quiet"])
            .args(tools))
    }
}

fn python_step(ctx: &Ctx) -> Result<(), String> {
    let venv = prepare_venv(ctx)?;
    let mut pytest = venv.command(&ctx.root, &venv.python);
    pytest.args(["-m", "pytest", "pynto-py/tests", "-p", "no:cacheprovider"]);
    let line = describe(&pytest);
    println!("$ {line}");
    let status = pytest
        .status()
        .map_err(|e| format!("cannot run `{line}`: {e}"))?;
    match status.code() {
        Some(0) => {}
        Some(5) => {
            return Err(format!(
            "`{line}` collected no tests (pytest exit code 5); pynto-py/tests must contain tests"
        ))
        }
        _ => return Err(format!("`{line}` failed ({status})")),
    }
    // The hand-written stub of the compiled module must match it.
    run(venv.command(&ctx.root, &venv.python).args([
        "-m",
        "mypy.stubtest",
        "pynto._pynto",
        "--allowlist",
        "pynto-py/stubtest-allowlist.txt",
    ]))
}

/// Create target/venv if needed, install the build and test tools, and build pynto into it.
fn prepare_venv(ctx: &Ctx) -> Result<Venv, String> {
    let venv = ctx.root.join("target/venv");
    let bin = venv.join("bin");
    let python = bin.join("python");
    if !python.exists() {
        run(Command::new("python3")
            .args(["-m", "venv", "target/venv"])
            .current_dir(&ctx.root))?;
    }

    // Everything below runs "inside" the venv.
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut venv_path = OsString::from(bin.as_os_str());
    venv_path.push(":");
    venv_path.push(path);
    let in_venv = |program: &Path| {
        let mut cmd = Command::new(program);
        cmd.current_dir(&ctx.root)
            .env("VIRTUAL_ENV", &venv)
            .env("PATH", &venv_path)
            .env_remove("CONDA_PREFIX")
            .env_remove("PYTHONHOME");
        cmd
    };

    let have_tools = bin.join("maturin").exists()
        && in_venv(&python)
            .args(["-c", "import pytest, pytest_timeout, mypy.stubtest, numpy"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if !have_tools {
        run(in_venv(&python)
            .args(["-m", "pip", "install", "--quiet"])
            .args(PYTHON_TOOLS))?;
    }

    run(in_venv(&bin.join("maturin")).args(["develop", "--release", "-m", "pynto-py/Cargo.toml"]))?;
    Ok(Venv {
        python,
        dir: venv,
        path: venv_path,
    })
}

// ---------------------------------------------------------------------------------------------
// demo

/// Build pynto into target/venv, start a real classic server process, run the tour against
/// it, and stop the server.
fn demo(ctx: &Ctx) -> Result<(), Failure> {
    let venv = prepare_venv(ctx).map_err(|e| Failure::Message(format!("xtask demo: {e}")))?;
    let mut server = venv
        .command(&ctx.root, &venv.python)
        .args(["-m", "pynto", "serve", "--classic", "--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| Failure::Message(format!("xtask demo: cannot start the server: {e}")))?;
    let mut line = String::new();
    if let Some(out) = server.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    println!("{}", line.trim_end());
    let outcome = match line.trim_end().rsplit_once(" on ") {
        Some((_, address)) => run(venv
            .command(&ctx.root, &venv.python)
            .args(["pynto-py/examples/tour.py", address])),
        None => Err(format!("the server did not start: it printed {line:?}")),
    };
    // SIGTERM: the server stops cleanly.
    let _ = Command::new("kill").arg(server.id().to_string()).status();
    let _ = server.wait();
    outcome.map_err(|e| Failure::Message(format!("xtask demo: {e}")))
}

/// The Rust pieces against real Python peers: the CLI end-to-end tests and the runtime's
/// examples. Runs after the Python step, which built the package into target/venv.
fn interop_step(ctx: &Ctx) -> Result<(), String> {
    let venv = ctx.root.join("target/venv");
    let python = venv.join("bin/python");
    let mut venv_path = OsString::from(venv.join("bin").as_os_str());
    venv_path.push(":");
    venv_path.push(std::env::var_os("PATH").unwrap_or_default());
    run(ctx
        .cargo(&["test", "-p", "pynto-cli", "--", "--ignored"])
        .env("PYNTO_TEST_PYTHON", &python))?;
    run(&mut ctx.cargo(&["build", "-p", "pynto-runtime", "--examples"]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| ctx.root.join("target"));
    run(Command::new(&python)
        .arg("tests/interop/run_examples.py")
        .arg(target.join("debug/examples"))
        .current_dir(&ctx.root)
        .env("VIRTUAL_ENV", &venv)
        .env("PATH", &venv_path))
}

// ---------------------------------------------------------------------------------------------
// fuzz

const DEFAULT_FUZZ_SECONDS: u64 = 60;

/// A cargo-fuzz target: its name and the crate whose `fuzz/` directory holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FuzzTarget {
    name: &'static str,
    crate_dir: &'static str,
    /// libFuzzer options of this target besides the time limit.
    options: &'static [&'static str],
}

const FUZZ_TARGETS: [FuzzTarget; 2] = [
    FuzzTarget {
        name: "decode",
        crate_dir: "pynto-proto",
        options: &[],
    },
    FuzzTarget {
        name: "session",
        crate_dir: "pynto-runtime",
        // A run that takes 30 s is a hang (the target itself fails after 10 s of waiting).
        options: &["-timeout=30"],
    },
];

#[derive(Debug, PartialEq, Eq)]
struct FuzzArgs {
    target: FuzzTarget,
    seconds: u64,
}

fn parse_fuzz_args(args: &[String]) -> Result<FuzzArgs, String> {
    let mut parsed = FuzzArgs {
        target: FUZZ_TARGETS[0],
        seconds: DEFAULT_FUZZ_SECONDS,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag, Some(value)),
            None => (arg.as_str(), None),
        };
        if flag != "--seconds" && flag != "--target" {
            return Err(format!("fuzz: unknown argument `{arg}`"));
        }
        let value = match inline {
            Some(value) => value,
            None => it.next().ok_or(format!("{flag} needs a value"))?.as_str(),
        };
        if flag == "--seconds" {
            parsed.seconds = value.parse().ok().filter(|&s| s > 0).ok_or_else(|| {
                format!("fuzz: --seconds wants a positive whole number, not `{value}`")
            })?;
        } else {
            parsed.target = *FUZZ_TARGETS
                .iter()
                .find(|t| t.name == value)
                .ok_or_else(|| {
                    let names: Vec<_> = FUZZ_TARGETS.iter().map(|t| t.name).collect();
                    format!(
                        "fuzz: no target `{value}`; the targets are {}",
                        names.join(", ")
                    )
                })?;
        }
    }
    Ok(parsed)
}

/// Whether a libFuzzer output line belongs in the summary printed at the end.
fn is_fuzz_summary_line(line: &str) -> bool {
    let line = line.trim_start();
    line.starts_with("Done ")
        || line.starts_with("stat::")
        || line.starts_with("SUMMARY:")
        || line.starts_with("==")
        || line.contains("DONE ")
        || line.contains("Test unit written to")
        || line.contains("panicked at")
        || line.starts_with("INFO: Seed:")
        || line.contains("deadly signal")
}

fn fuzz(ctx: &Ctx, args: &FuzzArgs) -> Result<(), Failure> {
    let FuzzArgs { target, seconds } = args;
    let have_cargo_fuzz = ctx
        .cargo(&["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have_cargo_fuzz {
        run(&mut ctx.cargo(&["install", "cargo-fuzz", "--locked"]))?;
    }

    let max_time = format!("-max_total_time={seconds}");
    let mut cargo_args = vec![
        "fuzz",
        "run",
        "-s",
        "none",
        target.name,
        "--",
        &max_time,
        "-print_final_stats=1",
    ];
    cargo_args.extend_from_slice(target.options);
    let mut cmd = ctx.cargo(&cargo_args);
    // cargo-fuzz passes unstable rustc flags; this lets the stable toolchain accept them.
    cmd.current_dir(ctx.root.join(target.crate_dir))
        .env("RUSTC_BOOTSTRAP", "1")
        .stderr(Stdio::piped());
    let line = describe(&cmd);
    println!("$ (cd {} && {line})", target.crate_dir);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("xtask fuzz: cannot run `{line}`: {e}"))?;
    // libFuzzer reports on stderr: pass it through, and keep the summary lines.
    let mut summary = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        for out in BufReader::new(stderr).lines() {
            let Ok(out) = out else { break };
            eprintln!("{out}");
            if is_fuzz_summary_line(&out) {
                summary.push(out);
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("xtask fuzz: waiting for `{line}`: {e}"))?;
    println!("\nxtask fuzz: libFuzzer summary:");
    if summary.is_empty() {
        println!("  (no libFuzzer summary lines; the target may not have built or started)");
    }
    for s in &summary {
        println!("  {s}");
    }
    if status.success() {
        println!(
            "xtask fuzz: `{}` ran {seconds}s without a failure",
            target.name
        );
        Ok(())
    } else {
        Err(Failure::Message(format!(
            "xtask fuzz: `{line}` failed ({status}); any crashing input is under {}/fuzz/artifacts/{}/",
            target.crate_dir, target.name
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn fuzz_arguments() {
        let seconds = |list: &[&str]| parse_fuzz_args(&args(list)).map(|a| a.seconds);
        let target = |list: &[&str]| parse_fuzz_args(&args(list)).map(|a| a.target.name);
        assert_eq!(seconds(&[]), Ok(DEFAULT_FUZZ_SECONDS));
        assert_eq!(target(&[]), Ok("decode"));
        assert_eq!(seconds(&["--seconds", "30"]), Ok(30));
        assert_eq!(seconds(&["--seconds=5"]), Ok(5));
        assert_eq!(target(&["--target", "session"]), Ok("session"));
        assert_eq!(target(&["--target=decode", "--seconds", "9"]), Ok("decode"));
        assert_eq!(seconds(&["--target=session", "--seconds", "9"]), Ok(9));
        assert!(parse_fuzz_args(&args(&["--target"])).is_err());
        assert!(parse_fuzz_args(&args(&["--target", "nope"])).is_err());
        assert!(parse_fuzz_args(&args(&["--seconds"])).is_err());
        assert!(parse_fuzz_args(&args(&["--seconds", "0"])).is_err());
        assert!(parse_fuzz_args(&args(&["--seconds", "x"])).is_err());
        assert!(parse_fuzz_args(&args(&["--secondsx"])).is_err());
        assert!(parse_fuzz_args(&args(&["--runs", "3"])).is_err());
    }

    #[test]
    fn fuzz_summary_lines() {
        assert!(is_fuzz_summary_line("Done 123456 runs in 61 second(s)"));
        assert!(is_fuzz_summary_line(
            "#123456\tDONE   cov: 812 ft: 2301 corp: 400/20Kb"
        ));
        assert!(is_fuzz_summary_line(
            "stat::number_of_executed_units: 123456"
        ));
        assert!(is_fuzz_summary_line(
            "==1234== ERROR: libFuzzer: deadly signal"
        ));
        assert!(!is_fuzz_summary_line("#2048\tpulse  cov: 700 ft: 1500"));
        assert!(!is_fuzz_summary_line("   Compiling pynto-proto v0.1.0"));
    }

    #[test]
    fn describe_shows_env_and_plain_cargo() {
        let mut cmd = Command::new("/home/x/.rustup/toolchains/stable/bin/cargo");
        cmd.args(["fuzz", "run", "a b"]).env("RUSTC_BOOTSTRAP", "1");
        assert_eq!(describe(&cmd), "RUSTC_BOOTSTRAP=1 cargo fuzz run 'a b'");
    }
}
