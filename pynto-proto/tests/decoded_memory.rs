//! Decoded memory stays within the decode budget: a counting allocator measures the peak bytes
//! held while decoding hostile frames (refused ones, and ones built to land just under the
//! budget) and ordinary large ones, and compares it with `decode_budget(frame bytes)`.
//!
//! Frames the decoder refuses for their size are found by a dry run that allocates nothing, so
//! refusing one costs next to no memory however large the frame.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use pynto_proto::{decode, decode_budget, DecodeError, Frame, Limits, DECODE_BUDGET_FACTOR};

/// The system allocator, counting the bytes currently held and their peak.
struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let held = HELD.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(held, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const MIB: usize = 1 << 20;

/// The body of `Call(root, *args)`: `n` positional arguments, each `item` already encoded.
fn call_of(item: &[u8], n: usize) -> Vec<u8> {
    let mut body = vec![0x95, 0x01, 0x01, 0x01, 0x00, 0x93, 0x05, 0xdd];
    body.extend_from_slice(&u32::try_from(n).expect("fits").to_be_bytes());
    body.reserve(item.len() * n + 1);
    for _ in 0..n {
        body.extend_from_slice(item);
    }
    body.push(0x80);
    body
}

/// The body of `Hello {features: ["" x n]}`: `n` one-byte empty strings, which serde decodes.
fn hello_of(n: u32) -> Vec<u8> {
    let mut body = vec![0x92, 0x00, 0x81, 0xa8];
    body.extend_from_slice(b"features");
    body.push(0xdd);
    body.extend_from_slice(&n.to_be_bytes());
    body.extend(std::iter::repeat_n(0xa0, n as usize));
    body
}

/// `(None,) * 14`: 16 bytes, cheap to read, 600 bytes of `Value`s.
const TUPLE_OF_NILS: [u8; 16] = [
    0x9f, 0x0b, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0,
];

fn frame(body: Vec<u8>, attachments: Vec<Bytes>) -> Frame {
    Frame {
        body: body.into(),
        attachments,
    }
}

/// Decode `frame`, returning the outcome and the peak bytes allocated meanwhile (above what was
/// held before), the decoded message included.
fn measure(frame: &Frame) -> (Result<(), DecodeError>, usize) {
    let before = HELD.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let outcome = decode(frame, &Limits::default()).map(drop);
    (outcome, PEAK.load(Ordering::Relaxed) - before)
}

// One test, so no other test's allocations run concurrently with a measurement.
#[test]
fn decoded_memory_stays_within_the_budget() {
    let mb = |n: usize| n as f64 / MIB as f64;
    let attachment = Bytes::from(vec![0xab; MIB]);
    let refused = [
        (
            "1 MiB attachment used 1,200 times",
            frame(call_of(&[0x92, 0x07, 0x00], 1200), vec![attachment.clone()]),
        ),
        (
            "16 MiB of nils",
            frame(call_of(&[0xc0], 16 * MIB - 13), vec![]),
        ),
        (
            "16 MiB of (None,) * 14",
            frame(call_of(&TUPLE_OF_NILS, MIB), vec![]),
        ),
        (
            "16 MiB of empty sets",
            frame(call_of(&[0x91, 0x0e], 8 * MIB), vec![]),
        ),
        (
            "Hello with 16 Mi empty feature names",
            frame(hello_of(16 << 20), vec![]),
        ),
    ];
    for (name, frame) in &refused {
        let (outcome, peak) = measure(frame);
        eprintln!(
            "{name}: frame {:.1} MiB, refused ({}), peak {:.3} MiB",
            mb(frame.len() as usize),
            outcome
                .as_ref()
                .map_or_else(|e| e.to_string(), |()| "no".into()),
            mb(peak)
        );
        assert!(outcome.is_err(), "{name} decoded");
        assert!(peak < MIB, "{name}: refusing it allocated {peak} bytes");
    }

    // Accepted: each within its budget, and the ordinary ones within the factor.
    let accepted = [
        (
            "512 KiB of (None,) * 14 (under the floor)",
            frame(call_of(&TUPLE_OF_NILS, 32 * 1024), vec![]),
            false,
        ),
        (
            "Hello with 300,000 empty feature names (under the floor)",
            frame(hello_of(300_000), vec![]),
            false,
        ),
        (
            "1 MiB attachment used once",
            frame(call_of(&[0x92, 0x07, 0x00], 1), vec![attachment]),
            true,
        ),
        (
            "2 million floats",
            frame(
                call_of(&[0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0], 2_000_000),
                vec![],
            ),
            true,
        ),
        (
            "1 million ints of 4 bytes",
            frame(call_of(&[0xce, 0x12, 0x34, 0x56, 0x78], 1_000_000), vec![]),
            true,
        ),
        (
            "100,000 strings of 100 bytes",
            frame(
                call_of(&[[0xd9, 100].as_slice(), &[b'x'; 100]].concat(), 100_000),
                vec![],
            ),
            true,
        ),
    ];
    for (name, frame, ordinary) in &accepted {
        let (outcome, peak) = measure(frame);
        let len = frame.len() as usize;
        eprintln!(
            "{name}: frame {:.1} MiB, decoded, peak {:.1} MiB ({:.1}x the frame)",
            mb(len),
            mb(peak),
            peak as f64 / len as f64
        );
        assert_eq!(outcome, Ok(()), "{name}");
        let budget = usize::try_from(decode_budget(len as u64)).expect("fits");
        assert!(
            peak <= budget,
            "{name}: peak {peak} over the budget {budget}"
        );
        if *ordinary {
            assert!(
                peak <= len * DECODE_BUDGET_FACTOR as usize,
                "{name}: peak {peak} is more than {DECODE_BUDGET_FACTOR}x the frame"
            );
        }
    }
}
