//! The expression language of `pynto connect` and `pynto call`: a lexer, a parser and an
//! evaluator that turns each step into protocol operations on the peer's objects.
//!
//! What it accepts (a small, Python-looking subset; it is not Python and runs nothing locally):
//!
//! - names: `root` (the peer's root object), `modules` (classic servers: `modules.math` imports
//!   `math` there; `modules["os.path"]` too), and names bound with `name = expr`;
//! - attribute paths `a.b.c`, calls `f(1, x, key="v")`, indexing `x[0]`, `x["k"]`;
//! - literals: ints (any sign and size up to 128 bits, `0x`/`0o`/`0b`, `_` separators), floats,
//!   imaginary numbers (`2j`), strings and bytes (`'..'`, `".."`, `b".."`, `r".."`, with
//!   Python's escapes), lists, tuples, sets, dicts, `None`, `True`, `False`, unary minus;
//! - builtins `dir(x)`, `repr(x)`, `str(x)`, `len(x)`;
//! - several statements separated by `;`.
//!
//! `obj.name(args)` is sent as one `CallMethod` round trip. Results that cross by value are
//! local copies; results that cross by reference stay handles to the remote objects and can be
//! used in later expressions, or passed back as arguments.
//!
//! The parts: `lexer` (characters to tokens), `parser` (tokens to [`Stmt`]s), `eval` (the
//! [`Evaluator`]: names, calls, builtins), `value` (what it holds, and sending it back),
//! `local` (indexing local copies), `fetch` (copying remote containers for `--json`),
//! `complete` (Tab completion).

mod complete;
mod eval;
mod fetch;
mod lexer;
mod local;
mod parser;
mod value;

pub use eval::{EvalError, Evaluator};
pub use parser::{parse, Stmt};
pub use value::{Data, Obj};
