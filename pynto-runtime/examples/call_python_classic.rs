//! Call Python from Rust: connect to a classic Python server and compute `math.pow(3, 2)`.
//!
//! ```text
//! python -m pynto serve --classic --port 0      # prints: pynto: serving classic on tcp://127.0.0.1:PORT
//! cargo run -p pynto-runtime --example call_python_classic -- tcp://127.0.0.1:PORT
//! ```
//!
//! Prints `9.0`. This side serves nothing (a unit root).

use pynto_proto::Value;
use pynto_runtime::native::{NativeHost, Object};
use pynto_runtime::{Config, Role, Session};
use pynto_transport::Address;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::args()
        .nth(1)
        .ok_or("usage: call_python_classic ADDRESS (e.g. tcp://127.0.0.1:18812)")?;
    let transport = pynto_transport::connect(&Address::parse(&address)?, None)?;
    let session = Session::connect(
        transport,
        Role::Connector,
        NativeHost::new(),
        Object::unit(),
        Config::default(),
    )?;
    // conn.modules.math == root.getmodule("math") on a classic server.
    let root = session.root()?;
    let answer = root.call_method("getmodule", vec![Value::Str("math".into())])?;
    let math = root
        .remote_of(&answer)
        .ok_or("getmodule returned a value, not a module")?;
    let result = math.call_method("pow", vec![Value::Int(3), Value::Int(2)])?;
    match result.value {
        Value::Float(f) => println!("{f:?}"),
        other => return Err(format!("math.pow(3, 2) returned {other:?}").into()),
    }
    session.close();
    Ok(())
}
