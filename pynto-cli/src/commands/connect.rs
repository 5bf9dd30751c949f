//! `pynto connect ADDRESS`: an interactive session. With a terminal it has line editing and a
//! history in `$HOME/.pynto_history`; otherwise it reads statements from standard input, one
//! per line, without a prompt (scripted sessions).
//!
//! Results go to standard output (`None` is not printed, nor are assignments), errors to
//! standard error; a remote or evaluation error leaves the session open. The session ends at
//! `exit`, `quit` or end of input, or with exit code 6/7 when the connection breaks.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use pynto_proto::Value;
use pynto_runtime::Error;
use rustyline::error::ReadlineError;

use crate::connection::{self, ConnectArgs};
use crate::exit::{format_failure, CliError};
use crate::expr::{self, EvalError, Evaluator, Obj};

const HELP: &str = "\
Statements (several per line with ';'):
  expr                  evaluate and print the result (Python repr; references show the remote repr)
  name = expr           bind the result to a name
Expressions:
  root                  the server's root object (its service)
  modules.NAME          classic servers: import NAME there (also modules[\"os.path\"])
  a.b.c, f(1, k=2), x[0], x[\"k\"]
  literals              1, -2, 0xff, 1.5, 2j, 'text', b'bytes', [..], (..,), {..}, {k: v}, None, True, False
  dir(x), repr(x), str(x), len(x)
Commands: help, exit, quit (or end of input).";

/// What the loop does after a line.
enum Flow {
    Continue,
    Exit,
}

/// Run the session.
pub fn run(args: &ConnectArgs) -> Result<(), CliError> {
    let session = connection::open(args)?;
    let mut eval = Evaluator::new(session.clone()).map_err(|e| CliError::runtime(&e))?;
    let result = if std::io::stdin().is_terminal() {
        interactive(&mut eval, &args.address)
    } else {
        scripted(&mut eval)
    };
    session.close();
    result
}

fn scripted(eval: &mut Evaluator) -> Result<(), CliError> {
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line.map_err(|e| CliError::usage(format!("cannot read standard input: {e}")))?;
        if let Flow::Exit = handle(eval, &line)? {
            break;
        }
    }
    Ok(())
}

fn history_path() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".pynto_history"))
}

fn interactive(eval: &mut Evaluator, address: &str) -> Result<(), CliError> {
    let Ok(mut editor) = rustyline::DefaultEditor::new() else {
        return scripted(eval);
    };
    let history = history_path();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    let names = if eval.classic() {
        "root, modules"
    } else {
        "root"
    };
    let kind = if eval.classic() {
        "classic server".to_string()
    } else {
        format!("service {:?}", eval.session().peer_hello().service)
    };
    eprintln!("pynto: connected to {address} ({kind}). Names: {names}. Type help for help, exit to leave.");
    let result = loop {
        match editor.readline("pynto> ") {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                match handle(eval, &line) {
                    Ok(Flow::Continue) => {}
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
            return Ok(Flow::Continue);
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
        }
        Ok(None) => {}
        Err(EvalError::Local(message)) => eprintln!("{message}"),
        Err(EvalError::Runtime(Error::Remote(failure))) => {
            eprintln!("{}", format_failure(&failure))
        }
        Err(EvalError::Runtime(e @ (Error::Interrupted(_) | Error::Overloaded(_)))) => {
            eprintln!("{e}")
        }
        Err(EvalError::Runtime(e)) => return Err(CliError::runtime(&e)),
    }
    Ok(Flow::Continue)
}
