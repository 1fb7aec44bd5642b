//! One conference as the node carries it: the brain's snapshot turned
//! into an engine [`Conference`], with who is who (the brain's participant
//! ids, the SBC endpoints), per-participant counters, and the talk events.
//! Sans-IO: packets and time in, packets (with where they go) and events
//! out.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use media::CodecKind;
use proto::message::{ErrorBody, ErrorCode, LegStats};
use proto::snapshot::{ConferenceSnapshot, Participant, PayloadType};

use crate::{
    Conference, ConferenceConfig, Flags, Options, ParticipantConfig, ParticipantId, Prompt,
    Recorder, RecordingSummary,
};

/// The codec a negotiated payload type names, if the mixer takes it.
pub fn codec_of(pt: &PayloadType) -> Option<CodecKind> {
    let name = pt.name.to_ascii_uppercase();
    Some(match (name.as_str(), pt.clock_rate) {
        ("PCMU", 8000) => CodecKind::Pcmu,
        ("PCMA", 8000) => CodecKind::Pcma,
        // RFC 3551: G.722 is clocked at 8000 though it carries 16 kHz.
        ("G722", 8000) => CodecKind::G722,
        ("L16", rate @ (8000 | 16000 | 32000 | 48000)) if pt.channels <= 1 => {
            CodecKind::L16 { rate }
        }
        ("OPUS", 48000) => CodecKind::Opus,
        _ => return None,
    })
}

/// Checks a snapshot before anything is changed; the error is the Reply.
pub fn validate(s: &ConferenceSnapshot) -> Result<(), ErrorBody> {
    let invalid = |m: String| Err(ErrorBody::new(ErrorCode::INVALID, m));
    if ![8000, 16000, 32000, 48000].contains(&s.sample_rate) {
        return invalid(format!(
            "sample rate {}: 8000, 16000, 32000 or 48000",
            s.sample_rate
        ));
    }
    if ![10, 20, 40].contains(&s.tick_ms) {
        return invalid(format!("tick of {} ms: 10, 20 or 40", s.tick_ms));
    }
    if s.max_speakers == 0 {
        return invalid("max_speakers must be at least 1".into());
    }
    for (i, p) in s.participants.iter().enumerate() {
        if s.participants[..i]
            .iter()
            .any(|q| q.participant_id == p.participant_id)
        {
            return invalid(format!("participant {} twice", p.participant_id));
        }
        if s.participants[..i]
            .iter()
            .any(|q| q.sbc_endpoint == p.sbc_endpoint)
        {
            return invalid(format!(
                "participants share the SBC endpoint {}",
                p.sbc_endpoint
            ));
        }
        let Some(kind) = codec_of(&p.payload_type) else {
            return Err(ErrorBody::new(
                ErrorCode::UNSUPPORTED,
                format!(
                    "participant {}: codec {}/{} is not mixed here",
                    p.participant_id, p.payload_type.name, p.payload_type.clock_rate
                ),
            ));
        };
        if media::AnyCodec::new(kind).is_err() {
            return Err(ErrorBody::new(
                ErrorCode::UNSUPPORTED,
                format!("codec {kind:?} is not in this build"),
            ));
        }
        if p.local.range_id != s.participants[0].local.range_id {
            return invalid("all participants of a conference use one mixer port".into());
        }
    }
    Ok(())
}

/// One participant as the node knows it.
#[derive(Debug, Clone)]
struct Member {
    spec: Participant,
    id: ParticipantId,
    stats: LegStats,
}

/// A talk event: the brain's participant id, and whether they now talk.
pub type TalkEvent = (u32, bool);

/// What a room needs from files, loaded off the media thread by the
/// control side: its prompts, and a recorder when one starts.
#[derive(Default)]
pub struct RoomMedia {
    pub alone_prompt: Option<Arc<Prompt>>,
    pub wait_music: Option<Arc<Prompt>>,
    pub recording: RecordingChange,
}

/// What happens to the room's recording with a snapshot.
#[derive(Default)]
pub enum RecordingChange {
    /// As it was.
    #[default]
    Keep,
    /// A new recording (any running one ends).
    Start(Recorder),
    /// No recording from now on.
    Stop,
}

pub struct Room {
    engine: Conference,
    members: Vec<Member>,
    /// Engine id → index in `members`; read for every packet in and out.
    by_id: HashMap<ParticipantId, usize, foldhash::fast::RandomState>,
    ticks_per_period: u32,
    recorder: Option<Recorder>,
}

impl Room {
    /// A room for a (validated) snapshot; `base_tick_ms` is the worker's
    /// period, which the room's tick is a multiple of.
    pub fn new(s: &ConferenceSnapshot, base_tick_ms: u32) -> Result<Room, ErrorBody> {
        let cfg = ConferenceConfig {
            rate: s.sample_rate,
            tick_ms: u32::from(s.tick_ms),
            max_speakers: usize::from(s.max_speakers),
            denoise: s.options.noise_suppression,
            level: s.options.level_control.then(media::LevelConfig::default),
            ..ConferenceConfig::default()
        };
        let engine =
            Conference::new(cfg).map_err(|e| ErrorBody::new(ErrorCode::INVALID, e.to_string()))?;
        let mut room = Room {
            engine,
            members: Vec::new(),
            by_id: HashMap::default(),
            ticks_per_period: (u32::from(s.tick_ms) / base_tick_ms.max(1)).max(1),
            recorder: None,
        };
        room.apply(s)?;
        Ok(room)
    }

    /// Takes the snapshot's options with what the control side loaded.
    /// Returns a recording that ended, to be finished off the media thread.
    pub fn set_media(&mut self, s: &ConferenceSnapshot, media: RoomMedia) -> Option<Recorder> {
        self.engine.set_options(Options {
            moderator_required: s.options.moderator_required,
            join_leave_tones: s.options.join_leave_tones,
            alone_prompt: media.alone_prompt,
            wait_music: media.wait_music,
        });
        match media.recording {
            RecordingChange::Keep => None,
            RecordingChange::Start(r) => self.recorder.replace(r),
            RecordingChange::Stop => self.recorder.take(),
        }
    }

    /// The running recording, if any (the room is going).
    pub fn take_recorder(&mut self) -> Option<Recorder> {
        self.recorder.take()
    }

    /// Whether the room's mixing settings differ from the snapshot's (then
    /// the room is rebuilt rather than changed).
    pub fn same_settings(&self, s: &ConferenceSnapshot) -> bool {
        let c = self.engine.config();
        c.rate == s.sample_rate
            && c.tick_ms == u32::from(s.tick_ms)
            && c.max_speakers == usize::from(s.max_speakers)
            && c.denoise == s.options.noise_suppression
            && c.level.is_some() == s.options.level_control
    }

    /// Brings the participants in line with the snapshot: new ones added,
    /// gone ones removed, changed streams re-added, flags taken as they are.
    /// Returns the SBC endpoints removed and added, for the worker's table.
    pub fn apply(&mut self, s: &ConferenceSnapshot) -> Result<(), ErrorBody> {
        // Gone, or changed in a way that makes it another stream.
        let mut i = 0;
        while i < self.members.len() {
            let m = &self.members[i];
            let keep = s.participants.iter().any(|p| {
                p.participant_id == m.spec.participant_id
                    && p.payload_type == m.spec.payload_type
                    && p.ssrc == m.spec.ssrc
                    && p.sbc_endpoint == m.spec.sbc_endpoint
            });
            if keep {
                i += 1;
            } else {
                let gone = self.members.swap_remove(i);
                self.engine.remove_participant(gone.id);
            }
        }
        for p in &s.participants {
            if let Some(m) = self
                .members
                .iter_mut()
                .find(|m| m.spec.participant_id == p.participant_id)
            {
                if m.spec.flags != p.flags {
                    self.engine.set_flags(m.id, flags_of(p));
                }
                m.spec.flags = p.flags;
                m.spec.local = p.local;
                continue;
            }
            let kind = codec_of(&p.payload_type)
                .ok_or_else(|| ErrorBody::new(ErrorCode::UNSUPPORTED, "codec not mixed here"))?;
            let id = self
                .engine
                .add_participant(ParticipantConfig {
                    codec: kind,
                    payload_type: p.payload_type.pt,
                    ssrc: p.ssrc,
                })
                .map_err(|e| ErrorBody::new(ErrorCode::UNSUPPORTED, e.to_string()))?;
            self.engine.set_flags(id, flags_of(p));
            self.members.push(Member {
                spec: p.clone(),
                id,
                stats: LegStats::default(),
            });
        }
        self.by_id = self
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| (m.id, i))
            .collect();
        Ok(())
    }

    /// The SBC endpoints in the room, with the brain's ids and engine ids.
    pub fn endpoints(&self) -> impl Iterator<Item = (SocketAddr, u32, ParticipantId)> + '_ {
        self.members
            .iter()
            .map(|m| (m.spec.sbc_endpoint, m.spec.participant_id, m.id))
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Whether the room ticks on the worker's `n`th period.
    pub fn due(&self, n: u64) -> bool {
        n.is_multiple_of(u64::from(self.ticks_per_period))
    }

    /// A packet from a participant's SBC endpoint.
    pub fn on_packet(&mut self, id: ParticipantId, data: &[u8], now: Instant) {
        let Some(&i) = self.by_id.get(&id) else {
            return;
        };
        let m = &mut self.members[i];
        m.stats.packets_in += 1;
        m.stats.bytes_in += data.len() as u64;
        // A muted participant's audio is dropped by the engine undecoded.
        let _ = self.engine.push_rtp(id, data, now);
    }

    /// One tick: `send` is called with each packet and where it goes, and
    /// `talk` with each change of who is mixed. A deaf participant gets its
    /// codec's silence (a phone may hang up on a silent RTP stream).
    pub fn tick(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        mut send: impl FnMut(SocketAddr, &[u8]),
        mut talk: impl FnMut(TalkEvent),
    ) {
        let Room {
            engine,
            members,
            by_id,
            recorder,
            ..
        } = self;
        for out in engine.tick(now) {
            let Some(&i) = by_id.get(&out.participant) else {
                continue;
            };
            let m = &mut members[i];
            if out.payload.is_empty() {
                continue;
            }
            if let Ok(n) = out.write(buf) {
                m.stats.packets_out += 1;
                m.stats.bytes_out += n as u64;
                send(m.spec.sbc_endpoint, &buf[..n]);
            }
        }
        for (id, talking) in engine.talk_changes() {
            if let Some(&i) = by_id.get(&id) {
                talk((members[i].spec.participant_id, talking));
            }
        }
        if let Some(r) = recorder.as_mut() {
            r.push(engine.mix_frame());
        }
    }

    /// Every participant's counters, by the brain's ids.
    pub fn stats(&mut self) -> Vec<(u32, LegStats)> {
        let mut out = Vec::with_capacity(self.members.len());
        for m in &self.members {
            let mut s = m.stats;
            if let Some(rx) = self.engine.receiver_stats(m.id) {
                s.lost = u64::try_from(rx.cumulative_lost()).unwrap_or(0);
                s.jitter_us = rx.jitter_micros() as u32;
            }
            out.push((m.spec.participant_id, s));
        }
        out
    }
}

fn flags_of(p: &Participant) -> Flags {
    Flags {
        muted: p.flags.muted,
        deaf: p.flags.deaf,
        moderator: p.flags.moderator,
    }
}

/// Finishes a recording on its own thread (closing the file may block) and
/// hands its summary to `done`.
pub fn finish_recording(r: Recorder, done: impl FnOnce(RecordingSummary) + Send + 'static) {
    let spawned = std::thread::Builder::new()
        .name("mixer-rec-done".into())
        .spawn(move || done(r.finish()));
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot finish a recording");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use media::analysis::{tone_amplitude, tone_from};
    use media::{AnyCodec, Codec};
    use proto::snapshot::{
        ConferenceId, ConferenceOptions, LocalEndpoint, ParticipantFlags, RangeId, Rtcp,
    };
    use rtp::{RtpHeader, RtpPacket};
    use std::time::Duration;

    fn pcmu() -> PayloadType {
        PayloadType {
            pt: 0,
            name: "PCMU".into(),
            clock_rate: 8000,
            channels: 1,
        }
    }

    fn participant(id: u32, port: u16) -> Participant {
        Participant {
            participant_id: id,
            local: LocalEndpoint {
                range_id: RangeId(1),
                rtp_port: 29000,
                rtcp: Rtcp::Mux,
            },
            sbc_endpoint: SocketAddr::from(([127, 0, 0, 1], port)),
            payload_type: pcmu(),
            ssrc: 1000 + id,
            flags: ParticipantFlags::default(),
        }
    }

    fn snapshot(version: u64, participants: Vec<Participant>) -> ConferenceSnapshot {
        ConferenceSnapshot {
            conference_id: ConferenceId("c".into()),
            version,
            sample_rate: 8000,
            tick_ms: 20,
            max_speakers: 3,
            options: ConferenceOptions::default(),
            participants,
        }
    }

    /// A 20 ms PCMU packet of a tone.
    fn packet(seq: u16, freq: f64) -> Vec<u8> {
        let pcm = tone_from(8000, freq, 8000.0, seq as usize * 160, 160);
        let mut payload = vec![0u8; 160];
        let mut enc = AnyCodec::new(CodecKind::Pcmu).expect("pcmu");
        let n = enc.encode(&pcm, &mut payload).expect("encode");
        let mut buf = vec![0u8; 12 + n];
        let h = RtpHeader {
            marker: false,
            payload_type: 0,
            sequence_number: seq,
            timestamp: u32::from(seq) * 160,
            ssrc: 77 + freq as u32,
            csrcs: &[],
            extension: None,
        };
        let len = h.write(&mut buf).expect("header");
        buf[len..len + n].copy_from_slice(&payload[..n]);
        buf
    }

    /// Runs the room with participant i sending `tones[i]` for ticks
    /// `from..to`; what each endpoint heard, decoded.
    fn run(room: &mut Room, tones: &[f64], from: u16, to: u16) -> HashMap<SocketAddr, Vec<i16>> {
        let mut heard: HashMap<SocketAddr, Vec<i16>> = HashMap::new();
        let ids: Vec<ParticipantId> = room.endpoints().map(|(_, _, id)| id).collect();
        let start = Instant::now();
        let mut buf = [0u8; 2048];
        let mut dec = AnyCodec::new(CodecKind::Pcmu).expect("pcmu");
        for seq in from..to {
            let now = start + Duration::from_millis(20 * u64::from(seq));
            for (id, &f) in ids.iter().zip(tones) {
                room.on_packet(*id, &packet(seq, f), now);
            }
            room.tick(
                now,
                &mut buf,
                |to, bytes| {
                    let p = RtpPacket::parse(bytes).expect("rtp");
                    let mut pcm = vec![0i16; 160];
                    let n = dec.decode(p.payload(), &mut pcm).expect("decode");
                    heard.entry(to).or_default().extend_from_slice(&pcm[..n]);
                },
                |_| {},
            );
        }
        heard
    }

    #[test]
    fn each_hears_the_others_and_a_muted_one_is_not_heard() {
        let mut ps = vec![
            participant(1, 20000),
            participant(2, 20002),
            participant(3, 20004),
        ];
        let mut room = Room::new(&snapshot(1, ps.clone()), 20).expect("room");
        let tones = [440.0, 1000.0, 1600.0];
        let heard = run(&mut room, &tones, 0, 60);
        for (i, p) in ps.iter().enumerate() {
            let h = &heard[&p.sbc_endpoint];
            let tail = &h[h.len() - 1600..];
            for (j, &f) in tones.iter().enumerate() {
                let a = tone_amplitude(tail, 8000, f);
                if i == j {
                    assert!(a < 100.0, "{} hears itself at {a}", p.participant_id);
                } else {
                    assert!(a > 3000.0, "{} hears {f} Hz at only {a}", p.participant_id);
                }
            }
        }
        // Mute 2 (1000 Hz): the others stop hearing it.
        ps[1].flags.muted = true;
        room.apply(&snapshot(2, ps.clone())).expect("apply");
        let heard = run(&mut room, &tones, 60, 120);
        let h = &heard[&ps[0].sbc_endpoint];
        let tail = &h[h.len() - 1600..];
        assert!(
            tone_amplitude(tail, 8000, 1000.0) < 100.0,
            "muted one still heard"
        );
        assert!(tone_amplitude(tail, 8000, 1600.0) > 3000.0);
        let stats = room.stats();
        let two = stats.iter().find(|(id, _)| *id == 2).expect("2").1;
        assert_eq!(two.packets_in, 120, "a muted line is still counted");
    }

    #[test]
    fn deaf_gets_silence_and_removed_ones_go() {
        let mut ps = vec![participant(1, 20000), participant(2, 20002)];
        ps[1].flags.deaf = true;
        let mut room = Room::new(&snapshot(1, ps.clone()), 20).expect("room");
        let heard = run(&mut room, &[440.0, 1000.0], 0, 30);
        let deaf = &heard[&ps[1].sbc_endpoint];
        assert!(
            tone_amplitude(&deaf[deaf.len() - 800..], 8000, 440.0) < 100.0,
            "deaf is sent silence, not the room"
        );
        assert!(
            tone_amplitude(&heard[&ps[0].sbc_endpoint], 8000, 1000.0) > 1000.0,
            "the other hears the deaf one"
        );
        room.apply(&snapshot(2, vec![ps[0].clone()]))
            .expect("apply");
        assert_eq!(room.len(), 1);
        assert_eq!(room.endpoints().count(), 1);
    }

    #[test]
    fn talk_events_follow_the_speakers() {
        let ps = vec![participant(1, 20000), participant(2, 20002)];
        let mut room = Room::new(&snapshot(1, ps), 20).expect("room");
        let ids: Vec<ParticipantId> = room.endpoints().map(|(_, _, id)| id).collect();
        let mut events = Vec::new();
        let start = Instant::now();
        let mut buf = [0u8; 2048];
        for seq in 0..40u16 {
            let now = start + Duration::from_millis(20 * u64::from(seq));
            // Only participant 1 talks, for the first 20 ticks.
            if seq < 20 {
                room.on_packet(ids[0], &packet(seq, 440.0), now);
            }
            room.tick(now, &mut buf, |_, _| {}, |e| events.push(e));
        }
        assert_eq!(events.first(), Some(&(1, true)), "{events:?}");
        assert!(events.contains(&(1, false)), "{events:?}");
        assert!(!events.iter().any(|(id, _)| *id == 2), "{events:?}");
    }

    #[test]
    fn bad_snapshots_are_refused_with_a_reason() {
        let mut s = snapshot(1, vec![participant(1, 20000)]);
        s.sample_rate = 11025;
        assert_eq!(validate(&s).map_err(|e| e.code), Err(ErrorCode::INVALID));
        let mut s = snapshot(1, vec![participant(1, 20000), participant(2, 20000)]);
        assert!(validate(&s).is_err(), "shared endpoint");
        s.participants[1].sbc_endpoint = SocketAddr::from(([127, 0, 0, 1], 1));
        s.participants[1].payload_type.name = "GSM".into();
        assert_eq!(
            validate(&s).map_err(|e| e.code),
            Err(ErrorCode::UNSUPPORTED)
        );
        assert_eq!(codec_of(&pcmu()), Some(CodecKind::Pcmu));
    }
}
