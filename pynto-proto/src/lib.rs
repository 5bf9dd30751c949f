//! pynto's wire protocol: the messages two peers exchange, the values they box, and the codec
//! that turns one into the other within enforced limits.
//!
//! This crate does no I/O and knows nothing of sockets, threads or Python. It is what a second
//! implementation of pynto (in another language, or a protocol analyser) needs, and nothing
//! else. The framing of bytes on a stream lives in `pynto-transport`; what a message *means*
//! to a session lives in `pynto-runtime`. `docs/protocol.md` describes the same wire in prose.
//!
//! ```
//! use pynto_proto::{decode, encode, Args, Limits, Message, Op, Request, Target, Value};
//!
//! let call = Message::Request(Request {
//!     seq: 1,
//!     chain: 7,
//!     target: Target::Export(0),
//!     op: Op::CallMethod("pow".into(), Args::positional(vec![Value::Int(3), Value::Int(2)])),
//! });
//! let frame = encode(&call);
//! assert_eq!(decode(&frame, &Limits::default()).unwrap(), call);
//! ```

#![deny(missing_docs)]

mod codec;
mod failure;
mod ids;
mod limits;
mod message;
mod op;
mod value;
mod version;

pub use codec::{decode, encode, encode_into, DecodeError, MAX_BIGINT_BYTES};
pub use failure::{ErrorKind, Failure};
pub use ids::{ChainId, Oid, Seq, TypeId, ROOT_OID};
pub use limits::{
    decode_budget, Limits, DECODE_BUDGET_FACTOR, DECODE_BUDGET_FLOOR, INLINE_BYTES_MAX,
};
pub use message::{Frame, Hello, Message, Request, Target};
pub use op::{Args, BinaryForm, BinaryOp, CompareOp, Op, UnaryOp};
pub use value::{ObjRef, TypeDesc, Value};
pub use version::{IMPLEMENTATION, PROTOCOL_VERSION};
