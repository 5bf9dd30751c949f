//! The Python binding of pynto: the compiled module `pynto._pynto` inside the `pynto` package.
//!
//! It implements the runtime's `Host` for Python objects ([`host`]), boxes Python values to
//! protocol values and back ([`boxing`]), provides the proxy base class ([`proxy`]), the
//! connection object ([`connection`]) and the server's accept loop ([`server`]). What users
//! import is the Python package around it (`pynto-py/python/pynto`); the pieces that are
//! plainer in Python (services, policy, proxy class factory, errors) live there.
//!
//! It is not a second runtime: sessions, call chains and reference counting are
//! `pynto-runtime`'s. Every blocking wait here releases the GIL; the runtime's reader threads
//! never take it.

use pyo3::prelude::*;

mod boxing;
mod caches;
mod connection;
mod dial;
mod errors;
mod host;
mod interp;
mod logging;
mod pending;
mod proxy;
mod server;

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
    m.add_function(wrap_pyfunction!(connection::connect_address, m)?)?;
    m.add_function(wrap_pyfunction!(connection::connect_pipes, m)?)?;
    m.add_function(wrap_pyfunction!(connection::serve_stdio, m)?)?;
    m.add_function(wrap_pyfunction!(connection::connect_thread_pair, m)?)?;
    m.add_function(wrap_pyfunction!(proxy::is_proxy, m)?)?;
    m.add_function(wrap_pyfunction!(interp::_mark_exiting, m)?)?;
    m.add_function(wrap_pyfunction!(caches::_cache_stats, m)?)?;
    m.add_function(wrap_pyfunction!(logging::_set_service_exception_level, m)?)?;
    m.add("PROTOCOL_VERSION", pynto_proto::PROTOCOL_VERSION)?;
    Ok(())
}
