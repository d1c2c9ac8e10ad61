//! Jute, ZooKeeper's binary record format: big-endian integers, length-prefixed buffers, strings
//! and vectors, with a length of -1 meaning null (distinct from empty).
//!
//! Decoding reads from a [`Reader`] over a [`Bytes`] frame so that data buffers are handed out as
//! slices of the frame, never copied. Every length read from the wire is checked against the bytes
//! that remain *before* anything is allocated, so a hostile length costs nothing.
//!
//! Encoding writes into any [`BufMut`]; lengths are written as `i32`. A field too long for an
//! `i32` can only appear in a frame far above any frame limit, and [`super::frame`] refuses those
//! before they reach a socket.

use bytes::{Buf, BufMut, Bytes};

use super::DecodeError;

/// A cursor over one frame's payload. Reads consume from the front.
#[derive(Debug, Clone)]
pub struct Reader {
    buf: Bytes,
    /// The length of the whole payload this reader started with.
    frame_len: usize,
}

impl Reader {
    /// Wraps a frame payload (without its length prefix).
    pub fn new(buf: Bytes) -> Self {
        Reader {
            frame_len: buf.len(),
            buf,
        }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// The length of the whole payload, read or not: what a slice of it keeps alive.
    pub(crate) fn frame_len(&self) -> usize {
        self.frame_len
    }

    /// The bytes not yet read, without reading them.
    pub(crate) fn unread(&self) -> &[u8] {
        &self.buf
    }

    /// Reads the next `n` bytes as a slice of the frame, without copying.
    ///
    /// Errors with [`DecodeError::Truncated`] when fewer remain.
    pub(crate) fn take(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        self.need(n)?;
        Ok(self.buf.split_to(n))
    }

    /// Ensures `n` more bytes are available.
    ///
    /// Errors with [`DecodeError::Truncated`] when fewer remain.
    fn need(&self, n: usize) -> Result<(), DecodeError> {
        if self.buf.len() < n {
            Err(DecodeError::Truncated {
                needed: n,
                remaining: self.buf.len(),
            })
        } else {
            Ok(())
        }
    }

    /// Reads the next `N` bytes as one array: a fixed-size record checked for length once
    /// instead of field by field.
    ///
    /// Errors with [`DecodeError::Truncated`] when fewer than `N` bytes remain.
    pub(crate) fn read_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        self.need(N)?;
        let mut out = [0u8; N];
        self.buf.copy_to_slice(&mut out);
        Ok(out)
    }

    /// Reads a jute `boolean`: any non-zero byte is true, as the Java server reads it.
    ///
    /// Errors with [`DecodeError::Truncated`] at the end of the input.
    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        self.need(1)?;
        Ok(self.buf.get_u8() != 0)
    }

    /// Reads a jute `int` (big-endian i32).
    ///
    /// Errors with [`DecodeError::Truncated`] when fewer than 4 bytes remain.
    pub fn read_i32(&mut self) -> Result<i32, DecodeError> {
        self.need(4)?;
        Ok(self.buf.get_i32())
    }

    /// Reads a jute `long` (big-endian i64).
    ///
    /// Errors with [`DecodeError::Truncated`] when fewer than 8 bytes remain.
    pub fn read_i64(&mut self) -> Result<i64, DecodeError> {
        self.need(8)?;
        Ok(self.buf.get_i64())
    }

    /// Reads a length prefix: `None` for -1 (null), the length otherwise.
    ///
    /// Errors with [`DecodeError::NegativeLength`] below -1 and [`DecodeError::Truncated`] when the
    /// promised bytes (`len * min_element_size`) are not all there, so no caller ever allocates for
    /// data that does not exist.
    fn read_len(&mut self, min_element_size: usize) -> Result<Option<usize>, DecodeError> {
        let len = self.read_i32()?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 {
            return Err(DecodeError::NegativeLength(len));
        }
        let len = len as usize;
        // `len` fits in 31 bits and `min_element_size` is a small constant, so this cannot overflow
        // a 64-bit usize; saturate anyway so a 32-bit target stays correct.
        self.need(len.saturating_mul(min_element_size))?;
        Ok(Some(len))
    }

    /// Reads a jute `buffer` without copying: `None` when the wire says null (-1).
    ///
    /// Errors with [`DecodeError::NegativeLength`] or [`DecodeError::Truncated`].
    pub fn read_buffer(&mut self) -> Result<Option<Bytes>, DecodeError> {
        match self.read_len(1)? {
            None => Ok(None),
            Some(n) => Ok(Some(self.buf.split_to(n))),
        }
    }

    /// Reads a jute `buffer` that must not be null.
    ///
    /// Errors with [`DecodeError::UnexpectedNull`] on -1, besides the errors of [`Self::read_buffer`].
    pub fn read_buffer_non_null(&mut self, field: &'static str) -> Result<Bytes, DecodeError> {
        self.read_buffer()?
            .ok_or(DecodeError::UnexpectedNull(field))
    }

    /// Reads a jute `ustring`: `None` for null.
    ///
    /// Errors with [`DecodeError::InvalidUtf8`] when the bytes are not UTF-8, besides the length
    /// errors of [`Self::read_buffer`].
    pub fn read_ustring(&mut self) -> Result<Option<String>, DecodeError> {
        match self.read_len(1)? {
            None => Ok(None),
            Some(n) => {
                // Borrow the bytes and advance, rather than split off a `Bytes` (two atomic
                // reference-count updates per string, 50,000 times for a large getChildren).
                let raw = &self.buf[..n];
                let s = match std::str::from_utf8(raw) {
                    Ok(s) => s.to_owned(),
                    // Java writes characters outside the BMP as two 3-byte surrogates (CESU-8,
                    // PROTOCOL.md §1); accept that too rather than failing a whole reply.
                    Err(_) => decode_cesu8(raw).ok_or(DecodeError::InvalidUtf8)?,
                };
                self.buf.advance(n);
                Ok(Some(s))
            }
        }
    }

    /// Reads a `ustring` that must not be null (paths, schemes, ids).
    ///
    /// Errors with [`DecodeError::UnexpectedNull`] on -1, besides the errors of [`Self::read_ustring`].
    pub fn read_string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        self.read_ustring()?
            .ok_or(DecodeError::UnexpectedNull(field))
    }

    /// Reads a non-null `vector<T>` whose elements are at least `min_element_size` bytes each.
    ///
    /// The count is checked against the bytes left before the vector is allocated. Errors with
    /// [`DecodeError::UnexpectedNull`] on -1, besides the length errors and whatever `element`
    /// returns.
    pub fn read_vec<T>(
        &mut self,
        field: &'static str,
        min_element_size: usize,
        mut element: impl FnMut(&mut Reader) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let n = self.read_vec_len(field, min_element_size)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(element(self)?);
        }
        Ok(out)
    }

    /// Reads the count of a non-null vector whose elements take at least `min_element_size` bytes
    /// each, for callers that read the elements themselves.
    ///
    /// Errors with [`DecodeError::UnexpectedNull`] (naming `field`) on -1 and as
    /// [`Self::read_buffer`] does, before anything is allocated for the elements.
    pub fn read_vec_len(
        &mut self,
        field: &'static str,
        min_element_size: usize,
    ) -> Result<usize, DecodeError> {
        self.read_len(min_element_size.max(1))?
            .ok_or(DecodeError::UnexpectedNull(field))
    }

    /// Reads a non-null `ustring` and appends it to `out`, without a `String` of its own.
    ///
    /// Errors as [`Self::read_string`] does.
    pub fn read_string_into(
        &mut self,
        field: &'static str,
        out: &mut String,
    ) -> Result<(), DecodeError> {
        let n = self
            .read_len(1)?
            .ok_or(DecodeError::UnexpectedNull(field))?;
        let raw = &self.buf[..n];
        match std::str::from_utf8(raw) {
            Ok(s) => out.push_str(s),
            Err(_) => out.push_str(&decode_cesu8(raw).ok_or(DecodeError::InvalidUtf8)?),
        }
        self.buf.advance(n);
        Ok(())
    }

    /// Reads a non-null `buffer` (or `ustring`, unchecked) and appends its bytes to `out`.
    ///
    /// Errors with [`DecodeError::UnexpectedNull`] (naming `field`) on -1, and as
    /// [`Self::read_buffer`] does.
    pub fn read_bytes_into(
        &mut self,
        field: &'static str,
        out: &mut Vec<u8>,
    ) -> Result<(), DecodeError> {
        let n = self
            .read_len(1)?
            .ok_or(DecodeError::UnexpectedNull(field))?;
        out.extend_from_slice(&self.buf[..n]);
        self.buf.advance(n);
        Ok(())
    }

    /// Reads a non-null `vector<ustring>`.
    ///
    /// Errors as [`Self::read_vec`] and [`Self::read_string`] do.
    pub fn read_string_vec(&mut self, field: &'static str) -> Result<Vec<String>, DecodeError> {
        // Every string costs at least its 4-byte length prefix.
        self.read_vec(field, 4, |r| r.read_string(field))
    }

    /// Ends decoding: errors with [`DecodeError::TrailingBytes`] if anything is left, because a
    /// frame that says more than its record is not the record we think it is.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.buf.len()))
        }
    }
}

/// Decodes CESU-8: UTF-8 in which a character above U+FFFF is written as its two UTF-16
/// surrogates, 3 bytes each. Returns `None` for anything else that is not UTF-8.
fn decode_cesu8(raw: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                // `good` was just validated.
                out.push_str(std::str::from_utf8(good).ok()?);
                // A surrogate pair: ED A0..AF xx ED B0..BF xx.
                let pair = bad.get(..6)?;
                let unit = |b: &[u8]| -> Option<u32> {
                    (b[0] == 0xed && b[1] & 0xc0 == 0x80 && b[2] & 0xc0 == 0x80)
                        .then(|| 0xd000 | (u32::from(b[1] & 0x3f) << 6) | u32::from(b[2] & 0x3f))
                };
                let (hi, lo) = (unit(&pair[..3])?, unit(&pair[3..])?);
                if !(0xd800..0xdc00).contains(&hi) || !(0xdc00..0xe000).contains(&lo) {
                    return None;
                }
                out.push(char::from_u32(
                    0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00),
                )?);
                rest = &bad[6..];
            }
        }
    }
    Some(out)
}

/// Writes a jute `boolean`.
pub fn put_bool(out: &mut impl BufMut, v: bool) {
    out.put_u8(u8::from(v));
}

/// Writes a jute `buffer`; `None` is written as null (-1).
pub fn put_buffer(out: &mut impl BufMut, v: Option<&[u8]>) {
    match v {
        None => out.put_i32(-1),
        Some(b) => {
            out.put_i32(b.len() as i32);
            out.put_slice(b);
        }
    }
}

/// Writes a jute `ustring`.
pub fn put_string(out: &mut impl BufMut, v: &str) {
    put_buffer(out, Some(v.as_bytes()));
}

/// Writes a nullable jute `ustring`.
pub fn put_ustring(out: &mut impl BufMut, v: Option<&str>) {
    put_buffer(out, v.map(str::as_bytes));
}

/// Writes a jute `vector<ustring>`.
pub fn put_string_vec<S: AsRef<str>>(out: &mut impl BufMut, v: &[S]) {
    out.put_i32(v.len() as i32);
    for s in v {
        put_string(out, s.as_ref());
    }
}

/// Bytes a `ustring` takes on the wire; used to size SetWatches batches and frames up front.
pub fn string_len(v: &str) -> usize {
    4 + v.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(b: &[u8]) -> Reader {
        Reader::new(Bytes::copy_from_slice(b))
    }

    #[test]
    fn null_and_empty_buffers_are_different() {
        let mut out = Vec::new();
        put_buffer(&mut out, None);
        put_buffer(&mut out, Some(b""));
        assert_eq!(out, [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        let mut r = Reader::new(Bytes::from(out));
        assert_eq!(r.read_buffer().unwrap(), None);
        assert_eq!(r.read_buffer().unwrap(), Some(Bytes::new()));
        r.finish().unwrap();
    }

    #[test]
    fn length_below_minus_one_is_rejected() {
        let mut r = reader(&[0xff, 0xff, 0xff, 0xfe]);
        assert_eq!(r.read_buffer(), Err(DecodeError::NegativeLength(-2)));
    }

    #[test]
    fn vector_count_is_checked_before_allocating() {
        // Claims 2^31-1 strings with 4 bytes of input: must fail without allocating.
        let mut r = reader(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        assert!(matches!(
            r.read_string_vec("children"),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn non_utf8_string_is_an_error() {
        let mut r = reader(&[0, 0, 0, 2, 0xc3, 0x28]);
        assert_eq!(r.read_ustring(), Err(DecodeError::InvalidUtf8));
    }

    #[test]
    fn java_surrogate_pairs_decode_as_one_character() {
        // U+1F600 as Java's writer sends it: two 3-byte surrogates.
        let mut r = reader(&[0, 0, 0, 7, b'a', 0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80]);
        assert_eq!(r.read_ustring().unwrap(), Some("a\u{1f600}".to_owned()));
        // A lone surrogate is still invalid.
        let mut r = reader(&[0, 0, 0, 3, 0xed, 0xa0, 0xbd]);
        assert_eq!(r.read_ustring(), Err(DecodeError::InvalidUtf8));
    }

    #[test]
    fn trailing_bytes_are_reported() {
        let mut r = reader(&[0, 0, 0, 1, 9]);
        assert_eq!(r.read_i32().unwrap(), 1);
        assert_eq!(r.finish(), Err(DecodeError::TrailingBytes(1)));
    }

    #[test]
    fn any_nonzero_byte_is_true() {
        assert!(reader(&[7]).read_bool().unwrap());
        assert!(!reader(&[0]).read_bool().unwrap());
    }
}
