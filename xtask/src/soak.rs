//! `cargo xtask soak`: the long runs `test-all` leaves out, on the same tests at full size.
//!
//! 100,000 connect/close cycles against one server limited to 1,024 descriptors
//! (descriptors, threads and RSS back to the baseline), then 300 client threads and 8 client
//! processes making 1,000 calls each with callbacks. `test-all` runs the same tests with 3,000
//! cycles and 100 calls.

use crate::{prepare_venv, run, Ctx, Failure};

pub(crate) fn soak_cmd(ctx: &Ctx) -> Result<(), Failure> {
    let venv = prepare_venv(ctx).map_err(|e| Failure::Message(format!("xtask soak: {e}")))?;
    let mut pytest = venv.command(&ctx.root, &venv.python);
    pytest
        .env("PYNTO_SOAK_CYCLES", "100000")
        .env("PYNTO_LOAD_CALLS", "1000")
        .args([
            "-m",
            "pytest",
            "pynto-py/tests/test_hostile_server.py::test_closed_connections_leave_the_server_under_a_low_fd_limit",
            "pynto-py/tests/test_load.py",
            "-p",
            "no:cacheprovider",
            "-v",
            "--timeout=7200",
            "--durations=0",
        ]);
    run(&mut pytest).map_err(|e| Failure::Message(format!("xtask soak: {e}")))
}
