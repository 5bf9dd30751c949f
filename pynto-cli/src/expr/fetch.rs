//! The values of remote containers, for `--json`: a result that is (or holds) a reference to
//! a remote `list`, `tuple`, `set`, `frozenset` or `dict` is replaced by a local copy of its
//! contents, fetched with `iter`/`next` in batches (and `[key]` for each key of a dict),
//! recursively. Other references stay references. A container met again inside itself, or
//! nested deeper than [`MAX_DEPTH`], stays a reference, so cycles end.

use pynto_proto::{Op, Value};
use pynto_runtime::native::NativeHost;
use pynto_runtime::{Error, Remote};

use super::eval::Evaluator;
use super::value::Data;

/// How deep containers inside containers are fetched.
const MAX_DEPTH: usize = 64;

/// How many items one `next` asks for.
const BATCH: u32 = 1024;

/// The builtin containers fetched by value.
#[derive(Clone, Copy)]
enum Container {
    Sequence(fn(Vec<Value>) -> Value),
    Dict,
}

impl Evaluator {
    /// `data` with the remote builtin containers in it replaced by their contents.
    pub fn fetch_containers(&self, data: &Data) -> Result<Data, Error> {
        let mut refs = Vec::new();
        let mut path = Vec::new();
        let value = self.copy(&data.value, data, &mut path, &mut refs)?;
        Ok(Data { value, refs })
    }

    fn container(&self, type_id: pynto_proto::TypeId) -> Option<Container> {
        let desc = self.session.type_desc(type_id)?;
        if desc.module != "builtins" {
            return None;
        }
        Some(match desc.qualname.as_str() {
            "list" => Container::Sequence(Value::List),
            "tuple" => Container::Sequence(Value::Tuple),
            "set" => Container::Sequence(Value::Set),
            "frozenset" => Container::Sequence(Value::FrozenSet),
            "dict" => Container::Dict,
            _ => return None,
        })
    }

    /// `value` (whose references `data` holds) with containers copied; the handles of the
    /// references left in the result are added to `refs`.
    fn copy(
        &self,
        value: &Value,
        data: &Data,
        path: &mut Vec<u64>,
        refs: &mut Vec<Remote<NativeHost>>,
    ) -> Result<Value, Error> {
        let mut items = |items: &[Value], path: &mut Vec<u64>| {
            items
                .iter()
                .map(|v| self.copy(v, data, path, refs))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(match value {
            Value::Ref(r) => {
                let Some(remote) = data.lookup(r.oid) else {
                    return Ok(value.clone());
                };
                let container = self.container(r.type_id);
                match container {
                    Some(kind) if !path.contains(&r.oid) && path.len() < MAX_DEPTH => {
                        path.push(r.oid);
                        let copied = self.copy_container(remote, kind, path, refs);
                        path.pop();
                        copied?
                    }
                    _ => {
                        refs.push(remote.clone());
                        value.clone()
                    }
                }
            }
            Value::Tuple(v) => Value::Tuple(items(v, path)?),
            Value::List(v) => Value::List(items(v, path)?),
            Value::Set(v) => Value::Set(items(v, path)?),
            Value::FrozenSet(v) => Value::FrozenSet(items(v, path)?),
            Value::Dict(pairs) => {
                let mut out = Vec::with_capacity(pairs.len());
                for (k, v) in pairs {
                    out.push((
                        self.copy(k, data, path, refs)?,
                        self.copy(v, data, path, refs)?,
                    ));
                }
                Value::Dict(out)
            }
            other => other.clone(),
        })
    }

    fn copy_container(
        &self,
        remote: &Remote<NativeHost>,
        kind: Container,
        path: &mut Vec<u64>,
        refs: &mut Vec<Remote<NativeHost>>,
    ) -> Result<Value, Error> {
        let items = self.drain(remote)?;
        match kind {
            Container::Sequence(make) => {
                let Value::List(values) = self.copy(&items.value, &items, path, refs)? else {
                    unreachable!("drain returns a list")
                };
                Ok(make(values))
            }
            Container::Dict => {
                let Value::List(keys) = &items.value else {
                    unreachable!("drain returns a list")
                };
                let mut pairs = Vec::with_capacity(keys.len());
                for key in keys {
                    let key_data = items.with_value(key.clone());
                    let value = self
                        .send(remote, &[&key_data], |mut v| Op::GetItem(v.remove(0)))
                        .map_err(|e| match e {
                            super::EvalError::Runtime(e) => e,
                            super::EvalError::Local(why) => Error::Protocol(why),
                        })?;
                    pairs.push((
                        self.copy(key, &items, path, refs)?,
                        self.copy(&value.value, &value, path, refs)?,
                    ));
                }
                Ok(Value::Dict(pairs))
            }
        }
    }

    /// Every item of `iter(remote)`, as a list (with the handles of references in it).
    fn drain(&self, remote: &Remote<NativeHost>) -> Result<Data, Error> {
        let iterator = self.request(remote, Op::Iter)?;
        let Some(iterator) = iterator.remote().cloned() else {
            return Err(Error::Protocol("iter() did not return an iterator".into()));
        };
        let mut values = Vec::new();
        let mut handles = Vec::new();
        loop {
            let batch = self.request(&iterator, Op::Next(BATCH))?;
            let Value::Tuple(parts) = &batch.value else {
                return Err(Error::Protocol("a malformed reply to next".into()));
            };
            let [Value::Tuple(items), Value::Bool(exhausted)] = parts.as_slice() else {
                return Err(Error::Protocol("a malformed reply to next".into()));
            };
            values.extend(items.iter().cloned());
            handles.extend(batch.refs.iter().cloned());
            if *exhausted {
                break;
            }
        }
        Ok(Data {
            value: Value::List(values),
            refs: handles,
        })
    }
}
