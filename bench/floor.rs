//! The Rust raw-socket floor for `cargo xtask bench`: a length-prefixed TCP echo, std only.
//!
//! Every frame is one op byte, a little-endian `u64` length and that many payload bytes.
//! Ops: `E` echo (the server sends the same frame back), `P` put (the server replies with an
//! empty `P` frame), `G` get (the payload is a little-endian `u64` n; the server replies with a
//! `G` frame of n zero bytes). `bench/pyfloor.py` speaks the same protocol with Python sockets.
//!
//! ```text
//! floor server [--port P]                                   prints `READY <port>`, one thread per connection
//! floor latency --addr A [--n N] [--max-secs S] [--size B]  N echo round trips, each timed
//! floor bw --addr A --op put|get|echo --size B [--reps R] [--max-secs S]
//! floor hammer --addr A --secs S [--start-at UNIX_NS]       echo round trips for S seconds, counted
//! floor connect --addr A [--n N] [--max-secs S]             connect + one round trip + close, timed
//! floor idle --addr A --count C                             hold C idle connections until stdin closes
//! ```
//!
//! Clients print one JSON object per line on stdout; times are in nanoseconds.

use std::io::{self, BufRead, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const HEADER: usize = 9;
/// Reads and writes of bulk payloads go in pieces of this size.
const CHUNK: usize = 1 << 20;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(mode) = args.first() else {
        usage("no mode given");
    };
    let opts = Opts::parse(&args[1..]);
    let result = match mode.as_str() {
        "server" => server(opts.num("port", 0) as u16),
        "latency" => latency(&opts),
        "bw" => bandwidth(&opts),
        "hammer" => hammer(&opts),
        "connect" => connect_loop(&opts),
        "idle" => idle(&opts),
        other => usage(&format!("unknown mode `{other}`")),
    };
    if let Err(e) = result {
        eprintln!("floor {mode}: {e}");
        std::process::exit(1);
    }
}

fn usage(message: &str) -> ! {
    eprintln!("floor: {message}\nmodes: server, latency, bw, hammer, connect, idle (see the source's doc)");
    std::process::exit(2);
}

/// `--key value` pairs.
struct Opts(Vec<(String, String)>);

impl Opts {
    fn parse(args: &[String]) -> Opts {
        let mut pairs = Vec::new();
        let mut it = args.iter();
        while let Some(key) = it.next() {
            let Some(key) = key.strip_prefix("--") else {
                usage(&format!("expected --option, got `{key}`"));
            };
            let Some(value) = it.next() else {
                usage(&format!("--{key} needs a value"));
            };
            pairs.push((key.to_string(), value.clone()));
        }
        Opts(pairs)
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn num(&self, key: &str, default: u64) -> u64 {
        match self.get(key) {
            None => default,
            Some(v) => v
                .parse()
                .unwrap_or_else(|_| usage(&format!("--{key} wants a whole number, not `{v}`"))),
        }
    }

    fn secs(&self, key: &str, default: f64) -> Duration {
        let v = match self.get(key) {
            None => default,
            Some(v) => v
                .parse()
                .unwrap_or_else(|_| usage(&format!("--{key} wants seconds, not `{v}`"))),
        };
        Duration::from_secs_f64(v)
    }

    fn addr(&self) -> &str {
        self.get("addr")
            .unwrap_or_else(|| usage("--addr is required"))
    }
}

// ---------------------------------------------------------------------------------------------
// server

fn server(port: u16) -> io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    let port = listener.local_addr()?.port();
    println!("READY {port}");
    io::stdout().flush()?;
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        std::thread::spawn(move || {
            // A client that goes away ends its thread; nothing to report.
            let _ = serve_one(stream);
        });
    }
    Ok(())
}

fn serve_one(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; 64 * 1024];
    let zeros = vec![0u8; CHUNK];
    loop {
        let mut header = [0u8; HEADER];
        match stream.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let op = header[0];
        let len = u64::from_le_bytes(header[1..].try_into().expect("8 bytes")) as usize;
        match op {
            b'E' => {
                if buf.len() < HEADER + len {
                    buf.resize(HEADER + len, 0);
                }
                buf[..HEADER].copy_from_slice(&header);
                stream.read_exact(&mut buf[HEADER..HEADER + len])?;
                stream.write_all(&buf[..HEADER + len])?;
            }
            b'P' => {
                skip(&mut stream, len, &mut buf)?;
                stream.write_all(&frame_header(b'P', 0))?;
            }
            b'G' => {
                let mut n = [0u8; 8];
                stream.read_exact(&mut n)?;
                skip(&mut stream, len.saturating_sub(8), &mut buf)?;
                let n = u64::from_le_bytes(n) as usize;
                stream.write_all(&frame_header(b'G', n))?;
                let mut left = n;
                while left > 0 {
                    let k = left.min(CHUNK);
                    stream.write_all(&zeros[..k])?;
                    left -= k;
                }
            }
            _ => return Err(io::Error::other(format!("unknown op {op}"))),
        }
    }
}

fn frame_header(op: u8, len: usize) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[0] = op;
    h[1..].copy_from_slice(&(len as u64).to_le_bytes());
    h
}

/// Reads and discards `len` bytes.
fn skip(stream: &mut TcpStream, mut len: usize, buf: &mut Vec<u8>) -> io::Result<()> {
    if buf.len() < CHUNK {
        buf.resize(CHUNK, 0);
    }
    while len > 0 {
        let k = len.min(CHUNK);
        stream.read_exact(&mut buf[..k])?;
        len -= k;
    }
    Ok(())
}

/// Reads one frame's header and returns its payload length.
fn read_header(stream: &mut TcpStream) -> io::Result<usize> {
    let mut header = [0u8; HEADER];
    stream.read_exact(&mut header)?;
    Ok(u64::from_le_bytes(header[1..].try_into().expect("8 bytes")) as usize)
}

// ---------------------------------------------------------------------------------------------
// clients

fn dial(addr: &str) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// One echo round trip of `msg` (header included); `back` receives the reply.
fn echo(stream: &mut TcpStream, msg: &[u8], back: &mut [u8]) -> io::Result<()> {
    stream.write_all(msg)?;
    stream.read_exact(back)
}

fn echo_message(size: usize) -> Vec<u8> {
    let mut msg = frame_header(b'E', size).to_vec();
    msg.extend((0..size).map(|i| i as u8));
    msg
}

fn print_samples(kind: &str, samples: &[u128]) {
    let list: Vec<String> = samples.iter().map(|s| s.to_string()).collect();
    println!(
        "{{\"kind\":\"{kind}\",\"samples_ns\":[{}]}}",
        list.join(",")
    );
}

fn latency(opts: &Opts) -> io::Result<()> {
    let n = opts.num("n", 20_000) as usize;
    let max = opts.secs("max-secs", 2.0);
    let msg = echo_message(opts.num("size", 32) as usize);
    let mut back = vec![0u8; msg.len()];
    let mut stream = dial(opts.addr())?;
    for _ in 0..200.min(n) {
        echo(&mut stream, &msg, &mut back)?;
    }
    let mut samples = Vec::with_capacity(n);
    let begin = Instant::now();
    while samples.len() < n && begin.elapsed() < max {
        let t = Instant::now();
        echo(&mut stream, &msg, &mut back)?;
        samples.push(t.elapsed().as_nanos());
    }
    print_samples("latency", &samples);
    Ok(())
}

fn bandwidth(opts: &Opts) -> io::Result<()> {
    let op = opts.get("op").unwrap_or_else(|| usage("--op is required"));
    let size = opts.num("size", 1 << 20) as usize;
    let reps = opts.num("reps", 5);
    let max = opts.secs("max-secs", 10.0);
    let mut stream = dial(opts.addr())?;
    let payload = vec![7u8; size];
    let mut sink = vec![0u8; CHUNK];
    let mut samples = Vec::new();
    let begin = Instant::now();
    // One untimed round for warm-up, then up to `reps` timed ones.
    for i in 0..=reps {
        if i > 1 && begin.elapsed() >= max {
            break;
        }
        let t = Instant::now();
        match op {
            "put" | "echo" => {
                let code = if op == "put" { b'P' } else { b'E' };
                stream.write_all(&frame_header(code, size))?;
                stream.write_all(&payload)?;
                let len = read_header(&mut stream)?;
                skip(&mut stream, len, &mut sink)?;
            }
            "get" => {
                let mut msg = frame_header(b'G', 8).to_vec();
                msg.extend_from_slice(&(size as u64).to_le_bytes());
                stream.write_all(&msg)?;
                let len = read_header(&mut stream)?;
                // A real client keeps what it gets: read into one buffer of the full size.
                let mut data = vec![0u8; len];
                stream.read_exact(&mut data)?;
                std::hint::black_box(&data);
            }
            _ => usage(&format!("--op wants put, get or echo, not `{op}`")),
        }
        if i > 0 {
            samples.push(t.elapsed().as_nanos());
        }
    }
    print_samples("bandwidth", &samples);
    Ok(())
}

fn unix_now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn hammer(opts: &Opts) -> io::Result<()> {
    let secs = opts.secs("secs", 3.0);
    let start_at = opts.num("start-at", 0) as u128;
    let msg = echo_message(32);
    let mut back = vec![0u8; msg.len()];
    let mut stream = dial(opts.addr())?;
    for _ in 0..100 {
        echo(&mut stream, &msg, &mut back)?;
    }
    let now = unix_now_ns();
    if start_at > now {
        std::thread::sleep(Duration::from_nanos((start_at - now) as u64));
    }
    let begin = Instant::now();
    let mut calls: u64 = 0;
    while begin.elapsed() < secs {
        for _ in 0..10 {
            echo(&mut stream, &msg, &mut back)?;
        }
        calls += 10;
    }
    let elapsed = begin.elapsed().as_nanos();
    println!("{{\"kind\":\"hammer\",\"calls\":{calls},\"elapsed_ns\":{elapsed}}}");
    Ok(())
}

fn connect_loop(opts: &Opts) -> io::Result<()> {
    let n = opts.num("n", 300) as usize;
    let max = opts.secs("max-secs", 3.0);
    let msg = echo_message(32);
    let mut back = vec![0u8; msg.len()];
    let mut samples = Vec::with_capacity(n);
    let begin = Instant::now();
    while samples.len() < n && begin.elapsed() < max {
        let t = Instant::now();
        let mut stream = dial(opts.addr())?;
        echo(&mut stream, &msg, &mut back)?;
        samples.push(t.elapsed().as_nanos());
        let _ = stream.shutdown(Shutdown::Both);
    }
    print_samples("connect", &samples);
    Ok(())
}

fn idle(opts: &Opts) -> io::Result<()> {
    let count = opts.num("count", 100);
    let msg = echo_message(32);
    let mut back = vec![0u8; msg.len()];
    let mut held = Vec::new();
    for _ in 0..count {
        let mut stream = dial(opts.addr())?;
        echo(&mut stream, &msg, &mut back)?;
        held.push(stream);
    }
    println!("READY {count}");
    io::stdout().flush()?;
    // Hold them until the parent closes our stdin.
    let mut line = String::new();
    let _ = io::stdin().lock().read_line(&mut line);
    drop(held);
    Ok(())
}
