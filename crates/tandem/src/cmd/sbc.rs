//! `tandem sbc`: the media relay role on its own, joined to a brain over
//! the control protocol. It retries the brain until it answers, and keeps
//! relaying calls it already carries if the brain goes away.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

#[derive(Args, Debug)]
pub struct SbcArgs {
    /// The brain's control address (its virtual IP when a standby exists).
    #[arg(long, default_value_t = sbc::DEFAULT_BRAIN)]
    pub brain: SocketAddr,
    /// This node's name, stable across restarts.
    #[arg(long, default_value = "sbc-1")]
    pub node_id: String,
    /// An address this node relays media on (repeatable).
    #[arg(long = "media-ip", default_value = "127.0.0.1")]
    pub media_ips: Vec<IpAddr>,
    /// Most streams (call legs) it carries at once.
    #[arg(long, default_value_t = 10_000)]
    pub max_streams: u32,
    /// Media worker threads.
    #[arg(long, default_value_t = 1)]
    pub workers: u16,
    /// Seconds without media on a leg before the brain is told.
    #[arg(long, default_value_t = 30)]
    pub media_timeout: u64,
    /// Where to serve `GET /metrics` (the SBC's counters), e.g.
    /// 127.0.0.1:8081. Off when not given.
    #[arg(long)]
    pub metrics: Option<SocketAddr>,
}

pub fn run(args: SbcArgs) -> anyhow::Result<ExitCode> {
    // An RTP and an RTCP socket per stream.
    crate::limits::check_open_files(u64::from(args.max_streams) * 2);
    let config = sbc::SbcConfig {
        brain: args.brain,
        node_id: args.node_id,
        media_ips: args.media_ips,
        max_streams: args.max_streams,
        workers: args.workers,
        media_timeout: std::time::Duration::from_secs(args.media_timeout.max(1)),
        ..sbc::SbcConfig::default()
    };
    let handle = std::sync::Arc::new(sbc::Sbc::start(config).context("starting the SBC")?);
    let node = handle.clone();
    crate::http::serve_node_until_signal(args.metrics, move || {
        crate::http::sbc_metrics(node.clone())
    })?;
    match std::sync::Arc::try_unwrap(handle) {
        Ok(h) => h.shutdown(),
        // A metrics request still holds it; the process is ending anyway.
        Err(_) => tracing::debug!("SBC handle still shared at exit"),
    }
    Ok(ExitCode::SUCCESS)
}
