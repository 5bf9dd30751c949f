//! A host for Rust objects, so a Rust program can serve Rust objects to any pynto peer
//! (Python clients included) and receive callbacks from it.
//!
//! Objects implement [`NativeObject`]; [`Methods`] builds one from named closures, and
//! [`function`] makes a callable.

use std::sync::Arc;

use pynto_proto::{Args, ErrorKind, Failure, Op, TypeDesc, Value};

use crate::host::{Boxer, Host, Incoming, Session};
use crate::remote::Remote;

/// The host of Rust objects. Stateless; one per process is enough.
#[derive(Default)]
pub struct NativeHost;

impl NativeHost {
    /// A shared host.
    pub fn new() -> Arc<NativeHost> {
        Arc::new(NativeHost)
    }
}

/// A Rust object served to peers.
pub trait NativeObject: Send + Sync + 'static {
    /// The type name peers see (`qualname`).
    fn type_name(&self) -> &str;
    /// Methods peers may call by name.
    fn methods(&self) -> Vec<String> {
        Vec::new()
    }
    /// True if the object itself can be called.
    fn callable(&self) -> bool {
        false
    }
    /// Call method `name`.
    fn call_method(&self, name: &str, _call: &mut NativeCall<'_>) -> Result<Return, Failure> {
        Err(attribute_error(self.type_name(), name))
    }
    /// Call the object.
    fn call(&self, _call: &mut NativeCall<'_>) -> Result<Return, Failure> {
        Err(type_error(&format!(
            "'{}' object is not callable",
            self.type_name()
        )))
    }
}

/// A served Rust object.
#[derive(Clone)]
pub struct Object(Arc<dyn NativeObject>);

impl Object {
    /// Serve `object`.
    pub fn new(object: impl NativeObject) -> Object {
        Object(Arc::new(object))
    }

    /// An object with no methods (a client's root when it serves nothing).
    pub fn unit() -> Object {
        Object::new(Methods::new("NoService"))
    }

    /// The object itself.
    pub fn get(&self) -> &dyn NativeObject {
        &*self.0
    }
}

/// What a native method returns: a value, or an object to send by reference.
pub enum Return {
    /// By value.
    Value(Value),
    /// By reference.
    Object(Object),
}

impl From<Value> for Return {
    fn from(value: Value) -> Self {
        Return::Value(value)
    }
}

impl From<Object> for Return {
    fn from(object: Object) -> Self {
        Return::Object(object)
    }
}

/// The arguments of a call on a native object, with what is needed to use remote ones.
pub struct NativeCall<'a> {
    /// Positional and keyword arguments; remote objects among them are `Value::Ref`.
    pub args: Args,
    session: &'a Session<NativeHost>,
    incoming: &'a Incoming<NativeHost>,
}

impl NativeCall<'_> {
    /// Positional argument `index` as a handle to the peer's object (e.g. a callback), if it
    /// is one.
    pub fn remote(&self, index: usize) -> Option<Remote<NativeHost>> {
        match self.args.positional.get(index)? {
            Value::Ref(r) => self.session.remote(self.incoming.import(r.oid)?.clone()),
            _ => None,
        }
    }

    /// The session the call came in on.
    pub fn session(&self) -> &Session<NativeHost> {
        self.session
    }
}

type MethodFn = Box<dyn Fn(&mut NativeCall<'_>) -> Result<Return, Failure> + Send + Sync>;

/// A native object made of named closures.
pub struct Methods {
    name: String,
    methods: Vec<(String, MethodFn)>,
}

impl Methods {
    /// An object of type `name` with no methods yet.
    pub fn new(name: &str) -> Methods {
        Methods {
            name: name.to_string(),
            methods: Vec::new(),
        }
    }

    /// Add a method that sees only the arguments.
    pub fn method(
        self,
        name: &str,
        f: impl Fn(&Args) -> Result<Return, Failure> + Send + Sync + 'static,
    ) -> Methods {
        self.method_with_call(name, move |call| f(&call.args))
    }

    /// Add a method that may also use remote arguments (callbacks) through the [`NativeCall`].
    pub fn method_with_call(
        mut self,
        name: &str,
        f: impl Fn(&mut NativeCall<'_>) -> Result<Return, Failure> + Send + Sync + 'static,
    ) -> Methods {
        self.methods.push((name.to_string(), Box::new(f)));
        self
    }
}

impl NativeObject for Methods {
    fn type_name(&self) -> &str {
        &self.name
    }
    fn methods(&self) -> Vec<String> {
        self.methods.iter().map(|(n, _)| n.clone()).collect()
    }
    fn call_method(&self, name: &str, call: &mut NativeCall<'_>) -> Result<Return, Failure> {
        match self.methods.iter().find(|(n, _)| n == name) {
            Some((_, f)) => f(call),
            None => Err(attribute_error(&self.name, name)),
        }
    }
}

/// A callable Rust object.
pub fn function(
    name: &str,
    f: impl Fn(&mut NativeCall<'_>) -> Result<Return, Failure> + Send + Sync + 'static,
) -> Object {
    struct Function(String, MethodFn);
    impl NativeObject for Function {
        fn type_name(&self) -> &str {
            &self.0
        }
        fn callable(&self) -> bool {
            true
        }
        fn call(&self, call: &mut NativeCall<'_>) -> Result<Return, Failure> {
            (self.1)(call)
        }
    }
    Object::new(Function(name.to_string(), Box::new(f)))
}

/// A method of a native object, bound to it (what `getattr(obj, "m")` returns).
struct BoundMethod {
    object: Object,
    name: String,
}

impl NativeObject for BoundMethod {
    fn type_name(&self) -> &str {
        "builtin_function_or_method"
    }
    fn callable(&self) -> bool {
        true
    }
    fn call(&self, call: &mut NativeCall<'_>) -> Result<Return, Failure> {
        self.object.0.call_method(&self.name, call)
    }
}

/// A `TypeError` failure, for argument checks in native methods.
pub fn type_error(message: &str) -> Failure {
    Failure::new(ErrorKind::Remote, "builtins.TypeError", message)
}

fn attribute_error(type_name: &str, name: &str) -> Failure {
    Failure::new(
        ErrorKind::Remote,
        "builtins.AttributeError",
        format!("'{type_name}' object has no attribute '{name}'"),
    )
}

fn describe(object: &Object) -> TypeDesc {
    let mut dunders = vec!["__repr__".to_string()];
    if object.0.callable() {
        dunders.push("__call__".to_string());
    }
    TypeDesc {
        module: "rust".into(),
        qualname: object.0.type_name().to_string(),
        dunders,
        methods: object.0.methods(),
        abcs: Vec::new(),
    }
}

/// Box a native return value for a message: by value, or exported by reference.
pub fn export(boxer: &mut Boxer<'_, NativeHost>, value: Return) -> Result<Value, Failure> {
    match value {
        Return::Value(v) => Ok(v),
        Return::Object(object) => {
            // Type key: the vtable-independent address of the type name is not stable, so key
            // by type name bytes' hash: one description per distinct native type name.
            let key = type_key(object.0.type_name(), object.0.callable());
            boxer.export(&object, key, || describe(&object))
        }
    }
}

fn type_key(name: &str, callable: bool) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    callable.hash(&mut h);
    h.finish() as usize
}

impl Host for NativeHost {
    type Object = Object;

    fn identity(&self, object: &Object) -> usize {
        Arc::as_ptr(&object.0) as *const () as usize
    }

    fn perform(
        &self,
        session: &Session<Self>,
        target: &Object,
        op: Op,
        incoming: &Incoming<Self>,
        boxer: &mut Boxer<'_, Self>,
    ) -> Result<Value, Failure> {
        let call = |args: Args| NativeCall {
            args,
            session,
            incoming,
        };
        let result: Return = match op {
            Op::GetRoot => Return::Object(target.clone()),
            Op::CallMethod(name, args) => target.0.call_method(&name, &mut call(args))?,
            Op::Call(args) => target.0.call(&mut call(args))?,
            Op::GetAttr(name) if target.0.methods().contains(&name) => {
                Return::Object(Object::new(BoundMethod {
                    object: target.clone(),
                    name,
                }))
            }
            Op::GetAttr(name) => return Err(attribute_error(target.0.type_name(), &name)),
            Op::Repr | Op::Str => {
                Value::Str(format!("<{} (Rust object)>", target.0.type_name())).into()
            }
            Op::Dir => {
                Value::Tuple(target.0.methods().into_iter().map(Value::Str).collect()).into()
            }
            Op::Bool => Value::Bool(true).into(),
            Op::Hash => Value::Int(self.identity(target) as i64).into(),
            other => {
                return Err(Failure::new(
                    ErrorKind::Unimplemented,
                    "pynto.Unimplemented",
                    format!("native objects do not support {other:?}"),
                ))
            }
        };
        export(boxer, result)
    }
}
