//! Audio the conference plays by itself — announcements, hold music,
//! join/leave tones — held as PCM at the conference rate, and the
//! [`Player`] that steps through one, a tick at a time, into a mix.
//!
//! Loading (file reading, resampling) happens off the media thread; the
//! engine only ever holds an `Arc<Prompt>` and a position in it.

use std::path::Path;
use std::sync::Arc;

use media::Resampler;
use media::resample::ResampleError;
use media::wav::{Wav, WavError};

use crate::kernel;

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error(transparent)]
    Wav(#[from] WavError),
    #[error("resampling {from} Hz to {to} Hz: {err}")]
    Resample {
        from: u32,
        to: u32,
        err: ResampleError,
    },
}

/// Mono 16-bit PCM at one rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    rate: u32,
    samples: Box<[i16]>,
}

impl Prompt {
    /// Reads a 16-bit WAV (stereo is averaged) and brings it to `rate`.
    /// Blocking file I/O: call it from a control thread.
    pub fn from_wav(path: impl AsRef<Path>, rate: u32) -> Result<Prompt, PromptError> {
        let wav = Wav::open(path)?;
        Prompt::from_pcm(wav.rate, &wav.to_mono(), rate)
    }

    /// `samples` at `from` Hz, brought to `rate`.
    pub fn from_pcm(from: u32, samples: &[i16], rate: u32) -> Result<Prompt, PromptError> {
        let samples = resample(samples, from, rate).map_err(|err| PromptError::Resample {
            from,
            to: rate,
            err,
        })?;
        Ok(Prompt {
            rate,
            samples: samples.into_boxed_slice(),
        })
    }

    /// Notes played one after another, each `note_ms` long with a short
    /// gap, and faded in and out so they do not click.
    pub fn notes(rate: u32, freqs: &[f64], note_ms: u32, amp: f64) -> Prompt {
        let note = (rate * note_ms / 1000) as usize;
        let gap = (rate * 20 / 1000) as usize;
        let fade = (rate * 10 / 1000) as usize;
        let mut samples = Vec::with_capacity(freqs.len() * (note + gap));
        for &f in freqs {
            for i in 0..note {
                let edge = i.min(note - 1 - i);
                let env = if edge < fade {
                    edge as f64 / fade as f64
                } else {
                    1.0
                };
                let t = i as f64 / rate as f64;
                let s = amp * env * (2.0 * std::f64::consts::PI * f * t).sin();
                samples.push(s.round() as i16);
            }
            samples.extend(std::iter::repeat_n(0, gap));
        }
        Prompt {
            rate,
            samples: samples.into_boxed_slice(),
        }
    }

    /// The rising two notes played when someone joins.
    pub fn join_tone(rate: u32) -> Prompt {
        Prompt::notes(rate, &[JOIN_TONE[0], JOIN_TONE[1]], TONE_NOTE_MS, TONE_AMP)
    }

    /// The falling two notes played when someone leaves.
    pub fn leave_tone(rate: u32) -> Prompt {
        Prompt::notes(rate, &[JOIN_TONE[1], JOIN_TONE[0]], TONE_NOTE_MS, TONE_AMP)
    }

    pub fn rate(&self) -> u32 {
        self.rate
    }

    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    pub fn duration_ms(&self) -> u64 {
        self.samples.len() as u64 * 1000 / self.rate.max(1) as u64
    }
}

/// Join tone's notes, low then high (C5, G5: a fifth, clearly rising).
pub const JOIN_TONE: [f64; 2] = [523.25, 783.99];
/// Each note's length; two notes and their gaps make ~280 ms.
pub const TONE_NOTE_MS: u32 = 120;
/// About -20 dBFS: heard over speech, not startling.
pub const TONE_AMP: f64 = 3300.0;

/// Resamples a whole clip, compensating the filter's delay so the clip
/// neither starts late nor loses its end.
fn resample(input: &[i16], from: u32, to: u32) -> Result<Vec<i16>, ResampleError> {
    if from == to {
        return Ok(input.to_vec());
    }
    // Whole periods of the ratio per chunk, about 100 ms of input.
    let period = (from / gcd(from, to)) as usize;
    let chunk = period * (from as usize / 10 / period).max(1);
    let mut r = Resampler::new(from, to, chunk)?;
    let delay = r.delay();
    let want = (input.len() as u64 * to as u64 / from as u64) as usize;
    let mut out = Vec::with_capacity(want + delay + r.frame_out());
    let mut frame_in = vec![0i16; chunk];
    let mut frame_out = vec![0i16; r.frame_out()];
    let mut pos = 0;
    while out.len() < want + delay {
        frame_in.fill(0);
        let n = input.len().saturating_sub(pos).min(chunk);
        frame_in[..n].copy_from_slice(&input[pos..pos + n]);
        pos += n;
        let m = r.process(&frame_in, &mut frame_out);
        out.extend_from_slice(&frame_out[..m]);
    }
    out.drain(..delay);
    out.truncate(want);
    Ok(out)
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// A position in a prompt, played once or looped, after an optional
/// silence. Stepping it allocates nothing.
#[derive(Debug, Clone)]
pub struct Player {
    prompt: Arc<Prompt>,
    pos: usize,
    /// Samples of silence still to go before the prompt starts.
    delay: usize,
    looping: bool,
    /// Cut short: fades out over the next frame (no click), then done.
    stopping: bool,
    stopped: bool,
}

impl Player {
    pub fn once(prompt: Arc<Prompt>, delay: usize) -> Player {
        Player {
            prompt,
            pos: 0,
            delay,
            looping: false,
            stopping: false,
            stopped: false,
        }
    }

    pub fn looped(prompt: Arc<Prompt>) -> Player {
        Player {
            prompt,
            pos: 0,
            delay: 0,
            looping: true,
            stopping: false,
            stopped: false,
        }
    }

    /// Ends it early: the next frame fades it out.
    pub fn stop(&mut self) {
        self.stopping = true;
    }

    /// Samples left before a one-shot prompt ends (0 when looping).
    pub fn remaining(&self) -> usize {
        if self.looping {
            0
        } else {
            self.delay + self.prompt.len().saturating_sub(self.pos)
        }
    }

    pub fn is_done(&self) -> bool {
        self.stopped || (!self.looping && self.remaining() == 0)
    }

    /// Adds the next `acc.len()` samples into `acc` and moves on.
    pub fn mix_into(&mut self, acc: &mut [i32]) {
        if self.stopping {
            self.fade_out(acc);
            return;
        }
        let skip = self.delay.min(acc.len());
        self.delay -= skip;
        let mut acc = &mut acc[skip..];
        let samples = self.prompt.samples();
        while !acc.is_empty() && !samples.is_empty() {
            if self.pos >= samples.len() {
                if !self.looping {
                    return;
                }
                self.pos = 0;
            }
            let n = acc.len().min(samples.len() - self.pos);
            let (head, rest) = acc.split_at_mut(n);
            kernel::accumulate(head, &samples[self.pos..self.pos + n]);
            self.pos += n;
            acc = rest;
        }
    }
}

impl Player {
    /// The last frame of a prompt cut short, ramped down to nothing.
    /// Once per cut, so plain code.
    fn fade_out(&mut self, acc: &mut [i32]) {
        let samples = self.prompt.samples();
        let n = acc.len().max(1);
        for (i, a) in acc.iter_mut().enumerate() {
            if self.delay > 0 {
                self.delay -= 1;
                continue;
            }
            if self.pos >= samples.len() {
                if !self.looping || samples.is_empty() {
                    break;
                }
                self.pos = 0;
            }
            *a += samples[self.pos] as i32 * (n - i) as i32 / n as i32;
            self.pos += 1;
        }
        self.stopped = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use media::analysis::{tone, tone_amplitude};

    #[test]
    fn resampled_clip_keeps_its_length_timing_and_pitch() {
        let src = tone(44100, 1000.0, 8000.0, 44100);
        let p = Prompt::from_pcm(44100, &src, 16000).expect("resample");
        assert_eq!(p.len(), 16000);
        let mid = &p.samples()[4000..12000];
        let a = tone_amplitude(mid, 16000, 1000.0);
        assert!((a / 8000.0 - 1.0).abs() < 0.05, "amplitude {a}");
        // No delay added: sample for sample, it is the same sine at 16 kHz
        // (to within the filter delay's fraction of a sample).
        let want = tone(16000, 1000.0, 8000.0, 16000);
        let err = p.samples()[100..15900]
            .iter()
            .zip(&want[100..15900])
            .map(|(&a, &b)| (a as i32 - b as i32).abs())
            .max();
        // A whole sample late would be ~3000 off (the sine's slope).
        assert!(err < Some(800), "off the sine by {err:?}");
    }

    #[test]
    fn player_loops_and_stops() {
        let p = Arc::new(Prompt {
            rate: 8000,
            samples: vec![1, 2, 3].into_boxed_slice(),
        });
        let mut once = Player::once(p.clone(), 2);
        let mut acc = [0i32; 4];
        once.mix_into(&mut acc);
        assert_eq!(acc, [0, 0, 1, 2]);
        assert!(!once.is_done());
        let mut acc = [0i32; 4];
        once.mix_into(&mut acc);
        assert_eq!(acc, [3, 0, 0, 0]);
        assert!(once.is_done());
        let mut l = Player::looped(p);
        let mut acc = [0i32; 7];
        l.mix_into(&mut acc);
        assert_eq!(acc, [1, 2, 3, 1, 2, 3, 1]);
        assert!(!l.is_done());
    }

    #[test]
    fn a_stopped_player_fades_out_over_one_frame() {
        let p = Arc::new(Prompt {
            rate: 8000,
            samples: vec![1000; 100].into_boxed_slice(),
        });
        let mut l = Player::looped(p);
        l.stop();
        assert!(!l.is_done());
        let mut acc = [0i32; 4];
        l.mix_into(&mut acc);
        assert_eq!(acc, [1000, 750, 500, 250]);
        assert!(l.is_done());
    }

    #[test]
    fn join_tone_rises_and_leave_tone_falls() {
        let rate = 16000;
        let half = |p: &Prompt, k: usize| {
            let n = p.len() / 2;
            p.samples()[k * n..(k + 1) * n].to_vec()
        };
        let join = Prompt::join_tone(rate);
        let leave = Prompt::leave_tone(rate);
        let (lo, hi) = (JOIN_TONE[0], JOIN_TONE[1]);
        let amp = |x: &[i16], f| tone_amplitude(x, rate, f);
        assert!(amp(&half(&join, 0), lo) > 4.0 * amp(&half(&join, 0), hi));
        assert!(amp(&half(&join, 1), hi) > 4.0 * amp(&half(&join, 1), lo));
        assert!(amp(&half(&leave, 0), hi) > 4.0 * amp(&half(&leave, 0), lo));
        assert!((200..=300).contains(&join.duration_ms()));
    }
}
