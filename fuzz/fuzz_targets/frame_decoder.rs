//! FrameDecoder fed an arbitrary byte stream in arbitrary pieces, with a small frame limit.
//!
//! Input layout:
//!
//! ```text
//! byte 0          max frame = byte * 16 (0 ..= 4080), small so that TooLarge is reached often
//! byte 1          n = byte % 16 piece sizes follow (0 means: the whole stream in one piece);
//!                 its top bit set: max frame = DEFAULT_MAX_FRAME instead, so a prefix can
//!                 declare a frame of 64 KiB or more, which the decoder assembles in an
//!                 allocation of its own (inputs are too short to finish one; the unit and
//!                 property tests in frame.rs finish them)
//! n bytes         piece sizes, used in turn; a size of 0 feeds an empty piece, then one byte
//! rest            the stream
//! ```
//!
//! Checked against a straightforward reference parse of the whole stream: the decoder never
//! panics, hands out exactly the frames the stream holds (each an exact slice of the stream, in
//! order, none above the limit), reports `buffered()` and `peek_prefix()` truthfully after every
//! step, and fails with the same error at the same frame whatever the split.

#![no_main]

use libfuzzer_sys::fuzz_target;
use zk_core::proto::{FrameDecoder, FrameError, DEFAULT_MAX_FRAME};

/// What the stream holds: its whole frames (as offset, length of payload) and how it ends.
fn reference(stream: &[u8], max: usize) -> (Vec<(usize, usize)>, Option<FrameError>) {
    let mut frames = Vec::new();
    let mut at = 0;
    while stream.len() - at >= 4 {
        let len = i32::from_be_bytes(stream[at..at + 4].try_into().unwrap());
        if len < 0 {
            return (frames, Some(FrameError::NegativeLength(len)));
        }
        let len = len as usize;
        if len > max {
            return (frames, Some(FrameError::TooLarge { len, max }));
        }
        if stream.len() - at - 4 < len {
            break;
        }
        frames.push((at + 4, len));
        at += 4 + len;
    }
    (frames, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&max_byte, rest)) = data.split_first() else {
        return;
    };
    let Some((&n, rest)) = rest.split_first() else {
        return;
    };
    let large = n & 0x80 != 0;
    let n = usize::from(n % 16).min(rest.len());
    let (sizes, stream) = rest.split_at(n);
    let max = if large {
        DEFAULT_MAX_FRAME
    } else {
        usize::from(max_byte) * 16
    };
    let (expected, expected_err) = reference(stream, max);

    let mut d = FrameDecoder::new(max);
    let mut fed = 0; // bytes of the stream handed to the decoder
    let mut consumed = 0; // bytes of the stream handed back as frames, prefixes included
    let mut got = 0; // frames handed back
    let mut step = 0;
    let err = 'feed: loop {
        let size = if sizes.is_empty() {
            stream.len()
        } else {
            let s = usize::from(sizes[step % sizes.len()]);
            if s == 0 {
                // An empty read must change nothing.
                d.extend(&[]);
                assert_eq!(d.buffered(), fed - consumed);
            }
            s.max(1)
        };
        step += 1;
        let piece = &stream[fed..(fed + size).min(stream.len())];
        d.extend(piece);
        fed += piece.len();

        loop {
            match d.next_frame() {
                Ok(Some(frame)) => {
                    let &(start, len) = expected
                        .get(got)
                        .unwrap_or_else(|| panic!("decoder handed out an extra frame #{got}"));
                    assert_eq!(start, consumed + 4, "frame #{got} starts out of step");
                    assert_eq!(frame.len(), len, "frame #{got} has the wrong length");
                    assert!(frame.len() <= max, "frame #{got} above the limit");
                    assert_eq!(
                        &frame[..],
                        &stream[start..start + len],
                        "frame #{got} bytes"
                    );
                    consumed = start + len;
                    got += 1;
                }
                Ok(None) => break,
                Err(e) => break 'feed Some(e),
            }
        }
        // Nothing handed out is still counted as buffered, nothing fed is lost, and the decoder
        // waits only for bytes that have not arrived.
        assert_eq!(d.buffered(), fed - consumed);
        let pending = &stream[consumed..fed];
        let prefix = pending.get(..4).map(|p| [p[0], p[1], p[2], p[3]]);
        assert_eq!(d.peek_prefix(), prefix);
        if let Some(p) = prefix {
            let len = i32::from_be_bytes(p);
            assert!(
                len >= 0 && len as usize <= max && pending.len() < 4 + len as usize,
                "decoder waits although a whole frame or a bad prefix is buffered"
            );
        }
        if fed == stream.len() {
            break None;
        }
    };

    assert_eq!(got, expected.len(), "frames handed out");
    assert_eq!(err, expected_err, "how the stream ends");
    if err.is_none() {
        // Everything after the last frame is still buffered, so the exact slices handed out plus
        // the buffer account for every byte fed.
        assert_eq!(consumed + d.buffered(), stream.len());
    }
});
