//! Unit tests of the frame layout: round trips through partial reads and writes, limits, torn
//! streams.

use super::*;

fn frame(body: &[u8], atts: &[&[u8]]) -> Frame {
    Frame {
        body: Bytes::copy_from_slice(body),
        attachments: atts.iter().map(|a| Bytes::copy_from_slice(a)).collect(),
    }
}

fn encode(frames: &[Frame]) -> Vec<u8> {
    let mut w = StreamWriter::new(Vec::new());
    for f in frames {
        w.send(f).unwrap();
    }
    w.into_inner()
}

/// A writer accepting at most `chunk` bytes per call, to exercise partial writes.
struct Dribble {
    out: Vec<u8>,
    chunk: usize,
}

impl Write for Dribble {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(self.chunk);
        self.out.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut left = self.chunk;
        let mut n = 0;
        for b in bufs {
            let k = b.len().min(left);
            self.out.extend_from_slice(&b[..k]);
            left -= k;
            n += k;
            if left == 0 {
                break;
            }
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A reader returning at most `chunk` bytes per call.
struct Trickle<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.chunk).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn layout_is_as_documented() {
    let bytes = encode(&[frame(b"ab", &[b"xyz"])]);
    let mut expected = vec![2, 0, 0, 0, 1, 0, 0, 0, b'a', b'b'];
    expected.extend_from_slice(&3u64.to_le_bytes());
    expected.extend_from_slice(b"xyz");
    assert_eq!(bytes, expected);
}

#[test]
fn round_trip_with_partial_writes_and_reads() {
    let frames = vec![
        frame(b"", &[]),
        frame(b"hello", &[]),
        frame(b"x", &[b"", b"attachment", &[7u8; 100_000]]),
        frame(&[1u8; 70_000], &[b"tail"]),
    ];
    for chunk in [1, 3, 7, 4096, 1 << 20] {
        let mut w = StreamWriter::new(Dribble {
            out: Vec::new(),
            chunk,
        });
        for f in &frames {
            w.send(f).unwrap();
        }
        let data = w.into_inner().out;
        assert_eq!(data, encode(&frames));
        let mut r = StreamReader::new(Trickle { data: &data, chunk });
        for f in &frames {
            assert_eq!(r.read_frame().unwrap().as_ref(), Some(f));
        }
        assert!(r.read_frame().unwrap().is_none());
    }
}

#[test]
fn a_batch_is_its_frames_in_order() {
    let frames = [frame(b"release", &[]), frame(b"reply", &[b"bulk", b""])];
    let mut w = StreamWriter::new(Dribble {
        out: Vec::new(),
        chunk: usize::MAX,
    });
    w.send_batch(&[&frames[0], &frames[1]]).unwrap();
    assert_eq!(w.into_inner().out, encode(&frames));
}

#[test]
fn many_attachments_beyond_iov_max() {
    let atts: Vec<Vec<u8>> = (0..3000u32).map(|i| i.to_le_bytes().to_vec()).collect();
    let refs: Vec<&[u8]> = atts.iter().map(|a| a.as_slice()).collect();
    let f = frame(b"many", &refs);
    let data = encode(std::slice::from_ref(&f));
    let mut r = StreamReader::new(&data[..]);
    assert_eq!(r.read_frame().unwrap(), Some(f));
}

#[test]
fn torn_everywhere() {
    let data = encode(&[frame(b"body", &[b"attachment"])]);
    for cut in 1..data.len() {
        let mut r = StreamReader::new(&data[..cut]);
        assert!(
            matches!(r.read_frame(), Err(TransportError::Torn)),
            "cut at {cut}"
        );
    }
    let mut r = StreamReader::new(&data[..0]);
    assert!(r.read_frame().unwrap().is_none());
}

#[test]
fn limits_are_checked_before_reading() {
    let limits = Limits {
        max_frame: 16,
        max_message: 100,
        ..Limits::default()
    };
    // A header claiming a 4 GiB body and nothing after it.
    let mut data = u32::MAX.to_le_bytes().to_vec();
    data.extend_from_slice(&0u32.to_le_bytes());
    let mut r = StreamReader::with_limits(&data[..], &limits);
    assert!(matches!(
        r.read_frame(),
        Err(TransportError::FrameTooLarge { len, max: 16 }) if len == u64::from(u32::MAX)
    ));
    // Too many attachments.
    let mut data = 0u32.to_le_bytes().to_vec();
    data.extend_from_slice(&(MAX_ATTACHMENTS + 1).to_le_bytes());
    let mut r = StreamReader::with_limits(&data[..], &limits);
    assert!(matches!(
        r.read_frame(),
        Err(TransportError::TooManyAttachments { .. })
    ));
    // An attachment claiming 1 TiB.
    let mut data = 1u32.to_le_bytes().to_vec();
    data.extend_from_slice(&1u32.to_le_bytes());
    data.push(b'x');
    data.extend_from_slice(&(1u64 << 40).to_le_bytes());
    let mut r = StreamReader::with_limits(&data[..], &limits);
    assert!(matches!(
        r.read_frame(),
        Err(TransportError::MessageTooLarge { max: 100, .. })
    ));
    // Within the default limits, a hostile attachment length is Torn, not an allocation
    // of the claimed size.
    let mut data = 1u32.to_le_bytes().to_vec();
    data.extend_from_slice(&1u32.to_le_bytes());
    data.push(b'x');
    data.extend_from_slice(&(1u64 << 39).to_le_bytes());
    data.extend_from_slice(b"a few bytes");
    let mut r = StreamReader::new(&data[..]);
    assert!(matches!(r.read_frame(), Err(TransportError::Torn)));
}

#[test]
fn check_limits_matches_reader() {
    let limits = Limits {
        max_frame: 4,
        max_message: 10,
        ..Limits::default()
    };
    assert!(check_limits(&frame(b"abcd", &[b"efghij"]), &limits).is_ok());
    assert!(matches!(
        check_limits(&frame(b"abcde", &[]), &limits),
        Err(TransportError::FrameTooLarge { len: 5, max: 4 })
    ));
    assert!(matches!(
        check_limits(&frame(b"abcd", &[b"efghijk"]), &limits),
        Err(TransportError::MessageTooLarge { len: 11, max: 10 })
    ));
}
