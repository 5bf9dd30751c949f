//! Printing values as Python does: `repr` of by-value results, Python's float and integer
//! formatting, and building integers from literals.
//!
//! It walks a wire [`Value`]. References inside it (`Value::Ref`) are named by a [`RefNamer`],
//! which for a live session asks the peer for the object's `repr` and type; this module itself
//! does no I/O. JSON output (`--json`) is in `json.rs`.

use pynto_proto::{ObjRef, Value};

/// Names the references a value carries.
pub trait RefNamer {
    /// The remote `repr()` of the object.
    fn repr(&mut self, r: &ObjRef) -> String;
    /// The object's type as `module.qualname`.
    fn type_name(&mut self, r: &ObjRef) -> String;
}

/// A namer for values that hold no live references (tests, local values).
pub struct NoRefs;

impl RefNamer for NoRefs {
    fn repr(&mut self, r: &ObjRef) -> String {
        format!("<remote object #{}>", r.oid)
    }
    fn type_name(&mut self, _r: &ObjRef) -> String {
        "unknown".to_string()
    }
}

/// What `repr(value)` prints in Python.
pub fn repr(value: &Value, refs: &mut dyn RefNamer) -> String {
    let mut out = String::new();
    write_repr(&mut out, value, refs);
    out
}

fn join(out: &mut String, items: &[Value], refs: &mut dyn RefNamer) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_repr(out, item, refs);
    }
}

fn write_repr(out: &mut String, value: &Value, refs: &mut dyn RefNamer) {
    match value {
        Value::None => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::BigInt(bytes) => out.push_str(&bigint_decimal(bytes)),
        Value::Float(f) => out.push_str(&float_repr(*f)),
        Value::Complex(re, im) => out.push_str(&complex_repr(*re, *im)),
        Value::Str(s) => out.push_str(&str_repr(s)),
        Value::Bytes(b) => out.push_str(&bytes_repr(b)),
        Value::ByteArray(b) => {
            out.push_str("bytearray(");
            out.push_str(&bytes_repr(b));
            out.push(')');
        }
        Value::Ellipsis => out.push_str("Ellipsis"),
        Value::NotImplemented => out.push_str("NotImplemented"),
        Value::Slice(parts) => {
            out.push_str("slice(");
            join(out, &parts[..], refs);
            out.push(')');
        }
        Value::Tuple(items) => {
            out.push('(');
            join(out, items, refs);
            if items.len() == 1 {
                out.push(',');
            }
            out.push(')');
        }
        Value::List(items) => {
            out.push('[');
            join(out, items, refs);
            out.push(']');
        }
        Value::Set(items) if items.is_empty() => out.push_str("set()"),
        Value::Set(items) => {
            out.push('{');
            join(out, items, refs);
            out.push('}');
        }
        Value::FrozenSet(items) if items.is_empty() => out.push_str("frozenset()"),
        Value::FrozenSet(items) => {
            out.push_str("frozenset({");
            join(out, items, refs);
            out.push_str("})");
        }
        Value::Dict(pairs) => {
            out.push('{');
            for (i, (k, v)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(out, k, refs);
                out.push_str(": ");
                write_repr(out, v, refs);
            }
            out.push('}');
        }
        Value::Ref(r) => out.push_str(&refs.repr(r)),
        Value::Returned(oid) => out.push_str(&format!("<pynto client object #{oid}>")),
        Value::Standard(standard) => {
            let (name, args) = &**standard;
            out.push_str(name.strip_prefix("builtins.").unwrap_or(name));
            out.push('(');
            for (i, a) in args.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(out, a, refs);
            }
            out.push(')');
        }
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip, fixed notation for decimal
/// exponents from -4 to 15, scientific (`1e+16`, `1.5e-07`) outside.
pub fn float_repr(f: f64) -> String {
    let mut s = short_float(f);
    if f.is_finite() && !s.contains(['.', 'e']) {
        s.push_str(".0");
    }
    s
}

/// Python's `format(f, 'r')` without the forced `.0` (the form complex parts use).
fn short_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    // `{:e}` gives the shortest round-tripping digits, as `d.ddde-x`.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci
        .split_once('e')
        .expect("LowerExp always has an exponent");
    let exp: i32 = exp.parse().expect("a decimal exponent");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        let body = if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point as usize >= digits.len() {
            format!("{}{}", digits, "0".repeat(point as usize - digits.len()))
        } else {
            let (a, b) = digits.split_at(point as usize);
            format!("{a}.{b}")
        };
        format!("{sign}{body}")
    } else {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{first}{frac}e{esign}{:02}", exp.abs())
    }
}

fn complex_repr(re: f64, im: f64) -> String {
    let imag = short_float(im);
    if re == 0.0 && re.is_sign_positive() {
        return format!("{imag}j");
    }
    let sign = if im.is_sign_negative() && !im.is_nan() {
        ""
    } else {
        "+"
    };
    format!("({}{sign}{imag}j)", short_float(re))
}

fn pick_quote(has_single: bool, has_double: bool) -> char {
    if has_single && !has_double {
        '"'
    } else {
        '\''
    }
}

/// Python's `repr(str)`.
pub fn str_repr(s: &str) -> String {
    let quote = pick_quote(s.contains('\''), s.contains('"'));
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() || (c.is_whitespace() && c != ' ') => {
                let n = c as u32;
                if n < 0x100 {
                    out.push_str(&format!("\\x{n:02x}"));
                } else if n < 0x10000 {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `repr(bytes)`.
pub fn bytes_repr(b: &[u8]) -> String {
    let quote = pick_quote(b.contains(&b'\''), b.contains(&b'"'));
    let mut out = String::with_capacity(b.len() + 3);
    out.push('b');
    out.push(quote);
    for &byte in b {
        match byte {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            c if c as char == quote => {
                out.push('\\');
                out.push(quote);
            }
            0x20..=0x7e => out.push(byte as char),
            _ => out.push_str(&format!("\\x{byte:02x}")),
        }
    }
    out.push(quote);
    out
}

/// The decimal digits of a `Value::BigInt` (little-endian two's complement).
pub fn bigint_decimal(le: &[u8]) -> String {
    if le.is_empty() {
        return "0".to_string();
    }
    let negative = le[le.len() - 1] & 0x80 != 0;
    // Magnitude, big-endian.
    let mut mag: Vec<u8> = le.iter().rev().copied().collect();
    if negative {
        for b in mag.iter_mut() {
            *b = !*b;
        }
        for b in mag.iter_mut().rev() {
            let (v, carry) = b.overflowing_add(1);
            *b = v;
            if !carry {
                break;
            }
        }
    }
    const CHUNK: u64 = 1_000_000_000;
    let mut chunks = Vec::new(); // base 10^9, least significant first
    while mag.iter().any(|b| *b != 0) {
        let mut rem: u64 = 0;
        for b in mag.iter_mut() {
            let cur = rem * 256 + u64::from(*b);
            *b = (cur / CHUNK) as u8;
            rem = cur % CHUNK;
        }
        chunks.push(rem);
        while mag.len() > 1 && mag[0] == 0 {
            mag.remove(0);
        }
    }
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    match chunks.split_last() {
        None => out.push('0'),
        Some((top, rest)) => {
            out.push_str(&top.to_string());
            for c in rest.iter().rev() {
                out.push_str(&format!("{c:09}"));
            }
        }
    }
    out
}

/// An integer literal as a wire value: `Int` when it fits in 64 bits, `BigInt` otherwise.
pub fn int_value(i: i128) -> Value {
    shortest_int(i.to_le_bytes().to_vec())
}

/// `-x` for a `Value::BigInt` payload (little-endian two's complement).
pub fn negate_bigint(le: &[u8]) -> Value {
    let negative = le.last().is_some_and(|b| b & 0x80 != 0);
    let mut bytes = le.to_vec();
    bytes.push(if negative { 0xff } else { 0 });
    for b in bytes.iter_mut() {
        *b = !*b;
    }
    for b in bytes.iter_mut() {
        let (v, carry) = b.overflowing_add(1);
        *b = v;
        if !carry {
            break;
        }
    }
    shortest_int(bytes)
}

/// Little-endian two's complement bytes as `Int` when they fit in 64 bits, else as a `BigInt`
/// in its shortest form (no redundant sign bytes).
fn shortest_int(mut bytes: Vec<u8>) -> Value {
    while bytes.len() > 1 {
        let last = bytes[bytes.len() - 1];
        let next_high = bytes[bytes.len() - 2] & 0x80;
        if (last == 0 && next_high == 0) || (last == 0xff && next_high != 0) {
            bytes.pop();
        } else {
            break;
        }
    }
    if bytes.len() <= 8 {
        let fill = if bytes.last().is_some_and(|b| b & 0x80 != 0) {
            0xff
        } else {
            0
        };
        let mut word = [fill; 8];
        word[..bytes.len()].copy_from_slice(&bytes);
        Value::Int(i64::from_le_bytes(word))
    } else {
        Value::BigInt(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    fn r(v: &Value) -> String {
        repr(v, &mut NoRefs)
    }

    #[test]
    fn floats_print_like_python() {
        for (f, s) in [
            (9.0, "9.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e16, "1e+16"),
            (1.5e-7, "1.5e-07"),
            (123456789012345.0, "123456789012345.0"),
            (1234567890123456.0, "1234567890123456.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-0.0, "-0.0"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
            (1e300, "1e+300"),
            (2.0f64.powi(70), "1.1805916207174113e+21"),
        ] {
            assert_eq!(float_repr(f), s, "{f}");
        }
    }

    #[test]
    fn complex_prints_like_python() {
        assert_eq!(r(&Value::Complex(1.0, 2.0)), "(1+2j)");
        assert_eq!(r(&Value::Complex(0.0, 1.0)), "1j");
        assert_eq!(r(&Value::Complex(1.5, -2.0)), "(1.5-2j)");
        assert_eq!(r(&Value::Complex(-0.0, 1.0)), "(-0+1j)");
    }

    #[test]
    fn strings_and_bytes_print_like_python() {
        assert_eq!(str_repr("abc"), "'abc'");
        assert_eq!(str_repr("it's"), "\"it's\"");
        assert_eq!(str_repr("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(str_repr("tab\there\n\\"), "'tab\\there\\n\\\\'");
        assert_eq!(str_repr("\u{1b}é"), "'\\x1bé'");
        assert_eq!(bytes_repr(b"ab\x00\xff'"), "b\"ab\\x00\\xff'\"");
        assert_eq!(
            r(&Value::ByteArray(b"x".to_vec().into())),
            "bytearray(b'x')"
        );
    }

    #[test]
    fn containers_print_like_python() {
        let one = Value::Int(1);
        assert_eq!(r(&Value::Tuple(vec![])), "()");
        assert_eq!(r(&Value::Tuple(vec![one.clone()])), "(1,)");
        assert_eq!(
            r(&Value::Tuple(vec![one.clone(), Value::Str("a".into())])),
            "(1, 'a')"
        );
        assert_eq!(
            r(&Value::List(vec![Value::None, Value::Bool(true)])),
            "[None, True]"
        );
        assert_eq!(r(&Value::Set(vec![])), "set()");
        assert_eq!(r(&Value::FrozenSet(vec![one.clone()])), "frozenset({1})");
        assert_eq!(
            r(&Value::Dict(vec![(
                Value::Str("k".into()),
                Value::Float(1.0)
            )])),
            "{'k': 1.0}"
        );
        assert_eq!(
            r(&Value::Slice(Box::new([one, Value::None, Value::None]))),
            "slice(1, None, None)"
        );
    }

    #[test]
    fn big_integers_round_trip_through_decimal() {
        for i in [
            i128::from(i64::MAX) + 1,
            i128::from(i64::MIN) - 1,
            i128::MAX,
            i128::MIN,
            1i128 << 64,
            -(1i128 << 64),
        ] {
            let v = int_value(i);
            assert!(matches!(v, Value::BigInt(_)), "{i}");
            assert_eq!(r(&v), i.to_string());
        }
        assert_eq!(int_value(5), Value::Int(5));
        // Shortest form: 2**63 needs a ninth byte for the sign.
        assert_eq!(
            int_value(1i128 << 63),
            Value::BigInt(vec![0, 0, 0, 0, 0, 0, 0, 0x80, 0])
        );
        assert_eq!(bigint_decimal(&[0xff]), "-1");
        // -(2**63) fits in 64 bits again; -(-(2**63)) does not.
        let two63 = int_value(1i128 << 63);
        let Value::BigInt(b) = &two63 else { panic!() };
        assert_eq!(negate_bigint(b), Value::Int(i64::MIN));
        let Value::BigInt(b) = int_value(-(1i128 << 100)) else {
            panic!()
        };
        assert_eq!(negate_bigint(&b), int_value(1i128 << 100));
    }
}
