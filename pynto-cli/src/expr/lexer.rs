//! The expression language's lexer: characters to tokens (names, numbers, strings and bytes
//! with Python's escapes, punctuation), each with the column it starts at.

use std::fmt;

/// A token of the expression language.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Tok {
    Name(String),
    Int(i128),
    Float(f64),
    Imag(f64),
    Str(String),
    Bytes(Vec<u8>),
    Punct(char),
    End,
}

/// A token and where it starts.
#[derive(Clone, Debug)]
pub(super) struct Token {
    pub(super) tok: Tok,
    /// Column of the token's first character, from 1.
    pub(super) col: usize,
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

pub(super) fn err<T>(column: usize, message: impl Into<String>) -> Result<T, SyntaxError> {
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

pub(super) fn lex(src: &str) -> Result<Vec<Token>, SyntaxError> {
    Lexer {
        chars: src.chars().collect(),
        at: 0,
    }
    .tokens()
}
