//! The export table: local objects the peer holds references to, with Cap'n Proto-style counts.
//!
//! Each entry counts how many times its object was encoded into a message (`sent`). The peer
//! releases what it received; at zero the entry goes and the object is dropped. Oids come from
//! a counter and are never reused, so a late message can never name the wrong object.

use std::collections::HashMap;

use pynto_proto::{Oid, TypeId, ROOT_OID};

/// One exported object.
struct Entry<O> {
    object: O,
    /// The object's identity key (for the reverse map).
    identity: usize,
    /// References encoded into messages and not yet released by the peer.
    sent: u64,
}

/// A type whose description this side sends with the first reference of that type.
struct TypeEntry {
    id: TypeId,
    /// True once a frame carrying the description was written; until then every reference of
    /// the type carries it, so a frame written earlier can never lack it.
    desc_written: bool,
}

/// Objects lent to the peer.
pub(crate) struct Exports<O> {
    entries: HashMap<Oid, Entry<O>>,
    by_identity: HashMap<usize, Oid>,
    types: HashMap<usize, TypeEntry>,
    next_oid: Oid,
    next_type: TypeId,
}

/// Why an export failed.
pub(crate) enum ExportError {
    /// The table holds `max` objects already.
    Full(u64),
}

/// What a release did wrong.
pub(crate) struct ReleaseError(pub(crate) String);

impl<O: Clone> Exports<O> {
    /// A table holding only the root object, as oid 0.
    pub(crate) fn new(root: O, root_identity: usize) -> Self {
        let mut entries = HashMap::new();
        entries.insert(
            ROOT_OID,
            Entry {
                object: root,
                identity: root_identity,
                sent: 0,
            },
        );
        let mut by_identity = HashMap::new();
        by_identity.insert(root_identity, ROOT_OID);
        Exports {
            entries,
            by_identity,
            types: HashMap::new(),
            next_oid: 1,
            next_type: 1,
        }
    }

    /// Count one more reference to `object` sent, exporting it if needed. Returns its oid.
    pub(crate) fn export(
        &mut self,
        object: &O,
        identity: usize,
        max: u64,
    ) -> Result<Oid, ExportError> {
        if let Some(&oid) = self.by_identity.get(&identity) {
            let entry = self.entries.get_mut(&oid).expect("reverse map in step");
            entry.sent += 1;
            return Ok(oid);
        }
        if self.entries.len() as u64 >= max {
            return Err(ExportError::Full(max));
        }
        let oid = self.next_oid;
        self.next_oid += 1;
        self.entries.insert(
            oid,
            Entry {
                object: object.clone(),
                identity,
                sent: 1,
            },
        );
        self.by_identity.insert(identity, oid);
        Ok(oid)
    }

    /// Undo `count` sends of `oid` (the peer released them, or a message was never sent).
    /// Returns the object if its entry went, so the caller drops it outside the lock.
    pub(crate) fn release(&mut self, oid: Oid, count: u64) -> Result<Option<O>, ReleaseError> {
        let Some(entry) = self.entries.get_mut(&oid) else {
            return Err(ReleaseError(format!(
                "release of oid {oid}, which is not exported"
            )));
        };
        if count > entry.sent {
            return Err(ReleaseError(format!(
                "release of {count} references to oid {oid}, which was sent only {} times",
                entry.sent
            )));
        }
        entry.sent -= count;
        if entry.sent > 0 || oid == ROOT_OID {
            return Ok(None);
        }
        let entry = self.entries.remove(&oid).expect("present");
        self.by_identity.remove(&entry.identity);
        Ok(Some(entry.object))
    }

    /// The object exported as `oid`.
    pub(crate) fn get(&self, oid: Oid) -> Option<O> {
        self.entries.get(&oid).map(|e| e.object.clone())
    }

    /// The type id of the type keyed `type_key`, and whether its description must travel.
    pub(crate) fn type_id(&mut self, type_key: usize) -> (TypeId, bool) {
        let next = &mut self.next_type;
        let entry = self.types.entry(type_key).or_insert_with(|| {
            let id = *next;
            *next += 1;
            TypeEntry {
                id,
                desc_written: false,
            }
        });
        (entry.id, !entry.desc_written)
    }

    /// A frame carrying the description of these types was written.
    pub(crate) fn descs_written(&mut self, type_keys: &[usize]) {
        for key in type_keys {
            if let Some(t) = self.types.get_mut(key) {
                t.desc_written = true;
            }
        }
    }

    /// Objects the peer holds references to (the root only while it does).
    pub(crate) fn live(&self) -> usize {
        self.entries.values().filter(|e| e.sent > 0).count()
    }

    /// Empty the table (the connection closed), returning the objects to drop.
    pub(crate) fn clear(&mut self) -> Vec<O> {
        self.by_identity.clear();
        self.types.clear();
        self.entries.drain().map(|(_, e)| e.object).collect()
    }
}
