//! `pynto ping ADDRESS [-n N]`: N protocol round trips (`Op::Ping`, answered by the peer's
//! runtime without running any of its code), then min/median/mean/p99/max in microseconds.

use crate::connection::{self, ConnectArgs};
use crate::exit::CliError;
use crate::stats::summarize;

/// Ping `count` times and print the summary.
pub fn run(args: &ConnectArgs, count: u32) -> Result<(), CliError> {
    if count == 0 {
        return Err(CliError::usage("-n must be at least 1"));
    }
    let session = connection::open(args)?;
    let mut samples = Vec::with_capacity(count as usize);
    for _ in 0..count {
        samples.push(session.ping().map_err(|e| CliError::runtime(&e))?);
    }
    session.close();
    let s = summarize(&samples).expect("at least one sample");
    println!("{} round trips to {}", s.count, session.peer_address());
    println!(
        "min {:.1} us  median {:.1} us  mean {:.1} us  p99 {:.1} us  max {:.1} us",
        s.min, s.median, s.mean, s.p99, s.max
    );
    Ok(())
}
