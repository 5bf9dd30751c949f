//! The client API for Rust programs: a handle to one of the peer's objects, with blocking and
//! async forms of every operation.

use pynto_proto::{Args, Op, Target, Value};

use crate::call::CallOptions;
use crate::error::Error;
use crate::host::{Answer, Boxer, Host, Session};
use crate::imports::RemoteRef;

/// One of the peer's objects, reached through a session. Dropping the last handle releases it.
pub struct Remote<H: Host> {
    session: Session<H>,
    handle: RemoteRef,
}

impl<H: Host> Clone for Remote<H> {
    fn clone(&self) -> Self {
        Remote {
            session: self.session.clone(),
            handle: self.handle.clone(),
        }
    }
}

impl<H: Host> std::fmt::Debug for Remote<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Remote(oid={}, peer={})",
            self.handle.oid(),
            self.session.peer_address()
        )
    }
}

impl<H: Host> Session<H> {
    /// The peer's root object (its service).
    pub fn root(&self) -> Result<Remote<H>, Error> {
        let answer = self.request(
            Target::Export(0),
            Op::GetRoot,
            self.boxer(),
            &CallOptions::default(),
        )?;
        self.remote_of(&answer).ok_or_else(|| {
            Error::Protocol(format!(
                "the peer's root came back by value: {:?}",
                answer.value
            ))
        })
    }

    /// The peer's root object, asynchronously.
    pub async fn root_async(&self) -> Result<Remote<H>, Error> {
        let answer = self
            .request_async(Target::Export(0), Op::GetRoot, self.boxer())
            .await?;
        self.remote_of(&answer).ok_or_else(|| {
            Error::Protocol(format!(
                "the peer's root came back by value: {:?}",
                answer.value
            ))
        })
    }

    /// The object an answer returned by reference, as a handle.
    pub fn remote_of(&self, answer: &Answer<H>) -> Option<Remote<H>> {
        answer.remote().map(|handle| Remote {
            session: self.clone(),
            handle: handle.clone(),
        })
    }

    /// A handle for an imported reference of this session.
    pub fn remote(&self, handle: RemoteRef) -> Option<Remote<H>> {
        self.owns(&handle).then(|| Remote {
            session: self.clone(),
            handle,
        })
    }
}

impl<H: Host> Remote<H> {
    /// The session the object lives behind.
    pub fn session(&self) -> &Session<H> {
        &self.session
    }

    /// The counted handle.
    pub fn handle(&self) -> &RemoteRef {
        &self.handle
    }

    fn target(&self) -> Target {
        Target::Export(self.handle.oid())
    }

    /// Perform `op`, whose values `build` boxes (exporting local objects as needed), and wait.
    pub fn op_with(
        &self,
        build: impl FnOnce(&mut Boxer<'_, H>) -> Result<Op, Error>,
    ) -> Result<Answer<H>, Error> {
        let mut boxer = self.session.boxer();
        let op = build(&mut boxer)?;
        self.session
            .request(self.target(), op, boxer, &CallOptions::default())
    }

    /// Perform `op` (by-value operands only) and wait.
    pub fn op(&self, op: Op) -> Result<Answer<H>, Error> {
        self.session.request(
            self.target(),
            op,
            self.session.boxer(),
            &CallOptions::default(),
        )
    }

    /// Perform `op` (by-value operands only) asynchronously.
    pub async fn op_async(&self, op: Op) -> Result<Answer<H>, Error> {
        self.session
            .request_async(self.target(), op, self.session.boxer())
            .await
    }

    /// `getattr(obj, name)`.
    pub fn getattr(&self, name: &str) -> Result<Answer<H>, Error> {
        self.op(Op::GetAttr(name.to_string()))
    }

    /// `obj(*args)`.
    pub fn call(&self, args: Vec<Value>) -> Result<Answer<H>, Error> {
        self.op(Op::Call(Args::positional(args)))
    }

    /// `obj.name(*args)`, in one round trip.
    pub fn call_method(&self, name: &str, args: Vec<Value>) -> Result<Answer<H>, Error> {
        self.op(Op::CallMethod(name.to_string(), Args::positional(args)))
    }

    /// `getattr(obj, name)`, asynchronously.
    pub async fn getattr_async(&self, name: &str) -> Result<Answer<H>, Error> {
        self.op_async(Op::GetAttr(name.to_string())).await
    }

    /// `obj(*args)`, asynchronously.
    pub async fn call_async(&self, args: Vec<Value>) -> Result<Answer<H>, Error> {
        self.op_async(Op::Call(Args::positional(args))).await
    }

    /// `obj.name(*args)`, asynchronously.
    pub async fn call_method_async(
        &self,
        name: &str,
        args: Vec<Value>,
    ) -> Result<Answer<H>, Error> {
        self.op_async(Op::CallMethod(name.to_string(), Args::positional(args)))
            .await
    }

    /// The object an answer of this session returned by reference.
    pub fn remote_of(&self, answer: &Answer<H>) -> Option<Remote<H>> {
        self.session.remote_of(answer)
    }
}
