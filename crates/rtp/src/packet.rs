//! RTP data packets (RFC 3550 §5): a borrowed view, in-place mutators for
//! the fields a relay rewrites, and a header writer for generated packets.
//! Header-extension elements follow RFC 8285 (one-byte and two-byte forms).

use crate::{WriteError, be16, be32};

/// Length of the fixed RTP header.
pub const FIXED_HEADER_LEN: usize = 12;

/// Why an RTP packet was refused. Small and `Copy` so a relay can count drops
/// per reason with [`RtpError::index`] into a fixed array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum RtpError {
    #[error("shorter than the 12-byte RTP header")]
    TooShort,
    #[error("RTP version is not 2")]
    BadVersion,
    #[error("padding count is zero or larger than the payload")]
    BadPadding,
    #[error("CSRC list runs past the end of the packet")]
    TruncatedCsrc,
    #[error("header extension runs past the end of the packet")]
    TruncatedExtension,
}

impl RtpError {
    /// Every reason, in [`index`](Self::index) order.
    pub const ALL: [RtpError; 5] = [
        RtpError::TooShort,
        RtpError::BadVersion,
        RtpError::BadPadding,
        RtpError::TruncatedCsrc,
        RtpError::TruncatedExtension,
    ];

    /// A dense index in `0..ALL.len()` for per-reason counters.
    pub fn index(self) -> usize {
        self as usize
    }

    /// A stable snake_case name for metrics labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            RtpError::TooShort => "too_short",
            RtpError::BadVersion => "bad_version",
            RtpError::BadPadding => "bad_padding",
            RtpError::TruncatedCsrc => "truncated_csrc",
            RtpError::TruncatedExtension => "truncated_extension",
        }
    }
}

/// A validated, borrowed view of one RTP packet. Parsing checks every length
/// once, so the accessors below cannot fail or read out of bounds.
#[derive(Debug, Clone, Copy)]
pub struct RtpPacket<'a> {
    buf: &'a [u8],
    /// Offset of the extension's profile word; 0 when there is none (the
    /// fixed header makes 0 impossible as a real offset).
    ext_at: usize,
    payload_start: usize,
    payload_end: usize,
}

impl<'a> RtpPacket<'a> {
    /// Validates `buf` as an RTP packet: version 2, CSRC list and extension
    /// within the buffer, and a padding count that fits the payload.
    #[inline]
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        if buf.len() < FIXED_HEADER_LEN {
            return Err(RtpError::TooShort);
        }
        let b0 = buf[0];
        if b0 >> 6 != 2 {
            return Err(RtpError::BadVersion);
        }
        let mut off = FIXED_HEADER_LEN + 4 * usize::from(b0 & 0x0f);
        if off > buf.len() {
            return Err(RtpError::TruncatedCsrc);
        }
        let mut ext_at = 0;
        if b0 & 0x10 != 0 {
            if off + 4 > buf.len() {
                return Err(RtpError::TruncatedExtension);
            }
            ext_at = off;
            off += 4 + 4 * usize::from(be16(buf, off + 2));
            if off > buf.len() {
                return Err(RtpError::TruncatedExtension);
            }
        }
        let mut end = buf.len();
        if b0 & 0x20 != 0 {
            // The count includes itself, so 0 is as invalid as one that
            // would eat into the header.
            let pad = usize::from(buf[buf.len() - 1]);
            if pad == 0 || pad > buf.len() - off {
                return Err(RtpError::BadPadding);
            }
            end -= pad;
        }
        Ok(RtpPacket {
            buf,
            ext_at,
            payload_start: off,
            payload_end: end,
        })
    }

    /// The whole datagram this view was parsed from.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }
    pub fn version(&self) -> u8 {
        self.buf[0] >> 6
    }
    pub fn has_padding(&self) -> bool {
        self.buf[0] & 0x20 != 0
    }
    pub fn has_extension(&self) -> bool {
        self.ext_at != 0
    }
    pub fn csrc_count(&self) -> u8 {
        self.buf[0] & 0x0f
    }
    pub fn marker(&self) -> bool {
        self.buf[1] & 0x80 != 0
    }
    pub fn payload_type(&self) -> u8 {
        self.buf[1] & 0x7f
    }
    pub fn sequence_number(&self) -> u16 {
        be16(self.buf, 2)
    }
    pub fn timestamp(&self) -> u32 {
        be32(self.buf, 4)
    }
    pub fn ssrc(&self) -> u32 {
        be32(self.buf, 8)
    }

    /// The contributing sources, in packet order.
    pub fn csrcs(&self) -> impl ExactSizeIterator<Item = u32> + 'a {
        let n = usize::from(self.csrc_count());
        self.buf[FIXED_HEADER_LEN..FIXED_HEADER_LEN + 4 * n]
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }

    /// The header extension (RFC 3550 §5.3.1), if the X bit is set.
    pub fn extension(&self) -> Option<HeaderExtension<'a>> {
        if self.ext_at == 0 {
            return None;
        }
        let at = self.ext_at;
        Some(HeaderExtension {
            profile: be16(self.buf, at),
            data: &self.buf[at + 4..self.payload_start],
        })
    }

    /// Bytes before the payload: fixed header, CSRCs and extension.
    pub fn header_len(&self) -> usize {
        self.payload_start
    }

    /// The payload, without header or padding.
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.payload_start..self.payload_end]
    }

    /// The payload's offset and length in the datagram, for callers that
    /// rewrite the payload in place in the same buffer.
    pub fn payload_range(&self) -> core::ops::Range<usize> {
        self.payload_start..self.payload_end
    }

    /// Padding bytes at the end, including the count octet (0 if none).
    pub fn padding_len(&self) -> usize {
        self.buf.len() - self.payload_end
    }
}

/// An RTP header extension block: the 16-bit profile word and its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderExtension<'a> {
    pub profile: u16,
    pub data: &'a [u8],
}

/// Which RFC 8285 form (if any) an extension block uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtensionKind {
    /// Profile 0xBEDE.
    OneByte,
    /// Profile 0x100X; the low four "appbits" are the application's.
    TwoByte { appbits: u8 },
    /// Some other profile-defined extension, opaque here.
    Other,
}

impl<'a> HeaderExtension<'a> {
    pub fn kind(&self) -> ExtensionKind {
        if self.profile == 0xBEDE {
            ExtensionKind::OneByte
        } else if self.profile & 0xfff0 == 0x1000 {
            ExtensionKind::TwoByte {
                appbits: (self.profile & 0x0f) as u8,
            }
        } else {
            ExtensionKind::Other
        }
    }

    /// RFC 8285 elements; empty for an [`ExtensionKind::Other`] block.
    pub fn elements(&self) -> ExtElements<'a> {
        ExtElements {
            data: self.data,
            pos: 0,
            kind: self.kind(),
        }
    }
}

/// One RFC 8285 header-extension element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtElement<'a> {
    pub id: u8,
    pub data: &'a [u8],
}

/// Iterator over RFC 8285 elements. Padding bytes are skipped. A malformed
/// element (one running past the block) ends iteration, as RFC 8285 §4.2
/// asks for the reserved ID 15: elements before it are still delivered.
#[derive(Debug, Clone)]
pub struct ExtElements<'a> {
    data: &'a [u8],
    pos: usize,
    kind: ExtensionKind,
}

impl<'a> Iterator for ExtElements<'a> {
    type Item = ExtElement<'a>;

    fn next(&mut self) -> Option<ExtElement<'a>> {
        loop {
            let &h = self.data.get(self.pos)?;
            if h == 0 {
                self.pos += 1;
                continue;
            }
            let (id, start, len) = match self.kind {
                ExtensionKind::OneByte => {
                    let id = h >> 4;
                    if id == 0 {
                        // ID 0 is reserved for padding; its length is ignored.
                        self.pos += 1;
                        continue;
                    }
                    if id == 15 {
                        break;
                    }
                    (id, self.pos + 1, usize::from(h & 0x0f) + 1)
                }
                ExtensionKind::TwoByte { .. } => match self.data.get(self.pos + 1) {
                    Some(&l) => (h, self.pos + 2, usize::from(l)),
                    None => break,
                },
                ExtensionKind::Other => break,
            };
            let end = start + len;
            if end > self.data.len() {
                break;
            }
            self.pos = end;
            return Some(ExtElement {
                id,
                data: &self.data[start..end],
            });
        }
        self.pos = self.data.len();
        None
    }
}

/// In-place access to the fixed header of a packet in a mutable buffer: a
/// relay rewrites PT, sequence, timestamp, SSRC and marker without copying.
#[derive(Debug)]
pub struct RtpHeaderMut<'a> {
    buf: &'a mut [u8],
}

impl<'a> RtpHeaderMut<'a> {
    /// Checks the length and version once, so the setters cannot fail.
    #[inline]
    pub fn new(buf: &'a mut [u8]) -> Result<Self, RtpError> {
        if buf.len() < FIXED_HEADER_LEN {
            return Err(RtpError::TooShort);
        }
        if buf[0] >> 6 != 2 {
            return Err(RtpError::BadVersion);
        }
        Ok(RtpHeaderMut { buf })
    }

    pub fn marker(&self) -> bool {
        self.buf[1] & 0x80 != 0
    }
    pub fn payload_type(&self) -> u8 {
        self.buf[1] & 0x7f
    }
    pub fn sequence_number(&self) -> u16 {
        be16(self.buf, 2)
    }
    pub fn timestamp(&self) -> u32 {
        be32(self.buf, 4)
    }
    pub fn ssrc(&self) -> u32 {
        be32(self.buf, 8)
    }

    #[inline]
    pub fn set_marker(&mut self, marker: bool) {
        self.buf[1] = (self.buf[1] & 0x7f) | (u8::from(marker) << 7);
    }
    /// Sets the 7-bit payload type, keeping the marker bit.
    #[inline]
    pub fn set_payload_type(&mut self, pt: u8) {
        self.buf[1] = (self.buf[1] & 0x80) | (pt & 0x7f);
    }
    #[inline]
    pub fn set_sequence_number(&mut self, seq: u16) {
        self.buf[2..4].copy_from_slice(&seq.to_be_bytes());
    }
    #[inline]
    pub fn set_timestamp(&mut self, ts: u32) {
        self.buf[4..8].copy_from_slice(&ts.to_be_bytes());
    }
    #[inline]
    pub fn set_ssrc(&mut self, ssrc: u32) {
        self.buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
    }
}

/// The header of a packet the node generates (prompts, DTMF, transcoded
/// audio). [`write`](Self::write) emits it; the payload follows at the
/// returned offset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RtpHeader<'a> {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence_number: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// At most 15.
    pub csrcs: &'a [u32],
    /// Profile word and data; data is zero-padded to a 32-bit boundary, which
    /// RFC 8285 readers skip as padding.
    pub extension: Option<(u16, &'a [u8])>,
}

impl RtpHeader<'_> {
    /// Bytes [`write`](Self::write) will produce.
    pub fn len(&self) -> usize {
        let ext = match self.extension {
            Some((_, d)) => 4 + d.len().div_ceil(4) * 4,
            None => 0,
        };
        FIXED_HEADER_LEN + 4 * self.csrcs.len() + ext
    }

    /// Always false: a header is never empty; here for clippy's `len` rule.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the header at the start of `buf` and returns its length.
    pub fn write(&self, buf: &mut [u8]) -> Result<usize, WriteError> {
        if self.csrcs.len() > 15 {
            return Err(WriteError::TooMany);
        }
        let ext_words = match self.extension {
            Some((_, d)) => d.len().div_ceil(4),
            None => 0,
        };
        if ext_words > usize::from(u16::MAX) {
            return Err(WriteError::TooLong);
        }
        let len = self.len();
        if buf.len() < len {
            return Err(WriteError::BufferTooSmall { needed: len });
        }
        buf[0] = 0x80 | (u8::from(self.extension.is_some()) << 4) | self.csrcs.len() as u8;
        buf[1] = (u8::from(self.marker) << 7) | (self.payload_type & 0x7f);
        buf[2..4].copy_from_slice(&self.sequence_number.to_be_bytes());
        buf[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        buf[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        let mut off = FIXED_HEADER_LEN;
        for c in self.csrcs {
            buf[off..off + 4].copy_from_slice(&c.to_be_bytes());
            off += 4;
        }
        if let Some((profile, data)) = self.extension {
            buf[off..off + 2].copy_from_slice(&profile.to_be_bytes());
            buf[off + 2..off + 4].copy_from_slice(&(ext_words as u16).to_be_bytes());
            off += 4;
            buf[off..off + data.len()].copy_from_slice(data);
            buf[off + data.len()..off + ext_words * 4].fill(0);
            off += ext_words * 4;
        }
        Ok(off)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{XorShift, within};

    /// A G.711 packet as a softphone sends it: PT 0, seq 0x1234,
    /// ts 0xdeadbeef, SSRC 0x11223344, 160 bytes of 0xff (μ-law silence).
    fn pcmu(len_payload: usize) -> Vec<u8> {
        let mut p = vec![
            0x80, 0x00, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x11, 0x22, 0x33, 0x44,
        ];
        p.extend(std::iter::repeat_n(0xff, len_payload));
        p
    }

    #[test]
    fn plain_packet() {
        let b = pcmu(160);
        let p = RtpPacket::parse(&b).expect("valid");
        assert_eq!(p.version(), 2);
        assert!(!p.marker() && !p.has_padding() && !p.has_extension());
        assert_eq!(p.payload_type(), 0);
        assert_eq!(p.sequence_number(), 0x1234);
        assert_eq!(p.timestamp(), 0xdead_beef);
        assert_eq!(p.ssrc(), 0x1122_3344);
        assert_eq!(p.csrcs().count(), 0);
        assert_eq!(p.header_len(), 12);
        assert_eq!(p.payload().len(), 160);
        assert_eq!(p.padding_len(), 0);
        assert!(p.extension().is_none());
    }

    #[test]
    fn header_only_packet_has_empty_payload() {
        let b = pcmu(0);
        let p = RtpPacket::parse(&b).expect("valid");
        assert!(p.payload().is_empty());
    }

    #[test]
    fn csrcs_marker_and_pt() {
        let mut b = vec![0x82, 0x80 | 111, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        b.extend([0xaa, 0xbb, 0xcc, 0xdd, 0x01, 0x02, 0x03, 0x04]);
        b.extend([9, 8, 7]);
        let p = RtpPacket::parse(&b).expect("valid");
        assert!(p.marker());
        assert_eq!(p.payload_type(), 111);
        assert_eq!(p.csrc_count(), 2);
        let c: Vec<u32> = p.csrcs().collect();
        assert_eq!(c, [0xaabb_ccdd, 0x0102_0304]);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.payload(), &[9, 8, 7]);
    }

    #[test]
    fn one_byte_extension_elements() {
        let mut b = vec![0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        // 0xBEDE, 2 words: id 1 len 1; a padding byte; id 2 len 4; then
        // a byte of trailing padding would overflow, so the block is exact.
        b.extend([0xbe, 0xde, 0x00, 0x02]);
        b.extend([0x10, 0xaa, 0x00, 0x23, 1, 2, 3, 4]);
        b.extend([0x55; 4]);
        let p = RtpPacket::parse(&b).expect("valid");
        let ext = p.extension().expect("extension");
        assert_eq!(ext.profile, 0xbede);
        assert_eq!(ext.kind(), ExtensionKind::OneByte);
        let els: Vec<_> = ext.elements().collect();
        assert_eq!(
            els,
            [
                ExtElement {
                    id: 1,
                    data: &[0xaa]
                },
                ExtElement {
                    id: 2,
                    data: &[1, 2, 3, 4]
                }
            ]
        );
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.payload(), &[0x55; 4]);
    }

    #[test]
    fn one_byte_id_15_stops_and_overrun_stops() {
        let ext = HeaderExtension {
            profile: 0xbede,
            data: &[0x10, 0xaa, 0xf0, 0x20, 0x01, 0x00, 0x00, 0x00],
        };
        let els: Vec<_> = ext.elements().collect();
        assert_eq!(els.len(), 1, "ID 15 ends processing: {els:?}");
        let ext = HeaderExtension {
            profile: 0xbede,
            data: &[0x10, 0xaa, 0x23, 1, 2],
        };
        let els: Vec<_> = ext.elements().collect();
        assert_eq!(els.len(), 1, "an element past the block is dropped");
    }

    #[test]
    fn two_byte_extension_elements() {
        let mut b = vec![0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        // 0x1002 (appbits 2), 2 words: id 5 len 0; id 200 len 3; one pad.
        b.extend([0x10, 0x02, 0x00, 0x02]);
        b.extend([5, 0, 200, 3, 7, 8, 9, 0]);
        let p = RtpPacket::parse(&b).expect("valid");
        let ext = p.extension().expect("extension");
        assert_eq!(ext.kind(), ExtensionKind::TwoByte { appbits: 2 });
        let els: Vec<_> = ext.elements().collect();
        assert_eq!(
            els,
            [
                ExtElement { id: 5, data: &[] },
                ExtElement {
                    id: 200,
                    data: &[7, 8, 9]
                }
            ]
        );
        assert!(p.payload().is_empty());
    }

    #[test]
    fn other_profile_is_opaque() {
        let ext = HeaderExtension {
            profile: 0x1234,
            data: &[1, 2, 3, 4],
        };
        assert_eq!(ext.kind(), ExtensionKind::Other);
        assert_eq!(ext.elements().count(), 0);
    }

    #[test]
    fn padding_removed_from_payload() {
        let mut b = pcmu(4);
        b[0] |= 0x20;
        b.extend([0, 0, 0, 4]);
        let p = RtpPacket::parse(&b).expect("valid");
        assert!(p.has_padding());
        assert_eq!(p.payload(), &[0xff; 4]);
        assert_eq!(p.padding_len(), 4);
        // Padding may consume the whole payload.
        let mut b = pcmu(0);
        b[0] |= 0x20;
        b.extend([0, 2]);
        let p = RtpPacket::parse(&b).expect("valid");
        assert!(p.payload().is_empty());
    }

    #[test]
    fn errors_by_reason() {
        assert_eq!(RtpPacket::parse(&[]).err(), Some(RtpError::TooShort));
        assert_eq!(
            RtpPacket::parse(&pcmu(0)[..11]).err(),
            Some(RtpError::TooShort)
        );
        let mut b = pcmu(8);
        b[0] = 0x40;
        assert_eq!(RtpPacket::parse(&b).err(), Some(RtpError::BadVersion));
        b[0] = 0x00;
        assert_eq!(RtpPacket::parse(&b).err(), Some(RtpError::BadVersion));
        // Three CSRCs claimed, two present.
        let mut b = pcmu(8);
        b[0] = 0x83;
        assert_eq!(RtpPacket::parse(&b).err(), Some(RtpError::TruncatedCsrc));
        // Extension bit with no room for the extension header.
        let mut b = pcmu(2);
        b[0] = 0x90;
        assert_eq!(
            RtpPacket::parse(&b).err(),
            Some(RtpError::TruncatedExtension)
        );
        // Extension header claiming more words than remain.
        let mut b = pcmu(0);
        b[0] = 0x90;
        b.extend([0xbe, 0xde, 0x00, 0x03, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            RtpPacket::parse(&b).err(),
            Some(RtpError::TruncatedExtension)
        );
        // Padding count zero, and larger than the payload.
        let mut b = pcmu(3);
        b[0] |= 0x20;
        b.push(0);
        assert_eq!(RtpPacket::parse(&b).err(), Some(RtpError::BadPadding));
        let last = b.len() - 1;
        b[last] = 5;
        assert_eq!(RtpPacket::parse(&b).err(), Some(RtpError::BadPadding));
        b[last] = 4;
        assert!(RtpPacket::parse(&b).is_ok());
    }

    #[test]
    fn error_indices_are_dense() {
        for (i, e) in RtpError::ALL.iter().enumerate() {
            assert_eq!(e.index(), i);
            assert!(!e.as_str().is_empty());
        }
    }

    #[test]
    fn mutators_rewrite_in_place() {
        let mut b = pcmu(160);
        {
            let mut h = RtpHeaderMut::new(&mut b).expect("valid");
            h.set_payload_type(8);
            h.set_marker(true);
            h.set_sequence_number(65535);
            h.set_timestamp(0x0102_0304);
            h.set_ssrc(0xcafe_babe);
            assert_eq!(h.payload_type(), 8);
            h.set_marker(false);
            h.set_marker(true);
            h.set_payload_type(101);
            assert!(h.marker());
        }
        let p = RtpPacket::parse(&b).expect("valid");
        assert!(p.marker());
        assert_eq!(p.payload_type(), 101);
        assert_eq!(p.sequence_number(), 65535);
        assert_eq!(p.timestamp(), 0x0102_0304);
        assert_eq!(p.ssrc(), 0xcafe_babe);
        assert_eq!(p.payload(), &[0xff; 160][..]);
        assert_eq!(
            RtpHeaderMut::new(&mut [0x80; 11]).err(),
            Some(RtpError::TooShort)
        );
        assert_eq!(
            RtpHeaderMut::new(&mut [0; 12]).err(),
            Some(RtpError::BadVersion)
        );
    }

    #[test]
    fn writer_round_trips() {
        let h = RtpHeader {
            marker: true,
            payload_type: 101,
            sequence_number: 7,
            timestamp: 123_456,
            ssrc: 42,
            csrcs: &[1, 2, 3],
            extension: Some((0xbede, &[0x22, 9, 9, 9, 0x10, 5])),
        };
        let mut buf = [0u8; 64];
        let n = h.write(&mut buf).expect("fits");
        assert_eq!(n, h.len());
        assert_eq!(n, 12 + 12 + 4 + 8);
        buf[n..n + 4].copy_from_slice(&[1, 2, 3, 4]);
        let p = RtpPacket::parse(&buf[..n + 4]).expect("valid");
        assert!(p.marker());
        assert_eq!(p.payload_type(), 101);
        assert_eq!(p.sequence_number(), 7);
        assert_eq!(p.timestamp(), 123_456);
        assert_eq!(p.ssrc(), 42);
        assert_eq!(p.csrcs().collect::<Vec<_>>(), [1, 2, 3]);
        let ext = p.extension().expect("ext");
        let ids: Vec<_> = ext.elements().map(|e| (e.id, e.data.len())).collect();
        assert_eq!(ids, [(2, 3), (1, 1)]);
        assert_eq!(p.payload(), &[1, 2, 3, 4]);

        assert_eq!(
            h.write(&mut [0u8; 20]),
            Err(WriteError::BufferTooSmall { needed: 36 })
        );
        let many = [0u32; 16];
        let h = RtpHeader {
            csrcs: &many,
            ..RtpHeader::default()
        };
        assert_eq!(h.write(&mut [0u8; 128]), Err(WriteError::TooMany));
        let plain = RtpHeader::default();
        assert_eq!(plain.write(&mut [0u8; 12]), Ok(12));
    }

    /// Random bytes and mutated valid packets: parsing never panics, and a
    /// successful parse yields slices inside the input.
    #[test]
    fn fuzz_parse_never_panics() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut seeds: Vec<Vec<u8>> = vec![pcmu(160), pcmu(0)];
        let mut with_ext = vec![0xb2, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1];
        with_ext.extend([
            0, 0, 0, 2, 0xbe, 0xde, 0x00, 0x01, 0x10, 0xaa, 0, 0, 1, 2, 0, 2,
        ]);
        seeds.push(with_ext);
        let mut ok = 0;
        for i in 0..200_000 {
            let mut b = if i % 2 == 0 {
                let mut v = vec![0u8; rng.below(48) as usize];
                rng.fill(&mut v);
                if !v.is_empty() && rng.below(2) == 0 {
                    v[0] = (v[0] & 0x3f) | 0x80;
                }
                v
            } else {
                let mut v = seeds[rng.below(seeds.len() as u64) as usize].clone();
                for _ in 0..1 + rng.below(3) {
                    let at = rng.below(v.len() as u64) as usize;
                    v[at] = rng.next() as u8;
                }
                let cut = rng.below(v.len() as u64 + 1) as usize;
                v.truncate(cut);
                v
            };
            if let Ok(p) = RtpPacket::parse(&b) {
                ok += 1;
                assert!(within(&b, p.payload()));
                assert!(p.header_len() + p.payload().len() + p.padding_len() == b.len());
                let _ = p.csrcs().count();
                if let Some(ext) = p.extension() {
                    assert!(within(&b, ext.data));
                    for e in ext.elements() {
                        assert!(within(&b, e.data));
                    }
                }
            }
            if let Ok(mut h) = RtpHeaderMut::new(&mut b) {
                h.set_ssrc(1);
                h.set_payload_type(0xff);
            }
        }
        assert!(ok > 1000, "the fuzz should reach the success path: {ok}");
    }
}
