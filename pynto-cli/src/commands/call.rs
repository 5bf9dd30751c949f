//! `pynto call ADDRESS EXPR [--json]`: evaluate statements (separated by `;`) and print the
//! last one's value, as a Python repr or as JSON.
//!
//! A syntax error is a usage error (exit 2) found before connecting; a failed evaluation exits
//! with 1 and, with `--json`, also prints `{"error": {"type", "message", "traceback"}}` on
//! standard output.

use pynto_runtime::Error;

use crate::connection::{self, ConnectArgs};
use crate::exit::{short_type, CliError, Code};
use crate::expr::{self, EvalError, Evaluator, Obj};
use crate::json;

/// Evaluate `source` on the server and print the result.
pub fn run(args: &ConnectArgs, source: &str, json: bool) -> Result<(), CliError> {
    let program = expr::parse(source).map_err(|e| CliError::usage(format!("{e} in {source:?}")))?;
    if program.is_empty() {
        return Err(CliError::usage("the expression is empty"));
    }
    let session = connection::open(args)?;
    let mut eval = Evaluator::new(session.clone()).map_err(|e| CliError::runtime(&e))?;
    let result = evaluate(&mut eval, &program, json);
    session.close();
    if json {
        if let Err(e) = &result {
            if e.code == Code::Failed {
                println!("{}", json_error(e));
            }
        }
    }
    result
}

fn evaluate(eval: &mut Evaluator, program: &[expr::Stmt], json: bool) -> Result<(), CliError> {
    let outcome = eval.run(program).map_err(|e| match e {
        EvalError::Local(message) => CliError::new(Code::Failed, message),
        EvalError::Runtime(e) => CliError::runtime(&e),
    })?;
    let value = outcome
        .map(|o| o.value)
        .unwrap_or_else(|| Obj::Data(expr::Data::none()));
    let text = if json {
        eval.json(&value)
    } else {
        eval.repr(&value)
    };
    let text = text.map_err(|e: Error| CliError::runtime(&e))?;
    println!("{text}");
    Ok(())
}

/// The failure as a JSON object: `TypeName: message` split, and the traceback.
fn json_error(e: &CliError) -> String {
    let mut lines = e.message.splitn(2, '\n');
    let summary = lines.next().unwrap_or("");
    let traceback = lines
        .next()
        .map(|t| t.strip_prefix("remote traceback:\n").unwrap_or(t))
        .unwrap_or("");
    let (ty, message) = summary.split_once(": ").unwrap_or(("Error", summary));
    json::write(&serde_json::json!({
        "error": {
            "type": short_type(ty),
            "message": message,
            "traceback": traceback,
        }
    }))
}
