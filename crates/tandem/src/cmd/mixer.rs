//! `tandem mixer`: the conference mixer role on its own, joined to a brain
//! over the control protocol. It retries the brain until it answers, and
//! keeps mixing the conferences it has if the brain goes away.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

#[derive(Args, Debug)]
pub struct MixerArgs {
    /// The brain's control address (its virtual IP when a standby exists).
    #[arg(long, default_value_t = sbc::DEFAULT_BRAIN)]
    pub brain: SocketAddr,
    /// This node's name, stable across restarts.
    #[arg(long, default_value = "mixer-1")]
    pub node_id: String,
    /// The address SBCs send conference audio to.
    #[arg(long, default_value = "127.0.0.1")]
    pub media_ip: IpAddr,
    /// The first mixer thread's UDP port; thread i listens on PORT + i
    /// (0: any free ports).
    #[arg(long, default_value_t = 29000)]
    pub port: u16,
    /// Mixer threads.
    #[arg(long, default_value_t = 1)]
    pub workers: u16,
    /// Most participants it mixes at once, over all conferences.
    #[arg(long, default_value_t = 5000)]
    pub max_participants: u32,
    /// Where to serve `GET /metrics` (the mixer's counters), e.g.
    /// 127.0.0.1:8082. Off when not given.
    #[arg(long)]
    pub metrics: Option<SocketAddr>,
}

pub fn config(args: &MixerArgs) -> mixer::MixerConfig {
    mixer::MixerConfig {
        brain: args.brain,
        node_id: args.node_id.clone(),
        media_ip: args.media_ip,
        first_port: args.port,
        workers: args.workers.max(1),
        max_participants: args.max_participants,
        ..mixer::MixerConfig::default()
    }
}

pub fn run(args: MixerArgs) -> anyhow::Result<ExitCode> {
    let handle = Arc::new(mixer::Mixer::start(config(&args)).context("starting the mixer")?);
    for p in handle.ports() {
        println!("listening mixer {}:{p}", args.media_ip);
    }
    let node = handle.clone();
    crate::http::serve_node_until_signal(args.metrics, move || {
        crate::http::mixer_metrics(node.clone())
    })?;
    match Arc::try_unwrap(handle) {
        Ok(h) => h.shutdown(),
        Err(_) => tracing::debug!("mixer handle still shared at exit"),
    }
    Ok(ExitCode::SUCCESS)
}
