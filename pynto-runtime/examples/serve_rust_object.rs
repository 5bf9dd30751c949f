//! Serve a Rust object to Python: a `Calc` with `add(a, b)` and `notify(callback, n)`, which
//! calls the caller's `callback(i)` for i in 0..n and returns the list of what it returned.
//!
//! ```text
//! cargo run -p pynto-runtime --example serve_rust_object [-- PORT]
//! ```
//!
//! Prints `listening on tcp://127.0.0.1:PORT` (flushed) once it accepts connections (PORT 0,
//! the default, picks a free one) and serves until its standard input closes. From Python:
//!
//! ```python
//! import pynto
//! conn = pynto.connect("tcp://127.0.0.1:PORT")
//! conn.root.add(2, 3)                       # 5
//! conn.root.notify(lambda i: i * i, 3)      # [0, 1, 4]; the lambda runs on the calling thread
//! ```

use std::io::{Read, Write};

use pynto_proto::Value;
use pynto_runtime::native::{type_error, Methods, NativeHost, Object};
use pynto_runtime::{Config, Role, Session};
use pynto_transport::{Address, Listener};

fn calc() -> Methods {
    Methods::new("Calc")
        .method("add", |args| match args.positional.as_slice() {
            [Value::Int(a), Value::Int(b)] => a
                .checked_add(*b)
                .map(|sum| Value::Int(sum).into())
                .ok_or_else(|| type_error("add: the sum does not fit in 64 bits")),
            [Value::Float(a), Value::Float(b)] => Ok(Value::Float(a + b).into()),
            _ => Err(type_error("add takes two ints or two floats")),
        })
        .method_with_call("notify", |call| {
            let callback = call
                .remote(0)
                .ok_or_else(|| type_error("notify(callback, n): callback must be a callable"))?;
            let n = match call.args.positional.get(1) {
                Some(Value::Int(n)) if *n >= 0 => *n,
                _ => return Err(type_error("notify(callback, n): n must be an int >= 0")),
            };
            let mut results = Vec::new();
            for i in 0..n {
                // A call back into the peer, on the chain of the peer's waiting call.
                let answer = callback.call(vec![Value::Int(i)]).map_err(|e| match e {
                    pynto_runtime::Error::Remote(failure) => failure,
                    other => type_error(&format!("the callback failed: {other}")),
                })?;
                results.push(match answer.value {
                    Value::Ref(_) => Value::None,
                    v => v,
                });
            }
            Ok(Value::List(results).into())
        })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::args().nth(1) {
        Some(p) => p.parse().map_err(|_| format!("not a port: {p}"))?,
        None => 0,
    };
    let listener = Listener::bind(&Address::parse(&format!("127.0.0.1:{port}"))?, None)?;
    println!("listening on {}", listener.local_addr());
    std::io::stdout().flush()?;
    std::thread::spawn(move || loop {
        let transport = match listener.accept() {
            Ok(t) => t,
            Err(e) => {
                eprintln!("serve_rust_object: accept failed: {e}");
                continue;
            }
        };
        // The handshake blocks, so each connection starts on its own thread.
        std::thread::spawn(move || {
            let config = Config {
                service_name: "Calc".into(),
                ..Config::default()
            };
            match Session::connect(
                transport,
                Role::Acceptor,
                NativeHost::new(),
                Object::new(calc()),
                config,
            ) {
                // The session's reader thread keeps it alive until the peer leaves.
                Ok(_session) => {}
                Err(e) => eprintln!("serve_rust_object: refused a connection: {e}"),
            }
        });
    });
    // Serve until standard input closes.
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    Ok(())
}
