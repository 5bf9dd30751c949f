//! The messages of the protocol. Each variant notes the protocol version that added it.

use bytes::Bytes;

use crate::failure::Failure;
use crate::ids::{ChainId, Oid, Seq};
use crate::limits::Limits;
use crate::op::Op;
use crate::value::Value;

/// One protocol message.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// The first message each side sends; nothing else may come before it. (v1, code 0, fixed
    /// forever.)
    Hello(Hello),
    /// Ask the peer to perform `op` on `target`. (v1, code 1)
    Request(Request),
    /// The successful result of request `seq`. (v1, code 2)
    Reply {
        /// The request answered.
        seq: Seq,
        /// The result.
        value: Value,
    },
    /// Request `seq` failed. (v1, code 3)
    Failure {
        /// The request answered.
        seq: Seq,
        /// What went wrong.
        failure: Failure,
    },
    /// The sender's proxies for these objects of the receiver are gone: for each `(oid, count)`,
    /// `count` is how many times the sender had received that reference. (v1, code 4)
    Release(Vec<(Oid, u64)>),
    /// The caller no longer waits for request `seq`; the callee may stop working on it.
    /// A reply may still come and is decoded as usual. (v1, code 5)
    Cancel {
        /// The request abandoned.
        seq: Seq,
    },
    /// The caller is done with the answer of request `seq`, so the callee may forget it.
    /// Reserved for promise pipelining (`Target::Answer`); v1 peers ignore it. (v1, code 6)
    Finish {
        /// The request whose answer is finished with.
        seq: Seq,
    },
    /// The sender is closing the connection, and says why. (v1, code 7)
    Goodbye {
        /// A human-readable reason, empty for a plain close.
        reason: String,
    },
}

/// The opening message. Encoded as a msgpack map with named fields so later versions can add
/// fields that older peers skip.
#[derive(Clone, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Hello {
    /// The protocol version the sender speaks ([`crate::PROTOCOL_VERSION`]).
    pub protocol: u32,
    /// The sending implementation and its version, for diagnostics.
    pub implementation: String,
    /// Optional features the sender supports, by name.
    pub features: Vec<String>,
    /// What the sender accepts from its peer.
    pub limits: Limits,
    /// The shared secret, when the sender authenticates with one. Servers send `None`.
    pub token: Option<String>,
    /// The name of the sender's root service, for diagnostics and the CLI.
    pub service: String,
}

/// A request for an operation on one of the receiver's objects.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// The sender's sequence number for this request.
    pub seq: Seq,
    /// The distributed thread of control the request belongs to.
    pub chain: ChainId,
    /// The object the operation applies to.
    pub target: Target,
    /// The operation.
    pub op: Op,
}

/// What a request applies to.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// An object the receiver exports.
    Export(Oid),
    /// The (future) answer of the sender's earlier request `seq`, followed along an attribute
    /// path. Reserved for promise pipelining: v1 peers answer it with
    /// `Failure(Unimplemented)`.
    Answer(Seq, Vec<String>),
}

/// A frame as it crosses a transport: the msgpack body and the bulk attachments that follow it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frame {
    /// The msgpack-encoded message.
    pub body: Bytes,
    /// Bulk byte strings, referenced from the body by index.
    pub attachments: Vec<Bytes>,
}

impl Frame {
    /// Total size in bytes of body and attachments.
    pub fn len(&self) -> u64 {
        self.body.len() as u64 + self.attachments.iter().map(|a| a.len() as u64).sum::<u64>()
    }

    /// True when the frame carries no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
