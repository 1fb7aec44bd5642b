//! The mixer node: conference audio and nothing more. The brain tells it,
//! through `proto`, which conferences to mix and who is in them; only SBCs
//! send it audio. It knows no SIP, no tenants and no SQL.
//!
//! | module | one idea |
//! | --- | --- |
//! | `room` | one conference: snapshot → engine, who is who, talk events (sans-IO) |
//! | `worker` | a mixer thread: its socket, its rooms, the tick clock |
//! | `control` | the node side of `proto`: validation, versions, placement |
//!
//! # Threads and ports
//!
//! ```text
//!   brain ◄──TCP── mixer-control (current-thread tokio: proto::node::run)
//!                      │ Apply/Release/Stats, bounded wait for the answer
//!                      ▼ std channel + mio waker
//!               mixer-0 … mixer-N-1: one UDP port each (its "range" in
//!                      the Hello); recvmmsg in, mix every tick, sendmmsg out
//!                      │ Talking events (try_send, never blocks)
//!                      └──────────────► back to mixer-control ──► brain
//! ```
//!
//! The brain places a conference on a port; every participant of it sends
//! there from its own SBC endpoint, which is how the worker tells them
//! apart. Losing the brain stops nothing: rooms keep mixing, and the Hello
//! on reconnect carries every conference snapshot.

mod control;
pub mod room;
mod worker;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use proto::node::NodeConfig;
use proto::snapshot::{PortRange, RangeId};
use tokio::sync::oneshot;

pub use worker::WorkerCounters;

use control::Control;
use worker::{Command, WorkerRemote};

/// Where the mixer finds the brain and what it offers.
#[derive(Debug, Clone)]
pub struct MixerConfig {
    /// The brain's control address.
    pub brain: SocketAddr,
    /// Stable across restarts: the brain knows the node by it.
    pub node_id: String,
    /// The address the mixer's ports are bound to and SBCs send to.
    pub media_ip: IpAddr,
    /// Worker i listens on `first_port + i`; 0 takes any free ports.
    pub first_port: u16,
    pub workers: u16,
    /// Participants over all conferences; more is `NO_CAPACITY`.
    pub max_participants: u32,
    /// How long the control side waits for a worker to confirm a command.
    pub worker_reply_timeout: Duration,
    /// Talk events held while the brain is away; more are dropped.
    pub event_queue: usize,
    pub node: NodeConfig,
}

impl Default for MixerConfig {
    fn default() -> Self {
        Self {
            brain: SocketAddr::from(([127, 0, 0, 1], 5090)),
            node_id: "mixer-1".into(),
            media_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            first_port: 29000,
            workers: 1,
            max_participants: 5000,
            worker_reply_timeout: Duration::from_millis(500),
            event_queue: 4096,
            node: NodeConfig::default(),
        }
    }
}

pub struct Mixer;

impl Mixer {
    /// Binds the workers' ports, starts them and the control thread (which
    /// connects to the brain, retrying forever). Needs no runtime of the
    /// caller's.
    pub fn start(config: MixerConfig) -> anyhow::Result<MixerHandle> {
        let (events_tx, events_rx) = tokio::sync::mpsc::channel(config.event_queue.max(1));
        let mut workers = Vec::new();
        let mut ranges = Vec::new();
        for i in 0..config.workers.max(1) {
            let port = if config.first_port == 0 {
                0
            } else {
                config
                    .first_port
                    .checked_add(i)
                    .context("mixer ports past 65535")?
            };
            let addr = SocketAddr::new(config.media_ip, port);
            let sock =
                UdpSocket::bind(addr).with_context(|| format!("binding the mixer on {addr}"))?;
            sock.set_nonblocking(true)?;
            // A tick's packets arrive and leave in bursts.
            udpio::big_buffers(&sock, 4 << 20);
            let bound = sock.local_addr()?.port();
            ranges.push(PortRange {
                id: RangeId(u32::from(i) + 1),
                bind_ip: config.media_ip,
                vip: None,
                first_port: bound,
                last_port: bound,
            });
            workers.push(
                worker::spawn(usize::from(i), sock, events_tx.clone())
                    .context("starting a mixer worker")?,
            );
        }
        drop(events_tx);
        let remotes: Vec<WorkerRemote> = workers.iter().map(|w| w.remote()).collect();
        let ports = ranges.iter().map(|r| r.first_port).collect();
        let control = Control::new(config.clone(), workers, ranges);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("building the control runtime")?;
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let brain = config.brain;
        let node = config.node.clone();
        let thread = std::thread::Builder::new()
            .name("mixer-control".into())
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::select! {
                        _ = proto::node::run(brain, node, control, events_rx) => {}
                        _ = stop_rx => {}
                    }
                });
            })
            .context("starting the control thread")?;
        Ok(MixerHandle {
            stop: Some(stop_tx),
            thread: Some(thread),
            workers: remotes,
            ports,
            reply_timeout: config.worker_reply_timeout,
        })
    }
}

/// A running mixer. Dropping it shuts it down.
pub struct MixerHandle {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    workers: Vec<WorkerRemote>,
    ports: Vec<u16>,
    reply_timeout: Duration,
}

impl MixerHandle {
    /// The workers' ports, in order.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// Counters summed over the workers (each asked in turn, between ticks).
    pub fn counters(&self) -> WorkerCounters {
        let mut total = WorkerCounters::default();
        for w in &self.workers {
            let (done, answer) = std::sync::mpsc::sync_channel(1);
            if w.send(Command::Counters { done })
                && let Ok(c) = answer.recv_timeout(self.reply_timeout)
            {
                total.merge(&c);
            }
        }
        total
    }

    /// The counters in Prometheus text format.
    pub fn metrics_text(&self) -> String {
        let c = self.counters();
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        };
        metric(
            "tandem_mixer_conferences",
            "gauge",
            "Conferences being mixed.",
            u64::from(c.rooms),
        );
        metric(
            "tandem_mixer_participants",
            "gauge",
            "Participants in them.",
            u64::from(c.participants),
        );
        metric(
            "tandem_mixer_packets_in_total",
            "counter",
            "RTP packets received from SBCs.",
            c.packets_in,
        );
        metric(
            "tandem_mixer_packets_out_total",
            "counter",
            "RTP packets sent to SBCs.",
            c.packets_out,
        );
        metric(
            "tandem_mixer_unknown_source_total",
            "counter",
            "Packets from an address that is no participant's, dropped.",
            c.unknown_source,
        );
        metric(
            "tandem_mixer_send_errors_total",
            "counter",
            "Packets the kernel refused to send.",
            c.send_errors,
        );
        metric(
            "tandem_mixer_late_ticks_total",
            "counter",
            "Mixing periods skipped because the mixer fell behind.",
            c.late_ticks,
        );
        metric(
            "tandem_mixer_events_dropped_total",
            "counter",
            "Talk events dropped while the brain was away.",
            c.events_dropped,
        );
        out
    }

    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MixerHandle {
    fn drop(&mut self) {
        self.stop_now();
    }
}
