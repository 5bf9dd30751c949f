//! Tab completion of names for `pynto connect`: the bound names, builtins and commands at the
//! start of a path, and after a dot the attributes the peer lists for the object the path
//! so far names (`dir()` of it, one round trip). Evaluating the path costs attribute
//! lookups only: a path with a call or an index in it gets no completions.

use pynto_proto::{Op, Value};

use super::eval::{Evaluator, BUILTINS};
use super::parser::{parse, Expr, Stmt};
use super::value::Obj;

/// The console's commands, completed like names.
const COMMANDS: [&str; 3] = ["exit", "help", "quit"];

/// The dotted path that ends at the end of `before`: where it starts, the path before its
/// last dot (if any), and the part being typed after it.
fn typed_path(before: &str) -> Option<(usize, Option<&str>, &str)> {
    let start = before
        .char_indices()
        .rev()
        .take_while(|(_, c)| *c == '.' || *c == '_' || c.is_alphanumeric())
        .last()
        .map_or(before.len(), |(i, _)| i);
    let path = &before[start..];
    // A number, or a path inside a string literal, is not a name.
    let quotes = before[..start]
        .chars()
        .filter(|c| *c == '\'' || *c == '"')
        .count();
    if path.starts_with(|c: char| c.is_ascii_digit() || c == '.') || quotes % 2 == 1 {
        return None;
    }
    Some(match path.rfind('.') {
        Some(dot) => (start, Some(&path[..dot]), &path[dot + 1..]),
        None => (start, None, path),
    })
}

fn is_path(expr: &Expr) -> bool {
    match expr {
        Expr::Name(_) => true,
        Expr::Attr(base, _) => is_path(base),
        _ => false,
    }
}

impl Evaluator {
    /// Completions of the name that ends at byte `pos` of `line`: where the replaced part
    /// starts, and the candidates, sorted. Names starting with `_` are offered only once an
    /// `_` is typed. Failures (an unknown name, a broken connection) offer nothing.
    pub fn complete(&mut self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let Some((_, base, partial)) = typed_path(&line[..pos]) else {
            return (pos, Vec::new());
        };
        let names: Vec<String> = match base {
            None => self
                .vars
                .keys()
                .cloned()
                .chain(BUILTINS.iter().map(|s| s.to_string()))
                .chain(COMMANDS.iter().map(|s| s.to_string()))
                .chain(self.classic.then(|| "builtins".to_string()))
                .collect(),
            Some(base) => self.attributes(base).unwrap_or_default(),
        };
        let mut found: Vec<String> = names
            .into_iter()
            .filter(|n| n.starts_with(partial) && (partial.starts_with('_') || !n.starts_with('_')))
            .collect();
        found.sort();
        found.dedup();
        (pos - partial.len(), found)
    }

    /// `dir()` of the object `path` names, when it is a plain path to a remote object.
    fn attributes(&mut self, path: &str) -> Option<Vec<String>> {
        let program = parse(path).ok()?;
        let [Stmt::Expr(expr)] = program.as_slice() else {
            return None;
        };
        if !is_path(expr) {
            return None;
        }
        let Obj::Data(data) = self.eval(expr).ok()? else {
            return None;
        };
        let listed = self.request(data.remote()?, Op::Dir).ok()?;
        match listed.value {
            Value::Tuple(items) | Value::List(items) => Some(
                items
                    .into_iter()
                    .filter_map(|v| match v {
                        Value::Str(s) => Some(s),
                        _ => None,
                    })
                    .collect(),
            ),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_path_being_typed() {
        assert_eq!(typed_path("ro"), Some((0, None, "ro")));
        assert_eq!(typed_path("x = root.a"), Some((4, Some("root"), "a")));
        assert_eq!(
            typed_path("f(modules.os.pa"),
            Some((2, Some("modules.os"), "pa"))
        );
        assert_eq!(typed_path("root."), Some((0, Some("root"), "")));
        assert_eq!(typed_path(""), Some((0, None, "")));
        assert_eq!(typed_path("1.5"), None);
        assert_eq!(typed_path("root.f('a.b"), None);
    }
}
