//! Why a datagram was not relayed, as a dense index for per-reason counters.

use rtp::{RtcpError, RtpError};

/// Why a datagram was dropped. Every drop is counted under exactly one
/// reason; nothing dropped is ever forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// No stream owns the local port (a straggler after a release).
    UnknownPort,
    /// Larger than [`crate::relay::MAX_PACKET`].
    Oversize,
    /// Not a valid RTP packet.
    Rtp(RtpError),
    /// Not a valid compound RTCP packet.
    Rtcp(RtcpError),
    /// From an address other than the one the leg is locked to.
    Hijack,
    /// The leg relays to nobody (parked, or its peer is missing).
    NoRoute,
    /// The peer leg has neither latched nor been told its remote address.
    NoDestination,
}

const RTP_BASE: usize = 2;
const RTCP_BASE: usize = RTP_BASE + RtpError::ALL.len();
const TAIL: usize = RTCP_BASE + RtcpError::ALL.len();

impl DropReason {
    pub const COUNT: usize = TAIL + 3;

    /// A dense index in `0..COUNT`.
    pub fn index(self) -> usize {
        match self {
            DropReason::UnknownPort => 0,
            DropReason::Oversize => 1,
            DropReason::Rtp(e) => RTP_BASE + e.index(),
            DropReason::Rtcp(e) => RTCP_BASE + e.index(),
            DropReason::Hijack => TAIL,
            DropReason::NoRoute => TAIL + 1,
            DropReason::NoDestination => TAIL + 2,
        }
    }

    /// The reason at `index`, the inverse of [`index`](Self::index).
    pub fn from_index(index: usize) -> Option<DropReason> {
        Some(match index {
            0 => DropReason::UnknownPort,
            1 => DropReason::Oversize,
            i if i < RTCP_BASE => DropReason::Rtp(RtpError::ALL[i - RTP_BASE]),
            i if i < TAIL => DropReason::Rtcp(RtcpError::ALL[i - RTCP_BASE]),
            i if i == TAIL => DropReason::Hijack,
            i if i == TAIL + 1 => DropReason::NoRoute,
            i if i == TAIL + 2 => DropReason::NoDestination,
            _ => return None,
        })
    }

    /// A stable label for metrics: `rtp_too_short`, `hijack_attempt`, ...
    pub fn as_str(self) -> &'static str {
        NAMES[self.index()]
    }
}

// In index order; a test keeps it in step with the enum.
const NAMES: [&str; DropReason::COUNT] = [
    "unknown_port",
    "oversize",
    "rtp_too_short",
    "rtp_bad_version",
    "rtp_bad_padding",
    "rtp_truncated_csrc",
    "rtp_truncated_extension",
    "rtcp_too_short",
    "rtcp_bad_version",
    "rtcp_bad_length",
    "rtcp_bad_padding",
    "rtcp_padding_not_last",
    "rtcp_not_report_first",
    "rtcp_truncated",
    "hijack_attempt",
    "no_route",
    "no_destination",
];

/// Drops counted by reason: a fixed array, so counting allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropCounts([u64; DropReason::COUNT]);

impl Default for DropCounts {
    fn default() -> Self {
        Self([0; DropReason::COUNT])
    }
}

impl DropCounts {
    #[inline]
    pub fn count(&mut self, reason: DropReason) {
        self.0[reason.index()] += 1;
    }

    pub fn get(&self, reason: DropReason) -> u64 {
        self.0[reason.index()]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    pub fn add(&mut self, other: &DropCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }

    /// Every reason with its count, zeros included (stable metric series).
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        self.0
            .iter()
            .enumerate()
            .filter_map(|(i, &n)| DropReason::from_index(i).map(|r| (r, n)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_and_inverse_agree() {
        for i in 0..DropReason::COUNT {
            let r = DropReason::from_index(i).expect("dense");
            assert_eq!(r.index(), i);
        }
        assert_eq!(DropReason::from_index(DropReason::COUNT), None);
        assert_eq!(DropReason::Hijack.as_str(), "hijack_attempt");
        for e in RtpError::ALL {
            assert_eq!(
                DropReason::Rtp(e).as_str(),
                format!("rtp_{}", e.as_str()).as_str()
            );
        }
        for e in RtcpError::ALL {
            assert_eq!(
                DropReason::Rtcp(e).as_str(),
                format!("rtcp_{}", e.as_str()).as_str()
            );
        }
    }
}
