//! The layer's deadline queue: (deadline, transaction) entries with lazy
//! deletion, kept in a timing wheel in front of a small heap.
//!
//! Each transaction keeps in its own table entry the deadline it is scheduled
//! at; an entry whose deadline no longer equals that (the timer was stopped
//! or moved, or the transaction is gone) is stale and skipped when it
//! surfaces. Stale entries are purged in bulk when they outnumber the live
//! ones, so memory stays proportional to live transactions.
//!
//! Why a wheel: with tens of thousands of transactions waiting out Timers J
//! and K, a single binary heap costs a dozen cache misses per pop. Here a new
//! entry is appended to the bucket of its ~67 ms slice of time (most
//! deadlines are less than the wheel's ~69 s ahead; later ones wait in a
//! heap of their own), and a bucket is moved into the `near` heap only when
//! its slice comes due, so that heap stays small and warm. Entries still come
//! out in exact (deadline, id) order, as from one heap.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use super::TxId;

/// A bucket spans 2^26 ns (about 67 ms) ...
const WIDTH_SHIFT: u32 = 26;
/// ... and the wheel 1024 of them (about 69 s: 64·T1 with the default T1).
const BUCKETS: usize = 1024;
const WORDS: usize = BUCKETS / 64;

type Item = (Instant, TxId);

#[derive(Debug, Default)]
struct Bucket {
    entries: Vec<Item>,
    /// The earliest deadline in `entries`.
    min: Option<Instant>,
}

#[derive(Debug, Default)]
pub(crate) struct TimerQueue {
    /// Entries due before bucket `next` starts, in exact order.
    near: BinaryHeap<Reverse<Item>>,
    /// Bucket numbers count from here (the first deadline ever pushed).
    origin: Option<Instant>,
    /// The first bucket not yet moved into `near`. The wheel holds buckets
    /// `next .. next + BUCKETS`, bucket `b` at index `b % BUCKETS`.
    next: u64,
    /// Allocated on first use; empty until then.
    wheel: Vec<Bucket>,
    /// Which wheel slots hold entries.
    occupied: [u64; WORDS],
    /// Entries beyond the wheel.
    far: BinaryHeap<Reverse<Item>>,
    len: usize,
}

impl TimerQueue {
    pub(crate) fn push(&mut self, at: Instant, tx: TxId) {
        self.len += 1;
        let origin = *self.origin.get_or_insert(at);
        self.place(origin, (at, tx));
    }

    /// Puts an entry where it belongs given `next`.
    fn place(&mut self, origin: Instant, item: Item) {
        match bucket_of(origin, item.0) {
            Some(b) if b >= self.next => {
                if b - self.next < BUCKETS as u64 {
                    self.add_to_wheel(b, item);
                } else {
                    self.far.push(Reverse(item));
                }
            }
            _ => self.near.push(Reverse(item)),
        }
    }

    fn add_to_wheel(&mut self, b: u64, item: Item) {
        if self.wheel.is_empty() {
            self.wheel.resize_with(BUCKETS, Bucket::default);
        }
        let slot = (b % BUCKETS as u64) as usize;
        let bucket = &mut self.wheel[slot];
        bucket.entries.push(item);
        if bucket.min.is_none_or(|m| item.0 < m) {
            bucket.min = Some(item.0);
        }
        self.occupied[slot / 64] |= 1 << (slot % 64);
    }

    /// The earliest entry, stale or not. A stale one only makes the driver
    /// wake early once.
    pub(crate) fn peek(&self) -> Option<Instant> {
        // Everything in `near` precedes the wheel, which precedes `far`.
        if let Some(Reverse((at, _))) = self.near.peek() {
            return Some(*at);
        }
        if let Some(b) = self.first_occupied() {
            return self.wheel[(b % BUCKETS as u64) as usize].min;
        }
        self.far.peek().map(|Reverse((at, _))| *at)
    }

    /// Removes and returns the earliest entry if it is due.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, TxId)> {
        loop {
            if let Some(Reverse((at, _))) = self.near.peek() {
                if *at > now {
                    // The wheel and `far` hold only later entries.
                    return None;
                }
                self.len -= 1;
                return self.near.pop().map(|Reverse(e)| e);
            }
            if !self.refill(now) {
                return None;
            }
        }
    }

    /// Moves the first bucket holding entries into `near`, if it starts by
    /// `now`; `false` if there is none such.
    fn refill(&mut self, now: Instant) -> bool {
        let Some(origin) = self.origin else {
            return false;
        };
        let Some(now_b) = bucket_of(origin, now) else {
            return false;
        };
        let b = match self.first_occupied() {
            Some(b) => b,
            None => match self.far.peek() {
                Some(Reverse((at, _))) => bucket_of(origin, *at).unwrap_or(self.next),
                None => return false,
            },
        };
        if b > now_b {
            return false;
        }
        // Buckets before `b` are empty: the wheel turns straight to it.
        let slot = (b % BUCKETS as u64) as usize;
        if self.occupied[slot / 64] & (1 << (slot % 64)) != 0 {
            self.occupied[slot / 64] &= !(1 << (slot % 64));
            let bucket = &mut self.wheel[slot];
            bucket.min = None;
            self.near.extend(bucket.entries.drain(..).map(Reverse));
            // Keep the buffer for the next turn unless a burst bloated it.
            if bucket.entries.capacity() > 4096 {
                bucket.entries = Vec::new();
            }
        }
        self.next = b + 1;
        // The wheel now reaches further: take in what `far` has for it.
        while let Some(Reverse((at, _))) = self.far.peek() {
            if bucket_of(origin, *at)
                .is_some_and(|fb| fb.saturating_sub(self.next) >= BUCKETS as u64)
            {
                break;
            }
            if let Some(Reverse(item)) = self.far.pop() {
                self.place(origin, item);
            }
        }
        true
    }

    /// The number of the first wheel bucket holding entries.
    fn first_occupied(&self) -> Option<u64> {
        let start = (self.next % BUCKETS as u64) as usize;
        // Slots from `start` to the end of the wheel, then from its start.
        for (from, to) in [(start, BUCKETS), (0, start)] {
            let mut w = from / 64;
            while w * 64 < to {
                let mut bits = self.occupied[w];
                if w == from / 64 {
                    bits &= !0u64 << (from % 64);
                }
                if bits != 0 {
                    let slot = w * 64 + bits.trailing_zeros() as usize;
                    if slot < to {
                        let ahead = (slot + BUCKETS - start) % BUCKETS;
                        return Some(self.next + ahead as u64);
                    }
                }
                w += 1;
            }
        }
        None
    }

    /// Drops the entries that `live` says are stale, when they are many.
    pub(crate) fn compact(&mut self, live_count: usize, live: impl FnMut(Instant, TxId) -> bool) {
        if self.len > 2 * live_count + 4096 {
            self.force_compact(live);
        }
    }

    pub(crate) fn force_compact(&mut self, mut live: impl FnMut(Instant, TxId) -> bool) {
        self.near.retain(|Reverse((at, tx))| live(*at, *tx));
        self.far.retain(|Reverse((at, tx))| live(*at, *tx));
        let mut len = self.near.len() + self.far.len();
        for (slot, bucket) in self.wheel.iter_mut().enumerate() {
            if bucket.entries.is_empty() {
                continue;
            }
            bucket.entries.retain(|(at, tx)| live(*at, *tx));
            bucket.min = bucket.entries.iter().map(|(at, _)| *at).min();
            if bucket.entries.is_empty() {
                self.occupied[slot / 64] &= !(1 << (slot % 64));
            }
            len += bucket.entries.len();
        }
        self.len = len;
    }

    /// Entries, stale ones included.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// The bucket `at` falls in; `None` before `origin`.
fn bucket_of(origin: Instant, at: Instant) -> Option<u64> {
    let since = at.checked_duration_since(origin)?;
    Some(u64::try_from(since.as_nanos() >> WIDTH_SHIFT).unwrap_or(u64::MAX))
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

    /// The wheel against a plain sorted list, over deadlines near and far,
    /// pushed out of order, popped at times that skip many buckets.
    #[test]
    fn wheel_pops_like_one_heap() {
        let t0 = Instant::now();
        let mut q = TimerQueue::default();
        let mut model: Vec<(Instant, TxId)> = Vec::new();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut now = t0;
        let mut id = 0;
        for round in 0..400 {
            for _ in 0..(rand() % 20) {
                let ms = match rand() % 4 {
                    0 => rand() % 100,
                    1 => rand() % 40_000,
                    2 => rand() % 200_000,
                    _ => 64 * 500,
                };
                // Some deadlines already past, as a late caller may push.
                let at = if rand() % 10 == 0 {
                    now.checked_sub(Duration::from_millis(rand() % 50))
                        .unwrap_or(now)
                } else {
                    now + Duration::from_millis(ms)
                };
                id += 1;
                q.push(at, TxId(id));
                model.push((at, TxId(id)));
            }
            let step = match round % 7 {
                0 => rand() % 300_000,
                _ => rand() % 2_000,
            };
            now += Duration::from_millis(step);
            model.sort();
            assert_eq!(q.peek(), model.first().map(|e| e.0));
            while let Some(e) = q.pop_due(now) {
                assert_eq!(Some(e), model.first().copied());
                model.remove(0);
            }
            assert!(model.first().is_none_or(|e| e.0 > now));
            assert_eq!(q.len(), model.len());
            assert_eq!(q.peek(), model.first().map(|e| e.0));
            if round % 50 == 49 {
                q.force_compact(|_, tx| tx.0 % 3 != 0);
                model.retain(|(_, tx)| tx.0 % 3 != 0);
                assert_eq!(q.len(), model.len());
                assert_eq!(q.peek(), model.first().map(|e| e.0));
            }
        }
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
