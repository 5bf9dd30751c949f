//! Operations a request asks of its target: the whole Python data model, plus protocol chores.

use crate::value::Value;

/// Positional and keyword arguments of a call.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Args {
    /// Positional arguments, in order.
    pub positional: Vec<Value>,
    /// Keyword arguments, in the caller's order.
    pub keywords: Vec<(String, Value)>,
}

impl Args {
    /// Positional arguments only.
    pub fn positional(values: Vec<Value>) -> Self {
        Args {
            positional: values,
            keywords: Vec::new(),
        }
    }
}

/// What a request does to its target. Every operation on an exported object passes the
/// owner's one access check, operators and comparisons included.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// The peer's root object (its service). The target is ignored.
    GetRoot,
    /// One round trip, nothing else. The target is ignored. Replies `None`.
    Ping,
    /// `getattr(target, name)`.
    GetAttr(String),
    /// `setattr(target, name, value)`.
    SetAttr(String, Value),
    /// `delattr(target, name)`.
    DelAttr(String),
    /// `target(*args, **kwargs)`.
    Call(Args),
    /// `target.name(*args, **kwargs)` in one round trip.
    CallMethod(String, Args),
    /// `repr(target)`.
    Repr,
    /// `str(target)`.
    Str,
    /// `format(target, spec)`.
    Format(String),
    /// `hash(target)`.
    Hash,
    /// `dir(target)`.
    Dir,
    /// `bool(target)`.
    Bool,
    /// `len(target)`.
    Len,
    /// `iter(target)`: replies with the iterator, by reference.
    Iter,
    /// Up to `n` items of `next(target)`: replies `Tuple([Tuple(items), Bool(exhausted)])`.
    /// Fewer than `n` items come back only when the iterator is exhausted or raised; an error
    /// after some items is reported on the following `Next`.
    Next(u32),
    /// `target[key]`.
    GetItem(Value),
    /// `target[key] = value`.
    SetItem(Value, Value),
    /// `del target[key]`.
    DelItem(Value),
    /// `item in target`.
    Contains(Value),
    /// A rich comparison `target <op> other`.
    Compare(CompareOp, Value),
    /// A binary operator, plain (`target + other`), reflected (`other + target`) or in place
    /// (`target += other`, replying with the result).
    Binary(BinaryOp, BinaryForm, Value),
    /// A unary operator or conversion.
    Unary(UnaryOp),
    /// `target.__enter__()`.
    Enter,
    /// `target.__exit__(type, value, traceback)`; the three are `None` or the exception's parts.
    Exit(Value, Value, Value),
    /// `isinstance(target, cls)` where `cls` is a class of the target's owner given by module
    /// and qualified name.
    IsInstance(String, String),
    /// A pickled copy of the target (for `obtain`), if the owner allows pickling.
    Pickle,
    /// `await target`: drives a remote awaitable on its owner's event loop.
    Await,
    /// `aiter(target)`.
    AIter,
    /// `await anext(target)`.
    ANext,
    /// `await target.__aenter__()`.
    AEnter,
    /// `await target.__aexit__(type, value, traceback)`.
    AExit(Value, Value, Value),
    /// A pickled copy of the target whose large buffers travel beside the pickle (pickle
    /// protocol 5, out of band), if the owner allows pickling: replies
    /// `Tuple([Bytes(pickle), buffer...])`, each buffer `ByteArray` (writable) or `Bytes`
    /// (read-only), in the order the pickle's `NEXT_BUFFER` opcodes take them.
    PickleBuffers,
}

/// Rich comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CompareOp {
    /// `<`
    Lt = 0,
    /// `<=`
    Le = 1,
    /// `==`
    Eq = 2,
    /// `!=`
    Ne = 3,
    /// `>`
    Gt = 4,
    /// `>=`
    Ge = 5,
}

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum BinaryOp {
    /// `+`
    Add = 0,
    /// `-`
    Sub = 1,
    /// `*`
    Mul = 2,
    /// `@`
    MatMul = 3,
    /// `/`
    TrueDiv = 4,
    /// `//`
    FloorDiv = 5,
    /// `%`
    Mod = 6,
    /// `divmod`
    DivMod = 7,
    /// `**`
    Pow = 8,
    /// `<<`
    LShift = 9,
    /// `>>`
    RShift = 10,
    /// `&`
    And = 11,
    /// `^`
    Xor = 12,
    /// `|`
    Or = 13,
}

/// Which side of a binary operator the target stands on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum BinaryForm {
    /// `target op other` (`__add__`).
    Plain = 0,
    /// `other op target` (`__radd__`).
    Reflected = 1,
    /// `target op= other` (`__iadd__`).
    InPlace = 2,
}

/// Unary operators and conversions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum UnaryOp {
    /// `-x`
    Neg = 0,
    /// `+x`
    Pos = 1,
    /// `abs(x)`
    Abs = 2,
    /// `~x`
    Invert = 3,
    /// `int(x)`
    Int = 4,
    /// `float(x)`
    Float = 5,
    /// `complex(x)`
    Complex = 6,
    /// `operator.index(x)`
    Index = 7,
    /// `round(x)`
    Round = 8,
    /// `math.trunc(x)`
    Trunc = 9,
    /// `math.floor(x)`
    Floor = 10,
    /// `math.ceil(x)`
    Ceil = 11,
    /// `reversed(x)`
    Reversed = 12,
    /// `operator.length_hint(x)`
    LengthHint = 13,
}

macro_rules! u8_enum {
    ($ty:ident { $($variant:ident),* $(,)? }) => {
        impl $ty {
            /// The variant with wire code `code`, if any.
            pub fn from_u8(code: u8) -> Option<Self> {
                $(if code == $ty::$variant as u8 { return Some($ty::$variant); })*
                None
            }
        }
    };
}
u8_enum!(CompareOp {
    Lt,
    Le,
    Eq,
    Ne,
    Gt,
    Ge
});
u8_enum!(BinaryOp {
    Add,
    Sub,
    Mul,
    MatMul,
    TrueDiv,
    FloorDiv,
    Mod,
    DivMod,
    Pow,
    LShift,
    RShift,
    And,
    Xor,
    Or
});
u8_enum!(BinaryForm {
    Plain,
    Reflected,
    InPlace
});
u8_enum!(UnaryOp {
    Neg,
    Pos,
    Abs,
    Invert,
    Int,
    Float,
    Complex,
    Index,
    Round,
    Trunc,
    Floor,
    Ceil,
    Reversed,
    LengthHint
});
