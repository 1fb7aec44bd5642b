//! A media worker: one thread, one mio poll, the sockets and relay core of
//! the calls placed on it. Commands arrive on a channel with a waker; the
//! packet path reads into one reusable buffer, asks the core, and sends —
//! no lock, no allocation, and no waiting on the brain.

use std::collections::HashMap;
use std::io;
use std::net::UdpSocket as StdUdpSocket;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use proto::message::{Event, LegStats};
use proto::snapshot::{CallId, CallSnapshot, LegId};
use tokio::sync::mpsc as tokio_mpsc;

use crate::counters::SbcCounters;
use crate::relay::{Applied, ApplyError, Relay, RelayConfig, Verdict};

/// Above any port number, so it never collides with a socket's token.
const WAKER: Token = Token(1 << 20);
/// Consecutive receive errors tolerated on one socket before moving on.
const RECV_ERROR_BUDGET: u32 = 16;

pub(crate) type StatsReply = Option<Vec<(LegId, LegStats)>>;

pub(crate) enum Command {
    /// `sockets` are the newly bound ports of the call (already non-blocking).
    Apply {
        snapshot: CallSnapshot,
        sockets: Vec<(u16, StdUdpSocket)>,
        done: SyncSender<Result<Applied, ApplyError>>,
    },
    Release {
        call_id: CallId,
        done: SyncSender<StatsReply>,
    },
    Stats {
        call_id: CallId,
        done: SyncSender<StatsReply>,
    },
    Counters {
        done: SyncSender<SbcCounters>,
    },
    Shutdown,
}

/// What a worker publishes for the control side, written once per tick.
#[derive(Debug, Default)]
pub(crate) struct Published {
    pub packets: AtomicU64,
    pub streams: AtomicU32,
}

/// The control side's end of a worker.
pub(crate) struct WorkerHandle {
    tx: Sender<Command>,
    waker: Arc<Waker>,
    pub published: Arc<Published>,
    thread: Option<JoinHandle<()>>,
}

impl WorkerHandle {
    /// Queues a command and wakes the worker; false if it has stopped.
    pub fn send(&self, cmd: Command) -> bool {
        self.tx.send(cmd).is_ok() && self.waker.wake().is_ok()
    }

    /// A sender for handing to another thread (the handle's counters).
    pub fn remote(&self) -> WorkerRemote {
        WorkerRemote {
            tx: self.tx.clone(),
            waker: self.waker.clone(),
        }
    }

    pub fn stop(&mut self) {
        self.send(Command::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Another way into a worker, without ownership of its thread.
#[derive(Clone)]
pub(crate) struct WorkerRemote {
    tx: Sender<Command>,
    waker: Arc<Waker>,
}

impl WorkerRemote {
    pub fn send(&self, cmd: Command) -> bool {
        self.tx.send(cmd).is_ok() && self.waker.wake().is_ok()
    }
}

pub(crate) fn spawn(
    index: usize,
    relay: RelayConfig,
    tick: Duration,
    events: tokio_mpsc::Sender<Event>,
) -> io::Result<WorkerHandle> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let (tx, rx) = std::sync::mpsc::channel();
    let published = Arc::new(Published::default());
    let mut worker = Worker {
        poll,
        relay: Relay::new(relay),
        sockets: HashMap::new(),
        rx: udpio::Receiver::new(),
        commands: rx,
        events,
        published: published.clone(),
        tick,
        packets: 0,
        send_errors: 0,
        events_dropped: 0,
    };
    let thread = std::thread::Builder::new()
        .name(format!("sbc-media-{index}"))
        .spawn(move || worker.run())?;
    Ok(WorkerHandle {
        tx,
        waker,
        published,
        thread: Some(thread),
    })
}

struct Worker {
    poll: Poll,
    relay: Relay,
    sockets: HashMap<u16, StdUdpSocket>,
    /// Batched receive buffers, shared by every socket of the worker.
    rx: udpio::Receiver,
    commands: Receiver<Command>,
    events: tokio_mpsc::Sender<Event>,
    published: Arc<Published>,
    tick: Duration,
    packets: u64,
    send_errors: u64,
    events_dropped: u64,
}

impl Worker {
    fn run(&mut self) {
        let mut ready = Events::with_capacity(256);
        let mut next_tick = Instant::now() + self.tick;
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            if let Err(e) = self.poll.poll(&mut ready, Some(wait))
                && e.kind() != io::ErrorKind::Interrupted
            {
                tracing::error!(error = %e, "media worker poll failed; worker stops");
                return;
            }
            for ev in ready.iter() {
                match ev.token() {
                    WAKER => {
                        if !self.drain_commands() {
                            return;
                        }
                    }
                    Token(t) => self.drain_socket(t as u16),
                }
            }
            let now = Instant::now();
            if now >= next_tick {
                self.relay.on_tick(now);
                self.publish();
                next_tick = now + self.tick;
            }
            self.flush_events();
        }
    }

    /// Reads until the socket is empty (mio is edge-triggered), a batch per
    /// system call: a batch that comes back short means empty, so a
    /// packet costs one receive and one send, not a third call for EAGAIN.
    fn drain_socket(&mut self, port: u16) {
        let Worker {
            sockets,
            relay,
            rx,
            packets,
            send_errors,
            ..
        } = self;
        let Some(sock) = sockets.get(&port) else {
            return;
        };
        let mut errors = 0;
        loop {
            let result = rx.drain(sock, |src, data| {
                *packets += 1;
                let verdict = relay.on_packet(port, src, data, Instant::now());
                if let Verdict::Forward { out_port, dst, len } = verdict {
                    let sent = match (sockets.get(&out_port), data.get(..len)) {
                        (Some(out), Some(bytes)) => out.send_to(bytes, dst).is_ok(),
                        _ => false,
                    };
                    if !sent {
                        *send_errors += 1;
                    }
                }
            });
            match result {
                Ok(_) => break,
                Err(e) => {
                    // e.g. an ICMP error queued on the socket; the next read
                    // usually succeeds, but don't spin on a broken socket.
                    errors += 1;
                    if errors >= RECV_ERROR_BUDGET {
                        tracing::warn!(port, error = %e, "receive keeps failing");
                        break;
                    }
                }
            }
        }
    }

    /// Carries out queued commands; false when told to stop.
    fn drain_commands(&mut self) -> bool {
        loop {
            let cmd = match self.commands.try_recv() {
                Ok(cmd) => cmd,
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            };
            match cmd {
                Command::Shutdown => return false,
                Command::Apply {
                    snapshot,
                    sockets,
                    done,
                } => {
                    let old = self.relay.call_ports(&snapshot.call_id);
                    let result = self.relay.apply(&snapshot, Instant::now());
                    if result.is_ok() {
                        for (port, std) in sockets {
                            self.add_socket(port, std);
                        }
                        self.close_unused(&old);
                    }
                    // Sockets of a refused apply are dropped, hence closed.
                    let _ = done.send(result);
                }
                Command::Release { call_id, done } => {
                    let old = self.relay.call_ports(&call_id);
                    let stats = self.relay.release(&call_id);
                    self.close_unused(&old);
                    let _ = done.send(stats);
                }
                Command::Stats { call_id, done } => {
                    let _ = done.send(self.relay.call_stats(&call_id));
                }
                Command::Counters { done } => {
                    let mut c = self.relay.counters();
                    c.send_errors = self.send_errors;
                    c.events_dropped = self.events_dropped;
                    let _ = done.send(c);
                }
            }
            self.flush_events();
        }
    }

    fn add_socket(&mut self, port: u16, sock: StdUdpSocket) {
        // Registered by its fd; the std socket (non-blocking already) is
        // what the batched receive works on.
        let fd = sock.as_raw_fd();
        match self.poll.registry().register(
            &mut SourceFd(&fd),
            Token(usize::from(port)),
            Interest::READABLE,
        ) {
            Ok(()) => {
                self.sockets.insert(port, sock);
            }
            Err(e) => tracing::error!(port, error = %e, "cannot poll socket"),
        }
    }

    fn close_unused(&mut self, ports: &[u16]) {
        for port in ports {
            if !self.relay.has_port(*port)
                && let Some(sock) = self.sockets.remove(port)
            {
                let fd = sock.as_raw_fd();
                let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
            }
        }
    }

    fn publish(&self) {
        self.published
            .packets
            .store(self.packets, Ordering::Relaxed);
        self.published
            .streams
            .store(self.relay.stream_count() as u32, Ordering::Relaxed);
    }

    /// Passes events on without ever blocking: media must not wait for a
    /// brain that is slow or away.
    fn flush_events(&mut self) {
        while let Some(ev) = self.relay.poll_event() {
            if self.events.try_send(ev).is_err() {
                self.events_dropped += 1;
            }
        }
    }
}
