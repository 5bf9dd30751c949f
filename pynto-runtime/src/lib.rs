//! pynto's engine: symmetric sessions between two peers, each serving its objects to the other
//! and calling the other's, with call chains and distributed reference counting.
//!
//! The runtime is generic over a [`Host`], the language binding whose objects it serves; it
//! has no Python in it and is tested in plain Rust. It is not a transport (see
//! `pynto-transport`) and not a wire format (see `pynto-proto`).
//!
//! - A [`Session`] runs over any transport. Reading a connection is a role, not a thread: a
//!   caller waiting for its reply reads it itself, a read loop on a pool thread reads when no
//!   caller does, and whoever reads never runs host code while holding the reader. A caller
//!   writes its own request and waits, running callbacks of its own call chain meanwhile, so a
//!   server can call back into a client that is blocked in a call to it, on the very thread
//!   that waits.
//! - Objects cross by reference with Cap'n Proto-style counts: the exporter counts sends, the
//!   importer counts receipts, and the last dropped [`RemoteRef`] releases what it received.
//! - [`native`] is a host for Rust objects, and [`Remote`] a client API, so Rust programs serve
//!   and call any pynto peer, Python ones included.
//!
//! ```
//! use std::sync::Arc;
//! use pynto_proto::Value;
//! use pynto_runtime::native::{NativeHost, Object, Methods};
//! use pynto_runtime::{Config, Role, Session};
//!
//! // A Rust object with one method.
//! let calc = Methods::new("Calc").method("add", |args| {
//!     let (Value::Int(a), Value::Int(b)) = (&args.positional[0], &args.positional[1]) else {
//!         return Err(pynto_runtime::native::type_error("add takes two ints"));
//!     };
//!     Ok(Value::Int(a + b).into())
//! });
//! let (a, b) = pynto_transport::memory::pair();
//! let server = std::thread::spawn(move || {
//!     Session::connect(Box::new(b), Role::Acceptor, NativeHost::new(), Object::new(calc), Config::default())
//! });
//! let client = Session::connect(Box::new(a), Role::Connector, NativeHost::new(), Object::unit(), Config::default()).unwrap();
//! let _server = server.join().unwrap().unwrap();
//! let root = client.root().unwrap();
//! let sum = root.call_method("add", vec![Value::Int(2), Value::Int(3)]).unwrap();
//! assert_eq!(sum.value, Value::Int(5));
//! ```

mod boxing;
mod call;
mod chains;
mod config;
mod error;
mod exports;
mod handshake;
mod host;
mod housekeeper;
mod imports;
mod liveness;
pub mod native;
mod parking;
mod pool;
mod reader;
mod remote;
mod session;

pub use boxing::{Boxer, Incoming};
pub use call::{Answer, CallOptions, ReplyFuture, ReplyHandle};
pub use config::Config;
pub use error::Error;
pub use host::Host;
pub use imports::{ImportEntry, RemoteRef};
pub use liveness::MIN_FRAME_RATE;
pub use pool::{max_workers, set_max_workers, spawn, worker_count, DEFAULT_MAX_WORKERS};
pub use remote::Remote;
pub use session::{Role, Session, Stats};

/// Chains with a thread waiting on them in this process (for tests and diagnostics).
pub fn waiting_chains() -> usize {
    chains::chain_table().len()
}
