//! Retry arithmetic, kazoo's `KazooRetry` knobs: how many tries, how long between them, and which
//! errors are worth another try. The waiting itself is the client's job.
//!
//! Retried: [`Error::ConnectionLoss`], [`Error::OperationTimeout`], [`Error::Timeout`] and
//! [`Error::Throttled`] (the request may or may not have applied, or was refused for load), and
//! [`Error::SessionExpired`] when `retry_session_expired` is set (kazoo's `ignore_expire`, on by
//! default: with session renewal the next try runs in the new session). Never retried: every
//! other error, because trying again cannot change the answer (NoNode, BadVersion, NoAuth, ...)
//! or the client is done (Closed, AuthFailed).

use std::time::Duration;

use crate::error::Error;
use crate::rng::Rng;

/// How to retry an operation.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Tries after the first; `None` retries forever (kazoo's `max_tries=-1`).
    pub max_retries: Option<u32>,
    /// Pause before the first retry.
    pub delay: Duration,
    /// Factor the pause grows by after each retry.
    pub backoff: f64,
    /// Each pause is multiplied by a random factor in `1 - max_jitter ..= 1 + max_jitter`.
    pub max_jitter: f64,
    /// Cap of the pause.
    pub max_delay: Duration,
    /// Give up once this much time has passed since the first try.
    pub deadline: Option<Duration>,
    /// Retry SessionExpired too (kazoo's `ignore_expire`).
    pub retry_session_expired: bool,
}

impl Default for RetryPolicy {
    /// kazoo's defaults: one retry, 100 ms, doubling, ±40 % jitter, 60 s cap, no deadline,
    /// session expiry retried.
    fn default() -> Self {
        RetryPolicy {
            max_retries: Some(1),
            delay: Duration::from_millis(100),
            backoff: 2.0,
            max_jitter: 0.4,
            max_delay: Duration::from_secs(60),
            deadline: None,
            retry_session_expired: true,
        }
    }
}

impl RetryPolicy {
    /// Retry forever with otherwise default settings (kazoo's connection retry style).
    pub fn forever() -> Self {
        RetryPolicy {
            max_retries: None,
            ..RetryPolicy::default()
        }
    }

    /// True if this error is worth another try under this policy.
    pub fn retries(&self, e: &Error) -> bool {
        match e {
            Error::ConnectionLoss | Error::OperationTimeout | Error::Timeout | Error::Throttled => {
                true
            }
            Error::SessionExpired => self.retry_session_expired,
            _ => false,
        }
    }

    /// A fresh attempt counter for one operation.
    pub fn start(&self, seed: u64) -> RetryState {
        RetryState {
            policy: self.clone(),
            retries: 0,
            next_delay: self.delay,
            elapsed: Duration::ZERO,
            rng: Rng::new(seed),
        }
    }
}

/// Where one operation's retries stand.
#[derive(Debug, Clone)]
pub struct RetryState {
    policy: RetryPolicy,
    retries: u32,
    next_delay: Duration,
    elapsed: Duration,
    rng: Rng,
}

impl RetryState {
    /// After a failure with `e`, `elapsed` after the first try began: the pause before the next
    /// try, or `None` to give up (the error is not retried, the tries are used up, or the pause
    /// would cross the deadline).
    pub fn next(&mut self, e: &Error, elapsed: Duration) -> Option<Duration> {
        if !self.policy.retries(e) {
            return None;
        }
        if self.policy.max_retries.is_some_and(|m| self.retries >= m) {
            return None;
        }
        let j = self.policy.max_jitter.clamp(0.0, 1.0);
        let factor = 1.0 - j + 2.0 * j * self.rng.unit();
        let pause = self.next_delay.mul_f64(factor).min(self.policy.max_delay);
        if let Some(deadline) = self.policy.deadline {
            if elapsed + pause >= deadline {
                return None;
            }
        }
        self.retries += 1;
        self.elapsed = elapsed;
        self.next_delay = self
            .next_delay
            .mul_f64(self.policy.backoff.max(1.0))
            .min(self.policy.max_delay);
        Some(pause)
    }

    /// Retries made so far.
    pub fn retries(&self) -> u32 {
        self.retries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_only_what_can_change_and_stops_after_max() {
        let p = RetryPolicy {
            max_retries: Some(2),
            max_jitter: 0.0,
            ..RetryPolicy::default()
        };
        let mut s = p.start(1);
        assert_eq!(
            s.next(&Error::NoNode { path: "/".into() }, Duration::ZERO),
            None
        );
        assert_eq!(
            s.next(&Error::ConnectionLoss, Duration::ZERO),
            Some(Duration::from_millis(100))
        );
        assert_eq!(
            s.next(&Error::Throttled, Duration::ZERO),
            Some(Duration::from_millis(200))
        );
        assert_eq!(s.next(&Error::ConnectionLoss, Duration::ZERO), None);
        assert_eq!(s.retries(), 2);
        assert!(!p.retries(&Error::Closed));
        assert!(p.retries(&Error::SessionExpired));
        let strict = RetryPolicy {
            retry_session_expired: false,
            ..p
        };
        assert!(!strict.retries(&Error::SessionExpired));
    }

    #[test]
    fn pauses_grow_with_jitter_up_to_the_cap_and_respect_the_deadline() {
        let p = RetryPolicy {
            max_retries: None,
            delay: Duration::from_millis(100),
            backoff: 2.0,
            max_jitter: 0.4,
            max_delay: Duration::from_secs(1),
            deadline: Some(Duration::from_secs(5)),
            retry_session_expired: true,
        };
        let mut s = p.start(7);
        let mut base = 100.0;
        let mut elapsed = Duration::ZERO;
        for _ in 0..6 {
            let d = s.next(&Error::ConnectionLoss, elapsed).unwrap();
            let ms = d.as_secs_f64() * 1000.0;
            assert!(
                ms >= base * 0.6 - 1e-6 && ms <= (base * 1.4).min(1000.0) + 1e-6,
                "{ms} vs {base}"
            );
            base = (base * 2.0).min(1000.0);
            elapsed += d;
        }
        assert_eq!(
            s.next(&Error::ConnectionLoss, Duration::from_millis(4990)),
            None
        );
    }
}
