//! What an SBC is told at start: where the brain is, who it is, how much
//! it may carry, and its media timers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use proto::node::NodeConfig;

use crate::relay::RelayConfig;

/// Where a node looks for the brain when nothing says otherwise (the
/// brain's control listener on the same machine, as `tandem up` runs it).
pub const DEFAULT_BRAIN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5090);

#[derive(Debug, Clone)]
pub struct SbcConfig {
    /// The brain's control address (its virtual IP when there is a standby).
    pub brain: SocketAddr,
    /// Stable across restarts: the brain knows the node by it.
    pub node_id: String,
    /// The addresses this node can relay on, reported in Hello.
    pub media_ips: Vec<IpAddr>,
    /// Legs (streams) this node accepts at most; more is `NO_CAPACITY`.
    pub max_streams: u32,
    /// Media worker threads; each owns its calls' sockets and state.
    pub workers: u16,
    /// No RTP for this long on a leg that had media: `MediaTimeout`.
    pub media_timeout: Duration,
    /// A latched source silent this long may be replaced (NAT rebinding).
    pub relatch_after: Duration,
    /// How often workers check timers and publish their load.
    pub tick: Duration,
    /// How long the control side waits for a worker to confirm a command.
    pub worker_reply_timeout: Duration,
    /// Media events held while the brain is away; more are dropped (counted).
    pub event_queue: usize,
    /// Control-connection timers (heartbeat, reconnect backoff).
    pub node: NodeConfig,
}

impl Default for SbcConfig {
    fn default() -> Self {
        let relay = RelayConfig::default();
        Self {
            brain: DEFAULT_BRAIN,
            node_id: "sbc-1".into(),
            media_ips: Vec::new(),
            max_streams: 10_000,
            workers: 1,
            media_timeout: relay.media_timeout,
            relatch_after: relay.relatch_after,
            tick: Duration::from_millis(100),
            worker_reply_timeout: Duration::from_millis(500),
            event_queue: 4096,
            node: NodeConfig::default(),
        }
    }
}

impl SbcConfig {
    pub(crate) fn relay(&self) -> RelayConfig {
        RelayConfig {
            relatch_after: self.relatch_after,
            media_timeout: self.media_timeout,
        }
    }
}
