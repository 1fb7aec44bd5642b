//! The brain's tokio driver: accepts node connections and runs one
//! `BrainConnection` per socket. All decisions are the state machine's.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{AbortHandle, JoinSet};

use crate::brain::connection::{BrainConfig, BrainConnection, ConnClose, ConnEvent, ConnState};
use crate::frame::{DEFAULT_MAX_FRAME, FrameDecoder};
use crate::message::{
    ErrorBody, Event, Heartbeat, Hello, NodeId, NodeMessage, ReplyBody, RequestBody,
};
use crate::wire::write_message;

/// A node that said Hello and was welcomed.
#[derive(Debug)]
pub struct NodeConnection {
    pub peer: SocketAddr,
    /// Includes the snapshots the node carries: rebuild from them.
    pub hello: Hello,
    pub handle: NodeHandle,
    /// Heartbeats and media events; ends with `Closed`.
    pub events: mpsc::UnboundedReceiver<NodeEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    Heartbeat(Heartbeat),
    Event(Event),
    Closed(ConnClose),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("node refused: {0}")]
    Refused(ErrorBody),
    #[error("no reply in time")]
    TimedOut,
    #[error("connection to the node is gone")]
    Disconnected,
}

type ReplyTx = oneshot::Sender<Result<ReplyBody, RequestError>>;

/// Sends requests to one node; cheap to clone.
#[derive(Debug, Clone)]
pub struct NodeHandle {
    node_id: NodeId,
    commands: mpsc::Sender<(RequestBody, Duration, ReplyTx)>,
}

impl NodeHandle {
    pub fn node_id(&self) -> &NodeId {
        &self.node_id
    }

    /// Sends `body` and waits for the node's reply, at most `timeout`.
    pub async fn request(
        &self,
        body: RequestBody,
        timeout: Duration,
    ) -> Result<ReplyBody, RequestError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send((body, timeout, tx))
            .await
            .map_err(|_| RequestError::Disconnected)?;
        rx.await.unwrap_or(Err(RequestError::Disconnected))
    }
}

/// Welcomed nodes as they arrive. Dropping it stops the brain's side
/// entirely: the listener and every connection it accepted.
#[derive(Debug)]
pub struct Incoming {
    local_addr: SocketAddr,
    nodes: mpsc::Receiver<NodeConnection>,
    acceptor: AbortHandle,
}

impl Incoming {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub async fn next(&mut self) -> Option<NodeConnection> {
        self.nodes.recv().await
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        // The accept task owns the JoinSet of connections; aborting it drops
        // the set, which aborts them all.
        self.acceptor.abort();
    }
}

/// Listens for nodes on `addr`.
pub async fn listen(addr: SocketAddr, config: BrainConfig) -> io::Result<Incoming> {
    let listener = TcpListener::bind(addr).await?;
    let local_addr = listener.local_addr()?;
    let (tx, nodes) = mpsc::channel(64);
    let acceptor = tokio::spawn(accept_loop(listener, config, tx)).abort_handle();
    Ok(Incoming {
        local_addr,
        nodes,
        acceptor,
    })
}

async fn accept_loop(
    listener: TcpListener,
    config: BrainConfig,
    nodes: mpsc::Sender<NodeConnection>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(serve(stream, peer, config.clone(), nodes.clone()));
                }
                Err(e) => {
                    // Typically out of file descriptors: back off rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

enum Step {
    Read(io::Result<usize>),
    Command(Option<(RequestBody, Duration, ReplyTx)>),
    Timer,
}

async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    config: BrainConfig,
    nodes: mpsc::Sender<NodeConnection>,
) {
    let write_limit = config.dead_after;
    let mut conn: BrainConnection<ReplyTx> = BrainConnection::new(config, Instant::now());
    let mut decoder = FrameDecoder::<NodeMessage>::new(DEFAULT_MAX_FRAME);
    let mut buf = vec![0u8; 16 * 1024];
    let (cmd_tx, mut commands) = mpsc::channel(256);
    // Held until Hello, then handed over inside the NodeConnection.
    let mut cmd_tx = Some(cmd_tx);
    let mut events: Option<mpsc::UnboundedSender<NodeEvent>> = None;
    let mut commands_open = true;

    loop {
        while let Some(msg) = conn.poll_transmit() {
            if let Err(e) = write_message(&mut stream, &msg, write_limit).await {
                tracing::debug!(%peer, error = %e, "write to node failed");
                conn.on_disconnected();
                break;
            }
        }
        while let Some(event) = conn.poll_event() {
            match event {
                ConnEvent::Hello(hello) => {
                    let Some(commands) = cmd_tx.take() else {
                        continue;
                    };
                    let (tx, rx) = mpsc::unbounded_channel();
                    events = Some(tx);
                    let handle = NodeHandle {
                        node_id: hello.node_id.clone(),
                        commands,
                    };
                    let node = NodeConnection {
                        peer,
                        hello,
                        handle,
                        events: rx,
                    };
                    if nodes.send(node).await.is_err() {
                        return; // the brain stopped listening
                    }
                }
                ConnEvent::Heartbeat(hb) => emit(&events, NodeEvent::Heartbeat(hb)),
                ConnEvent::Event(ev) => emit(&events, NodeEvent::Event(ev)),
                ConnEvent::Reply { token, result } => {
                    let _ = token.send(result.map_err(RequestError::Refused));
                }
                ConnEvent::TimedOut { token } => {
                    let _ = token.send(Err(RequestError::TimedOut));
                }
                ConnEvent::Closed { reason, unanswered } => {
                    tracing::info!(%peer, node = ?conn.node_id(), %reason, "node connection closed");
                    for token in unanswered {
                        let _ = token.send(Err(RequestError::Disconnected));
                    }
                    emit(&events, NodeEvent::Closed(reason));
                }
            }
        }
        if conn.state() == ConnState::Closed {
            // Refused goes out before the close (flushed above).
            return;
        }

        let deadline = conn
            .poll_timeout()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        let ready = conn.state() == ConnState::Ready;
        let step = tokio::select! {
            r = stream.read(&mut buf) => Step::Read(r),
            c = commands.recv(), if ready && commands_open => Step::Command(c),
            _ = tokio::time::sleep_until(deadline) => Step::Timer,
        };
        let now = Instant::now();
        match step {
            Step::Timer => conn.handle_timeout(now),
            // All handles dropped: the brain has no more use for this node,
            // but the node stays connected and heartbeating.
            Step::Command(None) => commands_open = false,
            Step::Command(Some((body, timeout, reply))) => {
                if let Err(reply) = conn.request(now, body, timeout, reply) {
                    let _ = reply.send(Err(RequestError::Disconnected));
                }
            }
            Step::Read(Ok(0)) | Step::Read(Err(_)) => conn.on_disconnected(),
            Step::Read(Ok(n)) => {
                decoder.push(&buf[..n]);
                loop {
                    match decoder.next() {
                        Ok(Some(msg)) => conn.on_message(now, msg),
                        Ok(None) => break,
                        Err(e) if e.is_fatal() => {
                            tracing::warn!(%peer, error = %e, "unreadable stream from node");
                            conn.on_disconnected();
                            break;
                        }
                        Err(e) => tracing::warn!(%peer, error = %e, "skipped a frame"),
                    }
                }
            }
        }
    }
}

fn emit(events: &Option<mpsc::UnboundedSender<NodeEvent>>, event: NodeEvent) {
    if let Some(tx) = events {
        let _ = tx.send(event);
    }
}
