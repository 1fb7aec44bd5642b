//! The UDP driver: one socket per listener, used both to receive and to send,
//! so replies leave from the address the peer (and its NAT) knows.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::mpsc::error::TrySendError;
use tracing::{debug, warn};

use crate::event::{Incoming, TransportEvent};
use crate::flow::Transport;
use crate::layer::Shared;
use crate::stats::bump;

/// Largest possible UDP payload.
const DATAGRAM_MAX: usize = 64 * 1024;

pub(crate) async fn recv_loop(shared: Arc<Shared>, socket: Arc<UdpSocket>, local: SocketAddr) {
    let mut buf = vec![0u8; DATAGRAM_MAX];
    loop {
        let (n, remote) = match socket.recv_from(&mut buf).await {
            Ok(got) => got,
            Err(e) => {
                // Mostly ICMP errors from earlier sends (ECONNREFUSED); the
                // pause keeps an unexpected persistent error from spinning.
                debug!(%local, error = %e, "UDP receive error");
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
        };
        let datagram = &buf[..n];
        // CRLF keep-alives (and empty datagrams) only refresh NAT bindings.
        if datagram.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        shared.stats.received(Transport::Udp, n);
        let incoming = Incoming {
            transport: Transport::Udp,
            local,
            remote,
            flow: None,
            data: Bytes::copy_from_slice(datagram),
        };
        // Never wait: a stalled user must not stall every UDP peer; the
        // sender's retransmission covers a dropped datagram.
        match shared.events.try_send(TransportEvent::Incoming(incoming)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                bump(&shared.stats.udp_dropped);
                warn!(peer = %remote, %local, "event queue full; UDP datagram dropped");
            }
            Err(TrySendError::Closed(_)) => return,
        }
    }
}
