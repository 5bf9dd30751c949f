//! The caches a peer's requests fill, one set per connection and each bounded: access
//! decisions (the host's answers to "may the peer read `name` here?") and proxy classes (built
//! from the peer's type descriptions). Both are emptied when the connection closes, and a peer
//! can make neither grow past its bound however many names or types it sends.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use pynto_proto::{TypeDesc, TypeId};
use pyo3::prelude::*;
use pyo3::pyclass::{PyTraverseError, PyVisit};
use pyo3::types::{PyDict, PyString, PyType, PyWeakrefReference};

/// Names longer than this (in bytes) are decided afresh every time, never cached: a peer
/// sending huge names pays for them, the cache does not keep them.
pub(crate) const MAX_CACHED_NAME: usize = 256;

/// Decisions one connection keeps at most; past it the cache starts over.
pub(crate) const MAX_DECISIONS: usize = 4096;

/// Proxy classes one connection keeps at most.
pub(crate) const MAX_CONNECTION_CLASSES: usize = 1024;

/// The weight (about the bytes a class costs) of the proxy classes one connection keeps at
/// most; a single description heavier than this is never cached.
pub(crate) const MAX_CONNECTION_CLASS_WEIGHT: usize = 8 << 20;

/// Bumped whenever a peer sets or deletes an attribute of a class through pynto: decisions
/// cached for instances of any class may depend on it, so every connection's cache starts over.
static CLASS_GENERATION: AtomicU64 = AtomicU64::new(0);

/// Totals over every live cache of this process, for `_cache_stats()`.
static LIVE_DECISIONS: AtomicUsize = AtomicUsize::new(0);
static LIVE_DECISION_BYTES: AtomicUsize = AtomicUsize::new(0);
static LIVE_CLASSES: AtomicUsize = AtomicUsize::new(0);
static LIVE_CLASS_WEIGHT: AtomicUsize = AtomicUsize::new(0);
static LIVE_CONNECTIONS: AtomicUsize = AtomicUsize::new(0);

/// A class of this process was changed by a peer: forget every cached decision.
pub(crate) fn class_changed() {
    CLASS_GENERATION.fetch_add(1, Ordering::AcqRel);
}

/// The names one type was asked for, and their real names.
struct TypeDecisions {
    /// The type, weakly: the cache keeps no class alive, and an entry whose type died (its
    /// address, the key, possibly reused by another type) is never used.
    ty: Py<PyWeakrefReference>,
    real: HashMap<String, Py<PyString>>,
}

impl TypeDecisions {
    /// True if this entry was made for `ty` itself.
    fn is_for(&self, ty: &Bound<'_, PyType>) -> bool {
        self.ty
            .bind(ty.py())
            .upgrade()
            .is_some_and(|live| live.is(ty))
    }
}

/// One connection's access decisions, by type and requested name.
///
/// A decision is cached only where it depends on nothing but the target's type and the name:
/// the host never caches decisions for classes (their own namespace and marks decide), and
/// checks an instance's own `__dict__` before using or storing one (see `host::resolve`).
/// Only allowed decisions are cached; a refusal is decided again each time.
#[derive(Default)]
pub(crate) struct Decisions {
    by_type: HashMap<usize, TypeDecisions>,
    entries: usize,
    name_bytes: usize,
    generation: u64,
}

impl Decisions {
    /// The real name cached for `name` on instances of `ty`.
    pub(crate) fn get(&mut self, ty: &Bound<'_, PyType>, name: &str) -> Option<Py<PyString>> {
        self.check_generation();
        let key = ty.as_ptr() as usize;
        let entry = self.by_type.get(&key)?;
        if !entry.is_for(ty) {
            self.forget_type(key);
            return None;
        }
        entry.real.get(name).map(|real| real.clone_ref(ty.py()))
    }

    /// Remember that `name` on instances of `ty` reads `real`. Names over `MAX_CACHED_NAME`
    /// bytes are not kept; a full cache starts over.
    pub(crate) fn insert(
        &mut self,
        ty: &Bound<'_, PyType>,
        name: &str,
        real: &Bound<'_, PyString>,
    ) {
        if name.len() > MAX_CACHED_NAME {
            return;
        }
        self.check_generation();
        if self.entries >= MAX_DECISIONS {
            self.clear();
        }
        let key = ty.as_ptr() as usize;
        if self.by_type.get(&key).is_some_and(|t| !t.is_for(ty)) {
            self.forget_type(key);
        }
        let entry = match self.by_type.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let Ok(weak) = PyWeakrefReference::new(ty) else {
                    return;
                };
                e.insert(TypeDecisions {
                    ty: weak.unbind(),
                    real: HashMap::new(),
                })
            }
        };
        if entry
            .real
            .insert(name.to_owned(), real.clone().unbind())
            .is_none()
        {
            self.entries += 1;
            self.name_bytes += name.len();
            LIVE_DECISIONS.fetch_add(1, Ordering::Relaxed);
            LIVE_DECISION_BYTES.fetch_add(name.len(), Ordering::Relaxed);
        }
    }

    /// Forget the decisions of the type at address `key` (it died).
    fn forget_type(&mut self, key: usize) {
        if let Some(gone) = self.by_type.remove(&key) {
            let bytes = gone.real.keys().map(String::len).sum::<usize>();
            self.entries -= gone.real.len();
            self.name_bytes -= bytes;
            LIVE_DECISIONS.fetch_sub(gone.real.len(), Ordering::Relaxed);
            LIVE_DECISION_BYTES.fetch_sub(bytes, Ordering::Relaxed);
        }
    }

    /// Forget every decision.
    pub(crate) fn clear(&mut self) {
        self.by_type.clear();
        LIVE_DECISIONS.fetch_sub(self.entries, Ordering::Relaxed);
        LIVE_DECISION_BYTES.fetch_sub(self.name_bytes, Ordering::Relaxed);
        self.entries = 0;
        self.name_bytes = 0;
    }

    fn check_generation(&mut self) {
        let now = CLASS_GENERATION.load(Ordering::Acquire);
        if now != self.generation {
            self.clear();
            self.generation = now;
        }
    }
}

impl Drop for Decisions {
    fn drop(&mut self) {
        self.clear();
    }
}

/// What a proxy class knows of its remote type.
pub(crate) struct TypeInfo {
    /// Methods answered with a bound remote method (one round trip when called).
    pub methods: HashSet<String>,
    /// The remote type is `coroutine`: a proxy arrives wrapped in a local coroutine.
    pub coroutine: bool,
}

/// A proxy class built from a type description, and what it knows of the remote type.
pub(crate) type ProxyClass = (Py<PyType>, Arc<TypeInfo>);

/// One connection's proxy classes, by the peer's type id, bounded in number and weight.
pub(crate) struct ProxyClasses {
    by_id: HashMap<TypeId, (ProxyClass, usize)>,
    weight: usize,
}

impl Default for ProxyClasses {
    fn default() -> Self {
        LIVE_CONNECTIONS.fetch_add(1, Ordering::Relaxed);
        ProxyClasses {
            by_id: HashMap::new(),
            weight: 0,
        }
    }
}

impl ProxyClasses {
    pub(crate) fn get(&self, py: Python<'_>, type_id: TypeId) -> Option<ProxyClass> {
        self.by_id
            .get(&type_id)
            .map(|((cls, info), _)| (cls.clone_ref(py), Arc::clone(info)))
    }

    /// Keep the class built for `type_id` (described by `desc`), unless it is too heavy; a full
    /// cache starts over.
    pub(crate) fn insert(&mut self, type_id: TypeId, desc: &TypeDesc, class: ProxyClass) {
        let weight = class_weight(desc);
        if weight > MAX_CONNECTION_CLASS_WEIGHT {
            return;
        }
        if self.by_id.len() >= MAX_CONNECTION_CLASSES
            || self.weight + weight > MAX_CONNECTION_CLASS_WEIGHT
        {
            self.clear();
        }
        if let Some((_, old)) = self.by_id.insert(type_id, (class, weight)) {
            self.weight -= old;
            LIVE_CLASSES.fetch_sub(1, Ordering::Relaxed);
            LIVE_CLASS_WEIGHT.fetch_sub(old, Ordering::Relaxed);
        }
        self.weight += weight;
        LIVE_CLASSES.fetch_add(1, Ordering::Relaxed);
        LIVE_CLASS_WEIGHT.fetch_add(weight, Ordering::Relaxed);
    }

    /// Show the garbage collector the classes kept here.
    pub(crate) fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        for ((cls, _), _) in self.by_id.values() {
            visit.call(cls)?;
        }
        Ok(())
    }

    /// Forget every class (proxies keep their own class alive).
    pub(crate) fn clear(&mut self) {
        LIVE_CLASSES.fetch_sub(self.by_id.len(), Ordering::Relaxed);
        LIVE_CLASS_WEIGHT.fetch_sub(self.weight, Ordering::Relaxed);
        self.by_id.clear();
        self.weight = 0;
    }
}

impl Drop for ProxyClasses {
    fn drop(&mut self) {
        self.clear();
        LIVE_CONNECTIONS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// About the bytes a proxy class built from `desc` costs: a fixed part for the class object
/// and its namespace, and the names it keeps.
pub(crate) fn class_weight(desc: &TypeDesc) -> usize {
    let names = desc
        .dunders
        .iter()
        .chain(&desc.methods)
        .chain(&desc.abcs)
        .map(|n| n.len() + 64)
        .sum::<usize>();
    4096 + desc.module.len() + desc.qualname.len() + 2 * names
}

/// What the per-connection caches of this process hold right now (for tests and debugging):
/// `connections` (live per-connection cache sets), `access_decisions`,
/// `access_decision_name_bytes`, `connection_proxy_classes`, `connection_proxy_class_weight`.
#[pyfunction]
pub(crate) fn _cache_stats(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let stats = PyDict::new(py);
    let load = |counter: &AtomicUsize| counter.load(Ordering::Relaxed);
    stats.set_item("connections", load(&LIVE_CONNECTIONS))?;
    stats.set_item("access_decisions", load(&LIVE_DECISIONS))?;
    stats.set_item("access_decision_name_bytes", load(&LIVE_DECISION_BYTES))?;
    stats.set_item("connection_proxy_classes", load(&LIVE_CLASSES))?;
    stats.set_item("connection_proxy_class_weight", load(&LIVE_CLASS_WEIGHT))?;
    Ok(stats)
}

/// The keys under which one connection's exported types are known to the runtime (which sends
/// each type's description once per key). A type's address alone would not do: once a type
/// dies, a new one may be allocated at its address, and the peer would be handed the dead
/// type's description. So each live type gets a key of its own, checked through a weak
/// reference; nothing here keeps a type alive.
pub(crate) struct TypeKeys {
    by_address: HashMap<usize, (Py<PyWeakrefReference>, usize)>,
    next: usize,
    prune_at: usize,
}

impl Default for TypeKeys {
    fn default() -> Self {
        TypeKeys {
            by_address: HashMap::new(),
            next: 1,
            prune_at: 1024,
        }
    }
}

impl TypeKeys {
    /// The key of `ty` for as long as it lives.
    pub(crate) fn key(&mut self, ty: &Bound<'_, PyType>) -> usize {
        let address = ty.as_ptr() as usize;
        if let Some((weak, key)) = self.by_address.get(&address) {
            if weak.bind(ty.py()).upgrade().is_some_and(|live| live.is(ty)) {
                return *key;
            }
        }
        let Ok(weak) = PyWeakrefReference::new(ty) else {
            // Every type can be weakly referenced; if one could not, its address is the key.
            return address;
        };
        if self.by_address.len() >= self.prune_at {
            let py = ty.py();
            self.by_address
                .retain(|_, (weak, _)| weak.bind(py).upgrade().is_some());
            self.prune_at = (2 * self.by_address.len()).max(1024);
        }
        // Keys count up from 1 in steps of 2: odd, so never an address (always aligned).
        let key = self.next;
        self.next += 2;
        self.by_address.insert(address, (weak.unbind(), key));
        key
    }
}
