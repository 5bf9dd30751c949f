//! The Python binding of pynto: the compiled module `pynto._pynto` inside the `pynto` package.
//!
//! Its files follow the direction of a call. Calling out: [`call`] (the requests proxies send,
//! blocking) and [`pending`] (not blocking). Serving in: [`host`] (the runtime's `Host`: the
//! peer's requests performed on Python objects). Between them, [`boxing`] (Python values to
//! protocol values and back; [`buffers`] for large buffers crossing without copies) and [`proxy`] (the proxy classes), over the per-connection
//! [`state`]. Around them: [`connection`] (the connection object), [`open`] and [`dial`]
//! (opening one), [`server`] (the accept loop), [`wait`] (the one interruptible wait with a
//! deadline), [`helpers`] (the one table of the Python this Rust calls), [`ops`] (Python's
//! names for the protocol's operators), [`errors`], [`caches`], [`logging`], [`interp`]. No
//! file imports one that imports it back. What users import is the Python package around it
//! (`pynto-py/python/pynto`); the pieces that are plainer in Python (services, policy, proxy
//! class factory, errors) live there.
//!
//! It is not a second runtime: sessions, call chains and reference counting are
//! `pynto-runtime`'s. Every blocking wait here releases the GIL; a thread that reads the
//! connection for the runtime never waits for it.

use pyo3::prelude::*;

mod boxing;
mod buffers;
mod caches;
mod call;
mod connection;
mod dial;
mod errors;
mod helpers;
mod host;
mod interp;
mod logging;
mod open;
mod ops;
mod pending;
mod proxy;
mod server;
mod state;
mod wait;

/// The compiled half of the `pynto` package.
#[pymodule]
fn _pynto(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<proxy::Proxy>()?;
    m.add_class::<proxy::BoundMethod>()?;
    m.add_class::<connection::Connection>()?;
    m.add_class::<server::Server>()?;
    m.add_class::<server::Accepted>()?;
    m.add_class::<pending::PendingReply>()?;
    m.add_class::<pending::LoopWaker>()?;
    m.add_class::<buffers::ReceivedBuffer>()?;
    m.add_function(wrap_pyfunction!(open::connect_address, m)?)?;
    m.add_function(wrap_pyfunction!(open::connect_pipes, m)?)?;
    m.add_function(wrap_pyfunction!(open::serve_stdio, m)?)?;
    m.add_function(wrap_pyfunction!(open::connect_thread_pair, m)?)?;
    m.add_function(wrap_pyfunction!(proxy::is_proxy, m)?)?;
    m.add_function(wrap_pyfunction!(interp::_mark_exiting, m)?)?;
    m.add_function(wrap_pyfunction!(caches::_cache_stats, m)?)?;
    m.add_function(wrap_pyfunction!(logging::_set_service_exception_level, m)?)?;
    m.add_function(wrap_pyfunction!(helpers::_check_helpers, m)?)?;
    m.add_function(wrap_pyfunction!(ops::_op_tables, m)?)?;
    m.add("PROTOCOL_VERSION", pynto_proto::PROTOCOL_VERSION)?;
    Ok(())
}
