//! The `Host` trait: what a language binding supplies so the runtime can serve its objects.

use pynto_proto::{Failure, Op, Value};

use crate::boxing::{Boxer, Incoming};
use crate::session::Session;

/// A language binding: its object type and how operations on its objects run.
///
/// The runtime calls [`Host::perform`] on a worker thread, or on a thread parked in a call of
/// the same chain, never on a connection's reader thread. Everything else the runtime does
/// with host objects is clone and drop.
pub trait Host: Send + Sync + Sized + 'static {
    /// A handle to one of the host's objects.
    type Object: Clone + Send + Sync + 'static;

    /// A key that is equal for two handles exactly when they are the same object
    /// (Python: `id(obj)`), used so an object exported twice gets one oid.
    fn identity(&self, object: &Self::Object) -> usize;

    /// Perform `op` on `target`, one of this side's objects, for the peer.
    ///
    /// `incoming` resolves the references the request carried (`Value::Ref` to a proxy handle,
    /// `Value::Returned` to the local object). The result is boxed with `boxer`, which exports
    /// objects by reference. `Op::GetRoot` arrives with the session's root as `target`.
    fn perform(
        &self,
        session: &Session<Self>,
        target: &Self::Object,
        op: Op,
        incoming: &Incoming<Self>,
        boxer: &mut Boxer<'_, Self>,
    ) -> Result<Value, Failure>;

    /// The session closed; everything the peer held is released already. Runs on a worker
    /// thread.
    fn on_close(&self, _session: &Session<Self>) {}
}
