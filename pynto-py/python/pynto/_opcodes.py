"""Wire codes of comparisons, operators and conversions, read from the compiled module: pynto-proto
numbers them and the compiled module names them (``ops.rs``), so there is one table."""

from ._pynto import _op_tables

#: Comparison special method -> code, e.g. ``"__lt__": 0``.
COMPARE: dict[str, int]
#: Binary special method -> (operator code, form code), e.g. ``"__radd__": (0, REFLECTED)``.
BINARY: dict[str, tuple[int, int]]
#: Unary special method (and conversion) -> code, e.g. ``"__neg__": 0``.
UNARY: dict[str, int]
COMPARE, BINARY, UNARY = _op_tables()

#: The forms of a binary operator: ``a + b``, ``b + a`` (reflected), ``a += b``.
PLAIN, REFLECTED, IN_PLACE = BINARY["__add__"][1], BINARY["__radd__"][1], BINARY["__iadd__"][1]
