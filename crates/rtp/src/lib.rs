//! RTP and RTCP for tandem's media nodes — sans-IO.
//!
//! Everything here takes bytes (and, where time matters, a time value the
//! caller supplies) and returns values; sockets and clocks live in the
//! drivers. The packet path allocates nothing: parsers return borrowed views
//! over the datagram, mutators rewrite header fields in place, writers fill a
//! caller's buffer, and per-stream state is plain data.
//!
//! - [`packet`]: RTP (RFC 3550 §5) views, in-place mutators, header writer,
//!   RFC 8285 header-extension elements.
//! - [`rtcp`]: compound RTCP (RFC 3550 §6, §A.2) views and SR/RR/SDES/BYE
//!   writers; RFC 4585 feedback as opaque; RFC 5761 demultiplexing.
//! - [`event`]: RFC 4733 telephone-event payloads and a digit tracker.
//! - [`stats`]: per-source receive statistics (RFC 3550 §A.1, §A.3, §A.8).
//! - [`quality`]: a simplified ITU-T G.107 E-model MOS estimate.
//! - [`rewrite`]: sequence/timestamp/SSRC continuity across source switches.

pub mod event;
pub mod packet;
pub mod quality;
pub mod rewrite;
pub mod rtcp;
pub mod stats;

pub use event::{DigitEvent, DigitEvents, EventError, EventTracker, Key, TelephoneEvent};
pub use packet::{
    ExtElement, ExtElements, ExtensionKind, HeaderExtension, RtpError, RtpHeader, RtpHeaderMut,
    RtpPacket,
};
pub use quality::{CodecImpairment, mos, mos_from_r, r_factor};
pub use rewrite::{Mapped, Rewriter, RewriterState};
pub use rtcp::{
    Feedback, ReportBlock, RtcpCompound, RtcpError, RtcpPacket, RtcpPackets, SenderInfo, is_rtcp,
    ntp_from_unix, ntp_middle, round_trip_time, write_bye, write_receiver_report, write_sdes_cname,
    write_sender_report,
};
pub use stats::{ReceiverStats, SeqOutcome};

/// Why a writer could not produce its packet. These are caller mistakes (a
/// buffer too small, a list too long for its count field), not bad input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum WriteError {
    #[error("output buffer too small: {needed} bytes needed")]
    BufferTooSmall { needed: usize },
    #[error("too many entries for the packet's count field")]
    TooMany,
    #[error("field too long for its length field")]
    TooLong,
}

/// Big-endian reads at offsets the caller has already bounds-checked; kept as
/// helpers so each call site reads as the field it decodes.
#[inline(always)]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline(always)]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[cfg(test)]
pub(crate) mod testutil {
    /// Deterministic xorshift64* so fuzz tests reproduce exactly.
    pub struct XorShift(pub u64);

    impl XorShift {
        pub fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        pub fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        pub fn fill(&mut self, buf: &mut [u8]) {
            for b in buf {
                *b = self.next() as u8;
            }
        }
    }

    /// True when `inner` lies within `outer` (same allocation, in bounds).
    pub fn within(outer: &[u8], inner: &[u8]) -> bool {
        let o = outer.as_ptr() as usize;
        let i = inner.as_ptr() as usize;
        i >= o && i + inner.len() <= o + outer.len()
    }
}
