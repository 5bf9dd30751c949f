//! The dry run: decoding that makes every check and charge of the real decode (UTF-8 aside)
//! but keeps nothing, so a large frame over its budget is refused before anything is allocated.
//! Plain scalars, the bulk of large sequences, are passed over without being built.

use super::{Reader, Result};
use crate::codec::budget;
#[cfg(fuzzing)]
use crate::codec::DecodeError;
#[cfg(fuzzing)]
use crate::limits::Limits;
#[cfg(fuzzing)]
use crate::message::Frame;

/// Under the fuzzer, every frame is also decoded dry, and the dry run must agree with the real
/// decode: the same error, or the same charges. (A dry run does not check UTF-8, so where the
/// real decode stops at a bad string, the dry run may go on to succeed or to fail later.)
#[cfg(fuzzing)]
pub(super) fn check(frame: &Frame, limits: &Limits) {
    let mut dry_reader = Reader::new(frame, limits, true);
    let dry = dry_reader.run();
    let mut real_reader = Reader::new(frame, limits, false);
    let real = real_reader.run();
    match (dry, real) {
        (Ok(_), Ok(_)) => assert_eq!(
            dry_reader.budget.spent(),
            real_reader.budget.spent(),
            "dry and real charges differ"
        ),
        (_, Err(DecodeError::InvalidUtf8)) => {}
        (Err(d), Err(r)) => assert_eq!(d, r, "dry and real errors differ"),
        (d, r) => panic!("dry run {:?}, real decode {:?}", d.err(), r.err()),
    }
}

impl Reader<'_> {
    /// A vector for `n` items (charged by the caller), or an empty one on a dry run.
    #[inline]
    pub(super) fn vec<T>(&self, n: usize) -> Vec<T> {
        if self.dry {
            Vec::new()
        } else {
            Vec::with_capacity(n)
        }
    }

    /// Keep `item` in `out`, unless this is a dry run.
    #[inline]
    pub(super) fn keep<T>(&self, out: &mut Vec<T>, item: T) {
        if !self.dry {
            out.push(item);
        }
    }

    /// On a dry run, pass over one plain scalar (nil, a bool, a float, an int of up to 32 bits,
    /// a string, inline bytes) charging exactly what `value` charges for it, without building
    /// it: the common items of large sequences. False, having read nothing, if the next value is
    /// anything else or is cut short (`value` then reads it, or reports it).
    #[inline]
    pub(super) fn dry_scalar(&mut self) -> Result<bool> {
        let rest = &self.buf[self.pos..];
        let Some(&m) = rest.first() else {
            return Ok(false);
        };
        let be = |n: usize| -> Option<u32> {
            let b = rest.get(1..1 + n)?;
            Some(b.iter().fold(0, |v, &b| v << 8 | u32::from(b)))
        };
        let (len, int) = match m {
            0x00..=0x7f | 0xc0 | 0xc2 | 0xc3 => (1, None),
            0xe0..=0xff => (1, Some(i64::from(m as i8))),
            0xca | 0xcb => {
                let len = if m == 0xca { 5 } else { 9 };
                if rest.len() < len {
                    return Ok(false);
                }
                self.budget.charge(budget::PY_SLOT + budget::PY_FLOAT)?;
                self.pos += len;
                return Ok(true);
            }
            0xcc => (2, be(1).map(i64::from)),
            0xcd => (3, be(2).map(i64::from)),
            0xce => (5, be(4).map(i64::from)),
            0xd0 => (2, be(1).map(|v| i64::from(v as u8 as i8))),
            0xd1 => (3, be(2).map(|v| i64::from(v as u16 as i16))),
            0xd2 => (5, be(4).map(|v| i64::from(v as i32))),
            0xa0..=0xbf | 0xd9 | 0xda | 0xdb | 0xc4 | 0xc5 | 0xc6 => {
                let (header, len) = match m {
                    0xa0..=0xbf => (1, Some(u32::from(m & 0x1f))),
                    0xd9 | 0xc4 => (2, be(1)),
                    0xda | 0xc5 => (3, be(2)),
                    _ => (5, be(4)),
                };
                let Some(raw) = len.and_then(|len| rest.get(header..header + len as usize)) else {
                    return Ok(false);
                };
                let cost = if !matches!(m, 0xc4..=0xc6) {
                    budget::string(raw)
                } else {
                    budget::PY_BYTES + raw.len() as u64
                };
                self.budget.charge(budget::PY_SLOT + cost)?;
                self.pos += header + raw.len();
                return Ok(true);
            }
            _ => return Ok(false),
        };
        if rest.len() < len {
            return Ok(false);
        }
        let cost = int.map_or(0, budget::int);
        self.budget.charge(budget::PY_SLOT + cost)?;
        self.pos += len;
        Ok(true)
    }
}
