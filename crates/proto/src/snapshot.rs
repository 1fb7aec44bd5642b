//! Desired state the brain hands a node: port ranges, calls and conferences.
//!
//! A snapshot is always *complete* — a node replaces what it has with it, it
//! never merges — and carries a version that only grows, so a late or
//! repeated snapshot can be recognised and ignored (see [`crate::store`]).

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

/// A call, as the brain names it. Stable across brain failover: the new brain
/// rebuilds its state from the snapshots that carry these ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CallId(pub String);

/// A conference, as the brain names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConferenceId(pub String);

/// One leg (one media stream towards one endpoint) within a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LegId(pub u32);

/// A port range, unique across the platform so it can move between SBCs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RangeId(pub u32);

/// A slice of an SBC's capacity: the ports it relays on, bound to `bind_ip`,
/// and the virtual IP endpoints see, which moves with the range on failover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRange {
    pub id: RangeId,
    pub bind_ip: IpAddr,
    pub vip: Option<IpAddr>,
    pub first_port: u16,
    pub last_port: u16,
}

/// Where RTCP goes on the local side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rtcp {
    /// RFC 5761: RTCP shares the RTP port.
    Mux,
    Port(u16),
}

/// The local address of a stream: a port (pair) inside one of the node's ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalEndpoint {
    pub range_id: RangeId,
    pub rtp_port: u16,
    pub rtcp: Rtcp,
}

/// One payload type as negotiated in SDP for one side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayloadType {
    pub pt: u8,
    /// Encoding name as in `a=rtpmap`, e.g. `PCMU`, `opus`.
    pub name: String,
    pub clock_rate: u32,
    pub channels: u8,
}

/// Where an outgoing stream left off, so a stream moved to another SBC keeps
/// its SSRC and sequence/timestamp run and the far end sees no discontinuity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamContinuation {
    pub ssrc: u32,
    pub seq: u16,
    pub timestamp: u32,
}

/// One leg of a call on an SBC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegSpec {
    pub leg_id: LegId,
    pub local: LocalEndpoint,
    /// From the remote SDP; `None` until the far end has answered.
    pub expected_remote: Option<SocketAddr>,
    /// Follow the source address of the first packets (NAT) instead of
    /// trusting `expected_remote`.
    pub latch: bool,
    /// This side's payload types, in preference order.
    pub payload_types: Vec<PayloadType>,
    /// RFC 4733 `telephone-event` payload type on this side, if offered.
    pub telephone_event_pt: Option<u8>,
    /// The leg this leg's media is relayed to; `None` for a leg that only
    /// plays prompts or is parked.
    pub relay_to: Option<LegId>,
    pub continuation: Option<StreamContinuation>,
}

impl LegSpec {
    pub fn rtcp_mux(&self) -> bool {
        self.local.rtcp == Rtcp::Mux
    }
}

/// The complete desired state of one call on the SBC carrying it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallSnapshot {
    pub call_id: CallId,
    /// Grows with every change the brain makes to this call.
    pub version: u64,
    pub legs: Vec<LegSpec>,
}

/// Per-participant switches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantFlags {
    /// Their audio is not mixed in.
    pub muted: bool,
    /// They hear nothing.
    pub deaf: bool,
    pub moderator: bool,
}

/// One conference participant: the mixer exchanges its audio with an SBC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub participant_id: u32,
    /// The mixer's own port for this participant: one of the ranges the
    /// mixer declared in its Hello. Every participant of a conference uses
    /// the same one (a conference lives on one mixer thread), and the mixer
    /// tells participants apart by `sbc_endpoint`.
    pub local: LocalEndpoint,
    /// The SBC endpoint that sends this participant's audio, and where the
    /// mixer sends what the participant hears.
    pub sbc_endpoint: SocketAddr,
    pub payload_type: PayloadType,
    /// The SSRC of the stream the mixer sends this participant; kept so a
    /// conference recreated elsewhere goes on under the same source.
    pub ssrc: u32,
    pub flags: ParticipantFlags,
}

/// How a conference sounds, beyond who is in it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConferenceOptions {
    /// Nobody is mixed until a moderator is in; until then everyone hears
    /// `wait_music` (or silence).
    pub moderator_required: bool,
    /// A short rising tone when someone joins, falling when someone leaves.
    pub join_leave_tones: bool,
    /// A WAV file (a path on the mixer) played to a participant who is
    /// alone in the conference, once when they find themselves alone.
    pub alone_prompt: Option<String>,
    /// A WAV file looped to participants while nobody is mixed (alone, or
    /// waiting for the moderator). `None`: silence.
    pub wait_music: Option<String>,
    /// Where the mix is recorded, as a WAV file path on the mixer.
    pub recording: Option<String>,
    /// Noise suppression on every line (costly: tens of µs a frame).
    pub noise_suppression: bool,
    /// Quiet talkers raised and loud ones lowered, towards one level.
    pub level_control: bool,
}

/// The complete desired state of one conference on the mixer carrying it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConferenceSnapshot {
    pub conference_id: ConferenceId,
    pub version: u64,
    /// Mixing rate in Hz: 8000, 16000, 32000 or 48000.
    pub sample_rate: u32,
    /// Mixing period: 10, 20 or 40 ms.
    pub tick_ms: u16,
    /// How many talkers are mixed at once.
    pub max_speakers: u8,
    pub options: ConferenceOptions,
    pub participants: Vec<Participant>,
}

/// What a node carries, uploaded in `Hello` so a new brain can rebuild.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Snapshot {
    Call(CallSnapshot),
    Conference(ConferenceSnapshot),
}
