//! [`ChildNames`]: the child names of a getChildren reply, decoded into one string.
//!
//! A node can have tens of thousands of children, and a `Vec<String>` costs an allocation (and
//! later a free) per name: most of the time of decoding a large getChildren reply. `ChildNames`
//! keeps every name in one `String` and where each one ends, so decoding allocates twice however
//! many names there are, and reading a name is a slice. The ends are `u32`, half the memory of
//! `usize` offsets: for 50,000 names that is 200 KB less to allocate, fault in and free per reply
//! (W5 in BENCHMARKS.md: a third fewer page faults, a fifth less CPU on tokio).

use std::fmt;

use bytes::BufMut;

use super::jute::{put_string, Reader};
use super::DecodeError;

/// Child names (not full paths) in the order the server sent them, which is no defined order.
///
/// Read them with [`iter`](Self::iter), [`get`](Self::get), [`contains`](Self::contains), or a
/// `for` loop over `&names`; [`to_vec`](Self::to_vec) or `Vec::from` gives owned `String`s.
/// `names == ["a", "b"]` (an array, slice or `Vec` of `&str` or `String` on the right) holds when
/// it has the same names in the same order.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct ChildNames {
    /// Every name, one after another.
    text: String,
    /// Where each name ends in `text`; name `i` starts where name `i - 1` ends. A decoded list
    /// is smaller than its frame, whose length is an `i32`, so its ends fit (`end_offset`
    /// refuses any that would not).
    ends: Vec<End>,
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
            i => self.ends[i - 1] as usize,
        };
        self.text.get(start..end)
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
        let end = End::try_from(self.text.len() + name.len())
            .expect("ChildNames holds at most u32::MAX bytes of names");
        self.text.push_str(name);
        self.ends.push(end);
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
                return Ok(ChildNames { text, ends });
            }
        }
        // Java's CESU-8 (or a bad name, to refuse): name by name. CESU-8 only gets shorter as
        // UTF-8, so `total` is enough.
        let mut slow = names_start;
        let mut names = ChildNames {
            text: String::with_capacity(total),
            ends: Vec::with_capacity(n),
        };
        for _ in 0..n {
            slow.read_string_into(field, &mut names.text)?;
            names.ends.push(end_offset(names.text.len(), field)?);
        }
        Ok(names)
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
        assert!(names.text.capacity() <= 3, "{}", names.text.capacity());
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
        let held: usize = lists.iter().map(|l| l.text.capacity()).sum();
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
