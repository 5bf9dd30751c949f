//! `docs/protocol.md` names every variant of the protocol's enums, in backticks.

use std::path::Path;

/// The variant names of `pub enum <name>` in a source file, read naively: lines indented by
/// exactly four spaces that start with an uppercase identifier.
fn variants(source: &str, name: &str) -> Vec<String> {
    let header = format!("pub enum {name} {{");
    let start = source
        .find(&header)
        .unwrap_or_else(|| panic!("no enum {name}"))
        + header.len();
    let body = &source[start..];
    let end = body.find("\n}").expect("enum end");
    body[..end]
        .lines()
        .filter(|l| l.starts_with("    ") && !l.starts_with("     "))
        .map(str::trim)
        .filter(|l| l.starts_with(|c: char| c.is_ascii_uppercase()))
        .map(|l| {
            l.split(|c: char| !c.is_ascii_alphanumeric())
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[test]
fn every_variant_is_documented() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("../docs/protocol.md")).expect("docs/protocol.md");
    let enums = [
        ("message.rs", "Message"),
        ("message.rs", "Target"),
        ("op.rs", "Op"),
        ("op.rs", "CompareOp"),
        ("op.rs", "BinaryOp"),
        ("op.rs", "BinaryForm"),
        ("op.rs", "UnaryOp"),
        ("value.rs", "Value"),
        ("failure.rs", "ErrorKind"),
        ("codec.rs", "DecodeError"),
    ];
    let mut missing = Vec::new();
    for (file, name) in enums {
        let source = std::fs::read_to_string(root.join("src").join(file)).expect("source file");
        let found = variants(&source, name);
        assert!(
            found.len() >= 2,
            "read too few variants of {name}: {found:?}"
        );
        for v in found {
            if !doc.contains(&format!("`{v}`")) {
                missing.push(format!("{name}::{v}"));
            }
        }
    }
    assert!(missing.is_empty(), "not in docs/protocol.md: {missing:?}");
}
