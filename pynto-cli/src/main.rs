//! `pynto`: a command-line client for ad-hoc sessions with any pynto server, written in Rust
//! with no Python inside. It speaks the pynto protocol through `pynto-runtime`, serving nothing
//! of its own (a unit root), and walks, inspects and calls the server's objects:
//!
//! ```text
//! pynto connect ADDRESS [--token-env VAR] [--tls-ca FILE [--tls-cert FILE --tls-key FILE]]
//!                                                           interactive (or scripted on stdin)
//! pynto call ADDRESS EXPR [--json]                          evaluate once and print the result
//! pynto ping ADDRESS [-n N]                                 round-trip latency
//! pynto bench ADDRESS [--seconds S]                         the standard benchmark
//! ```
//!
//! What it is not: not a Python interpreter (the expression language in `expr/` is a small
//! Python-looking subset: names, attribute paths, calls, indexing, literals, `dir`/`repr`); not
//! a server; and it never unpickles or evaluates anything locally. Exit codes are listed in
//! `exit.rs`; every failure prints one `pynto: ...` line on standard error (a remote failure
//! in `call` is followed by the remote traceback).

mod commands;
mod connection;
mod exit;
mod expr;
mod interrupt;
mod json;
mod render;
mod stats;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::connection::ConnectArgs;
use crate::exit::{CliError, Code};

/// A command-line client for pynto servers.
#[derive(Parser, Debug)]
#[command(
    name = "pynto",
    version,
    about = "A command-line client for pynto servers: walk, inspect and call remote objects.",
    after_help = "Addresses: host:port, tcp://host:port, unix:///path, tls://host:port.\n\
Exit codes: 0 ok, 1 the expression failed (call) or a line failed (scripted connect), 2 usage, 3 bad address, 4 unreachable,\n\
5 authentication failed, 6 protocol/version error, 7 connection lost."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Interactive session (reads statements from stdin when it is not a terminal)
    Connect {
        #[command(flatten)]
        conn: ConnectArgs,
    },
    /// Evaluate an expression (statements separated by ';') and print the last value
    Call {
        #[command(flatten)]
        conn: ConnectArgs,
        /// The expression, e.g. 'modules.math.pow(3, 2)'
        #[arg(value_name = "EXPR", allow_hyphen_values = true)]
        expr: String,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Measure round trips to the server
    Ping {
        #[command(flatten)]
        conn: ConnectArgs,
        /// How many round trips
        #[arg(short = 'n', value_name = "N", default_value_t = 10)]
        count: u32,
    },
    /// Run the standard benchmark against the server
    Bench {
        #[command(flatten)]
        conn: ConnectArgs,
        /// Seconds per benchmark
        #[arg(long, value_name = "S", default_value_t = 2.0)]
        seconds: f64,
    },
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Connect { conn } => commands::connect::run(&conn),
        Command::Call { conn, expr, json } => commands::call::run(&conn, &expr, json),
        Command::Ping { conn, count } => commands::ping::run(&conn, count),
        Command::Bench { conn, seconds } => commands::bench::run(&conn, seconds),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                let _ = e.print();
                return ExitCode::from(Code::Usage as u8);
            }
            // clap's message up to its first blank line, joined into one line.
            let text = e.to_string();
            let summary: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let summary = summary.join(" ");
            let summary = summary.strip_prefix("error: ").unwrap_or(&summary);
            eprintln!("pynto: {summary} (see 'pynto --help')");
            return ExitCode::from(Code::Usage as u8);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pynto: {}", e.message);
            ExitCode::from(e.code as u8)
        }
    }
}
