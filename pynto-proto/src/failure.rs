//! Failures: how a request that went wrong is reported to its caller.

use crate::value::Value;

/// What kind of failure, so the caller knows what to do about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ErrorKind {
    /// The remote code raised an exception; `type_name` says which.
    Remote = 0,
    /// The receiver does not implement this operation or target form.
    Unimplemented = 1,
    /// The target oid is not (or no longer) exported.
    NoSuchObject = 2,
    /// The owner's policy refused the operation.
    AccessDenied = 3,
    /// The request broke the protocol (bad arguments for the op, a limit).
    Protocol = 4,
    /// The request was cancelled before it finished.
    Cancelled = 5,
    /// The receiver is over a limit (objects, requests in flight); retry later.
    Overloaded = 6,
}

impl ErrorKind {
    /// The kind with wire code `code`, if any.
    pub fn from_u8(code: u8) -> Option<Self> {
        use ErrorKind::*;
        [
            Remote,
            Unimplemented,
            NoSuchObject,
            AccessDenied,
            Protocol,
            Cancelled,
            Overloaded,
        ]
        .into_iter()
        .find(|k| *k as u8 == code)
    }
}

/// A failed request's report.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// The exception's qualified type name, e.g. `builtins.ValueError`.
    pub type_name: String,
    /// `str()` of the exception.
    pub message: String,
    /// The exception's args, where they are by-value; omitted otherwise.
    pub args: Vec<Value>,
    /// The formatted remote traceback.
    pub traceback: String,
}

impl Failure {
    /// A failure of `kind` with only a type and message, no args or traceback.
    pub fn new(kind: ErrorKind, type_name: impl Into<String>, message: impl Into<String>) -> Self {
        Failure {
            kind,
            type_name: type_name.into(),
            message: message.into(),
            args: Vec::new(),
            traceback: String::new(),
        }
    }
}
