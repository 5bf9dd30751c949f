//! The in-memory pair: frames both ways, shutdown unblocking a reader, limits on receive.

mod common;

use bytes::Bytes;
use common::*;
use pynto_proto::{Frame, Limits};
use pynto_transport::{memory, Transport, TransportError};

#[test]
fn memory_carries_frames_both_ways() {
    let (a, b) = memory::pair();
    let ((ar, aw), (br, bw)) = split2(Box::new(a), Box::new(b));
    exchange_with_echo(ar, aw, echo(br, bw));
}

#[test]
fn shutdown_unblocks_memory_reader() {
    let (a, _b) = memory::pair();
    let (r, w) = Box::new(a).split();
    shutdown_unblocks_reader(r, w);
    let (a, _b) = memory::pair();
    let (r, w) = Box::new(a).split();
    handle_unblocks_reader(r, w.as_ref());
}

#[test]
fn memory_enforces_limits_on_receive() {
    let (a, b) = memory::pair();
    let ((_ar, mut aw), (mut br, _bw)) = split2(Box::new(a), Box::new(b));
    br.set_limits(&Limits {
        max_frame: 8,
        max_message: 16,
        ..Limits::default()
    });
    let frame = |body: &'static [u8], att: &'static [u8]| Frame {
        body: Bytes::from_static(body),
        attachments: vec![Bytes::from_static(att)],
    };
    aw.send(&frame(b"12345678", b"12345678")).unwrap();
    aw.send(&frame(b"123456789", b"")).unwrap();
    aw.send(&frame(b"1", b"1234567890123456")).unwrap();
    assert!(br.recv().unwrap().is_some());
    assert!(matches!(
        br.recv(),
        Err(TransportError::FrameTooLarge { len: 9, max: 8 })
    ));
    assert!(matches!(
        br.recv(),
        Err(TransportError::MessageTooLarge { len: 17, max: 16 })
    ));
}
