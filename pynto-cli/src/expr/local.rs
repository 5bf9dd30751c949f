//! Operations on local copies (results that crossed by value): indexing and slicing like
//! Python, without a round trip.

use pynto_proto::Value;

use super::eval::{local, EvalError};
use super::value::{kind, Data, Obj};
use crate::render;

/// `d[key]` on a local copy: an index, a key of a dict, or a slice.
pub(super) fn index(d: Data, key: &Data) -> Result<Obj, EvalError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
