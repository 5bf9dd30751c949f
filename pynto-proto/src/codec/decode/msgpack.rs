//! The msgpack layer of decoding: raw bytes, scalars, strings and container headers, each
//! length checked against the bytes left before anything is allocated, and skipping a whole
//! value without recursion.

use bytes::Bytes;

use super::{malformed, type_name, Reader, Result};
use crate::codec::budget;
use crate::codec::DecodeError;

impl<'a> Reader<'a> {
    // ----- raw bytes -------------------------------------------------------------------------

    #[inline]
    pub(super) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    #[inline]
    pub(super) fn byte(&mut self) -> Result<u8> {
        let b = *self.buf.get(self.pos).ok_or(DecodeError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    pub(super) fn peek(&self) -> Result<u8> {
        self.buf
            .get(self.pos)
            .copied()
            .ok_or(DecodeError::Truncated)
    }

    #[inline]
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(DecodeError::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    #[inline]
    pub(super) fn array_n<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    #[inline]
    pub(super) fn be16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array_n()?))
    }

    #[inline]
    pub(super) fn be32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array_n()?))
    }

    #[inline]
    pub(super) fn be64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array_n()?))
    }

    // ----- msgpack scalars -------------------------------------------------------------------

    /// An integer after its marker `m`, if `m` is an integer marker: `Some(Ok(i128))`.
    #[inline]
    pub(super) fn int_after(&mut self, m: u8) -> Option<Result<i128>> {
        let v = match m {
            0x00..=0x7f => Ok(i128::from(m)),
            0xe0..=0xff => Ok(i128::from(m as i8)),
            0xcc => self.byte().map(i128::from),
            0xcd => self.be16().map(i128::from),
            0xce => self.be32().map(i128::from),
            0xcf => self.be64().map(i128::from),
            0xd0 => self.byte().map(|b| i128::from(b as i8)),
            0xd1 => self.be16().map(|v| i128::from(v as i16)),
            0xd2 => self.be32().map(|v| i128::from(v as i32)),
            0xd3 => self.be64().map(|v| i128::from(v as i64)),
            _ => return None,
        };
        Some(v)
    }

    /// A non-negative integer of any msgpack int form, for a field named `what`.
    #[inline]
    pub(super) fn u64(&mut self, what: &str) -> Result<u64> {
        let m = self.byte()?;
        // Fast path: the positive fixint every small id and code uses.
        if m < 0x80 {
            return Ok(u64::from(m));
        }
        match self.int_after(m) {
            Some(v) => {
                let v = v?;
                u64::try_from(v)
                    .map_err(|_| DecodeError::BadInteger(format!("{what} is negative ({v})")))
            }
            None => Err(malformed(format!(
                "{what} should be an integer, found {}",
                type_name(m)
            ))),
        }
    }

    pub(super) fn u32(&mut self, what: &str) -> Result<u32> {
        let v = self.u64(what)?;
        u32::try_from(v)
            .map_err(|_| DecodeError::BadInteger(format!("{what} {v} does not fit in 32 bits")))
    }

    /// A small code (message, op, tag, operator). Returned as `u64` so unknown codes are reported
    /// exactly.
    #[inline]
    pub(super) fn code(&mut self, what: &str) -> Result<u64> {
        self.u64(what)
    }

    pub(super) fn float_after(&mut self, m: u8) -> Option<Result<f64>> {
        match m {
            0xcb => Some(self.be64().map(f64::from_bits)),
            0xca => Some(self.be32().map(|b| f64::from(f32::from_bits(b)))),
            _ => None,
        }
    }

    pub(super) fn f64(&mut self, what: &str) -> Result<f64> {
        let m = self.byte()?;
        match self.float_after(m) {
            Some(v) => v,
            None => Err(malformed(format!(
                "{what} should be a float, found {}",
                type_name(m)
            ))),
        }
    }

    /// The length of a string after its marker `m`, if `m` is a string marker.
    #[inline]
    pub(super) fn str_len_after(&mut self, m: u8) -> Option<Result<usize>> {
        Some(match m {
            0xa0..=0xbf => Ok(usize::from(m & 0x1f)),
            0xd9 => self.byte().map(usize::from),
            0xda => self.be16().map(usize::from),
            0xdb => self.be32().map(|n| n as usize),
            _ => return None,
        })
    }

    #[inline]
    pub(super) fn str_body(&mut self, len: usize) -> Result<String> {
        let raw = self.take(len)?;
        self.budget.charge(budget::string(raw))?;
        if self.dry {
            // UTF-8 is checked by the real decode; the dry run only finds what it would cost.
            return Ok(String::new());
        }
        match std::str::from_utf8(raw) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(DecodeError::InvalidUtf8),
        }
    }

    pub(super) fn string(&mut self, what: &str) -> Result<String> {
        let m = self.byte()?;
        match self.str_len_after(m) {
            Some(len) => {
                let len = len?;
                self.str_body(len)
            }
            None => Err(malformed(format!(
                "{what} should be a string, found {}",
                type_name(m)
            ))),
        }
    }

    /// The length of a byte string after its marker `m`, if `m` is a bin marker.
    #[inline]
    pub(super) fn bin_len_after(&mut self, m: u8) -> Option<Result<usize>> {
        Some(match m {
            0xc4 => self.byte().map(usize::from),
            0xc5 => self.be16().map(usize::from),
            0xc6 => self.be32().map(|n| n as usize),
            _ => return None,
        })
    }

    /// `len` bytes of the body as a zero-copy slice of it.
    #[inline]
    pub(super) fn bin_body(&mut self, len: usize) -> Result<Bytes> {
        if len > self.remaining() {
            return Err(DecodeError::Truncated);
        }
        let start = self.pos;
        self.pos += len;
        if self.dry {
            return Ok(Bytes::new());
        }
        Ok(self.body.slice(start..start + len))
    }

    /// An array header; the length is checked against the bytes left (every element takes at
    /// least one byte), so callers may allocate `len` elements.
    #[inline]
    pub(super) fn array(&mut self, what: &str) -> Result<usize> {
        let m = self.byte()?;
        match self.array_len_after(m) {
            Some(n) => n,
            None => Err(malformed(format!(
                "{what} should be an array, found {}",
                type_name(m)
            ))),
        }
    }

    #[inline]
    pub(super) fn array_len_after(&mut self, m: u8) -> Option<Result<usize>> {
        let n = match m {
            0x90..=0x9f => Ok(usize::from(m & 0x0f)),
            0xdc => self.be16().map(usize::from),
            0xdd => self.be32().map(|n| n as usize),
            _ => return None,
        };
        Some(n.and_then(|n| self.fits(n, 1)))
    }

    /// A map header, checked like an array's (every entry takes at least two bytes).
    pub(super) fn map(&mut self, what: &str) -> Result<usize> {
        let m = self.byte()?;
        let n = match m {
            0x80..=0x8f => usize::from(m & 0x0f),
            0xde => usize::from(self.be16()?),
            0xdf => self.be32()? as usize,
            _ => {
                return Err(malformed(format!(
                    "{what} should be a map, found {}",
                    type_name(m)
                )))
            }
        };
        self.fits(n, 2)
    }

    /// `n` items of at least `each` bytes must fit in what is left.
    #[inline]
    pub(super) fn fits(&self, n: usize, each: usize) -> Result<usize> {
        match n.checked_mul(each) {
            Some(need) if need <= self.remaining() => Ok(n),
            _ => Err(DecodeError::Truncated),
        }
    }

    pub(super) fn strings(&mut self, what: &str) -> Result<Vec<String>> {
        let n = self.array(what)?;
        self.budget.charge_n(n, budget::STRING)?;
        let mut out = self.vec(n);
        for _ in 0..n {
            let s = self.string(what)?;
            self.keep(&mut out, s);
        }
        Ok(out)
    }

    /// Skip one msgpack value of any type without recursion, returning its bytes. Containers may
    /// nest at most `max_depth` deep.
    pub(super) fn skip_value(&mut self, max_depth: u32) -> Result<&'a [u8]> {
        let start = self.pos;
        // For each open container, how many of its elements are still to come.
        let mut open: Vec<u64> = Vec::new();
        loop {
            let m = self.byte()?;
            let (skip, children): (usize, u64) = match m {
                0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
                0x80..=0x8f => (0, 2 * u64::from(m & 0x0f)),
                0x90..=0x9f => (0, u64::from(m & 0x0f)),
                0xa0..=0xbf => (usize::from(m & 0x1f), 0),
                0xc1 => return Err(malformed("the reserved msgpack marker 0xc1")),
                0xc4 | 0xd9 => (usize::from(self.byte()?), 0),
                0xc5 | 0xda => (usize::from(self.be16()?), 0),
                0xc6 | 0xdb => (self.be32()? as usize, 0),
                0xc7 => (usize::from(self.byte()?) + 1, 0),
                0xc8 => (usize::from(self.be16()?) + 1, 0),
                0xc9 => ((self.be32()? as usize).saturating_add(1), 0),
                0xca => (4, 0),
                0xcb => (8, 0),
                0xcc | 0xd0 => (1, 0),
                0xcd | 0xd1 => (2, 0),
                0xce | 0xd2 => (4, 0),
                0xcf | 0xd3 => (8, 0),
                0xd4 => (2, 0),
                0xd5 => (3, 0),
                0xd6 => (5, 0),
                0xd7 => (9, 0),
                0xd8 => (17, 0),
                0xdc => (0, u64::from(self.be16()?)),
                0xdd => (0, u64::from(self.be32()?)),
                0xde => (0, 2 * u64::from(self.be16()?)),
                0xdf => (0, 2 * u64::from(self.be32()?)),
            };
            self.take(skip)?;
            if children > 0 {
                if children > self.remaining() as u64 {
                    return Err(DecodeError::Truncated);
                }
                if open.len() >= max_depth as usize {
                    return Err(DecodeError::TooDeep { max: max_depth });
                }
                open.push(children);
                continue;
            }
            // A complete element: close every container it completes.
            loop {
                match open.last_mut() {
                    None => return Ok(&self.buf[start..self.pos]),
                    Some(left) => {
                        *left -= 1;
                        if *left > 0 {
                            break;
                        }
                        open.pop();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader<'a>(body: &'a Bytes, max_depth: u32) -> Reader<'a> {
        Reader {
            buf: &body[..],
            pos: 0,
            body,
            attachments: &[],
            used: Vec::new(),
            max_depth,
            budget: budget::Budget::for_frame(body.len() as u64),
            dry: false,
        }
    }

    #[test]
    fn skip_value_finds_the_end_of_each_value() {
        // nil; [1, [2, 3], {}]; {"a": [ ]}; bin8 of 2; ext fixext1; then a trailing 0x07.
        let body = Bytes::from_static(&[
            0xc0, 0x93, 0x01, 0x92, 0x02, 0x03, 0x80, 0x81, 0xa1, b'a', 0x90, 0xc4, 0x02, 9, 9,
            0xd4, 1, 2, 0x07,
        ]);
        let mut r = reader(&body, 8);
        assert_eq!(r.skip_value(8).unwrap(), &[0xc0]);
        assert_eq!(
            r.skip_value(8).unwrap(),
            &[0x93, 0x01, 0x92, 0x02, 0x03, 0x80]
        );
        assert_eq!(r.skip_value(8).unwrap(), &[0x81, 0xa1, b'a', 0x90]);
        assert_eq!(r.skip_value(8).unwrap(), &[0xc4, 0x02, 9, 9]);
        assert_eq!(r.skip_value(8).unwrap(), &[0xd4, 1, 2]);
        assert_eq!(r.remaining(), 1);
    }

    #[test]
    fn skip_value_bounds_depth_and_length() {
        let deep = Bytes::from_static(&[0x91, 0x91, 0x91, 0xc0]);
        assert_eq!(
            reader(&deep, 8).skip_value(2),
            Err(DecodeError::TooDeep { max: 2 })
        );
        assert!(reader(&deep, 8).skip_value(3).is_ok());
        let huge = Bytes::from_static(&[0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0]);
        assert_eq!(reader(&huge, 8).skip_value(8), Err(DecodeError::Truncated));
        let reserved = Bytes::from_static(&[0x91, 0xc1]);
        assert!(matches!(
            reader(&reserved, 8).skip_value(8),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn integers_of_every_width() {
        let body = Bytes::from_static(&[
            0x05, 0xcc, 0xff, 0xcd, 0x01, 0x00, 0xce, 0, 1, 0, 0, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0,
            0xd0, 0x05, 0xd0, 0xff,
        ]);
        let mut r = reader(&body, 8);
        assert_eq!(r.u64("x"), Ok(5));
        assert_eq!(r.u64("x"), Ok(255));
        assert_eq!(r.u64("x"), Ok(256));
        assert_eq!(r.u64("x"), Ok(65536));
        assert_eq!(r.u64("x"), Ok(1 << 32));
        assert_eq!(r.u64("x"), Ok(5));
        assert!(matches!(r.u64("x"), Err(DecodeError::BadInteger(_))));
    }
}
