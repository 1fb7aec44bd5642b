//! One conference: participants, their jitter buffers and codecs, speaker
//! selection, the mixes, and the RTP each participant is sent.
//!
//! Each tick: every line plays one frame out of its jitter buffer (decoded,
//! or concealed, or nothing), the VAD rates it, the loudest few become the
//! speakers, and only they are brought to the conference rate and summed.
//! A speaker gets the sum less itself (N-1), encoded for it alone; everyone
//! else gets the whole sum, encoded once per codec and rate and shared (the
//! payload bytes are the same slice; only the RTP headers differ). Lines
//! that send nothing cost a jitter-buffer check per tick.
//!
//! On top of the speech: what the room plays by itself (see [`Options`]) —
//! an announcement to someone alone, music while nobody is mixed, tones
//! when people come and go — is added to what listeners hear, still
//! encoded once per group. Participants' [`Flags`] mute them (never
//! decoded, never mixed) or deafen them (sent their codec's silence, so
//! the phone's RTP timers stay happy). A room with nothing to hear stops
//! encoding: after a short hangover its listeners are re-sent one
//! silence payload per group, encoded once when the group was made.

use std::sync::Arc;
use std::time::Instant;

use media::{AnyCodec, Codec, CodecKind, Concealer, Resampler, Vad, VadConfig};
use rtp::{ReceiverStats, RtpError, RtpHeader, RtpPacket, WriteError};

use crate::jitter::{JitterBuffer, JitterStats, Pop};
use crate::kernel;
use crate::prompt::{Player, Prompt};
use crate::speakers::Selector;

#[derive(Debug, Clone, Copy)]
pub struct ConferenceConfig {
    /// Mixing rate: 8000, 16000, 32000 or 48000.
    pub rate: u32,
    /// 10, 20 or 40 ms. Participants must send packets of this duration.
    pub tick_ms: u32,
    /// How many talkers are mixed at once.
    pub max_speakers: usize,
    /// Initial jitter-buffer delay, in ticks.
    pub jitter_depth: u16,
    pub vad: VadConfig,
    /// Noise suppression (RNNoise) on every line that sends audio: tens of
    /// microseconds a frame, so for rooms that need it.
    pub denoise: bool,
    /// Level control: quiet talkers raised, loud ones lowered, towards a
    /// common speech level.
    pub level: Option<media::LevelConfig>,
}

impl Default for ConferenceConfig {
    fn default() -> Self {
        ConferenceConfig {
            rate: 16000,
            tick_ms: 20,
            max_speakers: 3,
            jitter_depth: 2,
            vad: VadConfig::default(),
            denoise: false,
            level: None,
        }
    }
}

/// One participant's stream, as negotiated.
#[derive(Debug, Clone, Copy)]
pub struct ParticipantConfig {
    pub codec: CodecKind,
    /// Payload type expected in and sent out.
    pub payload_type: u8,
    /// SSRC of the stream the mixer sends this participant.
    pub ssrc: u32,
}

/// A participant's handle; stale after removal (the slot's generation moves on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParticipantId {
    index: u32,
    generation: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("conference rate {0} Hz: 8000, 16000, 32000 or 48000 only")]
    Rate(u32),
    #[error("tick of {0} ms: 10, 20 or 40 only")]
    Tick(u32),
    #[error("codec rate {0} Hz: 8000, 16000, 32000 or 48000 only")]
    CodecRate(u32),
    #[error("at least one speaker must be mixed")]
    NoSpeakers,
    #[error("codec {0:?} is not available in this build")]
    Codec(CodecKind),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("no such participant")]
    UnknownParticipant,
    #[error("bad RTP: {0}")]
    Rtp(#[from] RtpError),
    #[error("payload type {0} is not this participant's codec")]
    PayloadType(u8),
}

/// Per-participant counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParticipantStats {
    pub jitter: JitterStats,
    /// Payloads that did not decode to one frame (wrong size for the tick).
    pub undecodable: u64,
    /// Packets of another payload type (e.g. telephone-events), not mixed.
    pub other_payload_type: u64,
    /// Ticks this participant was among the speakers.
    pub speaking_ticks: u64,
    /// Frames followed without decoding (a quiet G.722 line).
    pub tracked_frames: u64,
    /// Packets dropped undecoded because the participant was muted or the
    /// room was waiting for its moderator.
    pub muted_frames: u64,
}

/// What the brain says about one participant. All off on joining.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// Never mixed (not even decoded); still hears the room.
    pub muted: bool,
    /// Hears nothing: sent its codec's silence, not no packets, so the
    /// phone does not hang up on an RTP timeout. Still mixed if it talks.
    pub deaf: bool,
    /// Counts as the moderator for [`Options::moderator_required`].
    pub moderator: bool,
}

/// How the room behaves, beyond mixing. Prompts must be loaded (files
/// read and resampled to the conference rate) off the media thread.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// While no moderator is present nobody is mixed and everyone hears
    /// `wait_music` (or silence).
    pub moderator_required: bool,
    /// A rising two-note tone to everyone else when someone joins (after
    /// the first), a falling one when someone leaves.
    pub join_leave_tones: bool,
    /// Played once to a participant who finds itself alone.
    pub alone_prompt: Option<Arc<Prompt>>,
    /// Looped while nobody is mixed: waiting for the moderator, or alone
    /// (after the alone prompt).
    pub wait_music: Option<Arc<Prompt>>,
}

/// Counters for the whole conference.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConferenceStats {
    pub ticks: u64,
    /// Ticks with at least one talker mixed.
    pub mixed_ticks: u64,
    /// Ticks with nothing to hear on which listeners were re-sent the
    /// cached silence payload, nothing encoded.
    pub silent_ticks: u64,
    /// Ticks nobody was mixed for want of a moderator.
    pub waiting_ticks: u64,
    /// Ticks on which an announcement, music or a tone played.
    pub prompt_ticks: u64,
    pub max_speakers_seen: usize,
    /// Encoder calls: shared mixes and participants' own streams.
    pub encodes: u64,
    /// Sum of the participants' `muted_frames`, including those who left.
    pub muted_frames: u64,
    pub joins: u64,
    pub leaves: u64,
    pub tones_played: u64,
    /// Participants now, and speakers after the last tick.
    pub participants: usize,
    pub speakers: usize,
}

const RATES: [u32; 4] = [8000, 16000, 32000, 48000];

/// A line quiet this long, and not mixed, is followed without decoding
/// where its codec allows (G.722: ~120k instructions a frame decoded,
/// ~3k followed).
const TRACK_AFTER_MS: u32 = 1000;
/// G.722 low-band scale factor at which a followed line is decoded again:
/// -56 dBFS hiss stays near 260, speech and tones at -35 dBFS exceed it.
const TRACK_LIMIT: i32 = 1024;
/// Quiet this long, a room stops encoding and re-sends cached silence;
/// meanwhile the encoders (G.722's predictors, the resamplers' history)
/// settle to silence themselves, so the switch is inaudible.
const SILENCE_HANGOVER_MS: u32 = 200;
/// Silence frames a G.722 encoder follows when a room falls silent:
/// decoders fed the stock silence settle within ten.
const SILENCE_SETTLE: u8 = 10;
/// Frames of silence an Opus encoder is run for before its payload is
/// kept as the group's silence, so it has settled.
const SILENCE_WARMUP: usize = 10;

/// What a participant is sent this tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    /// The group's shared mix (or its cached silence).
    Shared,
    /// Its own encoding: its N-1 mix, or a mix without the current tone.
    Own,
    /// Deaf: the group's silence payload.
    Silence,
}

/// Which conference-rate sum a stream is made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sum {
    /// Speech only.
    Speech,
    /// Speech with the announcement or music.
    Room,
    /// Room with the tone.
    Full,
}

struct Participant {
    generation: u32,
    cfg: ParticipantConfig,
    /// Decode state for what it sends us; encode state for its N-1 stream.
    codec: AnyCodec,
    jitter: JitterBuffer,
    plc: Concealer,
    /// Optional clean-up of what it sends, after decoding.
    denoise: Option<Box<media::Denoiser>>,
    level: Option<media::LevelControl>,
    vad: Vad,
    /// Codec rate → conference rate, and back; None when they match.
    up: Option<Resampler>,
    down: Option<Resampler>,
    /// This tick's frame at the codec rate.
    pcm: Box<[i16]>,
    has_audio: bool,
    /// Followed without decoding (see TRACK_AFTER_MS), and for how many
    /// ticks it has been quiet.
    tracking: bool,
    quiet_ticks: u16,
    /// RFC 3550 receive statistics of the stream it sends (its SSRC; a
    /// change of SSRC is a new stream), for RTCP reports and quality.
    rx: Option<ReceiverStats>,
    group: usize,
    flags: Flags,
    speaker: bool,
    out: Out,
    /// Whether the last tick's packet was its own payload rather than the shared one.
    own_stream: bool,
    /// Its own N-1 payload (used while it speaks).
    payload: Box<[u8]>,
    payload_len: usize,
    /// RTP header fields of the packet produced by the last tick.
    seq: u16,
    ts: u32,
    ts_step: u32,
    marker: bool,
    /// Whether a tick has produced its first packet yet.
    sent: bool,
    stats: ParticipantStats,
}

/// Everyone on one codec and rate who is not speaking shares this.
struct Group {
    kind: CodecKind,
    codec: AnyCodec,
    down: Option<Resampler>,
    pcm: Box<[i16]>,
    payload: Box<[u8]>,
    payload_len: usize,
    /// Listeners on the shared stream this tick.
    members: usize,
    /// The codec's silence, made once, for deaf members and silent rooms.
    silence: Box<[u8]>,
    silence_len: usize,
    /// Whether the last tick sent `silence` instead of `payload`.
    cached: bool,
    /// Silence frames the encoder has followed since.
    settle: u8,
}

pub struct Conference {
    cfg: ConferenceConfig,
    frame: usize,
    slots: Vec<Option<Participant>>,
    generations: Vec<u32>,
    free: Vec<usize>,
    groups: Vec<Group>,
    selector: Selector,
    /// Conference-rate scratch: the sum, each speaker's frame, one output.
    acc: Box<[i32]>,
    speaker_pcm: Box<[i16]>,
    mix: Box<[i16]>,
    /// Speech plus room audio (`Sum::Room`), then plus the tone (`Sum::Full`).
    sums: Box<[i32]>,
    /// What listeners heard last tick, at the conference rate.
    listen: Box<[i16]>,
    ticks: u64,
    opts: Options,
    moderators: usize,
    join_tone: Option<Arc<Prompt>>,
    leave_tone: Option<Arc<Prompt>>,
    tone: Option<Player>,
    /// Who does not hear the current tone (the joiner its own join tone).
    tone_exempt: Option<ParticipantId>,
    alone: Option<Player>,
    music: Option<Player>,
    /// Consecutive ticks with nothing to hear.
    quiet_ticks: u32,
    prev_speakers: Vec<usize>,
    talk: Vec<(ParticipantId, bool)>,
    stats: ConferenceStats,
}

/// One packet to send, produced by [`Conference::tick`].
#[derive(Debug, Clone, Copy)]
pub struct Output<'a> {
    pub participant: ParticipantId,
    pub payload_type: u8,
    pub sequence_number: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub marker: bool,
    /// For listeners, the one shared encoding of the mix; for the deaf and
    /// in a silent room, the group's one silence frame.
    pub payload: &'a [u8],
    /// True when `payload` is shared with others (the listeners' mix or
    /// the group's silence), false for the participant's own stream.
    pub shared: bool,
}

impl Output<'_> {
    /// Writes the whole RTP packet; returns its length.
    pub fn write(&self, buf: &mut [u8]) -> Result<usize, WriteError> {
        let header = RtpHeader {
            marker: self.marker,
            payload_type: self.payload_type,
            sequence_number: self.sequence_number,
            timestamp: self.timestamp,
            ssrc: self.ssrc,
            csrcs: &[],
            extension: None,
        };
        let h = header.write(buf)?;
        let end = h + self.payload.len();
        if buf.len() < end {
            return Err(WriteError::BufferTooSmall { needed: end });
        }
        buf[h..end].copy_from_slice(self.payload);
        Ok(end)
    }
}

/// Spreads an SSRC into well-mixed bits (SplitMix64's finaliser), for
/// start values of sequence numbers and timestamps that differ per stream.
fn spread(x: u32) -> u64 {
    let mut z = (x as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Conference {
    pub fn new(cfg: ConferenceConfig) -> Result<Self, ConfigError> {
        if !RATES.contains(&cfg.rate) {
            return Err(ConfigError::Rate(cfg.rate));
        }
        if ![10, 20, 40].contains(&cfg.tick_ms) {
            return Err(ConfigError::Tick(cfg.tick_ms));
        }
        if cfg.max_speakers == 0 {
            return Err(ConfigError::NoSpeakers);
        }
        let frame = (cfg.rate * cfg.tick_ms / 1000) as usize;
        Ok(Conference {
            frame,
            slots: Vec::new(),
            generations: Vec::new(),
            free: Vec::new(),
            groups: Vec::new(),
            selector: Selector::new(cfg.max_speakers),
            acc: vec![0; frame].into_boxed_slice(),
            speaker_pcm: vec![0; frame * cfg.max_speakers].into_boxed_slice(),
            mix: vec![0; frame].into_boxed_slice(),
            sums: vec![0; 2 * frame].into_boxed_slice(),
            listen: vec![0; frame].into_boxed_slice(),
            ticks: 0,
            opts: Options::default(),
            moderators: 0,
            join_tone: None,
            leave_tone: None,
            tone: None,
            tone_exempt: None,
            alone: None,
            music: None,
            quiet_ticks: 0,
            prev_speakers: Vec::with_capacity(cfg.max_speakers),
            // At most every speaker stops and as many start in one tick.
            talk: Vec::with_capacity(2 * cfg.max_speakers),
            stats: ConferenceStats::default(),
            cfg,
        })
    }

    /// Samples per tick at the conference rate.
    pub fn frame_len(&self) -> usize {
        self.frame
    }

    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// Sets how the room behaves. A prompt not at the conference rate is
    /// resampled here, on the caller's thread (better done when loading);
    /// one that cannot be is dropped.
    pub fn set_options(&mut self, mut opts: Options) {
        let rate = self.cfg.rate;
        for prompt in [&mut opts.alone_prompt, &mut opts.wait_music] {
            if let Some(p) = prompt.as_ref().filter(|p| p.rate() != rate) {
                *prompt = Prompt::from_pcm(p.rate(), p.samples(), rate)
                    .ok()
                    .map(Arc::new);
            }
        }
        if opts.join_leave_tones && self.join_tone.is_none() {
            self.join_tone = Some(Arc::new(Prompt::join_tone(rate)));
            self.leave_tone = Some(Arc::new(Prompt::leave_tone(rate)));
        }
        if !opts.join_leave_tones {
            self.tone = None;
            self.tone_exempt = None;
        }
        let same = |a: &Option<Arc<Prompt>>, b: &Option<Arc<Prompt>>| match (a, b) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if !same(&opts.wait_music, &self.opts.wait_music) {
            self.music = None;
        }
        if opts.alone_prompt.is_none() {
            self.alone = None;
        }
        self.opts = opts;
    }

    pub fn flags(&self, id: ParticipantId) -> Option<Flags> {
        self.get(id).map(|p| p.flags)
    }

    /// Sets a participant's flags; false for an unknown participant.
    pub fn set_flags(&mut self, id: ParticipantId, flags: Flags) -> bool {
        let Some(p) = self.get_mut(id) else {
            return false;
        };
        p.flags = flags;
        self.count_moderators();
        true
    }

    fn count_moderators(&mut self) {
        self.moderators = self
            .slots
            .iter()
            .flatten()
            .filter(|p| p.flags.moderator)
            .count();
    }

    /// Whether anyone is mixed: not while a required moderator is missing.
    fn mixing(&self) -> bool {
        !self.opts.moderator_required || self.moderators > 0
    }

    pub fn conference_stats(&self) -> ConferenceStats {
        ConferenceStats {
            participants: self.len(),
            speakers: self.selector.speakers().len(),
            ..self.stats
        }
    }

    /// Who started (true) or stopped (false) being mixed on the last tick.
    /// A participant removed while talking gets no stop: it is gone.
    pub fn talk_changes(&self) -> impl Iterator<Item = (ParticipantId, bool)> + '_ {
        self.talk.iter().copied()
    }

    /// What listeners heard on the last tick, at the conference rate: every
    /// talker, announcements, music and tones. Silence in a silent room
    /// (and before the first tick). For recording.
    pub fn mix_frame(&self) -> &[i16] {
        &self.listen
    }

    /// A participant came: a tone for the others, the alone prompt for a
    /// first one.
    fn joined(&mut self, id: ParticipantId) {
        self.stats.joins += 1;
        match self.len() {
            1 => {
                self.alone = self.opts.alone_prompt.clone().map(|p| Player::once(p, 0));
            }
            _ => {
                // Someone came: no longer alone, so the prompt fades out.
                if let Some(a) = self.alone.as_mut() {
                    a.stop();
                }
                if self.opts.join_leave_tones {
                    self.play_tone(self.join_tone.clone());
                    self.tone_exempt = Some(id);
                }
            }
        }
    }

    /// A participant went: a tone for the rest; the alone prompt, after
    /// that tone, for a last one.
    fn left(&mut self) {
        self.stats.leaves += 1;
        if self.is_empty() {
            self.tone = None;
            self.alone = None;
            self.music = None;
            return;
        }
        if self.opts.join_leave_tones {
            self.play_tone(self.leave_tone.clone());
        }
        if self.len() == 1 {
            let after = self.tone.as_ref().map_or(0, Player::remaining);
            self.alone = self
                .opts
                .alone_prompt
                .clone()
                .map(|p| Player::once(p, after));
        }
    }

    fn play_tone(&mut self, tone: Option<Arc<Prompt>>) {
        self.tone = tone.map(|t| Player::once(t, 0));
        self.tone_exempt = None;
        self.stats.tones_played += 1;
    }

    /// Ticks run so far.
    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    pub fn config(&self) -> &ConferenceConfig {
        &self.cfg
    }

    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn codec_frame(&self, kind: CodecKind) -> usize {
        (kind.rate() * self.cfg.tick_ms / 1000) as usize
    }

    fn resamplers(&self, rate: u32) -> (Option<Resampler>, Option<Resampler>) {
        if rate == self.cfg.rate {
            return (None, None);
        }
        let n = (rate * self.cfg.tick_ms / 1000) as usize;
        // Both rates are in RATES and ticks are whole milliseconds, so each
        // frame holds whole resampling periods.
        let up = Resampler::new(rate, self.cfg.rate, n).ok();
        let down = Resampler::new(self.cfg.rate, rate, self.frame).ok();
        (up, down)
    }

    fn group_for(&mut self, kind: CodecKind) -> Result<usize, ConfigError> {
        if let Some(g) = self.groups.iter().position(|g| g.kind == kind) {
            return Ok(g);
        }
        let n = self.codec_frame(kind);
        let (_, down) = self.resamplers(kind.rate());
        let new_codec = || AnyCodec::new(kind).map_err(|_| ConfigError::Codec(kind));
        let mut silence = vec![0; kind.payload_len(n)].into_boxed_slice();
        let silence_len = match kind.silence_payload(n, &mut silence) {
            Some(len) => len,
            None => {
                // Opus: what its encoder makes of silence once settled.
                let mut enc = new_codec()?;
                let zeros = vec![0i16; n];
                let mut len = 0;
                for _ in 0..SILENCE_WARMUP {
                    len = enc.encode(&zeros, &mut silence).unwrap_or(0);
                }
                len
            }
        };
        self.groups.push(Group {
            kind,
            codec: new_codec()?,
            down,
            pcm: vec![0; n].into_boxed_slice(),
            payload: vec![0; kind.payload_len(n)].into_boxed_slice(),
            payload_len: 0,
            members: 0,
            silence,
            silence_len,
            cached: false,
            settle: 0,
        });
        Ok(self.groups.len() - 1)
    }

    pub fn add_participant(&mut self, pc: ParticipantConfig) -> Result<ParticipantId, ConfigError> {
        let rate = pc.codec.rate();
        if !RATES.contains(&rate) {
            return Err(ConfigError::CodecRate(rate));
        }
        let n = self.codec_frame(pc.codec);
        let codec = AnyCodec::new(pc.codec).map_err(|_| ConfigError::Codec(pc.codec))?;
        let (up, down) = self.resamplers(rate);
        let group = self.group_for(pc.codec)?;
        let seed = spread(pc.ssrc);
        let payload_max = pc.codec.payload_len(n);
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(None);
                self.generations.push(0);
                self.slots.len() - 1
            }
        };
        let generation = self.generations[index];
        self.slots[index] = Some(Participant {
            generation,
            cfg: pc,
            codec,
            jitter: JitterBuffer::new(self.cfg.jitter_depth, payload_max),
            plc: Concealer::new(rate),
            denoise: if self.cfg.denoise {
                media::Denoiser::new(rate, n).ok().map(Box::new)
            } else {
                None
            },
            level: self.cfg.level.map(media::LevelControl::new),
            vad: Vad::new(self.cfg.vad),
            up,
            down,
            pcm: vec![0; n].into_boxed_slice(),
            has_audio: false,
            tracking: false,
            quiet_ticks: 0,
            rx: None,
            group,
            flags: Flags::default(),
            speaker: false,
            out: Out::Shared,
            own_stream: false,
            payload: vec![0; payload_max].into_boxed_slice(),
            payload_len: 0,
            // Random-looking starts (RFC 3550 §5.1), derived from the SSRC
            // the caller chose, so runs are reproducible.
            seq: (seed >> 32) as u16,
            ts: seed as u32,
            ts_step: (n as u64 * pc.codec.rtp_clock_rate() as u64 / rate as u64) as u32,
            marker: true,
            sent: false,
            stats: ParticipantStats::default(),
        });
        let id = ParticipantId {
            index: index as u32,
            generation,
        };
        self.joined(id);
        Ok(id)
    }

    fn get_mut(&mut self, id: ParticipantId) -> Option<&mut Participant> {
        match self.slots.get_mut(id.index as usize) {
            Some(Some(p)) if p.generation == id.generation => Some(p),
            _ => None,
        }
    }

    fn get(&self, id: ParticipantId) -> Option<&Participant> {
        match self.slots.get(id.index as usize) {
            Some(Some(p)) if p.generation == id.generation => Some(p),
            _ => None,
        }
    }

    pub fn remove_participant(&mut self, id: ParticipantId) -> bool {
        if self.get(id).is_none() {
            return false;
        }
        let i = id.index as usize;
        self.slots[i] = None;
        self.generations[i] = self.generations[i].wrapping_add(1);
        self.free.push(i);
        self.selector.remove(i);
        self.count_moderators();
        self.left();
        true
    }

    pub fn stats(&self, id: ParticipantId) -> Option<ParticipantStats> {
        self.get(id).map(|p| ParticipantStats {
            jitter: *p.jitter.stats(),
            ..p.stats
        })
    }

    /// RFC 3550 statistics of what the participant sends (None before its
    /// first packet): loss, interarrival jitter, RTCP report blocks.
    pub fn receiver_stats(&mut self, id: ParticipantId) -> Option<&mut ReceiverStats> {
        self.get_mut(id).and_then(|p| p.rx.as_mut())
    }

    /// Whether the participant's audio is being mixed now.
    pub fn is_speaking(&self, id: ParticipantId) -> bool {
        self.get(id).is_some_and(|p| p.speaker)
    }

    /// The current speakers.
    pub fn speakers(&self) -> impl Iterator<Item = ParticipantId> + '_ {
        self.selector.speakers().iter().filter_map(|&i| {
            self.slots[i].as_ref().map(|p| ParticipantId {
                index: i as u32,
                generation: p.generation,
            })
        })
    }

    /// Takes one RTP packet from a participant. Late, duplicate and other
    /// payload-type packets are counted, not errors.
    pub fn push_rtp(
        &mut self,
        id: ParticipantId,
        packet: &[u8],
        now: Instant,
    ) -> Result<(), PushError> {
        let p = self.get_mut(id).ok_or(PushError::UnknownParticipant)?;
        let pkt = RtpPacket::parse(packet)?;
        if pkt.payload_type() != p.cfg.payload_type {
            p.stats.other_payload_type += 1;
            return Ok(());
        }
        if p.rx.as_ref().map(|r| r.ssrc()) != Some(pkt.ssrc()) {
            // A new source (a re-INVITE, a failover): start its stream afresh.
            if p.rx.is_some() {
                p.jitter.reset();
            }
            p.rx = Some(ReceiverStats::new(pkt.ssrc(), p.cfg.codec.rtp_clock_rate()));
        }
        if let Some(rx) = p.rx.as_mut() {
            rx.on_packet_at(pkt.sequence_number(), pkt.timestamp(), now);
        }
        p.jitter.push(pkt.sequence_number(), pkt.payload());
        Ok(())
    }

    /// Advances one tick: mixes, encodes, and returns one packet per
    /// participant. Call every `tick_ms`. Nothing here depends on `now`
    /// (the play-out clock is the tick itself, prompts included).
    pub fn tick(&mut self, _now: Instant) -> Outputs<'_> {
        self.ticks += 1;
        self.stats.ticks += 1;
        let frame = self.frame;
        let track_after = (TRACK_AFTER_MS / self.cfg.tick_ms) as u16;
        let mixing = self.mixing();
        if !mixing {
            self.stats.waiting_ticks += 1;
        }

        // 1. Play out and rate every line.
        for slot in self.slots.iter_mut() {
            let Some(p) = slot.as_mut() else { continue };
            if p.flags.muted || !mixing {
                self.stats.muted_frames += unmixed(p);
                continue;
            }
            p.has_audio = match p.jitter.pop() {
                // A quiet line that can be followed without decoding stays
                // undecoded until its level rises.
                Pop::Frame(bytes)
                    if p.tracking && p.codec.track(bytes, TRACK_LIMIT) == Some(true) =>
                {
                    p.stats.tracked_frames += 1;
                    false
                }
                Pop::Frame(bytes) => {
                    p.tracking = false;
                    match p.codec.decode(bytes, &mut p.pcm) {
                        Ok(n) if n == p.pcm.len() => {
                            p.plc.good_frame(&mut p.pcm);
                            true
                        }
                        _ => {
                            p.stats.undecodable += 1;
                            conceal(p)
                        }
                    }
                }
                Pop::Lost | Pop::Empty => conceal(p),
            };
            if p.has_audio {
                // Noise out before the VAD judges the line; the level is
                // set after it, on what it called speech, so a levelled
                // line is ranked by what it really sent.
                if let Some(d) = p.denoise.as_mut() {
                    d.process(&mut p.pcm);
                }
                p.vad.process(&p.pcm);
                if let Some(l) = p.level.as_mut() {
                    l.process(&mut p.pcm, p.vad.is_active());
                }
            } else {
                p.vad.silent();
            }
            // Long quiet and not mixed: switch to following it cheaply.
            if p.vad.is_active() || p.speaker {
                p.quiet_ticks = 0;
            } else if !p.tracking && p.codec.can_track() {
                p.quiet_ticks = p.quiet_ticks.saturating_add(1);
                if p.quiet_ticks >= track_after {
                    p.tracking = true;
                    p.plc.reset();
                }
            }
        }

        // 2. Pick the speakers (muted and waiting lines have no audio, so
        //    none of them is active).
        self.prev_speakers.clear();
        self.prev_speakers
            .extend_from_slice(self.selector.speakers());
        let slots = &self.slots;
        let level_if_active = |i: usize| match &slots[i] {
            Some(p) if p.vad.is_active() && p.has_audio => Some(p.vad.level()),
            _ => None,
        };
        let active = slots
            .iter()
            .enumerate()
            .filter_map(|(i, _)| level_if_active(i).map(|l| (i, l)));
        self.selector.update(active, level_if_active);
        let n_speakers = self.selector.speakers().len();
        if n_speakers > 0 {
            self.stats.mixed_ticks += 1;
        }
        self.stats.max_speakers_seen = self.stats.max_speakers_seen.max(n_speakers);

        // 3. Bring the speakers to the conference rate and sum them.
        self.acc.fill(0);
        for (k, &i) in self.selector.speakers().iter().enumerate() {
            let Some(p) = self.slots[i].as_mut() else {
                continue;
            };
            let own = &mut self.speaker_pcm[k * frame..(k + 1) * frame];
            if !p.speaker {
                // Joining the mix: no stale resampler history from its last turn.
                if let Some(r) = p.up.as_mut() {
                    r.reset();
                }
            }
            match p.up.as_mut() {
                Some(r) => {
                    r.process(&p.pcm, own);
                }
                None => own.copy_from_slice(&p.pcm),
            }
            if !p.speaker {
                // Entering the mix mid-word must not click: fade in over
                // the first frame.
                kernel::fade_in(own);
            }
            kernel::accumulate(&mut self.acc, own);
        }
        for p in self.slots.iter_mut().flatten() {
            p.speaker = false;
        }

        // 4. What the room plays: an announcement or music for everyone,
        //    a tone for all but whoever it is about.
        let n = self.len();
        let want_music = n > 0 && (!mixing || (n == 1 && self.alone.is_none()));
        match (&self.opts.wait_music, want_music, self.music.as_mut()) {
            (Some(m), true, None) => self.music = Some(Player::looped(m.clone())),
            (_, false, Some(m)) => m.stop(),
            _ => {}
        }
        let (room, full) = self.sums.split_at_mut(frame);
        let mut room_sum = Sum::Speech;
        if let Some(a) = self.alone.as_mut() {
            room.copy_from_slice(&self.acc);
            a.mix_into(room);
            room_sum = Sum::Room;
            if a.is_done() {
                self.alone = None;
            }
        } else if let Some(m) = self.music.as_mut() {
            room.copy_from_slice(&self.acc);
            m.mix_into(room);
            room_sum = Sum::Room;
            if m.is_done() {
                self.music = None;
            }
        }
        let mut full_sum = room_sum;
        let tone_exempt = self.tone.as_ref().and(self.tone_exempt);
        if let Some(t) = self.tone.as_mut() {
            full.copy_from_slice(if room_sum == Sum::Room {
                &*room
            } else {
                &self.acc[..]
            });
            t.mix_into(full);
            full_sum = Sum::Full;
            if t.is_done() {
                self.tone = None;
                self.tone_exempt = None;
            }
        }
        if full_sum != Sum::Speech {
            self.stats.prompt_ticks += 1;
        }
        let exempt = |i: usize, p: &Participant| {
            tone_exempt.is_some_and(|e| e.index as usize == i && e.generation == p.generation)
        };

        // 5. Speakers: N-1, encoded for each.
        for (k, &i) in self.selector.speakers().iter().enumerate() {
            let Some(p) = self.slots[i].as_mut() else {
                continue;
            };
            p.speaker = true;
            p.stats.speaking_ticks += 1;
            if p.flags.deaf {
                p.out = Out::Silence;
                continue;
            }
            let sum = if exempt(i, p) { room_sum } else { full_sum };
            let own = &self.speaker_pcm[k * frame..(k + 1) * frame];
            kernel::minus_own(&mut self.mix, pick(&self.acc, &self.sums, sum), own);
            encode_own(p, &self.groups[p.group], &self.mix);
            self.stats.encodes += 1;
        }

        // 6. Everyone else: the shared stream, or its own while a tone is
        //    not for it, or silence when deaf. And every outgoing stream
        //    moves on by one packet.
        for g in self.groups.iter_mut() {
            g.members = 0;
        }
        for (i, slot) in self.slots.iter_mut().enumerate() {
            let Some(p) = slot.as_mut() else { continue };
            if !p.speaker {
                p.out = if p.flags.deaf {
                    Out::Silence
                } else if exempt(i, p) {
                    kernel::saturate(&mut self.mix, pick(&self.acc, &self.sums, room_sum));
                    encode_own(p, &self.groups[p.group], &self.mix);
                    self.stats.encodes += 1;
                    Out::Own
                } else {
                    self.groups[p.group].members += 1;
                    Out::Shared
                };
            }
            p.own_stream = p.out == Out::Own;
            if p.sent {
                p.seq = p.seq.wrapping_add(1);
                p.ts = p.ts.wrapping_add(p.ts_step);
                p.marker = false;
            }
            p.sent = true;
        }

        // 7. The shared mixes: one encoding per codec and rate, unless the
        //    room has been silent a while; then the cached silence.
        if n_speakers > 0 || full_sum != Sum::Speech {
            self.quiet_ticks = 0;
        } else {
            self.quiet_ticks = self.quiet_ticks.saturating_add(1);
        }
        let hangover = SILENCE_HANGOVER_MS / self.cfg.tick_ms;
        if self.quiet_ticks > hangover {
            if self.quiet_ticks == hangover + 1 {
                self.listen.fill(0);
            }
            for g in self.groups.iter_mut() {
                if !g.cached {
                    g.cached = true;
                    g.settle = 0;
                }
                // Phones decode the silence payload, not what the encoder
                // would have made: the encoder follows it, a frame a tick
                // until both have settled, so it resumes in step.
                if g.settle < SILENCE_SETTLE {
                    g.codec.encoder_follow(&g.silence[..g.silence_len]);
                    g.settle += 1;
                }
            }
            self.stats.silent_ticks += 1;
        } else {
            kernel::saturate(&mut self.listen, pick(&self.acc, &self.sums, full_sum));
            for g in self.groups.iter_mut().filter(|g| g.members > 0) {
                if g.cached {
                    // The resampler's history is the hangover's silence,
                    // but start it clean.
                    if let Some(r) = g.down.as_mut() {
                        r.reset();
                    }
                    g.cached = false;
                }
                g.payload_len = match g.down.as_mut() {
                    Some(r) => {
                        r.process(&self.listen, &mut g.pcm);
                        g.codec.encode(&g.pcm, &mut g.payload)
                    }
                    None => g.codec.encode(&self.listen, &mut g.payload),
                }
                .unwrap_or(0);
                self.stats.encodes += 1;
            }
        }

        // 8. Who started and stopped talking.
        self.talk.clear();
        let id = |i: usize, slots: &[Option<Participant>]| {
            slots[i].as_ref().map(|p| ParticipantId {
                index: i as u32,
                generation: p.generation,
            })
        };
        for &i in &self.prev_speakers {
            if !self.selector.is_speaker(i) {
                self.talk.extend(id(i, &self.slots).map(|pid| (pid, false)));
            }
        }
        for &i in self.selector.speakers() {
            if !self.prev_speakers.contains(&i) {
                self.talk.extend(id(i, &self.slots).map(|pid| (pid, true)));
            }
        }

        Outputs {
            conf: self,
            next: 0,
        }
    }
}

/// A muted line, or any line while the room waits for its moderator: its
/// packets are dropped undecoded (a G.722 line's scale factors still
/// follow them, cheaply, so unmuting starts close to in step). Returns
/// the packets dropped.
fn unmixed(p: &mut Participant) -> u64 {
    if p.has_audio || p.plc.is_concealing() {
        // Nothing stale to conceal with after unmuting.
        p.plc.reset();
    }
    p.has_audio = false;
    p.quiet_ticks = 0;
    p.vad.silent();
    match p.jitter.pop() {
        Pop::Frame(bytes) => {
            if p.codec.track(bytes, i32::MAX).is_some() {
                p.tracking = true;
            }
            p.stats.muted_frames += 1;
            1
        }
        Pop::Lost | Pop::Empty => 0,
    }
}

/// One of the conference-rate sums.
fn pick<'a>(acc: &'a [i32], sums: &'a [i32], sum: Sum) -> &'a [i32] {
    let frame = acc.len();
    match sum {
        Sum::Speech => acc,
        Sum::Room => &sums[..frame],
        Sum::Full => &sums[frame..],
    }
}

/// Encodes `mix` (conference rate) into the participant's own stream.
fn encode_own(p: &mut Participant, group: &Group, mix: &[i16]) {
    if !p.own_stream {
        // Leaving the shared stream: its phone's decoder has followed the
        // shared encoder, so its own encoder carries on from there
        // (seamless for G.722; nothing to copy for G.711).
        p.codec.copy_encoder_from(&group.codec);
        if let Some(r) = p.down.as_mut() {
            r.reset();
        }
        p.own_stream = true;
    }
    p.payload_len = match p.down.as_mut() {
        Some(r) => {
            // p.pcm (its input frame) is done with: reuse it.
            r.process(mix, &mut p.pcm);
            p.codec.encode(&p.pcm, &mut p.payload)
        }
        None => p.codec.encode(mix, &mut p.payload),
    }
    .unwrap_or(0);
    p.out = Out::Own;
}

/// Conceals a missing frame while the concealment still has something to
/// say; afterwards the line is silent and costs nothing more.
fn conceal(p: &mut Participant) -> bool {
    if p.plc.is_concealing() {
        p.plc.conceal(&mut p.pcm);
        true
    } else {
        false
    }
}

/// The packets of one tick, one per participant.
pub struct Outputs<'a> {
    conf: &'a Conference,
    next: usize,
}

impl<'a> Iterator for Outputs<'a> {
    type Item = Output<'a>;

    fn next(&mut self) -> Option<Output<'a>> {
        while self.next < self.conf.slots.len() {
            let i = self.next;
            self.next += 1;
            let Some(p) = self.conf.slots[i].as_ref() else {
                continue;
            };
            let g = &self.conf.groups[p.group];
            let (payload, shared) = match p.out {
                Out::Own => (&p.payload[..p.payload_len], false),
                Out::Shared if !g.cached => (&g.payload[..g.payload_len], true),
                Out::Shared | Out::Silence => (&g.silence[..g.silence_len], true),
            };
            return Some(Output {
                participant: ParticipantId {
                    index: i as u32,
                    generation: p.generation,
                },
                payload_type: p.cfg.payload_type,
                sequence_number: p.seq,
                timestamp: p.ts,
                ssrc: p.cfg.ssrc,
                marker: p.marker,
                payload,
                shared,
            });
        }
        None
    }
}
