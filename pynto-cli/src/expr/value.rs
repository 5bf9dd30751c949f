//! What the evaluator holds: a wire value with handles for the references inside it
//! ([`Data`]), what a name stands for ([`Obj`]), and the two directions across the wire:
//! [`to_wire`] sends values back (the peer's own objects go home as `Returned`), [`Namer`]
//! names the references in a value for printing.

use pynto_proto::{ObjRef, Op, Value};
use pynto_runtime::native::NativeHost;
use pynto_runtime::{Answer, Error, Remote, Session};

use super::eval::Evaluator;

use crate::render::RefNamer;

/// A value the evaluator holds: a wire value plus handles for the references inside it.
#[derive(Clone)]
pub struct Data {
    /// The value; `Value::Ref` items are the peer's objects, resolved through `refs`.
    pub value: Value,
    pub(super) refs: Vec<Remote<NativeHost>>,
}

impl Data {
    /// `None`.
    pub fn none() -> Data {
        Data::plain(Value::None)
    }

    pub(super) fn plain(value: Value) -> Data {
        Data {
            value,
            refs: Vec::new(),
        }
    }

    pub(super) fn from_answer(session: &Session<NativeHost>, answer: Answer<NativeHost>) -> Data {
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

    pub(super) fn lookup(&self, oid: u64) -> Option<&Remote<NativeHost>> {
        self.refs.iter().find(|r| r.handle().oid() == oid)
    }

    /// The remote object, when the value is one reference.
    pub fn remote(&self) -> Option<&Remote<NativeHost>> {
        match &self.value {
            Value::Ref(r) => self.lookup(r.oid),
            _ => None,
        }
    }

    pub(super) fn with_value(&self, value: Value) -> Data {
        Data {
            value,
            refs: self.refs.clone(),
        }
    }
}

pub(super) fn walk_refs(value: &Value, f: &mut dyn FnMut(&ObjRef)) {
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
pub(super) fn kind(value: &Value) -> &'static str {
    value.kind_name()
}

pub(super) fn contains_returned(value: &Value) -> bool {
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
pub(super) fn to_wire(
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

/// Names references through the evaluator's session: remote `repr` (interruptible like any
/// call), and the type from its description. After a connection-level error (or Ctrl-C) it
/// asks nothing more.
pub(super) struct Namer<'a> {
    eval: &'a Evaluator,
    data: &'a Data,
    failed: Option<Error>,
}

impl<'a> Namer<'a> {
    pub(super) fn new(eval: &'a Evaluator, data: &'a Data) -> Self {
        Namer {
            eval,
            data,
            failed: None,
        }
    }

    /// The connection-level error met while naming, if any.
    pub(super) fn finish(self) -> Result<(), Error> {
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
        if self.failed.is_some() {
            return fallback(self);
        }
        match self.eval.request(remote, Op::Repr) {
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
        match self.eval.session().type_desc(r.type_id) {
            Some(desc) if desc.module.is_empty() => desc.qualname.clone(),
            Some(desc) => format!("{}.{}", desc.module, desc.qualname),
            None => "unknown".to_string(),
        }
    }
}
