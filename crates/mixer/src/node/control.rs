//! The mixer's answers to the brain: conference snapshots checked,
//! versioned and placed on the worker whose port they name, their figures,
//! and everything re-uploaded on every reconnect.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, sync_channel};
use std::time::Instant;

use proto::SnapshotStore;
use proto::message::{
    Capacity, ErrorBody, ErrorCode, Hello, Load, NodeId, ReplyBody, RequestBody, Role,
};
use proto::node::NodeHandler;
use proto::snapshot::{ConferenceId, ConferenceSnapshot, PortRange};

use super::MixerConfig;
use super::room::{self, RecordingChange, RoomMedia};
use super::worker::{Command, StatsReply, WorkerHandle};
use crate::{Prompt, Recorder};

pub(crate) struct Control {
    config: MixerConfig,
    workers: Vec<WorkerHandle>,
    /// One per worker, in order: its port, as the Hello declares it.
    ranges: Vec<PortRange>,
    conferences: SnapshotStore<ConferenceSnapshot>,
    placement: HashMap<ConferenceId, usize>,
    participants: u32,
    rate: proto::node::PacketRate,
    /// Prompt files read once per (path, rate): snapshots repeat them.
    prompts: HashMap<(String, u32), std::sync::Arc<Prompt>>,
    /// Where each conference is being recorded.
    recording: HashMap<ConferenceId, String>,
}

impl Control {
    pub fn new(config: MixerConfig, workers: Vec<WorkerHandle>, ranges: Vec<PortRange>) -> Self {
        Self {
            config,
            workers,
            ranges,
            conferences: SnapshotStore::new(),
            placement: HashMap::new(),
            participants: 0,
            rate: proto::node::PacketRate::default(),
            prompts: HashMap::new(),
            recording: HashMap::new(),
        }
    }

    /// A prompt file at the conference rate, from the cache or the disk.
    /// A file that cannot be read is logged and left out: the conference
    /// goes on without it.
    fn prompt(&mut self, path: Option<&String>, rate: u32) -> Option<std::sync::Arc<Prompt>> {
        let path = path?;
        let key = (path.clone(), rate);
        if let Some(p) = self.prompts.get(&key) {
            return Some(p.clone());
        }
        match Prompt::from_wav(path, rate) {
            Ok(p) => {
                let p = std::sync::Arc::new(p);
                self.prompts.insert(key, p.clone());
                Some(p)
            }
            Err(e) => {
                tracing::warn!(%path, error = %e, "prompt not loaded");
                None
            }
        }
    }

    /// Prompts and the recording for a snapshot, made here (file work) so
    /// the worker only swaps them in.
    fn media(&mut self, s: &ConferenceSnapshot) -> Result<RoomMedia, ErrorBody> {
        let alone_prompt = self.prompt(s.options.alone_prompt.as_ref(), s.sample_rate);
        let wait_music = self.prompt(s.options.wait_music.as_ref(), s.sample_rate);
        let now = self.recording.get(&s.conference_id);
        let recording = match (&s.options.recording, now) {
            (Some(want), Some(have)) if want == have => RecordingChange::Keep,
            (Some(want), _) => match Recorder::start(want, s.sample_rate) {
                Ok(r) => RecordingChange::Start(r),
                Err(e) => {
                    return Err(ErrorBody::new(
                        ErrorCode::INTERNAL,
                        format!("cannot record to {want}: {e}"),
                    ));
                }
            },
            (None, Some(_)) => RecordingChange::Stop,
            (None, None) => RecordingChange::Keep,
        };
        Ok(RoomMedia {
            alone_prompt,
            wait_music,
            recording,
        })
    }

    /// The worker a snapshot names (through its participants' port); a
    /// room with nobody in it stays where it is, or goes to the first.
    fn worker_for(&self, s: &ConferenceSnapshot) -> Result<usize, ErrorBody> {
        let Some(p) = s.participants.first() else {
            return Ok(self.placement.get(&s.conference_id).copied().unwrap_or(0));
        };
        self.ranges
            .iter()
            .position(|r| r.id == p.local.range_id && r.first_port == p.local.rtp_port)
            .ok_or_else(|| {
                ErrorBody::new(
                    ErrorCode::INVALID,
                    format!(
                        "range {} port {} is not one of this mixer's",
                        p.local.range_id.0, p.local.rtp_port
                    ),
                )
            })
    }

    fn apply(&mut self, s: ConferenceSnapshot) -> Result<ReplyBody, ErrorBody> {
        room::validate(&s)?;
        let version = s.version;
        let before = match self.conferences.get(&s.conference_id) {
            Some(cur) if version < cur.version => {
                return Err(proto::store::StaleVersion {
                    current: cur.version,
                    offered: version,
                }
                .into());
            }
            Some(cur) if version == cur.version => return Ok(ReplyBody::Applied { version }),
            Some(cur) => cur.participants.len() as u32,
            None => 0,
        };
        let after = self.participants - before + s.participants.len() as u32;
        if after > self.config.max_participants {
            return Err(ErrorBody::new(
                ErrorCode::NO_CAPACITY,
                format!(
                    "{after} participants would exceed {}",
                    self.config.max_participants
                ),
            ));
        }
        let worker = self.worker_for(&s)?;
        // Moved to another port (a new placement by the brain): off the old
        // worker first.
        if let Some(&old) = self.placement.get(&s.conference_id)
            && old != worker
        {
            self.ask(old, |done| Command::Release {
                id: s.conference_id.clone(),
                done,
            });
            // Its recording ended there; a new one starts where it goes.
            self.recording.remove(&s.conference_id);
        }
        let media = self.media(&s)?;
        let (done, answer) = sync_channel(1);
        if !self.workers[worker].send(Command::Apply {
            snapshot: Box::new(s.clone()),
            media: Box::new(media),
            done,
        }) {
            return Err(ErrorBody::new(ErrorCode::INTERNAL, "mixer worker stopped"));
        }
        match self.wait(&answer) {
            Some(Err(e)) => return Err(e),
            Some(Ok(())) => {}
            None => tracing::warn!(conference = %s.conference_id.0, "worker slow to confirm"),
        }
        self.participants = after;
        self.placement.insert(s.conference_id.clone(), worker);
        match &s.options.recording {
            Some(path) => {
                self.recording.insert(s.conference_id.clone(), path.clone());
            }
            None => {
                self.recording.remove(&s.conference_id);
            }
        }
        let _ = self.conferences.apply(s);
        Ok(ReplyBody::Applied { version })
    }

    fn release(&mut self, id: ConferenceId) -> Result<ReplyBody, ErrorBody> {
        let Some(s) = self.conferences.release(&id) else {
            return Err(unknown(&id));
        };
        self.recording.remove(&id);
        self.participants = self
            .participants
            .saturating_sub(s.participants.len() as u32);
        let worker = self.placement.remove(&id).unwrap_or(0);
        let stats = self.ask(worker, |done| Command::Release {
            id: id.clone(),
            done,
        });
        Ok(ReplyBody::ConferenceStats {
            conference_id: id,
            participants: stats.flatten().unwrap_or_default(),
        })
    }

    fn stats(&mut self, id: ConferenceId) -> Result<ReplyBody, ErrorBody> {
        let Some(&worker) = self.placement.get(&id) else {
            return Err(unknown(&id));
        };
        match self.ask(worker, |done| Command::Stats {
            id: id.clone(),
            done,
        }) {
            Some(Some(participants)) => Ok(ReplyBody::ConferenceStats {
                conference_id: id,
                participants,
            }),
            Some(None) => Err(unknown(&id)),
            None => Err(ErrorBody::new(
                ErrorCode::INTERNAL,
                "worker did not answer in time",
            )),
        }
    }

    fn ask(
        &self,
        worker: usize,
        make: impl FnOnce(std::sync::mpsc::SyncSender<StatsReply>) -> Command,
    ) -> Option<StatsReply> {
        let (done, answer) = sync_channel(1);
        if !self.workers.get(worker)?.send(make(done)) {
            return None;
        }
        self.wait(&answer)
    }

    /// Blocks the control thread (never a media thread) for a worker.
    fn wait<T>(&self, answer: &Receiver<T>) -> Option<T> {
        answer.recv_timeout(self.config.worker_reply_timeout).ok()
    }
}

fn unknown(id: &ConferenceId) -> ErrorBody {
    ErrorBody::new(
        ErrorCode::UNKNOWN_CONFERENCE,
        format!("no conference {}", id.0),
    )
}

impl NodeHandler for Control {
    fn hello(&mut self) -> Hello {
        let mut hello = Hello::new(
            NodeId(self.config.node_id.clone()),
            Role::Mixer,
            Capacity {
                max_streams: self.config.max_participants,
                workers: self.workers.len() as u16,
            },
        );
        hello.media_addrs = vec![self.config.media_ip];
        hello.ranges = self.ranges.clone();
        hello.snapshots = self.conferences.export();
        hello
    }

    fn load(&mut self) -> Load {
        let packets: u64 = self
            .workers
            .iter()
            .map(|w| {
                w.published
                    .packets
                    .load(std::sync::atomic::Ordering::Relaxed)
            })
            .sum();
        Load {
            active_streams: self.participants,
            packets_per_sec: self.rate.per_sec(Instant::now(), packets),
            cpu_percent: 0,
        }
    }

    fn handle(&mut self, request: RequestBody) -> Result<ReplyBody, ErrorBody> {
        match request {
            RequestBody::ApplyConference(s) => self.apply(s),
            RequestBody::ReleaseConference { conference_id } => self.release(conference_id),
            RequestBody::GetConferenceStats { conference_id } => self.stats(conference_id),
            RequestBody::AssignRanges { .. }
            | RequestBody::ApplyCall(_)
            | RequestBody::ReleaseCall { .. }
            | RequestBody::GetStats { .. } => Err(ErrorBody::new(
                ErrorCode::UNSUPPORTED,
                "a mixer carries conferences, not calls",
            )),
        }
    }
}
