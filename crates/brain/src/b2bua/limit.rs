//! Per-source limit on new INVITEs: a token bucket per IP address, so one
//! source flooding the brain with calls gets 503s while others go on.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    /// Sustained INVITEs per second per source; 0 turns the limit off.
    pub per_second: u32,
    /// How many may come at once.
    pub burst: u32,
    /// Retry-After on the 503.
    pub retry_after_secs: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_second: 20,
            burst: 40,
            retry_after_secs: 5,
        }
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

pub(crate) struct Limiter {
    limit: RateLimit,
    buckets: HashMap<IpAddr, Bucket>,
    last_sweep: Option<Instant>,
}

/// Buckets idle this long are full again and can be forgotten.
const IDLE: Duration = Duration::from_secs(60);

impl Limiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: HashMap::new(),
            last_sweep: None,
        }
    }

    /// Takes a token for `ip`; false when its bucket is empty.
    pub(crate) fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.limit.per_second == 0 {
            return true;
        }
        if self
            .last_sweep
            .is_none_or(|t| now.saturating_duration_since(t) > IDLE)
        {
            self.buckets
                .retain(|_, b| now.saturating_duration_since(b.at) < IDLE);
            self.last_sweep = Some(now);
        }
        let burst = f64::from(self.limit.burst.max(1));
        let rate = f64::from(self.limit.per_second);
        let b = self.buckets.entry(ip).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let mut l = Limiter::new(RateLimit {
            per_second: 10,
            burst: 3,
            retry_after_secs: 1,
        });
        let ip = IpAddr::from([10, 0, 0, 1]);
        let other = IpAddr::from([10, 0, 0, 2]);
        let t = Instant::now();
        assert!((0..3).all(|_| l.allow(ip, t)));
        assert!(!l.allow(ip, t));
        assert!(l.allow(other, t), "buckets are per source");
        assert!(l.allow(ip, t + Duration::from_millis(100)));
        assert!(!l.allow(ip, t + Duration::from_millis(100)));
    }
}
