//! Per-participant jitter buffer: reorders by sequence number, drops late
//! and duplicate packets, reports holes so the caller conceals them, and
//! adapts its delay by the simplest rule that works: an underrun (nothing
//! to play and nothing newer waiting) does not advance the play-out point,
//! which adds one frame of delay; a backlog beyond the limit drops the
//! oldest frame, which takes one away.
//!
//! Each packet is taken to carry one tick's frame (the mixer's packet
//! time). Slots are preallocated; a push copies the payload in place.

/// Ring size: the furthest ahead of the play-out point a packet may be.
const SLOTS: usize = 16;

#[derive(Debug, Clone)]
struct Slot {
    seq: u16,
    filled: bool,
    len: u16,
    data: Box<[u8]>,
}

/// Counters a quality report would show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    pub received: u64,
    /// Arrived after their play-out time.
    pub late: u64,
    pub duplicate: u64,
    /// Holes played out as concealment.
    pub lost: u64,
    /// Dropped to bring the delay back down.
    pub trimmed: u64,
    /// Larger than a frame of the negotiated codec.
    pub oversized: u64,
    /// Sequence jumps that restarted the buffer.
    pub resyncs: u64,
}

/// What to play this tick.
#[derive(Debug, PartialEq, Eq)]
pub enum Pop<'a> {
    Frame(&'a [u8]),
    /// A packet is missing but later ones are here: conceal it.
    Lost,
    /// Nothing to play (not started, filling, or the sender went quiet).
    Empty,
}

#[derive(Debug, Clone)]
pub struct JitterBuffer {
    slots: Box<[Slot]>,
    /// Frames held before play-out starts.
    depth: u16,
    /// Backlog (frames) above which the oldest is dropped.
    max_backlog: u16,
    started: bool,
    filling: u16,
    next: u16,
    highest: u16,
    stats: JitterStats,
}

#[inline]
fn ahead(a: u16, b: u16) -> i16 {
    a.wrapping_sub(b) as i16
}

impl JitterBuffer {
    /// `depth` frames of initial delay (at least 1), payloads up to
    /// `max_payload` bytes.
    pub fn new(depth: u16, max_payload: usize) -> Self {
        let depth = depth.clamp(1, SLOTS as u16 / 2);
        let slot = Slot {
            seq: 0,
            filled: false,
            len: 0,
            data: vec![0; max_payload].into_boxed_slice(),
        };
        JitterBuffer {
            slots: vec![slot; SLOTS].into_boxed_slice(),
            depth,
            max_backlog: depth + 3,
            started: false,
            filling: 0,
            next: 0,
            highest: 0,
            stats: JitterStats::default(),
        }
    }

    pub fn stats(&self) -> &JitterStats {
        &self.stats
    }

    /// Forgets everything, as for a new stream (a new SSRC).
    pub fn reset(&mut self) {
        self.started = false;
        for s in self.slots.iter_mut() {
            s.filled = false;
        }
    }

    fn restart(&mut self, seq: u16) {
        for s in self.slots.iter_mut() {
            s.filled = false;
        }
        self.started = true;
        self.filling = self.depth;
        self.next = seq;
        self.highest = seq;
    }

    /// Stores one packet's payload.
    pub fn push(&mut self, seq: u16, payload: &[u8]) {
        if payload.len() > self.slots[0].data.len() {
            self.stats.oversized += 1;
            return;
        }
        if !self.started {
            self.restart(seq);
        }
        let d = ahead(seq, self.next);
        if d < 0 {
            // Already played (or concealed), or a wild jump backwards.
            if d < -(SLOTS as i16) * 4 {
                self.stats.resyncs += 1;
                self.restart(seq);
            } else {
                self.stats.late += 1;
                return;
            }
        } else if d as usize >= SLOTS {
            // Too far ahead to hold: the sender jumped; follow it.
            self.stats.resyncs += 1;
            self.restart(seq);
        }
        let slot = &mut self.slots[seq as usize % SLOTS];
        if slot.filled && slot.seq == seq {
            self.stats.duplicate += 1;
            return;
        }
        slot.seq = seq;
        slot.filled = true;
        slot.len = payload.len() as u16;
        slot.data[..payload.len()].copy_from_slice(payload);
        if ahead(seq, self.highest) > 0 {
            self.highest = seq;
        }
        self.stats.received += 1;
    }

    /// The frame for this tick.
    pub fn pop(&mut self) -> Pop<'_> {
        if !self.started {
            return Pop::Empty;
        }
        if self.filling > 0 {
            self.filling -= 1;
            if self.filling > 0 {
                return Pop::Empty;
            }
        }
        // Too much backlog (the sender caught up after a stall): skip one.
        if ahead(self.highest, self.next) >= self.max_backlog as i16 {
            let i = self.next as usize % SLOTS;
            if self.slots[i].filled && self.slots[i].seq == self.next {
                self.slots[i].filled = false;
            }
            self.next = self.next.wrapping_add(1);
            self.stats.trimmed += 1;
        }
        let seq = self.next;
        let i = seq as usize % SLOTS;
        if self.slots[i].filled && self.slots[i].seq == seq {
            self.slots[i].filled = false;
            self.next = seq.wrapping_add(1);
            let s = &self.slots[i];
            return Pop::Frame(&s.data[..s.len as usize]);
        }
        if ahead(self.highest, seq) > 0 {
            self.next = seq.wrapping_add(1);
            self.stats.lost += 1;
            Pop::Lost
        } else {
            Pop::Empty
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(pop: Pop<'_>) -> Option<u8> {
        match pop {
            Pop::Frame(b) => Some(b[0]),
            _ => None,
        }
    }

    #[test]
    fn reorders_within_the_depth() {
        let mut jb = JitterBuffer::new(2, 4);
        jb.push(100, &[0]);
        assert_eq!(jb.pop(), Pop::Empty); // filling
        jb.push(102, &[2]);
        jb.push(101, &[1]);
        assert_eq!(frame(jb.pop()), Some(0));
        assert_eq!(frame(jb.pop()), Some(1));
        assert_eq!(frame(jb.pop()), Some(2));
        assert_eq!(jb.pop(), Pop::Empty);
    }

    #[test]
    fn holes_are_lost_and_late_packets_dropped() {
        let mut jb = JitterBuffer::new(1, 4);
        jb.push(10, &[10]);
        assert_eq!(frame(jb.pop()), Some(10));
        jb.push(12, &[12]);
        assert_eq!(jb.pop(), Pop::Lost);
        jb.push(11, &[11]); // too late now
        assert_eq!(frame(jb.pop()), Some(12));
        assert_eq!(jb.stats().late, 1);
        assert_eq!(jb.stats().lost, 1);
        jb.push(12, &[12]);
        assert_eq!(jb.stats().late, 2);
    }

    #[test]
    fn underrun_waits_and_backlog_is_trimmed() {
        let mut jb = JitterBuffer::new(1, 4);
        jb.push(0, &[0]);
        assert_eq!(frame(jb.pop()), Some(0));
        // Packet 1 is late by a tick: nothing newer, so wait (no loss).
        assert_eq!(jb.pop(), Pop::Empty);
        jb.push(1, &[1]);
        assert_eq!(frame(jb.pop()), Some(1));
        // A burst after a stall: the buffer sheds the excess.
        for s in 2..10u16 {
            jb.push(s, &[s as u8]);
        }
        let mut played = Vec::new();
        for _ in 0..8 {
            if let Some(b) = frame(jb.pop()) {
                played.push(b);
            }
        }
        assert!(jb.stats().trimmed > 0);
        assert_eq!(played.last(), Some(&9));
    }

    #[test]
    fn wraps_and_follows_jumps_and_rejects_oversize() {
        let mut jb = JitterBuffer::new(1, 4);
        jb.push(65535, &[1]);
        jb.push(0, &[2]);
        assert_eq!(frame(jb.pop()), Some(1));
        assert_eq!(frame(jb.pop()), Some(2));
        jb.push(30000, &[3]);
        assert_eq!(jb.stats().resyncs, 1);
        assert_eq!(frame(jb.pop()), Some(3));
        jb.push(30001, &[0; 5]);
        assert_eq!(jb.stats().oversized, 1);
        jb.push(30001, &[4]);
        jb.push(30001, &[4]);
        assert_eq!(jb.stats().duplicate, 1);
    }
}
