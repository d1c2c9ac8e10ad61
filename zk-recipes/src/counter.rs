//! kazoo's `Counter`: a shared integer or float counter in one node, changed atomically by a
//! compare-and-set loop on the node's version.
//!
//! The node's data is the value as ASCII text, written as Python's `repr()` writes it (`42`,
//! `2.5`, `1e+20`), so kazoo's `Counter` and this one share a node. With
//! [`support_curator`](Counter::support_curator) the data is a 4-byte big-endian integer
//! instead, as kazoo's `support_curator=True` and Curator's `SharedCount` write it. An empty node
//! (as `ensure_path` leaves it) reads as the counter's default.

use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};

use zk_client::{Bytes, Client, Error};

use crate::coord_util::{cas_write, ensure_node, Cas};

mod sealed {
    pub trait Sealed {}
    impl Sealed for i64 {}
    impl Sealed for f64 {}
}

/// A value a [`Counter`] can hold: `i64` (kazoo's int counter) or `f64` (its float counter).
pub trait CounterValue: sealed::Sealed + Copy + Debug + PartialEq + Send + Sync + 'static {
    /// The value as kazoo writes it: Python's `repr()` in ASCII.
    fn to_text(self) -> String;
    /// The value from kazoo's text.
    ///
    /// Errors with [`Error::InvalidArgument`] when the text is not such a value.
    fn from_text(text: &str) -> Result<Self, Error>;
    /// `self + delta`.
    ///
    /// Errors with [`Error::InvalidArgument`] on integer overflow.
    fn plus(self, delta: Self) -> Result<Self, Error>;
    /// `-self`.
    ///
    /// Errors with [`Error::InvalidArgument`] on integer overflow.
    fn negated(self) -> Result<Self, Error>;
}

impl CounterValue for i64 {
    fn to_text(self) -> String {
        self.to_string()
    }

    fn from_text(text: &str) -> Result<Self, Error> {
        // Python's int() takes surrounding whitespace.
        text.trim()
            .parse()
            .map_err(|_| Error::InvalidArgument(format!("counter data {text:?} is not an integer")))
    }

    fn plus(self, delta: Self) -> Result<Self, Error> {
        self.checked_add(delta)
            .ok_or_else(|| Error::InvalidArgument(format!("counter overflow: {self} + {delta}")))
    }

    fn negated(self) -> Result<Self, Error> {
        self.checked_neg()
            .ok_or_else(|| Error::InvalidArgument(format!("cannot negate {self}")))
    }
}

impl CounterValue for f64 {
    fn to_text(self) -> String {
        python_float_repr(self)
    }

    fn from_text(text: &str) -> Result<Self, Error> {
        text.trim()
            .parse()
            .map_err(|_| Error::InvalidArgument(format!("counter data {text:?} is not a float")))
    }

    fn plus(self, delta: Self) -> Result<Self, Error> {
        Ok(self + delta)
    }

    fn negated(self) -> Result<Self, Error> {
        Ok(-self)
    }
}

/// Python's `repr(float)`: the shortest text that reads back as the same float (Rust's `{:?}`
/// picks the same digits and switches to an exponent at the same magnitudes, 1e16 and 1e-5),
/// with Python's exponent spelling (`1e+20`, `1e-05`) and `inf`/`nan`.
fn python_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let s = format!("{f:?}");
    match s.split_once('e') {
        None => s,
        Some((mantissa, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            let pad = if digits.len() < 2 { "0" } else { "" };
            format!("{mantissa}e{sign}{pad}{digits}")
        }
    }
}

/// The values around one change of a [`Counter`] (kazoo's `pre_value` and `post_value`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change<T> {
    /// The value the change started from.
    pub pre_value: T,
    /// The value it wrote.
    pub post_value: T,
}

/// kazoo's `Counter`: `counter.add(2).await?` is kazoo's `counter += 2`. Every change reads the
/// node, computes the new value, and writes it only if the node's version is unchanged, starting
/// again when another writer got there first; so concurrent changes from any number of clients
/// (kazoo's included) all count.
///
/// A counter is a path and a handle; it keeps no state of its own but whether the node is known
/// to exist, so clones of one client can share a path through separate counters.
#[derive(Debug)]
pub struct Counter<T: CounterValue = i64> {
    client: Client,
    path: String,
    default: T,
    support_curator: bool,
    ensured: AtomicBool,
}

impl Counter<i64> {
    /// An integer counter at `path`, 0 when the node is new (kazoo's `Counter(client, path)`).
    /// Nothing is sent until the first read or change.
    pub fn new(client: &Client, path: &str) -> Self {
        Counter::with_default(client, path, 0)
    }

    /// Stores the value as Curator's `SharedCount` does (a 4-byte big-endian integer), as
    /// kazoo's `support_curator=True`: kazoo, Curator and [`SharedCount`](crate::SharedCount)
    /// can then share the node. Values must fit an `i32`; a change past that fails.
    pub fn support_curator(mut self) -> Self {
        self.support_curator = true;
        self
    }
}

impl<T: CounterValue> Counter<T> {
    /// A counter at `path` whose node, when new or empty, reads as `default` (kazoo's
    /// `Counter(client, path, default=...)`; a float counter is `Counter::with_default(c, p,
    /// 0.0)`).
    pub fn with_default(client: &Client, path: &str, default: T) -> Self {
        Counter {
            client: client.clone(),
            path: path.to_owned(),
            default,
            support_curator: false,
            ensured: AtomicBool::new(false),
        }
    }

    /// The counter's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The current value (kazoo's `counter.value`); creates the node if missing.
    ///
    /// Errors with [`Error::InvalidArgument`] when the node holds something that is not such a
    /// counter, and with the client's errors once its retry policy gives up.
    pub async fn value(&self) -> Result<T, Error> {
        self.client
            .retry(|_| async {
                self.ensure().await?;
                match self.client.get_data(&self.path).await {
                    Ok((data, _)) => self.decode(&data),
                    Err(e) => {
                        if matches!(e, Error::NoNode { .. }) {
                            self.ensured.store(false, Ordering::Relaxed);
                        }
                        Err(e)
                    }
                }
            })
            .await
    }

    /// Adds `delta` (kazoo's `counter += delta`) and returns the values before and after.
    ///
    /// Errors with [`Error::InvalidArgument`] when the node holds something that is not such a
    /// counter or the result does not fit (an `i32` with `support_curator`, an `i64` otherwise);
    /// with [`Error::ConnectionLoss`] or [`Error::Timeout`] when the change may or may not have
    /// applied (the connection dropped during the write and the node is not as it was when it
    /// comes back; the write timed out), so that a retry never counts a change twice; with the
    /// client's errors once its retry policy gives up (the change did not apply).
    pub async fn add(&self, delta: T) -> Result<Change<T>, Error> {
        // Lock-free: a lost race means another writer's change applied, so the loop ends once
        // contention does. Connection trouble is retried per attempt by the client's policy.
        loop {
            let attempt = self.client.retry(|_| self.try_add(delta)).await?;
            match attempt {
                Attempt::Done(change) => return Ok(change),
                Attempt::Raced => continue,
                Attempt::Unknown(e) => return Err(e),
            }
        }
    }

    /// Subtracts `delta` (kazoo's `counter -= delta`).
    ///
    /// Errors as [`add`](Self::add).
    pub async fn sub(&self, delta: T) -> Result<Change<T>, Error> {
        self.add(delta.negated()?).await
    }

    async fn ensure(&self) -> Result<(), Error> {
        if !self.ensured.load(Ordering::Relaxed) {
            ensure_node(&self.client, &self.path).await?;
            self.ensured.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn try_add(&self, delta: T) -> Result<Attempt<T>, Error> {
        self.ensure().await?;
        let (data, stat) = match self.client.get_data(&self.path).await {
            Ok(read) => read,
            Err(Error::NoNode { .. }) => {
                // Deleted under us: create it again on the next attempt.
                self.ensured.store(false, Ordering::Relaxed);
                return Ok(Attempt::Raced);
            }
            Err(e) => return Err(e),
        };
        let pre_value = self.decode(&data)?;
        let post_value = pre_value.plus(delta)?;
        let bytes = self.encode(post_value)?;
        Ok(
            match cas_write(&self.client, &self.path, bytes, stat.version).await? {
                Cas::Applied => Attempt::Done(Change {
                    pre_value,
                    post_value,
                }),
                Cas::Conflict => Attempt::Raced,
                Cas::Unknown(e) => Attempt::Unknown(e),
            },
        )
    }

    fn decode(&self, data: &[u8]) -> Result<T, Error> {
        if data.is_empty() {
            return Ok(self.default);
        }
        if self.support_curator {
            let n = crate::shared_count::decode_count(&self.path, data)?;
            return T::from_text(&n.to_string());
        }
        let text = std::str::from_utf8(data)
            .ok()
            .filter(|t| t.is_ascii())
            .ok_or_else(|| {
                Error::InvalidArgument(format!("counter {} does not hold ASCII", self.path))
            })?;
        T::from_text(text)
    }

    fn encode(&self, value: T) -> Result<Bytes, Error> {
        let text = value.to_text();
        if self.support_curator {
            let n: i32 = text.parse().map_err(|_| {
                Error::InvalidArgument(format!(
                    "counter {}: {text} does not fit Curator's 32-bit count",
                    self.path
                ))
            })?;
            return Ok(Bytes::copy_from_slice(&n.to_be_bytes()));
        }
        Ok(Bytes::from(text))
    }
}

enum Attempt<T> {
    Done(Change<T>),
    Raced,
    /// Whether the write applied cannot be told: give the caller this error.
    Unknown(Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_written_as_python_repr_writes_them() {
        // Values checked against CPython 3's repr().
        for (f, want) in [
            (1.0, "1.0"),
            (2.5, "2.5"),
            (-0.5, "-0.5"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1.5e20, "1.5e+20"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1e-300, "1e-300"),
            (f64::INFINITY, "inf"),
        ] {
            assert_eq!(python_float_repr(f), want, "repr of {f:?}");
            assert_eq!(f64::from_text(want).ok(), Some(f));
        }
    }

    #[test]
    fn integers_read_as_python_int_reads_them() {
        assert_eq!(i64::from_text(" 42\n").ok(), Some(42));
        assert!(i64::from_text("4.2").is_err());
        assert!(i64::MAX.plus(1).is_err());
    }
}
