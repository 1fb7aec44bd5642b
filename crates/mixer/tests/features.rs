//! Conference features, checked by what participants hear: mute, deaf,
//! waiting for the moderator (with music), join/leave tones, the alone
//! prompt, talk events, recording, and a silent room that stops encoding.

use std::sync::Arc;

use media::CodecKind;
use media::analysis::{rms, tone};
use media::wav::{Wav, WavWriter};
use mixer::prompt::{JOIN_TONE, Prompt};
use mixer::{Conference, ConferenceConfig, Flags, Options, ParticipantId, Recorder};

#[path = "support/phone.rs"]
mod phone;
use phone::{Phone, Signal, amp_db, run};

const RATE: u32 = 8000;
const AMP: f64 = 6000.0;

fn conf(opts: Options) -> Conference {
    let mut c = Conference::new(ConferenceConfig {
        rate: RATE,
        ..Default::default()
    })
    .expect("conf");
    c.set_options(opts);
    c
}

fn talker(c: &mut Conference, freq: f64, ssrc: u32) -> Phone {
    Phone::join(c, CodecKind::Pcmu, Signal::Tone { freq, amp: AMP }, ssrc)
}

fn silent(c: &mut Conference, ssrc: u32) -> Phone {
    Phone::join(c, CodecKind::Pcmu, Signal::Nothing, ssrc)
}

fn steady(c: &mut Conference, phones: &mut [Phone], ticks: usize) {
    run(c, phones, ticks, |_, _, p| vec![p]);
}

/// Level in dB (re `AMP`) of `freq` in the last half second `ph` heard.
fn hears(ph: &Phone, freq: f64) -> f64 {
    let tail = &ph.heard[ph.heard.len() - RATE as usize / 2..];
    amp_db(tail, RATE, freq, AMP)
}

/// A prompt of one tone at the conference rate.
fn tone_prompt(freq: f64, ms: usize) -> Arc<Prompt> {
    let pcm = tone(RATE, freq, 4000.0, RATE as usize * ms / 1000);
    Arc::new(Prompt::from_pcm(RATE, &pcm, RATE).expect("prompt"))
}

const HEARD: f64 = -3.0;
const ABSENT: f64 = -45.0;

#[test]
fn a_muted_talker_is_not_heard_but_still_hears() {
    let mut c = conf(Options::default());
    let freqs = [400.0, 700.0, 1100.0];
    let mut phones: Vec<Phone> = (0..3).map(|k| talker(&mut c, freqs[k], k as u32)).collect();
    let muted = Flags {
        muted: true,
        ..Flags::default()
    };
    assert!(c.set_flags(phones[0].id, muted));
    steady(&mut c, &mut phones, 50);
    for ph in &phones[1..] {
        assert!(hears(ph, 400.0) < ABSENT, "muted tone heard");
    }
    assert!(hears(&phones[1], 1100.0) > HEARD);
    assert!(hears(&phones[2], 700.0) > HEARD);
    assert!(hears(&phones[0], 700.0) > HEARD && hears(&phones[0], 1100.0) > HEARD);
    assert!(!c.is_speaking(phones[0].id));
    let st = c.stats(phones[0].id).expect("stats");
    assert!(st.muted_frames >= 45 && st.speaking_ticks == 0);
    assert_eq!(c.conference_stats().muted_frames, st.muted_frames);

    // Unmuted, it is heard again.
    assert!(c.set_flags(phones[0].id, Flags::default()));
    steady(&mut c, &mut phones, 30);
    assert!(hears(&phones[1], 400.0) > HEARD);
    assert!(c.is_speaking(phones[0].id));

    // Muted mid-sentence: out of the mix on the next tick, and said so.
    assert!(c.set_flags(phones[0].id, muted));
    steady(&mut c, &mut phones, 1);
    let changes: Vec<_> = c.talk_changes().collect();
    assert_eq!(changes, vec![(phones[0].id, false)]);
}

#[test]
fn set_flags_on_a_stale_id_is_false() {
    let mut c = conf(Options::default());
    let ph = silent(&mut c, 1);
    assert!(c.remove_participant(ph.id));
    assert!(!c.set_flags(ph.id, Flags::default()));
    assert_eq!(c.flags(ph.id), None);
}

#[test]
fn a_deaf_participant_gets_silence_and_is_still_heard() {
    let mut kinds = vec![CodecKind::Pcmu, CodecKind::G722];
    if cfg!(feature = "opus") {
        kinds.push(CodecKind::Opus);
    }
    for kind in kinds {
        let mut c = conf(Options::default());
        let mut phones = vec![
            Phone::join(
                &mut c,
                kind,
                Signal::Tone {
                    freq: 400.0,
                    amp: AMP,
                },
                1,
            ),
            Phone::join(
                &mut c,
                kind,
                Signal::Tone {
                    freq: 700.0,
                    amp: AMP,
                },
                2,
            ),
        ];
        let deaf = Flags {
            deaf: true,
            ..Flags::default()
        };
        assert!(c.set_flags(phones[0].id, deaf));
        // `run` checks a packet reaches every phone every tick, its
        // sequence numbers and timestamps running on.
        steady(&mut c, &mut phones, 50);
        let heard = &phones[0].heard;
        let level = rms(&heard[heard.len() - 4000..]);
        assert!(level < 5.0, "{kind:?}: deaf phone hears rms {level}");
        let rate = kind.rate();
        let tail = &phones[1].heard[phones[1].heard.len() - rate as usize / 2..];
        assert!(amp_db(tail, rate, 400.0, AMP) > HEARD, "{kind:?}");
    }
}

#[test]
fn nobody_is_mixed_until_the_moderator_comes_and_meanwhile_music_plays() {
    // The music is a file at 44.1 kHz, loaded and resampled to 8 kHz.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("music.wav");
    let mut w = WavWriter::create(&path, 44100, 1).expect("create");
    w.write(&tone(44100, 250.0, 4000.0, 44100)).expect("write");
    w.finish().expect("finish");
    let music = Arc::new(Prompt::from_wav(&path, RATE).expect("load"));
    assert_eq!(music.len(), RATE as usize);

    let mut c = conf(Options {
        moderator_required: true,
        wait_music: Some(music),
        ..Options::default()
    });
    let mut phones = vec![talker(&mut c, 700.0, 1), talker(&mut c, 1100.0, 2)];
    steady(&mut c, &mut phones, 60);
    assert!(hears(&phones[0], 1100.0) < ABSENT);
    assert!(hears(&phones[1], 700.0) < ABSENT);
    let music_db = 20.0 * (4000.0 / AMP).log10();
    for ph in &phones {
        assert!((hears(ph, 250.0) - music_db).abs() < 1.5, "music");
    }
    assert_eq!(c.speakers().count(), 0);
    assert!(c.conference_stats().waiting_ticks >= 60);

    let mut m = talker(&mut c, 1500.0, 3);
    let moderator = Flags {
        moderator: true,
        ..Flags::default()
    };
    assert!(c.set_flags(m.id, moderator));
    m.heard.clear();
    phones.push(m);
    steady(&mut c, &mut phones, 40);
    assert!(hears(&phones[0], 1100.0) > HEARD);
    assert!(hears(&phones[0], 1500.0) > HEARD);
    assert!(hears(&phones[2], 700.0) > HEARD);
    for ph in &phones {
        assert!(hears(ph, 250.0) < ABSENT, "music after the moderator came");
    }

    // The moderator goes (the brain would end the conference; until it
    // does, the room waits again).
    assert!(c.remove_participant(phones[2].id));
    phones.pop();
    steady(&mut c, &mut phones, 30);
    assert!(hears(&phones[0], 1100.0) < ABSENT);
    assert!(
        (hears(&phones[0], 250.0) - music_db).abs() < 1.5,
        "music again"
    );
}

/// Amplitudes of the tone's two notes in the ~280 ms from `at`.
fn notes(heard: &[i16], at: usize) -> [[f64; 2]; 2] {
    let note = RATE as usize * 120 / 1000;
    let gap = RATE as usize * 20 / 1000;
    let amp = |w: &[i16], f| media::analysis::tone_amplitude(w, RATE, f);
    let first = &heard[at..at + note];
    let second = &heard[at + note + gap..at + 2 * note + gap];
    [
        [amp(first, JOIN_TONE[0]), amp(first, JOIN_TONE[1])],
        [amp(second, JOIN_TONE[0]), amp(second, JOIN_TONE[1])],
    ]
}

fn rising(n: [[f64; 2]; 2]) -> bool {
    n[0][0] > 2000.0 && n[0][1] < 300.0 && n[1][1] > 2000.0 && n[1][0] < 300.0
}

fn falling(n: [[f64; 2]; 2]) -> bool {
    n[0][1] > 2000.0 && n[0][0] < 300.0 && n[1][0] > 2000.0 && n[1][1] < 300.0
}

#[test]
fn joins_and_leaves_are_announced_by_tones_to_the_others() {
    let mut c = conf(Options {
        join_leave_tones: true,
        ..Options::default()
    });
    let mut phones = vec![silent(&mut c, 1)];
    steady(&mut c, &mut phones, 10);
    assert!(
        phones[0].heard.iter().all(|&s| s == 0),
        "no tone for the first"
    );

    // B joins: A hears a rising tone, B nothing.
    let at_a = phones[0].heard.len();
    phones.push(silent(&mut c, 2));
    steady(&mut c, &mut phones, 20);
    assert!(
        rising(notes(&phones[0].heard, at_a)),
        "{:?}",
        notes(&phones[0].heard, at_a)
    );
    assert!(rms(&phones[1].heard) < 5.0, "the joiner hears its own tone");
    assert!(rms(&phones[0].heard[at_a + 2400..]) < 5.0, "the tone ends");

    // C joins: A and B hear it.
    let (at_a, at_b) = (phones[0].heard.len(), phones[1].heard.len());
    phones.push(silent(&mut c, 3));
    steady(&mut c, &mut phones, 20);
    assert!(rising(notes(&phones[0].heard, at_a)));
    assert!(rising(notes(&phones[1].heard, at_b)));
    assert!(rms(&phones[2].heard) < 5.0);

    // B leaves: A and C hear a falling tone.
    let (at_a, at_c) = (phones[0].heard.len(), phones[2].heard.len());
    assert!(c.remove_participant(phones[1].id));
    phones.remove(1);
    steady(&mut c, &mut phones, 20);
    assert!(falling(notes(&phones[0].heard, at_a)));
    assert!(falling(notes(&phones[1].heard, at_c)));
    assert_eq!(c.conference_stats().tones_played, 3);
}

#[test]
fn tones_ride_over_speech() {
    let mut c = conf(Options {
        join_leave_tones: true,
        ..Options::default()
    });
    let mut phones = vec![talker(&mut c, 400.0, 1), talker(&mut c, 1100.0, 2)];
    steady(&mut c, &mut phones, 30);
    let at = phones[0].heard.len();
    phones.push(silent(&mut c, 3));
    steady(&mut c, &mut phones, 30);
    // A talker's own N-1 stream carries the tone too, over the other's voice.
    assert!(rising(notes(&phones[0].heard, at)));
    assert!(hears(&phones[0], 1100.0) > HEARD);
    assert!(hears(&phones[2], 400.0) > HEARD);
}

#[test]
fn the_alone_prompt_plays_to_whoever_is_alone_then_music_until_someone_comes() {
    let mut c = conf(Options {
        alone_prompt: Some(tone_prompt(630.0, 500)),
        wait_music: Some(tone_prompt(250.0, 300)),
        ..Options::default()
    });
    let mut phones = vec![silent(&mut c, 1)];
    steady(&mut c, &mut phones, 25);
    let ref_db = 20.0 * (4000.0 / AMP).log10();
    assert!((hears(&phones[0], 630.0) - ref_db).abs() < 1.5, "prompt");
    steady(&mut c, &mut phones, 25);
    assert!(hears(&phones[0], 630.0) < ABSENT, "the prompt plays once");
    assert!(
        (hears(&phones[0], 250.0) - ref_db).abs() < 1.5,
        "then music"
    );

    // Someone comes: the music fades out within a tick (the newcomer
    // hears that tick too); then nobody hears either.
    phones.push(silent(&mut c, 2));
    steady(&mut c, &mut phones, 30);
    for ph in &phones {
        assert!(hears(ph, 630.0) < ABSENT && hears(ph, 250.0) < ABSENT);
    }
    assert!(rms(&phones[1].heard[160..]) < 5.0);

    // A comer cuts a prompt still playing.
    assert!(c.remove_participant(phones[0].id));
    phones.remove(0);
    let at = phones[0].heard.len();
    steady(&mut c, &mut phones, 6);
    let alone_again = &phones[0].heard[at..];
    assert!(
        amp_db(alone_again, RATE, 630.0, AMP) > ref_db - 3.0,
        "alone again"
    );
    phones.push(silent(&mut c, 3));
    steady(&mut c, &mut phones, 30);
    for ph in &phones {
        assert!(hears(ph, 630.0) < ABSENT);
    }
    // Cut with a fade, not a click: the last 2 ms before silence are
    // already faint (cut short, they would hold a peak of the tone).
    let h = &phones[0].heard[at..];
    let end = h.iter().rposition(|&s| s.abs() > 16).expect("prompt heard");
    let last = h[end - 16..=end].iter().map(|s| s.abs()).max();
    assert!(last < Some(800), "cut at full level: {last:?}");
}

#[test]
fn talk_changes_say_who_started_and_stopped() {
    let mut c = conf(Options::default());
    let mut phones = vec![
        talker(&mut c, 400.0, 1),
        Phone::join(
            &mut c,
            CodecKind::Pcmu,
            Signal::ToneThenNoise {
                amp: 20,
                seed: 3,
                at: 8000,
                freq: 700.0,
                tone: AMP,
            },
            2,
        ),
        silent(&mut c, 3),
    ];
    let mut events: Vec<(usize, ParticipantId, bool)> = Vec::new();
    for t in 0..100 {
        steady(&mut c, &mut phones, 1);
        events.extend(c.talk_changes().map(|(id, on)| (t, id, on)));
        for (id, on) in c.talk_changes() {
            assert_eq!(c.is_speaking(id), on);
        }
    }
    let of = |id| {
        events
            .iter()
            .filter(|e| e.1 == id)
            .map(|e| (e.0, e.2))
            .collect::<Vec<_>>()
    };
    let a = of(phones[0].id);
    let b = of(phones[1].id);
    assert_eq!(a.len(), 1, "A: {a:?}");
    assert!(a[0].1 && a[0].0 < 5);
    assert_eq!(b.len(), 2, "B: {b:?}");
    assert!(b[0].1 && b[0].0 < 5);
    // B stops after one second, and the VAD's hangover.
    assert!(!b[1].1 && (50..75).contains(&b[1].0), "B: {b:?}");
    assert!(of(phones[2].id).is_empty());
    let st = c.conference_stats();
    assert_eq!(st.max_speakers_seen, 2);
    assert!(st.mixed_ticks >= 95);
}

#[test]
fn the_recording_holds_every_tick_and_both_talkers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rec.wav");
    let mut c = conf(Options::default());
    let mut rec = Recorder::start(&path, RATE).expect("start");
    let mut phones = vec![talker(&mut c, 400.0, 1), talker(&mut c, 700.0, 2)];
    let ticks = 150;
    for _ in 0..ticks {
        steady(&mut c, &mut phones, 1);
        assert_eq!(c.mix_frame().len(), c.frame_len());
        rec.push(c.mix_frame());
        // Real time is far slower; keep the writer from falling behind.
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    let summary = rec.finish();
    assert_eq!(summary.dropped_frames, 0);
    assert_eq!(summary.duration_ms, ticks as u64 * 20);
    assert_eq!(summary.error, None);
    let wav = Wav::open(&path).expect("valid wav");
    assert_eq!((wav.rate, wav.channels), (RATE, 1));
    assert_eq!(wav.samples.len(), ticks * 160);
    let tail = &wav.samples[wav.samples.len() - 8000..];
    assert!(amp_db(tail, RATE, 400.0, AMP).abs() < 0.5);
    assert!(amp_db(tail, RATE, 700.0, AMP).abs() < 0.5);
}

#[test]
fn a_silent_room_stops_encoding_and_starts_again_when_someone_talks() {
    let mut c = conf(Options::default());
    let kinds = if cfg!(feature = "opus") {
        vec![CodecKind::Pcmu, CodecKind::G722, CodecKind::Opus]
    } else {
        vec![CodecKind::Pcmu, CodecKind::G722]
    };
    let mut phones: Vec<Phone> = (0..2 * kinds.len())
        .map(|k| {
            let kind = kinds[k % kinds.len()];
            Phone::join(&mut c, kind, Signal::Nothing, k as u32)
        })
        .collect();
    steady(&mut c, &mut phones, 20);
    let before = c.conference_stats();
    steady(&mut c, &mut phones, 100);
    let after = c.conference_stats();
    assert_eq!(after.encodes, before.encodes, "encoding in a silent room");
    assert_eq!(after.silent_ticks - before.silent_ticks, 100);
    assert!(c.mix_frame().iter().all(|&s| s == 0));
    for ph in &phones {
        assert!(rms(&ph.heard) < 5.0);
    }

    // Someone talks: the shared mixes are encoded again and carry it.
    phones[0].signal = Signal::Tone {
        freq: 500.0,
        amp: AMP,
    };
    steady(&mut c, &mut phones, 30);
    assert!(c.conference_stats().encodes > after.encodes);
    for ph in &phones[1..] {
        let rate = ph.kind.rate();
        let tail = &ph.heard[ph.heard.len() - rate as usize / 2..];
        let db = amp_db(tail, rate, 500.0, AMP);
        assert!(db > HEARD, "{:?} hears the talker at {db:.1} dB", ph.kind);
    }
    let g722 = &phones[1].heard;
    let tail = &g722[g722.len() - 8000..];
    assert!(amp_db(tail, 16000, 500.0, AMP) > HEARD);
    // The G.722 encoder picks up from its hangover without a click (the
    // talker is faded in; steps stay within the tone's own slope).
    let slope = AMP * 2.0 * std::f64::consts::PI * 500.0 / 16000.0;
    let step = media::analysis::max_step(&g722[g722.len() - 30 * 320..]) as f64;
    assert!(
        step < slope * 1.3,
        "resuming: step {step:.0} vs slope {slope:.0}"
    );
}

fn conf_with(denoise: bool, level: Option<media::LevelConfig>) -> Conference {
    Conference::new(ConferenceConfig {
        rate: RATE,
        denoise,
        level,
        ..Default::default()
    })
    .expect("conf")
}

#[test]
fn level_control_brings_a_quiet_talker_up() {
    let run_with = |level: Option<media::LevelConfig>| {
        let mut c = conf_with(false, level);
        // A quiet voice (peaks near -22 dBFS), against a -10 dBFS target.
        let signal = Signal::Voice {
            amp: 700.0,
            hiss: 0,
            seed: 1,
        };
        let quiet = Phone::join(&mut c, CodecKind::Pcmu, signal, 1);
        let listener = silent(&mut c, 2);
        let mut phones = [quiet, listener];
        steady(&mut c, &mut phones, 200);
        rms(&phones[1].heard[phones[1].heard.len() - RATE as usize..])
    };
    let plain = run_with(None);
    let levelled = run_with(Some(media::LevelConfig {
        target_dbfs: -10.0,
        ..Default::default()
    }));
    assert!(plain > 300.0, "heard without level control: {plain}");
    assert!(levelled > 3.0 * plain, "with: {levelled}, without: {plain}");
}

#[test]
fn noise_suppression_takes_the_hiss_out_from_under_a_talker() {
    // What a listener hears of a talker, with or without hiss under it.
    let heard = |denoise: bool, hiss: i32| {
        let mut c = conf_with(denoise, None);
        let signal = Signal::Voice {
            amp: 3000.0,
            hiss,
            seed: 9,
        };
        let talker = Phone::join(&mut c, CodecKind::Pcmu, signal, 1);
        let listener = silent(&mut c, 2);
        let mut phones = [talker, listener];
        steady(&mut c, &mut phones, 200);
        let h = std::mem::take(&mut phones[1].heard);
        h[h.len() - RATE as usize..].to_vec()
    };
    // The hiss that reaches the listener: the difference the hiss made.
    let residual = |denoise: bool| {
        let noisy = heard(denoise, 2500);
        let clean = heard(denoise, 0);
        let diff: Vec<i16> = noisy
            .iter()
            .zip(&clean)
            .map(|(a, b)| a.saturating_sub(*b))
            .collect();
        (rms(&diff), rms(&clean))
    };
    let (hiss_plain, voice_plain) = residual(false);
    let (hiss_clean, voice_clean) = residual(true);
    assert!(
        voice_plain > 1000.0 && voice_clean > 1000.0,
        "the talker is heard: {voice_plain}, {voice_clean}"
    );
    let cut = 20.0 * (hiss_plain / hiss_clean.max(1.0)).log10();
    assert!(
        cut > 6.0,
        "hiss only {cut:.1} dB lower ({hiss_clean} against {hiss_plain})"
    );
}
