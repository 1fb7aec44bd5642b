//! The sans-IO relay core: a table of streams keyed by local port, kept in
//! step with the brain's call snapshots, and one decision per datagram.
//!
//! The driver owns the sockets; it hands each received datagram here with
//! the local port it arrived on, the source and the time, and sends what
//! the [`Verdict`] says from the socket it names. Nothing here allocates
//! per packet: leg state is preallocated when a snapshot is applied, drops
//! are counted in fixed arrays, and events (rare: latching, digits,
//! timeouts) are queued for the driver to pass on to the brain.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proto::message::{ErrorBody, ErrorCode, Event, LegStats};
use proto::snapshot::{CallId, CallSnapshot, LegId, LegSpec, RangeId, Rtcp};
use proto::store::StaleVersion;
use rtp::{
    CodecImpairment, EventTracker, Key, ReceiverStats, RtcpCompound, RtpPacket, TelephoneEvent,
    is_rtcp,
};

use crate::counters::{RangeCounters, SbcCounters, Traffic};
use crate::drops::DropReason;
use crate::latch::{Latch, LatchOutcome, LatchPolicy};

/// The largest datagram relayed: an Ethernet MTU. Anything bigger is not
/// voice, and a driver reading into a larger buffer can tell it was cut.
pub const MAX_PACKET: usize = 1500;

/// The clock assumed when a leg names no payload types (G.711's).
const DEFAULT_CLOCK: u32 = 8000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// How long a latched source must be silent before another may take
    /// its place (a NAT rebinding).
    pub relatch_after: Duration,
    /// How long a leg that has had media may go without before the brain
    /// hears `MediaTimeout`.
    pub media_timeout: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            relatch_after: Duration::from_secs(2),
            media_timeout: Duration::from_secs(30),
        }
    }
}

/// What to do with one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send the first `len` bytes of the buffer to `dst` from the socket
    /// bound to local port `out_port`.
    Forward {
        out_port: u16,
        dst: SocketAddr,
        len: usize,
    },
    Drop(DropReason),
}

/// What [`Relay::apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    New,
    Updated,
    /// The same version is already in force.
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Stale(#[from] StaleVersion),
    #[error("invalid call snapshot: {0}")]
    Invalid(String),
    #[error("port {port} belongs to call {}", owner.0)]
    PortInUse { port: u16, owner: CallId },
}

impl From<ApplyError> for ErrorBody {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Stale(s) => s.into(),
            other => ErrorBody::new(ErrorCode::INVALID, other.to_string()),
        }
    }
}

/// Checks a snapshot on its own: unique legs and ports, and relay targets
/// that exist. Ports against ranges and other calls are the caller's part.
pub fn validate(snapshot: &CallSnapshot) -> Result<(), String> {
    let legs = &snapshot.legs;
    for (i, leg) in legs.iter().enumerate() {
        let id = leg.leg_id.0;
        if legs[..i].iter().any(|l| l.leg_id == leg.leg_id) {
            return Err(format!("leg {id} appears twice"));
        }
        if leg.local.rtp_port == 0 || leg.local.rtcp == Rtcp::Port(0) {
            return Err(format!("leg {id}: port 0"));
        }
        if leg.local.rtcp == Rtcp::Port(leg.local.rtp_port) {
            return Err(format!("leg {id}: RTCP port equals RTP port without mux"));
        }
        for port in leg_ports(leg) {
            let clash = legs[..i].iter().any(|l| leg_ports(l).any(|p| p == port));
            if clash {
                return Err(format!("leg {id}: port {port} used twice"));
            }
        }
        if let Some(to) = leg.relay_to {
            if to == leg.leg_id {
                return Err(format!("leg {id} relays to itself"));
            }
            if !legs.iter().any(|l| l.leg_id == to) {
                return Err(format!("leg {id} relays to unknown leg {}", to.0));
            }
        }
    }
    Ok(())
}

/// The local ports a leg needs: RTP, and RTCP unless muxed.
pub fn leg_ports(leg: &LegSpec) -> impl Iterator<Item = u16> + '_ {
    let rtcp = match leg.local.rtcp {
        Rtcp::Mux => None,
        Rtcp::Port(p) => Some(p),
    };
    std::iter::once(leg.local.rtp_port).chain(rtcp)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortKind {
    Rtp,
    Rtcp,
}

/// A local port's owner: the leg (by its RTP port) and which of its ports.
#[derive(Debug, Clone, Copy)]
struct PortRef {
    leg: u16,
    kind: PortKind,
}

#[derive(Debug)]
struct Leg {
    call_id: CallId,
    spec: LegSpec,
    /// The RTP port of the leg this one relays to.
    peer: Option<u16>,
    policy: LatchPolicy,
    rtp: Latch,
    rtcp: Latch,
    clock_rate: u32,
    event_clock_rate: u32,
    codec: CodecImpairment,
    rx: Option<ReceiverStats>,
    /// Losses of earlier SSRCs on this leg (a source restart starts anew).
    lost_before: u64,
    dtmf: EventTracker,
    traffic: Traffic,
    last_media: Option<Instant>,
    timed_out: bool,
}

impl Leg {
    fn new(call_id: CallId, spec: LegSpec, relatch_after: Duration) -> Self {
        let mut leg = Leg {
            call_id,
            policy: LatchPolicy {
                latch: spec.latch,
                expected: spec.expected_remote,
                relatch_after,
            },
            spec,
            peer: None,
            rtp: Latch::default(),
            rtcp: Latch::default(),
            clock_rate: DEFAULT_CLOCK,
            event_clock_rate: DEFAULT_CLOCK,
            codec: CodecImpairment::G711,
            rx: None,
            lost_before: 0,
            dtmf: EventTracker::new(),
            traffic: Traffic::default(),
            last_media: None,
            timed_out: false,
        };
        leg.derive_from_spec();
        leg
    }

    /// Takes a newer spec for the same local endpoint: latch state and
    /// statistics carry over.
    fn update(&mut self, spec: LegSpec, relatch_after: Duration) {
        self.policy = LatchPolicy {
            latch: spec.latch,
            expected: spec.expected_remote,
            relatch_after,
        };
        self.spec = spec;
        self.derive_from_spec();
    }

    fn derive_from_spec(&mut self) {
        let te = self.spec.telephone_event_pt;
        let main = self.spec.payload_types.iter().find(|p| Some(p.pt) != te);
        self.clock_rate = main.map_or(DEFAULT_CLOCK, |p| p.clock_rate.max(1));
        self.codec = main.map_or(CodecImpairment::G711, |p| codec_of(&p.name));
        self.event_clock_rate = self
            .spec
            .payload_types
            .iter()
            .find(|p| Some(p.pt) == te)
            .map_or(self.clock_rate, |p| p.clock_rate.max(1));
    }

    fn rtcp_port(&self) -> Option<u16> {
        match self.spec.local.rtcp {
            Rtcp::Mux => None,
            Rtcp::Port(p) => Some(p),
        }
    }

    /// Where this leg's endpoint receives RTP: the latched source, else the
    /// SDP's address (so media flows before the far end has sent any).
    fn rtp_destination(&self) -> Option<SocketAddr> {
        self.rtp.remote().or(self.spec.expected_remote)
    }

    /// Where its endpoint receives RTCP, and from which local port to send.
    fn rtcp_route(&self) -> Option<(u16, SocketAddr)> {
        match self.rtcp_port() {
            None => self
                .rtp_destination()
                .map(|dst| (self.spec.local.rtp_port, dst)),
            Some(port) => {
                // RFC 3550 §11: without other word, RTCP is on RTP port + 1.
                let dst = self.rtcp.remote().or_else(|| {
                    self.rtp_destination().map(|mut a| {
                        a.set_port(a.port().wrapping_add(1));
                        a
                    })
                })?;
                Some((port, dst))
            }
        }
    }

    fn stats(&self) -> LegStats {
        let t = &self.traffic;
        let (lost, jitter_us, loss_percent) = match &self.rx {
            Some(rx) => (
                self.lost_before + rx.cumulative_lost().max(0) as u64,
                rx.jitter_micros() as u32,
                rx.loss_percent(),
            ),
            None => (self.lost_before, 0, 0.0),
        };
        let mos_x100 = if t.packets_in == 0 {
            0 // nothing measured
        } else {
            (rtp::mos(self.codec, loss_percent, 0.0) * 100.0).round() as u16
        };
        LegStats {
            packets_in: t.packets_in,
            packets_out: t.packets_out,
            bytes_in: t.bytes_in,
            bytes_out: t.bytes_out,
            lost,
            jitter_us,
            mos_x100,
        }
    }
}

fn codec_of(name: &str) -> CodecImpairment {
    if name.eq_ignore_ascii_case("opus") {
        CodecImpairment::OPUS
    } else if name.eq_ignore_ascii_case("G722") {
        CodecImpairment::G722
    } else {
        CodecImpairment::G711
    }
}

#[derive(Debug)]
struct Call {
    version: u64,
    /// RTP ports of its legs, in snapshot order.
    legs: Vec<u16>,
}

/// The relay core of one worker: its calls, legs and ports.
#[derive(Debug)]
pub struct Relay {
    config: RelayConfig,
    calls: HashMap<CallId, Call>,
    /// Legs by their RTP port.
    legs: HashMap<u16, Leg>,
    ports: HashMap<u16, PortRef>,
    events: VecDeque<Event>,
    /// Drops on ports no leg owns.
    orphan_drops: Traffic,
    /// Traffic of released legs, so range counters never go backwards.
    retired: HashMap<RangeId, Traffic>,
}

impl Relay {
    pub fn new(config: RelayConfig) -> Self {
        Self {
            config,
            calls: HashMap::new(),
            legs: HashMap::new(),
            ports: HashMap::new(),
            events: VecDeque::new(),
            orphan_drops: Traffic::default(),
            retired: HashMap::new(),
        }
    }

    pub fn config(&self) -> &RelayConfig {
        &self.config
    }

    /// Brings a call to `snapshot`: an older version is refused with the
    /// state kept, the same version is a no-op, a newer one replaces the
    /// call — legs whose local endpoint is unchanged keep their latch and
    /// statistics, legs that are gone are dropped, new legs start fresh.
    pub fn apply(&mut self, snapshot: &CallSnapshot, now: Instant) -> Result<Applied, ApplyError> {
        let _ = now; // reserved: a continuation will start its rewriter here
        validate(snapshot).map_err(ApplyError::Invalid)?;
        let existing = self.calls.get(&snapshot.call_id);
        if let Some(call) = existing {
            if snapshot.version < call.version {
                return Err(StaleVersion {
                    current: call.version,
                    offered: snapshot.version,
                }
                .into());
            }
            if snapshot.version == call.version {
                return Ok(Applied::Unchanged);
            }
        }
        for port in snapshot.legs.iter().flat_map(leg_ports) {
            if let Some(owner) = self.port_owner(port)
                && *owner != snapshot.call_id
            {
                return Err(ApplyError::PortInUse {
                    port,
                    owner: owner.clone(),
                });
            }
        }
        let outcome = if existing.is_some() {
            Applied::Updated
        } else {
            Applied::New
        };

        // Take the old legs out; keep those whose endpoint is unchanged.
        let mut kept: Vec<Leg> = Vec::new();
        if let Some(old) = self.calls.remove(&snapshot.call_id) {
            for port in old.legs {
                let Some(leg) = self.remove_leg(port) else {
                    continue;
                };
                let survives = snapshot
                    .legs
                    .iter()
                    .any(|s| s.leg_id == leg.spec.leg_id && s.local == leg.spec.local);
                if survives {
                    kept.push(leg);
                } else {
                    self.retire(&leg);
                }
            }
        }

        let mut call = Call {
            version: snapshot.version,
            legs: Vec::with_capacity(snapshot.legs.len()),
        };
        for spec in &snapshot.legs {
            let mut leg = match kept.iter().position(|l| l.spec.leg_id == spec.leg_id) {
                Some(i) => {
                    let mut leg = kept.swap_remove(i);
                    leg.update(spec.clone(), self.config.relatch_after);
                    leg
                }
                None => Leg::new(
                    snapshot.call_id.clone(),
                    spec.clone(),
                    self.config.relatch_after,
                ),
            };
            leg.peer = spec.relay_to.and_then(|to| {
                snapshot
                    .legs
                    .iter()
                    .find(|l| l.leg_id == to)
                    .map(|l| l.local.rtp_port)
            });
            let rtp_port = spec.local.rtp_port;
            self.ports.insert(
                rtp_port,
                PortRef {
                    leg: rtp_port,
                    kind: PortKind::Rtp,
                },
            );
            if let Some(p) = leg.rtcp_port() {
                self.ports.insert(
                    p,
                    PortRef {
                        leg: rtp_port,
                        kind: PortKind::Rtcp,
                    },
                );
            }
            self.legs.insert(rtp_port, leg);
            call.legs.push(rtp_port);
        }
        self.calls.insert(snapshot.call_id.clone(), call);
        Ok(outcome)
    }

    /// Removes a call; returns its legs' final statistics.
    pub fn release(&mut self, call_id: &CallId) -> Option<Vec<(LegId, LegStats)>> {
        let call = self.calls.remove(call_id)?;
        let mut stats = Vec::with_capacity(call.legs.len());
        for port in call.legs {
            if let Some(mut leg) = self.remove_leg(port) {
                self.finish_dtmf(&mut leg);
                stats.push((leg.spec.leg_id, leg.stats()));
                self.retire(&leg);
            }
        }
        Some(stats)
    }

    /// The current statistics of a call's legs.
    pub fn call_stats(&self, call_id: &CallId) -> Option<Vec<(LegId, LegStats)>> {
        let call = self.calls.get(call_id)?;
        Some(
            call.legs
                .iter()
                .filter_map(|p| self.legs.get(p))
                .map(|l| (l.spec.leg_id, l.stats()))
                .collect(),
        )
    }

    /// The traffic counters of one leg.
    pub fn leg_traffic(&self, call_id: &CallId, leg: LegId) -> Option<&Traffic> {
        let call = self.calls.get(call_id)?;
        call.legs
            .iter()
            .filter_map(|p| self.legs.get(p))
            .find(|l| l.spec.leg_id == leg)
            .map(|l| &l.traffic)
    }

    /// The version of a call in force.
    pub fn version(&self, call_id: &CallId) -> Option<u64> {
        self.calls.get(call_id).map(|c| c.version)
    }

    /// Every local port of a call (RTP and RTCP).
    pub fn call_ports(&self, call_id: &CallId) -> Vec<u16> {
        let Some(call) = self.calls.get(call_id) else {
            return Vec::new();
        };
        call.legs
            .iter()
            .filter_map(|p| self.legs.get(p))
            .flat_map(|l| leg_ports(&l.spec).collect::<Vec<_>>())
            .collect()
    }

    pub fn has_port(&self, port: u16) -> bool {
        self.ports.contains_key(&port)
    }

    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    pub fn stream_count(&self) -> usize {
        self.legs.len()
    }

    /// The next event for the brain.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Decides what to do with one datagram that arrived on `local_port`
    /// from `src`. The buffer is mutable so later stages (SSRC rewriting,
    /// transcoding) can work in place; `len` in the verdict says how much
    /// of it to send.
    pub fn on_packet(
        &mut self,
        local_port: u16,
        src: SocketAddr,
        buf: &mut [u8],
        now: Instant,
    ) -> Verdict {
        let Some(&port) = self.ports.get(&local_port) else {
            self.orphan_drops.drops.count(DropReason::UnknownPort);
            return Verdict::Drop(DropReason::UnknownPort);
        };
        let Some(leg) = self.legs.get_mut(&port.leg) else {
            // The tables are kept in step; treat a gap like a stray port.
            self.orphan_drops.drops.count(DropReason::UnknownPort);
            return Verdict::Drop(DropReason::UnknownPort);
        };
        let len = buf.len();
        let verdict = if len > MAX_PACKET {
            Err(DropReason::Oversize)
        } else if port.kind == PortKind::Rtcp || (leg.rtcp_port().is_none() && is_rtcp(buf)) {
            accept_rtcp(leg, port.kind, src, buf, now)
        } else {
            accept_rtp(leg, src, buf, now, &mut self.events)
        };
        let (is_rtcp, peer) = match verdict {
            Ok(is_rtcp) => (is_rtcp, leg.peer),
            Err(reason) => {
                leg.traffic.drops.count(reason);
                return Verdict::Drop(reason);
            }
        };

        let Some(peer) = peer.and_then(|p| self.legs.get_mut(&p)) else {
            return self.drop_on(port.leg, DropReason::NoRoute);
        };
        let route = if is_rtcp {
            peer.rtcp_route()
        } else {
            peer.rtp_destination()
                .map(|dst| (peer.spec.local.rtp_port, dst))
        };
        let Some((out_port, dst)) = route else {
            return self.drop_on(port.leg, DropReason::NoDestination);
        };
        if is_rtcp {
            peer.traffic.rtcp_out += 1;
        } else {
            peer.traffic.packets_out += 1;
            peer.traffic.bytes_out += len as u64;
        }
        Verdict::Forward { out_port, dst, len }
    }

    /// Periodic work (every ~100 ms is plenty): media timeouts.
    pub fn on_tick(&mut self, now: Instant) {
        let timeout = self.config.media_timeout;
        for leg in self.legs.values_mut() {
            let Some(last) = leg.last_media else { continue };
            if !leg.timed_out && now.saturating_duration_since(last) >= timeout {
                leg.timed_out = true;
                // A digit whose end packets were lost ends with the media.
                if let Some(d) = leg.dtmf.finish() {
                    push_digit(
                        &mut self.events,
                        &leg.call_id,
                        leg.spec.leg_id,
                        &d,
                        leg.event_clock_rate,
                    );
                }
                self.events.push_back(Event::MediaTimeout {
                    call_id: leg.call_id.clone(),
                    leg: leg.spec.leg_id,
                });
            }
        }
    }

    /// Totals of this core, per range and overall.
    pub fn counters(&self) -> SbcCounters {
        let mut ranges: Vec<RangeCounters> = Vec::new();
        let mut range = |id: RangeId| -> usize {
            match ranges.iter().position(|r| r.range_id == id) {
                Some(i) => i,
                None => {
                    ranges.push(RangeCounters {
                        range_id: id,
                        streams: 0,
                        traffic: Traffic::default(),
                    });
                    ranges.len() - 1
                }
            }
        };
        let mut idx = Vec::new();
        for (id, t) in &self.retired {
            idx.push((range(*id), *t, 0));
        }
        for leg in self.legs.values() {
            idx.push((range(leg.spec.local.range_id), leg.traffic, 1));
        }
        let mut traffic = self.orphan_drops;
        for (i, t, streams) in idx {
            ranges[i].traffic.add(&t);
            ranges[i].streams += streams;
            traffic.add(&t);
        }
        ranges.sort_by_key(|r| r.range_id);
        SbcCounters {
            calls: self.calls.len() as u32,
            streams: self.legs.len() as u32,
            traffic,
            ranges,
            ..SbcCounters::default()
        }
    }

    fn drop_on(&mut self, leg_port: u16, reason: DropReason) -> Verdict {
        if let Some(leg) = self.legs.get_mut(&leg_port) {
            leg.traffic.drops.count(reason);
        }
        Verdict::Drop(reason)
    }

    fn port_owner(&self, port: u16) -> Option<&CallId> {
        let r = self.ports.get(&port)?;
        self.legs.get(&r.leg).map(|l| &l.call_id)
    }

    fn remove_leg(&mut self, rtp_port: u16) -> Option<Leg> {
        let leg = self.legs.remove(&rtp_port)?;
        for p in leg_ports(&leg.spec) {
            self.ports.remove(&p);
        }
        Some(leg)
    }

    fn retire(&mut self, leg: &Leg) {
        self.retired
            .entry(leg.spec.local.range_id)
            .or_default()
            .add(&leg.traffic);
    }

    fn finish_dtmf(&mut self, leg: &mut Leg) {
        if let Some(d) = leg.dtmf.finish() {
            push_digit(
                &mut self.events,
                &leg.call_id,
                leg.spec.leg_id,
                &d,
                leg.event_clock_rate,
            );
        }
    }
}

/// Validates and accepts an RTCP datagram; `Ok(true)` means "relay as RTCP".
fn accept_rtcp(
    leg: &mut Leg,
    kind: PortKind,
    src: SocketAddr,
    buf: &[u8],
    now: Instant,
) -> Result<bool, DropReason> {
    RtcpCompound::parse(buf).map_err(DropReason::Rtcp)?;
    // On its own port RTCP learns its own source; muxed, RTP decides.
    let outcome = match kind {
        PortKind::Rtcp => leg.rtcp.check(&leg.policy, src, true, now),
        PortKind::Rtp => leg.rtp.check(&leg.policy, src, false, now),
    };
    if outcome == LatchOutcome::Reject {
        return Err(DropReason::Hijack);
    }
    leg.traffic.rtcp_in += 1;
    Ok(true)
}

/// Validates and accepts an RTP packet: latching, statistics, digits.
fn accept_rtp(
    leg: &mut Leg,
    src: SocketAddr,
    buf: &[u8],
    now: Instant,
    events: &mut VecDeque<Event>,
) -> Result<bool, DropReason> {
    let pkt = RtpPacket::parse(buf).map_err(DropReason::Rtp)?;
    match leg.rtp.check(&leg.policy, src, true, now) {
        LatchOutcome::Reject => return Err(DropReason::Hijack),
        LatchOutcome::Latched => events.push_back(Event::LegLatched {
            call_id: leg.call_id.clone(),
            leg: leg.spec.leg_id,
            remote: src,
        }),
        LatchOutcome::Accept => {}
    }
    leg.traffic.packets_in += 1;
    leg.traffic.bytes_in += buf.len() as u64;
    leg.last_media = Some(now);
    leg.timed_out = false;

    let ssrc = pkt.ssrc();
    let rx = match &mut leg.rx {
        Some(rx) if rx.ssrc() == ssrc => rx,
        slot => {
            // A new source: its sequence space starts over.
            if let Some(old) = slot.as_ref() {
                leg.lost_before += old.cumulative_lost().max(0) as u64;
            }
            slot.insert(ReceiverStats::new(ssrc, leg.clock_rate))
        }
    };
    rx.on_packet_at(pkt.sequence_number(), pkt.timestamp(), now);

    if leg.spec.telephone_event_pt == Some(pkt.payload_type())
        && let Ok(ev) = TelephoneEvent::parse(pkt.payload())
    {
        for d in leg.dtmf.on_packet(pkt.timestamp(), ev) {
            push_digit(
                events,
                &leg.call_id,
                leg.spec.leg_id,
                &d,
                leg.event_clock_rate,
            );
        }
    }
    Ok(false)
}

fn push_digit(
    events: &mut VecDeque<Event>,
    call_id: &CallId,
    leg: LegId,
    d: &rtp::DigitEvent,
    clock_rate: u32,
) {
    // The protocol's digits are 0-9, *, #, A-D; hook flash is not one.
    if d.key == Key::Flash {
        return;
    }
    events.push_back(Event::Dtmf {
        call_id: call_id.clone(),
        leg,
        digit: d.key.as_char(),
        duration_ms: d.duration_ms(clock_rate),
    });
}
