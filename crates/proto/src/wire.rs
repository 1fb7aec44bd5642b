//! What the two tokio drivers share: writing a frame with a time limit.

use std::io;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::frame::{DEFAULT_COMPRESS_THRESHOLD, encode};

/// Writes one message. A peer that does not drain its socket within `limit`
/// counts as gone, so a stuck write cannot stall heartbeats forever.
pub(crate) async fn write_message<W, M>(w: &mut W, msg: &M, limit: Duration) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
    M: Serialize,
{
    let frame = encode(msg, DEFAULT_COMPRESS_THRESHOLD)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    match tokio::time::timeout(limit, w.write_all(&frame)).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "peer not reading")),
    }
}
