//! `pynto bench ADDRESS [--seconds S]`: the standard benchmark against a live server.
//!
//! Each benchmark runs for S seconds (default 2) after a short warm-up:
//! - `ping`: null round trips (`Op::Ping`), the floor of any call;
//! - `modules.math.pow(2, 10)` (classic servers only): one `CallMethod` round trip that runs
//!   Python code on the server.
//!
//! It prints one row per benchmark: calls, calls/s, and min/median/mean/p99/max latency in
//! microseconds.

use std::time::{Duration, Instant};

use pynto_proto::Value;
use pynto_runtime::Error;

use crate::connection::{self, ConnectArgs};
use crate::exit::{CliError, Code};
use crate::stats::{summarize, Summary};

const WARMUP: usize = 50;

fn measure(
    seconds: f64,
    mut once: impl FnMut() -> Result<(), Error>,
) -> Result<(Summary, f64), CliError> {
    for _ in 0..WARMUP {
        once().map_err(|e| CliError::runtime(&e))?;
    }
    let budget = Duration::from_secs_f64(seconds);
    let mut samples = Vec::new();
    let started = Instant::now();
    while started.elapsed() < budget || samples.is_empty() {
        let t = Instant::now();
        once().map_err(|e| CliError::runtime(&e))?;
        samples.push(t.elapsed());
    }
    let elapsed = started.elapsed().as_secs_f64();
    let summary = summarize(&samples).expect("at least one sample");
    let rate = summary.count as f64 / elapsed;
    Ok((summary, rate))
}

fn row(name: &str, s: &Summary, rate: f64) {
    println!(
        "{name:<26} {:>9} {:>11.0} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
        s.count, rate, s.min, s.median, s.mean, s.p99, s.max
    );
}

/// Run the benchmarks and print the table.
pub fn run(args: &ConnectArgs, seconds: f64) -> Result<(), CliError> {
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(CliError::usage("--seconds must be a positive number"));
    }
    let session = connection::open(args)?;
    let classic = session.peer_hello().service == "classic";
    println!(
        "pynto bench: {} ({}), {seconds} s per benchmark; latencies in microseconds",
        session.peer_address(),
        if classic {
            "classic server".to_string()
        } else {
            format!("service {:?}", session.peer_hello().service)
        }
    );
    println!(
        "{:<26} {:>9} {:>11} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "benchmark", "calls", "calls/s", "min", "median", "mean", "p99", "max"
    );
    let (s, rate) = measure(seconds, || session.ping().map(|_| ()))?;
    row("ping (null round trip)", &s, rate);
    if classic {
        let root = session.root().map_err(|e| CliError::runtime(&e))?;
        let answer = root
            .call_method("getmodule", vec![Value::Str("math".into())])
            .map_err(|e| CliError::runtime(&e))?;
        let math = root.remote_of(&answer).ok_or_else(|| {
            CliError::new(
                Code::Protocol,
                "getmodule(\"math\") did not return a module",
            )
        })?;
        let check = math
            .call_method("pow", vec![Value::Int(2), Value::Int(10)])
            .map_err(|e| CliError::runtime(&e))?;
        if check.value != Value::Float(1024.0) {
            return Err(CliError::new(
                Code::Protocol,
                format!("math.pow(2, 10) returned {:?}, not 1024.0", check.value),
            ));
        }
        let (s, rate) = measure(seconds, || {
            math.call_method("pow", vec![Value::Int(2), Value::Int(10)])
                .map(|_| ())
        })?;
        row("modules.math.pow(2, 10)", &s, rate);
    } else {
        println!("(modules.math.pow(2, 10) skipped: not a classic server)");
    }
    session.close();
    Ok(())
}
