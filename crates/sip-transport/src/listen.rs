//! Binding listeners and accepting stream connections: admission against the
//! caps, then the TLS and WebSocket handshakes under one deadline.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::time::{Instant, timeout_at};
use tokio_rustls::TlsAcceptor;
use tracing::{info, warn};

use crate::conn::Conn;
use crate::flow::Transport;
use crate::layer::Shared;
use crate::stats::bump;
use crate::table::{Admission, Refusal};
use crate::{stream, ws};

const BACKLOG: i32 = 1024;

fn socket(addr: SocketAddr, ty: Type, protocol: Protocol) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), ty, Some(protocol))?;
    if addr.is_ipv6() {
        // Lets an IPv4 and an IPv6 listener share a port number.
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// Asked of the kernel for a UDP listener's receive queue (it grants at most
/// `net.core.rmem_max`): a burst of INVITEs waits there instead of being
/// dropped while the signalling threads catch up.
const UDP_RECV_BUFFER: usize = 4 << 20;

pub(crate) fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = socket(addr, Type::DGRAM, Protocol::UDP)?;
    if let Err(e) = socket.set_recv_buffer_size(UDP_RECV_BUFFER) {
        warn!(%addr, error = %e, "UDP receive buffer left at the system default");
    }
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

pub(crate) fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = socket(addr, Type::STREAM, Protocol::TCP)?;
    // A restart must not wait for old connections' TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}

/// What runs on an accepted TCP connection.
#[derive(Clone)]
pub(crate) enum StreamKind {
    Tcp,
    Tls(TlsAcceptor),
    Ws,
    Wss(TlsAcceptor),
}

impl StreamKind {
    fn transport(&self) -> Transport {
        match self {
            Self::Tcp => Transport::Tcp,
            Self::Tls(_) => Transport::Tls,
            Self::Ws => Transport::Ws,
            Self::Wss(_) => Transport::Wss,
        }
    }
}

pub(crate) async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    local: SocketAddr,
    kind: StreamKind,
) {
    let transport = kind.transport();
    loop {
        let (tcp, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Usually out of file descriptors: back off instead of spinning.
                warn!(%transport, %local, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let admission = match shared.table.admit(remote.ip()) {
            Ok(admission) => admission,
            Err(refusal) => {
                let counter = match refusal {
                    Refusal::TotalCap => &shared.stats.rejected_total_cap,
                    Refusal::PerIpCap => &shared.stats.rejected_per_ip_cap,
                };
                bump(counter);
                warn!(%transport, peer = %remote, reason = refusal.as_str(), "connection refused");
                continue;
            }
        };
        bump(&shared.stats.connections_accepted);
        let _ = tcp.set_nodelay(true);
        tokio::spawn(handle(
            Arc::clone(&shared),
            admission,
            kind.clone(),
            tcp,
            local,
            remote,
        ));
    }
}

async fn handle(
    shared: Arc<Shared>,
    admission: Admission,
    kind: StreamKind,
    tcp: TcpStream,
    local: SocketAddr,
    remote: SocketAddr,
) {
    let transport = kind.transport();
    let handshake_deadline = Instant::now() + shared.limits.handshake_timeout;
    match kind {
        StreamKind::Tcp => {
            let (conn, outbound) = Conn::open(shared, admission, transport, local, remote);
            stream::run(conn, tcp, outbound).await;
        }
        StreamKind::Tls(acceptor) => {
            let Some(tls) = tls_accept(&shared, &acceptor, tcp, remote, handshake_deadline).await
            else {
                return;
            };
            let (conn, outbound) = Conn::open(shared, admission, transport, local, remote);
            stream::run(conn, tls, outbound).await;
        }
        StreamKind::Ws => {
            ws::accept(
                shared,
                admission,
                transport,
                local,
                remote,
                tcp,
                handshake_deadline,
            )
            .await;
        }
        StreamKind::Wss(acceptor) => {
            let Some(tls) = tls_accept(&shared, &acceptor, tcp, remote, handshake_deadline).await
            else {
                return;
            };
            ws::accept(
                shared,
                admission,
                transport,
                local,
                remote,
                tls,
                handshake_deadline,
            )
            .await;
        }
    }
}

async fn tls_accept(
    shared: &Shared,
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    remote: SocketAddr,
    deadline: Instant,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    match timeout_at(deadline, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            bump(&shared.stats.rejected_handshake);
            info!(peer = %remote, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            bump(&shared.stats.handshake_timeouts);
            info!(peer = %remote, "TLS handshake timed out");
            None
        }
    }
}
