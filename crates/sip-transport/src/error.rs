//! Errors of the transport layer.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::flow::{FlowId, Transport};

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot listen on {transport} {addr}: {source}")]
    Bind {
        transport: Transport,
        addr: SocketAddr,
        source: io::Error,
    },
    #[error("cannot read {path}: {source}")]
    ReadPem { path: PathBuf, source: io::Error },
    #[error("TLS configuration: {0}")]
    TlsConfig(String),
    #[error("no UDP listener to send to {0} from")]
    NoUdpListener(SocketAddr),
    #[error("{0} is closed")]
    FlowClosed(FlowId),
    #[error("no {transport} connection to {remote}")]
    NoConnection {
        transport: Transport,
        remote: SocketAddr,
    },
    #[error("connecting over {transport} to {remote}: {source}")]
    Connect {
        transport: Transport,
        remote: SocketAddr,
        source: io::Error,
    },
    #[error("connecting over {transport} to {remote}: timed out")]
    ConnectTimeout {
        transport: Transport,
        remote: SocketAddr,
    },
    #[error("invalid TLS server name {0:?}")]
    ServerName(String),
    #[error("outbound queue to {0} is full; connection dropped")]
    QueueFull(SocketAddr),
    #[error("sending to {remote}: {source}")]
    Send {
        remote: SocketAddr,
        source: io::Error,
    },
}
