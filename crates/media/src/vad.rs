//! Voice activity detection from frame energy and zero crossings.
//!
//! A mixer runs this on every participant every 20 ms, so it must cost a few
//! nanoseconds per frame: one pass computes the energy (which the mixer also
//! needs to rank speakers) and the zero-crossing rate. A frame is speech when
//! it stands clearly above both an absolute floor and the line's own noise
//! floor, which is tracked per line; broadband hiss (many zero crossings,
//! little energy) is held to a stricter margin. A hangover keeps a talker
//! active through the short pauses between words.

/// Tunables; the defaults suit telephone speech.
#[derive(Debug, Clone, Copy)]
pub struct VadConfig {
    /// Energy below this (mean square, in 16-bit units²) is never speech.
    /// The default, 1.0e5, is an RMS of 316: about -37 dBFS.
    pub min_energy: f32,
    /// How far above the tracked noise floor speech must be (power ratio).
    pub snr: f32,
    /// Frames a talker stays active after the last speech frame.
    pub hangover: u16,
}

impl Default for VadConfig {
    fn default() -> Self {
        VadConfig {
            min_energy: 1.0e5,
            snr: 8.0,
            hangover: 10,
        }
    }
}

/// Per-line detector state.
#[derive(Debug, Clone)]
pub struct Vad {
    cfg: VadConfig,
    noise: f32,
    hang: u16,
    active: bool,
    /// Smoothed energy of recent frames, for ranking talkers.
    level: f32,
}

/// What one frame was found to be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadResult {
    /// Speech now or within the hangover.
    pub active: bool,
    /// Mean square of this frame.
    pub energy: f32,
}

impl Vad {
    pub fn new(cfg: VadConfig) -> Self {
        Vad {
            noise: cfg.min_energy,
            cfg,
            hang: 0,
            active: false,
            level: 0.0,
        }
    }

    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Smoothed energy (mean square) of recent frames.
    pub fn level(&self) -> f32 {
        self.level
    }

    /// Classifies one frame of PCM.
    pub fn process(&mut self, frame: &[i16]) -> VadResult {
        let (energy, zcr) = energy_and_zcr(frame);
        // Noise floor: follows drops at once and rises slowly (about 3 dB a
        // second at 20 ms frames), so a long talk spurt does not become noise.
        if energy < self.noise {
            self.noise = energy.max(1.0);
        } else {
            self.noise *= 1.015;
        }
        // White noise crosses zero about every other sample; voice and tones
        // far less. Hiss must be much louder before it counts as a talker.
        let margin = if zcr > 0.35 {
            self.cfg.snr * 4.0
        } else {
            self.cfg.snr
        };
        let speech = energy > self.cfg.min_energy && energy > self.noise * margin;
        if speech {
            self.hang = self.cfg.hangover;
            self.active = true;
        } else if self.hang > 0 {
            self.hang -= 1;
        } else {
            self.active = false;
        }
        self.level = 0.7 * self.level + 0.3 * energy;
        VadResult {
            active: self.active,
            energy,
        }
    }

    /// A frame with no audio at all (nothing received, nothing concealed).
    pub fn silent(&mut self) {
        self.level *= 0.7;
        if self.hang > 0 {
            self.hang -= 1;
        } else {
            self.active = false;
        }
    }
}

/// Mean square and zero-crossing rate of a frame.
pub fn energy_and_zcr(x: &[i16]) -> (f32, f32) {
    if x.is_empty() {
        return (0.0, 0.0);
    }
    let (sum, crossings) = sums(x);
    (sum / x.len() as f32, crossings as f32 / x.len() as f32)
}

/// Lanes of partial sums, so both loops vectorise without the compiler
/// having to reassociate one float sum.
const LANES: usize = 16;

crate::dispatch_avx2!(
    /// Sum of squares and sign changes.
    fn sums(x: &[i16]) -> (f32, u32) {
        // Energy in f32 lanes: 24 bits of mantissa are plenty for a level.
        let mut acc = [0f32; LANES];
        let chunks = x.chunks_exact(LANES);
        let rest = chunks.remainder();
        for c in chunks {
            for l in 0..LANES {
                acc[l] += c[l] as f32 * c[l] as f32;
            }
        }
        let mut sum: f32 = acc.iter().sum();
        sum += rest.iter().map(|&v| v as f32 * v as f32).sum::<f32>();
        // A sign change between neighbours sets the top bit of their XOR.
        // An integer sum: the compiler may reorder it, so this vectorises as is.
        let crossings: u32 = x
            .iter()
            .zip(&x[1..])
            .map(|(&p, &q)| ((p ^ q) as u16 >> 15) as u32)
            .sum();
        (sum, crossings)
    }
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::tone_from;

    fn noise(seed: &mut u32, amp: i32, len: usize) -> Vec<i16> {
        (0..len)
            .map(|_| {
                *seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
                ((*seed >> 16) as i32 % (2 * amp + 1) - amp) as i16
            })
            .collect()
    }

    #[test]
    fn tone_is_speech_and_quiet_noise_is_not() {
        let mut vad = Vad::new(VadConfig::default());
        let mut seed = 1;
        for _ in 0..50 {
            assert!(!vad.process(&noise(&mut seed, 100, 160)).active);
        }
        let mut found = false;
        for k in 0..10 {
            found |= vad
                .process(&tone_from(8000, 300.0, 3000.0, k * 160, 160))
                .active;
        }
        assert!(found, "a -20 dBFS tone must be detected");
    }

    #[test]
    fn energy_and_zero_crossings_are_measured() {
        let alt: Vec<i16> = (0..161)
            .map(|i| if i % 2 == 0 { 1000 } else { -1000 })
            .collect();
        let (e, z) = energy_and_zcr(&alt);
        assert_eq!(e, 1.0e6);
        assert_eq!(z, 160.0 / 161.0);
        let slow: Vec<i16> = (0..160)
            .map(|i| if (i / 40) % 2 == 0 { 5 } else { -5 })
            .collect();
        assert_eq!(energy_and_zcr(&slow), (25.0, 3.0 / 160.0));
    }

    #[test]
    fn hangover_bridges_pauses_then_releases() {
        let cfg = VadConfig::default();
        let mut vad = Vad::new(cfg);
        assert!(vad.process(&tone_from(8000, 300.0, 8000.0, 0, 160)).active);
        for _ in 0..cfg.hangover {
            assert!(vad.process(&[0; 160]).active);
        }
        assert!(!vad.process(&[0; 160]).active);
    }

    #[test]
    fn loud_hiss_needs_a_bigger_margin_than_voice() {
        let mut vad = Vad::new(VadConfig::default());
        let mut seed = 7;
        // Hiss at RMS ~ 580 (-32 dBFS) is above the absolute floor but not
        // a talker.
        for _ in 0..20 {
            assert!(!vad.process(&noise(&mut seed, 1000, 160)).active);
        }
    }
}
