//! The expression language of `pynto connect` and `pynto call`: a lexer, a parser and an
//! evaluator that turns each step into protocol operations on the peer's objects.
//!
//! What it accepts (a small, Python-looking subset; it is not Python and runs nothing locally):
//!
//! - names: `root` (the peer's root object), `modules` (classic servers: `modules.math` imports
//!   `math` there; `modules["os.path"]` too), and names bound with `name = expr`;
//! - attribute paths `a.b.c`, calls `f(1, x, key="v")`, indexing `x[0]`, `x["k"]`;
//! - literals: ints (any sign and size up to 128 bits, `0x`/`0o`/`0b`, `_` separators), floats,
//!   imaginary numbers (`2j`), strings and bytes (`'..'`, `".."`, `b".."`, `r".."`, with
//!   Python's escapes), lists, tuples, sets, dicts, `None`, `True`, `False`, unary minus;
//! - builtins `dir(x)`, `repr(x)`, `str(x)`, `len(x)`;
//! - several statements separated by `;`.
//!
//! `obj.name(args)` is sent as one `CallMethod` round trip. Results that cross by value are
//! local copies; results that cross by reference stay handles to the remote objects and can be
//! used in later expressions, or passed back as arguments.

use std::collections::HashMap;
use std::fmt;

use pynto_proto::{Args, ObjRef, Op, Target, UnaryOp, Value};
use pynto_runtime::native::NativeHost;
use pynto_runtime::{Answer, CallOptions, Error, Remote, Session};

use crate::render::{self, RefNamer};

// ------------------------------------------------------------------------------------ lexer

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Name(String),
    Int(i128),
    Float(f64),
    Imag(f64),
    Str(String),
    Bytes(Vec<u8>),
    Punct(char),
    End,
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    /// Column of the token's first character, from 1.
    col: usize,
}

/// An input that is not a valid expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// Column of the offending character, from 1.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "syntax error at column {}: {}",
            self.column, self.message
        )
    }
}

impl std::error::Error for SyntaxError {}

fn err<T>(column: usize, message: impl Into<String>) -> Result<T, SyntaxError> {
    Err(SyntaxError {
        column,
        message: message.into(),
    })
}

fn is_name_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_name_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

struct Lexer {
    chars: Vec<char>,
    at: usize,
}

impl Lexer {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.at + ahead).copied()
    }

    fn tokens(mut self) -> Result<Vec<Token>, SyntaxError> {
        let mut out = Vec::new();
        loop {
            while self.peek(0).is_some_and(char::is_whitespace) {
                self.at += 1;
            }
            let col = self.at + 1;
            let Some(c) = self.peek(0) else {
                out.push(Token { tok: Tok::End, col });
                return Ok(out);
            };
            let tok = if c == '#' {
                // A comment runs to the end of the input.
                self.at = self.chars.len();
                continue;
            } else if c.is_ascii_digit()
                || (c == '.' && self.peek(1).is_some_and(|d| d.is_ascii_digit()))
            {
                self.number()?
            } else if is_name_start(c) {
                let start = self.at;
                while self.peek(0).is_some_and(is_name_char) {
                    self.at += 1;
                }
                let word: String = self.chars[start..self.at].iter().collect();
                let lower = word.to_ascii_lowercase();
                if matches!(lower.as_str(), "b" | "r" | "br" | "rb")
                    && matches!(self.peek(0), Some('\'' | '"'))
                {
                    self.string(lower.contains('b'), lower.contains('r'))?
                } else {
                    Tok::Name(word)
                }
            } else if c == '\'' || c == '"' {
                self.string(false, false)?
            } else if ".,()[]{}:=;-+".contains(c) {
                self.at += 1;
                Tok::Punct(c)
            } else {
                return err(col, format!("unexpected character {c:?}"));
            };
            out.push(Token { tok, col });
        }
    }

    fn number(&mut self) -> Result<Tok, SyntaxError> {
        let col = self.at + 1;
        let start = self.at;
        if self.peek(0) == Some('0') {
            let radix = match self.peek(1) {
                Some('x' | 'X') => Some(16),
                Some('o' | 'O') => Some(8),
                Some('b' | 'B') => Some(2),
                _ => None,
            };
            if let Some(radix) = radix {
                self.at += 2;
                let digits_start = self.at;
                while self
                    .peek(0)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    self.at += 1;
                }
                let digits: String = self.chars[digits_start..self.at]
                    .iter()
                    .filter(|c| **c != '_')
                    .collect();
                return match u128::from_str_radix(&digits, radix) {
                    Ok(n) if n <= i128::MAX as u128 => Ok(Tok::Int(n as i128)),
                    Ok(_) => err(col, "integer literal too large (at most 2**127 - 1)"),
                    Err(_) => err(col, "invalid integer literal"),
                };
            }
        }
        let mut is_float = false;
        while self.peek(0).is_some_and(|c| c.is_ascii_digit() || c == '_') {
            self.at += 1;
        }
        if self.peek(0) == Some('.') && !self.peek(1).is_some_and(is_name_start) {
            is_float = true;
            self.at += 1;
            while self.peek(0).is_some_and(|c| c.is_ascii_digit() || c == '_') {
                self.at += 1;
            }
        }
        if matches!(self.peek(0), Some('e' | 'E')) {
            let sign = usize::from(matches!(self.peek(1), Some('+' | '-')));
            if self.peek(1 + sign).is_some_and(|c| c.is_ascii_digit()) {
                is_float = true;
                self.at += 1 + sign;
                while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
                    self.at += 1;
                }
            }
        }
        let text: String = self.chars[start..self.at]
            .iter()
            .filter(|c| **c != '_')
            .collect();
        if matches!(self.peek(0), Some('j' | 'J')) {
            self.at += 1;
            return match text.parse::<f64>() {
                Ok(f) => Ok(Tok::Imag(f)),
                Err(_) => err(col, "invalid imaginary literal"),
            };
        }
        if self.peek(0).is_some_and(is_name_char) {
            return err(self.at + 1, "invalid character in number");
        }
        if is_float {
            return match text.parse::<f64>() {
                Ok(f) => Ok(Tok::Float(f)),
                Err(_) => err(col, "invalid float literal"),
            };
        }
        match text.parse::<u128>() {
            Ok(n) if n <= i128::MAX as u128 => Ok(Tok::Int(n as i128)),
            Ok(_) | Err(_) if text.chars().all(|c| c.is_ascii_digit()) => {
                err(col, "integer literal too large (at most 2**127 - 1)")
            }
            _ => err(col, "invalid integer literal"),
        }
    }

    fn hex_escape(&mut self, len: usize, col: usize) -> Result<u32, SyntaxError> {
        let digits: String = (0..len).filter_map(|i| self.peek(i)).collect();
        if digits.len() != len || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
            return err(col, format!("truncated escape: expected {len} hex digits"));
        }
        self.at += len;
        Ok(u32::from_str_radix(&digits, 16).expect("hex digits"))
    }

    fn string(&mut self, bytes: bool, raw: bool) -> Result<Tok, SyntaxError> {
        let col = self.at + 1;
        let quote = self.peek(0).expect("a quote");
        self.at += 1;
        // Code points; for bytes every one is below 256.
        let mut out: Vec<u32> = Vec::new();
        loop {
            let Some(c) = self.peek(0) else {
                return err(col, "unterminated string literal");
            };
            let here = self.at + 1;
            self.at += 1;
            if c == quote {
                break;
            }
            if c != '\\' {
                if bytes && !c.is_ascii() {
                    return err(here, "bytes can only contain ASCII characters");
                }
                out.push(c as u32);
                continue;
            }
            let Some(e) = self.peek(0) else {
                return err(col, "unterminated string literal");
            };
            self.at += 1;
            if raw {
                out.push('\\' as u32);
                out.push(e as u32);
                continue;
            }
            let code = match e {
                '\\' | '\'' | '"' => e as u32,
                'n' => 10,
                'r' => 13,
                't' => 9,
                'a' => 7,
                'b' => 8,
                'f' => 12,
                'v' => 11,
                '0'..='7' => {
                    let mut n = e.to_digit(8).expect("octal");
                    for _ in 0..2 {
                        match self.peek(0).and_then(|d| d.to_digit(8)) {
                            Some(d) => {
                                n = n * 8 + d;
                                self.at += 1;
                            }
                            None => break,
                        }
                    }
                    n
                }
                'x' => self.hex_escape(2, here)?,
                'u' if !bytes => self.hex_escape(4, here)?,
                'U' if !bytes => self.hex_escape(8, here)?,
                other => {
                    out.push('\\' as u32);
                    other as u32
                }
            };
            out.push(code);
        }
        if bytes {
            let mut b = Vec::with_capacity(out.len());
            for code in out {
                match u8::try_from(code) {
                    Ok(byte) => b.push(byte),
                    Err(_) => return err(col, "bytes literal value out of range"),
                }
            }
            Ok(Tok::Bytes(b))
        } else {
            let mut s = String::with_capacity(out.len());
            for code in out {
                match char::from_u32(code) {
                    Some(ch) => s.push(ch),
                    None => return err(col, format!("invalid code point \\U{code:08x}")),
                }
            }
            Ok(Tok::Str(s))
        }
    }
}

fn lex(src: &str) -> Result<Vec<Token>, SyntaxError> {
    Lexer {
        chars: src.chars().collect(),
        at: 0,
    }
    .tokens()
}

// ------------------------------------------------------------------------------------ parser

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

// ------------------------------------------------------------------------------------ evaluator

/// Why evaluating a statement failed.
#[derive(Debug)]
pub enum EvalError {
    /// Evaluation failed on this side (unknown name, bad index of a local value, ...), in
    /// Python's `TypeName: message` form.
    Local(String),
    /// The peer or the connection failed.
    Runtime(Error),
}

impl From<Error> for EvalError {
    fn from(e: Error) -> Self {
        EvalError::Runtime(e)
    }
}

fn local<T>(message: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError::Local(message.into()))
}

/// A value the evaluator holds: a wire value plus handles for the references inside it.
#[derive(Clone)]
pub struct Data {
    /// The value; `Value::Ref` items are the peer's objects, resolved through `refs`.
    pub value: Value,
    refs: Vec<Remote<NativeHost>>,
}

impl Data {
    /// `None`.
    pub fn none() -> Data {
        Data::plain(Value::None)
    }

    fn plain(value: Value) -> Data {
        Data {
            value,
            refs: Vec::new(),
        }
    }

    fn from_answer(session: &Session<NativeHost>, answer: Answer<NativeHost>) -> Data {
        let mut refs = Vec::new();
        walk_refs(&answer.value, &mut |r| {
            if let Some(handle) = answer.incoming.import(r.oid) {
                if let Some(remote) = session.remote(handle.clone()) {
                    refs.push(remote);
                }
            }
        });
        Data {
            value: answer.value,
            refs,
        }
    }

    fn lookup(&self, oid: u64) -> Option<&Remote<NativeHost>> {
        self.refs.iter().find(|r| r.handle().oid() == oid)
    }

    /// The remote object, when the value is one reference.
    pub fn remote(&self) -> Option<&Remote<NativeHost>> {
        match &self.value {
            Value::Ref(r) => self.lookup(r.oid),
            _ => None,
        }
    }

    fn with_value(&self, value: Value) -> Data {
        Data {
            value,
            refs: self.refs.clone(),
        }
    }
}

fn walk_refs(value: &Value, f: &mut dyn FnMut(&ObjRef)) {
    match value {
        Value::Ref(r) => f(r),
        Value::Tuple(items) | Value::List(items) | Value::Set(items) | Value::FrozenSet(items) => {
            items.iter().for_each(|v| walk_refs(v, f))
        }
        Value::Slice(parts) => parts.iter().for_each(|v| walk_refs(v, f)),
        Value::Dict(pairs) => pairs.iter().for_each(|(k, v)| {
            walk_refs(k, f);
            walk_refs(v, f);
        }),
        _ => {}
    }
}

/// What a name or expression stands for.
#[derive(Clone)]
pub enum Obj {
    /// `modules` on a classic server: the remote import system.
    Modules,
    /// A value or a reference.
    Data(Data),
}

/// The outcome of running one line.
pub struct Outcome {
    /// The last statement's value (for an assignment, the value bound).
    pub value: Obj,
    /// True if the last statement was an assignment.
    pub assigned: bool,
}

/// Kind name for messages, like Python's `type(x).__name__`.
fn kind(value: &Value) -> &'static str {
    value.kind_name()
}

const BUILTINS: [&str; 4] = ["dir", "repr", "str", "len"];

/// Evaluates statements against one session, keeping the names bound so far.
pub struct Evaluator {
    session: Session<NativeHost>,
    classic: bool,
    vars: HashMap<String, Obj>,
}

impl Evaluator {
    /// An evaluator for `session`, with `root` (and `modules` on classic servers) bound.
    pub fn new(session: Session<NativeHost>) -> Result<Evaluator, Error> {
        let answer = session.request(
            Target::Export(0),
            Op::GetRoot,
            session.boxer(),
            &CallOptions::default(),
        )?;
        let root = Data::from_answer(&session, answer);
        let classic = session.peer_hello().service == "classic";
        let mut vars = HashMap::new();
        vars.insert("root".to_string(), Obj::Data(root));
        if classic {
            vars.insert("modules".to_string(), Obj::Modules);
        }
        Ok(Evaluator {
            session,
            classic,
            vars,
        })
    }

    /// True if the peer is a classic server (`modules` is available).
    pub fn classic(&self) -> bool {
        self.classic
    }

    /// The session evaluated against.
    pub fn session(&self) -> &Session<NativeHost> {
        &self.session
    }

    /// Run statements in order; the outcome of the last one, or `None` for an empty program.
    pub fn run(&mut self, program: &[Stmt]) -> Result<Option<Outcome>, EvalError> {
        let mut last = None;
        for stmt in program {
            last = Some(match stmt {
                Stmt::Assign(name, expr) => {
                    let value = self.eval(expr)?;
                    self.vars.insert(name.clone(), value.clone());
                    Outcome {
                        value,
                        assigned: true,
                    }
                }
                Stmt::Expr(expr) => Outcome {
                    value: self.eval(expr)?,
                    assigned: false,
                },
            });
        }
        Ok(last)
    }

    /// Python's `repr` of a result; references show the remote `repr`.
    pub fn repr(&self, obj: &Obj) -> Result<String, Error> {
        match obj {
            Obj::Modules => Ok(self.modules_repr()),
            Obj::Data(data) => {
                let mut namer = Namer::new(&self.session, data);
                let shown = render::repr(&data.value, &mut namer);
                namer.finish().map(|()| shown)
            }
        }
    }

    /// A result as JSON (see `render` for the mapping).
    pub fn json(&self, obj: &Obj) -> Result<String, Error> {
        match obj {
            Obj::Modules => Ok(format!(
                "{{\"ref\": {}, \"type\": \"pynto.modules\"}}",
                render::json_string(&self.modules_repr())
            )),
            Obj::Data(data) => {
                let mut namer = Namer::new(&self.session, data);
                let shown = render::json(&data.value, &mut namer);
                namer.finish().map(|()| shown)
            }
        }
    }

    fn modules_repr(&self) -> String {
        format!("<modules of {}>", self.session.peer_address())
    }

    fn data(&mut self, expr: &Expr) -> Result<Data, EvalError> {
        match self.eval(expr)? {
            Obj::Data(d) => Ok(d),
            Obj::Modules => {
                local("TypeError: 'modules' can only be used as modules.NAME or modules[\"NAME\"]")
            }
        }
    }

    fn eval(&mut self, expr: &Expr) -> Result<Obj, EvalError> {
        Ok(match expr {
            Expr::Name(name) => match self.vars.get(name) {
                Some(obj) => obj.clone(),
                None if name == "modules" => {
                    return local(format!(
                        "NameError: 'modules' is only available on classic servers (this server serves {:?})",
                        self.session.peer_hello().service
                    ))
                }
                None if BUILTINS.contains(&name.as_str()) => {
                    return local(format!("TypeError: {name} is a builtin: call it, as in {name}(x)"))
                }
                None => return local(format!("NameError: name '{name}' is not defined")),
            },
            Expr::Int(i) => Obj::Data(Data::plain(render::int_value(*i))),
            Expr::Lit(v) => Obj::Data(Data::plain(v.clone())),
            Expr::Attr(base, name) => {
                let base = self.eval(base)?;
                self.getattr(base, name)?
            }
            Expr::Call(callee, args, kwargs) => return self.call(callee, args, kwargs),
            Expr::Index(base, key) => {
                let base = self.eval(base)?;
                let key = self.data(key)?;
                self.index(base, key)?
            }
            Expr::Slice(parts) => {
                let mut refs = Vec::new();
                let mut values = Vec::new();
                for part in parts.iter() {
                    match part {
                        Some(e) => {
                            let d = self.data(e)?;
                            refs.extend(d.refs);
                            values.push(d.value);
                        }
                        None => values.push(Value::None),
                    }
                }
                let [a, b, c]: [Value; 3] = values.try_into().expect("three parts");
                Obj::Data(Data {
                    value: Value::Slice(Box::new([a, b, c])),
                    refs,
                })
            }
            Expr::Tuple(items) => Obj::Data(self.collect(items, Value::Tuple)?),
            Expr::List(items) => Obj::Data(self.collect(items, Value::List)?),
            Expr::Set(items) => Obj::Data(self.collect(items, Value::Set)?),
            Expr::Dict(pairs) => {
                let mut refs = Vec::new();
                let mut out = Vec::new();
                for (k, v) in pairs {
                    let k = self.data(k)?;
                    let v = self.data(v)?;
                    refs.extend(k.refs);
                    refs.extend(v.refs);
                    out.push((k.value, v.value));
                }
                Obj::Data(Data {
                    value: Value::Dict(out),
                    refs,
                })
            }
            Expr::Neg(inner) => {
                let d = self.data(inner)?;
                Obj::Data(match &d.value {
                    Value::Int(i) => match i.checked_neg() {
                        Some(n) => Data::plain(Value::Int(n)),
                        None => Data::plain(render::int_value(-i128::from(*i))),
                    },
                    Value::BigInt(b) => Data::plain(render::negate_bigint(b)),
                    Value::Float(f) => Data::plain(Value::Float(-f)),
                    Value::Complex(re, im) => Data::plain(Value::Complex(-re, -im)),
                    Value::Ref(_) => {
                        let remote = d.remote().expect("a resolved reference");
                        let answer = remote.op(Op::Unary(UnaryOp::Neg))?;
                        Data::from_answer(&self.session, answer)
                    }
                    other => {
                        return local(format!(
                            "TypeError: bad operand type for unary -: '{}'",
                            kind(other)
                        ))
                    }
                })
            }
        })
    }

    fn collect(
        &mut self,
        items: &[Expr],
        make: fn(Vec<Value>) -> Value,
    ) -> Result<Data, EvalError> {
        let mut refs = Vec::new();
        let mut values = Vec::new();
        for item in items {
            let d = self.data(item)?;
            refs.extend(d.refs);
            values.push(d.value);
        }
        Ok(Data {
            value: make(values),
            refs,
        })
    }

    fn import(&self, name: &str) -> Result<Obj, EvalError> {
        let Some(Obj::Data(root)) = self.vars.get("root").cloned() else {
            return local("NameError: 'root' was rebound; modules needs the server's root");
        };
        let root = root
            .remote()
            .ok_or_else(|| EvalError::Local("TypeError: root is not a remote object".into()))?
            .clone();
        let answer = root.call_method("getmodule", vec![Value::Str(name.to_string())])?;
        Ok(Obj::Data(Data::from_answer(&self.session, answer)))
    }

    fn getattr(&self, base: Obj, name: &str) -> Result<Obj, EvalError> {
        match base {
            Obj::Modules => self.import(name),
            Obj::Data(d) => match d.remote() {
                Some(remote) => {
                    let answer = remote.getattr(name)?;
                    Ok(Obj::Data(Data::from_answer(&self.session, answer)))
                }
                None => local(format!(
                    "AttributeError: the by-value '{}' result {} is a local copy and has no remote attribute '{name}'",
                    kind(&d.value),
                    render::repr(&d.value, &mut render::NoRefs)
                )),
            },
        }
    }

    fn index(&self, base: Obj, key: Data) -> Result<Obj, EvalError> {
        let d = match base {
            Obj::Modules => match &key.value {
                Value::Str(name) => return self.import(name),
                other => {
                    return local(format!(
                        "TypeError: modules[...] takes a str, not '{}'",
                        kind(other)
                    ))
                }
            },
            Obj::Data(d) => d,
        };
        if let Some(remote) = d.remote() {
            let answer = self.send(remote, &[&key], |mut v| Op::GetItem(v.remove(0)))?;
            return Ok(Obj::Data(Data::from_answer(&self.session, answer)));
        }
        if let Value::Slice(parts) = &key.value {
            let sliced = match &d.value {
                Value::Tuple(items) => Value::Tuple(pick(items, parts)?),
                Value::List(items) => Value::List(pick(items, parts)?),
                Value::Str(s) => Value::Str(
                    pick(&s.chars().collect::<Vec<_>>(), parts)?
                        .into_iter()
                        .collect(),
                ),
                Value::Bytes(b) => Value::Bytes(pick(b, parts)?.into()),
                other => {
                    return local(format!(
                        "TypeError: '{}' object is not subscriptable",
                        kind(other)
                    ))
                }
            };
            return Ok(Obj::Data(d.with_value(sliced)));
        }
        let position = |len: usize| -> Result<usize, EvalError> {
            let Value::Int(i) = key.value else {
                return local(format!(
                    "TypeError: '{}' indices must be integers, not '{}'",
                    kind(&d.value),
                    kind(&key.value)
                ));
            };
            let at = if i < 0 { i + len as i64 } else { i };
            if at < 0 || at >= len as i64 {
                return local(format!("IndexError: {} index out of range", kind(&d.value)));
            }
            Ok(at as usize)
        };
        let item = match &d.value {
            Value::Tuple(items) | Value::List(items) => items[position(items.len())?].clone(),
            Value::Str(s) => {
                let chars: Vec<char> = s.chars().collect();
                Value::Str(chars[position(chars.len())?].to_string())
            }
            Value::Bytes(b) | Value::ByteArray(b) => Value::Int(i64::from(b[position(b.len())?])),
            Value::Dict(pairs) => match pairs.iter().find(|(k, _)| *k == key.value) {
                Some((_, v)) => v.clone(),
                None => {
                    return local(format!(
                        "KeyError: {}",
                        render::repr(&key.value, &mut render::NoRefs)
                    ))
                }
            },
            other => {
                return local(format!(
                    "TypeError: '{}' object is not subscriptable",
                    kind(other)
                ))
            }
        };
        Ok(Obj::Data(d.with_value(item)))
    }

    /// Send an operation built from by-value-or-reference operands, passing references back
    /// to the peer as its own objects.
    fn send(
        &self,
        target: &Remote<NativeHost>,
        operands: &[&Data],
        build: impl FnOnce(Vec<Value>) -> Op,
    ) -> Result<Answer<NativeHost>, EvalError> {
        for d in operands {
            let mut bad = None;
            walk_refs(&d.value, &mut |r| {
                if d.lookup(r.oid).is_none() {
                    bad = Some(r.oid);
                }
            });
            if contains_returned(&d.value) || bad.is_some() {
                return local("TypeError: this value cannot be sent back to the peer");
            }
        }
        Ok(target.op_with(|boxer| {
            let mut values = Vec::with_capacity(operands.len());
            for d in operands {
                values.push(to_wire(&d.value, d, boxer)?);
            }
            Ok(build(values))
        })?)
    }

    fn call(
        &mut self,
        callee: &Expr,
        args: &[Expr],
        kwargs: &[(String, Expr)],
    ) -> Result<Obj, EvalError> {
        if let Expr::Name(name) = callee {
            if !self.vars.contains_key(name) && BUILTINS.contains(&name.as_str()) {
                return self.builtin(name, args, kwargs);
            }
        }
        // `obj.name(...)` is one CallMethod round trip.
        let (target, method) = match callee {
            Expr::Attr(base, name) => match self.eval(base)? {
                Obj::Data(d) if d.remote().is_some() => (d, Some(name.clone())),
                other => match self.getattr(other, name)? {
                    Obj::Data(d) => (d, None),
                    Obj::Modules => unreachable!("getattr never returns modules"),
                },
            },
            other => (self.data(other)?, None),
        };
        let Some(remote) = target.remote() else {
            return local(format!(
                "TypeError: the by-value '{}' result is not callable",
                kind(&target.value)
            ));
        };
        let mut operands = Vec::with_capacity(args.len() + kwargs.len());
        for a in args {
            operands.push(self.data(a)?);
        }
        for (_, v) in kwargs {
            operands.push(self.data(v)?);
        }
        let refs: Vec<&Data> = operands.iter().collect();
        let npos = args.len();
        let names: Vec<String> = kwargs.iter().map(|(k, _)| k.clone()).collect();
        let answer = self.send(remote, &refs, move |mut values| {
            let kw = values.split_off(npos);
            let call_args = Args {
                positional: values,
                keywords: names.into_iter().zip(kw).collect(),
            };
            match method {
                Some(name) => Op::CallMethod(name, call_args),
                None => Op::Call(call_args),
            }
        })?;
        Ok(Obj::Data(Data::from_answer(&self.session, answer)))
    }

    fn builtin(
        &mut self,
        name: &str,
        args: &[Expr],
        kwargs: &[(String, Expr)],
    ) -> Result<Obj, EvalError> {
        if args.len() != 1 || !kwargs.is_empty() {
            return local(format!(
                "TypeError: {name}() takes exactly one positional argument"
            ));
        }
        let arg = match self.eval(&args[0])? {
            Obj::Modules => {
                return match name {
                    "repr" | "str" => Ok(Obj::Data(Data::plain(Value::Str(self.modules_repr())))),
                    _ => local(format!(
                        "TypeError: {name}(modules) is not supported; try {name}(modules.sys)"
                    )),
                }
            }
            Obj::Data(d) => d,
        };
        if let Some(remote) = arg.remote() {
            let op = match name {
                "dir" => Op::Dir,
                "repr" => Op::Repr,
                "str" => Op::Str,
                _ => Op::Len,
            };
            let mut data = Data::from_answer(&self.session, remote.op(op)?);
            if name == "dir" {
                // Python's dir() returns a list; the wire carries a tuple.
                if let Value::Tuple(items) = data.value {
                    data.value = Value::List(items);
                }
            }
            return Ok(Obj::Data(data));
        }
        let value = match (name, &arg.value) {
            ("dir", v) => {
                return local(format!(
                    "TypeError: dir() needs a remote object; the '{}' result is a local copy",
                    kind(v)
                ))
            }
            ("str", Value::Str(s)) => Value::Str(s.clone()),
            ("repr" | "str", _) => Value::Str(self.repr(&Obj::Data(arg.clone()))?),
            (_, Value::Str(s)) => Value::Int(s.chars().count() as i64),
            (_, Value::Bytes(b) | Value::ByteArray(b)) => Value::Int(b.len() as i64),
            (_, Value::Tuple(v) | Value::List(v) | Value::Set(v) | Value::FrozenSet(v)) => {
                Value::Int(v.len() as i64)
            }
            (_, Value::Dict(p)) => Value::Int(p.len() as i64),
            (_, other) => {
                return local(format!(
                    "TypeError: object of type '{}' has no len()",
                    kind(other)
                ))
            }
        };
        Ok(Obj::Data(Data::plain(value)))
    }
}

/// Python's `seq[start:stop:step]` on a local sequence.
fn pick<T: Clone>(items: &[T], parts: &[Value; 3]) -> Result<Vec<T>, EvalError> {
    let part = |v: &Value| -> Result<Option<i64>, EvalError> {
        match v {
            Value::None => Ok(None),
            Value::Int(i) => Ok(Some(*i)),
            other => local(format!(
                "TypeError: slice indices must be integers or None, not '{}'",
                kind(other)
            )),
        }
    };
    let len = items.len() as i64;
    let step = part(&parts[2])?.unwrap_or(1);
    if step == 0 {
        return local("ValueError: slice step cannot be zero");
    }
    let (lower, upper) = if step > 0 { (0, len) } else { (-1, len - 1) };
    let bound = |v: Option<i64>, default: i64| match v {
        None => default,
        Some(i) if i < 0 => (i + len).max(lower),
        Some(i) => i.min(upper),
    };
    let start = bound(part(&parts[0])?, if step > 0 { lower } else { upper });
    let stop = bound(part(&parts[1])?, if step > 0 { upper } else { lower });
    let mut out = Vec::new();
    let mut i = start;
    while (step > 0 && i < stop) || (step < 0 && i > stop) {
        out.push(items[i as usize].clone());
        i += step;
    }
    Ok(out)
}

fn contains_returned(value: &Value) -> bool {
    match value {
        Value::Returned(_) => true,
        Value::Tuple(items) | Value::List(items) | Value::Set(items) | Value::FrozenSet(items) => {
            items.iter().any(contains_returned)
        }
        Value::Slice(parts) => parts.iter().any(contains_returned),
        Value::Dict(pairs) => pairs
            .iter()
            .any(|(k, v)| contains_returned(k) || contains_returned(v)),
        _ => false,
    }
}

/// `value` as it goes to the peer: its own objects go home as `Value::Returned`.
fn to_wire(
    value: &Value,
    data: &Data,
    boxer: &mut pynto_runtime::Boxer<'_, NativeHost>,
) -> Result<Value, Error> {
    let items = |items: &[Value], boxer: &mut pynto_runtime::Boxer<'_, NativeHost>| {
        items
            .iter()
            .map(|v| to_wire(v, data, boxer))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(match value {
        Value::Ref(r) => {
            let remote = data
                .lookup(r.oid)
                .ok_or_else(|| Error::Protocol("a reference without a handle".into()))?;
            boxer
                .returned(remote.handle())
                .ok_or_else(|| Error::Protocol("a reference of another session".into()))?
        }
        Value::Tuple(v) => Value::Tuple(items(v, boxer)?),
        Value::List(v) => Value::List(items(v, boxer)?),
        Value::Set(v) => Value::Set(items(v, boxer)?),
        Value::FrozenSet(v) => Value::FrozenSet(items(v, boxer)?),
        Value::Dict(pairs) => Value::Dict(
            pairs
                .iter()
                .map(|(k, v)| Ok((to_wire(k, data, boxer)?, to_wire(v, data, boxer)?)))
                .collect::<Result<Vec<_>, Error>>()?,
        ),
        other => other.clone(),
    })
}

/// Names references through the session: remote `repr`, and the type from its description.
struct Namer<'a> {
    session: &'a Session<NativeHost>,
    data: &'a Data,
    failed: Option<Error>,
}

impl<'a> Namer<'a> {
    fn new(session: &'a Session<NativeHost>, data: &'a Data) -> Self {
        Namer {
            session,
            data,
            failed: None,
        }
    }

    /// The connection-level error met while naming, if any.
    fn finish(self) -> Result<(), Error> {
        match self.failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl RefNamer for Namer<'_> {
    fn repr(&mut self, r: &ObjRef) -> String {
        let fallback = |this: &mut Self| format!("<remote {} object>", this.type_name(r));
        let Some(remote) = self.data.lookup(r.oid) else {
            return fallback(self);
        };
        match remote.op(Op::Repr) {
            Ok(answer) => match answer.value {
                Value::Str(s) => s,
                _ => fallback(self),
            },
            Err(Error::Remote(_)) => fallback(self),
            Err(e) => {
                self.failed.get_or_insert(e);
                fallback(self)
            }
        }
    }

    fn type_name(&mut self, r: &ObjRef) -> String {
        match self.session.type_desc(r.type_id) {
            Some(desc) if desc.module.is_empty() => desc.qualname.clone(),
            Some(desc) => format!("{}.{}", desc.module, desc.qualname),
            None => "unknown".to_string(),
        }
    }
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
    fn slices_local_sequences_like_python() {
        let items: Vec<i64> = (0..5).collect();
        let s = |a: Option<i64>, b: Option<i64>, c: Option<i64>| {
            let v = |o: Option<i64>| o.map_or(Value::None, Value::Int);
            pick(&items, &[v(a), v(b), v(c)]).ok().unwrap()
        };
        assert_eq!(s(None, None, None), vec![0, 1, 2, 3, 4]);
        assert_eq!(s(Some(1), Some(3), None), vec![1, 2]);
        assert_eq!(s(Some(-2), None, None), vec![3, 4]);
        assert_eq!(s(None, None, Some(-1)), vec![4, 3, 2, 1, 0]);
        assert_eq!(s(Some(3), Some(0), Some(-2)), vec![3, 1]);
        assert_eq!(s(Some(10), Some(20), None), Vec::<i64>::new());
        assert_eq!(s(Some(-10), Some(2), None), vec![0, 1]);
        assert!(pick(&items, &[Value::None, Value::None, Value::Int(0)]).is_err());
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
