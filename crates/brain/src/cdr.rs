//! Call detail records: one per call attempt, answered or not, handed to
//! the store's CDR writer when the call ends.
//!
//! A [`CallRecord`] is filled in as the call goes (who, when it rang, when
//! it was answered) and [`CallRecord::finish`] turns it into the row.

use store::{Disposition, HangupSide, NewCdr, TenantId};

/// What is known of a call so far.
#[derive(Debug, Clone)]
pub struct CallRecord {
    pub tenant_id: TenantId,
    pub tenant_name: String,
    /// The caller's Call-ID (leg A), which is what the caller's own logs show.
    pub call_id: String,
    pub caller: String,
    pub callee: String,
    pub direction: &'static str,
    /// Unix milliseconds.
    pub start_at: i64,
    pub answer_at: Option<i64>,
    /// Media stats from the SBC at release (caller side, callee side).
    pub leg_a: Option<store::LegStats>,
    pub leg_b: Option<store::LegStats>,
}

/// How a call ended, as the B2BUA saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Answered, then hung up by this side.
    HungUp(HangupSide),
    /// The caller cancelled before an answer.
    Cancelled,
    /// Not answered in time (our timer, or the callee's 408/480).
    NoAnswer { code: u16 },
    /// A final non-2xx response went to the caller (from the callee or
    /// from us).
    Refused { code: u16, side: HangupSide },
}

/// The disposition of a call that got final response `code` and no answer.
pub fn disposition_for(code: u16) -> Disposition {
    match code {
        486 | 600 => Disposition::Busy,
        408 | 480 => Disposition::NoAnswer,
        487 => Disposition::Cancelled,
        400..=499 | 603 | 604 | 606 => Disposition::Rejected,
        _ => Disposition::Failed,
    }
}

impl Ending {
    pub fn disposition(self) -> Disposition {
        match self {
            Ending::HungUp(_) => Disposition::Answered,
            Ending::Cancelled => Disposition::Cancelled,
            Ending::NoAnswer { .. } => Disposition::NoAnswer,
            Ending::Refused { code, .. } => disposition_for(code),
        }
    }

    fn sip_code(self) -> u16 {
        match self {
            Ending::HungUp(_) => 200,
            Ending::Cancelled => 487,
            Ending::NoAnswer { code } | Ending::Refused { code, .. } => code,
        }
    }

    fn side(self) -> HangupSide {
        match self {
            Ending::HungUp(side) | Ending::Refused { side, .. } => side,
            Ending::Cancelled => HangupSide::Caller,
            Ending::NoAnswer { .. } => HangupSide::System,
        }
    }
}

impl CallRecord {
    /// The row for this call ending now (`end_at`, unix ms).
    pub fn finish(&self, ending: Ending, end_at: i64) -> NewCdr {
        NewCdr {
            tenant_id: self.tenant_id,
            tenant_name: self.tenant_name.clone(),
            call_id: self.call_id.clone(),
            caller: self.caller.clone(),
            callee: self.callee.clone(),
            direction: self.direction.to_owned(),
            start_at: self.start_at,
            // An answered call keeps its answer time; the store bills from it.
            answer_at: self.answer_at,
            end_at: end_at.max(self.start_at),
            disposition: ending.disposition(),
            sip_code: ending.sip_code(),
            hangup_side: ending.side(),
            leg_a: self.leg_a,
            leg_b: self.leg_b,
        }
    }
}

/// The SBC's counters as the store keeps them. MOS is only stored when the
/// SBC had one (0 means "no estimate") and is clamped to the 1–5 scale the
/// schema allows.
pub fn leg_stats(s: &proto::message::LegStats) -> store::LegStats {
    store::LegStats {
        packets_sent: s.packets_out,
        packets_received: s.packets_in,
        bytes_sent: s.bytes_out,
        bytes_received: s.bytes_in,
        packets_lost: s.lost,
        jitter_us: u64::from(s.jitter_us),
        mos: (s.mos_x100 > 0).then(|| (f64::from(s.mos_x100) / 100.0).clamp(1.0, 5.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> CallRecord {
        CallRecord {
            tenant_id: TenantId(1),
            tenant_name: "acme".into(),
            call_id: "c1".into(),
            caller: "alice".into(),
            callee: "bob".into(),
            direction: "internal",
            start_at: 1_000,
            answer_at: None,
            leg_a: None,
            leg_b: None,
        }
    }

    #[test]
    fn dispositions_follow_the_final_code() {
        assert_eq!(disposition_for(486), Disposition::Busy);
        assert_eq!(disposition_for(600), Disposition::Busy);
        assert_eq!(disposition_for(480), Disposition::NoAnswer);
        assert_eq!(disposition_for(404), Disposition::Rejected);
        assert_eq!(disposition_for(603), Disposition::Rejected);
        assert_eq!(disposition_for(503), Disposition::Failed);
        assert_eq!(disposition_for(487), Disposition::Cancelled);
    }

    #[test]
    fn answered_call_row() {
        let mut r = record();
        r.answer_at = Some(2_000);
        let row = r.finish(Ending::HungUp(HangupSide::Callee), 5_000);
        assert_eq!(row.disposition, Disposition::Answered);
        assert_eq!(row.sip_code, 200);
        assert_eq!(row.hangup_side, HangupSide::Callee);
        assert_eq!(row.answer_at, Some(2_000));
    }

    #[test]
    fn unanswered_rows() {
        let r = record();
        let row = r.finish(Ending::Cancelled, 3_000);
        assert_eq!(
            (row.disposition, row.sip_code, row.hangup_side),
            (Disposition::Cancelled, 487, HangupSide::Caller)
        );
        let row = r.finish(
            Ending::Refused {
                code: 486,
                side: HangupSide::Callee,
            },
            3_000,
        );
        assert_eq!(row.disposition, Disposition::Busy);
        let row = r.finish(Ending::NoAnswer { code: 480 }, 500);
        assert_eq!(row.hangup_side, HangupSide::System);
        assert_eq!(row.end_at, 1_000, "end never precedes start");
    }

    #[test]
    fn mos_is_clamped_or_absent() {
        let mut s = proto::message::LegStats::default();
        assert_eq!(leg_stats(&s).mos, None);
        s.mos_x100 = 432;
        assert_eq!(leg_stats(&s).mos, Some(4.32));
        s.mos_x100 = 900;
        assert_eq!(leg_stats(&s).mos, Some(5.0));
    }
}
