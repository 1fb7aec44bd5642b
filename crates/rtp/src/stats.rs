//! Per-source receive statistics, as RFC 3550 §A.1 (sequence validation),
//! §A.3 (expected and lost packets) and §A.8 (interarrival jitter) describe
//! them, and the report block an RR carries.
//!
//! Time is an input: either arrival times already in the stream's clock
//! units (any origin; only differences matter) or `Instant`s, which are
//! converted against the first one seen. Use one form per stream.

use std::time::Instant;

use crate::rtcp::{ReportBlock, ntp_middle};

/// Packets in sequence before a new source is believed (§A.1).
pub const MIN_SEQUENTIAL: u16 = 2;
/// A forward jump up to this is a gap (loss), beyond it a suspected restart.
pub const MAX_DROPOUT: u16 = 3000;
/// A backward step up to this is reordering or duplication.
pub const MAX_MISORDER: u16 = 100;
const RTP_SEQ_MOD: u32 = 1 << 16;

/// What one packet's sequence number meant for the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeqOutcome {
    /// The source is still on probation and the packet is not counted.
    Probation,
    /// Newer than any before (possibly after a gap, which counts as loss).
    InOrder,
    /// Same sequence number as the highest seen: counted, as the RFC does,
    /// which is how cumulative loss goes negative.
    Duplicate,
    /// Older than the highest seen, within [`MAX_MISORDER`]: counted.
    Late,
    /// A jump too large to be loss or reordering; not counted. If the next
    /// packet follows on from it, the source is taken to have restarted.
    Jump,
    /// The packet confirmed a jump: statistics start over from it.
    Restart,
}

impl SeqOutcome {
    /// Whether the packet counted in the statistics; a relay may choose to
    /// drop the others (probation, unconfirmed jumps).
    pub fn counted(self) -> bool {
        !matches!(self, SeqOutcome::Probation | SeqOutcome::Jump)
    }
}

/// Receive statistics for one SSRC. Plain data: no allocation, no locks;
/// updating it is a handful of integer operations and one float multiply.
#[derive(Debug, Clone)]
pub struct ReceiverStats {
    ssrc: u32,
    clock_rate: u32,
    started: bool,
    probation: u16,
    max_seq: u16,
    /// Shifted count of sequence wraps (multiples of 65536).
    cycles: u64,
    base_seq: u64,
    /// One past a suspected restart's first sequence; > 0xffff when none.
    bad_seq: u32,
    received: u64,
    received_prior: u64,
    expected_prior: u64,
    late: u64,
    duplicates: u64,
    /// Relative transit of the previous packet, in clock units.
    transit: Option<u32>,
    /// §A.8 running estimate, in timestamp units (kept fractional so small
    /// jitter does not round away).
    jitter: f64,
    /// Compact NTP time of the last SR and when it arrived (clock units).
    last_sr: Option<(u32, u32)>,
    epoch: Option<Instant>,
}

impl ReceiverStats {
    /// `clock_rate` is the RTP clock of the stream's payload (8000 for
    /// G.711 and, by RFC 3551's quirk, G.722; 48000 for Opus).
    pub fn new(ssrc: u32, clock_rate: u32) -> Self {
        ReceiverStats {
            ssrc,
            clock_rate: clock_rate.max(1),
            started: false,
            probation: MIN_SEQUENTIAL,
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: RTP_SEQ_MOD + 1,
            received: 0,
            received_prior: 0,
            expected_prior: 0,
            late: 0,
            duplicates: 0,
            transit: None,
            jitter: 0.0,
            last_sr: None,
            epoch: None,
        }
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    pub fn clock_rate(&self) -> u32 {
        self.clock_rate
    }

    /// Records a packet: its sequence number, RTP timestamp and arrival time
    /// in the stream's clock units.
    #[inline]
    pub fn on_packet(&mut self, seq: u16, rtp_timestamp: u32, arrival: u32) -> SeqOutcome {
        let outcome = self.update_seq(seq);
        match outcome {
            // A suspected jump may belong to another source: keep it out of
            // the jitter estimate.
            SeqOutcome::Jump => {}
            // A restarted source has a new timestamp origin: new baseline.
            SeqOutcome::Restart => self.transit = Some(arrival.wrapping_sub(rtp_timestamp)),
            _ => self.update_jitter(rtp_timestamp, arrival),
        }
        outcome
    }

    /// [`on_packet`](Self::on_packet) with an `Instant` arrival time.
    #[inline]
    pub fn on_packet_at(&mut self, seq: u16, rtp_timestamp: u32, arrival: Instant) -> SeqOutcome {
        let units = self.units(arrival);
        self.on_packet(seq, rtp_timestamp, units)
    }

    /// Notes an SR from this source: its NTP timestamp and arrival time in
    /// clock units, for the LSR/DLSR fields of the next report block.
    pub fn on_sender_report(&mut self, ntp_timestamp: u64, arrival: u32) {
        self.last_sr = Some((ntp_middle(ntp_timestamp), arrival));
    }

    pub fn on_sender_report_at(&mut self, ntp_timestamp: u64, arrival: Instant) {
        let units = self.units(arrival);
        self.on_sender_report(ntp_timestamp, units);
    }

    /// Clock units since the first `Instant` this stream saw.
    fn units(&mut self, t: Instant) -> u32 {
        let epoch = *self.epoch.get_or_insert(t);
        let d = t.saturating_duration_since(epoch);
        let rate = u64::from(self.clock_rate);
        (d.as_secs() * rate + u64::from(d.subsec_nanos()) * rate / 1_000_000_000) as u32
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u64::from(seq);
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    /// RFC 3550 §A.1 `update_seq`, with the outcome named.
    fn update_seq(&mut self, seq: u16) -> SeqOutcome {
        if !self.started {
            self.started = true;
            self.init_seq(seq);
            self.max_seq = seq.wrapping_sub(1);
            self.probation = MIN_SEQUENTIAL;
        }
        let udelta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    return SeqOutcome::InOrder;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return SeqOutcome::Probation;
        }
        let outcome = if udelta == 0 {
            self.duplicates += 1;
            SeqOutcome::Duplicate
        } else if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += u64::from(RTP_SEQ_MOD);
            }
            self.max_seq = seq;
            SeqOutcome::InOrder
        } else if u32::from(udelta) <= RTP_SEQ_MOD - u32::from(MAX_MISORDER) {
            if u32::from(seq) == self.bad_seq {
                self.init_seq(seq);
                SeqOutcome::Restart
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (RTP_SEQ_MOD - 1);
                return SeqOutcome::Jump;
            }
        } else {
            self.late += 1;
            SeqOutcome::Late
        };
        self.received += 1;
        outcome
    }

    /// RFC 3550 §A.8: J += (|D| − J) / 16, D the change in relative transit.
    #[inline]
    fn update_jitter(&mut self, rtp_timestamp: u32, arrival: u32) {
        let transit = arrival.wrapping_sub(rtp_timestamp);
        if let Some(prev) = self.transit {
            let d = (transit.wrapping_sub(prev) as i32).unsigned_abs();
            self.jitter += (f64::from(d) - self.jitter) / 16.0;
        }
        self.transit = Some(transit);
    }

    /// Packets counted (after probation, duplicates and late ones included).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Extended highest sequence number: wraps in the high 16 bits.
    pub fn extended_highest_seq(&self) -> u64 {
        self.cycles + u64::from(self.max_seq)
    }

    /// Packets expected from the base sequence to the highest (§A.3).
    pub fn expected(&self) -> u64 {
        if self.probation > 0 {
            return 0;
        }
        (self.extended_highest_seq() + 1).saturating_sub(self.base_seq)
    }

    /// Expected minus received: negative when duplicates outnumber losses.
    pub fn cumulative_lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    /// Whole-stream loss in percent (0 when nothing is expected yet).
    pub fn loss_percent(&self) -> f64 {
        let expected = self.expected();
        if expected == 0 {
            return 0.0;
        }
        (self.cumulative_lost().max(0) as f64) * 100.0 / expected as f64
    }

    /// Packets that arrived after a newer one.
    pub fn late_packets(&self) -> u64 {
        self.late
    }

    /// Packets repeating the highest sequence number.
    pub fn duplicate_packets(&self) -> u64 {
        self.duplicates
    }

    /// Interarrival jitter in timestamp units, fractional.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// Interarrival jitter in microseconds.
    pub fn jitter_micros(&self) -> f64 {
        self.jitter * 1e6 / f64::from(self.clock_rate)
    }

    /// Builds the report block for this source and starts a new interval
    /// for the fraction lost (§A.3). `now` is in clock units, as the
    /// arrivals were; it sets DLSR.
    pub fn report_block(&mut self, now: u32) -> ReportBlock {
        let expected = self.expected();
        let expected_interval = expected.saturating_sub(self.expected_prior);
        self.expected_prior = expected;
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        let (last_sr, delay_since_last_sr) = match self.last_sr {
            Some((lsr, at)) => {
                let units = u64::from(now.wrapping_sub(at));
                (lsr, (units * 65_536 / u64::from(self.clock_rate)) as u32)
            }
            None => (0, 0),
        };
        ReportBlock {
            ssrc: self.ssrc,
            fraction_lost,
            cumulative_lost: self.cumulative_lost().clamp(-0x80_0000, 0x7f_ffff) as i32,
            extended_highest_seq: self.extended_highest_seq() as u32,
            jitter: self.jitter as u32,
            last_sr,
            delay_since_last_sr,
        }
    }

    /// [`report_block`](Self::report_block) with an `Instant`.
    pub fn report_block_at(&mut self, now: Instant) -> ReportBlock {
        let units = self.units(now);
        self.report_block(units)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Feeds seqs with 20 ms G.711 spacing and on-time arrival.
    fn feed(s: &mut ReceiverStats, seqs: impl IntoIterator<Item = u16>) -> Vec<SeqOutcome> {
        seqs.into_iter()
            .map(|q| {
                let ts = u32::from(q).wrapping_mul(160);
                s.on_packet(q, ts, ts.wrapping_add(1234))
            })
            .collect()
    }

    #[test]
    fn in_order_stream_has_no_loss() {
        let mut s = ReceiverStats::new(1, 8000);
        let out = feed(&mut s, 100..1100);
        assert_eq!(out[0], SeqOutcome::Probation);
        assert!(out[1..].iter().all(|&o| o == SeqOutcome::InOrder));
        // The probation packet is not counted (§A.1): base is 101.
        assert_eq!(s.received(), 999);
        assert_eq!(s.expected(), 999);
        assert_eq!(s.cumulative_lost(), 0);
        assert_eq!(s.extended_highest_seq(), 1099);
        assert_eq!(s.jitter(), 0.0);
        let rb = s.report_block(0);
        assert_eq!((rb.fraction_lost, rb.cumulative_lost), (0, 0));
        assert_eq!(rb.extended_highest_seq, 1099);
        assert_eq!((rb.last_sr, rb.delay_since_last_sr), (0, 0));
    }

    #[test]
    fn jitter_matches_hand_computation() {
        // 20 packets, 160 ts units apart; every odd packet arrives 40 units
        // (5 ms) late. Relative transit alternates 0, 40, 0, 40, ..., so
        // |D| = 40 for each packet after the first, and J_n = J_{n-1} +
        // (40 − J_{n-1})/16 gives J_n = 40·(1 − (15/16)^n) after n updates.
        let mut s = ReceiverStats::new(7, 8000);
        for i in 0u32..20 {
            let ts = 5000 + 160 * i;
            let arrival = 90_000 + 160 * i + if i % 2 == 1 { 40 } else { 0 };
            s.on_packet(i as u16, ts, arrival);
        }
        let expected = 40.0 * (1.0 - (15.0f64 / 16.0).powi(19));
        assert!(
            (s.jitter() - expected).abs() < 1e-9,
            "{} vs {expected}",
            s.jitter()
        );
        // ≈ 28.26 units = 3.53 ms at 8 kHz; the report truncates.
        assert!((s.jitter_micros() - expected * 125.0).abs() < 1e-6);
        assert_eq!(s.report_block(0).jitter, 28);
    }

    #[test]
    fn jitter_from_instants() {
        let t0 = Instant::now();
        let mut s = ReceiverStats::new(7, 8000);
        for i in 0u32..20 {
            let late = if i % 2 == 1 { 5_000 } else { 0 };
            let at = t0 + Duration::from_micros(u64::from(i) * 20_000 + late);
            s.on_packet_at(i as u16, 160 * i, at);
        }
        let expected = 40.0 * (1.0 - (15.0f64 / 16.0).powi(19));
        assert!((s.jitter() - expected).abs() < 1e-9);
    }

    #[test]
    fn lost_packets_counted_and_fraction_per_interval() {
        let mut s = ReceiverStats::new(1, 8000);
        let missing = [5u16, 6, 7, 20, 33, 34, 50, 71, 88, 97];
        feed(&mut s, (0..100).filter(|q| !missing.contains(q)));
        // Base is 1 (packet 0 was probation): expected 99, received 89.
        assert_eq!(s.expected(), 99);
        assert_eq!(s.received(), 89);
        assert_eq!(s.cumulative_lost(), 10);
        assert!((s.loss_percent() - 1000.0 / 99.0).abs() < 1e-9);
        let rb = s.report_block(0);
        assert_eq!(rb.cumulative_lost, 10);
        assert_eq!(rb.fraction_lost, (10 * 256 / 99) as u8);
        // A clean interval: fraction back to 0, cumulative stays.
        feed(&mut s, 100..200);
        let rb = s.report_block(0);
        assert_eq!((rb.fraction_lost, rb.cumulative_lost), (0, 10));
        // Half of the next interval lost.
        feed(&mut s, (200..300).filter(|q| q % 2 == 0));
        let rb = s.report_block(0);
        // Highest is 298: 99 expected in the interval, 50 received.
        assert_eq!(rb.fraction_lost, (49 * 256 / 99) as u8);
        assert_eq!(rb.cumulative_lost, 59);
    }

    #[test]
    fn sequence_wrap() {
        let mut s = ReceiverStats::new(1, 8000);
        let out = feed(&mut s, (0..20).map(|i| 65530u16.wrapping_add(i)));
        assert!(out[1..].iter().all(|&o| o == SeqOutcome::InOrder));
        assert_eq!(s.extended_highest_seq(), (1 << 16) + 13);
        assert_eq!(s.cumulative_lost(), 0);
        assert_eq!(s.received(), 19);
        assert_eq!(s.report_block(0).extended_highest_seq, 0x0001_000d);
        // A loss straddling the wrap is still counted.
        let mut s = ReceiverStats::new(1, 8000);
        feed(&mut s, [65532, 65533, 65534, 1, 2]);
        assert_eq!(s.cumulative_lost(), 2); // 65535 and 0
        assert_eq!(s.extended_highest_seq(), 65536 + 2);
    }

    #[test]
    fn reordering_and_duplicates() {
        let mut s = ReceiverStats::new(1, 8000);
        let out = feed(&mut s, [1, 2, 3, 5, 4, 6, 7]);
        assert_eq!(out[4], SeqOutcome::Late);
        assert_eq!(s.cumulative_lost(), 0);
        assert_eq!(s.late_packets(), 1);
        assert_eq!(s.extended_highest_seq(), 7);
        // Reordering across the wrap does not add a cycle.
        let mut s = ReceiverStats::new(1, 8000);
        let out = feed(&mut s, [65533, 65534, 0, 65535, 1]);
        assert_eq!(out[3], SeqOutcome::Late);
        assert_eq!(s.extended_highest_seq(), 65536 + 1);
        assert_eq!(s.cumulative_lost(), 0);
        // A duplicate makes cumulative loss negative, as the RFC says.
        let mut s = ReceiverStats::new(1, 8000);
        let out = feed(&mut s, [10, 11, 12, 12, 13]);
        assert_eq!(out[3], SeqOutcome::Duplicate);
        assert_eq!(s.cumulative_lost(), -1);
        assert_eq!(s.report_block(0).cumulative_lost, -1);
        assert_eq!(s.duplicate_packets(), 1);
    }

    #[test]
    fn source_restart_and_stray_jump() {
        let mut s = ReceiverStats::new(1, 8000);
        feed(&mut s, 1000..1100);
        // One stray packet far away: ignored, the stream goes on.
        let out = feed(&mut s, [30_000, 1100, 1101]);
        assert_eq!(
            out,
            [SeqOutcome::Jump, SeqOutcome::InOrder, SeqOutcome::InOrder]
        );
        assert_eq!(s.cumulative_lost(), 0);
        assert_eq!(s.received(), 101);
        // The source restarts at 40000: the second packet confirms it.
        let out = feed(&mut s, [40_000, 40_001, 40_002, 40_004]);
        assert_eq!(
            out,
            [
                SeqOutcome::Jump,
                SeqOutcome::Restart,
                SeqOutcome::InOrder,
                SeqOutcome::InOrder
            ]
        );
        assert_eq!(s.received(), 3);
        assert_eq!(s.expected(), 4);
        assert_eq!(s.cumulative_lost(), 1);
        assert_eq!(s.extended_highest_seq(), 40_004);
        // A backward restart (udelta in the jump range) works the same way.
        let out = feed(&mut s, [200, 201]);
        assert_eq!(out, [SeqOutcome::Jump, SeqOutcome::Restart]);
        assert_eq!(s.expected(), 1);
    }

    #[test]
    fn probation_needs_sequential_packets() {
        let mut s = ReceiverStats::new(1, 8000);
        let out = feed(&mut s, [10, 500, 9000, 9001, 9002]);
        assert_eq!(
            out,
            [
                SeqOutcome::Probation,
                SeqOutcome::Probation,
                SeqOutcome::Probation,
                SeqOutcome::InOrder,
                SeqOutcome::InOrder
            ]
        );
        assert_eq!(s.expected(), 2);
        assert_eq!(s.cumulative_lost(), 0);
        // Before probation ends nothing is expected, even from seq 0.
        let mut s = ReceiverStats::new(1, 8000);
        feed(&mut s, [0]);
        assert_eq!((s.expected(), s.cumulative_lost()), (0, 0));
        assert_eq!(s.report_block(0).fraction_lost, 0);
    }

    #[test]
    fn lsr_and_dlsr() {
        let mut s = ReceiverStats::new(1, 8000);
        feed(&mut s, 0..10);
        s.on_sender_report(0x1122_3344_5566_7788, 8000);
        // 1.5 s (12000 units) later: DLSR = 1.5 × 65536.
        let rb = s.report_block(20_000);
        assert_eq!(rb.last_sr, 0x3344_5566);
        assert_eq!(rb.delay_since_last_sr, 98_304);
        let t0 = Instant::now();
        let mut s = ReceiverStats::new(1, 48_000);
        s.on_packet_at(1, 0, t0);
        s.on_sender_report_at(1 << 16, t0 + Duration::from_millis(100));
        let rb = s.report_block_at(t0 + Duration::from_millis(350));
        assert_eq!((rb.last_sr, rb.delay_since_last_sr), (1, 65_536 / 4));
    }
}
