//! The evaluator: runs parsed statements against one session, turning each step into protocol
//! operations on the peer's objects and keeping the names bound so far.

use std::collections::HashMap;

use pynto_proto::{Args, Op, Target, UnaryOp, Value};
use pynto_runtime::native::NativeHost;
use pynto_runtime::{Boxer, CallOptions, Error, Remote, Session};

use super::local;
use super::parser::{Expr, Stmt};
use super::value::{contains_returned, kind, to_wire, walk_refs, Data, Namer, Obj, Outcome};
use crate::{json, render};

/// Why evaluating a statement failed.
#[derive(Debug)]
pub enum EvalError {
    /// Evaluation failed on this side (unknown name, bad index of a local value, ...), in
    /// Python's `TypeName: message` form.
    Local(String),
    /// The peer or the connection failed.
    Runtime(Error),
}

impl From<Error> for EvalError {
    fn from(e: Error) -> Self {
        EvalError::Runtime(e)
    }
}

pub(super) fn local<T>(message: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError::Local(message.into()))
}

pub(super) const BUILTINS: [&str; 4] = ["dir", "repr", "str", "len"];

/// Evaluates statements against one session, keeping the names bound so far.
pub struct Evaluator {
    pub(super) session: Session<NativeHost>,
    pub(super) classic: bool,
    pub(super) vars: HashMap<String, Obj>,
    /// Checked while a call waits; an `Err` abandons the call (the peer gets a Cancel) and
    /// keeps the session. `pynto connect` checks for Ctrl-C here.
    interrupt: Option<Interrupt>,
}

/// A check for a request to stop waiting (see [`Evaluator::set_interrupt`]).
pub type Interrupt = fn() -> Result<(), Error>;

impl Evaluator {
    /// An evaluator for `session`, with `root` (and `modules` and `builtins` on classic
    /// servers) bound.
    pub fn new(session: Session<NativeHost>) -> Result<Evaluator, Error> {
        let answer = session.request(
            Target::Export(0),
            Op::GetRoot,
            session.boxer(),
            &CallOptions::default(),
        )?;
        let root = Data::from_answer(&session, answer);
        let classic = session.peer_hello().service == "classic";
        let mut vars = HashMap::new();
        vars.insert("root".to_string(), Obj::Data(root));
        if classic {
            vars.insert("modules".to_string(), Obj::Modules);
        }
        Ok(Evaluator {
            session,
            classic,
            vars,
            interrupt: None,
        })
    }

    /// Check `interrupt` while each call waits: its `Err` abandons the call (the peer is sent
    /// a Cancel) and becomes the statement's error; the session stays open.
    pub fn set_interrupt(&mut self, interrupt: Interrupt) {
        self.interrupt = Some(interrupt);
    }

    /// Perform `op` on `remote` and wait (interruptibly, see [`Evaluator::set_interrupt`]).
    pub(super) fn request(&self, remote: &Remote<NativeHost>, op: Op) -> Result<Data, Error> {
        self.request_with(remote, |_| Ok(op))
    }

    /// Perform the op `build` makes (boxing its operands) on `remote`, and wait.
    fn request_with(
        &self,
        remote: &Remote<NativeHost>,
        build: impl FnOnce(&mut Boxer<'_, NativeHost>) -> Result<Op, Error>,
    ) -> Result<Data, Error> {
        let mut boxer = self.session.boxer();
        let op = build(&mut boxer)?;
        let interrupt = self.interrupt;
        let check = move || interrupt.map_or(Ok(()), |check| check());
        let options = CallOptions {
            timeout: None,
            interrupt: Some(&check),
        };
        let target = Target::Export(remote.handle().oid());
        let answer = self.session.request(target, op, boxer, &options)?;
        Ok(Data::from_answer(&self.session, answer))
    }

    /// True if the peer is a classic server (`modules` and `builtins` are available).
    pub fn classic(&self) -> bool {
        self.classic
    }

    /// The session evaluated against.
    pub fn session(&self) -> &Session<NativeHost> {
        &self.session
    }

    /// Run statements in order; the outcome of the last one, or `None` for an empty program.
    pub fn run(&mut self, program: &[Stmt]) -> Result<Option<Outcome>, EvalError> {
        let mut last = None;
        for stmt in program {
            last = Some(match stmt {
                Stmt::Assign(name, expr) => {
                    let value = self.eval(expr)?;
                    self.vars.insert(name.clone(), value.clone());
                    Outcome {
                        value,
                        assigned: true,
                    }
                }
                Stmt::Expr(expr) => Outcome {
                    value: self.eval(expr)?,
                    assigned: false,
                },
            });
        }
        Ok(last)
    }

    /// Python's `repr` of a result; references show the remote `repr`.
    pub fn repr(&self, obj: &Obj) -> Result<String, Error> {
        match obj {
            Obj::Modules => Ok(self.modules_repr()),
            Obj::Data(data) => {
                let mut namer = Namer::new(self, data);
                let shown = render::repr(&data.value, &mut namer);
                namer.finish().map(|()| shown)
            }
        }
    }

    /// A result as JSON (see `json.rs` for the mapping); remote builtin containers print as
    /// their contents (see `fetch.rs`).
    pub fn json(&self, obj: &Obj) -> Result<String, Error> {
        match obj {
            Obj::Modules => Ok(json::write(&serde_json::json!({
                "ref": self.modules_repr(),
                "type": "pynto.modules",
            }))),
            Obj::Data(data) => {
                let data = self.fetch_containers(data)?;
                let mut namer = Namer::new(self, &data);
                let shown = json::to_string(&data.value, &mut namer);
                namer.finish().map(|()| shown)
            }
        }
    }

    fn modules_repr(&self) -> String {
        format!("<modules of {}>", self.session.peer_address())
    }

    fn data(&mut self, expr: &Expr) -> Result<Data, EvalError> {
        match self.eval(expr)? {
            Obj::Data(d) => Ok(d),
            Obj::Modules => {
                local("TypeError: 'modules' can only be used as modules.NAME or modules[\"NAME\"]")
            }
        }
    }

    pub(super) fn eval(&mut self, expr: &Expr) -> Result<Obj, EvalError> {
        Ok(match expr {
            Expr::Name(name) => match self.vars.get(name) {
                Some(obj) => obj.clone(),
                // The server's builtins module, imported on first use and kept.
                None if name == "builtins" && self.classic => {
                    let builtins = self.import("builtins")?;
                    self.vars.insert(name.clone(), builtins.clone());
                    builtins
                }
                None if name == "modules" || name == "builtins" => {
                    return local(format!(
                        "NameError: '{name}' is only available on classic servers (this server serves {:?})",
                        self.session.peer_hello().service
                    ))
                }
                None if BUILTINS.contains(&name.as_str()) => {
                    return local(format!("TypeError: {name} is a builtin: call it, as in {name}(x)"))
                }
                None => return local(format!("NameError: name '{name}' is not defined")),
            },
            Expr::Int(i) => Obj::Data(Data::plain(render::int_value(*i))),
            Expr::Lit(v) => Obj::Data(Data::plain(v.clone())),
            Expr::Attr(base, name) => {
                let base = self.eval(base)?;
                self.getattr(base, name)?
            }
            Expr::Call(callee, args, kwargs) => return self.call(callee, args, kwargs),
            Expr::Index(base, key) => {
                let base = self.eval(base)?;
                let key = self.data(key)?;
                self.index(base, key)?
            }
            Expr::Slice(parts) => {
                let mut refs = Vec::new();
                let mut values = Vec::new();
                for part in parts.iter() {
                    match part {
                        Some(e) => {
                            let d = self.data(e)?;
                            refs.extend(d.refs);
                            values.push(d.value);
                        }
                        None => values.push(Value::None),
                    }
                }
                let [a, b, c]: [Value; 3] = values.try_into().expect("three parts");
                Obj::Data(Data {
                    value: Value::Slice(Box::new([a, b, c])),
                    refs,
                })
            }
            Expr::Tuple(items) => Obj::Data(self.collect(items, Value::Tuple)?),
            Expr::List(items) => Obj::Data(self.collect(items, Value::List)?),
            Expr::Set(items) => Obj::Data(self.collect(items, Value::Set)?),
            Expr::Dict(pairs) => {
                let mut refs = Vec::new();
                let mut out = Vec::new();
                for (k, v) in pairs {
                    let k = self.data(k)?;
                    let v = self.data(v)?;
                    refs.extend(k.refs);
                    refs.extend(v.refs);
                    out.push((k.value, v.value));
                }
                Obj::Data(Data {
                    value: Value::Dict(out),
                    refs,
                })
            }
            Expr::Neg(inner) => {
                let d = self.data(inner)?;
                Obj::Data(match &d.value {
                    Value::Int(i) => match i.checked_neg() {
                        Some(n) => Data::plain(Value::Int(n)),
                        None => Data::plain(render::int_value(-i128::from(*i))),
                    },
                    Value::BigInt(b) => Data::plain(render::negate_bigint(b)),
                    Value::Float(f) => Data::plain(Value::Float(-f)),
                    Value::Complex(re, im) => Data::plain(Value::Complex(-re, -im)),
                    Value::Ref(_) => {
                        let remote = d.remote().expect("a resolved reference");
                        self.request(remote, Op::Unary(UnaryOp::Neg))?
                    }
                    other => {
                        return local(format!(
                            "TypeError: bad operand type for unary -: '{}'",
                            kind(other)
                        ))
                    }
                })
            }
        })
    }

    fn collect(
        &mut self,
        items: &[Expr],
        make: fn(Vec<Value>) -> Value,
    ) -> Result<Data, EvalError> {
        let mut refs = Vec::new();
        let mut values = Vec::new();
        for item in items {
            let d = self.data(item)?;
            refs.extend(d.refs);
            values.push(d.value);
        }
        Ok(Data {
            value: make(values),
            refs,
        })
    }

    fn import(&self, name: &str) -> Result<Obj, EvalError> {
        let Some(Obj::Data(root)) = self.vars.get("root").cloned() else {
            return local("NameError: 'root' was rebound; modules needs the server's root");
        };
        let root = root
            .remote()
            .ok_or_else(|| EvalError::Local("TypeError: root is not a remote object".into()))?
            .clone();
        let name = Value::Str(name.to_string());
        let op = Op::CallMethod("getmodule".into(), Args::positional(vec![name]));
        Ok(Obj::Data(self.request(&root, op)?))
    }

    fn getattr(&self, base: Obj, name: &str) -> Result<Obj, EvalError> {
        match base {
            Obj::Modules => self.import(name),
            Obj::Data(d) => match d.remote() {
                Some(remote) => Ok(Obj::Data(self.request(remote, Op::GetAttr(name.into()))?)),
                None => local(format!(
                    "AttributeError: the by-value '{}' result {} is a local copy and has no remote attribute '{name}'",
                    kind(&d.value),
                    render::repr(&d.value, &mut render::NoRefs)
                )),
            },
        }
    }

    fn index(&self, base: Obj, key: Data) -> Result<Obj, EvalError> {
        let d = match base {
            Obj::Modules => match &key.value {
                Value::Str(name) => return self.import(name),
                other => {
                    return local(format!(
                        "TypeError: modules[...] takes a str, not '{}'",
                        kind(other)
                    ))
                }
            },
            Obj::Data(d) => d,
        };
        if let Some(remote) = d.remote() {
            return Ok(Obj::Data(
                self.send(remote, &[&key], |mut v| Op::GetItem(v.remove(0)))?,
            ));
        }
        local::index(d, &key)
    }

    /// Send an operation built from by-value-or-reference operands, passing references back
    /// to the peer as its own objects.
    pub(super) fn send(
        &self,
        target: &Remote<NativeHost>,
        operands: &[&Data],
        build: impl FnOnce(Vec<Value>) -> Op,
    ) -> Result<Data, EvalError> {
        for d in operands {
            let mut bad = None;
            walk_refs(&d.value, &mut |r| {
                if d.lookup(r.oid).is_none() {
                    bad = Some(r.oid);
                }
            });
            if contains_returned(&d.value) || bad.is_some() {
                return local("TypeError: this value cannot be sent back to the peer");
            }
        }
        Ok(self.request_with(target, |boxer| {
            let mut values = Vec::with_capacity(operands.len());
            for d in operands {
                values.push(to_wire(&d.value, d, boxer)?);
            }
            Ok(build(values))
        })?)
    }

    fn call(
        &mut self,
        callee: &Expr,
        args: &[Expr],
        kwargs: &[(String, Expr)],
    ) -> Result<Obj, EvalError> {
        if let Expr::Name(name) = callee {
            if !self.vars.contains_key(name) && BUILTINS.contains(&name.as_str()) {
                return self.builtin(name, args, kwargs);
            }
        }
        // `obj.name(...)` is one CallMethod round trip.
        let (target, method) = match callee {
            Expr::Attr(base, name) => match self.eval(base)? {
                Obj::Data(d) if d.remote().is_some() => (d, Some(name.clone())),
                other => match self.getattr(other, name)? {
                    Obj::Data(d) => (d, None),
                    Obj::Modules => unreachable!("getattr never returns modules"),
                },
            },
            other => (self.data(other)?, None),
        };
        let Some(remote) = target.remote() else {
            return local(format!(
                "TypeError: the by-value '{}' result is not callable",
                kind(&target.value)
            ));
        };
        let mut operands = Vec::with_capacity(args.len() + kwargs.len());
        for a in args {
            operands.push(self.data(a)?);
        }
        for (_, v) in kwargs {
            operands.push(self.data(v)?);
        }
        let refs: Vec<&Data> = operands.iter().collect();
        let npos = args.len();
        let names: Vec<String> = kwargs.iter().map(|(k, _)| k.clone()).collect();
        let answer = self.send(remote, &refs, move |mut values| {
            let kw = values.split_off(npos);
            let call_args = Args {
                positional: values,
                keywords: names.into_iter().zip(kw).collect(),
            };
            match method {
                Some(name) => Op::CallMethod(name, call_args),
                None => Op::Call(call_args),
            }
        })?;
        Ok(Obj::Data(answer))
    }

    fn builtin(
        &mut self,
        name: &str,
        args: &[Expr],
        kwargs: &[(String, Expr)],
    ) -> Result<Obj, EvalError> {
        if args.len() != 1 || !kwargs.is_empty() {
            return local(format!(
                "TypeError: {name}() takes exactly one positional argument"
            ));
        }
        let arg = match self.eval(&args[0])? {
            Obj::Modules => {
                return match name {
                    "repr" | "str" => Ok(Obj::Data(Data::plain(Value::Str(self.modules_repr())))),
                    _ => local(format!(
                        "TypeError: {name}(modules) is not supported; try {name}(modules.sys)"
                    )),
                }
            }
            Obj::Data(d) => d,
        };
        if let Some(remote) = arg.remote() {
            let op = match name {
                "dir" => Op::Dir,
                "repr" => Op::Repr,
                "str" => Op::Str,
                _ => Op::Len,
            };
            let mut data = self.request(remote, op)?;
            if name == "dir" {
                // Python's dir() returns a list; the wire carries a tuple.
                if let Value::Tuple(items) = data.value {
                    data.value = Value::List(items);
                }
            }
            return Ok(Obj::Data(data));
        }
        let value = match (name, &arg.value) {
            ("dir", v) => {
                return local(format!(
                    "TypeError: dir() needs a remote object; the '{}' result is a local copy",
                    kind(v)
                ))
            }
            ("str", Value::Str(s)) => Value::Str(s.clone()),
            ("repr" | "str", _) => Value::Str(self.repr(&Obj::Data(arg.clone()))?),
            (_, Value::Str(s)) => Value::Int(s.chars().count() as i64),
            (_, Value::Bytes(b) | Value::ByteArray(b)) => Value::Int(b.len() as i64),
            (_, Value::Tuple(v) | Value::List(v) | Value::Set(v) | Value::FrozenSet(v)) => {
                Value::Int(v.len() as i64)
            }
            (_, Value::Dict(p)) => Value::Int(p.len() as i64),
            (_, other) => {
                return local(format!(
                    "TypeError: object of type '{}' has no len()",
                    kind(other)
                ))
            }
        };
        Ok(Obj::Data(Data::plain(value)))
    }
}
