//! Measurements a listener would make: level, the energy at one frequency,
//! the biggest step between samples. Used by tests and benches here and in
//! the mixer; cheap enough for statistics but not meant for the hot path.

/// Root-mean-square level of a block of samples.
pub fn rms(x: &[i16]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    let sum: f64 = x.iter().map(|&s| (s as f64) * (s as f64)).sum();
    (sum / x.len() as f64).sqrt()
}

/// Level in dB relative to a full-scale sine (an RMS of 23170).
pub fn dbfs(x: &[i16]) -> f64 {
    20.0 * (rms(x).max(1e-9) / 23170.0).log10()
}

/// Power of `x` at `freq` Hz (Goertzel), normalised so a sine of amplitude
/// A gives about A²/4 whatever the block length.
pub fn goertzel_power(x: &[i16], rate: u32, freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / rate as f64;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s0 = v as f64 + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let p = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    let n = x.len().max(1) as f64;
    p / (n * n)
}

/// Amplitude of the sine at `freq` Hz in `x` (from [`goertzel_power`]).
pub fn tone_amplitude(x: &[i16], rate: u32, freq: f64) -> f64 {
    2.0 * goertzel_power(x, rate, freq).sqrt()
}

/// The largest absolute difference between neighbouring samples: a click
/// shows up as a step far bigger than the signal's own slope.
pub fn max_step(x: &[i16]) -> i32 {
    x.windows(2)
        .map(|w| (w[1] as i32 - w[0] as i32).abs())
        .max()
        .unwrap_or(0)
}

/// `len` samples of a sine at `freq` Hz and peak `amp`, starting at phase 0.
pub fn tone(rate: u32, freq: f64, amp: f64, len: usize) -> Vec<i16> {
    tone_from(rate, freq, amp, 0, len)
}

/// Samples `start..start + len` of the same sine: consecutive calls join
/// without a seam, as consecutive frames of one tone must.
pub fn tone_from(rate: u32, freq: f64, amp: f64, start: usize, len: usize) -> Vec<i16> {
    (start..start + len)
        .map(|i| {
            let t = i as f64 / rate as f64;
            (amp * (2.0 * std::f64::consts::PI * freq * t).sin()).round() as i16
        })
        .collect()
}
