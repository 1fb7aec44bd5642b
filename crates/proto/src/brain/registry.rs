//! The brain's view of its media nodes: who is there, how busy, how recently heard.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::message::{Capacity, Heartbeat, Hello, Load, NodeId, Role};

/// Five heartbeats at the usual 100 ms: a dead node is noticed within half a second.
pub const DEFAULT_DEAD_AFTER: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub id: NodeId,
    pub role: Role,
    pub capacity: Capacity,
    pub media_addrs: Vec<IpAddr>,
    pub load: Load,
    pub last_seen: Instant,
    pub connected_since: Instant,
}

impl NodeInfo {
    /// Has room for another stream.
    fn has_room(&self) -> bool {
        self.load.active_streams < self.capacity.max_streams
    }
}

#[derive(Debug, Clone)]
pub struct NodeRegistry {
    nodes: BTreeMap<NodeId, NodeInfo>,
    dead_after: Duration,
}

impl Default for NodeRegistry {
    fn default() -> Self {
        Self::new(DEFAULT_DEAD_AFTER)
    }
}

impl NodeRegistry {
    pub fn new(dead_after: Duration) -> Self {
        Self {
            nodes: BTreeMap::new(),
            dead_after,
        }
    }

    pub fn dead_after(&self) -> Duration {
        self.dead_after
    }

    /// A node said Hello. Returns the previous entry if it was already known
    /// (a reconnect, or a restart under the same id).
    pub fn on_hello(&mut self, now: Instant, hello: &Hello) -> Option<NodeInfo> {
        let info = NodeInfo {
            id: hello.node_id.clone(),
            role: hello.role,
            capacity: hello.capacity,
            media_addrs: hello.media_addrs.clone(),
            load: Load::default(),
            last_seen: now,
            connected_since: now,
        };
        self.nodes.insert(hello.node_id.clone(), info)
    }

    /// Returns false for a node that never said Hello (or was removed).
    pub fn on_heartbeat(&mut self, now: Instant, id: &NodeId, hb: &Heartbeat) -> bool {
        match self.nodes.get_mut(id) {
            Some(node) => {
                node.load = hb.load;
                node.last_seen = now;
                true
            }
            None => false,
        }
    }

    /// Any message from the node proves it alive.
    pub fn on_seen(&mut self, now: Instant, id: &NodeId) {
        if let Some(node) = self.nodes.get_mut(id) {
            node.last_seen = now;
        }
    }

    pub fn remove(&mut self, id: &NodeId) -> Option<NodeInfo> {
        self.nodes.remove(id)
    }

    pub fn get(&self, id: &NodeId) -> Option<&NodeInfo> {
        self.nodes.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &NodeInfo> {
        self.nodes.values()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn is_alive(&self, now: Instant, id: &NodeId) -> bool {
        self.nodes
            .get(id)
            .is_some_and(|n| now.saturating_duration_since(n.last_seen) < self.dead_after)
    }

    /// Nodes not heard from for `dead_after`; the caller decides what to move
    /// and then `remove`s them.
    pub fn dead_nodes(&self, now: Instant) -> Vec<NodeId> {
        self.nodes
            .values()
            .filter(|n| now.saturating_duration_since(n.last_seen) >= self.dead_after)
            .map(|n| n.id.clone())
            .collect()
    }

    /// When the next node would be declared dead if it stays silent.
    pub fn next_death(&self) -> Option<Instant> {
        self.nodes
            .values()
            .map(|n| n.last_seen + self.dead_after)
            .min()
    }

    /// The live node of `role` with the lowest active_streams / max_streams
    /// that still has room; ties go to the lowest id so placement is
    /// reproducible.
    pub fn least_busy(&self, now: Instant, role: Role) -> Option<&NodeInfo> {
        self.nodes
            .values()
            .filter(|n| n.role == role && n.has_room() && self.is_alive(now, &n.id))
            .min_by(|a, b| {
                // a.active/a.max vs b.active/b.max without floats.
                let lhs = u64::from(a.load.active_streams) * u64::from(b.capacity.max_streams);
                let rhs = u64::from(b.load.active_streams) * u64::from(a.capacity.max_streams);
                lhs.cmp(&rhs).then_with(|| a.id.cmp(&b.id))
            })
    }
}
