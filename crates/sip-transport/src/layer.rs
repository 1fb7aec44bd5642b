//! The transport layer: starts the listeners and routes outbound messages to
//! a UDP socket or to a live (or newly opened) connection.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tracing::{info, warn};

use crate::config::{Limits, ListenerKind, TransportConfig};
use crate::conn::Conn;
use crate::error::TransportError;
use crate::event::TransportEvent;
use crate::flow::{FlowId, Target, Transport};
use crate::listen::{self, StreamKind};
use crate::stats::{TransportStats, bump};
use crate::table::{ConnEntry, ConnTable};
use crate::{stream, tls, udp};

/// What every driver task shares.
pub(crate) struct Shared {
    pub limits: Limits,
    pub stats: Arc<TransportStats>,
    pub table: Arc<ConnTable>,
    pub events: mpsc::Sender<TransportEvent>,
}

/// Handle to the running transports; cheap to clone. Listeners stop and
/// connections close when the last handle is dropped or on [`shutdown`](Self::shutdown).
#[derive(Clone)]
pub struct TransportLayer {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    listeners: Vec<(Transport, SocketAddr)>,
    udp: Vec<(SocketAddr, Arc<UdpSocket>)>,
    tls_client: TlsConnector,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        self.shared.table.evict_all();
    }
}

impl TransportLayer {
    /// Binds every listener and starts its driver. Returns the layer and the
    /// receiving end of its event channel. Must run inside a tokio runtime.
    pub async fn start(
        config: TransportConfig,
    ) -> Result<(Self, mpsc::Receiver<TransportEvent>), TransportError> {
        let (events, rx) = mpsc::channel(config.event_queue.max(1));
        let limits = config.limits;
        let shared = Arc::new(Shared {
            limits,
            stats: Arc::default(),
            table: ConnTable::new(limits.max_connections, limits.max_connections_per_ip),
            events,
        });
        let tls_client = tls::connector(&config.tls_client_roots)?;

        // Bind everything before spawning anything, so a failure leaves
        // nothing running.
        let mut udp = Vec::new();
        let mut streams = Vec::new();
        let mut listeners = Vec::new();
        for listener in &config.listeners {
            let transport = listener.kind.transport();
            let bind_err = |source| TransportError::Bind {
                transport,
                addr: listener.addr,
                source,
            };
            let kind = match &listener.kind {
                ListenerKind::Udp => {
                    let socket = listen::bind_udp(listener.addr).map_err(bind_err)?;
                    let local = socket.local_addr().map_err(bind_err)?;
                    udp.push((local, Arc::new(socket)));
                    listeners.push((transport, local));
                    continue;
                }
                ListenerKind::Tcp => StreamKind::Tcp,
                ListenerKind::Tls(identity) => StreamKind::Tls(tls::acceptor(identity)?),
                ListenerKind::Ws => StreamKind::Ws,
                ListenerKind::Wss(identity) => StreamKind::Wss(tls::acceptor(identity)?),
            };
            let tcp = listen::bind_tcp(listener.addr).map_err(bind_err)?;
            let local = tcp.local_addr().map_err(bind_err)?;
            streams.push((tcp, local, kind));
            listeners.push((transport, local));
        }

        let mut tasks = Vec::new();
        for (local, socket) in &udp {
            let task = udp::recv_loop(Arc::clone(&shared), Arc::clone(socket), *local);
            tasks.push(tokio::spawn(task));
        }
        for (tcp, local, kind) in streams {
            tasks.push(tokio::spawn(listen::accept_loop(
                Arc::clone(&shared),
                tcp,
                local,
                kind,
            )));
        }
        for (transport, local) in &listeners {
            info!(%transport, %local, "listening");
        }

        let inner = Inner {
            shared,
            listeners,
            udp,
            tls_client,
            tasks,
        };
        Ok((
            Self {
                inner: Arc::new(inner),
            },
            rx,
        ))
    }

    /// The bound addresses (with real port numbers), in configuration order.
    pub fn listeners(&self) -> &[(Transport, SocketAddr)] {
        &self.inner.listeners
    }

    /// The first listener of a transport.
    pub fn local_addr(&self, transport: Transport) -> Option<SocketAddr> {
        self.listeners()
            .iter()
            .find(|(t, _)| *t == transport)
            .map(|(_, addr)| *addr)
    }

    pub fn stats(&self) -> &TransportStats {
        &self.inner.shared.stats
    }

    /// Stops accepting and closes every connection.
    pub fn shutdown(&self) {
        for task in &self.inner.tasks {
            task.abort();
        }
        self.inner.shared.table.evict_all();
    }

    /// Sends one whole message. Streams: over `target.flow` if it is alive,
    /// else over a live connection to `target.remote`, else (TCP/TLS only) over
    /// a new connection, kept for later sends. Returns the flow used (`None`
    /// for UDP).
    ///
    /// For streams, success means queued: a write failure later closes the
    /// connection and shows up as a [`TransportEvent::Closed`].
    pub async fn send(
        &self,
        target: &Target,
        data: Bytes,
    ) -> Result<Option<FlowId>, TransportError> {
        let result = self.route(target, data).await;
        if let Err(e) = &result {
            bump(&self.inner.shared.stats.send_errors);
            warn!(transport = %target.transport, peer = %target.remote, error = %e, "send failed");
        }
        result
    }

    async fn route(&self, target: &Target, data: Bytes) -> Result<Option<FlowId>, TransportError> {
        let transport = target.transport;
        if transport == Transport::Udp {
            return self.send_udp(target, data).await.map(|()| None);
        }
        let table = &self.inner.shared.table;
        if let Some(flow) = target.flow {
            match table.get(flow) {
                Some(entry) if entry.transport == transport => {
                    return self.enqueue(flow, &entry, data).map(Some);
                }
                // Browsers cannot be called back: a WebSocket flow that is
                // gone is gone (RFC 7118 §5).
                _ if matches!(transport, Transport::Ws | Transport::Wss) => {
                    return Err(TransportError::FlowClosed(flow));
                }
                _ => {}
            }
        }
        if let Some((flow, entry)) = table.find(transport, target.remote) {
            return self.enqueue(flow, &entry, data).map(Some);
        }
        if matches!(transport, Transport::Ws | Transport::Wss) {
            return Err(TransportError::NoConnection {
                transport,
                remote: target.remote,
            });
        }
        let (flow, entry) = self.connect(target).await?;
        self.enqueue(flow, &entry, data).map(Some)
    }

    async fn send_udp(&self, target: &Target, data: Bytes) -> Result<(), TransportError> {
        let remote = target.remote;
        let udp = &self.inner.udp;
        let socket = target
            .local
            .and_then(|local| udp.iter().find(|(addr, _)| *addr == local))
            .or_else(|| {
                udp.iter()
                    .find(|(addr, _)| addr.is_ipv4() == remote.is_ipv4())
            })
            .map(|(_, socket)| socket)
            .ok_or(TransportError::NoUdpListener(remote))?;
        socket
            .send_to(&data, remote)
            .await
            .map_err(|source| TransportError::Send { remote, source })?;
        self.inner.shared.stats.sent(Transport::Udp, data.len());
        Ok(())
    }

    fn enqueue(
        &self,
        flow: FlowId,
        entry: &ConnEntry,
        data: Bytes,
    ) -> Result<FlowId, TransportError> {
        match entry.outbound.try_send(data) {
            Ok(()) => Ok(flow),
            Err(TrySendError::Full(_)) => {
                // The peer is not reading: cut it off rather than buffer.
                let shared = &self.inner.shared;
                bump(&shared.stats.write_stalls);
                warn!(transport = %entry.transport, peer = %entry.remote, %flow,
                    "outbound queue full; disconnecting");
                shared.table.evict(flow);
                Err(TransportError::QueueFull(entry.remote))
            }
            Err(TrySendError::Closed(_)) => Err(TransportError::FlowClosed(flow)),
        }
    }

    /// Opens a TCP or TLS connection and starts its driver.
    async fn connect(&self, target: &Target) -> Result<(FlowId, ConnEntry), TransportError> {
        let shared = &self.inner.shared;
        let (transport, remote) = (target.transport, target.remote);
        let connect_err = |source| TransportError::Connect {
            transport,
            remote,
            source,
        };
        let timed_out = |_| TransportError::ConnectTimeout { transport, remote };
        let limit = shared.limits.connect_timeout;
        let tcp = timeout(limit, TcpStream::connect(remote))
            .await
            .map_err(timed_out)?
            .map_err(connect_err)?;
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr().map_err(connect_err)?;
        let admission = shared.table.outbound();
        let shared = Arc::clone(shared);
        let flow = if transport == Transport::Tls {
            let name = tls::server_name(target.server_name.as_deref(), remote)?;
            let handshake = self.inner.tls_client.connect(name, tcp);
            let tls = timeout(shared.limits.handshake_timeout, handshake)
                .await
                .map_err(timed_out)?
                .map_err(connect_err)?;
            let (conn, outbound) = Conn::open(shared, admission, transport, local, remote);
            let flow = conn.flow();
            tokio::spawn(stream::run(conn, tls, outbound));
            flow
        } else {
            let (conn, outbound) = Conn::open(shared, admission, transport, local, remote);
            let flow = conn.flow();
            tokio::spawn(stream::run(conn, tcp, outbound));
            flow
        };
        bump(&self.inner.shared.stats.connections_outbound);
        info!(%transport, peer = %remote, %local, %flow, "connected");
        let entry = self
            .inner
            .shared
            .table
            .get(flow)
            .ok_or(TransportError::FlowClosed(flow))?;
        Ok((flow, entry))
    }
}
