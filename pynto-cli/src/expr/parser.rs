//! The expression language's parser: tokens to statements (`name = expr` or `expr`,
//! separated by `;`), by recursive descent with one token of lookahead.

use pynto_proto::Value;

use super::lexer::{err, lex, SyntaxError, Tok, Token};

/// An expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A name: `root`, `modules`, a bound name or a builtin.
    Name(String),
    /// An integer literal (folded with a leading minus).
    Int(i128),
    /// Any other literal.
    Lit(Value),
    /// `base.name`.
    Attr(Box<Expr>, String),
    /// `callee(positional..., keyword=...)`.
    Call(Box<Expr>, Vec<Expr>, Vec<(String, Expr)>),
    /// `base[key]`.
    Index(Box<Expr>, Box<Expr>),
    /// `start:stop:step` inside brackets (each part optional).
    Slice(Box<[Option<Expr>; 3]>),
    /// `(a, b)`.
    Tuple(Vec<Expr>),
    /// `[a, b]`.
    List(Vec<Expr>),
    /// `{a, b}`.
    Set(Vec<Expr>),
    /// `{k: v}`.
    Dict(Vec<(Expr, Expr)>),
    /// `-x`.
    Neg(Box<Expr>),
}

/// A statement: an expression, or a binding.
#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    /// `name = expr`.
    Assign(String, Expr),
    /// `expr`.
    Expr(Expr),
}

/// Positional and keyword argument expressions of a call.
type CallArgs = (Vec<Expr>, Vec<(String, Expr)>);

const RESERVED: [&str; 3] = ["None", "True", "False"];

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.tokens[self.at].tok
    }

    fn peek2(&self) -> &Tok {
        &self.tokens[(self.at + 1).min(self.tokens.len() - 1)].tok
    }

    fn col(&self) -> usize {
        self.tokens[self.at].col
    }

    fn next(&mut self) -> Tok {
        let tok = self.tokens[self.at].tok.clone();
        if self.at + 1 < self.tokens.len() {
            self.at += 1;
        }
        tok
    }

    fn eat(&mut self, c: char) -> bool {
        if *self.peek() == Tok::Punct(c) {
            self.next();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), SyntaxError> {
        if self.eat(c) {
            Ok(())
        } else {
            err(
                self.col(),
                format!("expected '{c}', found {}", describe(self.peek())),
            )
        }
    }

    fn program(&mut self) -> Result<Vec<Stmt>, SyntaxError> {
        let mut stmts = Vec::new();
        loop {
            while self.eat(';') {}
            if *self.peek() == Tok::End {
                return Ok(stmts);
            }
            stmts.push(self.statement()?);
            if *self.peek() != Tok::End && !self.eat(';') {
                return err(
                    self.col(),
                    format!("expected ';' or the end, found {}", describe(self.peek())),
                );
            }
        }
    }

    fn statement(&mut self) -> Result<Stmt, SyntaxError> {
        if let (Tok::Name(name), Tok::Punct('=')) = (self.peek().clone(), self.peek2()) {
            if RESERVED.contains(&name.as_str()) {
                return err(self.col(), format!("cannot assign to {name}"));
            }
            self.next();
            self.next();
            return Ok(Stmt::Assign(name, self.expr()?));
        }
        Ok(Stmt::Expr(self.expr()?))
    }

    fn expr(&mut self) -> Result<Expr, SyntaxError> {
        if self.eat('-') {
            return Ok(match self.expr()? {
                Expr::Int(i) => Expr::Int(-i),
                Expr::Lit(Value::Float(f)) => Expr::Lit(Value::Float(-f)),
                other => Expr::Neg(Box::new(other)),
            });
        }
        if self.eat('+') {
            return self.expr();
        }
        let mut e = self.atom()?;
        loop {
            if self.eat('.') {
                let col = self.col();
                match self.next() {
                    Tok::Name(name) => e = Expr::Attr(Box::new(e), name),
                    other => {
                        return err(
                            col,
                            format!("expected a name after '.', found {}", describe(&other)),
                        )
                    }
                }
            } else if self.eat('(') {
                let (args, kwargs) = self.arguments()?;
                e = Expr::Call(Box::new(e), args, kwargs);
            } else if self.eat('[') {
                let key = self.subscript()?;
                self.expect(']')?;
                e = Expr::Index(Box::new(e), Box::new(key));
            } else {
                return Ok(e);
            }
        }
    }

    /// An index, or a slice `start:stop:step` with each part optional.
    fn subscript(&mut self) -> Result<Expr, SyntaxError> {
        let part = |p: &mut Parser| -> Result<Option<Expr>, SyntaxError> {
            if matches!(p.peek(), Tok::Punct(':' | ']')) {
                Ok(None)
            } else {
                p.expr().map(Some)
            }
        };
        let start = part(self)?;
        if !self.eat(':') {
            return match start {
                Some(e) => Ok(e),
                None => err(self.col(), "expected an index"),
            };
        }
        let stop = part(self)?;
        let step = if self.eat(':') { part(self)? } else { None };
        Ok(Expr::Slice(Box::new([start, stop, step])))
    }

    fn arguments(&mut self) -> Result<CallArgs, SyntaxError> {
        let mut args = Vec::new();
        let mut kwargs: Vec<(String, Expr)> = Vec::new();
        while !self.eat(')') {
            let col = self.col();
            if let (Tok::Name(name), Tok::Punct('=')) = (self.peek().clone(), self.peek2()) {
                self.next();
                self.next();
                if kwargs.iter().any(|(k, _)| *k == name) {
                    return err(col, format!("keyword argument repeated: {name}"));
                }
                kwargs.push((name, self.expr()?));
            } else {
                if !kwargs.is_empty() {
                    return err(col, "positional argument follows keyword argument");
                }
                args.push(self.expr()?);
            }
            if !self.eat(',') {
                self.expect(')')?;
                break;
            }
        }
        Ok((args, kwargs))
    }

    /// Items up to `close`, separated by commas; whether a trailing comma was seen.
    fn items(&mut self, close: char) -> Result<(Vec<Expr>, bool), SyntaxError> {
        let mut items = Vec::new();
        let mut comma = false;
        while !self.eat(close) {
            items.push(self.expr()?);
            comma = self.eat(',');
            if !comma {
                self.expect(close)?;
                break;
            }
        }
        Ok((items, comma))
    }

    fn atom(&mut self) -> Result<Expr, SyntaxError> {
        let col = self.col();
        match self.next() {
            Tok::Name(name) => Ok(match name.as_str() {
                "None" => Expr::Lit(Value::None),
                "True" => Expr::Lit(Value::Bool(true)),
                "False" => Expr::Lit(Value::Bool(false)),
                _ => Expr::Name(name),
            }),
            Tok::Int(i) => Ok(Expr::Int(i)),
            Tok::Float(f) => Ok(Expr::Lit(Value::Float(f))),
            Tok::Imag(f) => Ok(Expr::Lit(Value::Complex(0.0, f))),
            Tok::Str(mut s) => {
                // Adjacent string literals concatenate, as in Python.
                while let Tok::Str(more) = self.peek().clone() {
                    self.next();
                    s.push_str(&more);
                }
                Ok(Expr::Lit(Value::Str(s)))
            }
            Tok::Bytes(mut b) => {
                while let Tok::Bytes(more) = self.peek().clone() {
                    self.next();
                    b.extend_from_slice(&more);
                }
                Ok(Expr::Lit(Value::Bytes(b.into())))
            }
            Tok::Punct('(') => {
                let (items, comma) = self.items(')')?;
                if items.len() == 1 && !comma {
                    Ok(items.into_iter().next().expect("one item"))
                } else {
                    Ok(Expr::Tuple(items))
                }
            }
            Tok::Punct('[') => Ok(Expr::List(self.items(']')?.0)),
            Tok::Punct('{') => {
                if self.eat('}') {
                    return Ok(Expr::Dict(Vec::new()));
                }
                let first = self.expr()?;
                if self.eat(':') {
                    let mut pairs = vec![(first, self.expr()?)];
                    while self.eat(',') {
                        if *self.peek() == Tok::Punct('}') {
                            break;
                        }
                        let k = self.expr()?;
                        self.expect(':')?;
                        pairs.push((k, self.expr()?));
                    }
                    self.expect('}')?;
                    Ok(Expr::Dict(pairs))
                } else {
                    let mut items = vec![first];
                    if self.eat(',') {
                        items.extend(self.items('}')?.0);
                    } else {
                        self.expect('}')?;
                    }
                    Ok(Expr::Set(items))
                }
            }
            other => err(
                col,
                format!("expected an expression, found {}", describe(&other)),
            ),
        }
    }
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Name(n) => format!("name '{n}'"),
        Tok::Int(_) | Tok::Float(_) | Tok::Imag(_) => "a number".to_string(),
        Tok::Str(_) | Tok::Bytes(_) => "a string".to_string(),
        Tok::Punct(c) => format!("'{c}'"),
        Tok::End => "the end of the input".to_string(),
    }
}

/// Parse one line: statements separated by `;` (an empty line is an empty program).
pub fn parse(src: &str) -> Result<Vec<Stmt>, SyntaxError> {
    Parser {
        tokens: lex(src)?,
        at: 0,
    }
    .program()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(src: &str) -> Expr {
        match parse(src).unwrap().as_slice() {
            [Stmt::Expr(e)] => e.clone(),
            other => panic!("{src}: {other:?}"),
        }
    }

    fn name(n: &str) -> Box<Expr> {
        Box::new(Expr::Name(n.to_string()))
    }

    fn s(text: &str) -> Expr {
        Expr::Lit(Value::Str(text.to_string()))
    }

    #[test]
    fn parses_paths_calls_and_indexing() {
        assert_eq!(
            one("modules.math.pow(3, -2)"),
            Expr::Call(
                Box::new(Expr::Attr(
                    Box::new(Expr::Attr(name("modules"), "math".into())),
                    "pow".into()
                )),
                vec![Expr::Int(3), Expr::Int(-2)],
                vec![]
            )
        );
        assert_eq!(
            one("x[0][\"k\"]"),
            Expr::Index(
                Box::new(Expr::Index(name("x"), Box::new(Expr::Int(0)))),
                Box::new(s("k"))
            )
        );
        assert_eq!(
            one("root.login('ann', pw=\"x\", n=None,)"),
            Expr::Call(
                Box::new(Expr::Attr(name("root"), "login".into())),
                vec![s("ann")],
                vec![("pw".into(), s("x")), ("n".into(), Expr::Lit(Value::None))]
            )
        );
        assert_eq!(
            one("-x.y"),
            Expr::Neg(Box::new(Expr::Attr(name("x"), "y".into())))
        );
    }

    #[test]
    fn parses_literals() {
        assert_eq!(one("-1.5e3"), Expr::Lit(Value::Float(-1500.0)));
        assert_eq!(one("1_000"), Expr::Int(1000));
        assert_eq!(one("0xff"), Expr::Int(255));
        assert_eq!(one("-0b101"), Expr::Int(-5));
        assert_eq!(one(".5"), Expr::Lit(Value::Float(0.5)));
        assert_eq!(one("2j"), Expr::Lit(Value::Complex(0.0, 2.0)));
        assert_eq!(one("True"), Expr::Lit(Value::Bool(true)));
        assert_eq!(one("'a\\n\\x41\\u00e9\\'' \"b\""), s("a\nAé'b"));
        assert_eq!(one("r'a\\n'"), s("a\\n"));
        assert_eq!(
            one("b'\\x00a'"),
            Expr::Lit(Value::Bytes(vec![0u8, b'a'].into()))
        );
        assert_eq!(one("()"), Expr::Tuple(vec![]));
        assert_eq!(one("(1)"), Expr::Int(1));
        assert_eq!(one("(1,)"), Expr::Tuple(vec![Expr::Int(1)]));
        assert_eq!(one("[1, 'a']"), Expr::List(vec![Expr::Int(1), s("a")]));
        assert_eq!(one("{}"), Expr::Dict(vec![]));
        assert_eq!(one("{'k': 1,}"), Expr::Dict(vec![(s("k"), Expr::Int(1))]));
        assert_eq!(one("{1, 2}"), Expr::Set(vec![Expr::Int(1), Expr::Int(2)]));
        assert_eq!(
            one("170141183460469231731687303715884105727"),
            Expr::Int(i128::MAX)
        );
    }

    #[test]
    fn parses_slices() {
        let slice = |a, b, c| Expr::Index(name("x"), Box::new(Expr::Slice(Box::new([a, b, c]))));
        assert_eq!(one("x[1:]"), slice(Some(Expr::Int(1)), None, None));
        assert_eq!(one("x[:-1]"), slice(None, Some(Expr::Int(-1)), None));
        assert_eq!(one("x[::2]"), slice(None, None, Some(Expr::Int(2))));
        assert_eq!(one("x[:]"), slice(None, None, None));
    }

    #[test]
    fn parses_statements() {
        assert_eq!(
            parse("m = modules.math; m.pi;").unwrap(),
            vec![
                Stmt::Assign("m".into(), Expr::Attr(name("modules"), "math".into())),
                Stmt::Expr(Expr::Attr(name("m"), "pi".into())),
            ]
        );
        assert_eq!(parse("  # just a comment").unwrap(), vec![]);
        assert_eq!(parse("").unwrap(), vec![]);
    }

    #[test]
    fn reports_syntax_errors_with_columns() {
        for (src, col, needle) in [
            ("m.", 3, "expected a name"),
            ("f(1", 4, "expected ')'"),
            ("f(a=1, 2)", 8, "positional argument follows keyword"),
            ("'abc", 1, "unterminated"),
            ("1 2", 3, "expected ';'"),
            ("a $ b", 3, "unexpected character"),
            ("None = 1", 1, "cannot assign"),
            ("99999999999999999999999999999999999999999", 1, "too large"),
            ("'\\x4'", 2, "hex digits"),
            ("b'é'", 3, "ASCII"),
            ("[1,", 4, "expected an expression"),
        ] {
            let e = parse(src).unwrap_err();
            assert_eq!(e.column, col, "{src}: {e}");
            assert!(e.message.contains(needle), "{src}: {e}");
        }
    }
}
