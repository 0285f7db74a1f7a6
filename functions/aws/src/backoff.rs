//! Full-jitter exponential backoff, the one formula every retry loop uses (Data API calls,
//! Firehose and Kinesis partial failures). The loops stay with their callers: what counts as
//! a failure and what is resent differs; the waiting does not.

use std::time::Duration;

use rand::Rng;

/// `max_attempts` calls in total (the first included); before retry `n` (from 0) wait a
/// uniform time in `[0, min(max, base × 2^n)]` (AWS's "full jitter").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub max_attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    pub const fn new(max_attempts: u32, base: Duration, max: Duration) -> Self {
        Self {
            max_attempts,
            base,
            max,
        }
    }

    /// Calls allowed in total; at least one, whatever the configuration says.
    pub fn attempts(&self) -> u32 {
        self.max_attempts.max(1)
    }

    /// The upper bound of the wait before retry `retry`: `min(max, base × 2^retry)`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        // 2^30 × any useful base already exceeds any useful cap; the min keeps it finite.
        self.base
            .saturating_mul(2u32.saturating_pow(retry.min(30)))
            .min(self.max)
    }

    /// The wait before retry `retry`, from the thread's random generator.
    pub fn delay(&self, retry: u32) -> Duration {
        self.delay_with(retry, &mut rand::rng())
    }

    /// The wait before retry `retry`, from `rng` (a caller with its own seeded generator).
    pub fn delay_with<R: Rng + ?Sized>(&self, retry: u32, rng: &mut R) -> Duration {
        let nanos = u64::try_from(self.ceiling(retry).as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(rng.random_range(0..=nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_stay_under_the_exponential_ceiling() {
        let b = Backoff::new(5, Duration::from_millis(100), Duration::from_millis(800));
        for retry in 0..40u32 {
            let ceiling = Duration::from_millis((100u64 << retry.min(20)).min(800));
            assert_eq!(b.ceiling(retry), ceiling);
            for _ in 0..50 {
                assert!(b.delay(retry) <= ceiling);
            }
        }
    }

    #[test]
    fn zero_base_never_waits_and_attempts_are_at_least_one() {
        let b = Backoff::new(0, Duration::ZERO, Duration::from_secs(1));
        assert_eq!(b.delay(3), Duration::ZERO);
        assert_eq!(b.attempts(), 1);
        let huge = Backoff::new(3, Duration::MAX, Duration::MAX);
        assert_eq!(huge.ceiling(100), Duration::MAX);
        let _ = huge.delay(100);
    }
}
