//! One small trait over the codecs, and an enum that dispatches to them
//! without boxing (a mixer holds tens of thousands of these).

use crate::g711;
use crate::g722::{G722Decoder, G722Encoder};

/// Which codec, and for L16 at which rate (mono, network byte order).
/// Opus is always nameable; whether this build can code it is answered by
/// [`AnyCodec::new`] (it needs the `opus` feature).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodecKind {
    Pcmu,
    Pcma,
    G722,
    L16 {
        rate: u32,
    },
    /// Mono at 48 kHz, as RFC 7587 clocks it.
    Opus,
}

/// Largest Opus payload we take or make: two maximum-size 20 ms frames.
pub const OPUS_MAX_PAYLOAD: usize = 2 * 1275;

impl CodecKind {
    /// Sample rate of the PCM the codec takes and gives.
    pub fn rate(self) -> u32 {
        match self {
            CodecKind::Pcmu | CodecKind::Pcma => 8000,
            CodecKind::G722 => 16000,
            CodecKind::L16 { rate } => rate,
            CodecKind::Opus => 48000,
        }
    }

    /// RTP timestamp rate. G.722 is the exception: RFC 3551 keeps 8000 Hz
    /// for it although it samples at 16 kHz.
    pub fn rtp_clock_rate(self) -> u32 {
        match self {
            CodecKind::G722 => 8000,
            k => k.rate(),
        }
    }

    /// Payload bytes for `samples` samples at the codec's rate; for Opus,
    /// whose size varies, the most it may take.
    pub fn payload_len(self, samples: usize) -> usize {
        match self {
            CodecKind::Pcmu | CodecKind::Pcma => samples,
            CodecKind::G722 => samples / 2,
            CodecKind::L16 { .. } => samples * 2,
            CodecKind::Opus => OPUS_MAX_PAYLOAD,
        }
    }

    /// Samples carried by a payload of `bytes` bytes; None for Opus, whose
    /// packets say it themselves.
    pub fn samples_in(self, bytes: usize) -> Option<usize> {
        match self {
            CodecKind::Pcmu | CodecKind::Pcma => Some(bytes),
            CodecKind::G722 => Some(bytes * 2),
            CodecKind::L16 { .. } => Some(bytes / 2),
            CodecKind::Opus => None,
        }
    }

    /// Writes a payload of `samples` samples of silence that needs no
    /// encoder and that a decoder can be sent over and over, whatever its
    /// state; returns its length. None for Opus, whose silence only an
    /// encoder can make. For G.722, code 0xFC (the low band's zero step,
    /// the high band's smallest) keeps a decoder at rest exactly at rest
    /// and leaves one taken straight out of speech within -60 dBFS.
    pub fn silence_payload(self, samples: usize, out: &mut [u8]) -> Option<usize> {
        let (byte, len) = match self {
            CodecKind::Pcmu => (0xFF, samples),
            CodecKind::Pcma => (0xD5, samples),
            CodecKind::G722 => (0xFC, samples / 2),
            CodecKind::L16 { .. } => (0, samples * 2),
            CodecKind::Opus => return None,
        };
        let out = out.get_mut(..len)?;
        out.fill(byte);
        Some(len)
    }

    /// The static RTP payload type (RFC 3551), where there is one.
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            CodecKind::Pcmu => Some(0),
            CodecKind::Pcma => Some(8),
            CodecKind::G722 => Some(9),
            CodecKind::L16 { rate: 44100 } => Some(11),
            CodecKind::L16 { .. } | CodecKind::Opus => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("output buffer too small: {needed} needed")]
    BufferTooSmall { needed: usize },
    #[error("payload of {0} bytes is not a whole number of samples")]
    BadLength(usize),
    #[error("codec not supported by this build or at this rate")]
    Unsupported,
    #[error("codec rejected the frame (code {0})")]
    Rejected(i32),
}

/// Encode and decode whole frames between 16-bit PCM at [`Codec::rate`]
/// and payload bytes. One value holds one direction's state or both;
/// stateful codecs (G.722) keep the two apart.
pub trait Codec {
    fn kind(&self) -> CodecKind;

    fn rate(&self) -> u32 {
        self.kind().rate()
    }

    /// Encodes all of `pcm`; returns the payload length.
    fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError>;

    /// Decodes all of `payload`; returns the number of samples.
    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError>;
}

/// Any supported codec, encoder and decoder state together.
#[derive(Debug)]
pub enum AnyCodec {
    Pcmu,
    Pcma,
    G722(Box<(G722Encoder, G722Decoder)>),
    L16 {
        rate: u32,
    },
    #[cfg(feature = "opus")]
    Opus(Box<crate::opus::Opus>),
}

impl AnyCodec {
    /// Fails only for Opus in a build without the `opus` feature.
    pub fn new(kind: CodecKind) -> Result<Self, CodecError> {
        Ok(match kind {
            CodecKind::Pcmu => AnyCodec::Pcmu,
            CodecKind::Pcma => AnyCodec::Pcma,
            CodecKind::G722 => AnyCodec::G722(Box::new((G722Encoder::new(), G722Decoder::new()))),
            CodecKind::L16 { rate } => AnyCodec::L16 { rate },
            #[cfg(feature = "opus")]
            CodecKind::Opus => AnyCodec::Opus(Box::new(crate::opus::Opus::new(48000)?)),
            #[cfg(not(feature = "opus"))]
            CodecKind::Opus => return Err(CodecError::Unsupported),
        })
    }
}

impl AnyCodec {
    /// For codecs that can follow a stream without decoding it (G.722's
    /// scale factors): Some(true) if the frame was consumed and stayed
    /// below `limit` (see [`G722Decoder::track`]), Some(false) if it must
    /// be decoded; None for codecs that cannot, whose decoding is cheap.
    pub fn track(&mut self, payload: &[u8], limit: i32) -> Option<bool> {
        match self {
            AnyCodec::G722(st) => Some(st.1.track(payload, limit)),
            _ => None,
        }
    }

    /// Takes over `other`'s encoder state, where it can be copied (G.722),
    /// so a decoder that followed `other` follows this one seamlessly.
    pub fn copy_encoder_from(&mut self, other: &AnyCodec) {
        if let (AnyCodec::G722(me), AnyCodec::G722(them)) = (self, other) {
            me.0 = them.0.clone();
        }
    }

    /// Advances the encoder as if it had sent `payload` (G.722; nothing to
    /// do for stateless codecs, and Opus needs nothing: its decoder takes
    /// any packet), so a phone sent a frame the encoder did not make is
    /// still in step with it. About the cost of a decode.
    pub fn encoder_follow(&mut self, payload: &[u8]) {
        if let AnyCodec::G722(st) = self {
            st.0.follow(payload);
        }
    }

    /// Whether [`track`](Self::track) does anything for this codec.
    pub fn can_track(&self) -> bool {
        matches!(self, AnyCodec::G722(_))
    }
}

impl Codec for AnyCodec {
    fn kind(&self) -> CodecKind {
        match self {
            AnyCodec::Pcmu => CodecKind::Pcmu,
            AnyCodec::Pcma => CodecKind::Pcma,
            AnyCodec::G722(_) => CodecKind::G722,
            AnyCodec::L16 { rate } => CodecKind::L16 { rate: *rate },
            #[cfg(feature = "opus")]
            AnyCodec::Opus(_) => CodecKind::Opus,
        }
    }

    fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        #[cfg(feature = "opus")]
        if let AnyCodec::Opus(o) = self {
            return o.encode(pcm, out);
        }
        let needed = self.kind().payload_len(pcm.len());
        if out.len() < needed {
            return Err(CodecError::BufferTooSmall { needed });
        }
        let out = &mut out[..needed];
        match self {
            AnyCodec::Pcmu => {
                g711::ulaw_encode(pcm, out);
            }
            AnyCodec::Pcma => {
                g711::alaw_encode(pcm, out);
            }
            AnyCodec::G722(st) => {
                if !pcm.len().is_multiple_of(2) {
                    return Err(CodecError::BadLength(pcm.len()));
                }
                st.0.encode(pcm, out);
            }
            AnyCodec::L16 { .. } => {
                for (o, s) in out.chunks_exact_mut(2).zip(pcm) {
                    o.copy_from_slice(&s.to_be_bytes());
                }
            }
            #[cfg(feature = "opus")]
            AnyCodec::Opus(_) => unreachable!("handled above"),
        }
        Ok(needed)
    }

    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        let kind = self.kind();
        if matches!(kind, CodecKind::L16 { .. }) && !payload.len().is_multiple_of(2) {
            return Err(CodecError::BadLength(payload.len()));
        }
        #[cfg(feature = "opus")]
        if let AnyCodec::Opus(o) = self {
            return o.decode(payload, out);
        }
        let Some(needed) = kind.samples_in(payload.len()) else {
            return Err(CodecError::Unsupported);
        };
        if out.len() < needed {
            return Err(CodecError::BufferTooSmall { needed });
        }
        let out = &mut out[..needed];
        match self {
            AnyCodec::Pcmu => {
                g711::ulaw_decode(payload, out);
            }
            AnyCodec::Pcma => {
                g711::alaw_decode(payload, out);
            }
            AnyCodec::G722(st) => {
                st.1.decode(payload, out);
            }
            AnyCodec::L16 { .. } => {
                for (o, b) in out.iter_mut().zip(payload.chunks_exact(2)) {
                    *o = i16::from_be_bytes([b[0], b[1]]);
                }
            }
            #[cfg(feature = "opus")]
            AnyCodec::Opus(_) => unreachable!("handled above"),
        }
        Ok(needed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{rms, tone};

    #[test]
    fn every_codec_carries_a_tone_at_its_rate() {
        for kind in [
            CodecKind::Pcmu,
            CodecKind::Pcma,
            CodecKind::G722,
            CodecKind::L16 { rate: 48000 },
        ] {
            let rate = kind.rate();
            let frame = rate as usize / 50;
            let pcm = tone(rate, 1000.0, 10000.0, frame * 10);
            let mut c = AnyCodec::new(kind).expect("codec");
            let mut payload = vec![0u8; kind.payload_len(frame)];
            let mut out = vec![0i16; pcm.len()];
            for (f, o) in pcm.chunks(frame).zip(out.chunks_mut(frame)) {
                assert_eq!(c.encode(f, &mut payload), Ok(kind.payload_len(frame)));
                assert_eq!(c.decode(&payload, o), Ok(frame));
            }
            let ratio = rms(&out[frame * 5..]) / rms(&pcm[frame * 5..]);
            assert!((ratio - 1.0).abs() < 0.1, "{kind:?}: level ratio {ratio}");
        }
    }

    #[test]
    fn silence_payloads_decode_to_silence_and_stay_there() {
        for kind in [
            CodecKind::Pcmu,
            CodecKind::Pcma,
            CodecKind::G722,
            CodecKind::L16 { rate: 16000 },
        ] {
            let frame = kind.rate() as usize / 50;
            let mut payload = vec![0u8; kind.payload_len(frame)];
            let len = kind.silence_payload(frame, &mut payload);
            assert_eq!(len, Some(kind.payload_len(frame)), "{kind:?}");
            let mut c = AnyCodec::new(kind).expect("codec");
            let mut out = vec![0i16; frame];
            for _ in 0..50 {
                assert_eq!(c.decode(&payload, &mut out), Ok(frame));
                // A-law has no zero code: ±8 is its smallest step.
                assert!(out.iter().all(|s| s.abs() <= 8), "{kind:?}: {out:?}");
            }
        }
        assert_eq!(CodecKind::Opus.silence_payload(960, &mut [0; 100]), None);
        assert_eq!(CodecKind::Pcmu.silence_payload(160, &mut [0; 100]), None);
    }

    #[test]
    fn opus_is_supported_exactly_when_built_in() {
        let r = AnyCodec::new(CodecKind::Opus);
        assert_eq!(r.is_ok(), cfg!(feature = "opus"));
    }

    #[test]
    fn l16_is_exact_and_rejects_odd_payloads() {
        let mut c = AnyCodec::new(CodecKind::L16 { rate: 16000 }).expect("codec");
        let pcm = [0i16, 1, -1, i16::MAX, i16::MIN, 1234];
        let mut bytes = [0u8; 12];
        assert_eq!(c.encode(&pcm, &mut bytes), Ok(12));
        assert_eq!(&bytes[..4], &[0, 0, 0, 1]);
        let mut out = [0i16; 6];
        assert_eq!(c.decode(&bytes, &mut out), Ok(6));
        assert_eq!(out, pcm);
        assert_eq!(
            c.decode(&bytes[..5], &mut out),
            Err(CodecError::BadLength(5))
        );
    }

    #[test]
    fn short_buffers_are_errors_not_panics() {
        let mut c = AnyCodec::new(CodecKind::Pcmu).expect("codec");
        let mut out = [0i16; 10];
        assert_eq!(
            c.decode(&[0xFF; 160], &mut out),
            Err(CodecError::BufferTooSmall { needed: 160 })
        );
        let mut bytes = [0u8; 10];
        assert_eq!(
            c.encode(&[0; 160], &mut bytes),
            Err(CodecError::BufferTooSmall { needed: 160 })
        );
    }
}
