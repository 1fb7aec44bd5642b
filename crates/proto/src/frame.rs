//! Framing: messages on a byte stream, sans-IO.
//!
//! ```text
//! +----------------+---------+---------------------------+
//! | length: u32 BE | flags u8| payload (length bytes)    |
//! +----------------+---------+---------------------------+
//! flags bit 0 (LZ4): payload = uncompressed length u32 BE | LZ4 block
//! other bits: reserved, must be 0
//! ```
//!
//! The payload is the postcard encoding of one message. `length` counts the
//! payload only. Both `length` and an LZ4 frame's uncompressed length are
//! checked against the limit before any buffer is sized from them, so a peer
//! cannot make us allocate more than the limit.

use std::marker::PhantomData;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Bytes before the payload: length and flags.
pub const HEADER_LEN: usize = 5;
/// Flags bit 0: the payload is LZ4-compressed.
pub const FLAG_LZ4: u8 = 0x01;
/// Largest payload accepted unless configured otherwise.
pub const DEFAULT_MAX_FRAME: usize = 1 << 20;
/// Payloads longer than this are compressed; heartbeats and replies are not.
pub const DEFAULT_COMPRESS_THRESHOLD: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("message of {len} bytes exceeds the {max}-byte frame limit")]
    TooLarge { len: usize, max: usize },
    #[error("cannot serialize message: {0}")]
    Serialize(#[from] postcard::Error),
}

/// Encodes one message as a frame, compressing a payload above
/// `compress_threshold` bytes when that makes it smaller.
pub fn encode<M: Serialize>(msg: &M, compress_threshold: usize) -> Result<Bytes, EncodeError> {
    encode_with_limit(msg, compress_threshold, DEFAULT_MAX_FRAME)
}

/// [`encode`] against the peer's frame limit.
pub fn encode_with_limit<M: Serialize>(
    msg: &M,
    compress_threshold: usize,
    max_frame: usize,
) -> Result<Bytes, EncodeError> {
    let plain = postcard::to_allocvec(msg)?;
    // The receiver checks the uncompressed size too, so check it here as
    // well rather than send a frame the peer will throw away.
    if plain.len() > max_frame {
        return Err(EncodeError::TooLarge {
            len: plain.len(),
            max: max_frame,
        });
    }
    let plain_len = u32::try_from(plain.len()).map_err(|_| EncodeError::TooLarge {
        len: plain.len(),
        max: max_frame,
    })?;
    if plain.len() > compress_threshold {
        let packed = lz4_flex::block::compress(&plain);
        if packed.len() + 4 < plain.len() {
            let mut out = BytesMut::with_capacity(HEADER_LEN + 4 + packed.len());
            out.put_u32((packed.len() + 4) as u32);
            out.put_u8(FLAG_LZ4);
            out.put_u32(plain_len);
            out.put_slice(&packed);
            return Ok(out.freeze());
        }
    }
    let mut out = BytesMut::with_capacity(HEADER_LEN + plain.len());
    out.put_u32(plain_len);
    out.put_u8(0);
    out.put_slice(&plain);
    Ok(out.freeze())
}

/// Why a frame could not be decoded. Only [`DecodeError::is_fatal`] errors
/// end the stream: for the others the bad frame has been consumed whole and
/// decoding continues with the next one, so one message this side cannot
/// read (say, from a newer peer) does not cost the connection.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    Oversize { len: usize, max: usize },
    #[error("frame has unknown flags {0:#04x}")]
    UnknownFlags(u8),
    #[error("bad compressed frame: {0}")]
    Compression(&'static str),
    #[error("undecodable message: {0}")]
    Message(#[from] postcard::Error),
}

impl DecodeError {
    /// The stream cannot be resynchronised: drop the connection.
    pub fn is_fatal(&self) -> bool {
        matches!(self, DecodeError::Oversize { .. })
    }
}

/// Turns a byte stream into messages of type `M`: push bytes in as they
/// arrive, then call [`FrameDecoder::next`] until it returns `Ok(None)`.
#[derive(Debug)]
pub struct FrameDecoder<M> {
    buf: BytesMut,
    max_frame: usize,
    /// Set by a fatal error: the stream position is lost for good.
    broken: Option<(usize, usize)>,
    _msg: PhantomData<fn() -> M>,
}

impl<M: DeserializeOwned> Default for FrameDecoder<M> {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME)
    }
}

impl<M: DeserializeOwned> FrameDecoder<M> {
    pub fn new(max_frame: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            max_frame,
            broken: None,
            _msg: PhantomData,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        if self.broken.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Bytes received and not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete message, `Ok(None)` if more bytes are needed.
    #[allow(clippy::should_implement_trait)] // fallible, so not an Iterator
    pub fn next(&mut self) -> Result<Option<M>, DecodeError> {
        if let Some((len, max)) = self.broken {
            return Err(DecodeError::Oversize { len, max });
        }
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
        if len > self.max_frame {
            self.broken = Some((len, self.max_frame));
            self.buf = BytesMut::new();
            return Err(DecodeError::Oversize {
                len,
                max: self.max_frame,
            });
        }
        let whole = HEADER_LEN + len;
        if self.buf.len() < whole {
            // Safe to size from `len` now that it is within the limit.
            self.buf.reserve(whole - self.buf.len());
            return Ok(None);
        }
        let flags = self.buf[4];
        self.buf.advance(HEADER_LEN);
        let payload = self.buf.split_to(len);
        self.decode_payload(flags, &payload).map(Some)
    }

    fn decode_payload(&self, flags: u8, payload: &[u8]) -> Result<M, DecodeError> {
        match flags {
            0 => Ok(postcard::from_bytes(payload)?),
            FLAG_LZ4 => {
                let Some((size, block)) = payload.split_first_chunk::<4>() else {
                    return Err(DecodeError::Compression("missing uncompressed length"));
                };
                let size = u32::from_be_bytes(*size) as usize;
                if size > self.max_frame {
                    // Not fatal: the frame itself was within bounds and is consumed.
                    return Err(DecodeError::Compression(
                        "uncompressed length exceeds the frame limit",
                    ));
                }
                let mut plain = vec![0u8; size];
                let n = lz4_flex::block::decompress_into(block, &mut plain)
                    .map_err(|_| DecodeError::Compression("corrupt LZ4 block"))?;
                if n != size {
                    return Err(DecodeError::Compression("length does not match"));
                }
                Ok(postcard::from_bytes(&plain)?)
            }
            other => Err(DecodeError::UnknownFlags(other)),
        }
    }
}
