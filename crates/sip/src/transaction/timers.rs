//! The layer's deadline queue: a min-heap of (deadline, transaction) with lazy
//! deletion.
//!
//! Each transaction keeps in its own table entry the deadline it is scheduled
//! at; a heap entry whose deadline no longer equals that (the timer was
//! stopped or moved, or the transaction is gone) is stale and skipped when it
//! surfaces. Scheduling is O(log n), `next` is O(1) amortised, and nothing is
//! ever searched for. Stale entries are purged in bulk when they outnumber
//! the live ones, so memory stays proportional to live transactions.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use super::TxId;

#[derive(Debug, Default)]
pub(crate) struct TimerQueue {
    heap: BinaryHeap<Reverse<(Instant, TxId)>>,
}

impl TimerQueue {
    pub(crate) fn push(&mut self, at: Instant, tx: TxId) {
        self.heap.push(Reverse((at, tx)));
    }

    /// The earliest entry, stale or not. A stale one only makes the driver
    /// wake early once.
    pub(crate) fn peek(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Removes and returns the earliest entry if it is due.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, TxId)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    /// Drops the entries that `live` says are stale, when they are many.
    pub(crate) fn compact(&mut self, live_count: usize, live: impl FnMut(Instant, TxId) -> bool) {
        if self.heap.len() > 2 * live_count + 4096 {
            self.force_compact(live);
        }
    }

    pub(crate) fn force_compact(&mut self, mut live: impl FnMut(Instant, TxId) -> bool) {
        self.heap.retain(|Reverse((at, tx))| live(*at, *tx));
    }

    /// Entries, stale ones included.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_in_deadline_order_only_when_due() {
        let t0 = Instant::now();
        let mut q = TimerQueue::default();
        q.push(t0 + Duration::from_secs(3), TxId(3));
        q.push(t0 + Duration::from_secs(1), TxId(1));
        q.push(t0 + Duration::from_secs(2), TxId(2));
        assert_eq!(q.peek(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(q.pop_due(t0), None);
        let now = t0 + Duration::from_secs(2);
        assert_eq!(q.pop_due(now).map(|e| e.1), Some(TxId(1)));
        assert_eq!(q.pop_due(now).map(|e| e.1), Some(TxId(2)));
        assert_eq!(q.pop_due(now), None);
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn compaction_keeps_only_live_entries() {
        let t0 = Instant::now();
        let mut q = TimerQueue::default();
        for i in 0..10_000u64 {
            q.push(t0 + Duration::from_millis(i), TxId(i));
        }
        // Few live: compaction triggers and keeps exactly the live ones.
        q.compact(10, |_, tx| tx.0 % 1000 == 0);
        assert_eq!(q.len(), 10);
        assert_eq!(q.peek(), Some(t0));
    }
}
