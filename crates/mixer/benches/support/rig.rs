//! Workloads shared by the criterion bench and the instruction-count
//! example: the bare 3-party G.711 kernel and whole-engine conferences.

use std::time::Instant;

use media::analysis::tone_from;
use media::{AnyCodec, Codec, CodecKind, g711};
use mixer::{Conference, ConferenceConfig, ParticipantConfig, ParticipantId, kernel};
use rtp::{RtpHeader, RtpHeaderMut};

const FRAME: usize = 160;

/// One 3-party G.711 conference's buffers.
pub struct Three {
    input: [[u8; FRAME]; 3],
    pcm: [[i16; FRAME]; 3],
    acc: [i32; FRAME],
    mix: [i16; FRAME],
    pub out: [[u8; FRAME]; 3],
}

impl Three {
    pub fn new(seed: usize) -> Self {
        let mut input = [[0u8; FRAME]; 3];
        for (k, inp) in input.iter_mut().enumerate() {
            let t = tone_from(8000, 300.0 + 200.0 * k as f64, 6000.0, seed * FRAME, FRAME);
            g711::ulaw_encode(&t, inp);
        }
        Three {
            input,
            pcm: [[0; FRAME]; 3],
            acc: [0; FRAME],
            mix: [0; FRAME],
            out: [[0; FRAME]; 3],
        }
    }

    #[inline]
    pub fn mix(&mut self) {
        self.acc.fill(0);
        for k in 0..3 {
            g711::ulaw_decode(&self.input[k], &mut self.pcm[k]);
            kernel::accumulate(&mut self.acc, &self.pcm[k]);
        }
        for k in 0..3 {
            kernel::minus_own(&mut self.mix, &self.acc, &self.pcm[k]);
            g711::ulaw_encode(&self.mix, &mut self.out[k]);
        }
    }
}

/// A conference and, per participant, a packet template replayed with
/// advancing sequence numbers.
pub struct Rig {
    conf: Conference,
    lines: Vec<(ParticipantId, Vec<Vec<u8>>)>,
    seq: u16,
    ts_step: u32,
    t0: Instant,
    out: [u8; 4096],
}

impl Rig {
    /// `talkers` lines send tones, `quiet` lines send faint noise, `mute`
    /// lines send nothing; all in `kind`, in a conference at its rate.
    pub fn new(kind: CodecKind, talkers: usize, quiet: usize, mute: usize) -> Rig {
        let rate = kind.rate();
        let n = (rate / 50) as usize;
        let pt = kind.static_payload_type().unwrap_or(96);
        let mut conf = Conference::new(ConferenceConfig {
            rate,
            ..Default::default()
        })
        .expect("conf");
        let mut lines = Vec::new();
        let mut seed = 1u32;
        for k in 0..talkers + quiet + mute {
            let id = conf
                .add_participant(ParticipantConfig {
                    codec: kind,
                    payload_type: pt,
                    ssrc: k as u32,
                })
                .expect("add");
            // 50 frames (one second) of audio, replayed; an encoder per
            // line, as stateful codecs (G.722) need.
            let mut enc = AnyCodec::new(kind).expect("codec");
            let frames: Vec<Vec<u8>> = if k >= talkers + quiet {
                Vec::new()
            } else {
                (0..50)
                    .map(|f| {
                        let pcm: Vec<i16> = if k < talkers {
                            tone_from(rate, 300.0 + 250.0 * k as f64, 6000.0, f * n, n)
                        } else {
                            (0..n)
                                .map(|_| {
                                    seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
                                    ((seed >> 16) as i32 % 121 - 60) as i16
                                })
                                .collect()
                        };
                        let mut pkt = vec![0u8; 12 + kind.payload_len(n)];
                        let h = RtpHeader {
                            marker: false,
                            payload_type: pt,
                            sequence_number: 0,
                            timestamp: 0,
                            ssrc: 0x100 + k as u32,
                            csrcs: &[],
                            extension: None,
                        };
                        let hl = h.write(&mut pkt).expect("header");
                        let len = enc.encode(&pcm, &mut pkt[hl..]).expect("encode");
                        pkt.truncate(hl + len);
                        pkt
                    })
                    .collect()
            };
            lines.push((id, frames));
        }
        let ts_step = (n as u64 * kind.rtp_clock_rate() as u64 / rate as u64) as u32;
        let mut rig = Rig {
            conf,
            lines,
            seq: 0,
            ts_step,
            t0: Instant::now(),
            out: [0; 4096],
        };
        for _ in 0..60 {
            rig.tick();
        }
        rig
    }

    pub fn tick(&mut self) -> usize {
        let seq = self.seq;
        self.seq = seq.wrapping_add(1);
        let f = seq as usize % 50;
        for (id, frames) in self.lines.iter_mut() {
            if let Some(pkt) = frames.get_mut(f) {
                let mut h = RtpHeaderMut::new(pkt).expect("rtp");
                h.set_sequence_number(seq);
                h.set_timestamp((seq as u32).wrapping_mul(self.ts_step));
                self.conf.push_rtp(*id, pkt, self.t0).expect("push");
            }
        }
        let mut bytes = 0;
        for o in self.conf.tick(self.t0) {
            bytes += o.write(&mut self.out).expect("write");
        }
        bytes
    }
}
