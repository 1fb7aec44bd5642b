//! Reconnect delays: capped exponential backoff with jitter.

use std::time::Duration;

/// Delays that double from `base` up to `cap`; each is shortened by a random
/// part of up to a quarter so a fleet of nodes that lost the same brain does
/// not come back in lock-step.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
    rng: XorShift,
}

impl Backoff {
    pub const DEFAULT_BASE: Duration = Duration::from_millis(100);
    pub const DEFAULT_CAP: Duration = Duration::from_secs(2);

    /// `seed` makes the jitter reproducible in tests; give each node its own.
    pub fn new(base: Duration, cap: Duration, seed: u64) -> Self {
        Self {
            base,
            cap,
            attempt: 0,
            rng: XorShift::new(seed),
        }
    }

    /// The delay before the next attempt, without jitter.
    pub fn nominal(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The delay before the next attempt; each call moves one step on.
    pub fn next_delay(&mut self) -> Duration {
        let nominal = self.nominal();
        self.attempt = self.attempt.saturating_add(1).min(31);
        let spread = nominal.as_micros() as u64 / 4;
        let jitter = if spread == 0 {
            0
        } else {
            self.rng.next() % (spread + 1)
        };
        nominal - Duration::from_micros(jitter)
    }

    /// Back to `base`, after a connection that worked.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Straight to the longest delay, after a refusal that retrying soon
    /// would not cure.
    pub fn saturate(&mut self) {
        while self.nominal() < self.cap && self.attempt < 31 {
            self.attempt += 1;
        }
    }
}

/// xorshift64*: tiny, deterministic, good enough for jitter.
#[derive(Debug, Clone)]
pub(crate) struct XorShift(u64);

impl XorShift {
    pub(crate) fn new(seed: u64) -> Self {
        // Zero is the one state xorshift never leaves.
        Self(seed | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_100ms_to_2s_with_bounded_jitter() {
        let mut b = Backoff::new(Backoff::DEFAULT_BASE, Backoff::DEFAULT_CAP, 42);
        let nominal_ms = [100, 200, 400, 800, 1600, 2000, 2000, 2000];
        let mut saw_jitter = false;
        for ms in nominal_ms {
            let nominal = Duration::from_millis(ms);
            assert_eq!(b.nominal(), nominal);
            let d = b.next_delay();
            assert!(d <= nominal && d >= nominal * 3 / 4, "{d:?} vs {nominal:?}");
            saw_jitter |= d != nominal;
        }
        assert!(saw_jitter);
        b.reset();
        assert_eq!(b.nominal(), Duration::from_millis(100));
        b.saturate();
        assert_eq!(b.nominal(), Duration::from_secs(2));
        // Far past the cap nothing overflows.
        for _ in 0..100 {
            assert!(b.next_delay() <= Duration::from_secs(2));
        }
    }

    #[test]
    fn different_seeds_spread_out() {
        let a = Backoff::new(Backoff::DEFAULT_BASE, Backoff::DEFAULT_CAP, 1).next_delay();
        let b = Backoff::new(Backoff::DEFAULT_BASE, Backoff::DEFAULT_CAP, 2).next_delay();
        assert_ne!(a, b);
    }
}
