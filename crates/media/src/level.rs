//! Level control: brings a talker who is too quiet or too loud towards a
//! common speech level, so one shouting line and one far-from-the-mic line
//! mix into something everyone can follow.
//!
//! The gain moves only on speech frames (noise is never "corrected" up),
//! by at most a few dB per frame, and is ramped across each frame so a
//! change never steps the waveform.

/// Tunables; the defaults suit conference speech.
#[derive(Debug, Clone, Copy)]
pub struct LevelConfig {
    /// The speech level aimed at, dBFS RMS.
    pub target_dbfs: f32,
    /// Most gain added to a quiet line, dB.
    pub max_gain_db: f32,
    /// Most gain taken from a loud line, dB (a positive number).
    pub max_cut_db: f32,
    /// How fast the gain rises, dB per speech frame.
    pub rise_db: f32,
    /// How fast it falls, dB per speech frame (faster: loud is worse).
    pub fall_db: f32,
}

impl Default for LevelConfig {
    fn default() -> Self {
        LevelConfig {
            target_dbfs: -20.0,
            max_gain_db: 18.0,
            max_cut_db: 12.0,
            rise_db: 0.5,
            fall_db: 2.0,
        }
    }
}

/// Per-line state.
#[derive(Debug, Clone)]
pub struct LevelControl {
    cfg: LevelConfig,
    gain_db: f32,
}

impl LevelControl {
    pub fn new(cfg: LevelConfig) -> Self {
        LevelControl { cfg, gain_db: 0.0 }
    }

    /// The gain applied now, dB.
    pub fn gain_db(&self) -> f32 {
        self.gain_db
    }

    /// Applies the gain to one frame in place; a speech frame (as the VAD
    /// says) also moves it.
    pub fn process(&mut self, pcm: &mut [i16], speech: bool) {
        let before = self.gain_db;
        if speech && !pcm.is_empty() {
            let ms = pcm
                .iter()
                .map(|&s| f32::from(s) * f32::from(s))
                .sum::<f32>()
                / pcm.len() as f32;
            if ms > 0.0 {
                // Level of this frame, dB relative to a full-scale sine
                // (RMS 23170), as `analysis::dbfs` measures.
                let level = 10.0 * (ms / (23170.0 * 23170.0)).log10();
                let want = (self.cfg.target_dbfs - level)
                    .clamp(-self.cfg.max_cut_db, self.cfg.max_gain_db);
                let step = (want - self.gain_db).clamp(-self.cfg.fall_db, self.cfg.rise_db);
                self.gain_db += step;
            }
        }
        if before == 0.0 && self.gain_db == 0.0 {
            return;
        }
        let (g0, g1) = (db_to_linear(before), db_to_linear(self.gain_db));
        let n = pcm.len() as f32;
        for (i, s) in pcm.iter_mut().enumerate() {
            let g = g0 + (g1 - g0) * (i as f32 + 1.0) / n;
            *s = (f32::from(*s) * g).round().clamp(-32768.0, 32767.0) as i16;
        }
    }
}

fn db_to_linear(db: f32) -> f32 {
    10f32.powf(db / 20.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{dbfs, max_step, tone_from};

    /// Runs a tone of peak `amp` through the control for `frames` 20 ms frames
    /// at 8 kHz; returns the level of the last frame and the largest
    /// sample-to-sample step seen.
    fn run(amp: f64, frames: usize, speech: bool) -> (f64, i32) {
        let mut lc = LevelControl::new(LevelConfig::default());
        let mut last = 0.0;
        let mut worst = 0;
        for f in 0..frames {
            let mut pcm = tone_from(8000, 300.0, amp, f * 160, 160);
            lc.process(&mut pcm, speech);
            last = dbfs(&pcm);
            worst = worst.max(max_step(&pcm));
        }
        (last, worst)
    }

    #[test]
    fn a_quiet_talker_is_raised_towards_the_target() {
        // -43 dBFS in: 23 dB below the target, more than the gain cap.
        let (level, _) = run(232.0, 200, true);
        assert!((level - (-43.0 + 18.0)).abs() < 1.5, "{level}");
        // -30 dBFS: all the way.
        let (level, _) = run(1036.0, 200, true);
        assert!((level - -20.0).abs() < 1.5, "{level}");
    }

    #[test]
    fn a_loud_talker_is_brought_down() {
        // -6 dBFS: cut by 12 dB at most.
        let (level, _) = run(16423.0, 50, true);
        assert!((level - -18.0).abs() < 1.5, "{level}");
    }

    #[test]
    fn noise_is_never_raised() {
        let (level, _) = run(232.0, 200, false);
        assert!((level - -43.0).abs() < 0.5, "{level}");
    }

    #[test]
    fn gain_changes_do_not_click() {
        // A 300 Hz tone of peak 29,490 moves at most ~6,950 per sample at
        // 8 kHz; a stepped gain change would jump far beyond it.
        let (_, worst) = run(29490.0, 50, true);
        assert!(worst < 7200, "{worst}");
    }
}
