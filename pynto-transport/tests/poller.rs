//! Parking socket readers in the process's poller: a parked reader is woken once when bytes
//! (or the end of the stream) arrive, re-arming fires for bytes already waiting, a dropped
//! reader leaves nothing armed, and the idle timeout never cuts a frame that arrives slowly.

mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use pynto_transport::poller::Wake;
use pynto_transport::tcp::{TcpAcceptor, TcpTransport};
use pynto_transport::unix::UnixTransport;
use pynto_transport::{FrameReader, FrameWriter, Transport, TransportError};

const IDLE: Duration = Duration::from_millis(30);
/// Long enough for a wake-up that should not come to show up if it did.
const QUIET: Duration = Duration::from_millis(300);

/// A Unix pair: our reader (with the idle timeout set) and the peer's writer.
fn pair() -> (Box<dyn FrameReader>, Box<dyn FrameWriter>) {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let (mut reader, _writer) = Box::new(UnixTransport::from_stream(ours)).split();
    assert!(reader.set_idle_timeout(IDLE));
    let (_r, writer) = Box::new(UnixTransport::from_stream(theirs)).split();
    (reader, writer)
}

/// A wake-up that reports on a channel.
fn waker() -> (Wake, mpsc::Receiver<()>) {
    let (tx, rx) = mpsc::channel();
    (
        Box::new(move || {
            let _ = tx.send(());
        }),
        rx,
    )
}

#[test]
fn an_idle_reader_gives_up_between_frames_and_a_parked_one_is_woken_by_a_frame() {
    let (mut reader, mut peer) = pair();
    let started = Instant::now();
    assert!(matches!(reader.recv(), Err(TransportError::Idle)));
    assert!(started.elapsed() >= IDLE / 2);
    let (wake, woken) = waker();
    assert!(reader.park(wake).is_ok());
    assert!(
        woken.recv_timeout(QUIET).is_err(),
        "woken with nothing to read"
    );
    peer.send(&small(1)).unwrap();
    woken
        .recv_timeout(PROMPTLY)
        .expect("a frame wakes the parked reader");
    // The reader is whole again: its buffer comes back on use.
    assert_eq!(reader.recv().unwrap(), Some(small(1)));
    assert!(matches!(reader.recv(), Err(TransportError::Idle)));
}

#[test]
fn arming_is_one_shot_and_rearming_fires_for_bytes_already_waiting() {
    let (mut reader, mut peer) = pair();
    let (wake, woken) = waker();
    assert!(reader.park(wake).is_ok());
    peer.send(&small(1)).unwrap();
    woken.recv_timeout(PROMPTLY).unwrap();
    peer.send(&small(2)).unwrap();
    assert!(
        woken.recv_timeout(QUIET).is_err(),
        "a second wake-up without re-arming"
    );
    // Bytes already waiting fire a new arming at once (level-triggered: nothing is lost
    // between a reader's last read and its parking).
    let (wake, woken) = waker();
    assert!(reader.park(wake).is_ok());
    woken.recv_timeout(PROMPTLY).unwrap();
    assert_eq!(reader.recv().unwrap(), Some(small(1)));
    // A frame left in the read buffer: the reader refuses to park (the poller would not see
    // those bytes), and hands the wake-up back.
    let (wake, woken) = waker();
    assert!(reader.park(wake).is_err());
    assert!(woken.try_recv().is_err());
    assert_eq!(reader.recv().unwrap(), Some(small(2)));
}

#[test]
fn the_peer_closing_wakes_a_parked_reader() {
    let (mut reader, peer) = pair();
    let (wake, woken) = waker();
    assert!(reader.park(wake).is_ok());
    drop(peer);
    woken.recv_timeout(PROMPTLY).unwrap();
    assert_eq!(reader.recv().unwrap(), None);
}

#[test]
fn a_dropped_reader_leaves_nothing_armed() {
    let (mut reader, mut peer) = pair();
    let witness = Arc::new(());
    let held = Arc::clone(&witness);
    let (tx, ran) = mpsc::channel();
    let armed = reader.park(Box::new(move || {
        drop(held);
        let _ = tx.send(());
    }));
    assert!(armed.is_ok());
    assert_eq!(
        Arc::strong_count(&witness),
        2,
        "the poller holds the wake-up"
    );
    drop(reader);
    assert_eq!(
        Arc::strong_count(&witness),
        1,
        "dropping the reader dropped its wake-up unrun"
    );
    let _ = peer.send(&small(1));
    drop(peer);
    assert!(
        ran.recv_timeout(QUIET).is_err(),
        "a dropped reader's wake-up ran"
    );
    // Many parked and dropped readers: none stays armed.
    let witness = Arc::new(());
    for _ in 0..200 {
        let (mut reader, _peer) = pair();
        let held = Arc::clone(&witness);
        assert!(reader.park(Box::new(move || drop(held))).is_ok());
    }
    assert_eq!(Arc::strong_count(&witness), 1);
}

#[test]
fn a_frame_slower_than_the_idle_timeout_is_read_whole() {
    let acceptor = TcpAcceptor::bind("127.0.0.1:0").unwrap();
    let addr = acceptor.socket_addr().unwrap();
    let server = thread::spawn(move || acceptor.accept().unwrap());
    let client = TcpTransport::connect(addr).unwrap();
    let mut raw = client.stream().try_clone().unwrap();
    let (mut reader, _writer) = server.join().unwrap().split();
    assert!(reader.set_idle_timeout(IDLE));
    let frame = small(7);
    let bytes = wire(&frame);
    let dripper = thread::spawn(move || {
        for chunk in bytes.chunks(3) {
            raw.write_all(chunk).unwrap();
            thread::sleep(IDLE * 3);
        }
        raw
    });
    // Idle until the first byte comes (the dripper may start late); whole after it.
    let received = loop {
        match reader.recv() {
            Err(TransportError::Idle) => continue,
            other => break other.unwrap(),
        }
    };
    assert_eq!(received, Some(frame));
    let _raw = dripper.join().unwrap();
    drop(client);
}

#[test]
fn an_interrupt_before_the_wait_still_interrupts_it() {
    let (mut reader, _peer) = pair();
    let interrupter = reader.interrupter().expect("sockets can be interrupted");
    interrupter.interrupt();
    let started = Instant::now();
    assert!(!reader.wait_readable(PROMPTLY).unwrap());
    assert!(started.elapsed() < PROMPTLY);
    // Parking closes the event fd; a poke meanwhile is kept for the next wait.
    let (wake, _woken) = waker();
    assert!(reader.park(wake).is_ok());
    interrupter.interrupt();
    assert!(!reader.wait_readable(PROMPTLY).unwrap());
}

/// The wire bytes of one frame.
fn wire(frame: &pynto_proto::Frame) -> Vec<u8> {
    let mut writer = pynto_transport::StreamWriter::new(Vec::new());
    writer.send(frame).unwrap();
    writer.into_inner()
}
