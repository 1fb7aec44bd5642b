//! The node manager: which media nodes are connected, which port-range
//! slices each serves, which ports of those are in use, and which SBC
//! takes the next call.
//!
//! Nodes connect through `proto::brain::listen`. A new SBC is handed
//! slices of the configured media port plan on Hello (`AssignRanges`); a
//! node that reconnects keeps its slices. Ports are handed out in RTP/RTCP
//! pairs (even, odd) from a slice and come back when the call ends. A node
//! that falls silent for the registry's `dead_after` is declared dead:
//! its calls are logged and counted (moving them is failover work), and
//! its slices stay reserved for it.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use proto::brain::{NodeConnection, NodeEvent, NodeHandle, NodeRegistry, RequestError};
use proto::message::{Event, Hello, LegStats, NodeId, ReplyBody, RequestBody, Role};
use proto::snapshot::{CallId, CallSnapshot, ConferenceId, LegId, PortRange, RangeId};
use tokio::task::AbortHandle;

use crate::metrics::Metrics;

/// One block of media ports in the plan, cut into slices for the SBCs.
#[derive(Debug, Clone)]
pub struct MediaRange {
    /// The address the SBC binds.
    pub bind_ip: IpAddr,
    /// The address endpoints see, if not `bind_ip` (it moves with the
    /// slice on failover).
    pub vip: Option<IpAddr>,
    pub first_port: u16,
    pub last_port: u16,
    /// Ports per slice (rounded down to even); 0 makes the whole block one
    /// slice.
    pub slice_ports: u16,
}

#[derive(Debug, Clone)]
pub struct NodesConfig {
    pub ranges: Vec<MediaRange>,
    /// Slices a new SBC gets on Hello.
    pub slices_per_node: usize,
    /// How long to wait for a node's reply.
    pub request_timeout: Duration,
}

impl Default for NodesConfig {
    fn default() -> Self {
        Self {
            ranges: vec![MediaRange {
                bind_ip: IpAddr::from([127, 0, 0, 1]),
                vip: None,
                first_port: 30000,
                last_port: 39999,
                slice_ports: 1000,
            }],
            slices_per_node: 1,
            request_timeout: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum NodeError {
    /// Every live SBC's ports are in use: add SBCs or widen the port range.
    #[error("every live SBC is out of free media ports")]
    NoCapacity,
    /// No SBC is connected and heartbeating.
    #[error("no live SBC")]
    NoLiveSbc,
    /// No mixer is connected and heartbeating (or none declared a port).
    #[error("no live mixer")]
    NoLiveMixer,
    #[error("node {node}: {source}")]
    Request {
        node: NodeId,
        #[source]
        source: RequestError,
    },
    #[error("node {node} answered {what}")]
    UnexpectedReply { node: NodeId, what: &'static str },
}

/// Media ports held for one call on one SBC. Give them back with
/// [`Nodes::free`].
#[derive(Debug, Clone)]
pub struct MediaLease {
    pub node: NodeId,
    handle: NodeHandle,
    pub range: RangeId,
    /// The address endpoints send media to.
    pub addr: IpAddr,
    /// One RTP port per leg; RTCP is the next port.
    pub ports: Vec<u16>,
    pub call_id: CallId,
}

/// Where a conference is mixed: a mixer and one of its worker ports (a
/// range it declared in its Hello). Every participant's audio goes there.
#[derive(Debug, Clone)]
pub struct MixerPlace {
    pub node: NodeId,
    handle: NodeHandle,
    pub range: RangeId,
    /// Where SBCs send the conference's audio.
    pub addr: SocketAddr,
}

/// A node as the B2BUA and the operator see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSummary {
    pub id: NodeId,
    pub role: Role,
    pub alive: bool,
    pub ranges: Vec<RangeId>,
    pub calls: usize,
    pub free_pairs: usize,
}

struct Slice {
    range: PortRange,
    owner: Option<NodeId>,
    /// Free RTP ports (even); freed ports go to the back so a port is not
    /// reused while stray packets for its last call may still arrive.
    free: VecDeque<u16>,
}

struct Node {
    handle: NodeHandle,
    /// What it said on connecting: enough to take it back into the
    /// registry when it turns out not to be dead after all.
    hello: Hello,
    role: Role,
    max_streams: u32,
    alive: bool,
    ranges: Vec<RangeId>,
    /// Port pairs this brain has handed out on the node.
    streams: u32,
    calls: BTreeSet<CallId>,
    /// On a mixer: the conferences placed on it, by the range they use.
    conferences: BTreeMap<ConferenceId, RangeId>,
}

#[derive(Default)]
struct State {
    registry: NodeRegistry,
    nodes: BTreeMap<NodeId, Node>,
    slices: BTreeMap<RangeId, Slice>,
}

/// The node manager. Cheap to clone.
#[derive(Clone)]
pub struct Nodes {
    state: Arc<Mutex<State>>,
    config: Arc<NodesConfig>,
    metrics: Arc<Metrics>,
    local_addr: SocketAddr,
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
    /// One slice handed out at a time: calls that all find the SBCs full
    /// wait for that one instead of each taking a slice.
    growing: Arc<tokio::sync::Mutex<()>>,
    /// Nodes declared dead, for whoever moves their work.
    deaths: tokio::sync::broadcast::Sender<(NodeId, Role)>,
    /// Media events from every node (timeouts, DTMF, talkers,
    /// recordings), for the calls and rooms they concern.
    media_events: tokio::sync::broadcast::Sender<Event>,
}

/// Cuts the plan into slices with ids 1, 2, ...
pub fn slice_plan(ranges: &[MediaRange]) -> Vec<PortRange> {
    let mut out = Vec::new();
    let mut next_id = 1u32;
    for r in ranges {
        // RTP on even ports, RTCP on the odd one above (RFC 3550 §11).
        let first = r.first_port.saturating_add(r.first_port % 2);
        let mut size = if r.slice_ports == 0 {
            u32::from(r.last_port).saturating_sub(u32::from(first)) + 1
        } else {
            u32::from(r.slice_ports)
        };
        size -= size % 2;
        if size == 0 || r.last_port < first {
            continue;
        }
        let mut start = u32::from(first);
        while start < u32::from(r.last_port) {
            let end = (start + size - 1).min(u32::from(r.last_port));
            let (Ok(first_port), Ok(last_port)) = (u16::try_from(start), u16::try_from(end)) else {
                break;
            };
            out.push(PortRange {
                id: RangeId(next_id),
                bind_ip: r.bind_ip,
                vip: r.vip,
                first_port,
                last_port,
            });
            next_id += 1;
            start = end + 1;
        }
    }
    out
}

fn even_ports(range: &PortRange) -> VecDeque<u16> {
    (range.first_port..range.last_port)
        .filter(|p| p % 2 == 0)
        .collect()
}

impl Nodes {
    /// Listens for media nodes on `addr` and starts watching them.
    pub async fn start(
        addr: SocketAddr,
        protocol: proto::brain::BrainConfig,
        config: NodesConfig,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Nodes> {
        let dead_after = protocol.dead_after;
        let mut incoming = proto::brain::listen(addr, protocol).await?;
        let mut state = State {
            registry: NodeRegistry::new(dead_after),
            ..State::default()
        };
        for range in slice_plan(&config.ranges) {
            state.slices.insert(
                range.id,
                Slice {
                    free: even_ports(&range),
                    range,
                    owner: None,
                },
            );
        }
        let nodes = Nodes {
            state: Arc::new(Mutex::new(state)),
            config: Arc::new(config),
            metrics,
            local_addr: incoming.local_addr(),
            tasks: Arc::new(Mutex::new(Vec::new())),
            growing: Arc::new(tokio::sync::Mutex::new(())),
            deaths: tokio::sync::broadcast::channel(64).0,
            media_events: tokio::sync::broadcast::channel(1024).0,
        };
        let accept = {
            let nodes = nodes.clone();
            tokio::spawn(async move {
                while let Some(conn) = incoming.next().await {
                    nodes.on_connection(conn);
                }
            })
        };
        let sweep = {
            let nodes = nodes.clone();
            let period = (dead_after / 5).max(Duration::from_millis(20));
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(period);
                loop {
                    tick.tick().await;
                    nodes.sweep(Instant::now());
                }
            })
        };
        nodes.track(accept.abort_handle());
        nodes.track(sweep.abort_handle());
        Ok(nodes)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops listening and watching (node connections close).
    pub fn shutdown(&self) {
        if let Ok(tasks) = self.tasks.lock() {
            tasks.iter().for_each(AbortHandle::abort);
        }
    }

    fn track(&self, task: AbortHandle) {
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.retain(|t| !t.is_finished());
            tasks.push(task);
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain bookkeeping behind,
        // still better than refusing every call from then on.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn on_connection(&self, conn: NodeConnection) {
        let NodeConnection {
            peer,
            hello,
            handle,
            mut events,
        } = conn;
        let id = hello.node_id.clone();
        let assigned = {
            let mut st = self.lock();
            st.registry.on_hello(Instant::now(), &hello);
            let st = &mut *st;
            let node = st.nodes.entry(id.clone()).or_insert_with(|| Node {
                handle: handle.clone(),
                hello: hello.clone(),
                role: hello.role,
                max_streams: hello.capacity.max_streams,
                alive: true,
                ranges: Vec::new(),
                streams: 0,
                calls: BTreeSet::new(),
                conferences: BTreeMap::new(),
            });
            node.handle = handle.clone();
            node.hello = hello.clone();
            node.alive = true;
            node.role = hello.role;
            node.max_streams = hello.capacity.max_streams;
            let assigned = if hello.role == Role::Sbc {
                // Slices the node says it serves and nobody else holds come
                // back to it (a brain restart); then new ones up to its share.
                for r in &hello.ranges {
                    if let Some(slice) = st.slices.get_mut(&r.id)
                        && slice.owner.as_ref().is_none_or(|o| *o == id)
                        && !node.ranges.contains(&r.id)
                    {
                        slice.owner = Some(id.clone());
                        node.ranges.push(r.id);
                    }
                }
                let want = self
                    .config
                    .slices_per_node
                    .saturating_sub(node.ranges.len());
                let free: Vec<RangeId> = st
                    .slices
                    .iter()
                    .filter(|(_, s)| s.owner.is_none())
                    .map(|(rid, _)| *rid)
                    .take(want)
                    .collect();
                for rid in free {
                    if let Some(slice) = st.slices.get_mut(&rid) {
                        slice.owner = Some(id.clone());
                        node.ranges.push(rid);
                    }
                }
                if node.ranges.is_empty() {
                    tracing::warn!(node = %id, "no media port slice left for this SBC");
                }
                Some(
                    node.ranges
                        .iter()
                        .filter_map(|rid| st.slices.get(rid).map(|s| s.range.clone()))
                        .collect::<Vec<_>>(),
                )
            } else {
                None
            };
            self.publish_counts(&st.nodes);
            assigned
        };
        tracing::info!(node = %id, %peer, role = ?hello.role, "media node connected");
        let nodes = self.clone();
        let timeout = self.config.request_timeout;
        let task = tokio::spawn(async move {
            if let Some(ranges) = assigned {
                let body = RequestBody::AssignRanges { ranges };
                if let Err(e) = handle.request(body, timeout).await {
                    tracing::warn!(node = %id, error = %e, "AssignRanges failed");
                }
            }
            while let Some(ev) = events.recv().await {
                nodes.on_event(&id, ev);
            }
        });
        self.track(task.abort_handle());
    }

    fn on_event(&self, id: &NodeId, ev: NodeEvent) {
        let now = Instant::now();
        match ev {
            NodeEvent::Heartbeat(hb) => {
                let mut st = self.lock();
                if st.registry.on_heartbeat(now, id, &hb) {
                    return;
                }
                // Declared dead while its connection stayed up: the sweep
                // ran before heartbeats that were already waiting (a stall
                // of this process longer than `dead_after`). It is back.
                let st = &mut *st;
                if let Some(node) = st.nodes.get_mut(id)
                    && !node.alive
                {
                    st.registry.on_hello(now, &node.hello);
                    st.registry.on_heartbeat(now, id, &hb);
                    node.alive = true;
                    tracing::warn!(node = %id, "media node heard from again; live");
                    self.publish_counts(&st.nodes);
                }
            }
            NodeEvent::Event(ev) => {
                self.lock().registry.on_seen(now, id);
                match &ev {
                    Event::MediaTimeout { call_id, leg } => {
                        tracing::info!(node = %id, call = %call_id.0, leg = leg.0, "media timeout");
                    }
                    other => tracing::debug!(node = %id, event = ?other, "node event"),
                }
                let _ = self.media_events.send(ev);
            }
            // Death is decided by silence (the sweep), so a node that drops
            // its connection and reconnects at once loses nothing.
            NodeEvent::Closed(reason) => {
                tracing::info!(node = %id, %reason, "node connection closed");
            }
        }
    }

    /// Declares silent nodes dead.
    fn sweep(&self, now: Instant) {
        let mut st = self.lock();
        for id in st.registry.dead_nodes(now) {
            st.registry.remove(&id);
            let Some(node) = st.nodes.get_mut(&id) else {
                continue;
            };
            if !node.alive {
                continue;
            }
            node.alive = false;
            let _ = self.deaths.send((id.clone(), node.role));
            let calls: Vec<&str> = node.calls.iter().map(|c| c.0.as_str()).collect();
            // Moving the calls and slices to a live SBC is the failover work.
            tracing::error!(node = %id, calls = ?calls, "media node dead; its calls have no media");
            self.metrics.node_lost();
        }
        self.publish_counts(&st.nodes);
    }

    /// The `tandem_nodes{role,state}` gauge: what an on-call engineer checks
    /// first when calls get 503.
    fn publish_counts(&self, nodes: &BTreeMap<NodeId, Node>) {
        for role in [Role::Sbc, Role::Mixer] {
            let label = match role {
                Role::Sbc => "sbc",
                Role::Mixer => "mixer",
            };
            let live = nodes.values().filter(|n| n.role == role && n.alive).count();
            let dead = nodes
                .values()
                .filter(|n| n.role == role && !n.alive)
                .count();
            self.metrics.nodes_set(label, "live", live as i64);
            self.metrics.nodes_set(label, "dead", dead as i64);
        }
    }

    /// Media events from every node: timeouts, DTMF, who talks, recordings.
    pub fn media_events(&self) -> tokio::sync::broadcast::Receiver<Event> {
        self.media_events.subscribe()
    }

    /// The SBC's current counters of the lease's call.
    pub async fn stats(&self, lease: &MediaLease) -> Result<Vec<(LegId, LegStats)>, NodeError> {
        let body = RequestBody::GetStats {
            call_id: lease.call_id.clone(),
        };
        match self.request(lease, body).await? {
            ReplyBody::Stats { legs, .. } => Ok(legs),
            _ => Err(NodeError::UnexpectedReply {
                node: lease.node.clone(),
                what: "no stats to GetStats",
            }),
        }
    }

    /// Tells of every node declared dead from now on.
    pub fn deaths(&self) -> tokio::sync::broadcast::Receiver<(NodeId, Role)> {
        self.deaths.subscribe()
    }

    /// Whether the node answers heartbeats.
    pub fn is_alive(&self, id: &NodeId) -> bool {
        self.lock().nodes.get(id).is_some_and(|n| n.alive)
    }

    /// Holds `legs` port pairs on the least-busy live SBC that has them in
    /// one slice. Busy means pairs in use against the node's capacity, as
    /// counted here: heartbeat load lags, and a burst of calls would all
    /// land on the node that looked idle a moment ago.
    pub fn allocate(&self, call_id: &str, legs: usize) -> Result<MediaLease, NodeError> {
        let mut st = self.lock();
        let now = Instant::now();
        let st = &mut *st;
        let mut best: Option<(&NodeId, RangeId, u64, u64)> = None;
        let mut live = false;
        for (id, node) in &st.nodes {
            if node.role != Role::Sbc || !node.alive || !st.registry.is_alive(now, id) {
                continue;
            }
            live = true;
            let Some(rid) = node
                .ranges
                .iter()
                .find(|rid| st.slices.get(rid).is_some_and(|s| s.free.len() >= legs))
            else {
                continue;
            };
            let used = u64::from(node.streams);
            let max = u64::from(node.max_streams.max(1));
            let better = match best {
                None => true,
                Some((_, _, bu, bm)) => used * bm < bu * max,
            };
            if better {
                best = Some((id, *rid, used, max));
            }
        }
        let (id, rid) = match best {
            Some((id, rid, _, _)) => (id.clone(), rid),
            None if live => return Err(NodeError::NoCapacity),
            None => return Err(NodeError::NoLiveSbc),
        };
        let slice = st.slices.get_mut(&rid).ok_or(NodeError::NoCapacity)?;
        let ports: Vec<u16> = (0..legs).filter_map(|_| slice.free.pop_front()).collect();
        let addr = slice.range.vip.unwrap_or(slice.range.bind_ip);
        let node = st.nodes.get_mut(&id).ok_or(NodeError::NoCapacity)?;
        node.streams += u32::try_from(ports.len()).unwrap_or(u32::MAX);
        let call_id = CallId(call_id.to_string());
        node.calls.insert(call_id.clone());
        Ok(MediaLease {
            node: id,
            handle: node.handle.clone(),
            range: rid,
            addr,
            ports,
            call_id,
        })
    }

    /// [`Nodes::allocate`], and when every live SBC is out of ports, first
    /// hands the least busy one a slice nobody holds (SBCs start with
    /// `slices_per_node` and grow as their calls need).
    pub async fn lease(&self, call_id: &str, legs: usize) -> Result<MediaLease, NodeError> {
        match self.allocate(call_id, legs) {
            Err(NodeError::NoCapacity) => {}
            other => return other,
        }
        let _one_at_a_time = self.growing.lock().await;
        // Someone else may have grown (or freed ports) while we waited.
        match self.allocate(call_id, legs) {
            Err(NodeError::NoCapacity) => {}
            other => return other,
        }
        if self.grow().await? {
            self.allocate(call_id, legs)
        } else {
            Err(NodeError::NoCapacity)
        }
    }

    /// Gives an unowned slice to the least busy live SBC; false when there
    /// is no such slice or node.
    async fn grow(&self) -> Result<bool, NodeError> {
        let (id, handle, ranges, rid) = {
            let mut st = self.lock();
            let now = Instant::now();
            let st = &mut *st;
            let Some(rid) = st
                .slices
                .iter()
                .find(|(_, s)| s.owner.is_none())
                .map(|(rid, _)| *rid)
            else {
                return Ok(false);
            };
            let registry = &st.registry;
            let best = st
                .nodes
                .iter_mut()
                .filter(|(id, n)| n.role == Role::Sbc && n.alive && registry.is_alive(now, id))
                .min_by_key(|(_, n)| {
                    u64::from(n.streams) * 1_000_000 / u64::from(n.max_streams.max(1))
                });
            let Some((id, node)) = best else {
                return Ok(false);
            };
            node.ranges.push(rid);
            let id = id.clone();
            let handle = node.handle.clone();
            let ranges: Vec<PortRange> = node
                .ranges
                .iter()
                .filter_map(|r| st.slices.get(r).map(|s| s.range.clone()))
                .collect();
            if let Some(slice) = st.slices.get_mut(&rid) {
                slice.owner = Some(id.clone());
            }
            (id, handle, ranges, rid)
        };
        let body = RequestBody::AssignRanges { ranges };
        match handle.request(body, self.config.request_timeout).await {
            Ok(_) => {
                tracing::info!(node = %id, range = rid.0, "media port slice added to SBC");
                Ok(true)
            }
            Err(source) => {
                let mut st = self.lock();
                if let Some(node) = st.nodes.get_mut(&id) {
                    node.ranges.retain(|r| *r != rid);
                }
                if let Some(slice) = st.slices.get_mut(&rid)
                    && slice.owner.as_ref() == Some(&id)
                {
                    slice.owner = None;
                }
                Err(NodeError::Request { node: id, source })
            }
        }
    }

    /// Gives the lease's ports back.
    pub fn free(&self, lease: &MediaLease) {
        let mut st = self.lock();
        if let Some(slice) = st.slices.get_mut(&lease.range) {
            slice.free.extend(lease.ports.iter().copied());
        }
        if let Some(node) = st.nodes.get_mut(&lease.node) {
            node.streams = node
                .streams
                .saturating_sub(u32::try_from(lease.ports.len()).unwrap_or(u32::MAX));
            node.calls.remove(&lease.call_id);
        }
    }

    /// Puts `snapshot` in force on the lease's node.
    pub async fn apply(&self, lease: &MediaLease, snapshot: CallSnapshot) -> Result<(), NodeError> {
        let reply = self
            .request(lease, RequestBody::ApplyCall(snapshot))
            .await?;
        match reply {
            ReplyBody::Applied { .. } | ReplyBody::Done => Ok(()),
            ReplyBody::Stats { .. } | ReplyBody::ConferenceStats { .. } => {
                Err(NodeError::UnexpectedReply {
                    node: lease.node.clone(),
                    what: "stats to ApplyCall",
                })
            }
        }
    }

    /// Ends the call on its node; returns the final per-leg stats when the
    /// node reports them.
    pub async fn release(&self, lease: &MediaLease) -> Result<Vec<(LegId, LegStats)>, NodeError> {
        let body = RequestBody::ReleaseCall {
            call_id: lease.call_id.clone(),
        };
        match self.request(lease, body).await? {
            ReplyBody::Stats { legs, .. } => Ok(legs),
            ReplyBody::Done | ReplyBody::Applied { .. } | ReplyBody::ConferenceStats { .. } => {
                Ok(Vec::new())
            }
        }
    }

    async fn request(&self, lease: &MediaLease, body: RequestBody) -> Result<ReplyBody, NodeError> {
        lease
            .handle
            .request(body, self.config.request_timeout)
            .await
            .map_err(|source| NodeError::Request {
                node: lease.node.clone(),
                source,
            })
    }

    /// Picks where a new conference is mixed: the live mixer with the
    /// fewest participants for its capacity, and of its ports the one with
    /// the fewest conferences (each port is one mixer thread).
    pub fn place_conference(&self, conference: &ConferenceId) -> Result<MixerPlace, NodeError> {
        let mut st = self.lock();
        let now = Instant::now();
        let st = &mut *st;
        let mut best: Option<(&NodeId, u64, u64)> = None;
        for (id, node) in &st.nodes {
            if node.role != Role::Mixer
                || !node.alive
                || !st.registry.is_alive(now, id)
                || node.hello.ranges.is_empty()
            {
                continue;
            }
            let used = u64::from(node.streams);
            let max = u64::from(node.max_streams.max(1));
            if best.is_none_or(|(_, bu, bm)| used * bm < bu * max) {
                best = Some((id, used, max));
            }
        }
        let id = best
            .map(|(id, ..)| id.clone())
            .ok_or(NodeError::NoLiveMixer)?;
        let node = st.nodes.get_mut(&id).ok_or(NodeError::NoLiveMixer)?;
        let range = node
            .hello
            .ranges
            .iter()
            .min_by_key(|r| node.conferences.values().filter(|x| **x == r.id).count())
            .cloned()
            .ok_or(NodeError::NoLiveMixer)?;
        // A mixer bound to every address names the one to use in its Hello.
        let ip = if range.bind_ip.is_unspecified() {
            node.hello
                .media_addrs
                .first()
                .copied()
                .unwrap_or(range.bind_ip)
        } else {
            range.vip.unwrap_or(range.bind_ip)
        };
        node.conferences.insert(conference.clone(), range.id);
        Ok(MixerPlace {
            node: id,
            handle: node.handle.clone(),
            range: range.id,
            addr: SocketAddr::new(ip, range.first_port),
        })
    }

    /// Counts participants joining (`delta` > 0) or leaving a mixer: its
    /// load for [`Nodes::place_conference`].
    pub fn mixer_participants(&self, place: &MixerPlace, delta: i32) {
        if let Some(node) = self.lock().nodes.get_mut(&place.node) {
            node.streams = node.streams.saturating_add_signed(delta);
        }
    }

    /// The conference is no longer on the mixer.
    pub fn forget_conference(&self, place: &MixerPlace, conference: &ConferenceId) {
        if let Some(node) = self.lock().nodes.get_mut(&place.node) {
            node.conferences.remove(conference);
        }
    }

    /// Sends a conference request to the mixer carrying it.
    pub async fn mixer_request(
        &self,
        place: &MixerPlace,
        body: RequestBody,
    ) -> Result<ReplyBody, NodeError> {
        place
            .handle
            .request(body, self.config.request_timeout)
            .await
            .map_err(|source| NodeError::Request {
                node: place.node.clone(),
                source,
            })
    }

    pub fn summary(&self) -> Vec<NodeSummary> {
        let st = self.lock();
        st.nodes
            .iter()
            .map(|(id, n)| NodeSummary {
                id: id.clone(),
                role: n.role,
                alive: n.alive,
                ranges: n.ranges.clone(),
                calls: n.calls.len() + n.conferences.len(),
                free_pairs: n
                    .ranges
                    .iter()
                    .filter_map(|r| st.slices.get(r))
                    .map(|s| s.free.len())
                    .sum(),
            })
            .collect()
    }

    /// The calls of nodes declared dead, by node (for the failover work and
    /// for operators).
    pub fn orphaned_calls(&self) -> HashMap<NodeId, Vec<CallId>> {
        let st = self.lock();
        st.nodes
            .iter()
            .filter(|(_, n)| !n.alive && !n.calls.is_empty())
            .map(|(id, n)| (id.clone(), n.calls.iter().cloned().collect()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::message::{Capacity, ErrorBody, Load};

    struct Sbc;

    impl proto::node::NodeHandler for Sbc {
        fn hello(&mut self) -> Hello {
            Hello::new(
                NodeId("sbc-1".into()),
                Role::Sbc,
                Capacity {
                    max_streams: 100,
                    workers: 1,
                },
            )
        }
        fn load(&mut self) -> Load {
            Load::default()
        }
        fn handle(&mut self, _: RequestBody) -> Result<ReplyBody, ErrorBody> {
            Ok(ReplyBody::Done)
        }
    }

    async fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
        for _ in 0..200 {
            if ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{what}");
    }

    /// The sweep can run late (this process starved of CPU) and find a node
    /// silent whose heartbeats are already waiting on a connection that
    /// never dropped. The next of those heartbeats must take it back, or
    /// every later call gets 503 while the SBC is fine.
    #[tokio::test]
    async fn a_node_declared_dead_on_a_live_connection_comes_back() {
        let nodes = Nodes::start(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            proto::brain::BrainConfig::default(),
            NodesConfig::default(),
            Arc::new(Metrics::new()),
        )
        .await
        .expect("listen");
        let (_events, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(proto::node::run(
            nodes.local_addr(),
            proto::node::NodeConfig::default(),
            Sbc,
            rx,
        ));
        let id = NodeId("sbc-1".into());
        wait_until("the SBC connects", || nodes.is_alive(&id)).await;
        // A sweep that comes far too late.
        nodes.sweep(Instant::now() + Duration::from_secs(10));
        assert!(!nodes.is_alive(&id), "declared dead");
        wait_until("the SBC is taken back", || nodes.is_alive(&id)).await;
        assert!(nodes.allocate("c1", 2).is_ok(), "and carries calls again");
        nodes.shutdown();
    }

    #[test]
    fn plan_is_cut_into_even_slices() {
        let slices = slice_plan(&[MediaRange {
            bind_ip: IpAddr::from([10, 0, 0, 1]),
            vip: None,
            first_port: 30001,
            last_port: 30100,
            slice_ports: 41,
        }]);
        let bounds: Vec<(u16, u16)> = slices.iter().map(|s| (s.first_port, s.last_port)).collect();
        assert_eq!(bounds, vec![(30002, 30041), (30042, 30081), (30082, 30100)]);
        assert_eq!(slices[2].id, RangeId(3));
        assert!(even_ports(&slices[0]).iter().all(|p| p % 2 == 0));
        assert_eq!(even_ports(&slices[0]).len(), 20);
    }

    #[test]
    fn whole_block_when_no_slice_size() {
        let slices = slice_plan(&[MediaRange {
            bind_ip: IpAddr::from([10, 0, 0, 1]),
            vip: Some(IpAddr::from([192, 0, 2, 1])),
            first_port: 40000,
            last_port: 40009,
            slice_ports: 0,
        }]);
        assert_eq!(slices.len(), 1);
        assert_eq!(even_ports(&slices[0]).len(), 5);
    }
}
