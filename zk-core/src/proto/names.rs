//! [`ChildNames`]: the child names of a getChildren reply, decoded without a `String` each.
//!
//! A node can have tens of thousands of children, and a `Vec<String>` costs an allocation (and
//! later a free) per name: most of the time of decoding a large getChildren reply. `ChildNames`
//! keeps where each name ends and slices every name from one text, so reading a name is a slice.
//! The ends are `u32`, half the memory of `usize` offsets: for 50,000 names that is 200 KB less to
//! allocate, fault in and free per reply (W5 in BENCHMARKS.md: a third fewer page faults, a fifth
//! less CPU on tokio).
//!
//! The text is one of two things. A small list (under 64 KiB on the wire, `SLICE_MIN`) is copied
//! into a `String` of its own, names back to back, so it never keeps the rest of its reply alive
//! (a cache holds thousands of them). A large one is not copied at all: its text is the reply
//! frame's own bytes, from the first name on, where each name is followed by the next one's length
//! prefix. Decoding then only walks the length prefixes and checks UTF-8 once, as a program
//! reading the frame in place would; copying 50,000 names one by one was most of W5's client CPU
//! (stop 35 in BENCHMARKS.md). That needs the list to be at least half its frame (a multiRead with
//! other large results gets the copy), every byte of every length prefix to be ASCII (names
//! shorter than 128 bytes, or of 256 to 383, ...: `ChildNames::slice_frame` says why), and
//! the whole to be UTF-8 (Java's CESU-8 gets the copy, transcoded). A large frame has an
//! allocation of its own (`FrameDecoder`), at most twice its size, so such a list keeps at most
//! about four times its own size alive, and usually about its own.

use std::fmt;
use std::hash::{Hash, Hasher};

use bytes::BufMut;
use bytestring::ByteString;

use super::jute::{put_string, Reader};
use super::DecodeError;

/// Lists at least this long on the wire (length prefixes included) are sliced from their frame
/// instead of copied. Below it a copy costs little, and a small list that kept its frame (or the
/// read buffer the frame shares) alive would hold many times its own size.
const SLICE_MIN: usize = 64 * 1024;

/// Child names (not full paths) in the order the server sent them, which is no defined order.
///
/// Read them with [`iter`](Self::iter), [`get`](Self::get), [`contains`](Self::contains), or a
/// `for` loop over `&names`; [`to_vec`](Self::to_vec) or `Vec::from` gives owned `String`s.
/// `names == ["a", "b"]` (an array, slice or `Vec` of `&str` or `String` on the right) holds when
/// it has the same names in the same order; two lists are equal when their names are.
///
/// A list of 64 KiB or more on the wire shares the reply's buffer instead of copying the names
/// out of it (a clone then copies only the end offsets, 4 bytes per name); it keeps at most about
/// four times its own size of that buffer alive, usually about its own. Smaller lists, and large
/// ones in much larger replies, hold a copy of their names.
#[derive(Clone, Default)]
pub struct ChildNames {
    /// The text every name is a slice of.
    text: Text,
    /// Where each name ends in the text; name `i` starts where name `i - 1` ends, plus the text's
    /// [`gap`](Text::gap). A list is smaller than its frame, whose length is an `i32`, so its ends
    /// fit (`end_offset` refuses any that would not).
    ends: Vec<End>,
}

/// What a [`ChildNames`]' names are sliced from.
#[derive(Clone)]
enum Text {
    /// The names back to back: small decoded lists, and lists built by `push` or `collect`.
    Packed(String),
    /// The reply frame's bytes from the first name's first byte on: each name is followed by the
    /// next one's four-byte length prefix (ASCII bytes, or the list would have been copied).
    Frame(ByteString),
}

/// The length prefix between two names of a [`Text::Frame`].
const FRAME_GAP: usize = 4;

impl Default for Text {
    fn default() -> Self {
        Text::Packed(String::new())
    }
}

impl Text {
    fn as_str(&self) -> &str {
        match self {
            Text::Packed(text) => text,
            Text::Frame(text) => text,
        }
    }

    /// The bytes between one name's end and the next name's start.
    fn gap(&self) -> usize {
        match self {
            Text::Packed(_) => 0,
            Text::Frame(_) => FRAME_GAP,
        }
    }
}

/// A name's end offset: four bytes, not a `usize`'s eight (the module documentation says why);
/// the assertion below keeps it so.
type End = u32;
const _: () = assert!(std::mem::size_of::<End>() == 4);

impl ChildNames {
    /// No names.
    pub fn new() -> Self {
        ChildNames::default()
    }

    /// The number of names.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are no names.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The name at `index`, or `None` past the end.
    pub fn get(&self, index: usize) -> Option<&str> {
        let end = *self.ends.get(index)? as usize;
        let start = match index {
            0 => 0,
            i => self.ends[i - 1] as usize + self.text.gap(),
        };
        self.text.as_str().get(start..end)
    }

    /// The names in order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            names: self,
            at: Cursor::over(self),
        }
    }

    /// Whether `name` is one of the names (a linear scan).
    pub fn contains(&self, name: &str) -> bool {
        self.iter().any(|n| n == name)
    }

    /// The names as owned strings.
    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_owned).collect()
    }

    /// Appends a name.
    ///
    /// # Panics
    ///
    /// If the names would total more than 4 GiB (`u32::MAX` bytes), which the compact offsets
    /// cannot address. No reply holds that much (a frame's length is an `i32`).
    pub fn push(&mut self, name: &str) {
        // A list sliced from its frame is packed into its own text once, on the first push.
        if let Text::Frame(_) = self.text {
            *self = self.iter().collect();
        }
        match &mut self.text {
            Text::Packed(text) => {
                // Checked before anything changes, so a caught panic leaves the list whole.
                let end = End::try_from(text.len() + name.len())
                    .expect("ChildNames holds at most u32::MAX bytes of names");
                text.push_str(name);
                self.ends.push(end);
            }
            Text::Frame(_) => {} // packed above
        }
    }

    /// Decodes a non-null `vector<ustring>`, accepting Java's CESU-8 as [`Reader::read_string`]
    /// does.
    ///
    /// Errors with [`DecodeError::UnexpectedNull`] (naming `field`) for a null vector or name,
    /// [`DecodeError::InvalidUtf8`] for a name that is not UTF-8 (or CESU-8) on its own,
    /// [`DecodeError::TooManyNameBytes`] past 4 GiB of names, and as [`Reader::read_string`]
    /// does for lengths.
    pub fn decode(r: &mut Reader, field: &'static str) -> Result<Self, DecodeError> {
        // Every name costs at least its 4-byte length prefix, so `n` is bounded by the input.
        let n = r.read_vec_len(field, 4)?;
        match Self::slice_frame(r, n) {
            Some(names) => Ok(names),
            None => Self::decode_copy(r, n, field),
        }
    }

    /// Decodes `n` names at the front of `r` into a text of their own, as [`Self::decode`] says.
    fn decode_copy(r: &mut Reader, n: usize, field: &'static str) -> Result<Self, DecodeError> {
        let names_start = r.clone();
        // Copy every name's bytes, then check UTF-8 once for all of them, several times cheaper
        // than a check per short name. The whole being UTF-8 does not make each name UTF-8 (a
        // character could straddle two names), hence the boundaries below.
        let mut bytes = Vec::with_capacity(r.remaining().saturating_sub(4 * n));
        let mut ends = Vec::with_capacity(n);
        for _ in 0..n {
            r.read_bytes_into(field, &mut bytes)?;
            ends.push(end_offset(bytes.len(), field)?);
        }
        // The guess above was all that remains of the frame, which may go on long after this
        // list (a multiRead holds many): give back what the names did not use, or every list
        // would keep its guess for as long as it lives.
        bytes.shrink_to_fit();
        let total = bytes.len();
        if let Ok(text) = String::from_utf8(bytes) {
            if ends.iter().all(|&end| text.is_char_boundary(end as usize)) {
                return Ok(ChildNames {
                    text: Text::Packed(text),
                    ends,
                });
            }
        }
        // Java's CESU-8 (or a bad name, to refuse): name by name. CESU-8 only gets shorter as
        // UTF-8, so `total` is enough.
        let mut slow = names_start;
        let mut text = String::with_capacity(total);
        let mut ends = Vec::with_capacity(n);
        for _ in 0..n {
            slow.read_string_into(field, &mut text)?;
            ends.push(end_offset(text.len(), field)?);
        }
        Ok(ChildNames {
            text: Text::Packed(text),
            ends,
        })
    }

    /// Decodes `n` names at the front of `r` as a slice of its frame (the module documentation
    /// says when), or `None`, leaving `r` as it was, for any list that must be copied: one under
    /// [`SLICE_MIN`] bytes or under half its frame, one with a length prefix holding a byte of
    /// 0x80 or more (a name of 128 to 255 bytes, 384 to 511, ...), one that is not UTF-8 as a
    /// whole (Java's CESU-8, or a bad name), or a malformed one (the copying decoder then says
    /// how).
    ///
    /// Why the prefixes must be ASCII: a name is then preceded and followed by an ASCII byte (or
    /// the text's start and end), and in valid UTF-8 an ASCII byte is a whole character, so each
    /// name is a whole string of the text, valid on its own. A prefix byte such as 0xC3 could
    /// instead complete a character with a bad name's first byte, and that name would be sliced
    /// in the middle of a character.
    fn slice_frame(r: &mut Reader, n: usize) -> Option<ChildNames> {
        let unread = r.unread();
        let worth_slicing =
            |list_len: usize| list_len >= SLICE_MIN && list_len * 2 >= r.frame_len();
        // The list is at most what is unread, so this rules it out before any walk.
        if !worth_slicing(unread.len()) {
            return None;
        }
        let mut ends = Vec::with_capacity(n);
        // Where the next length prefix starts in `unread`.
        let mut at = 0usize;
        for _ in 0..n {
            let prefix: [u8; 4] = unread.get(at..at + 4)?.try_into().ok()?;
            let len = u32::from_be_bytes(prefix);
            // Also refuses a null or negative length (its top bit).
            if len & 0x8080_8080 != 0 {
                return None;
            }
            let end = (at + 4).checked_add(usize::try_from(len).ok()?)?;
            if end > unread.len() {
                return None;
            }
            // Relative to the first name's first byte, where the text starts.
            ends.push(End::try_from(end - 4).ok()?);
            at = end;
        }
        if !worth_slicing(at) {
            return None;
        }
        let mut rest = r.clone();
        let list = rest.take(at).ok()?;
        let text = ByteString::try_from(list.slice(4..)).ok()?;
        *r = rest;
        Some(ChildNames {
            text: Text::Frame(text),
            ends,
        })
    }

    /// Encodes the names as a jute `vector<ustring>`.
    pub fn encode(&self, out: &mut impl BufMut) {
        out.put_i32(self.len() as i32);
        for name in self {
            put_string(out, name);
        }
    }
}

/// The end offset of a decoded name as the list keeps it.
///
/// Errors with [`DecodeError::TooManyNameBytes`] past 4 GiB of names, which only a caller's own
/// buffer can hold (a frame's length is an `i32`).
fn end_offset(len: usize, field: &'static str) -> Result<End, DecodeError> {
    End::try_from(len).map_err(|_| DecodeError::TooManyNameBytes(field))
}

impl PartialEq for ChildNames {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for ChildNames {}

impl Hash for ChildNames {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As a `[&str]` of the same names hashes, so equal lists hash alike whatever their text.
        state.write_usize(self.len());
        for name in self {
            name.hash(state);
        }
    }
}

impl fmt::Debug for ChildNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<S: AsRef<str>> FromIterator<S> for ChildNames {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut names = ChildNames::new();
        for name in iter {
            names.push(name.as_ref());
        }
        names
    }
}

impl From<Vec<String>> for ChildNames {
    fn from(names: Vec<String>) -> Self {
        names.into_iter().collect()
    }
}

impl From<ChildNames> for Vec<String> {
    fn from(names: ChildNames) -> Self {
        names.to_vec()
    }
}

impl<S: AsRef<str>> PartialEq<[S]> for ChildNames {
    fn eq(&self, other: &[S]) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a == b.as_ref())
    }
}

impl<S: AsRef<str>> PartialEq<Vec<S>> for ChildNames {
    fn eq(&self, other: &Vec<S>) -> bool {
        *self == other[..]
    }
}

impl<S: AsRef<str>, const N: usize> PartialEq<[S; N]> for ChildNames {
    fn eq(&self, other: &[S; N]) -> bool {
        *self == other[..]
    }
}

impl<'a> IntoIterator for &'a ChildNames {
    type Item = &'a str;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl IntoIterator for ChildNames {
    type Item = String;
    type IntoIter = IntoIter;

    fn into_iter(self) -> IntoIter {
        IntoIter {
            at: Cursor::over(&self),
            names: self,
        }
    }
}

/// The indices an iterator has not yet yielded, from both ends.
#[derive(Debug, Clone)]
struct Cursor {
    front: usize,
    back: usize,
}

impl Cursor {
    fn over(names: &ChildNames) -> Self {
        Cursor {
            front: 0,
            back: names.len(),
        }
    }

    fn next(&mut self) -> Option<usize> {
        (self.front < self.back).then(|| {
            self.front += 1;
            self.front - 1
        })
    }

    fn next_back(&mut self) -> Option<usize> {
        (self.front < self.back).then(|| {
            self.back -= 1;
            self.back
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.back - self.front;
        (n, Some(n))
    }
}

/// The names of a [`ChildNames`], in order, as string slices.
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    names: &'a ChildNames,
    at: Cursor,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        self.names.get(self.at.next()?)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.at.size_hint()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.names.get(self.at.next_back()?)
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// The names of a [`ChildNames`], in order, as owned strings (one allocation per name taken).
#[derive(Debug, Clone)]
pub struct IntoIter {
    names: ChildNames,
    at: Cursor,
}

impl Iterator for IntoIter {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        self.names.get(self.at.next()?).map(str::to_owned)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.at.size_hint()
    }
}

impl DoubleEndedIterator for IntoIter {
    fn next_back(&mut self) -> Option<String> {
        self.names.get(self.at.next_back()?).map(str::to_owned)
    }
}

impl ExactSizeIterator for IntoIter {}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};

    use super::*;

    fn decode(bytes: &[u8]) -> Result<ChildNames, DecodeError> {
        let mut r = Reader::new(Bytes::copy_from_slice(bytes));
        let names = ChildNames::decode(&mut r, "children")?;
        r.finish()?;
        Ok(names)
    }

    /// The capacity of a list's own text; panics if the list is a slice of its frame.
    fn packed_capacity(names: &ChildNames) -> usize {
        match &names.text {
            Text::Packed(text) => text.capacity(),
            Text::Frame(_) => panic!("expected a copied list, got a slice of the frame"),
        }
    }

    fn is_frame_slice(names: &ChildNames) -> bool {
        matches!(names.text, Text::Frame(_))
    }

    /// `count` names of the form `node-0000000042` (15 bytes each: 19 on the wire).
    fn numbered(count: usize) -> Vec<String> {
        (0..count).map(|i| format!("node-{i:010}")).collect()
    }

    fn encoded(names: &[String]) -> BytesMut {
        let mut out = BytesMut::new();
        ChildNames::from_iter(names).encode(&mut out);
        out
    }

    #[test]
    fn a_large_list_is_a_slice_of_its_frame_and_reads_the_same() {
        let names = numbered(10_000);
        let frame = encoded(&names);
        assert!(frame.len() > SLICE_MIN);
        let back = decode(&frame).expect("decodes");
        assert!(is_frame_slice(&back));
        assert_eq!(back, names);
        assert_eq!(back.len(), 10_000);
        assert_eq!(back.get(0), Some("node-0000000000"));
        assert_eq!(back.get(9_999), Some("node-0000009999"));
        assert_eq!(back.get(10_000), None);
        assert_eq!(back.iter().next_back(), Some("node-0000009999"));
        assert!(back.contains("node-0000004321"));
        assert_eq!(back.to_vec(), names);
        // Equal to the same names packed, and hashed alike.
        let packed: ChildNames = names.iter().collect();
        assert!(!is_frame_slice(&packed));
        assert_eq!(back, packed);
        let hash = |n: &ChildNames| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            n.hash(&mut h);
            h.finish()
        };
        assert_eq!(hash(&back), hash(&packed));
        // Re-encoding gives the frame back.
        let mut again = BytesMut::new();
        back.encode(&mut again);
        assert_eq!(again, frame);
    }

    #[test]
    fn a_large_list_before_a_stat_is_sliced_and_the_stat_is_left_to_read() {
        // getChildren2: the list, then the node's Stat (80 bytes).
        let names = numbered(10_000);
        let mut frame = encoded(&names).to_vec();
        frame.resize(frame.len() + 80, 7);
        let mut r = Reader::new(Bytes::from(frame));
        let back = ChildNames::decode(&mut r, "children").expect("decodes");
        assert!(is_frame_slice(&back));
        assert_eq!(back, names);
        assert_eq!(r.remaining(), 80);
    }

    #[test]
    fn a_large_list_after_more_than_its_size_is_copied() {
        // A multiRead whose first result (a node's data) is larger than the list after it: the
        // bytes already read count, as a slice would keep them alive too.
        let names = numbered(10_000);
        let list = encoded(&names).to_vec();
        let mut frame = vec![9; list.len() + 1];
        frame.extend_from_slice(&list);
        let mut r = Reader::new(Bytes::from(frame));
        r.take(list.len() + 1).expect("the data before the list");
        let back = ChildNames::decode(&mut r, "children").expect("decodes");
        assert!(!is_frame_slice(&back));
        assert_eq!(back, names);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn pushing_onto_a_frame_slice_packs_it_first() {
        let names = numbered(10_000);
        let mut back = decode(&encoded(&names)).expect("decodes");
        assert!(is_frame_slice(&back));
        back.push("last");
        assert!(!is_frame_slice(&back));
        assert_eq!(back.len(), 10_001);
        assert_eq!(back.get(9_999), Some("node-0000009999"));
        assert_eq!(back.get(10_000), Some("last"));
        let mut expected: ChildNames = names.iter().collect();
        expected.push("last");
        assert_eq!(back, expected);
    }

    #[test]
    fn a_small_list_or_one_in_a_much_larger_frame_is_copied() {
        // Just under the size, in a frame of more than that (a little of it after the list):
        // copied.
        let small = numbered(SLICE_MIN / 19 - 1);
        let mut frame = encoded(&small).to_vec();
        frame.resize(frame.len() + 100, 0);
        let mut r = Reader::new(Bytes::from(frame));
        let back = ChildNames::decode(&mut r, "children").expect("decodes");
        assert!(!is_frame_slice(&back));
        assert_eq!(back, small);
        assert_eq!(r.remaining(), 100);
        // Large, but followed by more than its own size of other results (a multiRead's): a
        // slice would keep all of them alive.
        let names = numbered(10_000);
        let mut frame = encoded(&names).to_vec();
        let list_len = frame.len() - 4;
        frame.resize(4 + 2 * list_len + 1, 0);
        let mut r = Reader::new(Bytes::from(frame));
        let back = ChildNames::decode(&mut r, "children").expect("decodes");
        assert!(!is_frame_slice(&back));
        assert_eq!(back, names);
        assert_eq!(r.remaining(), list_len + 1);
    }

    #[test]
    fn a_large_list_with_a_long_or_cesu8_name_is_copied_and_checked_by_name() {
        // A name of 200 bytes has a length prefix with a byte above 0x7f: no longer ASCII, so the
        // whole-text check proves nothing about the boundaries.
        let mut names = numbered(10_000);
        names[5_000] = "x".repeat(200);
        let back = decode(&encoded(&names)).expect("decodes");
        assert!(!is_frame_slice(&back));
        assert_eq!(back, names);
        // A name that is not UTF-8 on its own (it starts with a continuation byte), but is with
        // the last byte of its length prefix (195 = 0xC3, and C3 A9 is "é"): refused, as in a
        // small list, not sliced into a list whose 5,000th name cannot be read.
        let mut frame = encoded(&numbered(10_000)).to_vec();
        frame[3] = 0x11; // 10,001 names (0x2711): append one
        frame.extend_from_slice(&[0, 0, 0, 195, 0xa9]);
        frame.resize(frame.len() + 194, b'y');
        assert_eq!(decode(&frame), Err(DecodeError::InvalidUtf8));
        // Java's CESU-8 for U+1F600 in one name of a large list.
        let mut frame = encoded(&numbered(10_000)).to_vec();
        frame[3] = 0x11; // 10,001 names (0x2711): append one
        frame.extend_from_slice(&[0, 0, 0, 6, 0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80]);
        let back = decode(&frame).expect("decodes");
        assert!(!is_frame_slice(&back));
        assert_eq!(back.get(10_000), Some("\u{1F600}"));
        // A character split across two names of a large list is still refused.
        let mut frame = encoded(&numbered(10_000)).to_vec();
        frame[3] = 0x12; // 10,002 names
        frame.extend_from_slice(&[0, 0, 0, 2, b'a', 0xc3, 0, 0, 0, 2, 0xa9, b'b']);
        assert_eq!(decode(&frame), Err(DecodeError::InvalidUtf8));
    }

    #[test]
    fn a_malformed_large_list_fails_as_a_small_one_does() {
        let names = numbered(10_000);
        let frame = encoded(&names).to_vec();
        // Cut short inside the last name.
        assert_eq!(
            decode(&frame[..frame.len() - 3]),
            Err(DecodeError::Truncated {
                needed: 15,
                remaining: 12
            })
        );
        // A null name in the middle.
        let mut null = frame.clone();
        let at = 4 + 5_000 * 19;
        null[at..at + 4].copy_from_slice(&[0xff; 4]);
        assert_eq!(decode(&null), Err(DecodeError::UnexpectedNull("children")));
        // A negative length.
        let mut negative = frame;
        negative[at..at + 4].copy_from_slice(&(-5i32).to_be_bytes());
        assert_eq!(decode(&negative), Err(DecodeError::NegativeLength(-5)));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Any names, in lists small and large (sliced or copied), decode to themselves; one
        /// long name (a prefix byte above 0x7f) makes a large list copied.
        #[test]
        fn any_names_round_trip(
            mut names in proptest::collection::vec("\\PC{0,12}", 0..8_000),
            long in proptest::option::of((0usize..8_000, "[a-zé]{120,140}")),
        ) {
            if let Some((at, name)) = long {
                names.insert(at.min(names.len()), name);
            }
            let back = decode(&encoded(&names)).expect("decodes");
            proptest::prop_assert_eq!(back.len(), names.len());
            proptest::prop_assert_eq!(back.to_vec(), names.clone());
            proptest::prop_assert_eq!(back.iter().rev().count(), names.len());
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// A large list with a few bytes changed (lengths, names, the count) decodes exactly as
        /// the copying decoder alone decodes it: the same names, or the same error, and the
        /// same bytes left to read.
        #[test]
        fn a_damaged_large_list_decodes_as_the_copying_decoder_does(
            count in 3_500usize..5_000,
            damage in proptest::collection::vec((0usize..100_000, proptest::num::u8::ANY), 1..4),
        ) {
            let mut frame = encoded(&numbered(count)).to_vec();
            for (at, byte) in damage {
                let at = at % frame.len();
                frame[at] = byte;
            }
            let frame = Bytes::from(frame);
            let mut sliced = Reader::new(frame.clone());
            let got = ChildNames::decode(&mut sliced, "children");
            let mut copied = Reader::new(frame);
            let want = copied
                .read_vec_len("children", 4)
                .and_then(|n| ChildNames::decode_copy(&mut copied, n, "children"));
            proptest::prop_assert_eq!(got, want);
            proptest::prop_assert_eq!(sliced.remaining(), copied.remaining());
        }
    }

    #[test]
    fn round_trips_and_reads_like_a_list() {
        let names: ChildNames = ["a", "", "ünïcødé", "node-0000000001"]
            .into_iter()
            .collect();
        let mut out = BytesMut::new();
        names.encode(&mut out);
        let back = decode(&out).expect("decodes");
        assert_eq!(back, names);
        assert_eq!(back, ["a", "", "ünïcødé", "node-0000000001"]);
        assert_eq!(back.len(), 4);
        assert_eq!(back.get(2), Some("ünïcødé"));
        assert_eq!(back.get(4), None);
        assert!(back.contains(""));
        assert!(!back.contains("b"));
        assert_eq!(back.iter().next_back(), Some("node-0000000001"));
        assert_eq!(Vec::from(back.clone()), back.to_vec());
        let owned: Vec<String> = back.clone().into_iter().rev().collect();
        assert_eq!(owned, ["node-0000000001", "ünïcødé", "", "a"]);
        assert_eq!(
            format!("{back:?}"),
            r#"["a", "", "ünïcødé", "node-0000000001"]"#
        );
    }

    #[test]
    fn empty_and_null() {
        assert_eq!(decode(&[0, 0, 0, 0]).expect("empty"), ChildNames::new());
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xff]),
            Err(DecodeError::UnexpectedNull("children"))
        );
        // One name, null.
        assert_eq!(
            decode(&[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]),
            Err(DecodeError::UnexpectedNull("children"))
        );
    }

    #[test]
    fn cesu8_names_are_transcoded() {
        // U+1F600 as Java writes it: two 3-byte surrogates.
        let cesu = [0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80];
        let mut frame = vec![0, 0, 0, 2, 0, 0, 0, 1, b'x', 0, 0, 0, 6];
        frame.extend_from_slice(&cesu);
        assert_eq!(decode(&frame).expect("decodes"), ["x", "\u{1F600}"]);
    }

    #[test]
    fn names_hold_their_own_size_not_the_rest_of_the_frame() {
        // Two names, then 100 KB of whatever follows in the frame (a multiRead's other results).
        let mut frame = vec![0, 0, 0, 2, 0, 0, 0, 1, b'a', 0, 0, 0, 2, b'b', b'c'];
        frame.resize(frame.len() + 100_000, 0);
        let mut r = Reader::new(Bytes::from(frame));
        let names = ChildNames::decode(&mut r, "children").expect("decodes");
        assert_eq!(names, ["a", "bc"]);
        assert_eq!(r.remaining(), 100_000);
        assert!(packed_capacity(&names) <= 3, "{}", packed_capacity(&names));
        assert!(names.ends.capacity() <= 2, "{}", names.ends.capacity());
    }

    #[test]
    fn many_lists_in_one_frame_keep_only_their_own_size() {
        // A multiRead of 20,000 getChildren results, one name each, read one after another.
        let mut frame = Vec::new();
        for _ in 0..20_000 {
            frame.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, b'x']);
        }
        let mut r = Reader::new(Bytes::from(frame));
        let lists: Vec<ChildNames> = (0..20_000)
            .map(|_| ChildNames::decode(&mut r, "children").expect("decodes"))
            .collect();
        assert_eq!(r.remaining(), 0);
        let held: usize = lists.iter().map(packed_capacity).sum();
        assert_eq!(held, 20_000);
    }

    #[test]
    fn a_character_split_across_two_names_is_refused() {
        // "é" is C3 A9: the first name ends with C3, the second starts with A9. Together the
        // bytes are UTF-8; apart, neither name is.
        let frame = [0, 0, 0, 2, 0, 0, 0, 2, b'a', 0xc3, 0, 0, 0, 2, 0xa9, b'b'];
        assert_eq!(decode(&frame), Err(DecodeError::InvalidUtf8));
    }

    #[test]
    fn ends_past_4_gib_are_an_error_not_a_wrong_slice() {
        // Only a caller's own buffer of more than 4 GiB gets there; the offset check is what
        // stands between it and names sliced at the wrong place.
        assert_eq!(end_offset(u32::MAX as usize, "children"), Ok(u32::MAX));
        assert_eq!(
            end_offset(u32::MAX as usize + 1, "children"),
            Err(DecodeError::TooManyNameBytes("children"))
        );
    }

    #[test]
    fn lengths_beyond_the_input_fail_before_allocating() {
        assert!(matches!(
            decode(&[0x7f, 0xff, 0xff, 0xff]),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            decode(&[0, 0, 0, 1, 0, 0, 0, 9, b'a']),
            Err(DecodeError::Truncated { .. })
        ));
    }
}
