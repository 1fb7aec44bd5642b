//! ITU-T G.711 µ-law and A-law, table-driven.
//!
//! The tables are built at compile time from the reference formulas of the
//! ITU-T G.191 software tools (`ulaw_compress`/`ulaw_expand`,
//! `alaw_compress`/`alaw_expand`), so every code is exactly the standard's.
//! Compression depends only on the top 14 (µ-law) or 12 (A-law) bits of the
//! sample, which keeps the encode tables at 16 KiB and 4 KiB: small enough
//! to stay in L1 while a mixer encodes thousands of frames.

/// µ-law code → linear sample (16-bit, left-justified as G.191 does).
pub static ULAW_TO_LINEAR: [i16; 256] = build_ulaw_expand();
/// A-law code → linear sample.
pub static ALAW_TO_LINEAR: [i16; 256] = build_alaw_expand();
/// `(sample >> 2) + 8192` → µ-law code.
static LINEAR14_TO_ULAW: [u8; 16384] = build_ulaw_compress();
/// `(sample >> 4) + 2048` → A-law code.
static LINEAR12_TO_ALAW: [u8; 4096] = build_alaw_compress();

/// The µ-law code of silence (positive zero).
pub const ULAW_SILENCE: u8 = 0xFF;
/// The A-law code of silence (the smallest positive step).
pub const ALAW_SILENCE: u8 = 0xD5;

const fn ulaw_expand(code: u8) -> i16 {
    // G.191: sign from the top bit; segment and mantissa from the 1's
    // complement of the code.
    let sign: i32 = if code < 0x80 { -1 } else { 1 };
    let m = !(code as i32);
    let exponent = (m >> 4) & 0x07;
    let segment = exponent + 1;
    let mantissa = m & 0x0F;
    let step = 4 << segment;
    (sign * ((0x80 << exponent) + step * mantissa + step / 2 - 4 * 33)) as i16
}

const fn ulaw_compress(lin: i16) -> u8 {
    let lin = lin as i32;
    // 1's complement for negatives, as G.191 does: -1 maps to "negative zero".
    let mut absno = if lin < 0 {
        ((!lin) >> 2) + 33
    } else {
        (lin >> 2) + 33
    };
    if absno > 0x1FFF {
        absno = 0x1FFF;
    }
    let mut i = absno >> 6;
    let mut segno = 1;
    while i != 0 {
        segno += 1;
        i >>= 1;
    }
    let high = 0x08 - segno;
    let low = 0x0F - ((absno >> segno) & 0x0F);
    let mut code = (high << 4) | low;
    if lin >= 0 {
        code |= 0x80;
    }
    code as u8
}

const fn alaw_expand(code: u8) -> i16 {
    let ix = ((code ^ 0x55) & 0x7F) as i32;
    let iexp = ix >> 4;
    let mut mant = ix & 0x0F;
    if iexp > 0 {
        mant += 16;
    }
    mant = (mant << 4) + 0x08;
    if iexp > 1 {
        mant <<= iexp - 1;
    }
    (if code > 127 { mant } else { -mant }) as i16
}

const fn alaw_compress(lin: i16) -> u8 {
    let lin = lin as i32;
    let mut ix = if lin < 0 { (!lin) >> 4 } else { lin >> 4 };
    if ix > 15 {
        let mut iexp = 1;
        while ix > 16 + 15 {
            ix >>= 1;
            iexp += 1;
        }
        ix -= 16;
        ix += iexp << 4;
    }
    if lin >= 0 {
        ix |= 0x80;
    }
    (ix ^ 0x55) as u8
}

const fn build_ulaw_expand() -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = ulaw_expand(i as u8);
        i += 1;
    }
    t
}

const fn build_alaw_expand() -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = alaw_expand(i as u8);
        i += 1;
    }
    t
}

const fn build_ulaw_compress() -> [u8; 16384] {
    let mut t = [0u8; 16384];
    let mut i = 0;
    while i < 16384 {
        // Any sample with these top 14 bits compresses the same way.
        t[i] = ulaw_compress(((i as i32 - 8192) << 2) as i16);
        i += 1;
    }
    t
}

const fn build_alaw_compress() -> [u8; 4096] {
    let mut t = [0u8; 4096];
    let mut i = 0;
    while i < 4096 {
        t[i] = alaw_compress(((i as i32 - 2048) << 4) as i16);
        i += 1;
    }
    t
}

/// One sample to µ-law.
#[inline(always)]
pub fn ulaw_encode_sample(s: i16) -> u8 {
    LINEAR14_TO_ULAW[((s >> 2) as i32 + 8192) as usize]
}

/// One sample to A-law.
#[inline(always)]
pub fn alaw_encode_sample(s: i16) -> u8 {
    LINEAR12_TO_ALAW[((s >> 4) as i32 + 2048) as usize]
}

/// µ-law of one sample by arithmetic rather than a table, so a loop of
/// them vectorises: the segment is the float exponent of the biased
/// magnitude and the mantissa its top four fraction bits. Gives exactly
/// the table's (G.191's) codes; a test checks all 65,536 inputs.
#[inline(always)]
pub fn ulaw_encode_arith(s: i16) -> u8 {
    let s = s as i32;
    let neg = s >> 31;
    // 1's complement of negatives, as G.191; the bias (33) makes the
    // magnitude at least 33, so the exponent is at least 5.
    let mag = (((s ^ neg) >> 2) + 33).min(0x1FFF);
    let bits = (mag as f32).to_bits() as i32;
    let seg = (bits >> 23) - 127 - 4;
    let mant = (bits >> 19) & 15;
    let code = ((8 - seg) << 4) | (15 - mant) | (!neg & 0x80);
    code as u8
}

/// µ-law expansion by arithmetic (vectorises where variable shifts do).
#[inline(always)]
pub fn ulaw_decode_arith(code: u8) -> i16 {
    let m = !code as i32;
    let exp = (m >> 4) & 7;
    let mant = m & 15;
    let mag = (((mant << 3) + 132) << exp) - 132;
    (if code & 0x80 != 0 { mag } else { -mag }) as i16
}

use crate::dispatch_avx2;

dispatch_avx2!(
    pub fn ulaw_encode(pcm: &[i16], out: &mut [u8]) -> usize {
        let n = pcm.len().min(out.len());
        for (o, &s) in out[..n].iter_mut().zip(&pcm[..n]) {
            *o = ulaw_encode_arith(s);
        }
        n
    }
);

/// Encodes `min(pcm.len(), out.len())` samples; returns that count.
#[inline]
pub fn alaw_encode(pcm: &[i16], out: &mut [u8]) -> usize {
    let n = pcm.len().min(out.len());
    for (o, &s) in out[..n].iter_mut().zip(&pcm[..n]) {
        *o = alaw_encode_sample(s);
    }
    n
}

dispatch_avx2!(
    pub fn ulaw_decode(codes: &[u8], out: &mut [i16]) -> usize {
        let n = codes.len().min(out.len());
        for (o, &c) in out[..n].iter_mut().zip(&codes[..n]) {
            *o = ulaw_decode_arith(c);
        }
        n
    }
);

/// Decodes `min(codes.len(), out.len())` samples; returns that count.
#[inline]
pub fn alaw_decode(codes: &[u8], out: &mut [i16]) -> usize {
    let n = codes.len().min(out.len());
    for (o, &c) in out[..n].iter_mut().zip(&codes[..n]) {
        *o = ALAW_TO_LINEAR[c as usize];
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_known_values() {
        // Values every G.711 implementation agrees on (G.191, Sun g711.c).
        assert_eq!(ULAW_TO_LINEAR[0xFF], 0);
        assert_eq!(ULAW_TO_LINEAR[0x7F], 0);
        assert_eq!(ULAW_TO_LINEAR[0x80], 32124);
        assert_eq!(ULAW_TO_LINEAR[0x00], -32124);
        assert_eq!(ULAW_TO_LINEAR[0xFE], 8);
        assert_eq!(ULAW_TO_LINEAR[0xF0], 120);
        assert_eq!(ULAW_TO_LINEAR[0xEF], 132);
        assert_eq!(ulaw_encode_sample(0), 0xFF);
        assert_eq!(ulaw_encode_sample(-1), 0x7F);
        assert_eq!(ulaw_encode_sample(i16::MAX), 0x80);
        assert_eq!(ulaw_encode_sample(i16::MIN), 0x00);
        // 1000 lies in segment 3: 0xCE decodes to 988, 0xCD to 1052.
        assert_eq!(ulaw_encode_sample(1000), 0xCE);
        assert_eq!(ULAW_TO_LINEAR[0xCE], 988);
    }

    #[test]
    fn alaw_known_values() {
        assert_eq!(ALAW_TO_LINEAR[0xD5], 8);
        assert_eq!(ALAW_TO_LINEAR[0x55], -8);
        assert_eq!(ALAW_TO_LINEAR[0xAA], 32256);
        assert_eq!(ALAW_TO_LINEAR[0x2A], -32256);
        assert_eq!(alaw_encode_sample(0), 0xD5);
        assert_eq!(alaw_encode_sample(-1), 0x55);
        assert_eq!(alaw_encode_sample(i16::MAX), 0xAA);
        assert_eq!(alaw_encode_sample(i16::MIN), 0x2A);
        assert_eq!(alaw_encode_sample(1000), 0xFA);
        assert_eq!(ALAW_TO_LINEAR[0xFA], 1008);
    }

    #[test]
    fn arithmetic_forms_match_the_tables_everywhere() {
        for s in i16::MIN..=i16::MAX {
            assert_eq!(ulaw_encode_arith(s), ulaw_encode_sample(s), "{s}");
        }
        for c in 0..=255u8 {
            assert_eq!(ulaw_decode_arith(c), ULAW_TO_LINEAR[c as usize], "{c:#x}");
        }
        // And the slice forms (whichever path the CPU takes) agree too.
        let pcm: Vec<i16> = (i16::MIN..=i16::MAX).collect();
        let mut codes = vec![0u8; pcm.len()];
        ulaw_encode(&pcm, &mut codes);
        assert!(
            codes
                .iter()
                .zip(&pcm)
                .all(|(&c, &s)| c == ulaw_encode_sample(s))
        );
        let all: Vec<u8> = (0..=255).collect();
        let mut lin = [0i16; 256];
        ulaw_decode(&all, &mut lin);
        assert_eq!(lin, ULAW_TO_LINEAR);
    }

    #[test]
    fn every_code_round_trips() {
        for c in 0..=255u8 {
            // µ-law has two zeros; negative zero re-encodes as positive zero.
            let expect = if c == 0x7F { 0xFF } else { c };
            assert_eq!(
                ulaw_encode_sample(ULAW_TO_LINEAR[c as usize]),
                expect,
                "µ {c:#x}"
            );
            assert_eq!(
                alaw_encode_sample(ALAW_TO_LINEAR[c as usize]),
                c,
                "A {c:#x}"
            );
        }
    }

    #[test]
    fn quantisation_error_is_within_half_a_step() {
        // Every 16-bit value decodes back to the centre of its step, so the
        // error is at most half the step of its segment (plus clipping at the
        // top, where µ-law saturates at 32124 and A-law at 32256).
        for s in i16::MIN..=i16::MAX {
            let u = ULAW_TO_LINEAR[ulaw_encode_sample(s) as usize] as i32;
            let a = ALAW_TO_LINEAR[alaw_encode_sample(s) as usize] as i32;
            let s = s as i32;
            let mag = s.unsigned_abs() as i32;
            // Half a step is at most 1/32 of the magnitude above the linear
            // bottom segments, whose half step is 4 (µ) or 8 (A).
            let bound = (mag / 16).max(16);
            if mag < 32124 {
                assert!((u - s).abs() <= bound, "µ {s} -> {u}");
            }
            if mag < 32256 {
                assert!((a - s).abs() <= bound, "A {s} -> {a}");
            }
        }
    }
}
