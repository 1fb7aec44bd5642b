//! tandem's SBC: a media relay and nothing more. It knows no SIP, no
//! tenants and no SQL; the brain tells it, through `proto`, which ports to
//! relay between and it relays, latches, counts and reports.
//!
//! | module | one idea |
//! | --- | --- |
//! | [`relay`] | the sans-IO core: streams by local port, one [`Verdict`] per datagram |
//! | [`latch`] | symmetric latching: which source a leg accepts |
//! | [`drops`] | why a datagram was dropped, counted by reason |
//! | [`counters`] | per-leg, per-range and per-SBC counters; Prometheus text |
//! | [`config`] | [`SbcConfig`] |
//! | `worker` | a media thread: mio poll, its sockets and its relay core |
//! | `control` | the node side of `proto`: ranges, binding, placement |
//!
//! # Threads
//!
//! ```text
//!   brain ◄──TCP── sbc-control (current-thread tokio: proto::node::run)
//!                      │ binds sockets, sends Apply/Release/Stats
//!                      ▼ std channel + mio waker, bounded wait for the answer
//!              sbc-media-0 … sbc-media-N-1 (mio; each owns its calls)
//!                      │ LegLatched, Dtmf, MediaTimeout (try_send, never blocks)
//!                      └──────────────► back to sbc-control ──► brain
//! ```
//!
//! All legs of a call live on one worker, since a packet in on one leg's
//! socket goes out on its peer's. Losing the brain stops nothing but the
//! control connection: workers keep relaying, and on reconnect the Hello
//! carries every range and call snapshot the node holds.

pub mod config;
mod control;
pub mod counters;
pub mod drops;
pub mod latch;
pub mod relay;
mod worker;

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::Context as _;
use tokio::sync::oneshot;

pub use config::{DEFAULT_BRAIN, SbcConfig};
pub use counters::{RangeCounters, SbcCounters, Traffic};
pub use drops::{DropCounts, DropReason};
pub use relay::{Relay, RelayConfig, Verdict};

use control::{Control, Shared};
use worker::{Command, WorkerRemote};

/// Entry point: starts the SBC's threads.
pub struct Sbc;

impl Sbc {
    /// Starts the media workers and the control thread, which connects to
    /// the brain (retrying forever). Returns once the threads are up; it
    /// needs no runtime of the caller's, so `tandem up` can run it beside
    /// every other role.
    pub fn start(config: SbcConfig) -> anyhow::Result<SbcHandle> {
        let (events_tx, events_rx) = tokio::sync::mpsc::channel(config.event_queue.max(1));
        let mut workers = Vec::new();
        for i in 0..usize::from(config.workers.max(1)) {
            let w = worker::spawn(i, config.relay(), config.tick, events_tx.clone())
                .context("starting a media worker")?;
            workers.push(w);
        }
        // Only the workers hold senders now: when they stop, the control
        // connection's event stream ends too.
        drop(events_tx);
        let remotes: Vec<WorkerRemote> = workers.iter().map(|w| w.remote()).collect();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let control = Control::new(config.clone(), workers, shared.clone());

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("building the control runtime")?;
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let brain = config.brain;
        let mut node_config = config.node.clone();
        node_config.seed ^= seed_of(&config.node_id);
        let thread = std::thread::Builder::new()
            .name("sbc-control".into())
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::select! {
                        _ = proto::node::run(brain, node_config, control, events_rx) => {}
                        _ = stop_rx => {}
                    }
                });
                // The control state (and with it the workers) drops here.
            })
            .context("starting the control thread")?;
        Ok(SbcHandle {
            stop: Some(stop_tx),
            thread: Some(thread),
            workers: remotes,
            shared,
            reply_timeout: config.worker_reply_timeout,
        })
    }
}

/// A running SBC. Dropping it shuts it down.
pub struct SbcHandle {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    workers: Vec<WorkerRemote>,
    shared: Arc<Mutex<Shared>>,
    reply_timeout: std::time::Duration,
}

impl SbcHandle {
    /// Counters summed over the workers (each asked in turn, off their
    /// packet path), with the assigned ranges listed even when idle.
    pub fn counters(&self) -> SbcCounters {
        let mut total = SbcCounters::default();
        for w in &self.workers {
            let (done, answer) = std::sync::mpsc::sync_channel(1);
            if w.send(Command::Counters { done })
                && let Ok(c) = answer.recv_timeout(self.reply_timeout)
            {
                total.merge(&c);
            }
        }
        let ranges = self
            .shared
            .lock()
            .map(|s| s.ranges.clone())
            .unwrap_or_default();
        for r in ranges {
            if !total.ranges.iter().any(|x| x.range_id == r.id) {
                total.ranges.push(RangeCounters {
                    range_id: r.id,
                    streams: 0,
                    traffic: Traffic::default(),
                });
            }
        }
        total.ranges.sort_by_key(|r| r.range_id);
        total
    }

    /// Stops relaying and disconnects from the brain; returns when every
    /// thread has ended.
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

impl Drop for SbcHandle {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Spreads reconnect jitter across nodes by name (FNV-1a).
fn seed_of(node_id: &str) -> u64 {
    node_id.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}
