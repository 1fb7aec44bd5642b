//! How a message is addressed: transport kind, connection (flow) ids, send targets.

use std::fmt;
use std::net::SocketAddr;

/// A SIP transport, as named in a Via header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    Ws,
    Wss,
}

impl Transport {
    pub const ALL: [Transport; 5] = [Self::Udp, Self::Tcp, Self::Tls, Self::Ws, Self::Wss];

    /// Connection-oriented: messages travel over a flow.
    pub fn is_stream(self) -> bool {
        self != Self::Udp
    }

    pub fn is_secure(self) -> bool {
        matches!(self, Self::Tls | Self::Wss)
    }

    /// The token used in a Via header's sent-protocol.
    pub fn via_name(self) -> &'static str {
        match self {
            Self::Udp => "UDP",
            Self::Tcp => "TCP",
            Self::Tls => "TLS",
            Self::Ws => "WS",
            Self::Wss => "WSS",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.via_name())
    }
}

/// One connection (an RFC 5626 flow), unique for the life of a
/// [`TransportLayer`](crate::TransportLayer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowId(pub(crate) u64);

impl FlowId {
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for FlowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "flow#{}", self.0)
    }
}

/// Where [`send`](crate::TransportLayer::send) delivers a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub transport: Transport,
    pub remote: SocketAddr,
    /// The connection to use first, e.g. the one a request arrived on.
    pub flow: Option<FlowId>,
    /// UDP: the listening address to send from (default: the first UDP
    /// listener of the remote's address family).
    pub local: Option<SocketAddr>,
    /// TLS: the name to put in SNI and verify the certificate against
    /// (default: the remote IP address).
    pub server_name: Option<String>,
}

impl Target {
    pub fn new(transport: Transport, remote: SocketAddr) -> Self {
        Self {
            transport,
            remote,
            flow: None,
            local: None,
            server_name: None,
        }
    }

    pub fn with_flow(mut self, flow: Option<FlowId>) -> Self {
        self.flow = flow;
        self
    }

    pub fn with_local(mut self, local: SocketAddr) -> Self {
        self.local = Some(local);
        self
    }

    pub fn with_server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }
}
