//! The hot path allocates nothing: once a conference is set up, pushing
//! packets and ticking (decode, conceal, resample, mix, encode, write the
//! packets out) must not touch the allocator. A counting allocator checks
//! it, counting only this test's thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::time::Instant;

use media::analysis::tone_from;
use media::{AnyCodec, Codec, CodecKind};
use mixer::{
    Conference, ConferenceConfig, Flags, Options, ParticipantConfig, ParticipantId, Prompt,
    Recorder,
};
use rtp::{RtpHeader, RtpHeaderMut};

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: defers to the system allocator; the counter is thread-local and
// const-initialised, so it never allocates itself.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// One participant's replayed packets.
struct Line {
    id: ParticipantId,
    packets: Vec<Vec<u8>>,
}

fn line(conf: &mut Conference, kind: CodecKind, freq: Option<f64>, k: u32) -> Line {
    let pt = kind.static_payload_type().unwrap_or(96);
    let id = conf
        .add_participant(ParticipantConfig {
            codec: kind,
            payload_type: pt,
            ssrc: k,
        })
        .expect("join");
    let n = (kind.rate() / 50) as usize;
    let mut enc = AnyCodec::new(kind).expect("codec");
    let mut seed = k;
    let packets = (0..50)
        .map(|f| {
            let pcm: Vec<i16> = match freq {
                Some(freq) => tone_from(kind.rate(), freq, 5000.0, f * n, n),
                None => (0..n)
                    .map(|_| {
                        seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
                        ((seed >> 16) % 121) as i16 - 60
                    })
                    .collect(),
            };
            let mut pkt = vec![0u8; 12 + kind.payload_len(n)];
            let h = RtpHeader {
                marker: false,
                payload_type: pt,
                sequence_number: 0,
                timestamp: 0,
                ssrc: 0x100 + k,
                csrcs: &[],
                extension: None,
            };
            let hl = h.write(&mut pkt).expect("header");
            let len = enc.encode(&pcm, &mut pkt[hl..]).expect("encode");
            pkt.truncate(hl + len);
            pkt
        })
        .collect();
    Line { id, packets }
}

#[test]
fn steady_state_ticks_do_not_allocate() {
    // A 16 kHz conference with G.711 (resampled), G.722 and L16 talkers,
    // quiet lines of each (some followed without decoding), and losses.
    let mut conf = Conference::new(ConferenceConfig {
        rate: 16000,
        ..Default::default()
    })
    .expect("conf");
    let mut lines = vec![
        line(&mut conf, CodecKind::Pcmu, Some(400.0), 1),
        line(&mut conf, CodecKind::G722, Some(900.0), 2),
        line(&mut conf, CodecKind::L16 { rate: 48000 }, Some(1300.0), 3),
    ];
    for k in 0..30 {
        let kind = [
            CodecKind::Pcma,
            CodecKind::G722,
            CodecKind::L16 { rate: 16000 },
        ][k % 3];
        lines.push(line(&mut conf, kind, None, 10 + k as u32));
    }
    let now = Instant::now();
    let mut out = [0u8; 4096];
    let mut run = |conf: &mut Conference, lines: &mut [Line], ticks: std::ops::Range<u16>| {
        let mut sent = 0;
        for seq in ticks {
            for (k, l) in lines.iter_mut().enumerate() {
                // Every 7th packet of one talker is lost.
                if k == 0 && seq % 7 == 3 {
                    continue;
                }
                let pkt = &mut l.packets[seq as usize % 50];
                let mut h = RtpHeaderMut::new(pkt).expect("rtp");
                h.set_sequence_number(seq);
                h.set_timestamp(seq as u32 * 160);
                conf.push_rtp(l.id, pkt, now).expect("push");
            }
            for o in conf.tick(now) {
                sent += o.write(&mut out).expect("write");
            }
        }
        sent
    };
    // Warm up past the one-second mark where quiet lines start being followed.
    run(&mut conf, &mut lines, 0..80);
    COUNTING.with(|c| c.set(true));
    let sent = run(&mut conf, &mut lines, 80..200);
    COUNTING.with(|c| c.set(false));
    assert!(sent > 0);
    assert_eq!(COUNT.with(Cell::get), 0, "allocations on the hot path");
    // lines[4] is a quiet G.722 line: it was being followed, not decoded.
    assert!(conf.stats(lines[4].id).expect("stats").tracked_frames > 0);
}

/// Pushes each line's packet `seq` (skipping none), ticks, writes every
/// packet out, and reads what a node reads after a tick.
fn tick_all(
    conf: &mut Conference,
    lines: &mut [Line],
    seq: u16,
    rec: &mut Recorder,
    out: &mut [u8],
) -> usize {
    let now = Instant::now();
    for l in lines.iter_mut() {
        let pkt = &mut l.packets[seq as usize % 50];
        let mut h = RtpHeaderMut::new(pkt).expect("rtp");
        h.set_sequence_number(seq);
        h.set_timestamp(seq as u32 * 160);
        conf.push_rtp(l.id, pkt, now).expect("push");
    }
    let mut sent = 0;
    for o in conf.tick(now) {
        sent += o.write(out).expect("write");
    }
    sent += conf.talk_changes().count();
    rec.push(conf.mix_frame());
    sent
}

#[test]
fn features_do_not_allocate_on_the_hot_path() {
    // Waiting for the moderator with music, then mixing with a muted
    // talker and a deaf listener, tones on joining and leaving, the alone
    // prompt, recording: only joining and leaving themselves may allocate.
    let rate = 16000;
    let mut conf = Conference::new(ConferenceConfig {
        rate,
        ..Default::default()
    })
    .expect("conf");
    let clip = |f| {
        Arc::new(
            Prompt::from_pcm(rate, &tone_from(rate, f, 3000.0, 0, 3000), rate).expect("prompt"),
        )
    };
    conf.set_options(Options {
        moderator_required: true,
        join_leave_tones: true,
        alone_prompt: Some(clip(600.0)),
        wait_music: Some(clip(250.0)),
    });
    let mut lines = vec![
        line(&mut conf, CodecKind::Pcmu, Some(400.0), 1),
        line(&mut conf, CodecKind::G722, Some(900.0), 2),
        line(&mut conf, CodecKind::L16 { rate: 48000 }, Some(1300.0), 3),
    ];
    for k in 0..6 {
        let kind = [CodecKind::Pcma, CodecKind::G722][k % 2];
        lines.push(line(&mut conf, kind, None, 10 + k as u32));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rec = Recorder::start(dir.path().join("r.wav"), rate).expect("recorder");
    let mut out = [0u8; 4096];
    let mut seq = 0u16;
    let mut ticks = |conf: &mut Conference, lines: &mut [Line], n: u16, counted: bool| {
        COUNTING.with(|c| c.set(counted));
        for _ in 0..n {
            tick_all(conf, lines, seq, &mut rec, &mut out);
            seq += 1;
        }
        COUNTING.with(|c| c.set(false));
    };
    ticks(&mut conf, &mut lines, 20, false);
    ticks(&mut conf, &mut lines, 40, true);
    assert!(conf.conference_stats().waiting_ticks >= 60);

    COUNTING.with(|c| c.set(true));
    let muted = Flags {
        muted: true,
        ..Flags::default()
    };
    assert!(conf.set_flags(lines[0].id, muted));
    let deaf = Flags {
        deaf: true,
        ..Flags::default()
    };
    assert!(conf.set_flags(lines[4].id, deaf));
    let moderator = Flags {
        moderator: true,
        ..Flags::default()
    };
    assert!(conf.set_flags(lines[1].id, moderator));
    COUNTING.with(|c| c.set(false));
    ticks(&mut conf, &mut lines, 60, true);
    assert_eq!(conf.speakers().count(), 2);

    // A join (its tone; the joiner on its own stream meanwhile).
    let late = line(&mut conf, CodecKind::G722, None, 99);
    lines.push(late);
    ticks(&mut conf, &mut lines, 30, true);
    // A leave, down to one: the leave tone, then the alone prompt, music.
    while lines.len() > 1 {
        let l = lines.pop().expect("line");
        assert!(conf.remove_participant(l.id));
    }
    ticks(&mut conf, &mut lines, 60, true);
    assert_eq!(COUNT.with(Cell::get), 0, "allocations on the hot path");
    let st = conf.conference_stats();
    assert!(st.tones_played >= 2 && st.prompt_ticks > 100, "{st:?}");
    let summary = rec.finish();
    assert_eq!(summary.error, None);
}
