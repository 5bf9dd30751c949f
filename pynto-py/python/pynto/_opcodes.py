"""Wire codes of comparisons, operators and conversions, as pynto-proto numbers them."""

COMPARE = {"__lt__": 0, "__le__": 1, "__eq__": 2, "__ne__": 3, "__gt__": 4, "__ge__": 5}

_BINARY_OPS = ["add", "sub", "mul", "matmul", "truediv", "floordiv", "mod", "divmod", "pow", "lshift", "rshift", "and", "xor", "or"]
PLAIN, REFLECTED, IN_PLACE = 0, 1, 2

BINARY: dict[str, tuple[int, int]] = {}
for _code, _name in enumerate(_BINARY_OPS):
    BINARY[f"__{_name}__"] = (_code, PLAIN)
    BINARY[f"__r{_name}__"] = (_code, REFLECTED)
    if _name != "divmod":
        BINARY[f"__i{_name}__"] = (_code, IN_PLACE)

UNARY = {
    "__neg__": 0,
    "__pos__": 1,
    "__abs__": 2,
    "__invert__": 3,
    "__int__": 4,
    "__float__": 5,
    "__complex__": 6,
    "__index__": 7,
    "__round__": 8,
    "__trunc__": 9,
    "__floor__": 10,
    "__ceil__": 11,
    "__reversed__": 12,
    "__length_hint__": 13,
}
