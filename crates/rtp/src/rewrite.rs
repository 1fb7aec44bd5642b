//! Sequence, timestamp and SSRC continuity for an outgoing leg whose source
//! changes: a new latched endpoint, a prompt taking over from the caller, or
//! the stream moving to another SBC on failover. The receiver keeps seeing
//! one SSRC whose sequence numbers follow on by one and whose timestamps
//! advance by the real gap, so its jitter buffer does not reset or stall.
//!
//! The driver decides which source is live (latching); every packet given
//! to [`Rewriter::map`] is taken as the live source, and a different SSRC
//! re-anchors the mapping.

use crate::packet::{RtpError, RtpHeaderMut};

/// The whole mapping as plain data, to travel in call snapshots. Restoring
/// it with [`Rewriter::from_state`] continues exactly where it left off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RewriterState {
    /// SSRC the receiver sees.
    pub out_ssrc: u32,
    /// Incoming SSRC currently mapped; `None` forces a re-anchor.
    pub in_ssrc: Option<u32>,
    /// Added (wrapping) to incoming sequence numbers.
    pub seq_offset: u16,
    /// Added (wrapping) to incoming timestamps.
    pub ts_offset: u32,
    /// Highest outgoing sequence number so far and its timestamp.
    pub last_out: Option<(u16, u32)>,
    /// Timestamp advance at a re-anchor when the driver gives none: one
    /// packet's worth (160 for 20 ms at 8 kHz).
    pub default_gap: u32,
    /// Timestamp advance for the next re-anchor, if the driver gave one.
    pub pending_gap: Option<u32>,
}

/// What to put in the outgoing header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mapped {
    pub ssrc: u32,
    pub seq: u16,
    pub timestamp: u32,
    /// The mapping was re-anchored on this packet: set the marker bit so
    /// the receiver treats it as a new talkspurt and resyncs its playout.
    pub reanchored: bool,
}

/// Maps incoming SSRC/sequence/timestamp to a continuous outgoing space.
#[derive(Debug, Clone)]
pub struct Rewriter {
    state: RewriterState,
}

/// Serial-number "a is after b" for 16-bit sequence numbers.
fn seq_after(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

impl Rewriter {
    /// `default_gap` is one packet's timestamp increment.
    pub fn new(out_ssrc: u32, default_gap: u32) -> Self {
        Rewriter {
            state: RewriterState {
                out_ssrc,
                default_gap,
                ..RewriterState::default()
            },
        }
    }

    pub fn from_state(state: RewriterState) -> Self {
        Rewriter { state }
    }

    pub fn state(&self) -> RewriterState {
        self.state
    }

    /// Forces the next packet to re-anchor, even from the same SSRC (after
    /// a restart, or on the node that took over a snapshot), with its
    /// timestamp `gap` units after the last one sent: the driver passes the
    /// wall-clock time since then in clock units, or `None` for one packet.
    pub fn reanchor(&mut self, gap: Option<u32>) {
        self.state.in_ssrc = None;
        self.state.pending_gap = gap;
    }

    /// Sets the timestamp gap for a re-anchor that an SSRC change will
    /// trigger, without forcing one.
    pub fn set_gap(&mut self, gap: u32) {
        self.state.pending_gap = Some(gap);
    }

    /// Maps one packet's fields.
    #[inline]
    pub fn map(&mut self, ssrc: u32, seq: u16, timestamp: u32) -> Mapped {
        let st = &mut self.state;
        let reanchored = st.in_ssrc != Some(ssrc);
        if reanchored {
            match st.last_out {
                // The first packet ever passes its numbers through.
                None => {
                    st.seq_offset = 0;
                    st.ts_offset = 0;
                }
                Some((last_seq, last_ts)) => {
                    let gap = st.pending_gap.unwrap_or(st.default_gap);
                    st.seq_offset = last_seq.wrapping_add(1).wrapping_sub(seq);
                    st.ts_offset = last_ts.wrapping_add(gap).wrapping_sub(timestamp);
                }
            }
            st.in_ssrc = Some(ssrc);
            st.pending_gap = None;
        }
        let out_seq = seq.wrapping_add(st.seq_offset);
        let out_ts = timestamp.wrapping_add(st.ts_offset);
        // Continue from the highest number sent, so a reordered packet just
        // before a switch cannot make the new source collide with it.
        match st.last_out {
            Some((last, _)) if !seq_after(out_seq, last) => {}
            _ => st.last_out = Some((out_seq, out_ts)),
        }
        Mapped {
            ssrc: st.out_ssrc,
            seq: out_seq,
            timestamp: out_ts,
            reanchored,
        }
    }

    /// Maps the packet in `buf` and rewrites its header in place, setting
    /// the marker on a re-anchor.
    #[inline]
    pub fn apply(&mut self, buf: &mut [u8]) -> Result<Mapped, RtpError> {
        let mut h = RtpHeaderMut::new(buf)?;
        let m = self.map(h.ssrc(), h.sequence_number(), h.timestamp());
        h.set_ssrc(m.ssrc);
        h.set_sequence_number(m.seq);
        h.set_timestamp(m.timestamp);
        if m.reanchored {
            h.set_marker(true);
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{RtpHeader, RtpPacket};

    #[test]
    fn continuity_across_a_source_switch() {
        let mut r = Rewriter::new(0xabcd, 160);
        // Source A: seq 1000.., ts 5000.. — passed through.
        for i in 0..10u16 {
            let m = r.map(0xaaaa, 1000 + i, 5000 + 160 * u32::from(i));
            assert_eq!(
                (m.ssrc, m.seq, m.timestamp),
                (0xabcd, 1000 + i, 5000 + 160 * u32::from(i))
            );
            assert_eq!(m.reanchored, i == 0);
        }
        // Source B, unrelated numbers, after 60 ms of silence (480 units).
        r.set_gap(480);
        let m = r.map(0xbbbb, 65530, 4_000_000_000);
        assert_eq!(
            (m.ssrc, m.seq, m.timestamp, m.reanchored),
            (0xabcd, 1010, 5000 + 160 * 9 + 480, true)
        );
        let mut prev = m;
        for i in 1..20u16 {
            // B wraps its sequence and timestamp space: the output does not.
            let m = r.map(
                0xbbbb,
                65530u16.wrapping_add(i),
                4_000_000_000u32.wrapping_add(160 * u32::from(i)),
            );
            assert_eq!(m.seq, prev.seq + 1);
            assert_eq!(m.timestamp, prev.timestamp + 160);
            assert!(!m.reanchored);
            prev = m;
        }
        // Back to A: continues again, default gap of one packet.
        let m = r.map(0xaaaa, 1010, 5000 + 1600);
        assert_eq!((m.seq, m.timestamp), (prev.seq + 1, prev.timestamp + 160));
    }

    #[test]
    fn reordering_preserved_and_highest_wins() {
        let mut r = Rewriter::new(1, 160);
        r.map(7, 100, 0);
        r.map(7, 102, 320);
        let late = r.map(7, 101, 160);
        assert_eq!((late.seq, late.timestamp), (101, 160));
        // The switch continues from 102, not from the late 101.
        let m = r.map(8, 9, 9);
        assert_eq!((m.seq, m.timestamp), (103, 480));
    }

    #[test]
    fn snapshot_round_trip_on_failover() {
        let mut r = Rewriter::new(0x5150, 160);
        for i in 0..50u16 {
            r.map(0x1111, 300 + i, 160 * u32::from(i));
        }
        let snap = r.state();
        // Another node restores the snapshot; 300 ms passed (2400 units).
        let mut r2 = Rewriter::from_state(snap);
        assert_eq!(r2.state(), snap);
        r2.reanchor(Some(2400));
        let m = r2.map(0x1111, 350 + 15, 160 * 65);
        assert_eq!(
            (m.ssrc, m.seq, m.timestamp, m.reanchored),
            (0x5150, 350, 160 * 49 + 2400, true)
        );
        let m = r2.map(0x1111, 350 + 16, 160 * 66);
        assert_eq!(
            (m.seq, m.timestamp, m.reanchored),
            (351, 160 * 50 + 2400, false)
        );
        // Without a re-anchor the restored mapping simply continues.
        let mut r3 = Rewriter::from_state(snap);
        let m = r3.map(0x1111, 350, 160 * 50);
        assert_eq!((m.seq, m.timestamp, m.reanchored), (350, 8000, false));
    }

    #[test]
    fn apply_rewrites_the_packet() {
        let mut r = Rewriter::new(0xfeed, 160);
        let mut buf = [0u8; 172];
        let h = RtpHeader {
            payload_type: 0,
            sequence_number: 10,
            timestamp: 1600,
            ssrc: 0x1234,
            ..RtpHeader::default()
        };
        h.write(&mut buf).expect("fits");
        let m = r.apply(&mut buf).expect("rtp");
        let p = RtpPacket::parse(&buf).expect("valid");
        assert_eq!(
            (p.ssrc(), p.sequence_number(), p.timestamp(), p.marker()),
            (0xfeed, m.seq, m.timestamp, true)
        );
        RtpHeader {
            sequence_number: 11,
            timestamp: 1760,
            ssrc: 0x1234,
            ..h
        }
        .write(&mut buf)
        .expect("fits");
        r.apply(&mut buf).expect("rtp");
        let p = RtpPacket::parse(&buf).expect("valid");
        assert_eq!((p.sequence_number(), p.marker()), (11, false));
        assert_eq!(r.apply(&mut [0u8; 4]), Err(RtpError::TooShort));
    }
}
