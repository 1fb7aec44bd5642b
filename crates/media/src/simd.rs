//! Runtime CPU dispatch for the vectorisable loops: the same safe Rust
//! body compiled twice, for AVX2 and for the baseline x86-64 target (SSE2),
//! and picked per call by a cached CPU-feature check. One binary runs
//! anywhere and uses full vector width where the CPU has it.

/// Defines `[vis] fn $name(args) -> ret` from a loop body, with an AVX2
/// build of it chosen at run time on x86-64.
#[macro_export]
macro_rules! dispatch_avx2 {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$m])*
        #[inline]
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                fn avx2($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU supports AVX2, checked just above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}
