//! Media processing for tandem's nodes: codecs, resampling and DSP.
//!
//! Everything works on caller-owned buffers of 16-bit linear PCM, frame by
//! frame, and allocates nothing once constructed, so the SBC and the mixer
//! can run it on the packet path.
//!
//! - [`codec`]: the [`Codec`] trait and [`AnyCodec`], over
//!   [`g711`] (µ-law, A-law), [`g722`] (64 kbit/s), L16, and Opus with
//!   the `opus` feature (pure-Rust libopus; no C toolchain needed).
//! - [`resample`]: fixed-ratio polyphase resampling between 8, 16, 32 and 48 kHz.
//! - [`vad`]: energy and zero-crossing voice activity detection with levels.
//! - [`plc`]: packet-loss concealment by pitch-period repetition with fade.
//! - [`level`]: level control (speech towards a target level, no clicks).
//! - [`denoise`]: noise suppression (RNNoise) at any of the rates.
//! - [`wav`]: 16-bit PCM WAV files, mono or stereo.
//! - [`analysis`]: level, single-frequency power and click measurements.
//! - [`simd`]: run-time AVX2 dispatch for the vectorisable loops.

pub mod analysis;
pub mod codec;
pub mod denoise;
pub mod g711;
pub mod g722;
pub mod level;
#[cfg(feature = "opus")]
pub mod opus;
pub mod plc;
pub mod resample;
pub mod simd;
pub mod vad;
pub mod wav;

pub use codec::{AnyCodec, Codec, CodecError, CodecKind};
pub use denoise::Denoiser;
pub use level::{LevelConfig, LevelControl};
pub use plc::Concealer;
pub use resample::Resampler;
pub use vad::{Vad, VadConfig};
