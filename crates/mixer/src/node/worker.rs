//! A mixer thread: one UDP socket (its port is one of the node's ranges),
//! the rooms placed on it, and a tick clock. Audio is only used at a tick,
//! so the thread does not wake for each packet: every 10 ms it takes all
//! that has come, a batch per system call (the kernel stamps each packet's
//! arrival, for the jitter figures), tells participants apart by source
//! (each one's SBC endpoint), mixes the rooms that are due, and sends each
//! tick's packets a batch per system call. Nothing here allocates per
//! packet or per tick, takes a lock, or waits on the brain.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token, Waker};
use proto::message::{ErrorBody, ErrorCode, Event, LegStats};
use proto::snapshot::{ConferenceId, ConferenceSnapshot};
use tokio::sync::mpsc as tokio_mpsc;

use super::room::{Room, RoomMedia, finish_recording};
use crate::ParticipantId;

const WAKER: Token = Token(1);
/// The worker's clock: every room's tick (10, 20 or 40 ms) is a multiple.
pub(crate) const BASE_TICK_MS: u32 = 10;
/// Late by more than this many periods: skip ahead instead of catching up.
const MAX_BEHIND: u32 = 5;

pub(crate) type StatsReply = Option<Vec<(u32, LegStats)>>;

pub(crate) enum Command {
    Apply {
        snapshot: Box<ConferenceSnapshot>,
        media: Box<RoomMedia>,
        done: SyncSender<Result<(), ErrorBody>>,
    },
    Release {
        id: ConferenceId,
        done: SyncSender<StatsReply>,
    },
    Stats {
        id: ConferenceId,
        done: SyncSender<StatsReply>,
    },
    Counters {
        done: SyncSender<WorkerCounters>,
    },
    Shutdown,
}

/// A worker's counters, cumulative.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerCounters {
    pub packets_in: u64,
    pub packets_out: u64,
    /// From an address no participant of this worker has.
    pub unknown_source: u64,
    pub send_errors: u64,
    /// Periods the clock fell behind by more than a few and skipped.
    pub late_ticks: u64,
    pub events_dropped: u64,
    pub rooms: u32,
    pub participants: u32,
}

impl WorkerCounters {
    pub fn merge(&mut self, o: &WorkerCounters) {
        self.packets_in += o.packets_in;
        self.packets_out += o.packets_out;
        self.unknown_source += o.unknown_source;
        self.send_errors += o.send_errors;
        self.late_ticks += o.late_ticks;
        self.events_dropped += o.events_dropped;
        self.rooms += o.rooms;
        self.participants += o.participants;
    }
}

/// What a worker publishes for the control side's load report.
#[derive(Debug, Default)]
pub(crate) struct Published {
    pub packets: AtomicU64,
    pub participants: AtomicU32,
}

pub(crate) struct WorkerHandle {
    tx: Sender<Command>,
    waker: Arc<Waker>,
    pub published: Arc<Published>,
    thread: Option<JoinHandle<()>>,
}

impl WorkerHandle {
    pub fn send(&self, cmd: Command) -> bool {
        self.tx.send(cmd).is_ok() && self.waker.wake().is_ok()
    }

    pub fn remote(&self) -> WorkerRemote {
        WorkerRemote {
            tx: self.tx.clone(),
            waker: self.waker.clone(),
        }
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.send(Command::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A way into a worker without owning its thread.
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
    sock: UdpSocket,
    events: tokio_mpsc::Sender<Event>,
) -> io::Result<WorkerHandle> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let (tx, rx) = std::sync::mpsc::channel();
    let receiver = udpio::Receiver::with_timestamps(&sock)?;
    let published = Arc::new(Published::default());
    let mut worker = Worker {
        poll,
        sock,
        rx: receiver,
        tx: udpio::Sender::new(),
        rooms: Vec::new(),
        by_conf: HashMap::new(),
        demux: HashMap::default(),
        commands: rx,
        events,
        published: published.clone(),
        counters: WorkerCounters::default(),
        buf: vec![0; udpio::MAX_PACKET].into_boxed_slice(),
    };
    let thread = std::thread::Builder::new()
        .name(format!("mixer-w{index}"))
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
    sock: UdpSocket,
    rx: udpio::Receiver,
    tx: udpio::Sender,
    /// Rooms by slot; a slot is reused once its room is gone.
    rooms: Vec<Option<(ConferenceId, Room)>>,
    by_conf: HashMap<ConferenceId, usize>,
    /// SBC endpoint → (room slot, engine id); read for every packet, so a
    /// fast (randomly seeded) hasher rather than SipHash.
    demux: HashMap<SocketAddr, (usize, ParticipantId), foldhash::fast::RandomState>,
    commands: Receiver<Command>,
    events: tokio_mpsc::Sender<Event>,
    published: Arc<Published>,
    counters: WorkerCounters,
    /// One outgoing packet, written by the engine.
    buf: Box<[u8]>,
}

impl Worker {
    fn run(&mut self) {
        let mut ready = Events::with_capacity(8);
        let period = Duration::from_millis(u64::from(BASE_TICK_MS));
        let start = Instant::now();
        let mut n: u64 = 0;
        loop {
            let next = start + period * u32::try_from(n + 1).unwrap_or(u32::MAX);
            let wait = next.saturating_duration_since(Instant::now());
            if let Err(e) = self.poll.poll(&mut ready, Some(wait))
                && e.kind() != io::ErrorKind::Interrupted
            {
                tracing::error!(error = %e, "mixer worker poll failed; worker stops");
                return;
            }
            for ev in ready.iter() {
                if ev.token() == WAKER && !self.drain_commands() {
                    return;
                }
            }
            let now = Instant::now();
            if now >= next {
                n += 1;
                self.drain_socket();
                self.tick(n, now);
                // Far behind (a stalled machine): skip rather than burst.
                let behind = now.saturating_duration_since(next).as_millis() as u64
                    / u64::from(BASE_TICK_MS);
                if behind > u64::from(MAX_BEHIND) {
                    n += behind;
                    self.counters.late_ticks += behind;
                }
            }
        }
    }

    fn drain_socket(&mut self) {
        let Worker {
            sock,
            rx,
            rooms,
            demux,
            counters,
            ..
        } = self;
        // Kernel arrival stamps are wall-clock; the engine keeps Instants.
        let now = Instant::now();
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let _ = rx.drain_timed(sock, |from, data, stamp| {
            counters.packets_in += 1;
            let arrival = stamp
                .and_then(|t| wall.checked_sub(t))
                .and_then(|ago| now.checked_sub(ago))
                .unwrap_or(now);
            match demux.get(&from) {
                Some(&(slot, id)) => {
                    if let Some(Some((_, room))) = rooms.get_mut(slot) {
                        room.on_packet(id, data, arrival);
                    }
                }
                None => counters.unknown_source += 1,
            }
        });
    }

    fn tick(&mut self, n: u64, now: Instant) {
        let Worker {
            sock,
            tx,
            rooms,
            events,
            counters,
            buf,
            ..
        } = self;
        for (conf, room) in rooms.iter_mut().flatten() {
            if room.is_empty() || !room.due(n) {
                continue;
            }
            room.tick(
                now,
                buf,
                |to, bytes| {
                    tx.next(sock, to)[..bytes.len()].copy_from_slice(bytes);
                    tx.commit(sock, bytes.len());
                },
                |(participant_id, talking)| {
                    let ev = Event::Talking {
                        conference_id: conf.clone(),
                        participant_id,
                        talking,
                    };
                    if events.try_send(ev).is_err() {
                        counters.events_dropped += 1;
                    }
                },
            );
        }
        tx.flush(sock);
        counters.packets_out = tx.sent;
        counters.send_errors = tx.errors;
        self.published
            .packets
            .store(counters.packets_in, Ordering::Relaxed);
    }

    fn drain_commands(&mut self) -> bool {
        loop {
            let cmd = match self.commands.try_recv() {
                Ok(c) => c,
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            };
            match cmd {
                Command::Shutdown => return false,
                Command::Apply {
                    snapshot,
                    media,
                    done,
                } => {
                    let _ = done.send(self.apply(*snapshot, *media));
                }
                Command::Release { id, done } => {
                    let stats = self.release(&id);
                    let _ = done.send(stats);
                }
                Command::Stats { id, done } => {
                    let stats = self
                        .by_conf
                        .get(&id)
                        .and_then(|&slot| self.rooms.get_mut(slot))
                        .and_then(|r| r.as_mut())
                        .map(|(_, room)| room.stats());
                    let _ = done.send(stats);
                }
                Command::Counters { done } => {
                    let mut c = self.counters;
                    c.rooms = self.by_conf.len() as u32;
                    c.participants = self.participants();
                    let _ = done.send(c);
                }
            }
        }
    }

    fn participants(&self) -> u32 {
        self.rooms
            .iter()
            .flatten()
            .map(|(_, r)| r.len() as u32)
            .sum()
    }

    fn apply(&mut self, s: ConferenceSnapshot, media: RoomMedia) -> Result<(), ErrorBody> {
        let slot = self.by_conf.get(&s.conference_id).copied();
        // An endpoint another room of this worker has cannot be told apart.
        for p in &s.participants {
            if let Some(&(other, _)) = self.demux.get(&p.sbc_endpoint)
                && Some(other) != slot
            {
                return Err(ErrorBody::new(
                    ErrorCode::INVALID,
                    format!("SBC endpoint {} is in another conference", p.sbc_endpoint),
                ));
            }
        }
        let slot = match slot {
            Some(slot) => {
                let Some(Some((_, room))) = self.rooms.get_mut(slot) else {
                    return Err(ErrorBody::new(ErrorCode::INTERNAL, "lost a room"));
                };
                if room.same_settings(&s) {
                    room.apply(&s)?;
                } else {
                    let mut fresh = Room::new(&s, BASE_TICK_MS)?;
                    // The recording goes on across a rebuild.
                    if let Some(r) = room.take_recorder() {
                        let _ = fresh.set_media(
                            &s,
                            RoomMedia {
                                recording: super::room::RecordingChange::Start(r),
                                ..RoomMedia::default()
                            },
                        );
                    }
                    *room = fresh;
                }
                slot
            }
            None => {
                let room = Room::new(&s, BASE_TICK_MS)?;
                let slot = match self.rooms.iter().position(Option::is_none) {
                    Some(i) => i,
                    None => {
                        self.rooms.push(None);
                        self.rooms.len() - 1
                    }
                };
                self.rooms[slot] = Some((s.conference_id.clone(), room));
                self.by_conf.insert(s.conference_id.clone(), slot);
                slot
            }
        };
        self.demux.retain(|_, (r, _)| *r != slot);
        if let Some(Some((_, room))) = self.rooms.get_mut(slot) {
            for (addr, _, id) in room.endpoints() {
                self.demux.insert(addr, (slot, id));
            }
            if let Some(ended) = room.set_media(&s, media) {
                self.recording_done(s.conference_id.clone(), ended);
            }
        }
        self.published
            .participants
            .store(self.participants(), Ordering::Relaxed);
        Ok(())
    }

    /// Closes a recording off this thread; the brain hears when it is whole.
    fn recording_done(&self, conference_id: ConferenceId, r: crate::Recorder) {
        let events = self.events.clone();
        finish_recording(r, move |summary| {
            if let Some(e) = &summary.error {
                tracing::warn!(conference = %conference_id.0, error = %e, "recording failed");
            }
            let _ = events.try_send(Event::RecordingDone {
                conference_id,
                path: summary.path.display().to_string(),
                duration_ms: summary.duration_ms,
            });
        });
    }

    fn release(&mut self, id: &ConferenceId) -> Option<Vec<(u32, LegStats)>> {
        let slot = self.by_conf.remove(id)?;
        let (_, mut room) = self.rooms.get_mut(slot)?.take()?;
        self.demux.retain(|_, (r, _)| *r != slot);
        if let Some(r) = room.take_recorder() {
            self.recording_done(id.clone(), r);
        }
        self.published
            .participants
            .store(self.participants(), Ordering::Relaxed);
        Some(room.stats())
    }
}
