//! Protocol versions. Hello is message 0 in every version and never moves.

/// The protocol version this build speaks. Peers must speak the same version: a mismatch ends
/// the connection during the Hello exchange with an error that names both versions.
pub const PROTOCOL_VERSION: u32 = 1;

/// The version of the crate, sent in Hello as the implementation string for diagnostics.
pub const IMPLEMENTATION: &str = concat!("pynto-rust/", env!("CARGO_PKG_VERSION"));
