//! Packet-loss concealment in the manner of ITU-T G.711 Appendix I: repeat
//! the last pitch period of good audio, fade it out after the first 10 ms
//! (to silence by 60 ms), and cross-fade back into real audio when it
//! returns, so neither the loss nor the recovery clicks.
//!
//! Works at any rate on 16-bit PCM frames; allocates only at construction.

/// Pitch search range, in ms: 66-400 Hz voices, as Appendix I.
const PITCH_MIN_MS: f32 = 2.5;
const PITCH_MAX_MS: f32 = 15.0;
/// Loss shorter than this plays at full level.
const FULL_LEVEL_MS: u32 = 10;
/// Loss longer than this is silent.
const SILENT_AFTER_MS: u32 = 60;
/// Cross-fade into good audio after a loss.
const RECOVER_MS: u32 = 4;

#[derive(Debug, Clone)]
pub struct Concealer {
    rate: u32,
    /// Recent good audio as a ring (3 × the longest pitch period), so a
    /// good frame costs one copy; `at` is where the next sample goes.
    ring: Box<[i16]>,
    at: usize,
    /// The ring laid out oldest first, rebuilt when a loss starts.
    history: Box<[i16]>,
    /// Scratch for the pitch search: the history as floats, and decimated
    /// to about 8 kHz.
    hist_f: Box<[f32]>,
    hist_d: Box<[f32]>,
    pitch_min: usize,
    pitch_max: usize,
    /// Samples concealed in the current loss (0 when not in a loss).
    lost: usize,
    pitch: usize,
    /// Next read position within the repeated period.
    pos: usize,
    /// Whether anything good has been heard since the last reset.
    primed: bool,
}

impl Concealer {
    pub fn new(rate: u32) -> Self {
        let ms = |m: f32| ((rate as f32) * m / 1000.0).round() as usize;
        let pitch_max = ms(PITCH_MAX_MS).max(2);
        Concealer {
            rate,
            ring: vec![0; 3 * pitch_max].into_boxed_slice(),
            at: 0,
            history: vec![0; 3 * pitch_max].into_boxed_slice(),
            hist_f: vec![0.0; 3 * pitch_max].into_boxed_slice(),
            hist_d: vec![0.0; 3 * pitch_max].into_boxed_slice(),
            pitch_min: ms(PITCH_MIN_MS).max(1),
            pitch_max,
            lost: 0,
            pitch: pitch_max,
            pos: 0,
            primed: false,
        }
    }

    /// True while concealing and not yet faded to silence: a caller with
    /// nothing to decode may stop calling [`conceal`](Self::conceal) once
    /// this is false.
    pub fn is_concealing(&self) -> bool {
        self.primed && self.lost < self.ms_to_samples(SILENT_AFTER_MS)
    }

    fn ms_to_samples(&self, ms: u32) -> usize {
        (self.rate * ms / 1000) as usize
    }

    /// Forgets the audio heard, as when the caller stops decoding a line:
    /// a later loss conceals as silence rather than as stale audio.
    pub fn reset(&mut self) {
        self.primed = false;
        self.lost = 0;
    }

    /// Takes a good decoded frame; if it ends a loss, its start is
    /// cross-faded from the concealment so the join is smooth.
    pub fn good_frame(&mut self, frame: &mut [i16]) {
        if self.lost > 0 && self.primed {
            let n = self.ms_to_samples(RECOVER_MS).min(frame.len());
            let gain_at_end = self.gain_at(self.lost);
            for (i, s) in frame[..n].iter_mut().enumerate() {
                let c = self.next_repeat() as f32 * gain_at_end;
                let w = (i + 1) as f32 / (n + 1) as f32;
                *s = round_i16(c * (1.0 - w) + *s as f32 * w);
            }
        }
        self.lost = 0;
        self.primed = true;
        self.push_history(frame);
    }

    /// Fills `out` with concealment for one lost frame.
    pub fn conceal(&mut self, out: &mut [i16]) {
        if !self.primed {
            out.fill(0);
            return;
        }
        if self.lost == 0 {
            let (new, old) = self.ring.split_at(self.at);
            self.history[..old.len()].copy_from_slice(old);
            self.history[old.len()..].copy_from_slice(new);
            self.pitch = self.find_pitch();
            self.pos = 0;
        }
        // Once silent, stay silent without the per-sample work.
        if self.lost >= self.ms_to_samples(SILENT_AFTER_MS) {
            out.fill(0);
            self.lost += out.len();
            return;
        }
        let (full, end) = (
            self.ms_to_samples(FULL_LEVEL_MS),
            self.ms_to_samples(SILENT_AFTER_MS),
        );
        let slope = 1.0 / (end - full) as f32;
        for s in out.iter_mut() {
            let g = if self.lost <= full {
                1.0
            } else {
                (1.0 - (self.lost - full) as f32 * slope).max(0.0)
            };
            *s = round_i16(self.next_repeat() as f32 * g);
            self.lost += 1;
        }
    }

    /// Level of the `n`th concealed sample: 1 for 10 ms, then a linear
    /// fade reaching 0 at 60 ms.
    fn gain_at(&self, n: usize) -> f32 {
        let full = self.ms_to_samples(FULL_LEVEL_MS);
        let end = self.ms_to_samples(SILENT_AFTER_MS);
        if n <= full {
            1.0
        } else if n >= end {
            0.0
        } else {
            1.0 - (n - full) as f32 / (end - full) as f32
        }
    }

    /// The next sample of the last pitch period, repeated.
    fn next_repeat(&mut self) -> i16 {
        let h = self.history.len();
        let s = self.history[h - self.pitch + self.pos];
        self.pos += 1;
        if self.pos == self.pitch {
            self.pos = 0;
        }
        s
    }

    fn push_history(&mut self, frame: &[i16]) {
        let h = self.ring.len();
        let frame = &frame[frame.len().saturating_sub(h)..];
        let first = frame.len().min(h - self.at);
        self.ring[self.at..self.at + first].copy_from_slice(&frame[..first]);
        self.ring[..frame.len() - first].copy_from_slice(&frame[first..]);
        self.at = (self.at + frame.len()) % h;
    }

    /// The lag with the best normalised correlation between the last
    /// `pitch_max` samples and the audio one lag earlier. Searched coarsely
    /// at about 8 kHz, then refined at full rate, so a loss costs about the
    /// same at 48 kHz as at 8 kHz.
    fn find_pitch(&mut self) -> usize {
        let step = (self.rate as usize / 8000).max(1);
        for (f, &s) in self.hist_f.iter_mut().zip(self.history.iter()) {
            *f = s as f32;
        }
        let n = self.hist_f.len() / step;
        for (i, d) in self.hist_d[..n].iter_mut().enumerate() {
            *d = self.hist_f[i * step..(i + 1) * step].iter().sum();
        }
        let (lo, hi, w) = (
            self.pitch_min / step,
            self.pitch_max / step,
            self.pitch_max / step,
        );
        let coarse = best_lag(&self.hist_d[..n], lo.max(1), hi, w) * step;
        if step == 1 {
            return coarse;
        }
        let lo = coarse.saturating_sub(step).max(self.pitch_min);
        let hi = (coarse + step).min(self.pitch_max);
        best_lag(&self.hist_f, lo, hi, self.pitch_max)
    }
}

/// Rounds half away from zero. `f32::round` is a library call on the
/// baseline x86-64 target; a truncating conversion is one instruction.
#[inline(always)]
fn round_i16(v: f32) -> i16 {
    (v + 0.5f32.copysign(v)) as i16
}

/// The lag in `lo..=hi` whose past best matches the last `w` samples of
/// `h` (normalised cross-correlation).
fn best_lag(h: &[f32], lo: usize, hi: usize, w: usize) -> usize {
    let end = h.len();
    let recent = &h[end - w..];
    let mut best = (f32::MIN, hi);
    for lag in lo..=hi {
        let (xy, yy) = corr(recent, &h[end - w - lag..end - lag]);
        let score = if yy > 0.0 { xy / yy.sqrt() } else { 0.0 };
        if score > best.0 {
            best = (score, lag);
        }
    }
    best.1
}

const LANES: usize = 8;

/// Cross- and auto-correlation.
fn corr(x: &[f32], y: &[f32]) -> (f32, f32) {
    (dot(x, y), dot(y, y))
}

crate::dispatch_avx2!(
    /// Dot product in lanes, so it vectorises without reassociating one sum.
    fn dot(x: &[f32], y: &[f32]) -> f32 {
        let mut acc = [0f32; LANES];
        let (xc, yc) = (x.chunks_exact(LANES), y.chunks_exact(LANES));
        let tail: f32 = xc
            .remainder()
            .iter()
            .zip(yc.remainder())
            .map(|(a, b)| a * b)
            .sum();
        for (a, b) in xc.zip(yc) {
            for l in 0..LANES {
                acc[l] += a[l] * b[l];
            }
        }
        acc.iter().sum::<f32>() + tail
    }
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{max_step, rms, tone_from};

    /// Plays a tone frame by frame, dropping the frames in `lost`.
    fn play(rate: u32, freq: f64, lost: &[usize], frames: usize) -> Vec<i16> {
        let n = rate as usize / 50;
        let mut plc = Concealer::new(rate);
        let mut out = Vec::new();
        for k in 0..frames {
            let mut f = tone_from(rate, freq, 8000.0, k * n, n);
            if lost.contains(&k) {
                plc.conceal(&mut f);
            } else {
                plc.good_frame(&mut f);
            }
            out.extend_from_slice(&f);
        }
        out
    }

    #[test]
    fn a_lost_frame_is_bridged_without_a_click() {
        for rate in [8000, 16000, 48000] {
            let out = play(rate, 300.0, &[10], 20);
            let slope = 8000.0 * 2.0 * std::f64::consts::PI * 300.0 / rate as f64;
            let step = max_step(&out) as f64;
            assert!(
                step < slope * 1.5,
                "{rate} Hz: step {step} vs slope {slope:.0}"
            );
            // And the gap is filled with sound, not silence.
            let n = rate as usize / 50;
            let gap = rms(&out[10 * n..11 * n]);
            assert!(
                gap > 0.5 * 8000.0 / 2f64.sqrt(),
                "{rate} Hz: gap level {gap}"
            );
        }
    }

    #[test]
    fn long_loss_fades_to_silence_smoothly() {
        let out = play(8000, 200.0, &(5..15).collect::<Vec<_>>(), 20);
        // 60 ms into the loss the output is silent.
        assert!(out[5 * 160 + 480..15 * 160].iter().all(|&s| s == 0));
        let slope = 8000.0 * 2.0 * std::f64::consts::PI * 200.0 / 8000.0;
        assert!((max_step(&out) as f64) < slope * 1.5);
    }

    #[test]
    fn nothing_heard_yet_conceals_as_silence() {
        let mut plc = Concealer::new(8000);
        let mut f = [5i16; 160];
        plc.conceal(&mut f);
        assert!(f.iter().all(|&s| s == 0));
        assert!(!plc.is_concealing());
    }
}
