//! `pynto connect ADDRESS`: an interactive session. With a terminal it has line editing, Tab
//! completion of names (attributes come from the peer's `dir()`), a history in
//! `$HOME/.pynto_history`, and Ctrl-C that cancels the running call and keeps the session;
//! otherwise it reads statements from standard input, one per line, without a prompt
//! (scripted sessions).
//!
//! Results go to standard output (`None` is not printed, nor are assignments), errors to
//! standard error; a remote or evaluation error leaves the session open. The session ends at
//! `exit`, `quit` or end of input, or with exit code 6/7 when the connection breaks. A scripted
//! session in which a line failed exits with 1 after its last line.

use std::cell::RefCell;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::rc::Rc;

use pynto_proto::Value;
use pynto_runtime::Error;
use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Editor, Helper};

use crate::connection::{self, ConnectArgs};
use crate::exit::{format_failure, CliError, Code};
use crate::expr::{self, EvalError, Evaluator, Obj};
use crate::interrupt;

const HELP: &str = "\
Statements (several per line with ';'):
  expr                  evaluate and print the result (Python repr; references show the remote repr)
  name = expr           bind the result to a name
Expressions:
  root                  the server's root object (its service)
  modules.NAME          classic servers: import NAME there (also modules[\"os.path\"])
  builtins              classic servers: the server's builtins module (builtins.sorted(x))
  a.b.c, f(1, k=2), x[0], x[\"k\"]
  literals              1, -2, 0xff, 1.5, 2j, 'text', b'bytes', [..], (..,), {..}, {k: v}, None, True, False
  dir(x), repr(x), str(x), len(x)
Keys: Tab completes names and attributes; Ctrl-C cancels the running call; Ctrl-D leaves.
Commands: help, exit, quit (or end of input).";

/// What the loop does after a line.
enum Flow {
    /// The line ran.
    Continue,
    /// The line failed (syntax, evaluation, remote error, Ctrl-C); the session goes on.
    Failed,
    /// `exit` or `quit`.
    Exit,
}

/// Run the session.
pub fn run(args: &ConnectArgs) -> Result<(), CliError> {
    let session = connection::open(args)?;
    let eval = Evaluator::new(session.clone()).map_err(|e| CliError::runtime(&e))?;
    let result = if std::io::stdin().is_terminal() {
        interactive(eval, &args.address)
    } else {
        scripted(eval)
    };
    session.close();
    result
}

fn scripted(mut eval: Evaluator) -> Result<(), CliError> {
    let stdin = std::io::stdin();
    let (mut lines, mut failed) = (0, 0);
    for line in stdin.lock().lines() {
        let line = line.map_err(|e| CliError::usage(format!("cannot read standard input: {e}")))?;
        lines += 1;
        match handle(&mut eval, &line)? {
            Flow::Continue => {}
            Flow::Failed => failed += 1,
            Flow::Exit => break,
        }
    }
    if failed > 0 {
        return Err(CliError::new(
            Code::Failed,
            format!("{failed} of {lines} lines failed"),
        ));
    }
    Ok(())
}

fn history_path() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".pynto_history"))
}

/// The line editor's helper: Tab completion through the evaluator.
struct Names(Rc<RefCell<Evaluator>>);

impl Completer for Names {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        Ok(self.0.borrow_mut().complete(line, pos))
    }
}

impl Hinter for Names {
    type Hint = String;
}

impl Highlighter for Names {}

impl Validator for Names {}

impl Helper for Names {}

fn interactive(eval: Evaluator, address: &str) -> Result<(), CliError> {
    let config = rustyline::Config::builder()
        .completion_type(CompletionType::List)
        .build();
    let Ok(mut editor) = Editor::<Names, DefaultHistory>::with_config(config) else {
        return scripted(eval);
    };
    let history = history_path();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    let (names, kind) = if eval.classic() {
        ("root, modules, builtins", "classic server".to_string())
    } else {
        (
            "root",
            format!("service {:?}", eval.session().peer_hello().service),
        )
    };
    eprintln!("pynto: connected to {address} ({kind}). Names: {names}. Type help for help, exit to leave.");
    let eval = Rc::new(RefCell::new(eval));
    eval.borrow_mut().set_interrupt(interrupt::check);
    interrupt::install();
    editor.set_helper(Some(Names(Rc::clone(&eval))));
    let result = loop {
        // A Ctrl-C that came after the last call ended is not meant for the next one; one
        // that comes after Enter is.
        interrupt::clear();
        match editor.readline("pynto> ") {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                match handle(&mut eval.borrow_mut(), &line) {
                    Ok(Flow::Continue | Flow::Failed) => {}
                    Ok(Flow::Exit) => break Ok(()),
                    Err(e) => break Err(e),
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break Ok(()),
            Err(e) => break Err(CliError::usage(format!("cannot read the terminal: {e}"))),
        }
    };
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    result
}

/// Run one line; a broken connection ends the session with its exit code.
fn handle(eval: &mut Evaluator, line: &str) -> Result<Flow, CliError> {
    let trimmed = line.trim();
    match trimmed {
        "exit" | "quit" | "exit()" | "quit()" => return Ok(Flow::Exit),
        "help" | "help()" => {
            println!("{HELP}");
            return Ok(Flow::Continue);
        }
        _ => {}
    }
    let program = match expr::parse(trimmed) {
        Ok(program) => program,
        Err(e) => {
            eprintln!("{e}");
            return Ok(Flow::Failed);
        }
    };
    let shown = eval.run(&program).and_then(|outcome| match outcome {
        Some(outcome) if !outcome.assigned => match &outcome.value {
            Obj::Data(d) if d.value == Value::None => Ok(None),
            value => eval.repr(value).map(Some).map_err(EvalError::Runtime),
        },
        _ => Ok(None),
    });
    match shown {
        Ok(Some(text)) => {
            println!("{text}");
            let _ = std::io::stdout().flush();
            Ok(Flow::Continue)
        }
        Ok(None) => Ok(Flow::Continue),
        Err(EvalError::Local(message)) => {
            eprintln!("{message}");
            Ok(Flow::Failed)
        }
        Err(EvalError::Runtime(Error::Remote(failure))) => {
            eprintln!("{}", format_failure(&failure));
            Ok(Flow::Failed)
        }
        Err(EvalError::Runtime(Error::Interrupted(why))) => {
            eprintln!("{why}");
            Ok(Flow::Failed)
        }
        Err(EvalError::Runtime(e @ Error::Overloaded(_))) => {
            eprintln!("{e}");
            Ok(Flow::Failed)
        }
        Err(EvalError::Runtime(e)) => Err(CliError::runtime(&e)),
    }
}
