//! A phone for conference tests: sends a tone (or noise, or nothing),
//! decodes what it is sent and checks the stream runs on; and the loop
//! that drives phones and a conference tick by tick.

// Each test binary uses its own part of this.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use media::analysis::{tone_amplitude, tone_from};
use media::{AnyCodec, Codec, CodecKind};
use mixer::{Conference, ParticipantConfig, ParticipantId};
use rtp::{RtpHeader, RtpPacket};

/// A phone: sends a tone (or noise, or nothing) and decodes what it is sent.
pub struct Phone {
    pub id: ParticipantId,
    pub kind: CodecKind,
    pub pt: u8,
    pub enc: AnyCodec,
    pub dec: AnyCodec,
    pub seq: u16,
    pub ts: u32,
    pub pos: usize,
    pub signal: Signal,
    pub heard: Vec<i16>,
    pub last_rx: Option<(u16, u32)>,
    pub remote_ssrc: u32,
}

#[derive(Clone, Copy)]
pub enum Signal {
    Tone {
        freq: f64,
        amp: f64,
    },
    Noise {
        amp: i32,
        seed: u32,
    },
    /// Faint noise until sample `at`, then a tone.
    NoiseThenTone {
        amp: i32,
        seed: u32,
        at: usize,
        freq: f64,
        tone: f64,
    },
    /// A tone until sample `at`, then faint noise.
    ToneThenNoise {
        amp: i32,
        seed: u32,
        at: usize,
        freq: f64,
        tone: f64,
    },
    /// A voiced-speech stand-in (a 140 Hz harmonic series with a 4 Hz
    /// syllable rhythm), with hiss of peak `hiss` under it (0: none).
    Voice {
        amp: f64,
        hiss: i32,
        seed: u32,
    },
    Nothing,
}

pub fn lcg_noise(seed: &mut u32, amp: i32, n: usize) -> Vec<i16> {
    (0..n)
        .map(|_| {
            *seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
            ((*seed >> 16) as i32 % (2 * amp + 1) - amp) as i16
        })
        .collect()
}

impl Phone {
    pub fn join(conf: &mut Conference, kind: CodecKind, signal: Signal, ssrc: u32) -> Phone {
        let pt = kind.static_payload_type().unwrap_or(96);
        let id = conf
            .add_participant(ParticipantConfig {
                codec: kind,
                payload_type: pt,
                ssrc,
            })
            .expect("join");
        Phone {
            id,
            kind,
            pt,
            enc: AnyCodec::new(kind).expect("codec"),
            dec: AnyCodec::new(kind).expect("codec"),
            seq: (ssrc as u16).wrapping_mul(7),
            ts: ssrc.wrapping_mul(13),
            pos: 0,
            signal,
            heard: Vec::new(),
            last_rx: None,
            remote_ssrc: ssrc ^ 0x5EED_0000,
        }
    }

    pub fn frame_len(&self, tick_ms: u32) -> usize {
        (self.kind.rate() * tick_ms / 1000) as usize
    }

    /// The PCM of its next frame.
    pub fn next_pcm(&mut self, n: usize) -> Vec<i16> {
        let pcm = match &mut self.signal {
            Signal::Tone { freq, amp } => tone_from(self.kind.rate(), *freq, *amp, self.pos, n),
            Signal::Noise { amp, seed } => lcg_noise(seed, *amp, n),
            Signal::NoiseThenTone {
                amp,
                seed,
                at,
                freq,
                tone,
            } => {
                if self.pos >= *at {
                    tone_from(self.kind.rate(), *freq, *tone, self.pos, n)
                } else {
                    lcg_noise(seed, *amp, n)
                }
            }
            Signal::ToneThenNoise {
                amp,
                seed,
                at,
                freq,
                tone,
            } => {
                if self.pos < *at {
                    tone_from(self.kind.rate(), *freq, *tone, self.pos, n)
                } else {
                    lcg_noise(seed, *amp, n)
                }
            }
            Signal::Voice { amp, hiss, seed } => {
                let rate = f64::from(self.kind.rate());
                let noise = if *hiss > 0 {
                    lcg_noise(seed, *hiss, n)
                } else {
                    vec![0; n]
                };
                (0..n)
                    .map(|i| {
                        let t = (self.pos + i) as f64 / rate;
                        let env = 0.5 + 0.5 * (2.0 * std::f64::consts::PI * 4.0 * t).sin();
                        let v: f64 = (1..=24)
                            .filter(|k| 140.0 * *k as f64 * 2.0 < rate)
                            .map(|k| {
                                (2.0 * std::f64::consts::PI * 140.0 * k as f64 * t).sin() / k as f64
                            })
                            .sum();
                        ((*amp * env * v) as i16).saturating_add(noise[i])
                    })
                    .collect()
            }
            Signal::Nothing => vec![0; n],
        };
        self.pos += n;
        pcm
    }

    /// Its next RTP packet.
    pub fn next_packet(&mut self, tick_ms: u32) -> Vec<u8> {
        let n = self.frame_len(tick_ms);
        let pcm = self.next_pcm(n);
        let mut payload = vec![0u8; self.kind.payload_len(n)];
        let len = self.enc.encode(&pcm, &mut payload).expect("encode");
        payload.truncate(len);
        let header = RtpHeader {
            marker: false,
            payload_type: self.pt,
            sequence_number: self.seq,
            timestamp: self.ts,
            ssrc: self.remote_ssrc,
            csrcs: &[],
            extension: None,
        };
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(
            (n as u64 * self.kind.rtp_clock_rate() as u64 / self.kind.rate() as u64) as u32,
        );
        let mut buf = vec![0u8; 12 + payload.len()];
        let h = header.write(&mut buf).expect("header");
        buf[h..].copy_from_slice(&payload);
        buf
    }

    /// Decodes a packet sent to it, checking the stream's continuity.
    pub fn receive(&mut self, packet: &[u8], tick_ms: u32) {
        let pkt = RtpPacket::parse(packet).expect("mixer sends valid RTP");
        assert_eq!(pkt.payload_type(), self.pt);
        if let Some((seq, ts)) = self.last_rx {
            assert_eq!(
                pkt.sequence_number(),
                seq.wrapping_add(1),
                "sequence numbers run on"
            );
            let step = (self.frame_len(tick_ms) as u64 * self.kind.rtp_clock_rate() as u64
                / self.kind.rate() as u64) as u32;
            assert_eq!(pkt.timestamp(), ts.wrapping_add(step), "timestamps run on");
        }
        self.last_rx = Some((pkt.sequence_number(), pkt.timestamp()));
        let mut pcm = vec![0i16; self.frame_len(tick_ms)];
        let n = self.dec.decode(pkt.payload(), &mut pcm).expect("decode");
        assert_eq!(n, pcm.len(), "one frame per packet");
        self.heard.extend_from_slice(&pcm);
    }
}

/// Runs `ticks` ticks: every phone sends (unless `drop` says otherwise),
/// then the conference ticks and each phone receives its packet.
pub fn run(
    conf: &mut Conference,
    phones: &mut [Phone],
    ticks: usize,
    mut deliver: impl FnMut(usize, usize, Vec<u8>) -> Vec<Vec<u8>>,
) {
    let tick_ms = conf.config().tick_ms;
    let t0 = Instant::now();
    for t in 0..ticks {
        let now = t0 + Duration::from_millis(t as u64 * tick_ms as u64);
        for (k, ph) in phones.iter_mut().enumerate() {
            if matches!(ph.signal, Signal::Nothing) {
                continue;
            }
            let pkt = ph.next_packet(tick_ms);
            for p in deliver(t, k, pkt) {
                conf.push_rtp(ph.id, &p, now).expect("push");
            }
        }
        let mut buf = [0u8; 4096];
        let outs: Vec<(ParticipantId, Vec<u8>)> = conf
            .tick(now)
            .map(|o| {
                let n = o.write(&mut buf).expect("write");
                (o.participant, buf[..n].to_vec())
            })
            .collect();
        assert_eq!(
            outs.len(),
            phones.len(),
            "one packet per participant per tick"
        );
        for (id, pkt) in outs {
            let ph = phones.iter_mut().find(|p| p.id == id).expect("known");
            ph.receive(&pkt, tick_ms);
        }
    }
}

pub fn amp_db(x: &[i16], rate: u32, freq: f64, reference: f64) -> f64 {
    20.0 * (tone_amplitude(x, rate, freq).max(1e-3) / reference).log10()
}
