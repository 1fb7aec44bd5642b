//! A deliberately small HTTP/1.1 responder for `GET /metrics` and friends;
//! the REST API replaces it when it arrives.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tracing::warn;

/// Serves `GET <path>` with whatever `route(path)` returns (404 for None),
/// one request per connection. A request head must arrive within 5 s and
/// 2 KiB: a slow client holds nothing for long.
pub async fn serve<F, Fut>(listener: TcpListener, route: F)
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<String>> + Send,
{
    let route = Arc::new(route);
    loop {
        let Ok((mut conn, peer)) = listener.accept().await else {
            continue;
        };
        let route = route.clone();
        tokio::spawn(async move {
            let mut head = [0u8; 2048];
            let mut n = 0;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while n < head.len() && !head[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                match tokio::time::timeout_at(deadline, conn.read(&mut head[n..])).await {
                    Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
                    Ok(Ok(read)) => n += read,
                }
            }
            let path = std::str::from_utf8(&head[..n])
                .ok()
                .and_then(|h| h.strip_prefix("GET "))
                .and_then(|h| h.split([' ', '?']).next())
                .map(str::to_owned);
            let body = match path {
                Some(p) => route(p).await,
                None => None,
            };
            let (status, body) = match body {
                Some(b) => ("200 OK", b),
                None => ("404 Not Found", "not found\n".to_string()),
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            if let Err(e) = conn.write_all(resp.as_bytes()).await {
                warn!(%peer, error = %e, "HTTP response not sent");
            }
        });
    }
}

/// The SBC's counters in Prometheus text (read off the async threads: the
/// SBC answers from its own).
/// The mixer's counters, asked off the async threads (workers answer
/// between ticks).
pub async fn mixer_metrics(mixer: Arc<mixer::MixerHandle>) -> String {
    match tokio::task::spawn_blocking(move || mixer.metrics_text()).await {
        Ok(text) => text,
        Err(e) => {
            warn!(error = %e, "mixer counters unavailable");
            String::new()
        }
    }
}

pub async fn sbc_metrics(sbc: Arc<sbc::SbcHandle>) -> String {
    match tokio::task::spawn_blocking(move || sbc.counters()).await {
        Ok(c) => c.to_prometheus(),
        Err(e) => {
            warn!(error = %e, "SBC counters unavailable");
            String::new()
        }
    }
}

/// A media node's process: serves `GET /metrics` at `addr` (when given)
/// with what `render` makes, until Ctrl-C.
pub fn serve_node_until_signal<F, Fut>(addr: Option<SocketAddr>, render: F) -> anyhow::Result<()>
where
    F: Fn() -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = String> + Send,
{
    use anyhow::Context as _;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async {
        if let Some(addr) = addr {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the metrics listener on {addr}"))?;
            println!(
                "listening metrics http://{}/metrics",
                listener.local_addr()?
            );
            tokio::spawn(serve(listener, move |path| {
                let render = render.clone();
                async move {
                    match path.as_str() {
                        "/metrics" => Some(render().await),
                        _ => None,
                    }
                }
            }));
        }
        tokio::signal::ctrl_c()
            .await
            .context("waiting for a signal")
    })
}
