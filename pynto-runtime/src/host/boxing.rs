//! Boxing state around one message: the references an incoming message resolved to (and a
//! reply with them, [`Answer`]), and the exports and keep-alives of an outgoing one.

use std::sync::Arc;

use pynto_proto::{ObjRef, Oid, TypeDesc, Value};

use super::{Host, Inner};
use crate::exports::ExportError;
use crate::imports::RemoteRef;

/// A reply: its value, and the references it carried.
pub struct Answer<H: Host> {
    /// The result value.
    pub value: Value,
    /// Resolves the references inside `value`.
    pub incoming: Incoming<H>,
}

impl<H: Host> std::fmt::Debug for Answer<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("value", &self.value)
            .finish_non_exhaustive()
    }
}

impl<H: Host> Answer<H> {
    /// The handle of the object the reply returned by reference, if it did.
    pub fn remote(&self) -> Option<&RemoteRef> {
        match &self.value {
            Value::Ref(r) => self.incoming.import(r.oid),
            _ => None,
        }
    }
}

/// The references one incoming message carried, resolved by the reader in wire order.
pub struct Incoming<H: Host> {
    /// Handles of the peer's objects (`Value::Ref`), one per distinct oid.
    pub(crate) imports: Vec<RemoteRef>,
    /// This side's own objects coming home (`Value::Returned`), one per distinct oid.
    pub(crate) locals: Vec<(Oid, H::Object)>,
}

impl<H: Host> Default for Incoming<H> {
    fn default() -> Self {
        Incoming {
            imports: Vec::new(),
            locals: Vec::new(),
        }
    }
}

impl<H: Host> Incoming<H> {
    /// The handle for a `Value::Ref` of this message.
    pub fn import(&self, oid: Oid) -> Option<&RemoteRef> {
        self.imports.iter().find(|r| r.oid() == oid)
    }

    /// The local object a `Value::Returned` of this message names.
    pub fn local(&self, oid: Oid) -> Option<&H::Object> {
        self.locals
            .iter()
            .find(|(o, _)| *o == oid)
            .map(|(_, obj)| obj)
    }
}

/// Builds the values of one outgoing message: exports local objects, and keeps returned proxies
/// alive until the message is written so a release can never overtake it.
pub struct Boxer<'s, H: Host> {
    inner: &'s Inner<H>,
    /// Oids whose `sent` count this message raised; undone if the message is never sent.
    exported: Vec<Oid>,
    /// Proxies this message returns to their owner.
    keep: Vec<RemoteRef>,
    /// Types whose description this message carries.
    described: Vec<usize>,
}

impl<'s, H: Host> Boxer<'s, H> {
    pub(crate) fn new(inner: &'s Inner<H>) -> Self {
        Boxer {
            inner,
            exported: Vec::new(),
            keep: Vec::new(),
            described: Vec::new(),
        }
    }

    /// Box `object` by reference. `type_key` identifies its type (Python: the type object's
    /// address); `describe` is called only when the type's description must travel.
    pub fn export(
        &mut self,
        object: &H::Object,
        type_key: usize,
        describe: impl FnOnce() -> TypeDesc,
    ) -> Result<Value, pynto_proto::Failure> {
        let identity = self.inner.host.identity(object);
        let max = self.inner.config.limits.max_objects;
        let mut exports = self.inner.exports.lock();
        let oid = match exports.export(object, identity, max) {
            Ok(oid) => oid,
            Err(ExportError::Full(max)) => {
                return Err(pynto_proto::Failure::new(
                    pynto_proto::ErrorKind::Overloaded,
                    "pynto.Overloaded",
                    format!("this side already exports {max} objects to the peer"),
                ))
            }
        };
        let (type_id, with_desc) = exports.type_id(type_key);
        drop(exports);
        self.exported.push(oid);
        let desc = if with_desc {
            self.described.push(type_key);
            Some(Box::new(describe()))
        } else {
            None
        };
        Ok(Value::Ref(ObjRef { oid, type_id, desc }))
    }

    /// Box a proxy of the peer's object as that object coming home, if the proxy belongs to
    /// this session; `None` if it belongs to another connection (box it by reference instead).
    pub fn returned(&mut self, remote: &RemoteRef) -> Option<Value> {
        if !self.inner.owns(remote) {
            return None;
        }
        self.keep.push(Arc::clone(remote));
        Some(Value::Returned(remote.oid()))
    }

    /// The message was written (`true`) or will never be (`false`).
    pub(crate) fn finish(&mut self, written: bool) {
        if written {
            if !self.described.is_empty() {
                self.inner.exports.lock().descs_written(&self.described);
            }
        } else if !self.exported.is_empty() {
            let mut dropped = Vec::new();
            {
                let mut exports = self.inner.exports.lock();
                for oid in &self.exported {
                    if let Ok(Some(obj)) = exports.release(*oid, 1) {
                        dropped.push(obj);
                    }
                }
            }
            drop(dropped);
        }
        self.exported.clear();
        self.described.clear();
        self.keep.clear();
    }
}

impl<H: Host> Drop for Boxer<'_, H> {
    fn drop(&mut self) {
        // A boxer dropped without sending (the host failed midway) undoes its exports.
        if !self.exported.is_empty() {
            self.finish(false);
        }
    }
}
