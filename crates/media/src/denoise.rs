//! Noise suppression with RNNoise (the `nnnoiseless` port): a small
//! recurrent network trained on speech in noise, on 10 ms frames at 48 kHz.
//! Lines at 8, 16 or 32 kHz are resampled up for it and back down.
//!
//! It costs tens of microseconds per 20 ms frame, far more than mixing, so
//! a mixer runs it only where asked and only on lines being mixed.

use nnnoiseless::DenoiseState;

use crate::resample::{ResampleError, Resampler};

const RATE: u32 = 48_000;
const STEP: usize = DenoiseState::FRAME_SIZE;

/// Per-line state: the network's memory and the resamplers around it.
pub struct Denoiser {
    state: Box<DenoiseState<'static>>,
    up: Option<Resampler>,
    down: Option<Resampler>,
    /// One frame at 48 kHz, as i16 and as the f32 the network takes.
    wide: Box<[i16]>,
    input: Box<[f32]>,
    output: Box<[f32]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DenoiseError {
    #[error("a frame of {0} samples at {1} Hz is not a whole number of 10 ms steps")]
    Frame(usize, u32),
    #[error(transparent)]
    Resample(#[from] ResampleError),
}

impl Denoiser {
    /// For frames of `frame` samples at `rate` Hz (10, 20 or 40 ms).
    pub fn new(rate: u32, frame: usize) -> Result<Self, DenoiseError> {
        let wide_len = frame * RATE as usize / rate.max(1) as usize;
        if wide_len == 0
            || !wide_len.is_multiple_of(STEP)
            || wide_len * rate as usize != frame * RATE as usize
        {
            return Err(DenoiseError::Frame(frame, rate));
        }
        let (up, down) = if rate == RATE {
            (None, None)
        } else {
            (
                Some(Resampler::new(rate, RATE, frame)?),
                Some(Resampler::new(RATE, rate, wide_len)?),
            )
        };
        Ok(Denoiser {
            state: DenoiseState::new(),
            up,
            down,
            wide: vec![0; wide_len].into_boxed_slice(),
            input: vec![0.0; STEP].into_boxed_slice(),
            output: vec![0.0; STEP].into_boxed_slice(),
        })
    }

    /// Cleans one frame in place. Returns the network's speech
    /// probability for it (the mean over its 10 ms steps), 0..=1.
    pub fn process(&mut self, pcm: &mut [i16]) -> f32 {
        match self.up.as_mut() {
            Some(r) => {
                r.process(pcm, &mut self.wide);
            }
            None => self.wide.copy_from_slice(pcm),
        }
        let mut speech = 0.0;
        let steps = self.wide.len() / STEP;
        for chunk in self.wide.chunks_exact_mut(STEP) {
            for (x, &s) in self.input.iter_mut().zip(chunk.iter()) {
                *x = f32::from(s);
            }
            speech += self.state.process_frame(&mut self.output, &self.input);
            for (s, &y) in chunk.iter_mut().zip(self.output.iter()) {
                *s = y.round().clamp(-32768.0, 32767.0) as i16;
            }
        }
        match self.down.as_mut() {
            Some(r) => {
                r.process(&self.wide, pcm);
            }
            None => pcm.copy_from_slice(&self.wide),
        }
        speech / steps as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::rms;

    /// Reproducible white-ish noise (xorshift).
    fn noise(len: usize, amp: f64, seed: &mut u32) -> Vec<i16> {
        (0..len)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 17;
                *seed ^= *seed << 5;
                let u = f64::from(*seed) / f64::from(u32::MAX) * 2.0 - 1.0;
                (u * amp * 32767.0) as i16
            })
            .collect()
    }

    #[test]
    fn steady_noise_is_taken_down() {
        for rate in [16_000u32, 48_000] {
            let frame = (rate / 50) as usize;
            let mut d = Denoiser::new(rate, frame).expect("denoiser");
            let mut seed = 7;
            let (mut before, mut after) = (0.0, 0.0);
            for f in 0..150 {
                let mut pcm = noise(frame, 0.05, &mut seed);
                let r_in = rms(&pcm);
                d.process(&mut pcm);
                // Once the network has settled (the first second).
                if f >= 50 {
                    before += r_in;
                    after += rms(&pcm);
                }
            }
            let cut_db = 20.0 * (before / after.max(1e-9)).log10();
            assert!(cut_db > 10.0, "{rate} Hz: noise only {cut_db:.1} dB lower");
        }
    }

    /// A voiced-speech stand-in: a 140 Hz glottal-like harmonic series
    /// with a syllable rhythm (4 Hz).
    fn voice(rate: u32, start: usize, len: usize, amp: f64) -> Vec<i16> {
        (start..start + len)
            .map(|i| {
                let t = i as f64 / f64::from(rate);
                let env = 0.5 + 0.5 * (2.0 * std::f64::consts::PI * 4.0 * t).sin();
                let v: f64 = (1..=24)
                    .map(|k| (2.0 * std::f64::consts::PI * 140.0 * k as f64 * t).sin() / k as f64)
                    .sum();
                (amp * env * v) as i16
            })
            .collect()
    }

    #[test]
    fn speech_in_noise_keeps_the_speech() {
        let (rate, frame) = (16_000u32, 320usize);
        let mut d = Denoiser::new(rate, frame).expect("denoiser");
        let mut seed = 11;
        let (mut speech_in, mut out) = (0.0, 0.0);
        for f in 0..150 {
            let clean = voice(rate, f * frame, frame, 3000.0);
            let n = noise(frame, 0.03, &mut seed);
            let mut pcm: Vec<i16> = clean
                .iter()
                .zip(&n)
                .map(|(a, b)| a.saturating_add(*b))
                .collect();
            d.process(&mut pcm);
            if f >= 50 {
                speech_in += rms(&clean);
                out += rms(&pcm);
            }
        }
        let kept_db = 20.0 * (out / speech_in).log10();
        assert!(kept_db > -6.0, "speech came out {kept_db:.1} dB down");
    }

    #[test]
    fn frames_must_be_whole_steps() {
        assert!(Denoiser::new(8000, 160).is_ok());
        assert!(Denoiser::new(8000, 100).is_err());
    }
}
