//! Tidy checks on the source files as a whole: none is longer than [`MAX_LINES`] (a file that
//! long holds several ideas and wants splitting along its seams), and each appears in
//! ARCHITECTURE.md's code map.
//!
//! A file is in the map when the section of its crate (`### <crate directory>`) names it in
//! backticks: by its path in the crate (`src/session.rs`), or by that path without `src/` or
//! `python/pynto/` (`session.rs`, `codec/decode.rs`, `_host.py`). Files outside `src/` and
//! `python/` (tests, examples, fuzz targets, scripts) may instead be named by their file name
//! or by a directory that holds them (`tests/`). Files that cannot be documented yet, or are
//! too long while someone splits them, are listed with a reason in [`UNMAPPED_ALLOWED`] and
//! [`LONG_ALLOWED`]: reported, not failed, and reported again once the entry is stale.

use std::fs;
use std::path::{Path, PathBuf};

/// The most lines a source file may have.
pub const MAX_LINES: usize = 800;

/// Files allowed over [`MAX_LINES`] for now, and why.
pub const LONG_ALLOWED: &[(&str, &str)] = &[];

/// Files allowed outside ARCHITECTURE.md's code map for now, and why.
pub const UNMAPPED_ALLOWED: &[(&str, &str)] = &[];

/// The extensions of source files these checks cover.
pub const SOURCE_EXTENSIONS: &[&str] = &["rs", "py"];

/// A finding: the file and what is wrong; `fail` is false for what is only reported.
#[derive(Debug, PartialEq, Eq)]
pub struct Finding {
    pub file: String,
    pub reason: String,
    pub fail: bool,
}

/// Every source file under `root/<dir>` for each of `dirs`, as paths relative to `root`,
/// skipping build output, hidden directories and caches (see `skip`).
pub fn source_files(root: &Path, dirs: &[&str], skip: fn(&str) -> bool) -> Vec<String> {
    fn walk(dir: &Path, skip: fn(&str) -> bool, out: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            match entry.file_type() {
                Ok(t) if t.is_dir() && !skip(&name) => walk(&path, skip, out),
                Ok(t) if t.is_file() => {
                    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
                    if SOURCE_EXTENSIONS.contains(&ext) {
                        out.push(path);
                    }
                }
                _ => {}
            }
        }
    }
    let mut found = Vec::new();
    for dir in dirs {
        walk(&root.join(dir), skip, &mut found);
    }
    found
        .iter()
        .map(|p| {
            p.strip_prefix(root)
                .unwrap_or(p)
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect()
}

fn allowed<'a>(list: &'a [(&str, &str)], file: &str) -> Option<&'a str> {
    list.iter().find(|(f, _)| *f == file).map(|(_, why)| *why)
}

/// The line-count check over `files` (relative paths) with their texts.
pub fn check_lengths(files: &[(String, String)]) -> Vec<Finding> {
    check_lengths_allowing(files, LONG_ALLOWED)
}

/// The line-count check, with `long_allowed` in place of [`LONG_ALLOWED`].
fn check_lengths_allowing(
    files: &[(String, String)],
    long_allowed: &[(&str, &str)],
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (file, text) in files {
        let lines = text.lines().count();
        let long = lines > MAX_LINES;
        match (long, allowed(long_allowed, file)) {
            (true, None) => findings.push(Finding {
                file: file.clone(),
                reason: format!(
                    "{lines} lines, over the limit of {MAX_LINES}: split it along its seams"
                ),
                fail: true,
            }),
            (true, Some(why)) => findings.push(Finding {
                file: file.clone(),
                reason: format!("{lines} lines, over the limit of {MAX_LINES} (allowed: {why})"),
                fail: false,
            }),
            (false, Some(_)) => findings.push(Finding {
                file: file.clone(),
                reason: format!(
                    "{lines} lines: no longer over the limit; remove it from LONG_ALLOWED in xtask/src/layout.rs"
                ),
                fail: false,
            }),
            (false, None) => {}
        }
    }
    findings
}

/// The text of `### <krate>` in `doc`, up to the next heading.
pub fn section<'a>(doc: &'a str, krate: &str) -> Option<&'a str> {
    let heading = format!("### {krate}");
    let start = doc
        .match_indices(&heading)
        .find(|(at, _)| {
            (*at == 0 || doc[..*at].ends_with('\n'))
                && doc[at + heading.len()..].starts_with(['\n', ' ', '\r'])
        })
        .map(|(at, _)| at + heading.len())?;
    let rest = &doc[start..];
    let end = rest.find("\n#").map_or(rest.len(), |i| i + 1);
    Some(&rest[..end])
}

/// The backticked names in `text`.
fn backticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// Whether `section` names `path` (relative to its crate directory).
pub fn names_file(section: &str, path: &str) -> bool {
    let names = backticked(section);
    let has = |n: &str| names.contains(&n);
    if has(path) {
        return true;
    }
    for root in ["src/", "python/pynto/"] {
        if let Some(inner) = path.strip_prefix(root) {
            return has(inner);
        }
    }
    if path.starts_with("python/") {
        return false;
    }
    let file_name = path.rsplit('/').next().unwrap_or(path);
    has(file_name)
        || names
            .iter()
            .any(|n| n.ends_with('/') && n.len() > 1 && path.starts_with(n))
}

/// The code-map check: every file in `files` (relative to the workspace root) is named in its
/// crate's section of `doc`.
pub fn check_map(doc: &str, files: &[String]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for file in files {
        let (krate, inner) = file.split_once('/').unwrap_or(("", file));
        let mapped = section(doc, krate).is_some_and(|s| names_file(s, inner));
        match (mapped, allowed(UNMAPPED_ALLOWED, file)) {
            (false, None) => {
                let name = ["src/", "python/pynto/"]
                    .iter()
                    .find_map(|root| inner.strip_prefix(root))
                    .unwrap_or(inner);
                findings.push(Finding {
                    file: file.clone(),
                    reason: format!(
                        "not in ARCHITECTURE.md's code map: name `{name}` in its `### {krate}` section"
                    ),
                    fail: true,
                })
            }
            (false, Some(why)) => findings.push(Finding {
                file: file.clone(),
                reason: format!("not in ARCHITECTURE.md's code map (allowed: {why})"),
                fail: false,
            }),
            (true, Some(_)) => findings.push(Finding {
                file: file.clone(),
                reason:
                    "now in the code map; remove it from UNMAPPED_ALLOWED in xtask/src/layout.rs"
                        .into(),
                fail: false,
            }),
            (true, None) => {}
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# Architecture\n\n### pynto-proto\n- `message.rs`, `codec/decode.rs`; tests in `tests/`.\n\n### pynto-py\nRust: `host.rs`. Python: `_host.py`. Examples: `examples/`.\n### pynto-py-extra\n`other.rs`\n## Invariants\n`lib.rs`\n";

    #[test]
    fn sections_end_at_the_next_heading() {
        let proto = section(DOC, "pynto-proto").unwrap();
        assert!(proto.contains("message.rs") && !proto.contains("host.rs"));
        let py = section(DOC, "pynto-py").unwrap();
        assert!(py.contains("_host.py") && !py.contains("other.rs"));
        assert!(section(DOC, "pynto-cli").is_none());
    }

    #[test]
    fn files_are_named_by_path_or_directory() {
        let files: Vec<String> = [
            "pynto-proto/src/message.rs",
            "pynto-proto/src/codec/decode.rs",
            "pynto-proto/tests/golden.rs",
            "pynto-py/src/host.rs",
            "pynto-py/python/pynto/_host.py",
            "pynto-py/examples/tour.py",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(check_map(DOC, &files), vec![]);
        let missing: Vec<String> = [
            // Not named (`decode.rs` alone would not do for a nested source file either).
            "pynto-proto/src/op.rs",
            // A source file must be named itself, not through `src/`'s directory.
            "pynto-proto/src/lib.rs",
            // Named only in another crate's section.
            "pynto-py/src/other.rs",
            "pynto-py/python/pynto/_service.py",
            // No section at all.
            "pynto-cli/src/main.rs",
        ]
        .map(String::from)
        .to_vec();
        let found = check_map(DOC, &missing);
        assert_eq!(found.len(), missing.len(), "{found:?}");
        assert!(found.iter().all(|f| f.fail));
    }

    #[test]
    fn long_files_fail_unless_allowed() {
        let long = "x\n".repeat(MAX_LINES + 1);
        let short = "x\n".repeat(MAX_LINES);
        let allowed = [("pynto-cli/src/splitting.rs", "being split")];
        let found = check_lengths_allowing(
            &[
                ("pynto-cli/src/big.rs".into(), long.clone()),
                ("pynto-cli/src/ok.rs".into(), short.clone()),
                (allowed[0].0.into(), long),
            ],
            &allowed,
        );
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].fail && found[0].reason.contains("801 lines"));
        assert!(!found[1].fail && found[1].reason.contains("being split"));
        let found = check_lengths_allowing(&[(allowed[0].0.into(), short)], &allowed);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(!found[0].fail && found[0].reason.contains("no longer over the limit"));
    }
}
