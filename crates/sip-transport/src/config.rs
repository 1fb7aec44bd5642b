//! What to listen on and the limits that keep a misbehaving peer cheap.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sip::framing::FramerLimits;

use crate::flow::Transport;

#[derive(Debug, Clone)]
pub struct TransportConfig {
    pub listeners: Vec<ListenerConfig>,
    pub limits: Limits,
    /// Trust anchors (PEM certificates) for outbound TLS. With none, every
    /// outbound TLS connection fails verification.
    pub tls_client_roots: Vec<PemSource>,
    /// Capacity of the event channel handed to the user. When it is full,
    /// UDP datagrams are dropped (the sender retransmits) and stream
    /// connections stop reading (TCP pushes back on the peer).
    pub event_queue: usize,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            listeners: Vec::new(),
            limits: Limits::default(),
            tls_client_roots: Vec::new(),
            event_queue: 1024,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ListenerConfig {
    pub addr: SocketAddr,
    pub kind: ListenerKind,
}

impl ListenerConfig {
    pub fn udp(addr: SocketAddr) -> Self {
        Self {
            addr,
            kind: ListenerKind::Udp,
        }
    }

    pub fn tcp(addr: SocketAddr) -> Self {
        Self {
            addr,
            kind: ListenerKind::Tcp,
        }
    }

    pub fn tls(addr: SocketAddr, identity: TlsIdentity) -> Self {
        Self {
            addr,
            kind: ListenerKind::Tls(identity),
        }
    }

    pub fn ws(addr: SocketAddr) -> Self {
        Self {
            addr,
            kind: ListenerKind::Ws,
        }
    }

    pub fn wss(addr: SocketAddr, identity: TlsIdentity) -> Self {
        Self {
            addr,
            kind: ListenerKind::Wss(identity),
        }
    }
}

#[derive(Debug, Clone)]
pub enum ListenerKind {
    Udp,
    Tcp,
    Tls(TlsIdentity),
    Ws,
    Wss(TlsIdentity),
}

impl ListenerKind {
    pub fn transport(&self) -> Transport {
        match self {
            Self::Udp => Transport::Udp,
            Self::Tcp => Transport::Tcp,
            Self::Tls(_) => Transport::Tls,
            Self::Ws => Transport::Ws,
            Self::Wss(_) => Transport::Wss,
        }
    }
}

/// A server certificate chain and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct TlsIdentity {
    pub cert_chain: PemSource,
    pub key: PemSource,
}

#[derive(Clone)]
pub enum PemSource {
    File(PathBuf),
    Memory(Vec<u8>),
}

impl fmt::Debug for PemSource {
    // Keys must not end up in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Memory(pem) => write!(f, "Memory(<{} bytes>)", pem.len()),
        }
    }
}

/// Bounds on every stream connection (TCP, TLS, WS, WSS).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Header-section and message size caps; WebSocket messages use
    /// `max_message_bytes` too.
    pub framer: FramerLimits,
    /// No traffic either way for this long closes the connection.
    pub idle_timeout: Duration,
    /// A message that has started must be complete within this, so a
    /// slowloris or half-open peer cannot hold a connection open. WebSocket
    /// checks it at this granularity, so there it may take up to twice as long.
    pub message_timeout: Duration,
    /// TLS and WebSocket upgrade handshakes, together, must finish within this.
    pub handshake_timeout: Duration,
    pub connect_timeout: Duration,
    /// Writing one message must finish within this.
    pub write_timeout: Duration,
    /// Inbound connections open at once, in total and from one IP address.
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// Messages queued for one connection; a peer that lets it fill is cut off.
    pub outbound_queue: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            framer: FramerLimits::default(),
            idle_timeout: Duration::from_secs(600),
            message_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            // Room for a NATed office or an SBC's trunk, not for a flood.
            max_connections_per_ip: 128,
            outbound_queue: 128,
        }
    }
}
