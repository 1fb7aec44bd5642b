//! The SBC's answers to the brain: port ranges, call placement on workers,
//! socket binding, and the snapshots re-uploaded on every reconnect.
//!
//! Runs on the control thread. Sockets are bound here, so a bind failure is
//! in the Reply and the workers never do a slow or failing system call on
//! their behalf; each command then waits (briefly, bounded) for the worker
//! to confirm, so the Reply tells the truth and a released port is closed
//! before it can be handed out again.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use proto::SnapshotStore;
use proto::message::{
    Capacity, ErrorBody, ErrorCode, Hello, Load, NodeId, ReplyBody, RequestBody, Role,
};
use proto::node::NodeHandler;
use proto::snapshot::{CallId, CallSnapshot, PortRange};

use crate::config::SbcConfig;
use crate::relay::{self, ApplyError, leg_ports};
use crate::worker::{Command, StatsReply, WorkerHandle};

/// What the control side shares with the [`crate::SbcHandle`]: read only
/// off the packet path.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub ranges: Vec<PortRange>,
}

pub(crate) struct Control {
    config: SbcConfig,
    workers: Vec<WorkerHandle>,
    /// Streams placed on each worker, to place new calls on the least busy.
    worker_streams: Vec<u32>,
    ranges: Vec<PortRange>,
    calls: SnapshotStore<CallSnapshot>,
    placement: HashMap<CallId, usize>,
    port_owner: HashMap<u16, CallId>,
    streams: u32,
    shared: Arc<Mutex<Shared>>,
    rate: proto::node::PacketRate,
}

impl Control {
    pub fn new(config: SbcConfig, workers: Vec<WorkerHandle>, shared: Arc<Mutex<Shared>>) -> Self {
        let n = workers.len();
        Self {
            config,
            workers,
            worker_streams: vec![0; n],
            ranges: Vec::new(),
            calls: SnapshotStore::new(),
            placement: HashMap::new(),
            port_owner: HashMap::new(),
            streams: 0,
            shared,
            rate: proto::node::PacketRate::default(),
        }
    }

    fn assign_ranges(&mut self, ranges: Vec<PortRange>) -> Result<ReplyBody, ErrorBody> {
        for (i, r) in ranges.iter().enumerate() {
            if r.first_port == 0 || r.first_port > r.last_port {
                return Err(invalid(format!(
                    "range {}: bad ports {}-{}",
                    r.id.0, r.first_port, r.last_port
                )));
            }
            // Calls are keyed by port, so ports are unique on a node.
            if let Some(o) = ranges[..i].iter().find(|o| {
                o.id == r.id || (o.first_port <= r.last_port && r.first_port <= o.last_port)
            }) {
                return Err(invalid(format!(
                    "range {} overlaps range {}",
                    r.id.0, o.id.0
                )));
            }
        }
        // Calls on ranges taken away stay up until the brain releases them.
        self.ranges = ranges;
        if let Ok(mut s) = self.shared.lock() {
            s.ranges = self.ranges.clone();
        }
        Ok(ReplyBody::Done)
    }

    fn apply_call(&mut self, snapshot: CallSnapshot) -> Result<ReplyBody, ErrorBody> {
        relay::validate(&snapshot).map_err(|e| ApplyError::Invalid(e).into_body())?;
        let call_id = snapshot.call_id.clone();
        let version = snapshot.version;
        let old_legs = match self.calls.get(&call_id) {
            Some(cur) if version < cur.version => {
                return Err(proto::store::StaleVersion {
                    current: cur.version,
                    offered: version,
                }
                .into());
            }
            Some(cur) if version == cur.version => return Ok(ReplyBody::Applied { version }),
            Some(cur) => cur.legs.len() as u32,
            None => 0,
        };

        // Every port inside an assigned range and free (or already this call's).
        let mut to_bind: Vec<(u16, SocketAddr)> = Vec::new();
        for leg in &snapshot.legs {
            let range = self
                .ranges
                .iter()
                .find(|r| r.id == leg.local.range_id)
                .ok_or_else(|| {
                    invalid(format!(
                        "leg {}: range {} is not assigned to this node",
                        leg.leg_id.0, leg.local.range_id.0
                    ))
                })?;
            for port in leg_ports(leg) {
                if port < range.first_port || port > range.last_port {
                    return Err(invalid(format!(
                        "leg {}: port {port} outside range {} ({}-{})",
                        leg.leg_id.0, range.id.0, range.first_port, range.last_port
                    )));
                }
                match self.port_owner.get(&port) {
                    Some(owner) if *owner == call_id => {}
                    Some(owner) => {
                        return Err(invalid(format!("port {port} belongs to call {}", owner.0)));
                    }
                    None => to_bind.push((port, SocketAddr::new(range.bind_ip, port))),
                }
            }
        }

        let new_legs = snapshot.legs.len() as u32;
        let after = self.streams - old_legs + new_legs;
        if after > self.config.max_streams {
            return Err(ErrorBody::new(
                ErrorCode::NO_CAPACITY,
                format!("{after} streams would exceed {}", self.config.max_streams),
            ));
        }

        // Bind everything before touching any state: a failure leaves the
        // call as it was (the sockets bound so far close when dropped).
        let mut sockets = Vec::with_capacity(to_bind.len());
        for (port, addr) in to_bind {
            let sock = UdpSocket::bind(addr)
                .and_then(|s| s.set_nonblocking(true).map(|()| s))
                .map_err(|e| {
                    ErrorBody::new(ErrorCode::INTERNAL, format!("cannot bind {addr}: {e}"))
                })?;
            sockets.push((port, sock));
        }

        let worker = match self.placement.get(&call_id) {
            Some(&w) => w,
            None => self.least_busy_worker(),
        };
        let (done, answer) = sync_channel(1);
        let sent = self.workers[worker].send(Command::Apply {
            snapshot: snapshot.clone(),
            sockets,
            done,
        });
        if !sent {
            return Err(ErrorBody::new(ErrorCode::INTERNAL, "media worker stopped"));
        }
        match self.wait(&answer) {
            Some(Err(e)) => return Err(e.into_body()),
            Some(Ok(_)) => {}
            // Queued and bound to happen: record it, so a resend is a no-op.
            None => tracing::warn!(call = %call_id.0, "worker slow to confirm ApplyCall"),
        }

        // Bookkeeping: ports, placement, streams, the snapshot itself.
        if let Some(old) = self.calls.get(&call_id) {
            for port in old.legs.iter().flat_map(leg_ports) {
                self.port_owner.remove(&port);
            }
        }
        for port in snapshot.legs.iter().flat_map(leg_ports) {
            self.port_owner.insert(port, call_id.clone());
        }
        self.placement.insert(call_id, worker);
        self.worker_streams[worker] = self.worker_streams[worker] - old_legs + new_legs;
        self.streams = after;
        let _ = self.calls.apply(snapshot);
        Ok(ReplyBody::Applied { version })
    }

    fn release_call(&mut self, call_id: CallId) -> Result<ReplyBody, ErrorBody> {
        let Some(snapshot) = self.calls.release(&call_id) else {
            return Err(unknown_call(&call_id));
        };
        for port in snapshot.legs.iter().flat_map(leg_ports) {
            self.port_owner.remove(&port);
        }
        let legs = snapshot.legs.len() as u32;
        self.streams -= legs;
        let worker = self.placement.remove(&call_id).unwrap_or(0);
        self.worker_streams[worker] = self.worker_streams[worker].saturating_sub(legs);
        let stats = self.ask_stats(
            worker,
            |call_id, done| Command::Release { call_id, done },
            &call_id,
        );
        match stats {
            Some(Some(legs)) => Ok(ReplyBody::Stats { call_id, legs }),
            _ => Err(ErrorBody::new(
                ErrorCode::INTERNAL,
                "call released; its worker did not report final stats in time",
            )),
        }
    }

    fn get_stats(&mut self, call_id: CallId) -> Result<ReplyBody, ErrorBody> {
        let Some(&worker) = self.placement.get(&call_id) else {
            return Err(unknown_call(&call_id));
        };
        match self.ask_stats(
            worker,
            |call_id, done| Command::Stats { call_id, done },
            &call_id,
        ) {
            Some(Some(legs)) => Ok(ReplyBody::Stats { call_id, legs }),
            Some(None) => Err(unknown_call(&call_id)),
            None => Err(ErrorBody::new(
                ErrorCode::INTERNAL,
                "worker did not answer in time",
            )),
        }
    }

    fn ask_stats(
        &self,
        worker: usize,
        make: impl FnOnce(CallId, std::sync::mpsc::SyncSender<StatsReply>) -> Command,
        call_id: &CallId,
    ) -> Option<StatsReply> {
        let (done, answer) = sync_channel(1);
        if !self.workers[worker].send(make(call_id.clone(), done)) {
            return None;
        }
        self.wait(&answer)
    }

    /// Blocks the control thread (never a media thread) for the worker.
    fn wait<T>(&self, answer: &Receiver<T>) -> Option<T> {
        answer.recv_timeout(self.config.worker_reply_timeout).ok()
    }

    fn least_busy_worker(&self) -> usize {
        self.worker_streams
            .iter()
            .enumerate()
            .min_by_key(|(_, n)| **n)
            .map_or(0, |(i, _)| i)
    }
}

impl NodeHandler for Control {
    fn hello(&mut self) -> Hello {
        let mut hello = Hello::new(
            NodeId(self.config.node_id.clone()),
            Role::Sbc,
            Capacity {
                max_streams: self.config.max_streams,
                workers: self.workers.len() as u16,
            },
        );
        hello.media_addrs = self.config.media_ips.clone();
        hello.ranges = self.ranges.clone();
        hello.snapshots = self.calls.export();
        hello
    }

    fn load(&mut self) -> Load {
        let packets: u64 = self
            .workers
            .iter()
            .map(|w| {
                w.published
                    .packets
                    .load(std::sync::atomic::Ordering::Relaxed)
            })
            .sum();
        Load {
            active_streams: self.streams,
            packets_per_sec: self.rate.per_sec(Instant::now(), packets),
            cpu_percent: 0,
        }
    }

    fn handle(&mut self, request: RequestBody) -> Result<ReplyBody, ErrorBody> {
        match request {
            RequestBody::AssignRanges { ranges } => self.assign_ranges(ranges),
            RequestBody::ApplyCall(snapshot) => self.apply_call(snapshot),
            RequestBody::ReleaseCall { call_id } => self.release_call(call_id),
            RequestBody::GetStats { call_id } => self.get_stats(call_id),
            RequestBody::ApplyConference(_)
            | RequestBody::ReleaseConference { .. }
            | RequestBody::GetConferenceStats { .. } => Err(ErrorBody::new(
                ErrorCode::UNSUPPORTED,
                "an SBC carries no conferences",
            )),
        }
    }
}

impl ApplyError {
    fn into_body(self) -> ErrorBody {
        self.into()
    }
}

fn invalid(message: String) -> ErrorBody {
    ErrorBody::new(ErrorCode::INVALID, message)
}

fn unknown_call(call_id: &CallId) -> ErrorBody {
    ErrorBody::new(ErrorCode::UNKNOWN_CALL, format!("no call {}", call_id.0))
}
