//! The brain's side of one node connection as a sans-IO state machine:
//! handshake and version check, heartbeat acks, request correlation,
//! silence detection.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::brain::pending::Pending;
use crate::brain::registry::DEFAULT_DEAD_AFTER;
use crate::message::{
    BrainMessage, ErrorBody, ErrorCode, Event, Heartbeat, Hello, NodeId, NodeMessage, ReplyBody,
    Request, RequestBody, Welcome,
};
use crate::version::{ProtocolVersion, VersionError};

#[derive(Debug, Clone)]
pub struct BrainConfig {
    /// Tells nodes which brain they reached; a new one after failover.
    pub brain_id: String,
    pub heartbeat_interval: Duration,
    pub dead_after: Duration,
    /// A connection that says no Hello this long is dropped.
    pub hello_timeout: Duration,
}

impl Default for BrainConfig {
    fn default() -> Self {
        Self {
            brain_id: "brain".into(),
            heartbeat_interval: Duration::from_millis(100),
            dead_after: DEFAULT_DEAD_AFTER,
            hello_timeout: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnClose {
    #[error("node refused: {0}")]
    Refused(VersionError),
    #[error("no Hello within {0:?}")]
    NoHello(Duration),
    #[error("heard nothing from the node for {0:?}")]
    NodeSilent(Duration),
    #[error("protocol violation: {0}")]
    Violation(&'static str),
    #[error("connection lost")]
    Lost,
}

/// What happened on the connection, for the brain to act on.
#[derive(Debug, PartialEq, Eq)]
pub enum ConnEvent<T> {
    /// The node is accepted; its Welcome is queued. Rebuild from `snapshots`.
    Hello(Hello),
    Heartbeat(Heartbeat),
    Event(Event),
    Reply {
        token: T,
        result: Result<ReplyBody, ErrorBody>,
    },
    TimedOut {
        token: T,
    },
    /// Last event: drop the connection once `poll_transmit` is empty.
    Closed {
        reason: ConnClose,
        unanswered: Vec<T>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    AwaitHello,
    Ready,
    Closed,
}

#[derive(Debug)]
pub struct BrainConnection<T> {
    config: BrainConfig,
    state: ConnState,
    node_id: Option<NodeId>,
    last_rx: Instant,
    started: Instant,
    pending: Pending<T>,
    transmit: VecDeque<BrainMessage>,
    events: VecDeque<ConnEvent<T>>,
}

impl<T> BrainConnection<T> {
    pub fn new(config: BrainConfig, now: Instant) -> Self {
        Self {
            config,
            state: ConnState::AwaitHello,
            node_id: None,
            last_rx: now,
            started: now,
            pending: Pending::new(),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn state(&self) -> ConnState {
        self.state
    }

    pub fn node_id(&self) -> Option<&NodeId> {
        self.node_id.as_ref()
    }

    pub fn poll_transmit(&mut self) -> Option<BrainMessage> {
        self.transmit.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<ConnEvent<T>> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            ConnState::AwaitHello => Some(self.started + self.config.hello_timeout),
            ConnState::Ready => {
                let silent = self.last_rx + self.config.dead_after;
                Some(
                    self.pending
                        .next_deadline()
                        .map_or(silent, |d| d.min(silent)),
                )
            }
            ConnState::Closed => None,
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            ConnState::AwaitHello if now >= self.started + self.config.hello_timeout => {
                self.close(ConnClose::NoHello(self.config.hello_timeout));
            }
            ConnState::Ready => {
                for (_, token) in self.pending.expire(now) {
                    self.events.push_back(ConnEvent::TimedOut { token });
                }
                if now >= self.last_rx + self.config.dead_after {
                    self.close(ConnClose::NodeSilent(self.config.dead_after));
                }
            }
            _ => {}
        }
    }

    /// Sends `body` to the node; its reply (or timeout) comes back as an
    /// event carrying `token`. Gives the token back if the node is not ready.
    pub fn request(
        &mut self,
        now: Instant,
        body: RequestBody,
        timeout: Duration,
        token: T,
    ) -> Result<u64, T> {
        if self.state != ConnState::Ready {
            return Err(token);
        }
        let req_id = self.pending.start(now + timeout, token);
        self.transmit
            .push_back(BrainMessage::Request(Request { req_id, body }));
        Ok(req_id)
    }

    pub fn on_message(&mut self, now: Instant, msg: NodeMessage) {
        if self.state == ConnState::Closed {
            return;
        }
        self.last_rx = now;
        match (self.state, msg) {
            (ConnState::AwaitHello, NodeMessage::Hello(hello)) => {
                if let Err(e) = ProtocolVersion::CURRENT.negotiate(hello.protocol_version) {
                    self.transmit
                        .push_back(BrainMessage::Refused(ErrorBody::new(
                            ErrorCode::VERSION_MISMATCH,
                            e.to_string(),
                        )));
                    self.close(ConnClose::Refused(e));
                    return;
                }
                self.transmit.push_back(BrainMessage::Welcome(Welcome {
                    brain_id: self.config.brain_id.clone(),
                    protocol_version: ProtocolVersion::CURRENT,
                    heartbeat_interval_ms: millis(self.config.heartbeat_interval),
                    dead_after_ms: millis(self.config.dead_after),
                }));
                self.node_id = Some(hello.node_id.clone());
                self.state = ConnState::Ready;
                self.events.push_back(ConnEvent::Hello(hello));
            }
            (ConnState::Ready, NodeMessage::Heartbeat(hb)) => {
                self.transmit
                    .push_back(BrainMessage::HeartbeatAck { seq: hb.seq });
                self.events.push_back(ConnEvent::Heartbeat(hb));
            }
            (ConnState::Ready, NodeMessage::Event(ev)) => {
                self.events.push_back(ConnEvent::Event(ev));
            }
            (ConnState::Ready, NodeMessage::Reply(reply)) => {
                // A reply after its timeout finds nothing and is dropped.
                if let Some(token) = self.pending.complete(reply.req_id) {
                    self.events.push_back(ConnEvent::Reply {
                        token,
                        result: reply.result,
                    });
                }
            }
            (ConnState::Ready, NodeMessage::Hello(_)) => {
                self.close(ConnClose::Violation("second Hello"))
            }
            (_, _) => self.close(ConnClose::Violation("message before Hello")),
        }
    }

    /// The transport is gone (EOF, I/O error, fatal framing error).
    pub fn on_disconnected(&mut self) {
        if self.state != ConnState::Closed {
            self.close(ConnClose::Lost);
        }
    }

    fn close(&mut self, reason: ConnClose) {
        self.state = ConnState::Closed;
        let unanswered = self.pending.drain();
        self.events
            .push_back(ConnEvent::Closed { reason, unanswered });
    }
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}
