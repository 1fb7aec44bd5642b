//! SIP over WebSocket (RFC 7118): the upgrade, which must agree on the `sip`
//! subprotocol, then one SIP message per WebSocket message.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use sip::framing::FramingError;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until, timeout, timeout_at};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tracing::{info, warn};

use crate::conn::{Conn, SHUTDOWN_GRACE, deadline};
use crate::event::CloseReason;
use crate::flow::Transport;
use crate::layer::Shared;
use crate::stats::bump;
use crate::table::Admission;

const SUBPROTOCOL: &str = "sip";

/// Upgrades `io` (plain or TLS) and runs the connection until it ends.
/// `handshake_deadline` covers the upgrade (and the TLS handshake before it).
pub(crate) async fn accept<S>(
    shared: Arc<Shared>,
    admission: Admission,
    transport: Transport,
    local: SocketAddr,
    remote: SocketAddr,
    io: S,
    handshake_deadline: Instant,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let max = shared.limits.framer.max_message_bytes;
    let config = WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max));
    let io = Metered {
        inner: io,
        started: None,
    };
    let upgrade = tokio_tungstenite::accept_hdr_async_with_config(io, require_sip, Some(config));
    let ws = match timeout_at(handshake_deadline, upgrade).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            bump(&shared.stats.rejected_handshake);
            info!(%transport, peer = %remote, error = %e, "WebSocket upgrade refused");
            return;
        }
        Err(_) => {
            bump(&shared.stats.handshake_timeouts);
            info!(%transport, peer = %remote, "WebSocket upgrade timed out");
            return;
        }
    };
    let (conn, outbound) = Conn::open(shared, admission, transport, local, remote);
    let reason = serve(&conn, ws, outbound).await;
    conn.finish(reason).await;
}

/// Handshake callback: RFC 7118 §4 needs the `sip` subprotocol agreed; a
/// client that does not offer it gets an HTTP error instead of a socket.
#[allow(clippy::result_large_err)] // the signature tungstenite asks for
fn require_sip(req: &Request, mut resp: Response) -> Result<Response, ErrorResponse> {
    let offered = req
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == SUBPROTOCOL);
    if offered {
        resp.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(SUBPROTOCOL),
        );
        Ok(resp)
    } else {
        let mut err = ErrorResponse::new(Some(
            "WebSocket subprotocol \"sip\" required (RFC 7118)".to_owned(),
        ));
        *err.status_mut() = StatusCode::BAD_REQUEST;
        Err(err)
    }
}

async fn serve<S>(
    conn: &Conn,
    mut ws: WebSocketStream<Metered<S>>,
    mut outbound: mpsc::Receiver<Bytes>,
) -> CloseReason
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let limits = conn.shared.limits;
    let mut last_activity = Instant::now();
    // The upgrade request's bytes were counted; no message has begun yet.
    ws.get_mut().started = None;
    let reason = loop {
        let started = ws.get_ref().started;
        let due = deadline(&conn.shared, last_activity, started);
        // tungstenite buffers partial frames out of our sight, so wake up at
        // least once per message timeout to look at when bytes last began.
        let wake = due.min(Instant::now() + limits.message_timeout);
        tokio::select! {
            msg = ws.next() => {
                last_activity = Instant::now();
                ws.get_mut().started = None;
                match msg {
                    None => break CloseReason::PeerClosed,
                    Some(Err(e)) => break ws_error(conn, e),
                    Some(Ok(Message::Text(text))) => {
                        if let Err(reason) = conn.deliver(Bytes::from(text)).await {
                            break reason;
                        }
                    }
                    Some(Ok(Message::Binary(data))) => {
                        if let Err(reason) = conn.deliver(data).await {
                            break reason;
                        }
                    }
                    // Pings are answered by tungstenite on its next read, a
                    // Close by tungstenite too, after which the stream ends.
                    Some(Ok(_)) => {}
                }
            }
            data = outbound.recv() => {
                let Some(data) = data else { break CloseReason::Local };
                let len = data.len();
                // Text frames when possible: browser SIP stacks expect them.
                let msg = match Utf8Bytes::try_from(data.clone()) {
                    Ok(text) => Message::Text(text),
                    Err(_) => Message::Binary(data),
                };
                match timeout(limits.write_timeout, ws.send(msg)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => break ws_error(conn, e),
                    Err(_) => break conn.write_timed_out(),
                }
                conn.sent(len);
                last_activity = Instant::now();
            }
            () = sleep_until(wake) => {
                let started = ws.get_ref().started;
                if Instant::now() >= deadline(&conn.shared, last_activity, started) {
                    break conn.timed_out(started);
                }
            }
        }
    };
    let _ = timeout(SHUTDOWN_GRACE, ws.close(None)).await;
    reason
}

fn ws_error(conn: &Conn, e: WsError) -> CloseReason {
    match e {
        WsError::ConnectionClosed | WsError::AlreadyClosed => CloseReason::PeerClosed,
        WsError::Io(e) => CloseReason::Io(e.kind()),
        WsError::Capacity(e) => {
            bump(&conn.shared.stats.framing_errors);
            warn!(transport = %conn.transport, peer = %conn.remote, flow = %conn.flow(),
                error = %e, "WebSocket message too large; closing");
            CloseReason::Framing(FramingError::MessageTooLarge)
        }
        e => {
            warn!(transport = %conn.transport, peer = %conn.remote, flow = %conn.flow(),
                error = %e, "WebSocket error; closing");
            CloseReason::Protocol(e.to_string())
        }
    }
}

/// Notes when bytes of a not-yet-complete WebSocket message began arriving,
/// for the slow-message deadline; the driver resets it per message.
struct Metered<S> {
    inner: S,
    started: Option<Instant>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Metered<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before && self.started.is_none() {
            self.started = Some(Instant::now());
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
