//! The node's tokio driver: one TCP connection to the brain at a time,
//! reconnecting forever. All decisions are `NodeSession`'s.

use std::net::SocketAddr;
use std::time::Instant;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::frame::{DEFAULT_MAX_FRAME, FrameDecoder};
use crate::message::{
    BrainMessage, ErrorBody, Event, Hello, Load, NodeMessage, Reply, ReplyBody, RequestBody,
};
use crate::node::session::{NodeConfig, NodeOutput, NodeSession, NodeState};
use crate::wire::write_message;

/// The node's answers to the brain. Called on the control task: keep each
/// call short (hand work to the media workers, don't wait for them).
pub trait NodeHandler: Send {
    /// The Hello for a new connection, with everything the node carries now
    /// (start from [`Hello::new`], which sets the protocol version).
    fn hello(&mut self) -> Hello;
    fn load(&mut self) -> Load;
    fn handle(&mut self, request: RequestBody) -> Result<ReplyBody, ErrorBody>;
}

/// Keeps the node connected to the brain at `brain` until `events` is
/// closed (the node is shutting down; noticed within one reconnect delay
/// while the brain is away). Events are read only while the brain is there,
/// so the channel's bound decides how many wait out a failover.
pub async fn run<H: NodeHandler>(
    brain: SocketAddr,
    config: NodeConfig,
    mut handler: H,
    mut events: mpsc::Receiver<Event>,
) {
    let write_limit = config.dead_after;
    let mut session = NodeSession::new(config, Instant::now());
    let mut stream: Option<TcpStream> = None;
    let mut decoder = FrameDecoder::<BrainMessage>::new(DEFAULT_MAX_FRAME);
    let mut buf = vec![0u8; 16 * 1024];

    loop {
        while let Some(output) = session.poll_output() {
            match output {
                NodeOutput::Connect => {
                    let limit = session
                        .poll_timeout()
                        .saturating_duration_since(Instant::now());
                    match tokio::time::timeout(limit, TcpStream::connect(brain)).await {
                        Ok(Ok(s)) => {
                            let _ = s.set_nodelay(true);
                            stream = Some(s);
                            decoder = FrameDecoder::new(DEFAULT_MAX_FRAME);
                            session.on_connected(Instant::now(), handler.hello());
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%brain, error = %e, "brain unreachable");
                            session.on_connect_failed(Instant::now());
                        }
                        Err(_) => session.on_connect_failed(Instant::now()),
                    }
                }
                NodeOutput::Send(msg) => send(&mut stream, &mut session, &msg, write_limit).await,
                NodeOutput::Close(reason) => {
                    tracing::warn!(%brain, %reason, "control connection closed");
                    stream = None;
                }
            }
        }

        let ready = session.state() == NodeState::Ready;
        if !ready && events.is_closed() {
            return;
        }
        let deadline = tokio::time::Instant::from_std(session.poll_timeout());
        let read = async {
            match stream.as_mut() {
                Some(s) => s.read(&mut buf).await,
                None => std::future::pending().await,
            }
        };
        let step = tokio::select! {
            r = read => Step::Read(r),
            ev = events.recv(), if ready => Step::Event(ev),
            _ = tokio::time::sleep_until(deadline) => Step::Timer,
        };

        let now = Instant::now();
        match step {
            Step::Timer => {
                session.set_load(handler.load());
                session.handle_timeout(now);
            }
            Step::Event(None) => return,
            Step::Event(Some(ev)) => {
                send(
                    &mut stream,
                    &mut session,
                    &NodeMessage::Event(ev),
                    write_limit,
                )
                .await
            }
            Step::Read(Ok(0)) | Step::Read(Err(_)) => {
                stream = None;
                session.on_disconnected(now);
            }
            Step::Read(Ok(n)) => {
                decoder.push(&buf[..n]);
                loop {
                    match decoder.next() {
                        Ok(Some(msg)) => {
                            if let Some(req) = session.on_message(now, msg) {
                                let result = handler.handle(req.body);
                                let reply = NodeMessage::Reply(Reply {
                                    req_id: req.req_id,
                                    result,
                                });
                                send(&mut stream, &mut session, &reply, write_limit).await;
                            }
                        }
                        Ok(None) => break,
                        Err(e) if e.is_fatal() => {
                            tracing::warn!(%brain, error = %e, "unreadable stream from brain");
                            stream = None;
                            session.on_disconnected(now);
                            break;
                        }
                        Err(e) => tracing::warn!(%brain, error = %e, "skipped a frame"),
                    }
                }
            }
        }
    }
}

enum Step {
    Read(std::io::Result<usize>),
    Event(Option<Event>),
    Timer,
}

async fn send(
    stream: &mut Option<TcpStream>,
    session: &mut NodeSession,
    msg: &NodeMessage,
    limit: std::time::Duration,
) {
    // Outputs queued for a connection that is already gone are dropped.
    let Some(s) = stream.as_mut() else { return };
    if let Err(e) = write_message(s, msg, limit).await {
        tracing::debug!(error = %e, "write to brain failed");
        *stream = None;
        session.on_disconnected(Instant::now());
    }
}
