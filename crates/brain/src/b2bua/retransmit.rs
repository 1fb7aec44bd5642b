//! Our 2xx to an INVITE, re-sent over UDP until its ACK comes (RFC 3261
//! §13.3.1.4: the transaction layer leaves this to the UAS core).

use std::time::{Duration, Instant};

use sip::Message;
use sip::transaction::TxId;

pub(super) struct Retransmit {
    pub tx: TxId,
    pub resp: Message,
    /// The CSeq the ACK will carry.
    pub seq: u32,
    pub next: Instant,
    interval: Duration,
    give_up: Instant,
}

/// What a due retransmission timer asks for.
pub(super) enum Due {
    Resend,
    /// 64·T1 without an ACK: the session is dead.
    GiveUp,
}

impl Retransmit {
    pub fn new(tx: TxId, resp: &Message, t1: Duration) -> Self {
        let now = Instant::now();
        Self {
            tx,
            resp: resp.clone(),
            seq: resp.cseq().map_or(0, |c| c.seq),
            next: now + t1,
            interval: t1,
            give_up: now + t1 * 64,
        }
    }

    /// `None` while not due; the interval doubles up to `t2`.
    pub fn poll(&mut self, now: Instant, t2: Duration) -> Option<Due> {
        if self.next > now {
            return None;
        }
        if self.give_up <= now {
            return Some(Due::GiveUp);
        }
        self.interval = (self.interval * 2).min(t2);
        self.next = now + self.interval;
        Some(Due::Resend)
    }
}
