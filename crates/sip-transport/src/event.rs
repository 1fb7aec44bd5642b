//! What the transport layer reports to its user.

use std::net::SocketAddr;

use bytes::Bytes;
use sip::framing::FramingError;

use crate::flow::{FlowId, Target, Transport};

#[derive(Debug)]
pub enum TransportEvent {
    Incoming(Incoming),
    Closed(Closed),
}

/// One inbound SIP message, unparsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub transport: Transport,
    /// The listening (UDP) or connection-local address it arrived on.
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The connection it arrived on; `None` for UDP.
    pub flow: Option<FlowId>,
    pub data: Bytes,
}

impl Incoming {
    /// Where a response goes: back over the same connection, or for UDP
    /// from the same socket to the source address.
    pub fn reply_target(&self) -> Target {
        let target = Target::new(self.transport, self.remote).with_flow(self.flow);
        if self.transport.is_stream() {
            target
        } else {
            target.with_local(self.local)
        }
    }
}

/// A connection has ended; later sends to its flow fail or reconnect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    pub transport: Transport,
    pub flow: FlowId,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub reason: CloseReason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    PeerClosed,
    IdleTimeout,
    /// A message was started but not finished in time (slow or stalled peer).
    MessageTimeout,
    Framing(FramingError),
    /// The peer did not read what we sent: queue full or write timed out.
    WriteStalled,
    Io(std::io::ErrorKind),
    /// WebSocket protocol violation.
    Protocol(String),
    /// Closed on our side: shutdown or eviction.
    Local,
}
