//! Opus (RFC 6716, RTP per RFC 7587), mono, through `unsafe-libopus`:
//! libopus 1.3.1 mechanically translated to Rust, so it builds with the
//! Rust toolchain alone (no C compiler, no cmake). Behind the `opus`
//! feature; the unsafe calls are confined to this module.

use std::ptr::NonNull;

use crate::codec::CodecError;

/// Encoder effort: DESIGN measured ~120 µs per 20 ms frame at 5 against
/// ~220 µs at 10, for speech the difference is hard to hear.
const COMPLEXITY: i32 = 5;

pub use crate::codec::OPUS_MAX_PAYLOAD as MAX_PAYLOAD;

/// Encoder and decoder state of one Opus stream.
pub struct Opus {
    enc: NonNull<unsafe_libopus::OpusEncoder>,
    dec: NonNull<unsafe_libopus::OpusDecoder>,
    rate: u32,
}

// SAFETY: both states are heap blocks owned by this value alone; libopus
// keeps no global or thread-local state, so moving them between threads is
// sound. (Not Sync: every call mutates.)
unsafe impl Send for Opus {}

impl std::fmt::Debug for Opus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opus").field("rate", &self.rate).finish()
    }
}

impl Opus {
    /// A mono VoIP stream at `rate` (8, 12, 16, 24 or 48 kHz).
    pub fn new(rate: u32) -> Result<Self, CodecError> {
        if ![8000, 12000, 16000, 24000, 48000].contains(&rate) {
            return Err(CodecError::Unsupported);
        }
        let mut err = 0;
        // SAFETY: valid arguments; the result is checked for null below.
        let enc = unsafe {
            unsafe_libopus::opus_encoder_create(
                rate as i32,
                1,
                unsafe_libopus::OPUS_APPLICATION_VOIP,
                &mut err,
            )
        };
        let enc = NonNull::new(enc)
            .filter(|_| err == unsafe_libopus::OPUS_OK)
            .ok_or(CodecError::Unsupported)?;
        // SAFETY: as above.
        let dec = unsafe { unsafe_libopus::opus_decoder_create(rate as i32, 1, &mut err) };
        let Some(dec) = NonNull::new(dec).filter(|_| err == unsafe_libopus::OPUS_OK) else {
            // SAFETY: `enc` came from opus_encoder_create and is freed once.
            unsafe { unsafe_libopus::opus_encoder_destroy(enc.as_ptr()) };
            return Err(CodecError::Unsupported);
        };
        // SAFETY: a live encoder and a request that takes one i32.
        unsafe {
            unsafe_libopus::opus_encoder_ctl!(
                enc.as_ptr(),
                unsafe_libopus::OPUS_SET_COMPLEXITY_REQUEST,
                COMPLEXITY
            );
            unsafe_libopus::opus_encoder_ctl!(
                enc.as_ptr(),
                unsafe_libopus::OPUS_SET_SIGNAL_REQUEST,
                unsafe_libopus::OPUS_SIGNAL_VOICE
            );
        }
        Ok(Opus { enc, dec, rate })
    }

    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Encodes one frame (2.5 to 60 ms of samples); returns the payload length.
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        let max = out.len().min(MAX_PAYLOAD) as i32;
        // SAFETY: live encoder; `pcm` holds `pcm.len()` samples of mono and
        // `out` at least `max` bytes. libopus checks the frame size.
        let n = unsafe {
            unsafe_libopus::opus_encode(
                self.enc.as_ptr(),
                pcm.as_ptr(),
                pcm.len() as i32,
                out.as_mut_ptr(),
                max,
            )
        };
        usize::try_from(n).map_err(|_| CodecError::Rejected(n))
    }

    /// Decodes one packet; returns the number of samples.
    pub fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        if payload.is_empty() {
            return Err(CodecError::BadLength(0));
        }
        // SAFETY: live decoder; `payload` and `out` are valid for the
        // lengths passed, and libopus writes at most `out.len()` samples.
        let n = unsafe {
            unsafe_libopus::opus_decode(
                self.dec.as_ptr(),
                payload.as_ptr(),
                payload.len() as i32,
                out.as_mut_ptr(),
                out.len() as i32,
                0,
            )
        };
        usize::try_from(n).map_err(|_| CodecError::Rejected(n))
    }
}

impl Drop for Opus {
    fn drop(&mut self) {
        // SAFETY: both came from their create functions and are freed once.
        unsafe {
            unsafe_libopus::opus_encoder_destroy(self.enc.as_ptr());
            unsafe_libopus::opus_decoder_destroy(self.dec.as_ptr());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{tone_amplitude, tone_from};

    #[test]
    fn a_tone_survives_at_its_frequency_and_level() {
        let mut o = Opus::new(48000).expect("opus");
        let mut out = Vec::new();
        let mut pkt = [0u8; MAX_PAYLOAD];
        let mut pcm = [0i16; 960];
        for f in 0..50 {
            let x = tone_from(48000, 1000.0, 8000.0, f * 960, 960);
            let n = o.encode(&x, &mut pkt).expect("encode");
            assert!(n > 0 && n < 400, "{n} bytes for 20 ms");
            assert_eq!(o.decode(&pkt[..n], &mut pcm), Ok(960));
            out.extend_from_slice(&pcm);
        }
        let tail = &out[24000..];
        let a = tone_amplitude(tail, 48000, 1000.0);
        assert!((a / 8000.0 - 1.0).abs() < 0.1, "amplitude {a}");
        assert!(tone_amplitude(tail, 48000, 1300.0) < a / 100.0);
    }

    #[test]
    fn garbage_is_an_error_not_a_crash() {
        let mut o = Opus::new(16000).expect("opus");
        let mut pcm = [0i16; 320];
        assert!(o.decode(&[], &mut pcm).is_err());
        // A code-3 packet claiming more frames than it holds.
        assert!(o.decode(&[0xFF, 0xFF, 0xFF], &mut pcm).is_err());
        assert!(Opus::new(44100).is_err());
    }
}
