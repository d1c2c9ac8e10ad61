//! Four-letter words (PROTOCOL.md §15): a fresh TCP connection, four ASCII bytes, and the
//! server's text answer read until it closes the connection.

use std::future::poll_fn;
use std::io;

use zk_core::Error;

use crate::runtime::{BoxFuture, Runtime, Transport};

/// Checks that `word` is a four-letter word (four lowercase ASCII letters).
///
/// Errors with [`Error::InvalidArgument`] naming the word otherwise.
pub(crate) fn check_word(word: &str) -> Result<(), Error> {
    if word.len() == 4 && word.bytes().all(|b| b.is_ascii_lowercase()) {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "{word:?} is not a four-letter word (four lowercase letters, e.g. \"ruok\")"
        )))
    }
}

/// Sends `command` (e.g. `ruok`, `srvr`, `mntr`) to `host:port` and returns the answer, reading
/// at most `max_bytes`.
///
/// Errors with [`io::ErrorKind::InvalidInput`] if the command is not four ASCII letters, with
/// [`io::ErrorKind::InvalidData`] if the answer exceeds `max_bytes` or is not UTF-8, and with the
/// socket's error otherwise. A command the server's whitelist refuses is not an error: its answer
/// says so.
pub async fn four_letter_word_on(
    rt: &dyn Runtime,
    host: String,
    port: u16,
    command: &str,
    max_bytes: usize,
) -> io::Result<String> {
    four_letter_word_over(rt.connect(host, port), command, max_bytes).await
}

/// Sends `command` over the connection `dial` opens (plain TCP, or TLS with its handshake done:
/// a secure client port answers four-letter words over TLS) and reads the answer, as
/// [`four_letter_word_on`] does, with the same errors plus the dial's.
pub(crate) async fn four_letter_word_over(
    dial: BoxFuture<io::Result<Box<dyn Transport>>>,
    command: &str,
    max_bytes: usize,
) -> io::Result<String> {
    if let Err(e) = check_word(command) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, e.to_string()));
    }
    let mut tcp = dial.await?;
    let mut sent = 0;
    while sent < 4 {
        let n = poll_fn(|cx| tcp.poll_write(cx, &command.as_bytes()[sent..])).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        sent += n;
    }
    poll_fn(|cx| tcp.poll_flush(cx)).await?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = match poll_fn(|cx| tcp.poll_read(cx, &mut buf)).await {
            Ok(0) => break,
            Ok(n) => n,
            // A TLS server that closes without close_notify has still said everything: the
            // answer ends where the connection does.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        };
        if answer.len() + n > max_bytes {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("answer longer than {max_bytes} bytes"),
            ));
        }
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(answer)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "answer is not UTF-8"))
}
