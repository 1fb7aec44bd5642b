//! A SIP endpoint: the thin driver that joins the transports to the sans-IO
//! transaction layer. It parses what arrives, answers garbage with a 400 (or
//! nothing, once the source has spent its budget, see [`crate::guard`]),
//! stamps `received`/`rport` (RFC 3261 §18.2.1, RFC 3581), runs the
//! transaction timers, and hands the transaction user [`Event`]s on a
//! channel. The transaction user acts through an [`Endpoint`] handle.
//!
//! One task owns the transaction layer, so no lock is taken per message.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use sip::Message;
use sip::transaction::{self, Event, Peer, TransactionLayer, TransportKind, TxError, TxId};
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

use crate::guard::{GuardConfig, SourceGuard, Verdict};
use crate::{
    FlowId, Target, Transport, TransportConfig, TransportError, TransportEvent, TransportLayer,
};

#[derive(Debug, Clone, Default)]
pub struct EndpointConfig {
    pub transport: TransportConfig,
    pub transactions: transaction::Config,
    pub guard: GuardConfig,
    /// Events queued for the transaction user before the endpoint waits for
    /// it (0: 1024).
    pub event_queue: usize,
}

/// Counters of what the endpoint dropped or refused, for metrics.
#[derive(Debug, Default)]
pub struct EndpointStats {
    /// Messages that did not parse.
    pub malformed: AtomicU64,
    /// 400s sent for them.
    pub rejected_with_400: AtomicU64,
    /// Messages dropped unread because their source is banned.
    pub banned_drops: AtomicU64,
}

enum Command {
    Respond {
        tx: TxId,
        msg: Message,
        done: oneshot::Sender<Result<(), TxError>>,
    },
    Request {
        msg: Message,
        to: Peer,
        done: oneshot::Sender<Result<TxId, TxError>>,
    },
    Cancel {
        tx: TxId,
        done: oneshot::Sender<Result<TxId, TxError>>,
    },
    Stateless {
        msg: Message,
        to: Peer,
    },
    Offence {
        ip: std::net::IpAddr,
        done: oneshot::Sender<Verdict>,
    },
}

/// The transaction user's handle on a running endpoint. Cheap to clone.
#[derive(Clone)]
pub struct Endpoint {
    commands: mpsc::Sender<Command>,
    transport: TransportLayer,
    stats: Arc<EndpointStats>,
    ban: std::time::Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error(transparent)]
    Transaction(#[from] TxError),
    #[error("the endpoint has stopped")]
    Stopped,
}

impl Endpoint {
    /// Binds the transports and starts the endpoint task.
    pub async fn start(
        cfg: EndpointConfig,
    ) -> Result<(Endpoint, mpsc::Receiver<Event>), TransportError> {
        let (transport, incoming) = TransportLayer::start(cfg.transport).await?;
        let (commands, command_rx) = mpsc::channel(1024);
        let queue = if cfg.event_queue == 0 {
            1024
        } else {
            cfg.event_queue
        };
        let (events, event_rx) = mpsc::channel(queue);
        let stats = Arc::new(EndpointStats::default());
        let ban = cfg.guard.ban;
        let driver = Driver {
            layer: TransactionLayer::new(cfg.transactions),
            guard: SourceGuard::new(cfg.guard),
            transport: transport.clone(),
            events,
            stats: stats.clone(),
        };
        tokio::spawn(driver.run(incoming, command_rx));
        Ok((
            Endpoint {
                commands,
                transport,
                stats,
                ban,
            },
            event_rx,
        ))
    }

    pub fn transport(&self) -> &TransportLayer {
        &self.transport
    }

    pub fn stats(&self) -> &EndpointStats {
        &self.stats
    }

    /// How long the abuse guard ignores a source it has banned (a
    /// Retry-After for the last answer such a source gets).
    pub fn ban_time(&self) -> std::time::Duration {
        self.ban
    }

    /// Answers the request of server transaction `tx`.
    pub async fn respond(&self, tx: TxId, msg: Message) -> Result<(), EndpointError> {
        let (done, rx) = oneshot::channel();
        self.call(Command::Respond { tx, msg, done }).await?;
        Ok(rx.await.map_err(|_| EndpointError::Stopped)??)
    }

    /// Sends a request in a new client transaction.
    pub async fn send_request(&self, msg: Message, to: Peer) -> Result<TxId, EndpointError> {
        let (done, rx) = oneshot::channel();
        self.call(Command::Request { msg, to, done }).await?;
        Ok(rx.await.map_err(|_| EndpointError::Stopped)??)
    }

    /// Cancels INVITE client transaction `tx` (RFC 3261 §9.1).
    pub async fn cancel(&self, tx: TxId) -> Result<TxId, EndpointError> {
        let (done, rx) = oneshot::channel();
        self.call(Command::Cancel { tx, done }).await?;
        Ok(rx.await.map_err(|_| EndpointError::Stopped)??)
    }

    /// Sends a message outside any transaction (the ACK for a 2xx).
    pub async fn send_stateless(&self, msg: Message, to: Peer) -> Result<(), EndpointError> {
        self.call(Command::Stateless { msg, to }).await
    }

    /// Records an offence by `ip` found by the transaction user (a wrong
    /// password, say) against the same budget as malformed messages, and
    /// says whether to answer it.
    pub async fn offence(&self, ip: std::net::IpAddr) -> Result<Verdict, EndpointError> {
        let (done, rx) = oneshot::channel();
        self.call(Command::Offence { ip, done }).await?;
        rx.await.map_err(|_| EndpointError::Stopped)
    }

    async fn call(&self, c: Command) -> Result<(), EndpointError> {
        self.commands
            .send(c)
            .await
            .map_err(|_| EndpointError::Stopped)
    }
}

/// Maps the transport crate's names onto the sans-IO layer's.
pub fn kind_of(t: Transport) -> TransportKind {
    match t {
        Transport::Udp => TransportKind::Udp,
        Transport::Tcp => TransportKind::Tcp,
        Transport::Tls => TransportKind::Tls,
        Transport::Ws => TransportKind::Ws,
        Transport::Wss => TransportKind::Wss,
    }
}

fn transport_of(k: TransportKind) -> Option<Transport> {
    Some(match k {
        TransportKind::Udp => Transport::Udp,
        TransportKind::Tcp => Transport::Tcp,
        TransportKind::Tls => Transport::Tls,
        TransportKind::Ws => Transport::Ws,
        TransportKind::Wss => Transport::Wss,
        TransportKind::Sctp => return None,
    })
}

struct Driver {
    layer: TransactionLayer,
    guard: SourceGuard,
    transport: TransportLayer,
    events: mpsc::Sender<Event>,
    stats: Arc<EndpointStats>,
}

impl Driver {
    async fn run(
        mut self,
        mut incoming: mpsc::Receiver<TransportEvent>,
        mut commands: mpsc::Receiver<Command>,
    ) {
        loop {
            let deadline = self.layer.next_deadline();
            tokio::select! {
                ev = incoming.recv() => match ev {
                    Some(TransportEvent::Incoming(inc)) => {
                        self.on_message(inc.transport, inc.local, inc.remote, inc.flow, inc.data).await;
                    }
                    Some(TransportEvent::Closed(_)) => {}
                    None => return,
                },
                cmd = commands.recv() => match cmd {
                    Some(c) => self.on_command(c),
                    // Every handle is gone: nobody can answer requests.
                    None => return,
                },
                () = sleep_until(deadline) => {
                    self.layer.handle_timeouts(Instant::now());
                }
            }
            if !self.flush().await {
                return;
            }
        }
    }

    async fn on_message(
        &mut self,
        transport: Transport,
        local: SocketAddr,
        remote: SocketAddr,
        flow: Option<FlowId>,
        data: Bytes,
    ) {
        let now = Instant::now();
        if self.guard.is_banned(remote.ip(), now) {
            self.stats.banned_drops.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let parsed = if transport.is_stream() {
            sip::parse_stream_frame(data)
        } else {
            sip::parse_datagram(data)
        };
        let peer = Peer {
            transport: kind_of(transport),
            addr: remote,
            flow: flow.map(|f| transaction::FlowId(f.get())),
        };
        match parsed {
            Ok(mut msg) => {
                if msg.is_request() {
                    msg.stamp_received(remote);
                }
                self.layer.receive(msg, peer, now);
            }
            Err(e) => {
                self.stats.malformed.fetch_add(1, Ordering::Relaxed);
                debug!(%remote, %transport, reason = %e.reason, "malformed message");
                if self.guard.offence(remote.ip(), now) != Verdict::Answer {
                    return;
                }
                if let Some(resp) = e.response() {
                    self.stats.rejected_with_400.fetch_add(1, Ordering::Relaxed);
                    let mut target = Target::new(transport, remote).with_flow(flow);
                    if !transport.is_stream() {
                        target = target.with_local(local);
                    }
                    let _ = self
                        .transport
                        .send(&target, Bytes::from(resp.to_bytes()))
                        .await;
                }
            }
        }
    }

    fn on_command(&mut self, c: Command) {
        let now = Instant::now();
        match c {
            Command::Respond { tx, msg, done } => {
                let _ = done.send(self.layer.respond(tx, msg, now));
            }
            Command::Request { msg, to, done } => {
                let _ = done.send(self.layer.send_request(msg, to, now));
            }
            Command::Cancel { tx, done } => {
                let _ = done.send(self.layer.cancel(tx, now));
            }
            Command::Stateless { msg, to } => self.layer.send_stateless(&msg, to),
            Command::Offence { ip, done } => {
                let _ = done.send(self.guard.offence(ip, now));
            }
        }
    }

    /// Sends what the layer queued and hands its events on. `false` when the
    /// transaction user has gone.
    async fn flush(&mut self) -> bool {
        while let Some(t) = self.layer.poll_transmit() {
            let Some(transport) = transport_of(t.to.transport) else {
                if let Some(tx) = t.tx {
                    self.layer.transport_error(tx);
                }
                continue;
            };
            let mut target = Target::new(transport, t.to.addr);
            if let Some(f) = t.to.flow {
                target = target.with_flow(Some(FlowId(f.0)));
            }
            if self.transport.send(&target, t.bytes).await.is_err()
                && let Some(tx) = t.tx
            {
                self.layer.transport_error(tx);
            }
        }
        while let Some(ev) = self.layer.poll_event() {
            if self.events.send(ev).await.is_err() {
                return false;
            }
        }
        true
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
