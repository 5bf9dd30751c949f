//! Identifiers that travel on the wire: request sequence numbers, call chains and object ids.

/// A request's sequence number, unique per direction of one connection and never reused.
/// Replies, failures, cancels and finishes name the request by it.
pub type Seq = u64;

/// A distributed thread of control. Every request carries the chain of the call that caused it,
/// so a callback arriving while a thread waits on that chain runs on that very thread.
/// Chain ids are drawn from a process-wide counter mixed with a per-process random salt, so two
/// processes never mint the same id.
pub type ChainId = u64;

/// An exported object's id, unique per connection and exporting side, never reused.
/// `0` is reserved for the root object.
pub type Oid = u64;

/// The root object's oid.
pub const ROOT_OID: Oid = 0;

/// A type description's id, unique per connection and exporting side.
pub type TypeId = u32;
