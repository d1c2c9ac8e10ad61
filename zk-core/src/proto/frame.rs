//! Framing: every message in both directions is an `i32` length followed by that many bytes.
//!
//! [`FrameDecoder`] accepts the byte stream in whatever pieces the socket hands over (half a length
//! prefix, three frames at once) and yields whole frames as [`Bytes`] split off its buffer, so a
//! payload is copied once, from the read into the buffer, and never again (a frame of 64 KiB or
//! more moves the part that arrived before its length was known, at most one read, into an
//! allocation of its own). [`encode_frame`] writes one frame, length included, into a caller's
//! buffer and refuses frames above a limit before any byte is sent.

use bytes::{Buf, Bytes, BytesMut};

use super::{EncodeError, FrameError};

/// ZooKeeper's default `jute.maxbuffer` (0xfffff): the largest frame a default server accepts.
pub const SERVER_MAX_FRAME: usize = 0xfffff;

/// Default limit for frames this client accepts: 1 MiB plus 64 KiB of headroom, so a reply carrying
/// a full-size node (data, Stat and headers) still fits.
pub const DEFAULT_MAX_FRAME: usize = 1024 * 1024 + 64 * 1024;

/// Frames at least this long (length prefix included) are assembled in an allocation of their
/// own, sized for the frame.
///
/// A frame is handed out as a slice of the decoder's buffer, and every slice keeps its whole
/// allocation alive. Assembled in the shared buffer, a 1 MB reply would grow it to a megabyte for
/// good, and every small value read afterwards (a node's data a cache keeps) would keep that
/// megabyte alive. In an allocation of its own, a large frame keeps only itself alive, and the
/// shared buffer stays small.
const OWN_ALLOCATION_MIN: usize = 64 * 1024;

/// Reassembles frames from a byte stream.
///
/// A frame of 64 KiB or more is assembled in an allocation of its own, however the stream is
/// split (its bytes are copied there once; the bytes after it go to the shared buffer), so what
/// is sliced from it keeps only that frame alive, or at most twice its size when the allocation
/// is reused; smaller frames share the decoder's buffer. The last large frame's allocation is
/// kept and reused for the next one once nothing sliced from it is alive: a stream of 1 MB
/// replies allocates, and faults in, one megabyte, not one per reply.
///
/// After an error the stream is out of step and cannot be trusted again; the owner should drop
/// the connection (and this decoder with it).
#[derive(Debug)]
pub struct FrameDecoder {
    /// Received bytes not yet handed out, from a frame's first byte; shared by small frames.
    buf: BytesMut,
    max_frame: usize,
    /// The large frame being assembled (length prefix included), filled up to its length before
    /// `buf` takes the bytes that follow it.
    large: Option<Large>,
    /// The last large frame's allocation, emptied, for the next one.
    spare: Option<BytesMut>,
}

/// A large frame being assembled in an allocation of its own.
#[derive(Debug)]
struct Large {
    bytes: BytesMut,
    /// Its length, prefix included.
    whole: usize,
}

impl FrameDecoder {
    /// A decoder that accepts frame payloads of at most `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        FrameDecoder {
            buf: BytesMut::new(),
            max_frame,
            large: None,
            spare: None,
        }
    }

    /// Appends bytes read from the stream.
    ///
    /// Call [`next_frame`](Self::next_frame) until it returns `None` after each read, and read at
    /// most 64 KiB at a time (as the client does): the shared buffer then never holds more than
    /// a read, so no frame sliced from it keeps more alive. A whole stream handed over at once is
    /// decoded correctly, but its small frames share one allocation the size of the stream.
    pub fn extend(&mut self, data: &[u8]) {
        let rest = match &mut self.large {
            Some(large) => {
                let (into, rest) = data.split_at((large.whole - large.bytes.len()).min(data.len()));
                large.bytes.extend_from_slice(into);
                rest
            }
            None => data,
        };
        self.buf.extend_from_slice(rest);
    }

    /// Bytes received but not yet handed out as frames.
    pub fn buffered(&self) -> usize {
        self.large.as_ref().map_or(0, |l| l.bytes.len()) + self.buf.len()
    }

    /// The first four buffered bytes, if that many arrived; used by servers to tell a four-letter
    /// word from a length prefix on a fresh connection.
    pub fn peek_prefix(&self) -> Option<[u8; 4]> {
        let front = match &self.large {
            Some(large) => &large.bytes,
            None => &self.buf,
        };
        front.get(..4).map(|p| [p[0], p[1], p[2], p[3]])
    }

    /// Hands out the next whole frame payload (without its length), or `None` until more bytes
    /// arrive.
    ///
    /// Errors with [`FrameError::NegativeLength`] or [`FrameError::TooLarge`] as soon as the length
    /// prefix is readable; the payload of a refused frame is never buffered beyond what arrived.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        if let Some(large) = &mut self.large {
            if large.bytes.len() < large.whole {
                return Ok(None);
            }
            let mut bytes = std::mem::take(&mut large.bytes);
            self.large = None;
            bytes.advance(4);
            let frame = bytes.split().freeze();
            self.spare = Some(bytes);
            return Ok(Some(frame));
        }
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
        let whole = 4 + len;
        if whole >= OWN_ALLOCATION_MIN {
            // The frame's bytes so far (one read's worth when it arrives in pieces) move to its
            // own allocation; `extend` fills it from now on.
            let mut bytes = self.allocation_for(whole);
            let here = whole.min(self.buf.len());
            bytes.extend_from_slice(&self.buf[..here]);
            self.buf.advance(here);
            self.large = Some(Large { bytes, whole });
            return self.next_frame();
        }
        if self.buf.len() < whole {
            // Reserve once for the whole frame: the length is bounded by `max_frame`.
            self.buf.reserve(whole - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(4);
        Ok(Some(self.buf.split_to(len).freeze()))
    }

    /// An empty buffer that holds `whole` bytes: the spare allocation if nothing sliced from it
    /// is alive and it is at most twice the size (a frame keeps its whole allocation alive), a
    /// new one of exactly that size otherwise.
    fn allocation_for(&mut self, whole: usize) -> BytesMut {
        self.spare
            .take()
            // With no room of its own left, `try_reclaim` takes the allocation back only if
            // nothing else refers to it; with room, it would hand that room out while a frame
            // before it may still be alive. Also, it then moves the handle back to the start of
            // the allocation, so `capacity()` below is the whole allocation's size, not what is
            // left of it.
            .filter(|spare| spare.capacity() == 0)
            .and_then(|mut spare| {
                let fits = spare.try_reclaim(whole) && spare.capacity() <= whole.saturating_mul(2);
                fits.then_some(spare)
            })
            .unwrap_or_else(|| BytesMut::with_capacity(whole))
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

    /// Feeds `stream` in reads of 64 KiB, as the client does, and returns the frames handed out.
    fn feed_in_reads(d: &mut FrameDecoder, stream: &[u8]) -> Vec<Bytes> {
        let mut out = Vec::new();
        for piece in stream.chunks(64 * 1024) {
            d.extend(piece);
            while let Some(f) = d.next_frame().expect("frames") {
                out.push(f);
            }
        }
        out
    }

    fn frame_of(len: usize, fill: u8) -> Vec<u8> {
        let mut f = (len as i32).to_be_bytes().to_vec();
        f.resize(4 + len, fill);
        f
    }

    #[test]
    fn a_large_frame_has_an_allocation_of_its_own_and_leaves_the_buffer_small() {
        let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME);
        // A 1 MB reply, then small ones: the buffer they share did not grow to a megabyte.
        let mut stream = frame_of(1_000_000, 1);
        for _ in 0..100 {
            stream.extend(frame_of(10, 2));
        }
        let frames = feed_in_reads(&mut d, &stream);
        assert_eq!(frames.len(), 101);
        assert_eq!(frames[0].len(), 1_000_000);
        assert!(frames[0].iter().all(|&b| b == 1));
        assert!(
            d.buf.capacity() < OWN_ALLOCATION_MIN,
            "the buffer after a large frame holds {} bytes",
            d.buf.capacity()
        );
        // The small frames that came with the large one's last read are not in its allocation.
        let large = frames[0].as_ptr_range();
        for small in &frames[1..] {
            assert!(
                !large.contains(&small.as_ptr()),
                "a small frame in a large one's allocation"
            );
        }
    }

    #[test]
    fn a_large_frame_reuses_the_last_ones_allocation_once_it_is_free_and_not_too_large() {
        let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME);
        // How much of its allocation the last large frame left unused: none, for an allocation
        // made for it. (A pointer comparison cannot tell a reuse: the allocator may hand the same
        // block back.)
        let room = |d: &FrameDecoder| d.spare.as_ref().map_or(0, BytesMut::capacity);
        let first = feed_in_reads(&mut d, &frame_of(500_000, 1));
        // Still held: the next large frame gets another allocation.
        let second = feed_in_reads(&mut d, &frame_of(400_000, 2));
        assert_ne!(second[0].as_ptr(), first[0].as_ptr());
        assert_eq!(room(&d), 0);
        assert!(
            first[0].iter().all(|&b| b == 1),
            "the held frame was overwritten"
        );
        drop(second);
        // Free, and the next frame more than half its size: reused.
        let third = feed_in_reads(&mut d, &frame_of(300_000, 3));
        assert!(third[0].iter().all(|&b| b == 3));
        assert_eq!(room(&d), 100_000);
        assert!(
            first[0].iter().all(|&b| b == 1),
            "the held frame was overwritten"
        );
        // A frame that would fit in the room after the third, still held: a new allocation, not
        // one shared with the third (each would keep the other alive).
        let fourth = feed_in_reads(&mut d, &frame_of(90_000, 4));
        assert_eq!(room(&d), 0);
        assert!(third[0].iter().all(|&b| b == 3));
        drop((third, fourth));
        // Free, but the next frame under half its size: a new allocation, not a megabyte kept
        // alive by a frame of 400 KB.
        drop(feed_in_reads(&mut d, &frame_of(1_000_000, 5)));
        feed_in_reads(&mut d, &frame_of(400_000, 6));
        assert_eq!(room(&d), 0);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Frames small and large, around the own-allocation size, fed in pieces of any size up
        /// to a read's or all at once, come out whole and unchanged, and stay so while later
        /// frames reuse allocations (every other frame is held to the end).
        #[test]
        fn frames_of_any_size_in_any_pieces_come_out_unchanged(
            sizes in proptest::collection::vec(
                proptest::sample::select(vec![0usize, 10, 65_531, 65_532, 65_533, 100_000, 1_000_000]),
                1..8,
            ),
            cuts in proptest::collection::vec(1usize..=65_536, 1..64),
            all_at_once in proptest::bool::ANY,
        ) {
            let mut stream = Vec::new();
            for (i, &len) in sizes.iter().enumerate() {
                stream.extend(frame_of(len, i as u8 + 1));
            }
            let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME);
            let mut held = Vec::new();
            let mut seen = 0;
            let mut check = |f: Bytes, held: &mut Vec<(usize, Bytes)>| {
                let i = seen;
                seen += 1;
                assert_eq!(f.len(), sizes[i], "frame {i}'s length");
                assert!(f.iter().all(|&b| b == i as u8 + 1), "frame {i}'s bytes");
                if i % 2 == 0 {
                    held.push((i, f));
                }
            };
            let mut at = 0;
            // Where the frame not yet handed out starts in `stream`.
            let mut next_start = 0;
            let mut cut = cuts.iter().cycle();
            while at < stream.len() {
                let n = if all_at_once { stream.len() } else { *cut.next().unwrap_or(&1) };
                let end = (at + n).min(stream.len());
                d.extend(&stream[at..end]);
                at = end;
                while let Some(f) = d.next_frame().expect("frames") {
                    next_start += 4 + f.len();
                    check(f, &mut held);
                }
                // What is buffered is exactly what arrived after the last frame handed out, and
                // its first four bytes are the next frame's length.
                proptest::prop_assert_eq!(d.buffered(), at - next_start);
                let prefix = stream.get(next_start..next_start + 4).filter(|_| at >= next_start + 4);
                proptest::prop_assert_eq!(d.peek_prefix().map(Vec::from), prefix.map(Vec::from));
            }
            proptest::prop_assert_eq!(seen, sizes.len());
            proptest::prop_assert_eq!(d.buffered(), 0);
            for (i, f) in held {
                proptest::prop_assert!(f.iter().all(|&b| b == i as u8 + 1), "held frame {} changed", i);
            }
        }
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
