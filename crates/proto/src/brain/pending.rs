//! Request/reply correlation: which requests are unanswered and until when.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

/// Requests in flight on one connection. `T` is whatever the caller needs to
/// deliver the reply (a channel, a call id, ...).
#[derive(Debug)]
pub struct Pending<T> {
    next_id: u64,
    by_id: HashMap<u64, (Instant, T)>,
    /// Ordered by deadline so the next timeout is the first entry.
    deadlines: BTreeSet<(Instant, u64)>,
}

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Self {
            next_id: 1,
            by_id: HashMap::new(),
            deadlines: BTreeSet::new(),
        }
    }
}

impl<T> Pending<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a request and returns the `req_id` to send it under.
    pub fn start(&mut self, deadline: Instant, token: T) -> u64 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.by_id.insert(id, (deadline, token));
        self.deadlines.insert((deadline, id));
        id
    }

    /// The request a reply answers; `None` for an unknown or already
    /// timed-out id (a late reply is dropped).
    pub fn complete(&mut self, req_id: u64) -> Option<T> {
        let (deadline, token) = self.by_id.remove(&req_id)?;
        self.deadlines.remove(&(deadline, req_id));
        Some(token)
    }

    /// Requests whose deadline has passed, removed.
    pub fn expire(&mut self, now: Instant) -> Vec<(u64, T)> {
        let mut expired = Vec::new();
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some((_, token)) = self.by_id.remove(&id) {
                expired.push((id, token));
            }
        }
        expired
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|&(d, _)| d)
    }

    /// Everything unanswered, e.g. when the connection is lost.
    pub fn drain(&mut self) -> Vec<T> {
        self.deadlines.clear();
        self.by_id.drain().map(|(_, (_, t))| t).collect()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}
