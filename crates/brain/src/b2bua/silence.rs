//! When a call's media is dead: the SBC says a leg has been silent for its
//! media timeout; the call is over when every leg that matters has said so
//! and none has received a packet since. (A leg can go quiet and come back
//! — a phone with silence suppression, a long mute — and the SBC reports
//! only the going.)

use std::collections::HashMap;

use proto::message::LegStats;
use proto::snapshot::LegId;

use crate::nodes::{MediaLease, Nodes};

#[derive(Debug, Default)]
pub(super) struct Silence {
    /// Packets the leg had received when it was reported silent.
    silent: HashMap<LegId, u64>,
}

impl Silence {
    /// A timeout of `leg` reported for the lease's call: asks the SBC for
    /// its counters now and says whether every one of `legs` is silent.
    pub async fn on_report(
        &mut self,
        nodes: &Nodes,
        lease: &MediaLease,
        leg: LegId,
        legs: &[LegId],
    ) -> bool {
        match nodes.stats(lease).await {
            Ok(now) => self.on_timeout(leg, &now, legs),
            Err(e) => {
                tracing::debug!(call = %lease.call_id.0, error = %e, "no stats after a media timeout");
                false
            }
        }
    }

    /// Takes a timeout of `leg` with the SBC's counters now; true when
    /// every one of `legs` is silent.
    pub fn on_timeout(&mut self, leg: LegId, now: &[(LegId, LegStats)], legs: &[LegId]) -> bool {
        let received = |l: LegId| now.iter().find(|(x, _)| *x == l).map(|(_, s)| s.packets_in);
        if let Some(n) = received(leg) {
            self.silent.insert(leg, n);
        }
        // Legs that received something since their report are alive again.
        self.silent
            .retain(|l, at| received(*l).is_some_and(|n| n == *at));
        legs.iter().all(|l| self.silent.contains_key(l))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(a: u64, b: u64) -> Vec<(LegId, LegStats)> {
        let s = |n| LegStats {
            packets_in: n,
            ..LegStats::default()
        };
        vec![(LegId(1), s(a)), (LegId(2), s(b))]
    }

    const BOTH: [LegId; 2] = [LegId(1), LegId(2)];

    #[test]
    fn dead_only_when_both_legs_are_silent() {
        let mut s = Silence::default();
        assert!(!s.on_timeout(LegId(1), &stats(100, 200), &BOTH));
        assert!(s.on_timeout(LegId(2), &stats(100, 200), &BOTH));
    }

    #[test]
    fn a_leg_that_came_back_is_alive() {
        let mut s = Silence::default();
        assert!(!s.on_timeout(LegId(1), &stats(100, 200), &BOTH));
        // Leg 1 received 50 more packets before leg 2 went quiet.
        assert!(!s.on_timeout(LegId(2), &stats(150, 200), &BOTH));
        assert!(s.on_timeout(LegId(1), &stats(150, 200), &BOTH));
    }

    #[test]
    fn one_leg_is_enough_when_only_one_matters() {
        let mut s = Silence::default();
        assert!(s.on_timeout(LegId(1), &stats(100, 200), &[LegId(1)]));
    }
}
