//! Packets per second for a node's load report, from a packet counter
//! read at each heartbeat.

use std::time::{Duration, Instant};

/// Turns a growing packet count into a rate between two readings.
#[derive(Debug, Clone, Copy)]
pub struct PacketRate {
    last: (Instant, u64),
}

impl Default for PacketRate {
    fn default() -> Self {
        Self::new(Instant::now())
    }
}

impl PacketRate {
    pub fn new(now: Instant) -> Self {
        Self { last: (now, 0) }
    }

    /// Packets per second since the last reading (0 for readings closer
    /// than a millisecond, or a counter that went back).
    pub fn per_sec(&mut self, now: Instant, packets: u64) -> u32 {
        let (then, before) = self.last;
        let elapsed = now.saturating_duration_since(then);
        let pps = if elapsed >= Duration::from_millis(1) {
            (packets.saturating_sub(before) as f64 / elapsed.as_secs_f64()) as u32
        } else {
            0
        };
        self.last = (now, packets);
        pps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_between_readings() {
        let t0 = Instant::now();
        let mut r = PacketRate::new(t0);
        assert_eq!(r.per_sec(t0 + Duration::from_millis(500), 1000), 2000);
        assert_eq!(r.per_sec(t0 + Duration::from_millis(1500), 1500), 500);
        assert_eq!(
            r.per_sec(t0 + Duration::from_millis(1500), 9999),
            0,
            "too close"
        );
    }
}
