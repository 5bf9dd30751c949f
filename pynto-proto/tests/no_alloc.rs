//! Declared lengths are checked against the bytes that remain before anything is allocated: a
//! tiny frame that claims billions of elements costs no memory. A counting allocator proves it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use pynto_proto::{decode, DecodeError, Frame, Limits};

/// The system allocator, remembering the largest single request.
struct Counting;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn huge_declared_lengths_allocate_nothing_large() {
    let bodies: [&[u8]; 6] = [
        // Reply whose value is a tuple of 2^32-1 elements.
        &[0x93, 0x02, 0x01, 0xdd, 0xff, 0xff, 0xff, 0xff, 0x0b, 0xc0],
        // Release of 2^31 pairs.
        &[0x92, 0x04, 0xdd, 0x7f, 0xff, 0xff, 0xff, 0x92, 0x01, 0x01],
        // Call with 2^32-1 positional arguments.
        &[
            0x95, 0x01, 0x01, 0x02, 0x03, 0x93, 0x05, 0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0,
        ],
        // A string and a byte string of 4 GiB.
        &[0x93, 0x02, 0x01, 0xdb, 0xff, 0xff, 0xff, 0xff, 0x61],
        &[0x93, 0x02, 0x01, 0xc6, 0xff, 0xff, 0xff, 0xff, 0x61],
        // Hello with a map of 2^32-1 entries.
        &[0x92, 0x00, 0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0, 0xc0],
    ];
    let frames: Vec<Frame> = bodies
        .iter()
        .map(|b| Frame {
            body: Bytes::copy_from_slice(b),
            attachments: vec![],
        })
        .collect();
    LARGEST.store(0, Ordering::Relaxed);
    for frame in &frames {
        assert_eq!(
            decode(frame, &Limits::default()),
            Err(DecodeError::Truncated),
            "{:?}",
            frame.body
        );
    }
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(largest < 4096, "decoding allocated {largest} bytes at once");
}
