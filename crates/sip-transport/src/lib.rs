//! SIP transports on tokio: UDP, TCP, TLS (rustls) and WebSocket (RFC 7118).
//!
//! Thin drivers that move whole SIP messages as bytes: stream framing comes
//! from the sans-IO [`sip::framing`], parsing is left to the caller. Start a
//! [`TransportLayer`] from a [`TransportConfig`]; inbound messages and closed
//! connections arrive as [`TransportEvent`]s on a bounded channel, and
//! [`TransportLayer::send`] reuses the connection a request came in on.
//!
//! The `sip` crate does not depend on this one.

mod config;
mod conn;
pub mod endpoint;
mod error;
mod event;
mod flow;
pub mod guard;
mod layer;
mod listen;
mod reject;
mod stats;
mod stream;
mod table;
mod tls;
mod udp;
mod ws;

pub use config::{Limits, ListenerConfig, ListenerKind, PemSource, TlsIdentity, TransportConfig};
pub use error::TransportError;
pub use event::{CloseReason, Closed, Incoming, TransportEvent};
pub use flow::{FlowId, Target, Transport};
pub use layer::TransportLayer;
pub use sip::framing::FramerLimits;
pub use stats::{StatsSnapshot, TrafficSnapshot, TransportStats};
