//! Unit tests of the decode budget's cost model: the densest encodings stay under
//! `MAX_COST_PER_BODY_BYTE` (so frames `may_exceed` passes over cannot go over budget), and a dry
//! run charges exactly what the real decode charges.

use bytes::Bytes;

use super::spent;
use crate::codec::budget::MAX_COST_PER_BODY_BYTE;
use crate::message::Frame;

fn frame(body: Vec<u8>) -> Frame {
    Frame {
        body: Bytes::from(body),
        attachments: vec![],
    }
}

/// `Reply(1, (item,) * n)` with `item` already encoded.
fn reply_of(item: &[u8], n: u32) -> Vec<u8> {
    let mut body = vec![0x93, 0x02, 0x01, 0xdd];
    body.extend_from_slice(&(n + 1).to_be_bytes());
    body.push(0x0b);
    for _ in 0..n {
        body.extend_from_slice(item);
    }
    body
}

fn cost_per_byte(body: Vec<u8>) -> f64 {
    let len = body.len();
    let (dry, real) = spent(&frame(body)).expect("decodes");
    assert_eq!(dry, real, "a dry run charges what the real decode charges");
    real as f64 / len as f64
}

#[test]
fn dense_values_cost_at_most_the_maximum_per_byte() {
    let items: [(&str, &[u8]); 17] = [
        ("nil", &[0xc0]),
        ("uncached int", &[0xe0]),
        ("int 16", &[0xcd, 0x12, 0x34]),
        ("empty str", &[0xa0]),
        ("non-ASCII str", &[0xa2, 0xc3, 0xa9]),
        ("empty bytes", &[0xc4, 0x00]),
        ("empty bytearray", &[0x92, 0x10, 0xc4, 0x00]),
        ("empty tuple", &[0x91, 0x0b]),
        ("empty list", &[0x91, 0x0d]),
        ("empty set", &[0x91, 0x0e]),
        ("set of nil", &[0x92, 0x0e, 0xc0]),
        ("empty frozenset", &[0x91, 0x0c]),
        ("empty dict", &[0x91, 0x0f]),
        ("slice", &[0x94, 0x0a, 0xc0, 0xc0, 0xc0]),
        ("reference", &[0x93, 0x11, 0x00, 0x00]),
        (
            "reference with a type description",
            &[0x94, 0x11, 0x00, 0x00, 0x95, 0xa0, 0xa0, 0x90, 0x90, 0x90],
        ),
        ("returned", &[0x92, 0x12, 0x00]),
    ];
    for (name, item) in items {
        let per_byte = cost_per_byte(reply_of(item, 2000));
        assert!(
            per_byte <= MAX_COST_PER_BODY_BYTE as f64,
            "{name} costs {per_byte:.1} per byte"
        );
    }
}

#[test]
fn dense_names_and_pairs_cost_at_most_the_maximum_per_byte() {
    let n: u16 = 2000;
    // Call with n keyword arguments `"": None`.
    let mut keywords = vec![0x95, 0x01, 0x01, 0x01, 0x00, 0x93, 0x05, 0x90, 0xde];
    keywords.extend_from_slice(&n.to_be_bytes());
    for _ in 0..n {
        keywords.extend_from_slice(&[0xa0, 0xc0]);
    }
    // A reference whose type description has n empty dunder names.
    let mut dunders = vec![
        0x93, 0x02, 0x01, 0x94, 0x11, 0x00, 0x00, 0x95, 0xa0, 0xa0, 0xdc,
    ];
    dunders.extend_from_slice(&n.to_be_bytes());
    dunders.extend(std::iter::repeat_n(0xa0, n.into()));
    dunders.extend_from_slice(&[0x90, 0x90]);
    // Release of n pairs.
    let mut release = vec![0x92, 0x04, 0xdc];
    release.extend_from_slice(&n.to_be_bytes());
    for _ in 0..n {
        release.extend_from_slice(&[0x92, 0x00, 0x00]);
    }
    for (name, body) in [
        ("keywords", keywords),
        ("dunders", dunders),
        ("release", release),
    ] {
        let per_byte = cost_per_byte(body);
        assert!(
            per_byte <= MAX_COST_PER_BODY_BYTE as f64,
            "{name} costs {per_byte:.1} per byte"
        );
    }
}

#[test]
fn a_dry_run_charges_each_scalar_as_the_real_decode_does() {
    // Each width of int on both sides of CPython's small-int cache, floats of both widths, and
    // the scalars the dry run leaves to the full decode (64-bit ints, strings, bytes).
    let items: [&[u8]; 25] = [
        &[0xd9, 0x02, 0xc3, 0xa9],
        &[0xda, 0x00, 0x02, 0xc3, 0xa9],
        &[0xc5, 0x00, 0x01, 0x00],
        &[0x05],
        &[0xfb],
        &[0xfa],
        &[0xc0],
        &[0xc3],
        &[0xcc, 0xff],
        &[0xcd, 0x01, 0x00],
        &[0xcd, 0x01, 0x01],
        &[0xce, 0x00, 0x00, 0x00, 0x10],
        &[0xce, 0xff, 0xff, 0xff, 0xff],
        &[0xd0, 0xfb],
        &[0xd0, 0x80],
        &[0xd1, 0x01, 0x00],
        &[0xd1, 0x80, 0x00],
        &[0xd2, 0x00, 0x00, 0x01, 0x00],
        &[0xd2, 0x80, 0x00, 0x00, 0x00],
        &[0xd3, 0, 0, 0, 0, 0, 0, 0, 5],
        &[0xcf, 0, 0, 0, 1, 0, 0, 0, 0],
        &[0xca, 0x3f, 0x80, 0, 0],
        &[0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0],
        &[0xa3, b'a', 0xc3, 0xa9],
        &[0xc4, 0x01, 0x00],
    ];
    for item in items {
        let (dry, real) = spent(&frame(reply_of(item, 10))).expect("decodes");
        assert_eq!(dry, real, "{item:02x?}");
    }
    // A truncated float or int inside a sequence is the same error either way.
    for truncated in [
        &[0xcb, 0x3f][..],
        &[0xce, 0x00],
        &[0xd1],
        &[0xa2, b'a'],
        &[0xc5, 0x00],
    ] {
        let mut body = reply_of(&[0xc0], 3);
        body.extend_from_slice(truncated);
        body[7] = 5; // one more item than the nils
        assert_eq!(
            spent(&frame(body)),
            Err(crate::codec::DecodeError::Truncated)
        );
    }
}

#[test]
fn plain_numbers_and_text_cost_less_than_the_factor() {
    // The shapes docs/protocol.md promises are never refused, whatever their size.
    let factor = crate::limits::DECODE_BUDGET_FACTOR as f64;
    let items: [(&str, &[u8]); 4] = [
        ("float", &[0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]),
        ("int of 65536 and more", &[0xce, 0x00, 0x01, 0x00, 0x00]),
        ("five-letter str", &[0xa5, b'a', b'b', b'c', b'd', b'e']),
        ("bytes of 3", &[0xc4, 0x03, 0x00, 0x00, 0x00]),
    ];
    for (name, item) in items {
        let per_byte = cost_per_byte(reply_of(item, 2000));
        assert!(per_byte < factor, "{name} costs {per_byte:.1} per byte");
    }
}

#[test]
fn a_dry_run_finds_what_the_real_decode_finds_in_a_hello() {
    // Found by the fuzzer: `[0, {5: 0}]`, a Hello serde refuses, passed a dry run that skipped
    // serde.
    let frame = frame(vec![0x92, 0x00, 0x81, 0x05, 0x00]);
    let limits = crate::limits::Limits::default();
    let dry = super::Reader::new(&frame, &limits, true).run().map(drop);
    let real = super::Reader::new(&frame, &limits, false).run().map(drop);
    assert!(real.is_err());
    assert_eq!(dry, real);
}
