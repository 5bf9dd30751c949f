//! Boxing: the values that cross the wire. Immutable primitives travel by value; every other
//! object travels by reference as an [`ObjRef`] and arrives as a proxy.

use bytes::Bytes;

use crate::ids::{Oid, TypeId};

/// One boxed value.
///
/// The by-value variants mirror Python's immutable primitives. `List`, `Set`, `Dict` and
/// `ByteArray` are by-value *copies* of builtin containers: they are used where the protocol
/// says a container crosses by value for one operation (an operator's operand, a batch of
/// iterated items), never for an object the peer could mutate.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// Any larger integer: little-endian two's complement, shortest form (no redundant sign
    /// bytes). Never used for values that fit in `Int`.
    BigInt(Vec<u8>),
    /// A double.
    Float(f64),
    /// A complex number: real part, imaginary part.
    Complex(f64, f64),
    /// A string.
    Str(String),
    /// `bytes`. Travels inline below [`crate::INLINE_BYTES_MAX`], as an attachment above.
    Bytes(Bytes),
    /// `Ellipsis`.
    Ellipsis,
    /// `NotImplemented`.
    NotImplemented,
    /// `slice(start, stop, step)`.
    Slice(Box<[Value; 3]>),
    /// A tuple of by-value items (also the protocol's own sequence of values).
    Tuple(Vec<Value>),
    /// A frozenset of by-value items.
    FrozenSet(Vec<Value>),
    /// A by-value copy of a `list`, for one operation.
    List(Vec<Value>),
    /// A by-value copy of a `set`, for one operation.
    Set(Vec<Value>),
    /// A by-value copy of a `dict`, for one operation; pairs in insertion order.
    Dict(Vec<(Value, Value)>),
    /// A by-value copy of a `bytearray`, for one operation.
    ByteArray(Bytes),
    /// One of the sender's objects, by reference.
    Ref(ObjRef),
    /// One of the receiver's own objects coming home; it unboxes to the original object.
    Returned(Oid),
    /// An instance of a standard immutable value type (`datetime.date`, `decimal.Decimal`,
    /// a builtin exception, ...), named by its qualified type name and rebuilt by the receiver
    /// from by-value constructor arguments. A receiver admits only the names on its own
    /// allow-list; anything else is refused. Boxed, so `Value` stays small.
    Standard(Box<(String, Vec<Value>)>),
}

/// A reference to an object the sender exports.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjRef {
    /// The sender's export id; each time the sender encodes it, its `sent` count grows by one.
    pub oid: Oid,
    /// The id of the object's type description on this connection.
    pub type_id: TypeId,
    /// The type description itself, present the first time this `type_id` crosses this
    /// connection in this direction, so the receiver builds its proxy class without a round trip.
    pub desc: Option<Box<TypeDesc>>,
}

/// What a receiver needs to build a proxy class that looks like the remote type.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TypeDesc {
    /// The defining module, e.g. `builtins`, `collections`, `myapp.models`.
    pub module: String,
    /// The qualified name within the module, e.g. `OrderedDict`, `Outer.Inner`.
    pub qualname: String,
    /// The special methods the type defines, e.g. `__len__`, `__iter__`, `__call__`. The proxy
    /// class defines exactly these, so `len`, `iter`, `callable` and ABC checks match.
    pub dunders: Vec<String>,
    /// Public methods the peer may call, answered locally by a bound remote method so that
    /// `obj.m(...)` costs one round trip.
    pub methods: Vec<String>,
    /// `collections.abc` names the type is registered as (`Sequence`, `Mapping`, ...).
    pub abcs: Vec<String>,
}

impl Value {
    /// A short name of the variant, for error messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt(_) => "int",
            Value::Float(_) => "float",
            Value::Complex(..) => "complex",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::Ellipsis => "Ellipsis",
            Value::NotImplemented => "NotImplemented",
            Value::Slice(_) => "slice",
            Value::Tuple(_) => "tuple",
            Value::FrozenSet(_) => "frozenset",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::Dict(_) => "dict",
            Value::ByteArray(_) => "bytearray",
            Value::Ref(_) => "reference",
            Value::Returned(_) => "returned reference",
            Value::Standard(..) => "standard value",
        }
    }
}
