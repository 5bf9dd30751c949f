//! JSON output of `pynto call --json`: a wire [`Value`] as a `serde_json::Value`, written
//! with `", "` and `": "` between items (one line, as Python's `json.dumps` writes it).
//!
//! The mapping: `None` → `null`, `bool` → `true`/`false`, `int` (any size) → a number, `float`
//! → a number as Python prints it (`NaN`/`inf` → `{"float": "nan"|"inf"|"-inf"}`), `str` → a
//! string, `bytes` → `{"bytes_b64": "<standard base64>"}`, `bytearray` →
//! `{"bytearray_b64": ...}`, `complex` → `{"complex": [re, im]}`, tuple/list/set/frozenset →
//! an array, `dict` → an object when every key is a `str`, else `{"dict": [[key, value], ...]}`,
//! `slice` → `{"slice": [start, stop, step]}`, `Ellipsis`/`NotImplemented` →
//! `{"repr": "Ellipsis"}`, and a reference → `{"ref": "<remote repr>", "type":
//! "module.qualname"}`. (The evaluator first fetches the contents of remote lists, tuples,
//! sets and dicts, so those print as their values.)

use std::io;

use base64::Engine;
use serde::Serialize;
use serde_json::{json, Map, Number, Value as Json};

use pynto_proto::Value;

use crate::render::{bigint_decimal, float_repr, RefNamer};

/// `value` as JSON text.
pub fn to_string(value: &Value, refs: &mut dyn RefNamer) -> String {
    write(&to_json(value, refs))
}

/// JSON text of `json`, on one line with spaces after `,` and `:`.
pub fn write(json: &Json) -> String {
    let mut out = Vec::new();
    let mut writer = serde_json::Serializer::with_formatter(&mut out, Spaced);
    json.serialize(&mut writer)
        .expect("serializing a JSON value into memory cannot fail");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// A number whose text is `digits` (a decimal integer or a float as Python prints it).
fn number(digits: &str) -> Json {
    match digits.parse::<Number>() {
        Ok(n) => Json::Number(n),
        Err(_) => Json::String(digits.to_string()),
    }
}

fn float(f: f64) -> Json {
    if f.is_nan() {
        json!({"float": "nan"})
    } else if f.is_infinite() {
        json!({"float": if f > 0.0 { "inf" } else { "-inf" }})
    } else {
        number(&float_repr(f))
    }
}

fn array(items: &[Value], refs: &mut dyn RefNamer) -> Json {
    Json::Array(items.iter().map(|v| to_json(v, refs)).collect())
}

/// `value` as a JSON value (see the module documentation for the mapping).
pub fn to_json(value: &Value, refs: &mut dyn RefNamer) -> Json {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    match value {
        Value::None => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::Number((*i).into()),
        Value::BigInt(bytes) => number(&bigint_decimal(bytes)),
        Value::Float(f) => float(*f),
        Value::Complex(re, im) => json!({"complex": [float(*re), float(*im)]}),
        Value::Str(s) => Json::String(s.clone()),
        Value::Bytes(b) => json!({"bytes_b64": b64(b)}),
        Value::ByteArray(b) => json!({"bytearray_b64": b64(b)}),
        Value::Ellipsis => json!({"repr": "Ellipsis"}),
        Value::NotImplemented => json!({"repr": "NotImplemented"}),
        Value::Slice(parts) => json!({"slice": array(&parts[..], refs)}),
        Value::Tuple(items) | Value::List(items) | Value::Set(items) | Value::FrozenSet(items) => {
            array(items, refs)
        }
        Value::Dict(pairs) if pairs.iter().all(|(k, _)| matches!(k, Value::Str(_))) => {
            let mut object = Map::new();
            for (k, v) in pairs {
                if let Value::Str(k) = k {
                    object.insert(k.clone(), to_json(v, refs));
                }
            }
            Json::Object(object)
        }
        Value::Dict(pairs) => {
            let pairs: Vec<Json> = pairs
                .iter()
                .map(|(k, v)| Json::Array(vec![to_json(k, refs), to_json(v, refs)]))
                .collect();
            json!({"dict": pairs})
        }
        Value::Ref(r) => {
            let shown = refs.repr(r);
            let ty = refs.type_name(r);
            json!({"ref": shown, "type": ty})
        }
        Value::Returned(oid) => {
            json!({"ref": format!("<pynto client object #{oid}>"), "type": "pynto-cli"})
        }
        Value::Standard(standard) => {
            let (name, args) = &**standard;
            json!({"standard": name, "args": array(args, refs)})
        }
    }
}

/// serde_json's compact layout with a space after each `,` and `:`.
struct Spaced;

impl serde_json::ser::Formatter for Spaced {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{int_value, NoRefs};

    #[test]
    fn values_map_to_json() {
        let v = Value::Dict(vec![
            (Value::Str("n".into()), Value::None),
            (Value::Str("f".into()), Value::Float(9.0)),
            (
                Value::Str("l".into()),
                Value::Tuple(vec![Value::Bool(false), Value::Int(-3)]),
            ),
            (Value::Str("b".into()), Value::Bytes(b"hi".to_vec().into())),
            (Value::Str("x".into()), Value::Float(f64::NAN)),
            (Value::Str("e".into()), Value::Float(1e16)),
            (Value::Str("s".into()), Value::Str("a\"b\\c\n\u{1}é".into())),
        ]);
        assert_eq!(
            to_string(&v, &mut NoRefs),
            "{\"n\": null, \"f\": 9.0, \"l\": [false, -3], \"b\": {\"bytes_b64\": \"aGk=\"}, \
             \"x\": {\"float\": \"nan\"}, \"e\": 1e+16, \"s\": \"a\\\"b\\\\c\\n\\u0001é\"}"
        );
        let v = Value::Dict(vec![(Value::Int(1), Value::Str("one".into()))]);
        assert_eq!(to_string(&v, &mut NoRefs), "{\"dict\": [[1, \"one\"]]}");
        assert_eq!(
            to_string(&int_value(1i128 << 100), &mut NoRefs),
            (1i128 << 100).to_string()
        );
        assert_eq!(
            to_string(&Value::ByteArray(b"foobar".to_vec().into()), &mut NoRefs),
            "{\"bytearray_b64\": \"Zm9vYmFy\"}"
        );
        assert_eq!(to_string(&Value::List(vec![]), &mut NoRefs), "[]");
    }
}
