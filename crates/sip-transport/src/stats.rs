//! Counters for the on-call engineer: plain atomics, read with a snapshot.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::flow::Transport;

#[derive(Debug, Default)]
struct Traffic {
    messages_in: AtomicU64,
    messages_out: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

/// Live counters, shared by every driver of one transport layer.
#[derive(Debug, Default)]
pub struct TransportStats {
    traffic: [Traffic; 5],
    pub(crate) connections_open: AtomicU64,
    pub(crate) connections_accepted: AtomicU64,
    pub(crate) connections_outbound: AtomicU64,
    pub(crate) rejected_total_cap: AtomicU64,
    pub(crate) rejected_per_ip_cap: AtomicU64,
    pub(crate) rejected_handshake: AtomicU64,
    pub(crate) handshake_timeouts: AtomicU64,
    pub(crate) idle_timeouts: AtomicU64,
    pub(crate) message_timeouts: AtomicU64,
    pub(crate) framing_errors: AtomicU64,
    pub(crate) write_stalls: AtomicU64,
    pub(crate) udp_dropped: AtomicU64,
    pub(crate) send_errors: AtomicU64,
}

/// Traffic of one transport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrafficSnapshot {
    pub messages_in: u64,
    pub messages_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Indexed like [`Transport::ALL`]; see [`StatsSnapshot::traffic`].
    pub traffic: [TrafficSnapshot; 5],
    /// Connections open now, inbound and outbound.
    pub connections_open: u64,
    pub connections_accepted: u64,
    pub connections_outbound: u64,
    /// Inbound connections refused because all slots were taken.
    pub rejected_total_cap: u64,
    /// Inbound connections refused because their IP had too many open.
    pub rejected_per_ip_cap: u64,
    /// Failed TLS or WebSocket handshakes (bad TLS, no `sip` subprotocol...).
    pub rejected_handshake: u64,
    pub handshake_timeouts: u64,
    pub idle_timeouts: u64,
    pub message_timeouts: u64,
    pub framing_errors: u64,
    /// Peers cut off for not reading: outbound queue full or write timeout.
    pub write_stalls: u64,
    /// UDP datagrams dropped because the event channel was full.
    pub udp_dropped: u64,
    pub send_errors: u64,
}

impl StatsSnapshot {
    pub fn traffic(&self, transport: Transport) -> TrafficSnapshot {
        self.traffic[transport.index()]
    }
}

impl TransportStats {
    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Relaxed);
        StatsSnapshot {
            traffic: std::array::from_fn(|i| {
                let t = &self.traffic[i];
                TrafficSnapshot {
                    messages_in: get(&t.messages_in),
                    messages_out: get(&t.messages_out),
                    bytes_in: get(&t.bytes_in),
                    bytes_out: get(&t.bytes_out),
                }
            }),
            connections_open: get(&self.connections_open),
            connections_accepted: get(&self.connections_accepted),
            connections_outbound: get(&self.connections_outbound),
            rejected_total_cap: get(&self.rejected_total_cap),
            rejected_per_ip_cap: get(&self.rejected_per_ip_cap),
            rejected_handshake: get(&self.rejected_handshake),
            handshake_timeouts: get(&self.handshake_timeouts),
            idle_timeouts: get(&self.idle_timeouts),
            message_timeouts: get(&self.message_timeouts),
            framing_errors: get(&self.framing_errors),
            write_stalls: get(&self.write_stalls),
            udp_dropped: get(&self.udp_dropped),
            send_errors: get(&self.send_errors),
        }
    }

    pub(crate) fn received(&self, transport: Transport, bytes: usize) {
        let t = &self.traffic[transport.index()];
        t.messages_in.fetch_add(1, Relaxed);
        t.bytes_in.fetch_add(bytes as u64, Relaxed);
    }

    pub(crate) fn sent(&self, transport: Transport, bytes: usize) {
        let t = &self.traffic[transport.index()];
        t.messages_out.fetch_add(1, Relaxed);
        t.bytes_out.fetch_add(bytes as u64, Relaxed);
    }
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Relaxed);
}
