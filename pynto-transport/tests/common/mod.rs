//! Helpers shared by the transport tests: test frames, an echo peer, and checks that a
//! transport carries frames both ways and that shutdown unblocks a reader.
#![allow(dead_code)]

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use pynto_proto::Frame;
use pynto_transport::{FrameReader, FrameWriter, Transport, TransportError};

/// How long a test waits for something that should happen promptly.
pub const PROMPTLY: Duration = Duration::from_secs(10);

/// A small frame numbered `i`, with an attachment on every tenth.
pub fn small(i: usize) -> Frame {
    let attachments = if i % 10 == 0 {
        vec![Bytes::from(format!("attachment {i}"))]
    } else {
        vec![]
    };
    Frame {
        body: Bytes::from(format!("frame {i}")),
        attachments,
    }
}

/// A small body with an 8 MiB attachment (and a tiny one), with recognisable contents.
pub fn large() -> Frame {
    let big: Vec<u8> = (0..8usize << 20)
        .map(|i| (i * 31 + i / 4099) as u8)
        .collect();
    Frame {
        body: Bytes::from_static(b"large"),
        attachments: vec![Bytes::from(big), Bytes::from_static(b"!")],
    }
}

/// Echo every frame back until end of stream, then shut down. Returns how it ended.
pub fn echo(
    mut reader: Box<dyn FrameReader>,
    mut writer: Box<dyn FrameWriter>,
) -> thread::JoinHandle<Result<usize, TransportError>> {
    thread::spawn(move || {
        let mut n = 0;
        let result = loop {
            match reader.recv() {
                Ok(Some(frame)) => {
                    if let Err(e) = writer.send(&frame) {
                        break Err(e);
                    }
                    n += 1;
                }
                Ok(None) => break Ok(n),
                Err(e) => break Err(e),
            }
        };
        writer.shutdown();
        result
    })
}

/// The frames `exchange` sends: many small ones around a large one.
pub fn test_frames() -> Vec<Frame> {
    let mut frames: Vec<Frame> = (0..1000).map(small).collect();
    frames.insert(500, large());
    frames.push(Frame::default());
    frames
}

/// Send the test frames from `reader`/`writer` to an echo on the other side and check they
/// all come back in order, then shut down and check both sides end cleanly.
pub fn exchange_with_echo(
    reader: Box<dyn FrameReader>,
    mut writer: Box<dyn FrameWriter>,
    echo: thread::JoinHandle<Result<usize, TransportError>>,
) {
    let frames = test_frames();
    let expected = frames.clone();
    let collector = thread::spawn(move || {
        let mut reader = reader;
        let mut got = Vec::new();
        while got.len() < expected.len() {
            match reader.recv() {
                Ok(Some(f)) => got.push(f),
                other => panic!("after {} frames: {other:?}", got.len()),
            }
        }
        assert!(got == expected, "frames came back different");
        reader
    });
    for f in &frames {
        writer.send(f).unwrap();
    }
    let mut reader = collector.join().unwrap();
    writer.shutdown();
    writer.shutdown(); // idempotent
    assert_eq!(echo.join().unwrap().unwrap(), frames.len());
    assert!(reader.recv().unwrap().is_none());
    assert!(writer.send(&small(1)).is_err());
}

/// Check that `writer.shutdown()` on this thread unblocks `reader.recv()` on another.
pub fn shutdown_unblocks_reader(
    mut reader: Box<dyn FrameReader>,
    mut writer: Box<dyn FrameWriter>,
) {
    let (tx, rx) = mpsc::channel();
    let t = thread::spawn(move || {
        let r = reader.recv();
        tx.send(format!("{r:?}")).unwrap();
    });
    thread::sleep(Duration::from_millis(100));
    assert!(rx.try_recv().is_err(), "recv returned before shutdown");
    writer.shutdown();
    let r = rx
        .recv_timeout(PROMPTLY)
        .expect("recv still blocked after shutdown");
    assert!(r == "Ok(None)" || r.starts_with("Err("), "{r}");
    t.join().unwrap();
}

/// Check that a [`pynto_transport::ShutdownHandle`] unblocks `reader.recv()` on another
/// thread, without the writer.
pub fn handle_unblocks_reader(mut reader: Box<dyn FrameReader>, writer: &dyn FrameWriter) {
    let handle = writer
        .shutdown_handle()
        .expect("this transport has a shutdown handle");
    let t = thread::spawn(move || reader.recv().map(|f| f.is_none()));
    thread::sleep(Duration::from_millis(100));
    handle.shutdown();
    handle.shutdown();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(t.join().unwrap().map_err(|e| e.to_string())));
    let r = rx
        .recv_timeout(PROMPTLY)
        .expect("recv still blocked after shutdown");
    assert!(matches!(r, Ok(true) | Err(_)), "{r:?}");
}

/// Split a pair of transports.
pub type Halves = (Box<dyn FrameReader>, Box<dyn FrameWriter>);

/// Split both transports.
pub fn split2(a: Box<dyn Transport>, b: Box<dyn Transport>) -> (Halves, Halves) {
    (a.split(), b.split())
}
