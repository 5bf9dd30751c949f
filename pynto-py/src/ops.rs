//! Python's names for pynto-proto's operators: the one table of them. The wire codes are
//! pynto-proto's (`CompareOp`, `BinaryOp`, `BinaryForm`, `UnaryOp`); each name below is an
//! exhaustive `match` on those enums, so a new operator does not build until it is named here.
//! The host serves operators through these names, and `pynto._opcodes` is built from
//! `_op_tables()` at import, so the Python proxy classes send the same codes.

use pynto_proto::{BinaryForm, BinaryOp, CompareOp, UnaryOp};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// `CompareOp`'s special method.
pub(crate) fn compare_name(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Lt => "__lt__",
        CompareOp::Le => "__le__",
        CompareOp::Eq => "__eq__",
        CompareOp::Ne => "__ne__",
        CompareOp::Gt => "__gt__",
        CompareOp::Ge => "__ge__",
    }
}

/// The stem of a binary operator's special methods (`add`: `__add__`, `__radd__`, `__iadd__`).
fn binary_stem(op: BinaryOp) -> &'static str {
    match op {
        BinaryOp::Add => "add",
        BinaryOp::Sub => "sub",
        BinaryOp::Mul => "mul",
        BinaryOp::MatMul => "matmul",
        BinaryOp::TrueDiv => "truediv",
        BinaryOp::FloorDiv => "floordiv",
        BinaryOp::Mod => "mod",
        BinaryOp::DivMod => "divmod",
        BinaryOp::Pow => "pow",
        BinaryOp::LShift => "lshift",
        BinaryOp::RShift => "rshift",
        BinaryOp::And => "and",
        BinaryOp::Xor => "xor",
        BinaryOp::Or => "or",
    }
}

/// The forms Python has for `op`: `divmod` has no in-place form.
fn forms(op: BinaryOp) -> &'static [BinaryForm] {
    match op {
        BinaryOp::DivMod => &[BinaryForm::Plain, BinaryForm::Reflected],
        _ => &[
            BinaryForm::Plain,
            BinaryForm::Reflected,
            BinaryForm::InPlace,
        ],
    }
}

/// The special method of a binary operator in one of its forms, e.g. `__radd__`.
pub(crate) fn binary_name(op: BinaryOp, form: BinaryForm) -> String {
    let prefix = match form {
        BinaryForm::Plain => "",
        BinaryForm::Reflected => "r",
        BinaryForm::InPlace => "i",
    };
    format!("__{prefix}{}__", binary_stem(op))
}

/// The function that runs the whole operator, reflected methods and fallbacks included, with
/// the target first: `operator.__add__`, `operator.__iadd__`, `builtins.divmod`. (The reflected
/// form calls the plain function with the operands swapped.)
pub(crate) fn binary_function(op: BinaryOp, form: BinaryForm) -> (&'static str, String) {
    match (op, form) {
        (BinaryOp::DivMod, _) => ("builtins", "divmod".to_owned()),
        (_, BinaryForm::InPlace) => ("operator", binary_name(op, BinaryForm::InPlace)),
        _ => ("operator", binary_name(op, BinaryForm::Plain)),
    }
}

/// A unary operator's special method, and the function that applies it (module, name).
pub(crate) fn unary(op: UnaryOp) -> (&'static str, &'static str, &'static str) {
    match op {
        UnaryOp::Neg => ("__neg__", "operator", "neg"),
        UnaryOp::Pos => ("__pos__", "operator", "pos"),
        UnaryOp::Abs => ("__abs__", "builtins", "abs"),
        UnaryOp::Invert => ("__invert__", "operator", "invert"),
        UnaryOp::Int => ("__int__", "builtins", "int"),
        UnaryOp::Float => ("__float__", "builtins", "float"),
        UnaryOp::Complex => ("__complex__", "builtins", "complex"),
        UnaryOp::Index => ("__index__", "operator", "index"),
        UnaryOp::Round => ("__round__", "builtins", "round"),
        UnaryOp::Trunc => ("__trunc__", "math", "trunc"),
        UnaryOp::Floor => ("__floor__", "math", "floor"),
        UnaryOp::Ceil => ("__ceil__", "math", "ceil"),
        UnaryOp::Reversed => ("__reversed__", "builtins", "reversed"),
        UnaryOp::LengthHint => ("__length_hint__", "operator", "length_hint"),
    }
}

/// Every value of a pynto-proto operator enum, by asking it for each wire code.
fn all<T>(from: fn(u8) -> Option<T>) -> impl Iterator<Item = (u8, T)> {
    (0..=u8::MAX).filter_map(move |code| from(code).map(|op| (code, op)))
}

/// Every Python function the host applies operators with (module, name), for
/// `_check_helpers`.
pub(crate) fn functions() -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (_, op) in all(BinaryOp::from_u8) {
        for form in forms(op) {
            out.push(binary_function(op, *form));
        }
    }
    for (_, op) in all(UnaryOp::from_u8) {
        let (_, module, name) = unary(op);
        out.push((module, name.to_owned()));
    }
    out
}

/// `(COMPARE, BINARY, UNARY)` for `pynto._opcodes`: special method -> wire code (for BINARY,
/// -> (operator code, form code)), every code pynto-proto knows.
#[pyfunction]
pub(crate) fn _op_tables(
    py: Python<'_>,
) -> PyResult<(Bound<'_, PyDict>, Bound<'_, PyDict>, Bound<'_, PyDict>)> {
    let compare = PyDict::new(py);
    for (code, op) in all(CompareOp::from_u8) {
        compare.set_item(compare_name(op), code)?;
    }
    let binary = PyDict::new(py);
    for (code, op) in all(BinaryOp::from_u8) {
        for form in forms(op) {
            binary.set_item(binary_name(op, *form), (code, *form as u8))?;
        }
    }
    let unary_names = PyDict::new(py);
    for (code, op) in all(UnaryOp::from_u8) {
        unary_names.set_item(unary(op).0, code)?;
    }
    Ok((compare, binary, unary_names))
}
