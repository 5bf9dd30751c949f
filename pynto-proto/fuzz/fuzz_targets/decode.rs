//! Fuzz target: decoding arbitrary bytes never panics, and whatever decodes re-encodes to a frame
//! that decodes to the same message.
//!
//! The first input byte picks the number of attachments (0..=3) and the depth limit; the rest is
//! the body.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use pynto_proto::{decode, encode, Frame, Limits};

fuzz_target!(|data: &[u8]| {
    let Some((&control, body)) = data.split_first() else {
        return;
    };
    let attachments = (0..control & 3)
        .map(|i| Bytes::from(vec![i; usize::from(i) * 3]))
        .collect::<Vec<_>>();
    let limits = Limits {
        max_depth: u32::from(control >> 2) * 4,
        max_frame: 1 << 20,
        ..Limits::default()
    };
    let frame = Frame {
        body: Bytes::copy_from_slice(body),
        attachments,
    };
    if let Ok(msg) = decode(&frame, &limits) {
        // Compared through Debug so a NaN equals itself.
        let again = decode(&encode(&msg), &Limits::default()).expect("re-encoded message decodes");
        assert_eq!(format!("{again:?}"), format!("{msg:?}"));
    }
});
