//! The messages: what a node sends the brain and what the brain sends a node.
//!
//! Encoding is positional (postcard), so the order of fields and of enum
//! variants *is* the wire format: append, never reorder or remove (crate
//! docs, "Compatibility").

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::snapshot::{
    CallId, CallSnapshot, ConferenceId, ConferenceSnapshot, LegId, PortRange, Snapshot,
};
use crate::version::ProtocolVersion;

/// A media node, as it names itself (configured, stable across restarts).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId(pub String);

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    Sbc,
    Mixer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    pub max_streams: u32,
    pub workers: u16,
}

/// How busy a node is right now; the brain places new work by it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Load {
    pub active_streams: u32,
    pub packets_per_sec: u32,
    /// Of the whole node, 0..=100.
    pub cpu_percent: u8,
}

// ---------------------------------------------------------------- node → brain

/// Everything a node sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeMessage {
    Hello(Hello),
    Heartbeat(Heartbeat),
    Reply(Reply),
    Event(Event),
}

/// The first message on every connection. It carries everything the node
/// holds, so a brain that has just taken over can rebuild from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub node_id: NodeId,
    pub role: Role,
    pub protocol_version: ProtocolVersion,
    pub capacity: Capacity,
    pub media_addrs: Vec<IpAddr>,
    /// The port ranges the node was given and still serves.
    pub ranges: Vec<PortRange>,
    /// The calls/conferences it carries now.
    pub snapshots: Vec<Snapshot>,
}

impl Hello {
    /// A Hello at this build's protocol version, carrying nothing yet.
    pub fn new(node_id: NodeId, role: Role, capacity: Capacity) -> Self {
        Self {
            node_id,
            role,
            protocol_version: ProtocolVersion::CURRENT,
            capacity,
            media_addrs: Vec::new(),
            ranges: Vec::new(),
            snapshots: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub seq: u64,
    pub load: Load,
}

/// The answer to one [`Request`], matched by `req_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub req_id: u64,
    pub result: Result<ReplyBody, ErrorBody>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplyBody {
    /// Done; nothing to report.
    Done,
    /// The snapshot is in force at this version (also for a no-op re-apply).
    Applied { version: u64 },
    Stats {
        call_id: CallId,
        legs: Vec<(LegId, LegStats)>,
    },
    /// A conference's counters, per participant (also the answer to
    /// `ReleaseConference`: the final figures).
    ConferenceStats {
        conference_id: ConferenceId,
        participants: Vec<(u32, LegStats)>,
    },
}

/// A refused request, or a refused connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ErrorBody {
    pub code: ErrorCode,
    /// For people and logs; code decides.
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// An error code. A number rather than an enum so that a peer with a newer
/// minor version can send a code this side has never heard of and the reply
/// still decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ErrorCode(pub u16);

impl ErrorCode {
    /// The request was malformed or inconsistent (e.g. a port outside any range).
    pub const INVALID: ErrorCode = ErrorCode(1);
    /// A snapshot older than the one in force; the node kept its state.
    pub const STALE_VERSION: ErrorCode = ErrorCode(2);
    pub const UNKNOWN_CALL: ErrorCode = ErrorCode(3);
    pub const UNKNOWN_CONFERENCE: ErrorCode = ErrorCode(4);
    pub const NO_CAPACITY: ErrorCode = ErrorCode(5);
    /// The node does not do that (e.g. a conference sent to an SBC).
    pub const UNSUPPORTED: ErrorCode = ErrorCode(6);
    /// The protocol versions cannot interoperate.
    pub const VERSION_MISMATCH: ErrorCode = ErrorCode(7);
    pub const INTERNAL: ErrorCode = ErrorCode(8);

    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::INVALID => "invalid",
            Self::STALE_VERSION => "stale-version",
            Self::UNKNOWN_CALL => "unknown-call",
            Self::UNKNOWN_CONFERENCE => "unknown-conference",
            Self::NO_CAPACITY => "no-capacity",
            Self::UNSUPPORTED => "unsupported",
            Self::VERSION_MISMATCH => "version-mismatch",
            Self::INTERNAL => "internal",
            _ => return None,
        })
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "error {}", self.0),
        }
    }
}

/// Media events the brain needs to make decisions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// The leg's remote address was learned from the first packets.
    LegLatched {
        call_id: CallId,
        leg: LegId,
        remote: SocketAddr,
    },
    /// An RFC 4733 event (or a detected in-band tone) ended.
    Dtmf {
        call_id: CallId,
        leg: LegId,
        /// `0-9`, `*`, `#`, `A-D`.
        digit: char,
        duration_ms: u32,
    },
    /// No media on the leg for the configured time.
    MediaTimeout { call_id: CallId, leg: LegId },
    LegStats {
        call_id: CallId,
        leg: LegId,
        stats: LegStats,
    },
    /// A participant started (`true`) or stopped being one of the mixed
    /// talkers.
    Talking {
        conference_id: ConferenceId,
        participant_id: u32,
        talking: bool,
    },
    /// A conference's recording was closed and is complete on disk.
    RecordingDone {
        conference_id: ConferenceId,
        path: String,
        duration_ms: u64,
    },
}

/// Quality counters of one leg, cumulative since the leg started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegStats {
    pub packets_in: u64,
    pub packets_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub lost: u64,
    pub jitter_us: u32,
    /// Estimated MOS times 100 (e.g. 432 = 4.32).
    pub mos_x100: u16,
}

// ---------------------------------------------------------------- brain → node

/// Everything the brain sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BrainMessage {
    Welcome(Welcome),
    /// The connection is refused (e.g. version mismatch); the brain closes it.
    Refused(ErrorBody),
    /// Answers a heartbeat, so a node hears from a brain that has nothing to ask.
    HeartbeatAck {
        seq: u64,
    },
    Request(Request),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// Changes when another brain takes over.
    pub brain_id: String,
    pub protocol_version: ProtocolVersion,
    pub heartbeat_interval_ms: u32,
    /// Either side that hears nothing from the other this long drops the link.
    pub dead_after_ms: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub req_id: u64,
    pub body: RequestBody,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestBody {
    /// The complete set of ranges the node serves from now on.
    AssignRanges {
        ranges: Vec<PortRange>,
    },
    ApplyCall(CallSnapshot),
    ReleaseCall {
        call_id: CallId,
    },
    GetStats {
        call_id: CallId,
    },
    ApplyConference(ConferenceSnapshot),
    ReleaseConference {
        conference_id: ConferenceId,
    },
    GetConferenceStats {
        conference_id: ConferenceId,
    },
}
