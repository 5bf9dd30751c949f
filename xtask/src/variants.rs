//! Extracts the variant names of a `pub enum` from Rust source text, for the protocol-doc tidy check.
//!
//! This is a small lexer, not a Rust parser: it drops comments (so doc comments never count),
//! skips string and char literals (so `#[error("{0}")]` cannot confuse the nesting), finds the
//! enum's body, and takes the first identifier of every top-level comma-separated item in it,
//! after any `#[...]` attributes. That covers unit (`Name,`), tuple (`Name(..)`), struct
//! (`Name { .. }`) and discriminant (`Name = 1`) variants, on one line or many.

/// Removes comments and replaces the contents of string and char literals with spaces.
/// Newlines are kept, so the result lines up with the input line by line.
pub fn strip_comments_and_literals(src: &str) -> String {
    let chars: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            // Block comments nest in Rust.
            let mut depth = 0usize;
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
                    if chars[i] == '\n' {
                        out.push('\n');
                    }
                    i += 1;
                }
            }
        } else if c == 'r' && matches!(next, Some('"' | '#')) && is_raw_string_start(&chars, i) {
            // r"..." or r#"..."#
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            j += 1; // the opening quote
            out.push_str("\"\"");
            while j < chars.len() {
                if chars[j] == '"' && (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                if chars[j] == '\n' {
                    out.push('\n');
                }
                j += 1;
            }
            i = j;
        } else if c == '"' {
            i += 1;
            out.push_str("\"\"");
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if chars.get(i) == Some(&'\n') {
                    out.push('\n');
                }
                i += 1;
            }
            i += 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{1F600}') or a lifetime ('a): only the former is skipped.
            if next == Some('\\') {
                let mut j = i + 2;
                while j < chars.len() && chars[j] != '\'' && chars[j] != '\n' {
                    j += 1;
                }
                out.push_str("' '");
                i = j + 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                out.push_str("' '");
                i += 3;
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn is_raw_string_start(chars: &[char], i: usize) -> bool {
    // Not part of a longer identifier (e.g. `for"`), and `r#ident` is a raw identifier, not a string.
    if i > 0 && is_ident_char(chars[i - 1]) {
        return false;
    }
    let mut j = i + 1;
    while chars.get(j) == Some(&'#') {
        j += 1;
    }
    chars.get(j) == Some(&'"')
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The variant names of `pub enum <name>` in `src`, in declaration order.
/// `Err` if the enum is not found or its body is unbalanced.
pub fn enum_variants(src: &str, name: &str) -> Result<Vec<String>, String> {
    let code: Vec<char> = strip_comments_and_literals(src).chars().collect();
    let body_start =
        find_enum_body(&code, name).ok_or_else(|| format!("`pub enum {name}` not found"))?;

    let mut variants = Vec::new();
    let mut depth = 0usize;
    // The top-level text of the current item (nested groups such as attributes left out).
    let mut item = String::new();
    let mut i = body_start;
    loop {
        let Some(&c) = code.get(i) else {
            return Err(format!("`pub enum {name}`: unbalanced braces"));
        };
        i += 1;
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' if depth > 0 => depth -= 1,
            '}' => {
                push_variant(&item, &mut variants);
                return Ok(variants);
            }
            ')' | ']' => return Err(format!("`pub enum {name}`: unbalanced `{c}`")),
            ',' if depth == 0 => {
                push_variant(&item, &mut variants);
                item.clear();
            }
            _ if depth == 0 => item.push(c),
            _ => {}
        }
        // Keep items' tokens apart where a group was dropped, e.g. `#[doc]Name`.
        if depth > 0 && !item.ends_with(' ') {
            item.push(' ');
        }
    }
}

/// The index just after the `{` that opens `pub enum <name>`'s body.
fn find_enum_body(code: &[char], name: &str) -> Option<usize> {
    let word_at = |i: usize, word: &str| {
        let w: Vec<char> = word.chars().collect();
        code.get(i..i + w.len()) == Some(&w[..])
            && !(i > 0 && is_ident_char(code[i - 1]))
            && !code.get(i + w.len()).is_some_and(|&c| is_ident_char(c))
    };
    for i in 0..code.len() {
        if !word_at(i, "enum") {
            continue;
        }
        // `pub` right before (any whitespace between), and not `pub(crate)` and the like.
        let mut before = i;
        while before > 0 && code[before - 1].is_whitespace() {
            before -= 1;
        }
        if before < 3 || !word_at(before - 3, "pub") {
            continue;
        }
        let mut after = i + 4;
        while code.get(after).is_some_and(|c| c.is_whitespace()) {
            after += 1;
        }
        if word_at(after, name) {
            let brace = (after..code.len()).find(|&j| code[j] == '{')?;
            return Some(brace + 1);
        }
    }
    None
}

fn push_variant(item: &str, variants: &mut Vec<String>) {
    // After stripping nested groups an attribute leaves just `#`; skip it and take the first identifier.
    let ident: String = item
        .trim_start_matches(|c: char| c.is_whitespace() || c == '#')
        .chars()
        .take_while(|&c| is_ident_char(c))
        .collect();
    if !ident.is_empty() {
        variants.push(ident);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_enum_with_all_variant_shapes() {
        let src = r#"
//! Module docs mentioning pub enum Message { Fake }.

/// The enum. It has {braces}, (parens) and a receiver's apostrophe in its docs.
#[derive(Debug)]
pub enum Message {
    /// A unit variant; `NotAVariant,` in a doc comment does not count.
    Hello,
    // A plain comment: Bogus(
    Request(Request),
    /// A struct variant.
    Reply {
        /// Nested field.
        seq: Seq,
        value: Vec<(Oid, u64)>,
    },
    #[serde(rename = "x{")]
    Renamed(&'static str),
    Quoted(char) /* '{' */,
    WithDiscriminant = 7,
    Last
}

pub enum Other { Nope }
"#;
        assert_eq!(
            enum_variants(src, "Message").unwrap(),
            [
                "Hello",
                "Request",
                "Reply",
                "Renamed",
                "Quoted",
                "WithDiscriminant",
                "Last"
            ]
        );
        assert_eq!(enum_variants(src, "Other").unwrap(), ["Nope"]);
    }

    #[test]
    fn single_line_enum_and_generics() {
        let src = "pub enum Op<T: Clone> { A, B(T), C { x: u8 }, }";
        assert_eq!(enum_variants(src, "Op").unwrap(), ["A", "B", "C"]);
    }

    #[test]
    fn name_must_match_whole_word_and_be_pub() {
        let src = "pub enum ValueKind { Wrong }\nenum Value { Private }\npub(crate) enum Value { Crate }\n";
        assert!(enum_variants(src, "Value").is_err());
        let src = format!("{src}pub  enum  Value {{ Right }}");
        assert_eq!(enum_variants(&src, "Value").unwrap(), ["Right"]);
    }

    #[test]
    fn char_literals_strings_and_lifetimes() {
        let src = "pub enum E<'a> { A(&'a str), B = '}' as isize, C = b'{' as isize, D(r#\"}\"#) }";
        assert_eq!(enum_variants(src, "E").unwrap(), ["A", "B", "C", "D"]);
    }

    #[test]
    fn unbalanced_or_missing() {
        assert!(enum_variants("pub enum E { A(", "E").is_err());
        assert!(enum_variants("pub struct E;", "E").is_err());
    }

    #[test]
    fn strip_keeps_line_structure() {
        let src = "a // x\n/* y\n z */ b \"s\nt\" c";
        let out = strip_comments_and_literals(src);
        assert_eq!(out.lines().count(), src.lines().count());
        assert!(!out.contains('x') && !out.contains('y') && !out.contains('s'));
    }
}
