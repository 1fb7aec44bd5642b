//! The node's side of the control connection as a sans-IO state machine.
//!
//! ```text
//!   Disconnected ──(backoff elapsed)──► Connecting ──(TCP up, Hello sent)──► AwaitWelcome
//!        ▲                                  │                                    │ Welcome
//!        │  connect failed / timed out      │                                    ▼
//!        ├──────────────────────────────────┘                                  Ready
//!        │  brain silent for dead_after, refused, connection lost                │
//!        └───────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! The session never touches media: losing the brain only closes this
//! connection, and the node's calls carry on.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::message::{BrainMessage, ErrorBody, Heartbeat, Hello, Load, NodeMessage, Request};
use crate::version::{ProtocolVersion, VersionError};

#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Give up on a TCP connect (or a brain that never says Welcome) after this.
    pub connect_timeout: Duration,
    /// Used until the brain's Welcome says otherwise.
    pub heartbeat_interval: Duration,
    /// Used until the brain's Welcome says otherwise.
    pub dead_after: Duration,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Seeds the reconnect jitter; differ per node.
    pub seed: u64,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(1),
            heartbeat_interval: Duration::from_millis(100),
            dead_after: Duration::from_millis(500),
            backoff_base: Backoff::DEFAULT_BASE,
            backoff_cap: Backoff::DEFAULT_CAP,
            seed: 0x7a4d_e3c1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Disconnected,
    Connecting,
    AwaitWelcome,
    Ready,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeOutput {
    /// Open a connection to the brain, then call `on_connected` or
    /// `on_connect_failed`.
    Connect,
    Send(NodeMessage),
    /// Drop the connection (or the connect in progress). The session is
    /// already `Disconnected` and has scheduled the next attempt.
    Close(CloseReason),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloseReason {
    #[error("connecting to the brain timed out")]
    ConnectTimeout,
    #[error("heard nothing from the brain for {0:?}")]
    BrainSilent(Duration),
    #[error("brain refused the node: {0}")]
    Refused(ErrorBody),
    #[error(transparent)]
    Version(#[from] VersionError),
    #[error("protocol violation: {0}")]
    Violation(&'static str),
}

#[derive(Debug)]
pub struct NodeSession {
    config: NodeConfig,
    state: NodeState,
    backoff: Backoff,
    /// Disconnected: when to try again. Connecting: when to give up.
    deadline: Instant,
    heartbeat_interval: Duration,
    dead_after: Duration,
    last_rx: Instant,
    next_heartbeat: Instant,
    heartbeat_seq: u64,
    load: Load,
    brain_id: Option<String>,
    version: Option<ProtocolVersion>,
    out: VecDeque<NodeOutput>,
}

impl NodeSession {
    /// A session that will connect at once.
    pub fn new(config: NodeConfig, now: Instant) -> Self {
        let backoff = Backoff::new(config.backoff_base, config.backoff_cap, config.seed);
        Self {
            heartbeat_interval: config.heartbeat_interval,
            dead_after: config.dead_after,
            config,
            state: NodeState::Disconnected,
            backoff,
            deadline: now,
            last_rx: now,
            next_heartbeat: now,
            heartbeat_seq: 0,
            load: Load::default(),
            brain_id: None,
            version: None,
            out: VecDeque::new(),
        }
    }

    pub fn state(&self) -> NodeState {
        self.state
    }

    /// The brain that welcomed this connection.
    pub fn brain_id(&self) -> Option<&str> {
        self.brain_id.as_deref()
    }

    /// The version agreed with the current brain.
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.version
    }

    pub fn heartbeat_interval(&self) -> Duration {
        self.heartbeat_interval
    }

    /// Reported in the following heartbeats.
    pub fn set_load(&mut self, load: Load) {
        self.load = load;
    }

    pub fn poll_output(&mut self) -> Option<NodeOutput> {
        self.out.pop_front()
    }

    /// When `handle_timeout` next has something to do.
    pub fn poll_timeout(&self) -> Instant {
        match self.state {
            NodeState::Disconnected | NodeState::Connecting => self.deadline,
            NodeState::AwaitWelcome => self.silence_deadline(),
            NodeState::Ready => self.silence_deadline().min(self.next_heartbeat),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            NodeState::Disconnected if now >= self.deadline => {
                self.state = NodeState::Connecting;
                self.deadline = now + self.config.connect_timeout;
                self.out.push_back(NodeOutput::Connect);
            }
            NodeState::Connecting if now >= self.deadline => {
                self.close(now, CloseReason::ConnectTimeout);
            }
            NodeState::AwaitWelcome | NodeState::Ready if now >= self.silence_deadline() => {
                self.close(now, CloseReason::BrainSilent(self.dead_after));
            }
            NodeState::Ready if now >= self.next_heartbeat => {
                self.heartbeat_seq += 1;
                self.out
                    .push_back(NodeOutput::Send(NodeMessage::Heartbeat(Heartbeat {
                        seq: self.heartbeat_seq,
                        load: self.load,
                    })));
                // Keep the cadence, but after a stall send one, not a burst.
                self.next_heartbeat += self.heartbeat_interval;
                if self.next_heartbeat <= now {
                    self.next_heartbeat = now + self.heartbeat_interval;
                }
            }
            _ => {}
        }
    }

    /// The connection is up: `hello` (with everything the node carries now)
    /// goes out first.
    pub fn on_connected(&mut self, now: Instant, hello: Hello) {
        if self.state != NodeState::Connecting {
            return;
        }
        self.state = NodeState::AwaitWelcome;
        self.last_rx = now;
        // Until Welcome, the configured values bound how long we wait.
        self.heartbeat_interval = self.config.heartbeat_interval;
        self.dead_after = self.config.dead_after.max(self.config.connect_timeout);
        self.out
            .push_back(NodeOutput::Send(NodeMessage::Hello(hello)));
    }

    pub fn on_connect_failed(&mut self, now: Instant) {
        if self.state == NodeState::Connecting {
            self.disconnect(now);
        }
    }

    /// The connection broke (EOF, I/O error, fatal framing error).
    pub fn on_disconnected(&mut self, now: Instant) {
        if matches!(self.state, NodeState::AwaitWelcome | NodeState::Ready) {
            self.disconnect(now);
        }
    }

    /// A message from the brain. Returns a request for the node to carry out
    /// and answer with a `Reply`.
    pub fn on_message(&mut self, now: Instant, msg: BrainMessage) -> Option<Request> {
        if !matches!(self.state, NodeState::AwaitWelcome | NodeState::Ready) {
            return None; // left over from a connection already given up
        }
        self.last_rx = now;
        match (self.state, msg) {
            (NodeState::AwaitWelcome, BrainMessage::Welcome(welcome)) => {
                match ProtocolVersion::CURRENT.negotiate(welcome.protocol_version) {
                    Ok(version) => self.version = Some(version),
                    Err(e) => {
                        self.backoff.saturate();
                        self.close(now, e.into());
                        return None;
                    }
                }
                // Guard against nonsense timers: at least 10 ms between
                // heartbeats, and at least two heartbeats before "dead".
                self.heartbeat_interval =
                    Duration::from_millis(u64::from(welcome.heartbeat_interval_ms).max(10));
                self.dead_after = Duration::from_millis(u64::from(welcome.dead_after_ms))
                    .max(self.heartbeat_interval * 2);
                self.brain_id = Some(welcome.brain_id);
                self.state = NodeState::Ready;
                self.backoff.reset();
                self.next_heartbeat = now;
                self.handle_timeout(now);
                None
            }
            (_, BrainMessage::Refused(err)) => {
                // Retrying soon will not change the brain's mind.
                self.backoff.saturate();
                self.close(now, CloseReason::Refused(err));
                None
            }
            (NodeState::Ready, BrainMessage::HeartbeatAck { .. }) => None,
            (NodeState::Ready, BrainMessage::Request(req)) => Some(req),
            (NodeState::Ready, BrainMessage::Welcome(_)) => {
                self.close(now, CloseReason::Violation("second Welcome"));
                None
            }
            (_, _) => {
                self.close(now, CloseReason::Violation("message before Welcome"));
                None
            }
        }
    }

    fn silence_deadline(&self) -> Instant {
        self.last_rx + self.dead_after
    }

    fn close(&mut self, now: Instant, reason: CloseReason) {
        self.disconnect(now);
        self.out.push_back(NodeOutput::Close(reason));
    }

    fn disconnect(&mut self, now: Instant) {
        self.state = NodeState::Disconnected;
        self.brain_id = None;
        self.version = None;
        self.deadline = now + self.backoff.next_delay();
    }
}
