//! The mixing kernel: widen-and-add, subtract-own-and-saturate. Plain
//! slice loops over i32 accumulators, which the compiler turns into SIMD
//! (packed adds and a saturating pack), with an AVX2 build picked at run
//! time; no allocation, no branches.

use media::dispatch_avx2;

dispatch_avx2!(
    /// `acc[i] += x[i]`.
    pub fn accumulate(acc: &mut [i32], x: &[i16]) {
        for (a, &s) in acc.iter_mut().zip(x) {
            *a += s as i32;
        }
    }
);

dispatch_avx2!(
    /// `out[i] = saturate(acc[i])`: the mix everyone who is not talking hears.
    pub fn saturate(out: &mut [i16], acc: &[i32]) {
        for (o, &a) in out.iter_mut().zip(acc) {
            *o = a.clamp(i16::MIN as i32, i16::MAX as i32) as i16;
        }
    }
);

dispatch_avx2!(
    /// `out[i] = saturate(acc[i] - own[i])`: a talker's N-1 mix.
    pub fn minus_own(out: &mut [i16], acc: &[i32], own: &[i16]) {
        for ((o, &a), &s) in out.iter_mut().zip(acc).zip(own) {
            *o = (a - s as i32).clamp(i16::MIN as i32, i16::MAX as i32) as i16;
        }
    }
);

/// Scales `x` by a linear ramp from 0 to 1: a talker entering the mix.
/// Rare (once per talk spurt), so plain code.
pub fn fade_in(x: &mut [i16]) {
    let n = x.len().max(1) as i32;
    for (i, s) in x.iter_mut().enumerate() {
        *s = (*s as i32 * i as i32 / n) as i16;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n_minus_one_saturates_instead_of_wrapping() {
        let a = [30000i16, -30000, 5];
        let b = [30000i16, -30000, 7];
        let c = [1000i16, 0, 11];
        let mut acc = [0i32; 3];
        for x in [&a, &b, &c] {
            accumulate(&mut acc, x);
        }
        let mut out = [0i16; 3];
        saturate(&mut out, &acc);
        assert_eq!(out, [32767, -32768, 23]);
        minus_own(&mut out, &acc, &c);
        assert_eq!(out, [32767, -32768, 12]);
        minus_own(&mut out, &acc, &a);
        assert_eq!(out, [31000, -30000, 18]);
    }
}
