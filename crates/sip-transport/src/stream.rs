//! The driver for one framed byte stream (TCP, or TLS over it): reads into a
//! [`StreamFramer`], answers keep-alives, writes queued messages, and enforces
//! the idle and slow-message deadlines.

use bytes::Bytes;
use sip::framing::{PONG, StreamEvent, StreamFramer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until, timeout};
use tracing::warn;

use crate::conn::{Conn, SHUTDOWN_GRACE, deadline};
use crate::event::CloseReason;
use crate::reject;
use crate::stats::bump;

/// Per-connection read buffer: small, since most SIP messages are 1-2 KB and
/// thousands of connections may be idle at once.
const READ_CHUNK: usize = 8 * 1024;

pub(crate) async fn run<S>(conn: Conn, io: S, outbound: mpsc::Receiver<Bytes>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let reason = serve(&conn, io, outbound).await;
    conn.finish(reason).await;
}

async fn serve<S>(conn: &Conn, mut io: S, mut outbound: mpsc::Receiver<Bytes>) -> CloseReason
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut framer = StreamFramer::new(conn.shared.limits.framer);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut last_activity = Instant::now();
    let mut message_started: Option<Instant> = None;
    let reason = loop {
        let wake = deadline(&conn.shared, last_activity, message_started);
        // Limiting the read to the framer's room means every byte read is
        // taken: the framer never buffers past the message cap.
        let want = framer.room().min(READ_CHUNK);
        tokio::select! {
            read = io.read(&mut buf[..want]) => {
                let n = match read {
                    Ok(0) => break CloseReason::PeerClosed,
                    Ok(n) => n,
                    Err(e) => break CloseReason::Io(e.kind()),
                };
                last_activity = Instant::now();
                framer.push(&buf[..n]);
                let completed = match drain(conn, &mut framer, &mut io).await {
                    Ok(completed) => completed,
                    Err(reason) => break reason,
                };
                if completed {
                    message_started = None;
                }
                message_started = framer
                    .is_mid_message()
                    .then(|| message_started.unwrap_or(last_activity));
            }
            data = outbound.recv() => {
                // The table dropped our sender: evicted or shutting down.
                let Some(data) = data else { break CloseReason::Local };
                if let Err(reason) = write(conn, &mut io, &data).await {
                    break reason;
                }
                conn.sent(data.len());
                last_activity = Instant::now();
            }
            () = sleep_until(wake) => break conn.timed_out(message_started),
        }
    };
    let _ = timeout(SHUTDOWN_GRACE, io.shutdown()).await;
    reason
}

/// Hands out every complete event; true if a message was completed.
async fn drain<S>(conn: &Conn, framer: &mut StreamFramer, io: &mut S) -> Result<bool, CloseReason>
where
    S: AsyncWrite + Unpin,
{
    let mut completed = false;
    loop {
        match framer.next_event() {
            Ok(None) => return Ok(completed),
            Ok(Some(StreamEvent::Ping)) => write(conn, io, PONG).await?,
            Ok(Some(StreamEvent::Message(data))) => {
                completed = true;
                conn.deliver(data).await?;
            }
            Err(e) => {
                bump(&conn.shared.stats.framing_errors);
                warn!(transport = %conn.transport, peer = %conn.remote, flow = %conn.flow(),
                    error = %e, "unframeable stream; closing");
                let answer = framer.rejected_head().and_then(|head| {
                    reject::response(head, e.status_code(), e.reason(), conn.flow().get())
                });
                if let Some(answer) = answer {
                    let _ = write(conn, io, &answer).await;
                }
                return Err(CloseReason::Framing(e));
            }
        }
    }
}

async fn write<S>(conn: &Conn, io: &mut S, data: &[u8]) -> Result<(), CloseReason>
where
    S: AsyncWrite + Unpin,
{
    let limit = conn.shared.limits.write_timeout;
    // Flush too: TLS holds written records until flushed.
    let result = timeout(limit, async {
        io.write_all(data).await?;
        io.flush().await
    })
    .await;
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(CloseReason::Io(e.kind())),
        Err(_) => Err(conn.write_timed_out()),
    }
}
