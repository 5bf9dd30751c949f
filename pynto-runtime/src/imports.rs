//! The import table: the peer's objects this side holds proxies for.
//!
//! The reader counts each reference it decodes, in wire order (`received`). A [`RemoteRef`] is
//! the shared handle to one imported object; when the last one goes, its `Drop` queues one
//! `Release(oid, received)` for the writer to batch. Drops never block on I/O and never fail.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use pynto_proto::{Oid, TypeDesc, TypeId};

/// The part of a session an imported reference reports its release to.
pub(crate) trait ReleaseSink: Send + Sync {
    /// The handle for `oid` is gone: forget it and queue its release.
    fn released(&self, entry: &ImportEntry);
    /// Write queued releases now.
    fn flush(&self);
}

/// One imported object. Shared by every proxy of it, and by every in-flight message carrying it.
pub struct ImportEntry {
    oid: Oid,
    type_id: TypeId,
    /// References to this object decoded from the peer's messages while this entry lived.
    received: AtomicU64,
    sink: Weak<dyn ReleaseSink>,
}

/// A counted handle to one of the peer's objects. Cloning is cheap; the last drop queues a
/// release.
pub type RemoteRef = Arc<ImportEntry>;

impl ImportEntry {
    /// The peer's oid for the object.
    pub fn oid(&self) -> Oid {
        self.oid
    }

    /// The id of the object's type description on this connection.
    pub fn type_id(&self) -> TypeId {
        self.type_id
    }

    /// True if this handle reports to `sink` (belongs to that session).
    pub(crate) fn sink_is(&self, sink: &Weak<dyn ReleaseSink>) -> bool {
        Weak::ptr_eq(&self.sink, sink)
    }

    pub(crate) fn received(&self) -> u64 {
        self.received.load(Ordering::Acquire)
    }
}

impl fmt::Debug for ImportEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RemoteRef(oid={}, received={})",
            self.oid,
            self.received()
        )
    }
}

impl Drop for ImportEntry {
    fn drop(&mut self) {
        if let Some(sink) = self.sink.upgrade() {
            sink.released(self);
        }
    }
}

/// Objects borrowed from the peer, and the type descriptions it sent.
#[derive(Default)]
pub(crate) struct Imports {
    entries: HashMap<Oid, Weak<ImportEntry>>,
    types: HashMap<TypeId, Arc<TypeDesc>>,
}

impl Imports {
    /// Count one received reference to `oid`, returning the live handle for it.
    pub(crate) fn receive(
        &mut self,
        oid: Oid,
        type_id: TypeId,
        sink: &Weak<dyn ReleaseSink>,
    ) -> RemoteRef {
        if let Some(existing) = self.entries.get(&oid).and_then(Weak::upgrade) {
            existing.received.fetch_add(1, Ordering::AcqRel);
            return existing;
        }
        // Either new, or its last handle is being dropped right now: that drop releases the
        // count it had; this fresh entry counts from one.
        let entry = Arc::new(ImportEntry {
            oid,
            type_id,
            received: AtomicU64::new(1),
            sink: sink.clone(),
        });
        self.entries.insert(oid, Arc::downgrade(&entry));
        entry
    }

    /// Forget `entry` if the table still maps its oid to it.
    pub(crate) fn forget(&mut self, entry: &ImportEntry) {
        if let Some(current) = self.entries.get(&entry.oid) {
            if std::ptr::eq(current.as_ptr(), entry) {
                self.entries.remove(&entry.oid);
            }
        }
    }

    /// Record a type description the peer sent.
    pub(crate) fn add_type(&mut self, type_id: TypeId, desc: TypeDesc) {
        self.types.insert(type_id, Arc::new(desc));
    }

    /// A type description the peer sent earlier.
    pub(crate) fn type_desc(&self, type_id: TypeId) -> Option<Arc<TypeDesc>> {
        self.types.get(&type_id).cloned()
    }

    /// Live imported objects.
    pub(crate) fn len(&self) -> usize {
        self.entries
            .values()
            .filter(|w| w.strong_count() > 0)
            .count()
    }

    /// Forget everything (the connection closed); handles still alive release nothing.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.types.clear();
    }
}
