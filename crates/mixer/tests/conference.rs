//! What participants of a conference hear, checked the way a listener
//! would: which tones, at what level, with no clicks. Sans-IO and
//! deterministic: packets are made, pushed and ticked in a loop.

use std::time::Instant;

use media::CodecKind;
use media::analysis::{max_step, rms, tone_amplitude, tone_from};
use mixer::{Conference, ConferenceConfig, ParticipantConfig, ParticipantId};

#[path = "support/phone.rs"]
mod phone;
use phone::{Phone, Signal, amp_db, run};

#[test]
fn three_tones_each_hears_the_other_two_never_itself() {
    let mut conf = Conference::new(ConferenceConfig {
        rate: 8000,
        ..Default::default()
    })
    .expect("conf");
    let freqs = [400.0, 700.0, 1100.0];
    let amp = 6000.0;
    let mut phones: Vec<Phone> = freqs
        .iter()
        .enumerate()
        .map(|(k, &f)| {
            Phone::join(
                &mut conf,
                CodecKind::Pcmu,
                Signal::Tone { freq: f, amp },
                k as u32 + 1,
            )
        })
        .collect();
    run(&mut conf, &mut phones, 50, |_, _, p| vec![p]);
    assert_eq!(conf.speakers().count(), 3);
    for (k, ph) in phones.iter().enumerate() {
        // Half a second of steady state.
        let tail = &ph.heard[ph.heard.len() - 4000..];
        for (j, &f) in freqs.iter().enumerate() {
            let db = amp_db(tail, 8000, f, amp);
            if j == k {
                assert!(db < -50.0, "phone {k} hears itself at {db:.1} dB");
            } else {
                assert!(db.abs() < 0.5, "phone {k} hears {f} Hz at {db:.1} dB");
            }
        }
        // And nothing else: what is left after the two tones is µ-law
        // quantisation noise, more than 25 dB down.
        let tones: f64 = freqs
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != k)
            .map(|(_, &f)| tone_amplitude(tail, 8000, f).powi(2) / 2.0)
            .sum();
        let residual = (rms(tail).powi(2) - tones).max(0.0);
        assert!(
            10.0 * (tones / residual).log10() > 25.0,
            "phone {k}: residual too high"
        );
    }
}

#[test]
fn hundred_lines_three_talkers_listeners_get_only_the_talkers() {
    // L16 at the conference rate: nothing is lost in coding, so what a
    // listener receives can be compared sample for sample.
    let kind = CodecKind::L16 { rate: 16000 };
    let mut conf = Conference::new(ConferenceConfig {
        rate: 16000,
        ..Default::default()
    })
    .expect("conf");
    let talk = [(500.0, 5000.0), (900.0, 4000.0), (1300.0, 3000.0)];
    let mut phones = Vec::new();
    for k in 0..100u32 {
        let signal = match talk.get(k as usize) {
            Some(&(freq, amp)) => Signal::Tone { freq, amp },
            // -56 dBFS of hiss on every silent line.
            None => Signal::Noise {
                amp: 60,
                seed: k * 7919 + 1,
            },
        };
        phones.push(Phone::join(&mut conf, kind, signal, 100 + k));
    }
    // A listener's packets must share one payload; collect pointers in a tick.
    run(&mut conf, &mut phones, 30, |_, _, p| vec![p]);
    let speakers: Vec<ParticipantId> = conf.speakers().collect();
    assert_eq!(speakers.len(), 3);
    for p in &phones[..3] {
        assert!(speakers.contains(&p.id));
    }
    let t = Instant::now();
    let mut shared = None;
    let mut listeners = 0;
    for ph in phones.iter_mut() {
        if !matches!(ph.signal, Signal::Nothing) {
            let pkt = ph.next_packet(20);
            conf.push_rtp(ph.id, &pkt, t).expect("push");
        }
    }
    for o in conf.tick(t) {
        if o.shared {
            listeners += 1;
            let ptr = o.payload.as_ptr();
            assert_eq!(
                *shared.get_or_insert(ptr),
                ptr,
                "listeners share one encoding"
            );
        }
    }
    assert_eq!(listeners, 97);

    // Exactness: a listener hears the sum of the three tones, delayed by the
    // jitter buffer, and not one sample of the 97 lines' noise.
    // A depth-2 jitter buffer plays a packet on the tick after it arrives.
    let n = 320;
    let delay = n;
    let listener = &phones[50].heard;
    let talker0 = &phones[0].heard;
    for i in (20 * n)..(29 * n) {
        let src = i - delay;
        let expect: i32 = talk
            .iter()
            .map(|&(f, a)| tone_from(16000, f, a, src, 1)[0] as i32)
            .sum();
        assert_eq!(listener[i] as i32, expect, "listener sample {i}");
        let expect0: i32 = talk[1..]
            .iter()
            .map(|&(f, a)| tone_from(16000, f, a, src, 1)[0] as i32)
            .sum();
        assert_eq!(talker0[i] as i32, expect0, "talker 0 hears the other two");
    }
}

#[test]
fn lost_and_late_packets_are_concealed_without_clicks() {
    let mut conf = Conference::new(ConferenceConfig {
        rate: 8000,
        ..Default::default()
    })
    .expect("conf");
    let (freq, amp) = (300.0, 8000.0);
    let mut phones = vec![
        Phone::join(&mut conf, CodecKind::Pcmu, Signal::Tone { freq, amp }, 1),
        Phone::join(
            &mut conf,
            CodecKind::Pcmu,
            Signal::Noise { amp: 30, seed: 9 },
            2,
        ),
    ];
    let mut held: Option<Vec<u8>> = None;
    run(&mut conf, &mut phones, 100, |t, k, p| {
        if k != 0 {
            return vec![p];
        }
        match t {
            // Single losses, and a burst of two.
            20 | 41 | 42 | 70 => vec![],
            // Swapped within the jitter buffer's depth: no loss at all.
            50 => {
                held = Some(p);
                vec![]
            }
            51 => vec![p, held.take().expect("held")],
            // Held past its play-out time: arrives late, is dropped.
            80 => {
                held = Some(p);
                vec![]
            }
            84 => vec![held.take().expect("held"), p],
            _ => vec![p],
        }
    });
    let st = conf.stats(phones[0].id).expect("stats");
    assert_eq!(st.jitter.lost, 5, "four dropped, one too late");
    // RFC 3550 counts what never arrived: the held packets came in the end.
    let rx = conf.receiver_stats(phones[0].id).expect("rx stats");
    assert_eq!(rx.cumulative_lost(), 4);
    assert_eq!(rx.late_packets(), 2);
    assert_eq!(st.jitter.late, 1);
    let heard = &phones[1].heard;
    let slope = amp * 2.0 * std::f64::consts::PI * freq / 8000.0;
    // From the first tone frame on: never a step beyond the tone's own
    // slope (plus µ-law's quantisation), and never a dropout.
    let start = 3 * 160;
    let step = max_step(&heard[start..]) as f64;
    assert!(
        step < slope * 1.3,
        "click: step {step:.0} vs slope {slope:.0}"
    );
    for (f, frame) in heard[start..].chunks(160).enumerate() {
        let level = rms(frame) / (amp / 2f64.sqrt());
        // Concealment fades after 10 ms (G.711 Appendix I). The burst of two
        // is concealed for three ticks (its first tick is an underrun, which
        // the buffer answers by adding a frame of delay), and the third,
        // 40-60 ms into the loss, fades towards silence.
        let min = if f + 3 == 44 { 0.1 } else { 0.5 };
        assert!(level > min, "frame {f}: level {level:.2}");
    }
}

#[test]
fn wideband_narrowband_and_48k_lines_hear_each_other() {
    // G.722 (16 kHz), G.711 (8 kHz) and L16 at 48 kHz (standing in for
    // Opus) in a 48 kHz conference: each hears both others' tones at the
    // right frequency and level, and not its own.
    let mut conf = Conference::new(ConferenceConfig {
        rate: 48000,
        ..Default::default()
    })
    .expect("conf");
    let lines = [
        (CodecKind::G722, 1200.0),
        (CodecKind::Pcma, 500.0),
        (CodecKind::L16 { rate: 48000 }, 2200.0),
    ];
    let amp = 5000.0;
    let mut phones: Vec<Phone> = lines
        .iter()
        .enumerate()
        .map(|(k, &(kind, freq))| {
            Phone::join(&mut conf, kind, Signal::Tone { freq, amp }, 10 + k as u32)
        })
        .collect();
    run(&mut conf, &mut phones, 50, |_, _, p| vec![p]);
    for (k, ph) in phones.iter().enumerate() {
        let rate = ph.kind.rate();
        let tail = &ph.heard[ph.heard.len() - rate as usize / 2..];
        for (j, &(_, freq)) in lines.iter().enumerate() {
            let db = amp_db(tail, rate, freq, amp);
            if j == k {
                assert!(db < -40.0, "line {k} hears itself at {db:.1} dB");
            } else {
                assert!(db.abs() < 1.0, "line {k} hears {freq} Hz at {db:.1} dB");
                // At that frequency, not a neighbour: the rates are right.
                for off in [-150.0, 150.0] {
                    assert!(
                        amp_db(tail, rate, freq + off, amp) < db - 20.0,
                        "line {k}: {freq} Hz smeared"
                    );
                }
            }
        }
    }
}

#[cfg(feature = "opus")]
#[test]
fn opus_at_48k_and_g711_at_8k_hear_each_other() {
    let mut conf = Conference::new(ConferenceConfig {
        rate: 48000,
        ..Default::default()
    })
    .expect("conf");
    let lines = [(CodecKind::Opus, 1500.0), (CodecKind::Pcmu, 400.0)];
    let amp = 6000.0;
    let mut phones: Vec<Phone> = lines
        .iter()
        .enumerate()
        .map(|(k, &(kind, freq))| {
            Phone::join(&mut conf, kind, Signal::Tone { freq, amp }, 20 + k as u32)
        })
        .collect();
    run(&mut conf, &mut phones, 50, |_, _, p| vec![p]);
    for (k, ph) in phones.iter().enumerate() {
        let rate = ph.kind.rate();
        let tail = &ph.heard[ph.heard.len() - rate as usize / 2..];
        let (_, other) = lines[1 - k];
        let (_, own) = lines[k];
        let db = amp_db(tail, rate, other, amp);
        assert!(db.abs() < 1.5, "line {k} hears {other} Hz at {db:.1} dB");
        assert!(
            amp_db(tail, rate, own, amp) < -30.0,
            "line {k} hears itself"
        );
    }
}

#[test]
fn opus_without_the_feature_is_refused_not_mis_mixed() {
    let mut conf = Conference::new(ConferenceConfig::default()).expect("conf");
    let r = conf.add_participant(ParticipantConfig {
        codec: CodecKind::Opus,
        payload_type: 111,
        ssrc: 5,
    });
    assert_eq!(r.is_ok(), cfg!(feature = "opus"));
}

#[test]
fn quiet_g722_lines_are_followed_cheaply_and_heard_when_they_speak() {
    // G.722 costs ~120k instructions a frame to decode; a line quiet for a
    // second is followed by its scale factors alone. When it starts to
    // talk it must be decoded again and heard at once, at the right level.
    let mut conf = Conference::new(ConferenceConfig {
        rate: 16000,
        ..Default::default()
    })
    .expect("conf");
    let at = 16000 * 2; // two seconds of hiss, then a tone
    let (freq, amp) = (800.0, 6000.0);
    let mut phones = vec![
        Phone::join(
            &mut conf,
            CodecKind::G722,
            Signal::Noise { amp: 60, seed: 3 },
            1,
        ),
        Phone::join(
            &mut conf,
            CodecKind::G722,
            Signal::NoiseThenTone {
                amp: 60,
                seed: 4,
                at,
                freq,
                tone: amp,
            },
            2,
        ),
    ];
    run(&mut conf, &mut phones, 150, |_, _, p| vec![p]);
    let b = conf.stats(phones[1].id).expect("stats");
    assert!(
        b.tracked_frames >= 40,
        "followed, not decoded: {} frames",
        b.tracked_frames
    );
    let a = conf.stats(phones[0].id).expect("stats");
    assert!(
        a.tracked_frames >= 90,
        "the listener's hiss too: {}",
        a.tracked_frames
    );
    // The tone reaches the listener from 100 ms after it starts (one tick
    // of jitter buffer, one of promotion, re-convergence), at its level.
    let heard = &phones[0].heard;
    let from = at + 320 + 1600;
    for (k, w) in heard[from..].chunks(1600).enumerate() {
        let db = amp_db(w, 16000, freq, amp);
        assert!(db.abs() < 1.0, "window {k}: tone at {db:.1} dB");
    }
    assert!(conf.is_speaking(phones[1].id));
}

#[test]
fn a_g722_listener_who_starts_talking_hears_no_seam() {
    // B talks throughout; A listens (the shared encoding), then talks too
    // and is switched to its own N-1 stream. Its phone's G.722 decoder has
    // followed the shared encoder, so the switch must not click.
    let mut conf = Conference::new(ConferenceConfig {
        rate: 16000,
        ..Default::default()
    })
    .expect("conf");
    let (freq, amp) = (500.0, 6000.0);
    let at = 16000; // A starts after one second
    let mut phones = vec![
        Phone::join(
            &mut conf,
            CodecKind::G722,
            Signal::NoiseThenTone {
                amp: 60,
                seed: 4,
                at,
                freq: 1100.0,
                tone: 4000.0,
            },
            1,
        ),
        Phone::join(&mut conf, CodecKind::G722, Signal::Tone { freq, amp }, 2),
        Phone::join(
            &mut conf,
            CodecKind::G722,
            Signal::Noise { amp: 60, seed: 5 },
            3,
        ),
    ];
    run(&mut conf, &mut phones, 100, |_, _, p| vec![p]);
    let st = conf.stats(phones[0].id).expect("stats");
    assert!(st.speaking_ticks > 0, "A became a speaker");
    let heard = &phones[0].heard;
    let slope = amp * 2.0 * std::f64::consts::PI * freq / 16000.0;
    let step = max_step(&heard[8000..]) as f64;
    assert!(
        step < slope * 1.5,
        "seam at the switch: step {step:.0} vs slope {slope:.0}"
    );
    let tail = &heard[heard.len() - 8000..];
    assert!(amp_db(tail, 16000, freq, amp).abs() < 1.0);
}

#[test]
fn a_g722_talker_who_stops_hears_no_seam() {
    // A talks for a second, then falls quiet: its own N-1 stream ends and
    // it goes over to the shared one (the VAD hangover eases the change).
    let mut conf = Conference::new(ConferenceConfig {
        rate: 16000,
        ..Default::default()
    })
    .expect("conf");
    let (freq, amp) = (500.0, 6000.0);
    let mut phones = vec![
        Phone::join(
            &mut conf,
            CodecKind::G722,
            Signal::ToneThenNoise {
                amp: 60,
                seed: 4,
                at: 16000,
                freq: 1100.0,
                tone: 4000.0,
            },
            1,
        ),
        Phone::join(&mut conf, CodecKind::G722, Signal::Tone { freq, amp }, 2),
        Phone::join(
            &mut conf,
            CodecKind::G722,
            Signal::Noise { amp: 60, seed: 5 },
            3,
        ),
    ];
    run(&mut conf, &mut phones, 150, |_, _, p| vec![p]);
    assert!(!conf.is_speaking(phones[0].id));
    let heard = &phones[0].heard;
    let slope = amp * 2.0 * std::f64::consts::PI * freq / 16000.0;
    let step = max_step(&heard[8000..]) as f64;
    assert!(
        step < slope * 1.5,
        "seam at the switch: step {step:.0} vs slope {slope:.0}"
    );
    let tail = &heard[heard.len() - 8000..];
    assert!(amp_db(tail, 16000, freq, amp).abs() < 1.0);
}

#[test]
fn a_g722_talker_displaced_mid_sentence_hears_no_seam() {
    // Two talkers mixed at a time. A and B talk, A hearing B on its own
    // stream; C starts louder and takes A's place while A is still talking,
    // so A goes over to the shared stream mid-word, from one G.722 encoder
    // to another: the phone's decoder must absorb the mismatch without a
    // click. (C starts before a second of quiet, so it is decoded
    // throughout.)
    let cfg = ConferenceConfig {
        rate: 16000,
        max_speakers: 2,
        ..Default::default()
    };
    let mut conf = Conference::new(cfg).expect("conf");
    let (b_freq, b_amp) = (500.0, 6000.0);
    let mut phones = vec![
        Phone::join(
            &mut conf,
            CodecKind::G722,
            Signal::Tone {
                freq: 1100.0,
                amp: 2000.0,
            },
            1,
        ),
        Phone::join(
            &mut conf,
            CodecKind::G722,
            Signal::Tone {
                freq: b_freq,
                amp: b_amp,
            },
            2,
        ),
        Phone::join(
            &mut conf,
            CodecKind::G722,
            Signal::NoiseThenTone {
                amp: 60,
                seed: 4,
                at: 12800,
                freq: 300.0,
                tone: 6000.0,
            },
            3,
        ),
        Phone::join(
            &mut conf,
            CodecKind::G722,
            Signal::Noise { amp: 60, seed: 5 },
            4,
        ),
    ];
    run(&mut conf, &mut phones, 120, |_, _, p| vec![p]);
    assert!(!conf.is_speaking(phones[0].id) && conf.is_speaking(phones[2].id));
    let heard = &phones[0].heard;
    // Steps no bigger than B's and C's tones together can make.
    let slope = 2.0 * std::f64::consts::PI * (b_amp * b_freq + 6000.0 * 300.0) / 16000.0;
    let step = max_step(&heard[8000..]) as f64;
    assert!(
        step < slope * 1.3,
        "seam at the switch: step {step:.0} vs slope {slope:.0}"
    );
}

#[test]
fn a_talker_entering_the_mix_is_faded_in() {
    // L16, so nothing in the codec softens it: C's tone starts at its
    // peak, and listeners must not hear that as a click.
    let kind = CodecKind::L16 { rate: 16000 };
    let mut conf = Conference::new(ConferenceConfig {
        rate: 16000,
        ..Default::default()
    })
    .expect("conf");
    let (freq, amp) = (300.3125, 6000.0); // 240.25 cycles in 0.8 s
    let mut phones = vec![
        Phone::join(
            &mut conf,
            kind,
            Signal::NoiseThenTone {
                amp: 60,
                seed: 4,
                at: 12800,
                freq,
                tone: amp,
            },
            1,
        ),
        Phone::join(&mut conf, kind, Signal::Noise { amp: 60, seed: 5 }, 2),
    ];
    run(&mut conf, &mut phones, 60, |_, _, p| vec![p]);
    assert!(conf.is_speaking(phones[0].id));
    let heard = &phones[1].heard;
    let slope = amp * 2.0 * std::f64::consts::PI * freq / 16000.0;
    let step = max_step(heard) as f64;
    assert!(
        step < slope * 1.3,
        "entry clicks: step {step:.0} vs slope {slope:.0}"
    );
    let tail = &heard[heard.len() - 4000..];
    assert!(amp_db(tail, 16000, freq, amp).abs() < 0.5);
}

#[test]
fn every_rate_and_tick_mixes_the_same() {
    // 10 and 40 ms ticks, 32 kHz mixing: the same three-way check, with a
    // codec of each kind so every path resamples.
    for (rate, tick_ms) in [(8000, 10), (32000, 40), (32000, 10), (16000, 40)] {
        let cfg = ConferenceConfig {
            rate,
            tick_ms,
            ..Default::default()
        };
        let mut conf = Conference::new(cfg).expect("conf");
        let lines = [
            (CodecKind::Pcmu, 450.0),
            (CodecKind::G722, 950.0),
            (CodecKind::L16 { rate: 48000 }, 1700.0),
        ];
        let amp = 5000.0;
        let mut phones: Vec<Phone> = lines
            .iter()
            .enumerate()
            .map(|(k, &(kind, freq))| {
                Phone::join(&mut conf, kind, Signal::Tone { freq, amp }, 30 + k as u32)
            })
            .collect();
        let ticks = 1000 / tick_ms as usize;
        run(&mut conf, &mut phones, ticks, |_, _, p| vec![p]);
        for (k, ph) in phones.iter().enumerate() {
            let r = ph.kind.rate();
            let tail = &ph.heard[ph.heard.len() - r as usize / 2..];
            for (j, &(_, freq)) in lines.iter().enumerate() {
                let db = amp_db(tail, r, freq, amp);
                if j == k {
                    assert!(
                        db < -40.0,
                        "{rate} Hz/{tick_ms} ms: line {k} hears itself at {db:.1} dB"
                    );
                } else {
                    assert!(
                        db.abs() < 1.0,
                        "{rate} Hz/{tick_ms} ms: line {k} hears {freq} Hz at {db:.1} dB"
                    );
                }
            }
        }
    }
}

#[test]
fn silent_room_sends_silence_and_costs_no_speakers() {
    let mut conf = Conference::new(ConferenceConfig {
        rate: 8000,
        ..Default::default()
    })
    .expect("conf");
    let mut phones: Vec<Phone> = (0..5)
        .map(|k| Phone::join(&mut conf, CodecKind::Pcmu, Signal::Nothing, k))
        .collect();
    run(&mut conf, &mut phones, 10, |_, _, p| vec![p]);
    assert_eq!(conf.speakers().count(), 0);
    for ph in &phones {
        assert!(ph.heard.iter().all(|&s| s == 0));
    }
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let mut conf = Conference::new(ConferenceConfig::default()).expect("conf");
    let id = conf
        .add_participant(ParticipantConfig {
            codec: CodecKind::Pcmu,
            payload_type: 0,
            ssrc: 1,
        })
        .expect("join");
    let now = Instant::now();
    assert!(conf.push_rtp(id, &[0x80, 0, 1], now).is_err());
    assert!(conf.push_rtp(id, &[0u8; 40], now).is_err());
    // A payload that is not one frame long is counted and concealed.
    let mut pkt = vec![0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9];
    pkt.extend_from_slice(&[0xFF; 77]);
    conf.push_rtp(id, &pkt, now).expect("valid RTP");
    for _ in 0..3 {
        assert_eq!(conf.tick(now).count(), 1);
    }
    assert_eq!(conf.stats(id).expect("stats").undecodable, 1);
    assert!(conf.remove_participant(id));
    assert!(!conf.remove_participant(id));
    assert!(conf.push_rtp(id, &pkt, now).is_err());
}
