//! A call-quality estimate from the ITU-T G.107 E-model, simplified.
//!
//! Simplifications, and why they are acceptable for ranking calls on a
//! dashboard (not for an acceptance test against a G.107 calculator):
//! - All G.107 defaults except delay, loss and codec: R0 − Is = 93.2
//!   (noise, loudness, sidetone and quantization at their default values),
//!   advantage factor A = 0.
//! - Delay impairment Id uses the common fitted form (Cole & Rosenbluth,
//!   2001): Id = 0.024·d + 0.11·(d − 177.3)·H(d − 177.3), d the one-way
//!   mouth-to-ear delay in ms. It ignores echo (assumes echo cancelled).
//! - Loss is taken as random (BurstR = 1): Ie,eff = Ie + (95 − Ie)·Ppl /
//!   (Ppl + Bpl). Bursty loss scores too well here.
//! - The model is narrowband: wideband codecs (G.722, Opus) are scored as a
//!   transparent narrowband codec, so their advantage does not show.

/// A codec's equipment impairment Ie and packet-loss robustness Bpl.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodecImpairment {
    pub ie: f64,
    pub bpl: f64,
}

impl CodecImpairment {
    /// G.711 with Appendix I packet-loss concealment (G.113 Appendix I).
    pub const G711_PLC: Self = Self { ie: 0.0, bpl: 25.1 };
    /// G.711 without concealment (G.113 Appendix I).
    pub const G711: Self = Self { ie: 0.0, bpl: 4.3 };
    /// G.722 at 64 kbit/s with its Appendix III/IV concealment: approximated
    /// as G.711 with PLC, since G.113 gives no narrowband figures for it.
    pub const G722: Self = Self { ie: 0.0, bpl: 25.1 };
    /// Opus at voice bit rates (≥ 16 kbit/s) with its built-in PLC:
    /// an approximation, not a G.113 value; in-band FEC is not modelled.
    /// Slightly more loss-robust than G.711 PLC, as listening tests suggest.
    pub const OPUS: Self = Self { ie: 0.0, bpl: 30.0 };
}

/// R-factor, about 93.2 at best, for a codec, packet loss in percent
/// (0–100) and one-way mouth-to-ear delay in milliseconds. Out-of-range
/// inputs are clamped; NaN counts as 0 (no measurement yet).
pub fn r_factor(codec: CodecImpairment, loss_percent: f64, one_way_delay_ms: f64) -> f64 {
    let ppl = if loss_percent.is_nan() {
        0.0
    } else {
        loss_percent.clamp(0.0, 100.0)
    };
    let d = one_way_delay_ms.max(0.0);
    let id = 0.024 * d + if d > 177.3 { 0.11 * (d - 177.3) } else { 0.0 };
    let ie_eff = if ppl + codec.bpl > 0.0 {
        codec.ie + (95.0 - codec.ie) * ppl / (ppl + codec.bpl)
    } else {
        codec.ie
    };
    93.2 - id - ie_eff
}

/// G.107 Annex B: MOS (conversational quality, 1–4.5) from R. The cubic
/// dips just below 1 for R under about 6.5; it is held at 1 so the score
/// never rises as R falls.
pub fn mos_from_r(r: f64) -> f64 {
    if r.is_nan() || r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        (1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6).max(1.0)
    }
}

/// MOS estimate in one call.
pub fn mos(codec: CodecImpairment, loss_percent: f64, one_way_delay_ms: f64) -> f64 {
    mos_from_r(r_factor(codec, loss_percent, one_way_delay_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_g711_is_about_4_4() {
        let m = mos(CodecImpairment::G711_PLC, 0.0, 0.0);
        assert!((m - 4.41).abs() < 0.01, "{m}");
        assert!((r_factor(CodecImpairment::G711, 0.0, 0.0) - 93.2).abs() < 1e-9);
        // 20 ms framing + 40 ms network + 40 ms jitter buffer still ≈ 4.4.
        assert!(mos(CodecImpairment::G711_PLC, 0.0, 100.0) > 4.3);
    }

    #[test]
    fn degrades_monotonically_with_loss() {
        for codec in [
            CodecImpairment::G711_PLC,
            CodecImpairment::G711,
            CodecImpairment::G722,
            CodecImpairment::OPUS,
        ] {
            let mut prev = f64::INFINITY;
            for step in 0..=200 {
                let loss = f64::from(step) * 0.5;
                let m = mos(codec, loss, 50.0);
                // Strictly down until the floor of 1, then flat.
                assert!(m < prev || m == 1.0, "{codec:?} at {loss}%: {m} !< {prev}");
                assert!(m >= 1.0);
                prev = m;
            }
            assert!(mos(codec, 10.0, 50.0) < mos(codec, 5.0, 50.0) - 0.3);
        }
        // Concealment matters: 2% loss costs G.711 without PLC far more.
        let with = mos(CodecImpairment::G711_PLC, 2.0, 0.0);
        let without = mos(CodecImpairment::G711, 2.0, 0.0);
        assert!(with > 4.0 && without < 3.7, "{with} {without}");
    }

    #[test]
    fn degrades_with_delay_and_clamps() {
        let mut prev = f64::INFINITY;
        for d in (0..=600).step_by(25) {
            let m = mos(CodecImpairment::G711_PLC, 1.0, f64::from(d));
            assert!(m < prev);
            prev = m;
        }
        // The knee at 177.3 ms: the slope grows.
        let a = r_factor(CodecImpairment::G711_PLC, 0.0, 150.0)
            - r_factor(CodecImpairment::G711_PLC, 0.0, 170.0);
        let b = r_factor(CodecImpairment::G711_PLC, 0.0, 200.0)
            - r_factor(CodecImpairment::G711_PLC, 0.0, 220.0);
        assert!(b > 4.0 * a);
        assert_eq!(mos_from_r(-5.0), 1.0);
        assert_eq!(mos_from_r(120.0), 4.5);
        assert!((mos_from_r(50.0) - 2.58).abs() < 0.01);
        assert_eq!(mos(CodecImpairment::G711, 100.0, 1e6), 1.0);
        assert!(mos(CodecImpairment::G711, f64::NAN, f64::NAN) > 4.0);
        assert_eq!(mos_from_r(3.0), 1.0);
    }
}
