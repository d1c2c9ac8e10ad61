//! [`Data`]: what `create`, `set_data`, transactions and `add_auth` take as a node's bytes. Every
//! ordinary byte container converts: byte string literals (`b"x"`), `&[u8]`, `Vec<u8>`, `&str`,
//! `String`, `Bytes`, and references to the owned ones. Owned buffers move without a copy;
//! borrowed ones are copied once.

use bytes::Bytes;

/// Bytes for a node (see the module doc for what converts).
pub trait Data {
    /// The bytes.
    fn into_bytes(self) -> Bytes;
}

impl Data for Bytes {
    fn into_bytes(self) -> Bytes {
        self
    }
}

impl Data for &Bytes {
    fn into_bytes(self) -> Bytes {
        self.clone()
    }
}

impl Data for Vec<u8> {
    fn into_bytes(self) -> Bytes {
        Bytes::from(self)
    }
}

impl Data for &Vec<u8> {
    fn into_bytes(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

impl Data for Box<[u8]> {
    fn into_bytes(self) -> Bytes {
        Bytes::from(self)
    }
}

impl Data for &[u8] {
    fn into_bytes(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

impl<const N: usize> Data for &[u8; N] {
    fn into_bytes(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

impl<const N: usize> Data for [u8; N] {
    fn into_bytes(self) -> Bytes {
        Bytes::copy_from_slice(&self)
    }
}

impl Data for String {
    fn into_bytes(self) -> Bytes {
        Bytes::from(self)
    }
}

impl Data for &String {
    fn into_bytes(self) -> Bytes {
        Bytes::copy_from_slice(self.as_bytes())
    }
}

impl Data for &str {
    fn into_bytes(self) -> Bytes {
        Bytes::copy_from_slice(self.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(d: impl Data) -> Bytes {
        d.into_bytes()
    }

    #[test]
    fn every_ordinary_byte_container_converts() {
        let v = vec![1u8, 2];
        let s = String::from("ab");
        let b = Bytes::from_static(b"ab");
        assert_eq!(take(b"ab"), b);
        assert_eq!(take(*b"ab"), b);
        assert_eq!(take(&b"ab"[..]), b);
        assert_eq!(take("ab"), b);
        assert_eq!(take(&s), b);
        assert_eq!(take(s), b);
        assert_eq!(take(&b), b);
        assert_eq!(take(b.clone()), b);
        assert_eq!(take(&v), Bytes::from_static(&[1, 2]));
        assert_eq!(take(v), Bytes::from_static(&[1, 2]));
        assert_eq!(take(vec![3u8].into_boxed_slice()), Bytes::from_static(&[3]));
    }
}
