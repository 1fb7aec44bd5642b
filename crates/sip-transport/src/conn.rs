//! One stream connection's identity and life: registration, delivering its
//! messages, and announcing its end. Shared by the TCP/TLS and WS drivers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info};

use crate::event::{CloseReason, Closed, Incoming, TransportEvent};
use crate::flow::{FlowId, Transport};
use crate::layer::Shared;
use crate::stats::bump;
use crate::table::{Admission, Registration};

pub(crate) struct Conn {
    pub shared: Arc<Shared>,
    pub transport: Transport,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    reg: Registration,
}

impl Conn {
    pub fn open(
        shared: Arc<Shared>,
        admission: Admission,
        transport: Transport,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> (Self, mpsc::Receiver<Bytes>) {
        let queue = shared.limits.outbound_queue;
        let (reg, outbound) = shared.table.register(admission, transport, remote, queue);
        shared.stats.connections_open.fetch_add(1, Relaxed);
        debug!(%transport, peer = %remote, %local, flow = %reg.flow, "connection open");
        let conn = Self {
            shared,
            transport,
            local,
            remote,
            reg,
        };
        (conn, outbound)
    }

    pub fn flow(&self) -> FlowId {
        self.reg.flow
    }

    /// Hands a message to the user, waiting for room: a busy user slows the
    /// peer down through TCP flow control rather than growing a queue.
    pub async fn deliver(&self, data: Bytes) -> Result<(), CloseReason> {
        self.shared.stats.received(self.transport, data.len());
        let incoming = Incoming {
            transport: self.transport,
            local: self.local,
            remote: self.remote,
            flow: Some(self.flow()),
            data,
        };
        self.shared
            .events
            .send(TransportEvent::Incoming(incoming))
            .await
            .map_err(|_| CloseReason::Local)
    }

    pub fn sent(&self, bytes: usize) {
        self.shared.stats.sent(self.transport, bytes);
    }

    /// Which timeout fired, counted.
    pub fn timed_out(&self, message_started: Option<Instant>) -> CloseReason {
        let limits = &self.shared.limits;
        let stats = &self.shared.stats;
        if message_started.is_some_and(|s| s.elapsed() >= limits.message_timeout) {
            bump(&stats.message_timeouts);
            CloseReason::MessageTimeout
        } else {
            bump(&stats.idle_timeouts);
            CloseReason::IdleTimeout
        }
    }

    /// A write that did not finish in time: the peer is not reading.
    pub fn write_timed_out(&self) -> CloseReason {
        bump(&self.shared.stats.write_stalls);
        CloseReason::WriteStalled
    }

    /// Unregisters the connection and tells the user it is gone.
    pub async fn finish(self, reason: CloseReason) {
        let closed = Closed {
            transport: self.transport,
            flow: self.flow(),
            local: self.local,
            remote: self.remote,
            reason,
        };
        info!(transport = %closed.transport, peer = %closed.remote, flow = %closed.flow,
            reason = ?closed.reason, "connection closed");
        let events = self.shared.events.clone();
        // Unregister before announcing, so a send prompted by the event
        // cannot pick the dead connection.
        drop(self);
        let _ = events.send(TransportEvent::Closed(closed)).await;
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.shared.stats.connections_open.fetch_sub(1, Relaxed);
    }
}

/// The earlier of the idle deadline and the started message's deadline.
pub(crate) fn deadline(
    shared: &Shared,
    last_activity: Instant,
    message_started: Option<Instant>,
) -> Instant {
    let limits = &shared.limits;
    let idle = last_activity + limits.idle_timeout;
    message_started.map_or(idle, |s| idle.min(s + limits.message_timeout))
}

/// How long a graceful close may take before we just drop the socket.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
