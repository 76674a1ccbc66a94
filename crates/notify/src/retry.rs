//! When to try again: exponential backoff with jitter, bounded by attempts and by age.

use std::time::Duration;

/// How a failed delivery is retried. The delay after the n-th failed attempt is
/// `min(first_delay · 2^(n-1), max_delay)`, shortened by a random fraction of up to `jitter`
/// so receivers coming back up are not hit by every sender at once. Since each base delay
/// doubles and jitter is at most a quarter by default, delays still grow. A delivery is failed
/// once it has made `max_attempts` attempts or its next attempt would fall past `max_age` after
/// it was queued.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// Fraction in [0, 1) by which a delay may be shortened at random.
    pub jitter: f64,
    pub max_attempts: u32,
    pub max_age: Duration,
    /// Per attempt: connecting, sending and receiving the response's head.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    /// 1 s, 2 s, 4 s … capped at 10 min, for up to 24 h (150 to 190 attempts, depending on
    /// jitter; the attempt limit is a backstop), 5 s per attempt.
    fn default() -> Self {
        RetryPolicy {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(600),
            jitter: 0.25,
            max_attempts: 250,
            max_age: Duration::from_secs(24 * 3600),
            timeout: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The delay before the next attempt once `attempts_made` (≥ 1) have failed; `random_unit`
    /// in [0, 1) picks the jitter.
    pub fn delay_after(&self, attempts_made: u32, random_unit: f64) -> Duration {
        let doublings = attempts_made.saturating_sub(1).min(32);
        let base = self
            .first_delay
            .checked_mul(1u32 << doublings.min(31))
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        let shortening = self.jitter.clamp(0.0, 0.99) * random_unit.clamp(0.0, 1.0);
        base.mul_f64(1.0 - shortening)
    }
}

/// A number in [0, 1) from the OS RNG, for jitter; 0.5 if the RNG fails (jitter is a courtesy).
pub(crate) fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    match getrandom::getrandom(&mut bytes) {
        Ok(()) => (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_one_second_up_to_ten_minutes() {
        let policy = RetryPolicy::default();
        let seconds: Vec<u64> = (1..=12)
            .map(|attempt| policy.delay_after(attempt, 0.0).as_secs())
            .collect();
        assert_eq!(seconds, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600]);
        assert_eq!(policy.delay_after(1000, 0.0), Duration::from_secs(600));
    }

    #[test]
    fn jitter_shortens_but_never_reverses_growth() {
        let policy = RetryPolicy::default();
        for attempt in 1..10 {
            let longest_now = policy.delay_after(attempt, 0.0);
            let shortest_next = policy.delay_after(attempt + 1, 0.999);
            assert!(shortest_next > longest_now, "attempt {attempt}");
            assert!(policy.delay_after(attempt, 0.999) >= longest_now.mul_f64(0.75));
        }
        let unit = random_unit();
        assert!((0.0..1.0).contains(&unit));
    }
}
