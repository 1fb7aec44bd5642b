//! Fixed-ratio polyphase resampling (Kaiser-windowed sinc), frame by frame.
//!
//! The ratios a voice platform needs are few and exact (8, 16, 32, 48 kHz),
//! so each output sample is one dot product of precomputed taps with the
//! input: no fractional-position arithmetic, no FFT, no allocation after
//! construction. Frames must hold a whole number of the ratio's input
//! periods (20 ms at any of these rates does), which keeps the phase at 0
//! at every frame start.

/// Zero crossings of the sinc on each side, at the lower of the two rates:
/// with the Kaiser window below this gives > 60 dB of stop-band rejection.
const ZERO_CROSSINGS: f64 = 10.0;
/// Pass band as a fraction of the lower Nyquist frequency.
const ROLLOFF: f64 = 0.94;
const KAISER_BETA: f64 = 8.0;
/// Taps are padded to a multiple of this so the dot product vectorises.
const LANES: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResampleError {
    #[error("rates must be non-zero")]
    ZeroRate,
    #[error("a frame of {0} samples is not a whole number of resampling periods")]
    FrameNotMultiple(usize),
}

/// Converts frames of `frame_in` samples at `from` Hz into frames of
/// `frame_out` samples at `to` Hz. Adds a fixed delay of half the filter.
#[derive(Debug, Clone)]
pub struct Resampler {
    up: usize,
    down: usize,
    taps: usize,
    /// `up` phases × `taps` coefficients.
    coeffs: Box<[f32]>,
    /// The last `taps - 1` input samples, then the current frame.
    buf: Box<[f32]>,
    frame_in: usize,
    frame_out: usize,
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Zeroth-order modified Bessel function of the first kind (power series).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let q = x * x / 4.0;
    for k in 1..50 {
        term *= q / (k * k) as f64;
        sum += term;
        if term < sum * 1e-12 {
            break;
        }
    }
    sum
}

impl Resampler {
    pub fn new(from: u32, to: u32, frame_in: usize) -> Result<Self, ResampleError> {
        if from == 0 || to == 0 {
            return Err(ResampleError::ZeroRate);
        }
        let g = gcd(from as usize, to as usize);
        let (up, down) = (to as usize / g, from as usize / g);
        if !frame_in.is_multiple_of(down) {
            return Err(ResampleError::FrameNotMultiple(frame_in));
        }
        let frame_out = frame_in / down * up;

        // Cut-off in cycles per input sample, below the lower Nyquist.
        let fc = 0.5 * ROLLOFF * (up as f64 / down as f64).min(1.0);
        let half_width = ZERO_CROSSINGS / (2.0 * fc / ROLLOFF);
        let taps_raw = (2.0 * half_width).ceil() as usize;
        let taps = taps_raw.div_ceil(LANES) * LANES;
        let half = (taps / 2) as f64;

        let mut coeffs = vec![0f32; up * taps];
        let i0_beta = bessel_i0(KAISER_BETA);
        for p in 0..up {
            let frac = p as f64 / up as f64;
            let row = &mut coeffs[p * taps..(p + 1) * taps];
            let mut sum = 0.0;
            let mut h = vec![0f64; taps];
            for (j, hj) in h.iter_mut().enumerate() {
                // Distance (in input samples) from this tap to the output
                // instant, which lags the newest input by half the filter.
                let t = frac + half - 1.0 - j as f64;
                let u = t / half_width;
                if u.abs() >= 1.0 {
                    continue;
                }
                let x = 2.0 * fc * t;
                let sinc = if x.abs() < 1e-12 {
                    1.0
                } else {
                    (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x)
                };
                let w = bessel_i0(KAISER_BETA * (1.0 - u * u).sqrt()) / i0_beta;
                *hj = 2.0 * fc * sinc * w;
                sum += *hj;
            }
            // Unity gain at DC for every phase, so no phase ripples.
            for (r, hj) in row.iter_mut().zip(&h) {
                *r = (hj / sum) as f32;
            }
        }

        Ok(Resampler {
            up,
            down,
            taps,
            coeffs: coeffs.into_boxed_slice(),
            // LANES of slack: the last vector block of `upsample` reads past\n            // the frame (those lanes are discarded).
            buf: vec![0f32; taps - 1 + frame_in + LANES].into_boxed_slice(),
            frame_in,
            frame_out,
        })
    }

    pub fn frame_in(&self) -> usize {
        self.frame_in
    }

    pub fn frame_out(&self) -> usize {
        self.frame_out
    }

    /// Delay added, in output samples.
    pub fn delay(&self) -> usize {
        self.taps / 2 * self.up / self.down
    }

    /// Forgets the history, as at a new stream.
    pub fn reset(&mut self) {
        self.buf.fill(0.0);
    }

    /// Resamples one frame. `input` must be `frame_in` long and `output`
    /// at least `frame_out`; returns `frame_out`.
    pub fn process(&mut self, input: &[i16], output: &mut [i16]) -> usize {
        assert!(
            input.len() == self.frame_in && output.len() >= self.frame_out,
            "frame size"
        );
        let hist = self.taps - 1;
        for (b, &s) in self.buf[hist..].iter_mut().zip(input) {
            *b = s as f32;
        }
        let out = &mut output[..self.frame_out];
        if self.down == 1 {
            upsample(&self.buf, &self.coeffs, self.taps, self.up, out);
        } else {
            polyphase(&self.buf, &self.coeffs, self.taps, self.up, self.down, out);
        }
        let keep = self.frame_in..self.frame_in + hist;
        self.buf.copy_within(keep, 0);
        self.frame_out
    }
}

/// Rounds half away from zero and saturates, with only a truncating
/// conversion (which every x86-64 has in vector form).
#[inline(always)]
fn to_i16(v: f32) -> i16 {
    ((v + 0.5f32.copysign(v)) as i32).clamp(-32768, 32767) as i16
}

crate::dispatch_avx2!(
    /// Integer-factor upsampling. Each phase is a plain FIR over
    /// consecutive inputs, so it vectorises across outputs: one broadcast
    /// tap times eight neighbouring inputs, with no horizontal sums.
    fn upsample(buf: &[f32], coeffs: &[f32], taps: usize, up: usize, out: &mut [i16]) {
        let frame_in = out.len() / up;
        for p in 0..up {
            let h = &coeffs[p * taps..(p + 1) * taps];
            let mut k = 0;
            while k < frame_in {
                let n = (frame_in - k).min(LANES);
                let mut acc = [0f32; LANES];
                for (j, &hj) in h.iter().enumerate() {
                    let x = &buf[k + j..k + j + LANES];
                    for l in 0..LANES {
                        acc[l] += hj * x[l];
                    }
                }
                for l in 0..n {
                    out[p + up * (k + l)] = to_i16(acc[l]);
                }
                k += n;
            }
        }
    }
);

crate::dispatch_avx2!(
    /// Any ratio: each output is one dot product of its phase's taps with
    /// the inputs under them.
    fn polyphase(
        buf: &[f32],
        coeffs: &[f32],
        taps: usize,
        up: usize,
        down: usize,
        out: &mut [i16],
    ) {
        for (n, o) in out.iter_mut().enumerate() {
            let pos = n * down;
            let (base, phase) = (pos / up, pos % up);
            let x = &buf[base..base + taps];
            let h = &coeffs[phase * taps..(phase + 1) * taps];
            *o = to_i16(dot(x, h));
        }
    }
);

/// Dot product with independent lane accumulators, so the compiler may
/// vectorise it without reassociating a single sum.
#[inline(always)]
fn dot(x: &[f32], h: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    for (xc, hc) in x.chunks_exact(LANES).zip(h.chunks_exact(LANES)) {
        for l in 0..LANES {
            acc[l] += xc[l] * hc[l];
        }
    }
    acc.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{goertzel_power, rms, tone_from};

    fn run(from: u32, to: u32, freq: f64, amp: f64) -> (Vec<i16>, Resampler) {
        let frame = from as usize / 50;
        let mut r = Resampler::new(from, to, frame).expect("ratio");
        let mut out = vec![0i16; r.frame_out() * 25];
        for (k, o) in out.chunks_mut(r.frame_out()).enumerate() {
            let x = tone_from(from, freq, amp, k * frame, frame);
            r.process(&x, o);
        }
        (out, r)
    }

    #[test]
    fn tones_keep_frequency_and_level_across_all_ratios() {
        let rates = [8000, 16000, 32000, 48000];
        for &from in &rates {
            for &to in &rates {
                let freq = 1000.0;
                let (out, r) = run(from, to, freq, 10000.0);
                let tail = &out[r.frame_out() * 5..];
                let ratio = rms(tail) / (10000.0 / 2f64.sqrt());
                assert!((ratio - 1.0).abs() < 0.01, "{from}->{to}: level {ratio}");
                let at = goertzel_power(tail, to, freq);
                let off = goertzel_power(tail, to, 1700.0);
                assert!(at > 1e5 * off, "{from}->{to}: leakage");
            }
        }
    }

    #[test]
    fn downsampling_rejects_what_the_lower_rate_cannot_carry() {
        // A 6 kHz tone at 48 kHz has no place at 8 kHz: it must not alias
        // to 2 kHz (8 - 6).
        let (out, r) = run(48000, 8000, 6000.0, 10000.0);
        let tail = &out[r.frame_out() * 5..];
        let level = 20.0 * (rms(tail).max(0.5) / 7071.0).log10();
        assert!(level < -60.0, "alias at {level:.1} dB");
        // Pass band: flat within 0.5 dB to 2.5 kHz, and 3.4 kHz (the top of
        // the telephone band) down by less than 3 dB.
        for (freq, tol) in [(300.0, 0.5), (1000.0, 0.5), (2500.0, 0.5), (3400.0, 3.0)] {
            let (out, r) = run(48000, 8000, freq, 10000.0);
            let tail = &out[r.frame_out() * 5..];
            let level = 20.0 * (rms(tail) / 7071.0).log10();
            assert!(level.abs() < tol, "{freq} Hz at {level:.2} dB");
        }
    }

    #[test]
    fn frames_join_without_seams() {
        // A tone resampled frame by frame is as smooth as the tone itself.
        let (out, r) = run(8000, 48000, 440.0, 10000.0);
        let tail = &out[r.frame_out() * 2..];
        let slope = 10000.0 * 2.0 * std::f64::consts::PI * 440.0 / 48000.0;
        assert!(crate::analysis::max_step(tail) as f64 <= slope * 1.05 + 2.0);
    }

    #[test]
    fn integer_upsampling_matches_the_general_path() {
        for (from, to) in [(8000, 16000), (8000, 48000), (16000, 48000)] {
            let frame = from as usize / 50;
            let mut r = Resampler::new(from, to, frame).expect("ratio");
            let mut fast = vec![0i16; r.frame_out()];
            r.process(&tone_from(from, 700.0, 9000.0, 0, frame), &mut fast);
            let x = tone_from(from, 700.0, 9000.0, frame, frame);
            // The general dot-product path over the same history and input.
            let mut g = r.clone();
            for (b, &s) in g.buf[g.taps - 1..].iter_mut().zip(&x) {
                *b = s as f32;
            }
            let mut slow = vec![0i16; r.frame_out()];
            polyphase(&g.buf, &g.coeffs, g.taps, g.up, 1, &mut slow);
            r.process(&x, &mut fast);
            let diff = fast.iter().zip(&slow).map(|(a, b)| (a - b).abs()).max();
            assert!(diff <= Some(1), "{from}->{to}: differ by {diff:?}");
        }
    }

    #[test]
    fn rejects_frames_that_split_a_period() {
        assert_eq!(
            Resampler::new(48000, 32000, 961).err(),
            Some(ResampleError::FrameNotMultiple(961))
        );
        assert!(Resampler::new(0, 8000, 160).is_err());
    }
}
