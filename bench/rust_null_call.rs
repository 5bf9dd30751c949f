//! The Rust-to-Rust null call against a raw-socket ping-pong, over TCP and a Unix socket, both
//! processes pinned to one core and unpinned, in one run (`cargo xtask bench` runs it).
//!
//! ```text
//! rust_null_call run [--n N]            the whole comparison; prints a markdown table
//! rust_null_call serve-pynto ADDRESS    a pynto server (Rust native host) with a method `f`
//! rust_null_call serve-floor ADDRESS    a 32-byte echo server
//! rust_null_call call-pynto ADDRESS N   N calls of root.f(); prints median and p99 in ns
//! rust_null_call call-floor ADDRESS N   N echo round trips; the same
//! rust_null_call connect-pynto ADDRESS N  N times: dial, handshake, root, root.f(), close;
//!                                       prints each stage's median in ns (any pynto server)
//! ```
//! ADDRESS is `tcp://127.0.0.1:PORT` or `unix:///path`. Servers print `READY` once listening.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use pynto_proto::Value;
use pynto_runtime::native::{Methods, NativeHost, Object};
use pynto_runtime::{Config, Role, Session};
use pynto_transport::{Address, Listener};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run") => {
            let n = args
                .iter()
                .position(|a| a == "--n")
                .and_then(|i| args.get(i + 1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(20_000);
            run(n);
        }
        Some("serve-pynto") => serve_pynto(&args[1]),
        Some("serve-floor") => serve_floor(&args[1]),
        Some("call-pynto") => report(call_pynto(&args[1], args[2].parse().expect("N"))),
        Some("call-floor") => report(call_floor(&args[1], args[2].parse().expect("N"))),
        Some("connect-pynto") => connect_stages(&args[1], args[2].parse().expect("N")),
        _ => {
            eprintln!("usage: rust_null_call run [--n N] | serve-pynto ADDR | serve-floor ADDR | call-pynto ADDR N | call-floor ADDR N");
            std::process::exit(2);
        }
    }
}

fn serve_pynto(address: &str) {
    let listener = Listener::bind(&Address::parse(address).expect("address"), None).expect("bind");
    println!("READY");
    std::io::stdout().flush().ok();
    loop {
        let Ok(transport) = listener.accept() else {
            continue;
        };
        std::thread::spawn(move || {
            let root = Object::new(Methods::new("Bench").method("f", |_| Ok(Value::None.into())));
            if let Ok(session) = Session::connect(
                transport,
                Role::Acceptor,
                NativeHost::new(),
                root,
                Config::default(),
            ) {
                while !session.is_closed() {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            }
        });
    }
}

enum Stream {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl Stream {
    fn connect(address: &str) -> Stream {
        match Address::parse(address).expect("address") {
            Address::Tcp { host, port } => {
                let s = std::net::TcpStream::connect((host.as_str(), port)).expect("connect");
                s.set_nodelay(true).ok();
                Stream::Tcp(s)
            }
            Address::Unix(path) => {
                Stream::Unix(std::os::unix::net::UnixStream::connect(path).expect("connect"))
            }
            Address::Tls { .. } => panic!("no TLS here"),
        }
    }

    fn echo(&mut self, buf: &mut [u8; 32]) -> std::io::Result<()> {
        match self {
            Stream::Tcp(s) => s.write_all(buf).and_then(|_| s.read_exact(buf)),
            Stream::Unix(s) => s.write_all(buf).and_then(|_| s.read_exact(buf)),
        }
    }
}

fn serve_floor(address: &str) {
    let (tcp, unix) = match Address::parse(address).expect("address") {
        Address::Tcp { host, port } => (
            Some(std::net::TcpListener::bind((host.as_str(), port)).expect("bind")),
            None,
        ),
        Address::Unix(path) => (
            None,
            Some(std::os::unix::net::UnixListener::bind(path).expect("bind")),
        ),
        Address::Tls { .. } => panic!("no TLS here"),
    };
    println!("READY");
    std::io::stdout().flush().ok();
    loop {
        let mut stream = match (&tcp, &unix) {
            (Some(l), _) => {
                let (s, _) = l.accept().expect("accept");
                s.set_nodelay(true).ok();
                Stream::Tcp(s)
            }
            (_, Some(l)) => Stream::Unix(l.accept().expect("accept").0),
            _ => unreachable!(),
        };
        std::thread::spawn(move || {
            let mut buf = [0u8; 32];
            loop {
                let read = match &mut stream {
                    Stream::Tcp(s) => s.read_exact(&mut buf).and_then(|_| s.write_all(&buf)),
                    Stream::Unix(s) => s.read_exact(&mut buf).and_then(|_| s.write_all(&buf)),
                };
                if read.is_err() {
                    return;
                }
            }
        });
    }
}

fn call_pynto(address: &str, n: usize) -> Vec<u64> {
    let transport = pynto_transport::connect(&Address::parse(address).expect("address"), None)
        .expect("connect");
    let session = Session::connect(
        transport,
        Role::Connector,
        NativeHost::new(),
        Object::unit(),
        Config::default(),
    )
    .expect("session");
    let root = session.root().expect("root");
    for _ in 0..n / 10 {
        root.call_method("f", vec![]).expect("warm-up call");
    }
    (0..n)
        .map(|_| {
            let t = Instant::now();
            root.call_method("f", vec![]).expect("call");
            t.elapsed().as_nanos() as u64
        })
        .collect()
}

/// Where connection set-up goes: the median of each stage over `n` connections.
fn connect_stages(address: &str, n: usize) {
    let address = Address::parse(address).expect("address");
    let mut stages: [Vec<u64>; 5] = Default::default();
    for i in 0..n + 3 {
        let t0 = Instant::now();
        let transport = pynto_transport::connect(&address, None).expect("connect");
        let t1 = Instant::now();
        let session = Session::connect(
            transport,
            Role::Connector,
            NativeHost::new(),
            Object::unit(),
            Config::default(),
        )
        .expect("session");
        let t2 = Instant::now();
        let root = session.root().expect("root");
        let t3 = Instant::now();
        root.call_method("f", vec![]).expect("call");
        let t4 = Instant::now();
        drop(root);
        session.close();
        let t5 = Instant::now();
        if i >= 3 {
            for (k, (a, b)) in [(t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5)]
                .into_iter()
                .enumerate()
            {
                stages[k].push((b - a).as_nanos() as u64);
            }
        }
    }
    for (name, mut v) in ["dial", "handshake", "root", "f()", "close"]
        .into_iter()
        .zip(stages)
    {
        v.sort_unstable();
        println!("{name}: {} ns", v[v.len() / 2]);
    }
}

fn call_floor(address: &str, n: usize) -> Vec<u64> {
    let mut stream = Stream::connect(address);
    let mut buf = [7u8; 32];
    for _ in 0..n / 10 {
        stream.echo(&mut buf).expect("warm-up echo");
    }
    (0..n)
        .map(|_| {
            let t = Instant::now();
            stream.echo(&mut buf).expect("echo");
            t.elapsed().as_nanos() as u64
        })
        .collect()
}

fn report(mut samples: Vec<u64>) {
    samples.sort_unstable();
    let median = samples[samples.len() / 2];
    let p99 = samples[samples.len() * 99 / 100];
    println!("{median} {p99}");
}

/// Start `args` (under `taskset -c 0` when pinned), wait for READY.
fn start_server(pinned: bool, args: &[&str]) -> Child {
    let exe = std::env::current_exe().expect("own path");
    let mut cmd = if pinned {
        let mut c = Command::new("taskset");
        c.arg("-c").arg("0").arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    let mut child = cmd
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("READY");
    assert_eq!(line.trim(), "READY", "the server did not start");
    child
}

fn measure(pinned: bool, args: &[&str]) -> (f64, f64) {
    let exe = std::env::current_exe().expect("own path");
    let mut cmd = if pinned {
        let mut c = Command::new("taskset");
        c.arg("-c").arg("0").arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    let out = cmd.args(args).output().expect("run the client");
    assert!(
        out.status.success(),
        "client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text
        .split_whitespace()
        .map(|v| v.parse::<f64>().expect("ns") / 1000.0);
    (parts.next().expect("median"), parts.next().expect("p99"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port()
}

fn run(n: usize) {
    let dir = std::env::temp_dir().join(format!("pynto-rust-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let n_arg = n.to_string();
    println!(
        "| transport | cores | pynto null call, us (p99) | raw floor, us (p99) | pynto / floor |"
    );
    println!("|---|---|---|---|---|");
    for pinned in [true, false] {
        for transport in ["tcp", "unix"] {
            let (pynto_addr, floor_addr) = match transport {
                "tcp" => (
                    format!("tcp://127.0.0.1:{}", free_port()),
                    format!("tcp://127.0.0.1:{}", free_port()),
                ),
                _ => {
                    let tag = if pinned { "p" } else { "u" };
                    (
                        format!("unix://{}", dir.join(format!("pynto-{tag}.sock")).display()),
                        format!("unix://{}", dir.join(format!("floor-{tag}.sock")).display()),
                    )
                }
            };
            let mut pynto_server = start_server(pinned, &["serve-pynto", &pynto_addr]);
            let mut floor_server = start_server(pinned, &["serve-floor", &floor_addr]);
            let (pm, pp) = measure(pinned, &["call-pynto", &pynto_addr, &n_arg]);
            let (fm, fp) = measure(pinned, &["call-floor", &floor_addr, &n_arg]);
            let _ = pynto_server.kill();
            let _ = floor_server.kill();
            let _ = pynto_server.wait();
            let _ = floor_server.wait();
            let cores = if pinned {
                "pinned (1 core)"
            } else {
                "unpinned"
            };
            println!(
                "| {transport} | {cores} | {pm:.1} ({pp:.1}) | {fm:.1} ({fp:.1}) | {:.2}x |",
                pm / fm
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
