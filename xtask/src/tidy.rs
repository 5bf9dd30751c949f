//! `cargo xtask tidy`: repository hygiene checks (module docs, dependency rules, protocol doc,
//! file lengths and the ARCHITECTURE.md code map, in `layout.rs`; import cycles between a
//! crate's files, in `imports_graph.rs`).

use std::fs;
use std::path::{Path, PathBuf};

use crate::{deps, imports_graph, json, layout, variants};

/// Crates whose files must import each other without cycles (`imports_graph.rs`), and crates
/// whose cycles are only reported for now.
pub const ACYCLIC_CRATES: &[&str] = &["pynto-proto", "pynto-runtime", "pynto-py"];
pub const ACYCLIC_REPORTED: &[&str] = &[];

/// The crate directories whose `.rs` files must start with a `//!` line.
pub const CRATE_DIRS: &[&str] = &[
    "pynto-proto",
    "pynto-transport",
    "pynto-runtime",
    "pynto-py",
    "pynto-cli",
    "xtask",
    "tests",
    "bench",
];

/// The protocol enums that docs/protocol.md must cover: (source file, enum name).
pub const PROTOCOL_ENUMS: &[(&str, &str)] = &[
    ("pynto-proto/src/message.rs", "Message"),
    ("pynto-proto/src/op.rs", "Op"),
    ("pynto-proto/src/value.rs", "Value"),
];

pub const PROTOCOL_DOC: &str = "docs/protocol.md";

/// One tidy failure: the file at fault and why.
#[derive(Debug)]
pub struct Problem {
    pub file: String,
    pub reason: String,
}

pub const ARCHITECTURE_DOC: &str = "ARCHITECTURE.md";

/// What tidy found: problems fail the check, notes are only reported.
#[derive(Debug, Default)]
pub struct Report {
    pub problems: Vec<Problem>,
    pub notes: Vec<Problem>,
}

/// Runs every tidy check from workspace root `root`.
pub fn run(root: &Path, cargo: &str) -> Report {
    let mut report = Report::default();
    check_module_docs(root, &mut report.problems);
    check_dependencies(root, cargo, &mut report.problems);
    check_protocol_doc(root, &mut report.problems);
    check_layout(root, &mut report);
    for krate in ACYCLIC_CRATES {
        check_imports(root, krate, &mut report.problems);
    }
    for krate in ACYCLIC_REPORTED {
        check_imports(root, krate, &mut report.notes);
    }
    report
}

/// The files of `krate/src` import each other without cycles; each cycle goes to `out`.
fn check_imports(root: &Path, krate: &str, out: &mut Vec<Problem>) {
    let src = root.join(krate).join("src");
    let mut paths = Vec::new();
    if let Err(e) = collect_rs_files(&src, &mut paths) {
        out.push(Problem {
            file: format!("{krate}/src"),
            reason: format!("cannot walk: {e}"),
        });
        return;
    }
    let mut files = Vec::new();
    for path in paths {
        match fs::read_to_string(&path) {
            Ok(text) => files.push((rel(&src, &path).replace('\\', "/"), text)),
            Err(e) => out.push(Problem {
                file: rel(root, &path),
                reason: format!("cannot read: {e}"),
            }),
        }
    }
    for reason in imports_graph::describe_cycles(&imports_graph::graph(&files)) {
        out.push(Problem {
            file: format!("{krate}/src"),
            reason,
        });
    }
}

/// File lengths and the code map, over every `.rs` and `.py` file of the crate directories.
fn check_layout(root: &Path, report: &mut Report) {
    let files = layout::source_files(root, CRATE_DIRS, skip_dir);
    let mut texts = Vec::with_capacity(files.len());
    for file in &files {
        match fs::read_to_string(root.join(file)) {
            Ok(text) => texts.push((file.clone(), text)),
            Err(e) => report.problems.push(Problem {
                file: file.clone(),
                reason: format!("cannot read: {e}"),
            }),
        }
    }
    let mut findings = layout::check_lengths(&texts);
    match fs::read_to_string(root.join(ARCHITECTURE_DOC)) {
        Ok(doc) => findings.extend(layout::check_map(&doc, &files)),
        Err(e) => report.problems.push(Problem {
            file: ARCHITECTURE_DOC.into(),
            reason: format!("cannot read ({e}); its code map must name every source file"),
        }),
    }
    for finding in findings {
        let item = Problem {
            file: finding.file,
            reason: finding.reason,
        };
        if finding.fail {
            report.problems.push(item);
        } else {
            report.notes.push(item);
        }
    }
}

fn rel(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Whether a directory is skipped by the walk: build output (`target*`, which covers
/// `fuzz/target`), and hidden directories such as virtualenvs and `.git`.
fn skip_dir(name: &str) -> bool {
    name.starts_with("target") || name.starts_with('.') || name == "__pycache__"
}

fn collect_rs_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            if !skip_dir(&name) {
                collect_rs_files(&path, out)?;
            }
        } else if file_type.is_file() && name.ends_with(".rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// Why `text` fails the module-doc rule, or `None` if it begins with a `//!` line (no leading
/// blank lines, no byte-order mark).
pub fn module_doc_problem(text: &str) -> Option<&'static str> {
    if text.is_empty() {
        Some("empty file; it must begin with a `//!` line saying what it is")
    } else if text.starts_with("//!") {
        None
    } else if text.trim_start().starts_with("//!") {
        Some("the `//!` doc line must be the very first line (leading blank lines are not allowed)")
    } else {
        Some("does not begin with a `//!` line saying what it is")
    }
}

fn check_module_docs(root: &Path, problems: &mut Vec<Problem>) {
    for krate in CRATE_DIRS {
        let dir = root.join(krate);
        let mut files = Vec::new();
        if let Err(e) = collect_rs_files(&dir, &mut files) {
            problems.push(Problem {
                file: krate.to_string(),
                reason: format!("cannot walk crate directory: {e}"),
            });
            continue;
        }
        for file in files {
            let reason = match fs::read_to_string(&file) {
                Ok(text) => module_doc_problem(&text).map(str::to_string),
                Err(e) => Some(format!("cannot read: {e}")),
            };
            if let Some(reason) = reason {
                problems.push(Problem {
                    file: rel(root, &file),
                    reason,
                });
            }
        }
    }
}

fn check_dependencies(root: &Path, cargo: &str, problems: &mut Vec<Problem>) {
    let output = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root)
        .output();
    let metadata = match output {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        Ok(out) => {
            problems.push(Problem {
                file: "Cargo.toml".into(),
                reason: format!(
                    "`cargo metadata` failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
            return;
        }
        Err(e) => {
            problems.push(Problem {
                file: "Cargo.toml".into(),
                reason: format!("cannot run `{cargo} metadata`: {e}"),
            });
            return;
        }
    };
    let packages = json::parse(&metadata).and_then(|doc| deps::packages_from_metadata(&doc));
    match packages {
        Ok(packages) => {
            for (manifest, reason) in deps::check(&packages) {
                problems.push(Problem {
                    file: rel(root, Path::new(&manifest)),
                    reason,
                });
            }
        }
        Err(e) => problems.push(Problem {
            file: "Cargo.toml".into(),
            reason: format!("cannot read `cargo metadata` output: {e}"),
        }),
    }
}

/// The names of `variants` not written as `` `Name` `` anywhere in `doc`.
pub fn undocumented<'a>(doc: &str, variants: &'a [String]) -> Vec<&'a str> {
    variants
        .iter()
        .filter(|v| !doc.contains(&format!("`{v}`")))
        .map(String::as_str)
        .collect()
}

fn check_protocol_doc(root: &Path, problems: &mut Vec<Problem>) {
    let doc = match fs::read_to_string(root.join(PROTOCOL_DOC)) {
        Ok(doc) => Some(doc),
        Err(e) => {
            problems.push(Problem {
                file: PROTOCOL_DOC.into(),
                reason: format!(
                    "cannot read ({e}); it must name every variant of Message, Op and Value in backticks"
                ),
            });
            None
        }
    };
    for (file, name) in PROTOCOL_ENUMS {
        let variants = fs::read_to_string(root.join(file))
            .map_err(|e| format!("cannot read: {e}"))
            .and_then(|src| variants::enum_variants(&src, name));
        let variants = match variants {
            Ok(v) if v.is_empty() => Err(format!("`pub enum {name}` has no variants")),
            other => other,
        };
        match (variants, &doc) {
            (Err(reason), _) => problems.push(Problem {
                file: file.to_string(),
                reason,
            }),
            (Ok(variants), Some(doc)) => {
                let missing = undocumented(doc, &variants);
                if !missing.is_empty() {
                    problems.push(Problem {
                        file: PROTOCOL_DOC.into(),
                        reason: format!(
                            "does not mention these `{name}` variants (from {file}) in backticks: {}",
                            missing.join(", ")
                        ),
                    });
                }
            }
            (Ok(_), None) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_doc_rules() {
        assert_eq!(module_doc_problem("//! Docs.\nfn main() {}\n"), None);
        assert!(module_doc_problem("\n//! Docs.\n")
            .unwrap()
            .contains("leading blank"));
        assert!(module_doc_problem("/// Item docs.\nfn f() {}\n").is_some());
        assert!(module_doc_problem("\u{feff}//! BOM\n").is_some());
        assert!(module_doc_problem("").is_some());
    }

    #[test]
    fn skipped_directories() {
        for skipped in ["target", "target-xtask", ".venv", ".git", "__pycache__"] {
            assert!(skip_dir(skipped), "{skipped}");
        }
        for walked in [
            "src",
            "tests",
            "fuzz",
            "fuzz_targets",
            "examples",
            "benches",
        ] {
            assert!(!skip_dir(walked), "{walked}");
        }
    }

    #[test]
    fn protocol_doc_needs_backticked_names() {
        let variants: Vec<String> = ["Hello", "Reply", "Ping"].map(String::from).to_vec();
        let doc = "The `Hello` message; a Reply (no backticks); `Ping`s are not `Ping`.";
        assert_eq!(undocumented(doc, &variants), ["Reply"]);
    }
}
