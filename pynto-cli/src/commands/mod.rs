//! The subcommands: `connect` (interactive), `call` (one expression), `ping` and `bench`.

pub mod bench;
pub mod call;
pub mod connect;
pub mod ping;
