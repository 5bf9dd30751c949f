//! Shared set-up of the runtime's integration tests: sessions over the memory pair and TCP.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use pynto_runtime::native::{NativeHost, Object};
use pynto_runtime::{Config, Role, Session};
use pynto_transport::Transport;

pub type S = Session<NativeHost>;

/// A connected pair of sessions over `a`/`b`: (client, server).
pub fn connect_over(
    a: Box<dyn Transport>,
    b: Box<dyn Transport>,
    client_root: Object,
    server_root: Object,
    client: Config,
    server: Config,
) -> (S, S) {
    let acceptor = std::thread::spawn(move || {
        Session::connect(b, Role::Acceptor, NativeHost::new(), server_root, server)
    });
    let client = Session::connect(a, Role::Connector, NativeHost::new(), client_root, client)
        .expect("client connects");
    let server = acceptor.join().unwrap().expect("server accepts");
    (client, server)
}

/// A pair over the in-memory transport.
pub fn memory_pair(client_root: Object, server_root: Object) -> (S, S) {
    let (a, b) = pynto_transport::memory::pair();
    connect_over(
        Box::new(a),
        Box::new(b),
        client_root,
        server_root,
        Config::default(),
        Config::default(),
    )
}

/// A pair over real TCP on loopback.
pub fn tcp_pair(client_root: Object, server_root: Object) -> (S, S) {
    let acceptor = pynto_transport::tcp::TcpAcceptor::bind("127.0.0.1:0").unwrap();
    let addr = acceptor.socket_addr().unwrap();
    let server = std::thread::spawn(move || acceptor.accept().unwrap());
    let a = pynto_transport::tcp::TcpTransport::connect(addr).unwrap();
    let b = server.join().unwrap();
    connect_over(
        Box::new(a),
        b,
        client_root,
        server_root,
        Config::default(),
        Config::default(),
    )
}

/// Wait until `cond` holds, failing the test after `limit`.
pub fn eventually(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A gate server methods block on until the test opens it, counting who passed in.
pub struct Gate {
    state: std::sync::Mutex<(usize, bool)>,
    cond: std::sync::Condvar,
}

impl Gate {
    /// A closed gate.
    pub fn new() -> std::sync::Arc<Gate> {
        std::sync::Arc::new(Gate {
            state: std::sync::Mutex::new((0, false)),
            cond: std::sync::Condvar::new(),
        })
    }

    /// Count this caller in, then wait until the gate is open.
    pub fn pass(&self) {
        let mut state = self.state.lock().unwrap();
        state.0 += 1;
        self.cond.notify_all();
        while !state.1 {
            state = self.cond.wait(state).unwrap();
        }
    }

    /// Open the gate for everyone, now and later.
    pub fn open(&self) {
        self.state.lock().unwrap().1 = true;
        self.cond.notify_all();
    }

    /// How many callers reached the gate.
    pub fn entered(&self) -> usize {
        self.state.lock().unwrap().0
    }

    /// Wait until `n` callers reached the gate (failing the test after ten seconds).
    pub fn wait_entered(&self, n: usize) {
        eventually(
            Duration::from_secs(10),
            &format!("{n} callers at the gate"),
            || self.entered() >= n,
        );
    }
}

/// A service for fault tests: `add(a, b)`, `block()` (waits at `gate`, then returns 7) and
/// `fresh()` (a new object by reference each time).
pub fn gated_service(gate: std::sync::Arc<Gate>) -> Object {
    use pynto_proto::Value;
    use pynto_runtime::native::{Methods, Return};
    Object::new(
        Methods::new("Gated")
            .method("add", |args| {
                match (&args.positional[0], &args.positional[1]) {
                    (Value::Int(a), Value::Int(b)) => Ok(Value::Int(a + b).into()),
                    _ => Err(pynto_runtime::native::type_error("add takes two ints")),
                }
            })
            .method("block", move |_| {
                gate.pass();
                Ok(Value::Int(7).into())
            })
            .method("fresh", |_| {
                Ok(Return::Object(Object::new(Methods::new("Thing"))))
            }),
    )
}

/// Connect a client and a server over `a`/`b`, returning both outcomes (for handshakes that
/// are meant to fail).
pub fn try_connect(
    a: Box<dyn Transport>,
    b: Box<dyn Transport>,
    server_root: Object,
    client: Config,
    server: Config,
) -> (
    Result<S, pynto_runtime::Error>,
    Result<S, pynto_runtime::Error>,
) {
    let acceptor = std::thread::spawn(move || {
        Session::connect(b, Role::Acceptor, NativeHost::new(), server_root, server)
    });
    let client = Session::connect(
        a,
        Role::Connector,
        NativeHost::new(),
        Object::unit(),
        client,
    );
    (client, acceptor.join().unwrap())
}

/// A peer speaking the protocol by hand: frames are encoded with `pynto_proto::encode` and
/// read on a thread of their own, so every read has a deadline.
pub mod raw {
    use std::sync::mpsc;
    use std::time::Duration;

    use bytes::Bytes;
    use pynto_proto::{
        decode, encode, Frame, Hello, Limits, Message, IMPLEMENTATION, PROTOCOL_VERSION,
    };
    use pynto_runtime::native::{NativeHost, Object};
    use pynto_runtime::{Config, Role, Session};
    use pynto_transport::{FrameWriter, Transport};

    use super::S;

    /// How long a raw read waits before the test fails.
    pub const READ_LIMIT: Duration = Duration::from_secs(10);

    /// One end of a connection driven by the test.
    pub struct RawPeer {
        writer: Box<dyn FrameWriter>,
        frames: mpsc::Receiver<Option<Frame>>,
    }

    impl RawPeer {
        /// Split `transport` and start reading it.
        pub fn new(transport: Box<dyn Transport>) -> RawPeer {
            let (mut reader, writer) = transport.split();
            let (tx, frames) = mpsc::channel();
            std::thread::spawn(move || loop {
                match reader.recv() {
                    Ok(Some(frame)) => {
                        if tx.send(Some(frame)).is_err() {
                            return;
                        }
                    }
                    _ => {
                        let _ = tx.send(None);
                        return;
                    }
                }
            });
            RawPeer { writer, frames }
        }

        /// Send one message.
        pub fn send(&mut self, msg: &Message) {
            self.writer.send(&encode(msg)).expect("the raw peer sends");
        }

        /// Send a frame with `body` as its msgpack body, whatever it holds.
        pub fn send_body(&mut self, body: &[u8]) {
            let frame = Frame {
                body: Bytes::copy_from_slice(body),
                attachments: Vec::new(),
            };
            self.writer.send(&frame).expect("the raw peer sends");
        }

        /// The next message, or `None` once the other side closed the connection.
        pub fn recv(&self) -> Option<Message> {
            self.recv_within(READ_LIMIT)
                .expect("a message from the session in time")
        }

        /// The next message within `limit`: `Err(())` if none came, `Ok(None)` at the end.
        #[allow(clippy::result_unit_err)]
        pub fn recv_within(&self, limit: Duration) -> Result<Option<Message>, ()> {
            match self.frames.recv_timeout(limit) {
                Ok(Some(frame)) => Ok(Some(
                    decode(&frame, &Limits::default()).expect("the session sends valid messages"),
                )),
                Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => Ok(None),
                Err(mpsc::RecvTimeoutError::Timeout) => Err(()),
            }
        }

        /// The next message, which must be there.
        pub fn expect(&self) -> Message {
            self.recv().expect("the connection is still open")
        }

        /// Read the session's Goodbye and the end of the stream after it; the Goodbye's reason.
        pub fn expect_goodbye(&self) -> String {
            let reason = match self.recv() {
                Some(Message::Goodbye { reason }) => reason,
                other => panic!("expected Goodbye, got {other:?}"),
            };
            assert_eq!(
                self.recv(),
                None,
                "the session shut the transport after Goodbye"
            );
            reason
        }

        /// Shut the transport, both directions, without a Goodbye.
        pub fn shutdown(&mut self) {
            self.writer.shutdown();
        }
    }

    /// A Hello as this build would send it, with another protocol version and token.
    pub fn hello(protocol: u32, token: Option<&str>) -> Hello {
        Hello {
            protocol,
            implementation: format!("raw-test/{protocol}"),
            features: Vec::new(),
            limits: Limits::default(),
            token: token.map(str::to_string),
            service: "raw".into(),
        }
    }

    /// A session accepting over a memory pair whose other end is a raw peer that did the Hello
    /// exchange by hand.
    pub fn accept_raw(root: Object, config: Config) -> (S, RawPeer) {
        let (a, b) = pynto_transport::memory::pair();
        let session = std::thread::spawn(move || {
            Session::connect(Box::new(b), Role::Acceptor, NativeHost::new(), root, config)
        });
        let mut peer = RawPeer::new(Box::new(a));
        peer.send(&Message::Hello(hello(PROTOCOL_VERSION, None)));
        match peer.expect() {
            Message::Hello(h) => assert_eq!(
                (h.protocol, h.implementation.as_str()),
                (PROTOCOL_VERSION, IMPLEMENTATION)
            ),
            other => panic!("expected the session's Hello, got {other:?}"),
        }
        (
            session
                .join()
                .unwrap()
                .expect("the session accepts the raw peer"),
            peer,
        )
    }

    /// A session connecting over `transport`'s other end, `peer`, which answers its Hello by
    /// hand.
    pub fn connect_raw(
        transport: Box<dyn Transport>,
        mut peer: RawPeer,
        root: Object,
        config: Config,
    ) -> (S, RawPeer) {
        let session = std::thread::spawn(move || {
            Session::connect(transport, Role::Connector, NativeHost::new(), root, config)
        });
        match peer.expect() {
            Message::Hello(h) => assert_eq!(h.protocol, PROTOCOL_VERSION),
            other => panic!("expected the session's Hello, got {other:?}"),
        }
        peer.send(&Message::Hello(hello(PROTOCOL_VERSION, None)));
        (
            session
                .join()
                .unwrap()
                .expect("the session connects to the raw peer"),
            peer,
        )
    }
}

/// What the relay xors into every request's chain id.
pub const CHAIN_RENAME: u64 = 0x5a5a_0000_0000_0000;

/// Join `a` and `b` with two relay threads that pass every frame on, renaming the chain of each
/// request as it crosses (xor with [`CHAIN_RENAME`], so a chain comes back as itself).
///
/// Both sessions of a test share this process's chain table, so without the renaming a request
/// the server receives names the chain of the client thread waiting for it, and runs on that
/// thread, as a call to a local object would. Through the relay the two sessions route chains as
/// two processes do: the server serves on its own threads, and callbacks still find the caller.
/// When either side ends, the relay shuts the other.
pub fn relay(a: Box<dyn Transport>, b: Box<dyn Transport>) {
    use pynto_transport::{FrameReader, FrameWriter};
    fn pump(mut from: Box<dyn FrameReader>, mut to: Box<dyn FrameWriter>) {
        while let Ok(Some(frame)) = from.recv() {
            let frame = match pynto_proto::decode(&frame, &pynto_proto::Limits::default()) {
                Ok(pynto_proto::Message::Request(mut request)) => {
                    request.chain ^= CHAIN_RENAME;
                    pynto_proto::encode(&pynto_proto::Message::Request(request))
                }
                _ => frame,
            };
            if to.send(&frame).is_err() {
                break;
            }
        }
        to.shutdown();
    }
    let (a_reader, a_writer) = a.split();
    let (b_reader, b_writer) = b.split();
    std::thread::spawn(move || pump(a_reader, b_writer));
    std::thread::spawn(move || pump(b_reader, a_writer));
}

/// A (client, server) pair as if in two processes (see [`relay`]): the client's transport is
/// `"memory"` or `"tcp"` (loopback), the server's a memory pair behind the relay.
pub fn relayed_pair(
    transport: &str,
    client_root: Object,
    server_root: Object,
    client: Config,
    server: Config,
) -> (S, S) {
    let (near, far) = pynto_transport::memory::pair();
    let client_end: Box<dyn Transport> = match transport {
        "memory" => {
            let (a, b) = pynto_transport::memory::pair();
            relay(Box::new(b), Box::new(near));
            Box::new(a)
        }
        "tcp" => {
            let acceptor = pynto_transport::tcp::TcpAcceptor::bind("127.0.0.1:0").unwrap();
            let addr = acceptor.socket_addr().unwrap();
            let accepted = std::thread::spawn(move || acceptor.accept().unwrap());
            let a = pynto_transport::tcp::TcpTransport::connect(addr).unwrap();
            relay(accepted.join().unwrap(), Box::new(near));
            Box::new(a)
        }
        other => panic!("no transport {other:?}"),
    };
    connect_over(
        client_end,
        Box::new(far),
        client_root,
        server_root,
        client,
        server,
    )
}
