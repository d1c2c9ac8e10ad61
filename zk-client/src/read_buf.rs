//! The buffer a connection's bytes are read into, by the driver or by a caller reading for
//! itself.

/// What the first read of a session may take: a handshake and a few small replies.
const FIRST_BYTES: usize = 4 * 1024;

/// The most one read takes.
const MAX_BYTES: usize = 64 * 1024;

/// A read buffer that starts small and doubles whenever a read fills it, up to 64 KiB. A
/// session that connects, asks a little and closes (a CLI call, a short job) then never zeroes
/// 64 KiB it does not use (measured: two thirds of the client's instructions per W6 session),
/// and a busy one reaches the full size with its first large bursts.
#[derive(Default)]
pub(crate) struct ReadBuf {
    bytes: Vec<u8>,
}

impl ReadBuf {
    /// The space the next read fills.
    pub(crate) fn space(&mut self) -> &mut [u8] {
        if self.bytes.is_empty() {
            self.bytes.resize(FIRST_BYTES, 0);
        }
        &mut self.bytes
    }

    /// The first `n` bytes, which the last read filled; `None` if `n` is more than the buffer
    /// holds (a transport that broke its contract).
    pub(crate) fn filled(&self, n: usize) -> Option<&[u8]> {
        self.bytes.get(..n)
    }

    /// Records a read of `n` bytes: one that filled the buffer doubles it, as the socket may
    /// hold more than the buffer took.
    pub(crate) fn took(&mut self, n: usize) {
        let len = self.bytes.len();
        if n >= len && len < MAX_BYTES {
            self.bytes
                .resize((len * 2).clamp(FIRST_BYTES, MAX_BYTES), 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_small_and_doubles_on_full_reads_up_to_the_cap() {
        let mut buf = ReadBuf::default();
        assert_eq!(buf.space().len(), FIRST_BYTES);
        buf.took(100);
        assert_eq!(
            buf.space().len(),
            FIRST_BYTES,
            "a short read keeps the size"
        );
        let mut sizes = Vec::new();
        for _ in 0..6 {
            let n = buf.space().len();
            buf.took(n);
            sizes.push(buf.space().len());
        }
        assert_eq!(sizes, [8, 16, 32, 64, 64, 64].map(|k| k * 1024));
        assert_eq!(buf.filled(3).map(<[u8]>::len), Some(3));
        assert_eq!(buf.filled(64 * 1024 + 1), None);
    }
}
