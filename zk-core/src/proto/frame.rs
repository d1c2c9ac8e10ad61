//! Framing: every message in both directions is an `i32` length followed by that many bytes.
//!
//! [`FrameDecoder`] accepts the byte stream in whatever pieces the socket hands over (half a length
//! prefix, three frames at once) and yields whole frames as [`Bytes`] split off its buffer, so a
//! payload is never copied after it arrives. [`encode_frame`] writes one frame, length included,
//! into a caller's buffer and refuses frames above a limit before any byte is sent.

use bytes::{Buf, Bytes, BytesMut};

use super::{EncodeError, FrameError};

/// ZooKeeper's default `jute.maxbuffer` (0xfffff): the largest frame a default server accepts.
pub const SERVER_MAX_FRAME: usize = 0xfffff;

/// Default limit for frames this client accepts: 1 MiB plus 64 KiB of headroom, so a reply carrying
/// a full-size node (data, Stat and headers) still fits.
pub const DEFAULT_MAX_FRAME: usize = 1024 * 1024 + 64 * 1024;

/// Reassembles frames from a byte stream.
///
/// After an error the stream is out of step and cannot be trusted again; the owner should drop
/// the connection (and this decoder with it).
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    max_frame: usize,
}

impl FrameDecoder {
    /// A decoder that accepts frame payloads of at most `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        FrameDecoder {
            buf: BytesMut::new(),
            max_frame,
        }
    }

    /// Appends bytes read from the stream.
    pub fn extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes received but not yet handed out as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The first four buffered bytes, if that many arrived; used by servers to tell a four-letter
    /// word from a length prefix on a fresh connection.
    pub fn peek_prefix(&self) -> Option<[u8; 4]> {
        self.buf.get(..4).map(|p| [p[0], p[1], p[2], p[3]])
    }

    /// Hands out the next whole frame payload (without its length), or `None` until more bytes
    /// arrive.
    ///
    /// Errors with [`FrameError::NegativeLength`] or [`FrameError::TooLarge`] as soon as the length
    /// prefix is readable; the payload of a refused frame is never buffered beyond what arrived.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        let Some(prefix) = self.peek_prefix() else {
            return Ok(None);
        };
        let len = i32::from_be_bytes(prefix);
        if len < 0 {
            return Err(FrameError::NegativeLength(len));
        }
        let len = len as usize;
        if len > self.max_frame {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_frame,
            });
        }
        if self.buf.len() < 4 + len {
            // Reserve once for the whole frame: the length is bounded by `max_frame`.
            self.buf.reserve(4 + len - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(4);
        Ok(Some(self.buf.split_to(len).freeze()))
    }
}

/// Writes one frame into `out`: a length prefix, then whatever `body` writes.
///
/// Errors with [`EncodeError::FrameTooLarge`] if the payload exceeds `max_frame`; `out` is then
/// left exactly as it was, so a refused request never leaves half a frame behind.
pub fn encode_frame(
    out: &mut Vec<u8>,
    max_frame: usize,
    body: impl FnOnce(&mut Vec<u8>),
) -> Result<(), EncodeError> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    body(out);
    let len = out.len() - start - 4;
    if len > max_frame || len > i32::MAX as usize {
        out.truncate(start);
        return Err(EncodeError::FrameTooLarge {
            len,
            max: max_frame,
        });
    }
    out[start..start + 4].copy_from_slice(&(len as i32).to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(stream: &[u8], max: usize) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut d = FrameDecoder::new(max);
        d.extend(stream);
        let mut out = Vec::new();
        while let Some(f) = d.next_frame()? {
            out.push(f.to_vec());
        }
        Ok(out)
    }

    #[test]
    fn three_frames_in_one_read() {
        let stream = [0, 0, 0, 1, 7, 0, 0, 0, 0, 0, 0, 0, 2, 8, 9];
        assert_eq!(
            frames(&stream, 16).unwrap(),
            vec![vec![7], vec![], vec![8, 9]]
        );
    }

    #[test]
    fn byte_at_a_time() {
        let stream = [0, 0, 0, 3, 1, 2, 3, 0, 0, 0, 1, 4];
        let mut d = FrameDecoder::new(16);
        let mut got = Vec::new();
        for b in stream {
            d.extend(&[b]);
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f.to_vec());
            }
        }
        assert_eq!(got, vec![vec![1, 2, 3], vec![4]]);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn oversize_and_negative_lengths_are_refused_from_the_prefix_alone() {
        assert_eq!(
            frames(&[0, 0, 0, 17], 16),
            Err(FrameError::TooLarge { len: 17, max: 16 })
        );
        assert_eq!(
            frames(&[0xff, 0xff, 0xff, 0xfe], 16),
            Err(FrameError::NegativeLength(-2))
        );
    }

    #[test]
    fn encode_refuses_oversize_and_leaves_buffer_untouched() {
        let mut out = vec![42];
        let err = encode_frame(&mut out, 2, |b| b.extend_from_slice(&[1, 2, 3])).unwrap_err();
        assert_eq!(err, EncodeError::FrameTooLarge { len: 3, max: 2 });
        assert_eq!(out, vec![42]);
        encode_frame(&mut out, 3, |b| b.extend_from_slice(&[1, 2, 3])).unwrap();
        assert_eq!(out, vec![42, 0, 0, 0, 3, 1, 2, 3]);
    }
}
