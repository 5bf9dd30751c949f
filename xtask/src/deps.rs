//! The workspace's dependency rules (which internal crate may depend on which, and who may use
//! `serde`), checked against `cargo metadata --no-deps` output.

use crate::json::Json;

/// Which internal (workspace) crates each workspace package may depend on, in any dependency
/// kind (normal, dev or build). Layering: proto <- transport <- runtime <- {py, cli}.
/// A new workspace crate must be added here, or tidy fails.
pub const ALLOWED_INTERNAL: &[(&str, &[&str])] = &[
    ("pynto-proto", &[]),
    ("pynto-transport", &["pynto-proto"]),
    ("pynto-runtime", &["pynto-proto", "pynto-transport"]),
    (
        "pynto-py",
        &["pynto-proto", "pynto-transport", "pynto-runtime"],
    ),
    (
        "pynto-cli",
        &["pynto-proto", "pynto-transport", "pynto-runtime"],
    ),
    (
        "pynto-tests",
        &["pynto-proto", "pynto-transport", "pynto-runtime"],
    ),
    (
        "pynto-bench",
        &["pynto-proto", "pynto-transport", "pynto-runtime"],
    ),
    ("xtask", &[]),
];

/// Packages that may have `serde` or `serde_json` as a normal dependency. Only pynto-proto
/// derives serde (serialization stops at the wire types); pynto-cli builds `serde_json` values
/// for its `--json` output (a user-facing output format, not an IPC boundary: it derives
/// nothing). ARCHITECTURE.md says why.
pub const SERDE_ALLOWED: &[&str] = &["pynto-proto", "pynto-cli", "xtask"];

/// The crates [`SERDE_ALLOWED`] governs.
pub const SERDE_CRATES: &[&str] = &["serde", "serde_json"];

/// One dependency edge of a package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dep {
    /// The depended-on package's name (not its rename, if any).
    pub name: String,
    /// `None` for a normal dependency, `Some("dev")` or `Some("build")` otherwise.
    pub kind: Option<String>,
}

impl Dep {
    fn kind_label(&self) -> &str {
        match self.kind.as_deref() {
            None | Some("normal") => "dependency",
            Some("dev") => "dev-dependency",
            Some("build") => "build-dependency",
            Some(other) => other,
        }
    }
}

/// A workspace package as far as the rules care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub manifest_path: String,
    pub deps: Vec<Dep>,
}

/// Reads the workspace packages out of `cargo metadata --format-version 1 --no-deps` JSON.
pub fn packages_from_metadata(metadata: &Json) -> Result<Vec<Package>, String> {
    let packages = metadata
        .get("packages")
        .and_then(Json::as_array)
        .ok_or("cargo metadata: no `packages` array")?;
    packages
        .iter()
        .map(|pkg| {
            let field = |key: &str| {
                pkg.get(key)
                    .and_then(Json::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| format!("cargo metadata: package without `{key}`"))
            };
            let deps = pkg
                .get("dependencies")
                .and_then(Json::as_array)
                .ok_or("cargo metadata: package without `dependencies`")?
                .iter()
                .map(|dep| {
                    let name = dep
                        .get("name")
                        .and_then(Json::as_str)
                        .ok_or("cargo metadata: dependency without `name`")?;
                    let kind = dep.get("kind").and_then(Json::as_str).map(str::to_string);
                    Ok(Dep {
                        name: name.to_string(),
                        kind,
                    })
                })
                .collect::<Result<_, String>>()?;
            Ok(Package {
                name: field("name")?,
                manifest_path: field("manifest_path")?,
                deps,
            })
        })
        .collect()
}

/// Checks every rule; returns `(manifest path, reason)` for each violation.
pub fn check(packages: &[Package]) -> Vec<(String, String)> {
    let internal: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
    let mut problems = Vec::new();
    for pkg in packages {
        let mut report = |reason: String| problems.push((pkg.manifest_path.clone(), reason));
        let allowed = ALLOWED_INTERNAL
            .iter()
            .find(|(name, _)| *name == pkg.name)
            .map(|(_, allowed)| *allowed);
        let Some(allowed) = allowed else {
            report(format!(
                "workspace crate `{}` has no dependency rule; add it to ALLOWED_INTERNAL in xtask/src/deps.rs",
                pkg.name
            ));
            continue;
        };
        for dep in &pkg.deps {
            if internal.contains(&dep.name.as_str()) && !allowed.contains(&dep.name.as_str()) {
                let why = match dep.name.as_str() {
                    "pynto-py" | "pynto-cli" | "xtask" => {
                        " (no crate may depend on pynto-py, pynto-cli or xtask)".to_string()
                    }
                    _ if allowed.is_empty() => " (it may depend on no internal crate)".to_string(),
                    _ => format!(" (it may depend only on {})", allowed.join(", ")),
                };
                report(format!(
                    "`{}` has a {} on `{}`, which breaks the layering proto <- transport <- runtime <- {{py, cli}}{why}",
                    pkg.name,
                    dep.kind_label(),
                    dep.name
                ));
            }
            if SERDE_CRATES.contains(&dep.name.as_str())
                && matches!(dep.kind.as_deref(), None | Some("normal"))
                && !SERDE_ALLOWED.contains(&pkg.name.as_str())
            {
                report(format!(
                    "`{}` depends on `{}`; only pynto-proto derives serde (and pynto-cli writes JSON output)",
                    pkg.name, dep.name
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str, deps: &[(&str, Option<&str>)]) -> Package {
        Package {
            name: name.to_string(),
            manifest_path: format!("/ws/{name}/Cargo.toml"),
            deps: deps
                .iter()
                .map(|(n, k)| Dep {
                    name: n.to_string(),
                    kind: k.map(str::to_string),
                })
                .collect(),
        }
    }

    fn good_workspace() -> Vec<Package> {
        vec![
            pkg("pynto-proto", &[("serde", None), ("proptest", Some("dev"))]),
            pkg("pynto-transport", &[("pynto-proto", None)]),
            pkg(
                "pynto-runtime",
                &[
                    ("pynto-proto", None),
                    ("pynto-transport", None),
                    ("serde", Some("dev")),
                ],
            ),
            pkg(
                "pynto-py",
                &[
                    ("pynto-proto", None),
                    ("pynto-transport", None),
                    ("pynto-runtime", None),
                ],
            ),
            pkg("pynto-cli", &[("pynto-runtime", None)]),
            pkg("pynto-tests", &[("pynto-runtime", Some("dev"))]),
            pkg("xtask", &[("serde_json", None)]),
        ]
    }

    #[test]
    fn the_intended_layering_passes() {
        assert_eq!(check(&good_workspace()), vec![]);
    }

    #[test]
    fn upward_and_forbidden_edges_fail() {
        let mut ws = good_workspace();
        ws[0].deps.push(Dep {
            name: "pynto-transport".into(),
            kind: Some("dev".into()),
        });
        ws[1].deps.push(Dep {
            name: "pynto-runtime".into(),
            kind: None,
        });
        ws[5].deps.push(Dep {
            name: "pynto-py".into(),
            kind: Some("dev".into()),
        });
        ws[4].deps.push(Dep {
            name: "xtask".into(),
            kind: Some("build".into()),
        });
        let problems = check(&ws);
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems[0].0.ends_with("pynto-proto/Cargo.toml"));
        assert!(problems[0]
            .1
            .contains("dev-dependency on `pynto-transport`"));
        assert!(problems[1].1.contains("may depend only on pynto-proto"));
        assert!(problems[2].1.contains("build-dependency on `xtask`"));
        assert!(problems[3]
            .1
            .contains("`pynto-tests` has a dev-dependency on `pynto-py`"));
    }

    #[test]
    fn serde_only_in_proto() {
        let mut ws = good_workspace();
        ws[2].deps.push(Dep {
            name: "serde".into(),
            kind: None,
        });
        let problems = check(&ws);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].1.contains("only pynto-proto derives serde"));
    }

    #[test]
    fn serde_json_only_where_allowed() {
        let mut ws = good_workspace();
        ws[2].deps.push(Dep {
            name: "serde_json".into(),
            kind: None,
        });
        let problems = check(&ws);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].1.contains("depends on `serde_json`"));
        let mut ws = good_workspace();
        for pkg in &mut ws {
            if pkg.name == "pynto-cli" {
                pkg.deps.push(Dep {
                    name: "serde_json".into(),
                    kind: None,
                });
            }
        }
        assert!(check(&ws).is_empty());
    }

    #[test]
    fn unknown_crate_needs_a_rule() {
        let mut ws = good_workspace();
        ws.push(pkg("pynto-new", &[]));
        let problems = check(&ws);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].1.contains("no dependency rule"));
    }

    #[test]
    fn reads_cargo_metadata_json() {
        let json = crate::json::parse(
            r#"{"packages": [{"name": "pynto-transport", "manifest_path": "/ws/t/Cargo.toml",
                "dependencies": [{"name": "pynto-proto", "kind": null, "rename": null},
                                 {"name": "rcgen", "kind": "dev"}]}],
                "workspace_members": [], "version": 1}"#,
        )
        .unwrap();
        let pkgs = packages_from_metadata(&json).unwrap();
        assert_eq!(
            pkgs,
            vec![pkg(
                "pynto-transport",
                &[("pynto-proto", None), ("rcgen", Some("dev"))]
            )]
            .into_iter()
            .map(|mut p| {
                p.manifest_path = "/ws/t/Cargo.toml".into();
                p
            })
            .collect::<Vec<_>>()
        );
    }
}
