//! Symmetric latching: which source address a leg accepts media from.
//!
//! Latch on the first valid packet, then lock: packets from any other
//! address are refused (a hijack attempt) until the locked source has been
//! silent for `relatch_after`, which lets a NAT rebinding through without
//! letting a stranger take over a live stream. A source whose IP is the one
//! the SDP gave is preferred over one that is not, so an attacker who beats
//! the real endpoint to the first packet loses the stream when it arrives.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// What a packet's source meant for the leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatchOutcome {
    /// From the locked (or trusted) source.
    Accept,
    /// Accepted, and the leg is now locked to this source (first or re-latch).
    Latched,
    /// From a stranger: drop it.
    Reject,
}

/// The policy a leg's snapshot sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatchPolicy {
    /// Follow the source of the first packets; if false, trust `expected`.
    pub latch: bool,
    pub expected: Option<SocketAddr>,
    pub relatch_after: Duration,
}

/// One port's latch state: plain data, no allocation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latch {
    remote: Option<SocketAddr>,
    last_rx: Option<Instant>,
}

impl Latch {
    /// The source this port is locked to, if it has latched.
    pub fn remote(&self) -> Option<SocketAddr> {
        self.remote
    }

    /// When the last accepted packet arrived.
    pub fn last_rx(&self) -> Option<Instant> {
        self.last_rx
    }

    /// Judges a valid packet from `src`. `may_latch` is false for packets
    /// that may be accepted but must not choose the source (RTCP muxed on
    /// an RTP port: the RTP stream decides).
    pub fn check(
        &mut self,
        policy: &LatchPolicy,
        src: SocketAddr,
        may_latch: bool,
        now: Instant,
    ) -> LatchOutcome {
        if !policy.latch {
            // Not latching: anything from the SDP's IP is the endpoint.
            if policy.expected.is_some_and(|e| e.ip() != src.ip()) {
                return LatchOutcome::Reject;
            }
            self.last_rx = Some(now);
            return LatchOutcome::Accept;
        }
        let preferred = |a: SocketAddr| policy.expected.is_some_and(|e| e.ip() == a.ip());
        let outcome = match self.remote {
            Some(r) if r == src => LatchOutcome::Accept,
            None if !may_latch => LatchOutcome::Accept,
            None => LatchOutcome::Latched,
            Some(_) if !may_latch => LatchOutcome::Reject,
            Some(r) => {
                let silent = self
                    .last_rx
                    .is_none_or(|t| now.saturating_duration_since(t) >= policy.relatch_after);
                if silent || (preferred(src) && !preferred(r)) {
                    LatchOutcome::Latched
                } else {
                    LatchOutcome::Reject
                }
            }
        };
        match outcome {
            LatchOutcome::Reject => {}
            LatchOutcome::Latched => {
                self.remote = Some(src);
                self.last_rx = Some(now);
            }
            LatchOutcome::Accept => {
                // Only the locked source keeps the lock fresh; unlocked
                // packets (muxed RTCP before RTP) must not delay a re-latch.
                if self.remote.is_some() {
                    self.last_rx = Some(now);
                }
            }
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    const RELATCH: Duration = Duration::from_secs(2);

    fn latching(expected: Option<&str>) -> LatchPolicy {
        LatchPolicy {
            latch: true,
            expected: expected.map(addr),
            relatch_after: RELATCH,
        }
    }

    #[test]
    fn latches_then_locks_then_relatches_after_silence() {
        let t0 = Instant::now();
        let p = latching(None);
        let mut l = Latch::default();
        let a = addr("10.0.0.1:4000");
        let b = addr("10.0.0.2:4000");
        assert_eq!(l.check(&p, a, true, t0), LatchOutcome::Latched);
        assert_eq!(l.check(&p, a, true, t0), LatchOutcome::Accept);
        assert_eq!(l.check(&p, b, true, t0 + RELATCH / 2), LatchOutcome::Reject);
        // a keeps talking: b stays out
        assert_eq!(l.check(&p, a, true, t0 + RELATCH), LatchOutcome::Accept);
        assert_eq!(
            l.check(&p, b, true, t0 + RELATCH * 3 / 2),
            LatchOutcome::Reject
        );
        // a silent for relatch_after: NAT rebinding accepted
        assert_eq!(
            l.check(&p, b, true, t0 + RELATCH * 2),
            LatchOutcome::Latched
        );
        assert_eq!(l.remote(), Some(b));
    }

    #[test]
    fn expected_ip_wins_over_an_early_stranger() {
        let t0 = Instant::now();
        let p = latching(Some("10.0.0.1:4000"));
        let mut l = Latch::default();
        let stranger = addr("192.0.2.9:999");
        let real = addr("10.0.0.1:4002"); // NAT may change the port
        assert_eq!(l.check(&p, stranger, true, t0), LatchOutcome::Latched);
        assert_eq!(l.check(&p, real, true, t0), LatchOutcome::Latched);
        assert_eq!(l.check(&p, stranger, true, t0), LatchOutcome::Reject);
    }

    #[test]
    fn muxed_rtcp_neither_latches_nor_hijacks() {
        let t0 = Instant::now();
        let p = latching(None);
        let mut l = Latch::default();
        let a = addr("10.0.0.1:4000");
        assert_eq!(l.check(&p, a, false, t0), LatchOutcome::Accept);
        assert_eq!(l.remote(), None);
        l.check(&p, a, true, t0);
        let b = addr("10.0.0.2:4000");
        assert_eq!(
            l.check(&p, b, false, t0 + RELATCH * 9),
            LatchOutcome::Reject
        );
    }

    #[test]
    fn without_latching_only_the_sdp_ip_is_accepted() {
        let t0 = Instant::now();
        let p = LatchPolicy {
            latch: false,
            expected: Some(addr("10.0.0.1:4000")),
            relatch_after: RELATCH,
        };
        let mut l = Latch::default();
        assert_eq!(
            l.check(&p, addr("10.0.0.1:5000"), true, t0),
            LatchOutcome::Accept
        );
        assert_eq!(
            l.check(&p, addr("10.0.0.9:4000"), true, t0),
            LatchOutcome::Reject
        );
        assert_eq!(l.remote(), None);
    }
}
