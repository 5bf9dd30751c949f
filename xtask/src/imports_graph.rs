//! The import graph of one crate's source files, and the cycles in it.
//!
//! A file imports another when it names it through a `crate::` path: a `use crate::a::b;`, a
//! grouped `use crate::{a, b::c};`, or an inline `crate::a::f()` in code (comments and string
//! literals do not count). The crate root may also name its modules without `crate::`
//! (`pub use a::B;`). A module's submodules are part of it: `src/a/b.rs` is node `a`, and a
//! path to a name the root re-exports (`crate::Error`) is an edge to `lib`.
//!
//! Files that import each other in a circle have no order a reader can learn them in, and no
//! layer that can change without the others; tidy fails such a cycle in the crates listed in
//! `tidy.rs`, naming it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Node name -> the nodes it imports (never itself).
pub type Graph = BTreeMap<String, BTreeSet<String>>;

/// The node of a file given by its path under `src/`: `a.rs` and `a/b.rs` are `a`,
/// `lib.rs` is `lib`; `None` for a file that is not Rust.
pub fn node_of(path: &str) -> Option<String> {
    let first = path.split('/').next()?;
    if path.contains('/') {
        return Some(first.to_string());
    }
    first.strip_suffix(".rs").map(str::to_string)
}

/// The graph of a crate from its files: (path under `src/`, text) pairs.
pub fn graph(files: &[(String, String)]) -> Graph {
    let mut graph = Graph::new();
    for (path, _) in files {
        if let Some(node) = node_of(path) {
            graph.entry(node).or_default();
        }
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for (path, text) in files {
        let Some(node) = node_of(path) else { continue };
        let code = code_only(text);
        let mut named: BTreeSet<String> = BTreeSet::new();
        for segment in crate_paths(&code) {
            named.insert(if modules.contains(&segment) {
                segment
            } else {
                "lib".to_string()
            });
        }
        if path == "lib.rs" {
            named.extend(
                root_uses(&code)
                    .into_iter()
                    .filter(|segment| modules.contains(segment)),
            );
        }
        named.remove(&node);
        graph.entry(node).or_default().extend(named);
    }
    graph
}

/// `text` with comments and the contents of string and character literals blanked out.
pub fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
            continue;
        }
        // Raw strings: r"..", r#".."#, br#".."#.
        if c == 'r' && !prev_is_ident(&chars, i) {
            let mut j = i + 1;
            while chars.get(j) == Some(&'#') {
                j += 1;
            }
            if chars.get(j) == Some(&'"') {
                let hashes = j - i - 1;
                j += 1;
                loop {
                    match chars.get(j) {
                        None => break,
                        Some('"') if (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) => {
                            j += 1 + hashes;
                            break;
                        }
                        _ => j += 1,
                    }
                }
                out.push_str("\"\"");
                i = j;
                continue;
            }
        }
        if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            out.push_str("\"\"");
            i += 1;
            continue;
        }
        // A character literal ('a', '\n', '\u{..}'), not a lifetime ('a).
        if c == '\'' {
            let end = if next == Some('\\') {
                (i + 3..chars.len()).find(|&k| chars[k] == '\'')
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            if let Some(end) = end {
                out.push_str("' '");
                i = end + 1;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn prev_is_ident(chars: &[char], i: usize) -> bool {
    i > 0 && is_ident(chars[i - 1])
}

/// The first segment of every path after a standalone `crate::` in `code`; in a group
/// (`crate::{a, b::c}`), each member's first segment.
pub fn crate_paths(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    let mut offset = 0;
    while let Some(at) = rest.find("crate::") {
        let start = offset + at;
        let standalone = code[..start]
            .chars()
            .next_back()
            .is_none_or(|c| !is_ident(c));
        let after = &code[start + "crate::".len()..];
        if standalone {
            found.extend(first_segments(after));
        }
        offset = start + "crate::".len();
        rest = &code[offset..];
    }
    found
}

/// The first segments `path` (what follows `crate::` or `use `) begins with: one ident, or
/// those of each member of a `{...}` group.
fn first_segments(path: &str) -> Vec<String> {
    let path = path.trim_start();
    if let Some(group) = path.strip_prefix('{') {
        let mut members = Vec::new();
        let mut depth = 0;
        let mut member = String::new();
        for c in group.chars() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    members.push(std::mem::take(&mut member));
                    continue;
                }
                _ => {}
            }
            member.push(c);
        }
        members.push(member);
        return members
            .iter()
            .filter_map(|m| ident_at(m.trim_start()))
            .filter(|s| s != "self")
            .collect();
    }
    ident_at(path).into_iter().collect()
}

fn ident_at(text: &str) -> Option<String> {
    let ident: String = text.chars().take_while(|&c| is_ident(c)).collect();
    (!ident.is_empty()).then_some(ident)
}

/// The first segments of the crate root's relative `use` paths (`pub use a::B;`).
fn root_uses(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    for statement in code.split(';') {
        let words = statement.trim_start();
        let words = words
            .strip_prefix("pub(crate)")
            .or_else(|| words.strip_prefix("pub"))
            .unwrap_or(words)
            .trim_start();
        if let Some(path) = words.strip_prefix("use ") {
            let path = path.trim_start();
            if !path.starts_with("crate::") {
                found.extend(first_segments(path));
            }
        }
    }
    found
}

/// The cycles of `graph`: one per knot of files that import each other (a strongly connected
/// component of more than one node), as the shortest circle through its first node, with the
/// knot's other members after it.
pub fn cycles(graph: &Graph) -> Vec<(Vec<String>, Vec<String>)> {
    let mut found = Vec::new();
    for component in components(graph) {
        if component.len() < 2 {
            continue;
        }
        let members: BTreeSet<&String> = component.iter().collect();
        let start = &component[0];
        let circle = shortest_circle(graph, start, &members);
        let others = component
            .iter()
            .filter(|n| !circle.contains(n))
            .cloned()
            .collect();
        found.push((circle, others));
    }
    found
}

/// The shortest path from `start` back to itself within `members`, as `[start, ..., start]`.
fn shortest_circle(graph: &Graph, start: &String, members: &BTreeSet<&String>) -> Vec<String> {
    let mut came_from: BTreeMap<&String, &String> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for next in &graph[node] {
            if !members.contains(next) {
                continue;
            }
            if next == start {
                let mut path = vec![start.clone()];
                let mut at = node;
                while at != start {
                    path.push(at.clone());
                    at = came_from[at];
                }
                path.push(start.clone());
                path.reverse();
                return path;
            }
            if !came_from.contains_key(next) {
                came_from.insert(next, node);
                queue.push_back(next);
            }
        }
    }
    vec![start.clone()]
}

/// Strongly connected components (Tarjan), each sorted, in order of their first member.
fn components(graph: &Graph) -> Vec<Vec<String>> {
    struct State<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g String, usize>,
        low: BTreeMap<&'g String, usize>,
        stack: Vec<&'g String>,
        on_stack: BTreeSet<&'g String>,
        out: Vec<Vec<String>>,
    }
    fn visit<'g>(s: &mut State<'g>, node: &'g String) {
        let i = s.index.len();
        s.index.insert(node, i);
        s.low.insert(node, i);
        s.stack.push(node);
        s.on_stack.insert(node);
        let graph = s.graph;
        for next in graph.get(node).into_iter().flatten() {
            if !graph.contains_key(next) {
                continue;
            }
            if !s.index.contains_key(next) {
                visit(s, next);
                let low = s.low[node].min(s.low[next]);
                s.low.insert(node, low);
            } else if s.on_stack.contains(next) {
                let low = s.low[node].min(s.index[next]);
                s.low.insert(node, low);
            }
        }
        if s.low[node] == s.index[node] {
            let mut component = Vec::new();
            while let Some(member) = s.stack.pop() {
                s.on_stack.remove(member);
                component.push(member.clone());
                if member == node {
                    break;
                }
            }
            component.sort();
            s.out.push(component);
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for node in graph.keys() {
        if !state.index.contains_key(node) {
            visit(&mut state, node);
        }
    }
    state.out.sort();
    state.out
}

/// One line per cycle of `graph`, for a report.
pub fn describe_cycles(graph: &Graph) -> Vec<String> {
    cycles(graph)
        .into_iter()
        .map(|(circle, others)| {
            let mut line = format!(
                "files import each other in a cycle: {}",
                circle.join(" -> ")
            );
            if !others.is_empty() {
                line.push_str(&format!(
                    " (in one knot with {}); each file may only import files below it",
                    others.join(", ")
                ));
            } else {
                line.push_str("; each file may only import files below it");
            }
            line
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect()
    }

    fn edges(graph: &Graph, node: &str) -> Vec<String> {
        graph[node].iter().cloned().collect()
    }

    #[test]
    fn nodes_fold_submodules_into_their_module() {
        assert_eq!(node_of("session.rs").as_deref(), Some("session"));
        assert_eq!(node_of("codec/decode/dry.rs").as_deref(), Some("codec"));
        assert_eq!(node_of("lib.rs").as_deref(), Some("lib"));
        assert_eq!(node_of("notes.txt"), None);
    }

    #[test]
    fn every_form_of_crate_path_is_an_edge() {
        let graph = graph(&files(&[
            (
                "lib.rs",
                "mod a; mod b; mod c; mod d; mod e;\npub use a::A;\npub use std::fmt;",
            ),
            (
                "a.rs",
                "use crate::b::B;\nuse crate::{c, d::{D, E}};\nfn f() { crate::e::go(); }",
            ),
            ("b.rs", "use crate::Error;\nuse super::x; // use crate::c;"),
            (
                "c.rs",
                "/* crate::d */ const S: &str = \"crate::e\"; fn f(c: char) -> bool { c == '\"' }",
            ),
            (
                "d.rs",
                "fn f<'a>(x: &'a str) -> char { let _ = r#\"crate::a\"#; 'x' }",
            ),
            ("e.rs", "pub(crate) use crate::d::{self};"),
            ("e/inner.rs", "use super::E; use crate::b;"),
        ]));
        assert_eq!(edges(&graph, "a"), ["b", "c", "d", "e"]);
        assert_eq!(edges(&graph, "b"), ["lib"]);
        assert!(edges(&graph, "c").is_empty());
        assert!(edges(&graph, "d").is_empty());
        assert_eq!(edges(&graph, "e"), ["b", "d"]);
        assert_eq!(edges(&graph, "lib"), ["a"]);
    }

    #[test]
    fn a_layered_graph_has_no_cycle() {
        let graph = graph(&files(&[
            ("lib.rs", "mod low; mod mid; mod top;"),
            ("low.rs", ""),
            ("mid.rs", "use crate::low;"),
            ("top.rs", "use crate::{low, mid};"),
        ]));
        assert!(cycles(&graph).is_empty());
        assert!(describe_cycles(&graph).is_empty());
    }

    #[test]
    fn a_cycle_is_named_with_its_knot() {
        let graph = graph(&files(&[
            ("lib.rs", "mod a; mod b; mod c; mod d; mod x; mod y;"),
            ("a.rs", "use crate::b;"),
            ("b.rs", "use crate::c;"),
            ("c.rs", "use crate::{a, d};"),
            ("d.rs", "fn f() { crate::b::g() }"),
            ("x.rs", "use crate::y;"),
            ("y/z.rs", "use crate::x;"),
        ]));
        let found = cycles(&graph);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].0, ["a", "b", "c", "a"]);
        assert_eq!(found[0].1, ["d"]);
        assert_eq!(found[1].0, ["x", "y", "x"]);
        let lines = describe_cycles(&graph);
        assert!(lines[0].contains("a -> b -> c -> a"), "{}", lines[0]);
        assert!(lines[0].contains("with d"), "{}", lines[0]);
    }
}
