//! RTCP (RFC 3550 §6): compound-packet validation (§A.2) and iteration,
//! borrowed views of SR, RR, SDES, BYE and APP, RFC 4585 feedback (RTPFB,
//! PSFB) as opaque FCI with its FMT, writers for what the SBC emits (SR, RR,
//! SDES CNAME, BYE), and the RFC 5761 RTP/RTCP demultiplexing test.

use core::time::Duration;

use crate::{WriteError, be16, be32};

pub const PT_SR: u8 = 200;
pub const PT_RR: u8 = 201;
pub const PT_SDES: u8 = 202;
pub const PT_BYE: u8 = 203;
pub const PT_APP: u8 = 204;
pub const PT_RTPFB: u8 = 205;
pub const PT_PSFB: u8 = 206;

/// SDES item types (RFC 3550 §6.5).
pub mod sdes {
    pub const END: u8 = 0;
    pub const CNAME: u8 = 1;
    pub const NAME: u8 = 2;
    pub const EMAIL: u8 = 3;
    pub const PHONE: u8 = 4;
    pub const LOC: u8 = 5;
    pub const TOOL: u8 = 6;
    pub const NOTE: u8 = 7;
    pub const PRIV: u8 = 8;
}

/// RFC 5761 §4: with rtcp-mux, a datagram is RTCP when its second octet
/// (RTCP packet type, or RTP marker+PT) lies in 192..=223. This is why RTP
/// payload types 64–95 must not be used on a muxed port.
#[inline]
pub fn is_rtcp(first_bytes: &[u8]) -> bool {
    matches!(first_bytes.get(1), Some(192..=223))
}

/// Why an RTCP datagram was refused; `Copy` for per-reason drop counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum RtcpError {
    #[error("shorter than an RTCP header")]
    TooShort,
    #[error("RTCP version is not 2")]
    BadVersion,
    #[error("packet lengths do not add up to the datagram")]
    BadLength,
    #[error("padding count is zero or larger than the packet")]
    BadPadding,
    #[error("padding on a packet that is not the last of the compound")]
    PaddingNotLast,
    #[error("compound does not start with an SR or RR")]
    NotReportFirst,
    #[error("packet body too short for its type or item count")]
    Truncated,
}

impl RtcpError {
    /// Every reason, in [`index`](Self::index) order.
    pub const ALL: [RtcpError; 7] = [
        RtcpError::TooShort,
        RtcpError::BadVersion,
        RtcpError::BadLength,
        RtcpError::BadPadding,
        RtcpError::PaddingNotLast,
        RtcpError::NotReportFirst,
        RtcpError::Truncated,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RtcpError::TooShort => "too_short",
            RtcpError::BadVersion => "bad_version",
            RtcpError::BadLength => "bad_length",
            RtcpError::BadPadding => "bad_padding",
            RtcpError::PaddingNotLast => "padding_not_last",
            RtcpError::NotReportFirst => "not_report_first",
            RtcpError::Truncated => "truncated",
        }
    }
}

/// One RTCP packet, decoded by type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpPacket<'a> {
    SenderReport(SenderReport<'a>),
    ReceiverReport(ReceiverReport<'a>),
    Sdes(Sdes<'a>),
    Bye(Bye<'a>),
    App(App<'a>),
    /// RFC 4585 RTPFB (PT 205): generic NACK is FMT 1.
    TransportFeedback(Feedback<'a>),
    /// RFC 4585 PSFB (PT 206): PLI is FMT 1, FIR FMT 4, REMB/AFB FMT 15.
    PayloadFeedback(Feedback<'a>),
    /// Any other packet type (XR, IJ, ...): header fields and raw body.
    Other {
        packet_type: u8,
        count: u8,
        body: &'a [u8],
    },
}

/// Sender info of an SR (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SenderInfo {
    /// 64-bit NTP timestamp: seconds since 1900 in the high 32 bits.
    pub ntp_timestamp: u64,
    pub rtp_timestamp: u32,
    pub packet_count: u32,
    pub octet_count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderReport<'a> {
    pub ssrc: u32,
    pub info: SenderInfo,
    pub reports: ReportBlocks<'a>,
    /// Profile-specific extension after the report blocks.
    pub extension: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverReport<'a> {
    pub ssrc: u32,
    pub reports: ReportBlocks<'a>,
    pub extension: &'a [u8],
}

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportBlock {
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative lost, a 24-bit signed value on the wire: negative with
    /// duplicates. Writers clamp it to the 24-bit range.
    pub cumulative_lost: i32,
    pub extended_highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the last SR's NTP timestamp (0 if none).
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    pub const LEN: usize = 24;

    fn read(b: &[u8]) -> ReportBlock {
        let raw = (u32::from(b[5]) << 16) | (u32::from(b[6]) << 8) | u32::from(b[7]);
        // Sign-extend the 24-bit field.
        let cumulative_lost = ((raw << 8) as i32) >> 8;
        ReportBlock {
            ssrc: be32(b, 0),
            fraction_lost: b[4],
            cumulative_lost,
            extended_highest_seq: be32(b, 8),
            jitter: be32(b, 12),
            last_sr: be32(b, 16),
            delay_since_last_sr: be32(b, 20),
        }
    }

    fn write(&self, b: &mut [u8]) {
        let lost = self.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32 & 0x00ff_ffff;
        b[0..4].copy_from_slice(&self.ssrc.to_be_bytes());
        b[4..8].copy_from_slice(&((u32::from(self.fraction_lost) << 24) | lost).to_be_bytes());
        b[8..12].copy_from_slice(&self.extended_highest_seq.to_be_bytes());
        b[12..16].copy_from_slice(&self.jitter.to_be_bytes());
        b[16..20].copy_from_slice(&self.last_sr.to_be_bytes());
        b[20..24].copy_from_slice(&self.delay_since_last_sr.to_be_bytes());
    }
}

/// The report blocks of an SR or RR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportBlocks<'a> {
    data: &'a [u8],
}

impl Iterator for ReportBlocks<'_> {
    type Item = ReportBlock;

    fn next(&mut self) -> Option<ReportBlock> {
        if self.data.len() < ReportBlock::LEN {
            return None;
        }
        let (b, rest) = self.data.split_at(ReportBlock::LEN);
        self.data = rest;
        Some(ReportBlock::read(b))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.data.len() / ReportBlock::LEN;
        (n, Some(n))
    }
}

impl ExactSizeIterator for ReportBlocks<'_> {}

/// An SDES packet; its chunks were validated when the packet was parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdes<'a> {
    count: u8,
    body: &'a [u8],
}

impl<'a> Sdes<'a> {
    pub fn chunks(&self) -> SdesChunks<'a> {
        SdesChunks {
            left: self.count,
            body: self.body,
            pos: 0,
        }
    }

    /// Walks the chunks once, checking each ends inside the body, so the
    /// iterators never meet a malformed chunk.
    fn validate(count: u8, body: &[u8]) -> Result<(), RtcpError> {
        let mut pos = 0;
        for _ in 0..count {
            if pos + 4 > body.len() {
                return Err(RtcpError::Truncated);
            }
            pos += 4;
            loop {
                let &kind = body.get(pos).ok_or(RtcpError::Truncated)?;
                if kind == sdes::END {
                    pos += 1;
                    break;
                }
                let &len = body.get(pos + 1).ok_or(RtcpError::Truncated)?;
                pos += 2 + usize::from(len);
                if pos > body.len() {
                    return Err(RtcpError::Truncated);
                }
            }
            // Chunks end on a 32-bit boundary; the body starts on one.
            pos = pos.div_ceil(4) * 4;
            if pos > body.len() {
                return Err(RtcpError::Truncated);
            }
        }
        Ok(())
    }
}

/// One SDES chunk: a source and its items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdesChunk<'a> {
    pub ssrc: u32,
    pub items: SdesItems<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesItem<'a> {
    /// One of [`sdes`]'s constants.
    pub kind: u8,
    pub value: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdesChunks<'a> {
    left: u8,
    body: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for SdesChunks<'a> {
    type Item = SdesChunk<'a>;

    fn next(&mut self) -> Option<SdesChunk<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let b = self.body.get(self.pos..self.pos + 4)?;
        let ssrc = be32(b, 0);
        let start = self.pos + 4;
        // Find the END item to know where the next chunk starts; the body
        // was validated, but stay bounded regardless.
        let mut pos = start;
        while let Some(&kind) = self.body.get(pos) {
            if kind == sdes::END {
                break;
            }
            pos += 2 + usize::from(*self.body.get(pos + 1)?);
        }
        let items = SdesItems {
            data: self.body.get(start..pos.min(self.body.len()))?,
        };
        self.pos = (pos + 1).div_ceil(4) * 4;
        Some(SdesChunk { ssrc, items })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdesItems<'a> {
    data: &'a [u8],
}

impl<'a> Iterator for SdesItems<'a> {
    type Item = SdesItem<'a>;

    fn next(&mut self) -> Option<SdesItem<'a>> {
        let (&kind, rest) = self.data.split_first()?;
        let (&len, rest) = rest.split_first()?;
        let value = rest.get(..usize::from(len))?;
        self.data = &rest[usize::from(len)..];
        Some(SdesItem { kind, value })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bye<'a> {
    sources: &'a [u8],
    /// The optional "reason for leaving" text.
    pub reason: Option<&'a [u8]>,
}

impl<'a> Bye<'a> {
    pub fn sources(&self) -> impl ExactSizeIterator<Item = u32> + 'a {
        self.sources.chunks_exact(4).map(|c| be32(c, 0))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct App<'a> {
    pub subtype: u8,
    pub ssrc: u32,
    pub name: [u8; 4],
    pub data: &'a [u8],
}

/// An RFC 4585 feedback message, FCI left opaque.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feedback<'a> {
    pub fmt: u8,
    pub sender_ssrc: u32,
    pub media_ssrc: u32,
    pub fci: &'a [u8],
}

impl<'a> RtcpPacket<'a> {
    /// Decodes one packet's body by type. `count` is the 5-bit RC/SC/FMT/
    /// subtype field; `body` excludes the 4-byte header and any padding.
    fn decode(packet_type: u8, count: u8, body: &'a [u8]) -> Result<Self, RtcpError> {
        let ssrc = || {
            body.get(..4)
                .map(|b| be32(b, 0))
                .ok_or(RtcpError::Truncated)
        };
        Ok(match packet_type {
            PT_SR => {
                let end = 24 + ReportBlock::LEN * usize::from(count);
                if body.len() < end {
                    return Err(RtcpError::Truncated);
                }
                let ntp = (u64::from(be32(body, 4)) << 32) | u64::from(be32(body, 8));
                RtcpPacket::SenderReport(SenderReport {
                    ssrc: be32(body, 0),
                    info: SenderInfo {
                        ntp_timestamp: ntp,
                        rtp_timestamp: be32(body, 12),
                        packet_count: be32(body, 16),
                        octet_count: be32(body, 20),
                    },
                    reports: ReportBlocks {
                        data: &body[24..end],
                    },
                    extension: &body[end..],
                })
            }
            PT_RR => {
                let end = 4 + ReportBlock::LEN * usize::from(count);
                if body.len() < end {
                    return Err(RtcpError::Truncated);
                }
                RtcpPacket::ReceiverReport(ReceiverReport {
                    ssrc: be32(body, 0),
                    reports: ReportBlocks {
                        data: &body[4..end],
                    },
                    extension: &body[end..],
                })
            }
            PT_SDES => {
                Sdes::validate(count, body)?;
                RtcpPacket::Sdes(Sdes { count, body })
            }
            PT_BYE => {
                let n = 4 * usize::from(count);
                let sources = body.get(..n).ok_or(RtcpError::Truncated)?;
                let reason = match body.get(n) {
                    None => None,
                    Some(&len) => Some(
                        body.get(n + 1..n + 1 + usize::from(len))
                            .ok_or(RtcpError::Truncated)?,
                    ),
                };
                RtcpPacket::Bye(Bye { sources, reason })
            }
            PT_APP => {
                let ssrc = ssrc()?;
                let name = body.get(4..8).ok_or(RtcpError::Truncated)?;
                RtcpPacket::App(App {
                    subtype: count,
                    ssrc,
                    name: [name[0], name[1], name[2], name[3]],
                    data: &body[8..],
                })
            }
            PT_RTPFB | PT_PSFB => {
                if body.len() < 8 {
                    return Err(RtcpError::Truncated);
                }
                let fb = Feedback {
                    fmt: count,
                    sender_ssrc: be32(body, 0),
                    media_ssrc: be32(body, 4),
                    fci: &body[8..],
                };
                if packet_type == PT_RTPFB {
                    RtcpPacket::TransportFeedback(fb)
                } else {
                    RtcpPacket::PayloadFeedback(fb)
                }
            }
            _ => RtcpPacket::Other {
                packet_type,
                count,
                body,
            },
        })
    }

    pub fn packet_type(&self) -> u8 {
        match self {
            RtcpPacket::SenderReport(_) => PT_SR,
            RtcpPacket::ReceiverReport(_) => PT_RR,
            RtcpPacket::Sdes(_) => PT_SDES,
            RtcpPacket::Bye(_) => PT_BYE,
            RtcpPacket::App(_) => PT_APP,
            RtcpPacket::TransportFeedback(_) => PT_RTPFB,
            RtcpPacket::PayloadFeedback(_) => PT_PSFB,
            RtcpPacket::Other { packet_type, .. } => *packet_type,
        }
    }
}

/// The first packet of a datagram and what follows it.
struct Split<'a> {
    packet_type: u8,
    count: u8,
    /// After the 4-byte header, without padding.
    body: &'a [u8],
    padded: bool,
    rest: &'a [u8],
}

/// Splits the first packet off `buf`, checking version, length and padding
/// of this one packet.
fn split_one(buf: &[u8]) -> Result<Split<'_>, RtcpError> {
    if buf.len() < 4 {
        return Err(RtcpError::TooShort);
    }
    if buf[0] >> 6 != 2 {
        return Err(RtcpError::BadVersion);
    }
    let len = (usize::from(be16(buf, 2)) + 1) * 4;
    if len > buf.len() {
        return Err(RtcpError::BadLength);
    }
    let (pkt, rest) = buf.split_at(len);
    let padded = pkt[0] & 0x20 != 0;
    let mut end = len;
    if padded {
        let pad = usize::from(pkt[len - 1]);
        if pad == 0 || pad > len - 4 {
            return Err(RtcpError::BadPadding);
        }
        end -= pad;
    }
    Ok(Split {
        packet_type: pkt[1],
        count: pkt[0] & 0x1f,
        body: &pkt[4..end],
        padded,
        rest,
    })
}

/// Lenient iteration over the packets of a datagram, each decoded and
/// checked on its own (for RFC 5506 reduced-size RTCP, which needs not
/// start with a report). Stops after the first error.
#[derive(Debug, Clone)]
pub struct RtcpPackets<'a> {
    rest: &'a [u8],
}

impl<'a> RtcpPackets<'a> {
    pub fn new(datagram: &'a [u8]) -> Self {
        RtcpPackets { rest: datagram }
    }
}

impl<'a> Iterator for RtcpPackets<'a> {
    type Item = Result<RtcpPacket<'a>, RtcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match split_one(self.rest) {
            Ok(p) => {
                self.rest = p.rest;
                Some(RtcpPacket::decode(p.packet_type, p.count, p.body))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// A compound RTCP datagram validated per RFC 3550 §A.2 and §6.1: every
/// packet version 2 with a length inside the datagram, the lengths summing
/// to it exactly, the first packet an SR or RR, padding only on the last,
/// and each packet's body well-formed for its type.
#[derive(Debug, Clone, Copy)]
pub struct RtcpCompound<'a> {
    buf: &'a [u8],
}

impl<'a> RtcpCompound<'a> {
    pub fn parse(datagram: &'a [u8]) -> Result<Self, RtcpError> {
        let mut rest = datagram;
        let mut first = true;
        loop {
            let p = match split_one(rest) {
                // A fragment too short for a header after a valid packet
                // means the lengths do not cover the datagram.
                Err(RtcpError::TooShort) if !first => return Err(RtcpError::BadLength),
                r => r?,
            };
            if first && p.packet_type != PT_SR && p.packet_type != PT_RR {
                return Err(RtcpError::NotReportFirst);
            }
            if p.padded && !p.rest.is_empty() {
                return Err(RtcpError::PaddingNotLast);
            }
            RtcpPacket::decode(p.packet_type, p.count, p.body)?;
            first = false;
            rest = p.rest;
            if rest.is_empty() {
                return Ok(RtcpCompound { buf: datagram });
            }
        }
    }

    /// The packets, in order. Validation already decoded each one.
    pub fn iter(&self) -> impl Iterator<Item = RtcpPacket<'a>> + 'a {
        RtcpPackets::new(self.buf).map_while(Result::ok)
    }

    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }
}

fn header(buf: &mut [u8], count: u8, pt: u8, len: usize) {
    buf[0] = 0x80 | (count & 0x1f);
    buf[1] = pt;
    buf[2..4].copy_from_slice(&((len / 4 - 1) as u16).to_be_bytes());
}

fn check_space(buf: &[u8], len: usize) -> Result<(), WriteError> {
    if buf.len() < len {
        Err(WriteError::BufferTooSmall { needed: len })
    } else {
        Ok(())
    }
}

/// Writes an SR at the start of `buf`; returns its length. Append further
/// packets (SDES CNAME is required by §6.1) at that offset to build a
/// compound.
pub fn write_sender_report(
    buf: &mut [u8],
    ssrc: u32,
    info: &SenderInfo,
    blocks: &[ReportBlock],
) -> Result<usize, WriteError> {
    if blocks.len() > 31 {
        return Err(WriteError::TooMany);
    }
    let len = 28 + ReportBlock::LEN * blocks.len();
    check_space(buf, len)?;
    header(buf, blocks.len() as u8, PT_SR, len);
    buf[4..8].copy_from_slice(&ssrc.to_be_bytes());
    buf[8..16].copy_from_slice(&info.ntp_timestamp.to_be_bytes());
    buf[16..20].copy_from_slice(&info.rtp_timestamp.to_be_bytes());
    buf[20..24].copy_from_slice(&info.packet_count.to_be_bytes());
    buf[24..28].copy_from_slice(&info.octet_count.to_be_bytes());
    for (i, b) in blocks.iter().enumerate() {
        b.write(&mut buf[28 + i * ReportBlock::LEN..]);
    }
    Ok(len)
}

/// Writes an RR (possibly with no blocks) at the start of `buf`.
pub fn write_receiver_report(
    buf: &mut [u8],
    ssrc: u32,
    blocks: &[ReportBlock],
) -> Result<usize, WriteError> {
    if blocks.len() > 31 {
        return Err(WriteError::TooMany);
    }
    let len = 8 + ReportBlock::LEN * blocks.len();
    check_space(buf, len)?;
    header(buf, blocks.len() as u8, PT_RR, len);
    buf[4..8].copy_from_slice(&ssrc.to_be_bytes());
    for (i, b) in blocks.iter().enumerate() {
        b.write(&mut buf[8 + i * ReportBlock::LEN..]);
    }
    Ok(len)
}

/// Writes an SDES packet with one chunk holding one CNAME item.
pub fn write_sdes_cname(buf: &mut [u8], ssrc: u32, cname: &[u8]) -> Result<usize, WriteError> {
    if cname.len() > 255 {
        return Err(WriteError::TooLong);
    }
    // header, SSRC, type, length, text, then at least one END octet.
    let len = (4 + 4 + 2 + cname.len() + 1).div_ceil(4) * 4;
    check_space(buf, len)?;
    header(buf, 1, PT_SDES, len);
    buf[4..8].copy_from_slice(&ssrc.to_be_bytes());
    buf[8] = sdes::CNAME;
    buf[9] = cname.len() as u8;
    buf[10..10 + cname.len()].copy_from_slice(cname);
    buf[10 + cname.len()..len].fill(0);
    Ok(len)
}

/// Writes a BYE for `sources` with an optional reason.
pub fn write_bye(
    buf: &mut [u8],
    sources: &[u32],
    reason: Option<&[u8]>,
) -> Result<usize, WriteError> {
    if sources.len() > 31 {
        return Err(WriteError::TooMany);
    }
    let reason_len = match reason {
        Some(r) if r.len() > 255 => return Err(WriteError::TooLong),
        Some(r) => 1 + r.len(),
        None => 0,
    };
    let len = (4 + 4 * sources.len() + reason_len).div_ceil(4) * 4;
    check_space(buf, len)?;
    header(buf, sources.len() as u8, PT_BYE, len);
    let mut off = 4;
    for s in sources {
        buf[off..off + 4].copy_from_slice(&s.to_be_bytes());
        off += 4;
    }
    if let Some(r) = reason {
        buf[off] = r.len() as u8;
        buf[off + 1..off + 1 + r.len()].copy_from_slice(r);
        off += 1 + r.len();
    }
    buf[off..len].fill(0);
    Ok(len)
}

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// A 64-bit NTP timestamp from time since the Unix epoch (the driver reads
/// the wall clock; this stays sans-IO).
pub fn ntp_from_unix(since_epoch: Duration) -> u64 {
    let secs = since_epoch.as_secs().wrapping_add(NTP_UNIX_OFFSET);
    let frac = (u64::from(since_epoch.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// The middle 32 bits of an NTP timestamp: the LSR field's format.
pub fn ntp_middle(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// Round-trip time from a report block (RFC 3550 §6.4.1): arrival time of
/// the RR in compact NTP, minus LSR, minus DLSR. `None` when the block
/// carries no LSR or the result is negative (clock skew).
pub fn round_trip_time(
    arrival_middle: u32,
    last_sr: u32,
    delay_since_last_sr: u32,
) -> Option<Duration> {
    if last_sr == 0 {
        return None;
    }
    let rtt = arrival_middle
        .wrapping_sub(last_sr)
        .wrapping_sub(delay_since_last_sr);
    if rtt > i32::MAX as u32 {
        return None;
    }
    Some(Duration::from_micros(u64::from(rtt) * 1_000_000 / 65_536))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{XorShift, within};

    /// SR (one report block) + SDES (CNAME) + BYE (reason "bye"), built by
    /// hand from the RFC 3550 layouts.
    fn sr_sdes_bye() -> Vec<u8> {
        let mut v = vec![
            // SR: V=2 RC=1 PT=200 length=12 (52 bytes)
            0x81, 200, 0x00, 0x0c, //
            0x01, 0x02, 0x03, 0x04, // SSRC
            0xe8, 0x0a, 0x3b, 0x9c, 0x80, 0x00, 0x00, 0x00, // NTP
            0x00, 0x01, 0xe2, 0x40, // RTP ts 123456
            0x00, 0x00, 0x00, 0x64, // packets 100
            0x00, 0x00, 0x3e, 0x80, // octets 16000
            // report block
            0xaa, 0xbb, 0xcc, 0xdd, // SSRC_1
            0x19, 0xff, 0xff, 0xfe, // fraction 25/256, cumulative -2
            0x00, 0x01, 0x00, 0x10, // ext highest seq: cycle 1, seq 16
            0x00, 0x00, 0x00, 0x2a, // jitter 42
            0x3b, 0x9c, 0x80, 0x00, // LSR
            0x00, 0x02, 0x00, 0x00, // DLSR 2 s
            // SDES: SC=1 length=4 (20 bytes)
            0x81, 202, 0x00, 0x04, //
            0x01, 0x02, 0x03, 0x04, // SSRC
            0x01, 0x09, b'u', b's', b'e', b'r', b'@', b'h', b'o', b's', b't', // CNAME
            0x00, // END, which lands on the 32-bit boundary
            // BYE: SC=1 length=2 (12 bytes)
            0x81, 203, 0x00, 0x02, //
            0x01, 0x02, 0x03, 0x04, //
            0x03, b'b', b'y', b'e',
        ];
        assert_eq!(v.len(), 52 + 20 + 12);
        v.shrink_to_fit();
        v
    }

    #[test]
    fn compound_sr_sdes_bye() {
        let b = sr_sdes_bye();
        let c = RtcpCompound::parse(&b).expect("valid compound");
        let pkts: Vec<_> = c.iter().collect();
        assert_eq!(pkts.len(), 3);
        let RtcpPacket::SenderReport(sr) = &pkts[0] else {
            panic!("first is SR: {:?}", pkts[0]);
        };
        assert_eq!(sr.ssrc, 0x0102_0304);
        assert_eq!(sr.info.ntp_timestamp, 0xe80a_3b9c_8000_0000);
        assert_eq!(sr.info.rtp_timestamp, 123_456);
        assert_eq!(sr.info.packet_count, 100);
        assert_eq!(sr.info.octet_count, 16_000);
        let blocks: Vec<_> = sr.reports.clone().collect();
        assert_eq!(
            blocks,
            [ReportBlock {
                ssrc: 0xaabb_ccdd,
                fraction_lost: 25,
                cumulative_lost: -2,
                extended_highest_seq: 0x1_0010,
                jitter: 42,
                last_sr: 0x3b9c_8000,
                delay_since_last_sr: 0x2_0000,
            }]
        );
        assert!(sr.extension.is_empty());
        let RtcpPacket::Sdes(sdes) = &pkts[1] else {
            panic!("second is SDES");
        };
        let chunks: Vec<_> = sdes.chunks().collect();
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].ssrc, 0x0102_0304);
        let items: Vec<_> = chunks[0].items.clone().collect();
        assert_eq!(
            items,
            [SdesItem {
                kind: sdes::CNAME,
                value: b"user@host"
            }]
        );
        let RtcpPacket::Bye(bye) = &pkts[2] else {
            panic!("third is BYE");
        };
        assert_eq!(bye.sources().collect::<Vec<_>>(), [0x0102_0304]);
        assert_eq!(bye.reason, Some(&b"bye"[..]));
        assert_eq!(
            pkts.iter().map(|p| p.packet_type()).collect::<Vec<_>>(),
            [200, 202, 203]
        );
    }

    #[test]
    fn bad_lengths_rejected() {
        let good = sr_sdes_bye();
        // SDES length past the end of the datagram.
        let mut b = good.clone();
        b[52 + 3] = 8;
        assert_eq!(RtcpCompound::parse(&b).err(), Some(RtcpError::BadLength));
        // SDES one word too long: the next "header" is the BYE's SSRC word,
        // version 0.
        b[52 + 3] = 5;
        assert_eq!(RtcpCompound::parse(&b).err(), Some(RtcpError::BadVersion));
        // SR length one word too short: its report block no longer fits.
        let mut b = good.clone();
        b[3] = 11;
        assert_eq!(RtcpCompound::parse(&b).err(), Some(RtcpError::Truncated));
        // SR with no report block but the old length: the next "header" is
        // then the report block's SSRC word, whose version bits are 2 but
        // whose length runs past the datagram.
        let mut b = good.clone();
        b[0] = 0x80;
        b[3] = 6;
        assert_eq!(RtcpCompound::parse(&b).err(), Some(RtcpError::BadLength));
        // Trailing bytes after the last packet.
        let mut b = good.clone();
        b.extend([0x80, 0xc8]);
        assert_eq!(RtcpCompound::parse(&b).err(), Some(RtcpError::BadLength));
        // Truncated datagram.
        assert_eq!(
            RtcpCompound::parse(&good[..good.len() - 4]).err(),
            Some(RtcpError::BadLength)
        );
        assert_eq!(
            RtcpCompound::parse(&good[..3]).err(),
            Some(RtcpError::TooShort)
        );
        assert_eq!(RtcpCompound::parse(&[]).err(), Some(RtcpError::TooShort));
        // RC claims two report blocks in an SR sized for one.
        let mut b = good.clone();
        b[0] = 0x82;
        assert_eq!(RtcpCompound::parse(&b).err(), Some(RtcpError::Truncated));
        // Version 1.
        let mut b = good;
        b[0] = 0x41;
        assert_eq!(RtcpCompound::parse(&b).err(), Some(RtcpError::BadVersion));
    }

    #[test]
    fn first_must_be_report_and_padding_only_last() {
        let good = sr_sdes_bye();
        assert_eq!(
            RtcpCompound::parse(&good[52..]).err(),
            Some(RtcpError::NotReportFirst)
        );
        // The lenient iterator accepts a reduced-size datagram.
        let lenient: Vec<_> = RtcpPackets::new(&good[52..]).collect();
        assert_eq!(lenient.len(), 2);
        assert!(lenient.iter().all(Result::is_ok));

        // Padding bit on the SR (not last): refused.
        let mut b = good.clone();
        b[0] |= 0x20;
        b[51] = 4; // pad count inside the SR's last word
        assert_eq!(
            RtcpCompound::parse(&b).err(),
            Some(RtcpError::PaddingNotLast)
        );

        // Padding on the last packet: a BYE with 4 bytes of padding.
        let mut b = good[..52 + 20].to_vec();
        b.extend([0xa1, 203, 0x00, 0x02, 0x01, 0x02, 0x03, 0x04, 0, 0, 0, 4]);
        let c = RtcpCompound::parse(&b).expect("padding on last is fine");
        let RtcpPacket::Bye(bye) = c.iter().nth(2).expect("bye") else {
            panic!("BYE expected");
        };
        assert_eq!(bye.reason, None);
        assert_eq!(bye.sources().count(), 1);
        // Padding count larger than the packet.
        let last = b.len() - 1;
        b[last] = 13;
        assert_eq!(RtcpCompound::parse(&b).err(), Some(RtcpError::BadPadding));
        b[last] = 0;
        assert_eq!(RtcpCompound::parse(&b).err(), Some(RtcpError::BadPadding));
    }

    #[test]
    fn sdes_chunk_overrun_rejected() {
        let mut b = sr_sdes_bye();
        // CNAME length 9 -> 13 runs past the packet.
        b[52 + 9] = 13;
        assert_eq!(RtcpCompound::parse(&b).err(), Some(RtcpError::Truncated));
        // CNAME length 10 swallows the END octet: the chunk never ends.
        let mut b = sr_sdes_bye();
        b[52 + 9] = 10;
        assert_eq!(RtcpCompound::parse(&b).err(), Some(RtcpError::Truncated));
        // Two chunks claimed, one present.
        let mut b = sr_sdes_bye();
        b[52] = 0x82;
        assert_eq!(RtcpCompound::parse(&b).err(), Some(RtcpError::Truncated));
        // BYE reason length past the packet.
        let mut b = sr_sdes_bye();
        let at = 52 + 20 + 8;
        b[at] = 4;
        assert_eq!(RtcpCompound::parse(&b).err(), Some(RtcpError::Truncated));
    }

    #[test]
    fn rr_with_feedback_app_and_unknown() {
        let mut b = vec![0u8; 256];
        let mut n = write_receiver_report(&mut b, 7, &[]).expect("rr");
        assert_eq!(n, 8);
        // PSFB PLI (FMT 1), no FCI.
        b[n..n + 12].copy_from_slice(&[0x81, 206, 0, 2, 0, 0, 0, 7, 0, 0, 0, 9]);
        n += 12;
        // RTPFB generic NACK (FMT 1): PID 100, BLP 0x0003.
        b[n..n + 16].copy_from_slice(&[0x81, 205, 0, 3, 0, 0, 0, 7, 0, 0, 0, 9, 0, 100, 0, 3]);
        n += 16;
        // APP subtype 3, name "TNDM", 4 data bytes.
        b[n..n + 16].copy_from_slice(&[
            0x83, 204, 0, 3, 0, 0, 0, 7, b'T', b'N', b'D', b'M', 1, 2, 3, 4,
        ]);
        n += 16;
        // XR (207), opaque.
        b[n..n + 8].copy_from_slice(&[0x80, 207, 0, 1, 0, 0, 0, 7]);
        n += 8;
        let c = RtcpCompound::parse(&b[..n]).expect("valid");
        let p: Vec<_> = c.iter().collect();
        assert_eq!(p.len(), 5);
        let RtcpPacket::ReceiverReport(rr) = &p[0] else {
            panic!("RR")
        };
        assert_eq!((rr.ssrc, rr.reports.len()), (7, 0));
        assert_eq!(
            p[1],
            RtcpPacket::PayloadFeedback(Feedback {
                fmt: 1,
                sender_ssrc: 7,
                media_ssrc: 9,
                fci: &[]
            })
        );
        let RtcpPacket::TransportFeedback(nack) = &p[2] else {
            panic!("RTPFB")
        };
        assert_eq!((nack.fmt, nack.fci), (1, &[0, 100, 0, 3][..]));
        let RtcpPacket::App(app) = &p[3] else {
            panic!("APP")
        };
        assert_eq!(
            (app.subtype, app.ssrc, &app.name, app.data),
            (3, 7, b"TNDM", &[1, 2, 3, 4][..])
        );
        assert!(matches!(
            p[4],
            RtcpPacket::Other {
                packet_type: 207,
                count: 0,
                body: [0, 0, 0, 7]
            }
        ));
    }

    #[test]
    fn sr_and_rr_writers_round_trip() {
        let blocks = [
            ReportBlock {
                ssrc: 1,
                fraction_lost: 255,
                cumulative_lost: 0x7f_ffff,
                extended_highest_seq: 0x2_ffff,
                jitter: 80,
                last_sr: 0x1234_5678,
                delay_since_last_sr: 65_536,
            },
            ReportBlock {
                ssrc: 2,
                fraction_lost: 0,
                cumulative_lost: -5,
                ..ReportBlock::default()
            },
        ];
        let info = SenderInfo {
            ntp_timestamp: ntp_from_unix(Duration::from_millis(1_700_000_000_500)),
            rtp_timestamp: 99,
            packet_count: 3,
            octet_count: 480,
        };
        let mut buf = [0u8; 512];
        let mut n = write_sender_report(&mut buf, 0xfeed, &info, &blocks).expect("sr");
        assert_eq!(n, 28 + 48);
        n += write_sdes_cname(&mut buf[n..], 0xfeed, b"sbc-1").expect("sdes");
        n += write_bye(&mut buf[n..], &[0xfeed], Some(b"done")).expect("bye");
        let c = RtcpCompound::parse(&buf[..n]).expect("valid");
        let p: Vec<_> = c.iter().collect();
        let RtcpPacket::SenderReport(sr) = &p[0] else {
            panic!("SR")
        };
        assert_eq!(sr.ssrc, 0xfeed);
        assert_eq!(sr.info, info);
        assert_eq!(sr.reports.clone().collect::<Vec<_>>(), blocks);
        let RtcpPacket::Sdes(s) = &p[1] else {
            panic!("SDES")
        };
        let ch: Vec<_> = s.chunks().collect();
        assert_eq!(ch[0].ssrc, 0xfeed);
        assert_eq!(
            ch[0].items.clone().next().map(|i| i.value),
            Some(&b"sbc-1"[..])
        );
        let RtcpPacket::Bye(bye) = &p[2] else {
            panic!("BYE")
        };
        assert_eq!(bye.reason, Some(&b"done"[..]));

        let m = write_receiver_report(&mut buf, 0xbeef, &blocks[1..]).expect("rr");
        let c = RtcpCompound::parse(&buf[..m]).expect("valid");
        let Some(RtcpPacket::ReceiverReport(rr)) = c.iter().next() else {
            panic!("RR")
        };
        assert_eq!(rr.ssrc, 0xbeef);
        assert_eq!(rr.reports.collect::<Vec<_>>(), &blocks[1..]);

        // Clamping of out-of-range cumulative loss.
        let wide = [
            ReportBlock {
                cumulative_lost: 10_000_000,
                ..ReportBlock::default()
            },
            ReportBlock {
                cumulative_lost: -10_000_000,
                ..ReportBlock::default()
            },
        ];
        let m = write_receiver_report(&mut buf, 1, &wide).expect("rr");
        let Some(RtcpPacket::ReceiverReport(rr)) =
            RtcpCompound::parse(&buf[..m]).expect("ok").iter().next()
        else {
            panic!("RR")
        };
        let lost: Vec<_> = rr.reports.map(|b| b.cumulative_lost).collect();
        assert_eq!(lost, [0x7f_ffff, -0x80_0000]);

        assert_eq!(
            write_receiver_report(&mut buf[..20], 1, &blocks),
            Err(WriteError::BufferTooSmall { needed: 56 })
        );
        assert_eq!(
            write_receiver_report(&mut buf, 1, &[ReportBlock::default(); 32]),
            Err(WriteError::TooMany)
        );
    }

    #[test]
    fn mux_demux() {
        assert!(is_rtcp(&[0x80, 200]));
        assert!(is_rtcp(&[0x81, 223]));
        assert!(is_rtcp(&[0x80, 192]));
        assert!(!is_rtcp(&[0x80, 191]));
        assert!(!is_rtcp(&[0x80, 224]));
        assert!(!is_rtcp(&[0x80, 0])); // PCMU
        assert!(!is_rtcp(&[0x80, 0x80 | 8])); // PCMA with marker
        assert!(!is_rtcp(&[0x80, 0x80 | 111])); // Opus with marker: 239
        assert!(!is_rtcp(&[0x80]));
    }

    #[test]
    fn rtt_rfc_example() {
        // RFC 3550 §6.4.1 figure: A = 0xb710:8000, LSR = 0xb705:2000,
        // DLSR = 0x0005:4000 → delay 0x0006:2000 = 6.125 s.
        let rtt = round_trip_time(0xb710_8000, 0xb705_2000, 0x0005_4000).expect("rtt");
        assert_eq!(rtt, Duration::from_millis(6125));
        assert_eq!(round_trip_time(0xb710_8000, 0, 0), None);
        assert_eq!(round_trip_time(0x0000_0001, 0x0000_0002, 0), None);
        assert_eq!(ntp_middle(0x1122_3344_5566_7788), 0x3344_5566);
        // 1970-01-01T00:00:00.5 in NTP.
        assert_eq!(
            ntp_from_unix(Duration::from_millis(500)),
            (2_208_988_800 << 32) | 0x8000_0000
        );
    }

    #[test]
    fn error_indices_are_dense() {
        for (i, e) in RtcpError::ALL.iter().enumerate() {
            assert_eq!(e.index(), i);
            assert!(!e.as_str().is_empty());
        }
    }

    #[test]
    fn fuzz_rtcp_never_panics() {
        let mut rng = XorShift(0x5151_aaaa_0f0f_1234);
        let seed = sr_sdes_bye();
        let mut ok = 0;
        for i in 0..200_000 {
            let b = if i % 2 == 0 {
                let mut v = vec![0u8; rng.below(64) as usize];
                rng.fill(&mut v);
                if v.len() >= 4 {
                    v[0] = (v[0] & 0x3f) | 0x80;
                    v[1] = 200 + (v[1] % 8);
                    let words = (v.len() / 4 - 1) as u16;
                    v[2..4].copy_from_slice(&words.to_be_bytes());
                }
                v
            } else {
                let mut v = seed.clone();
                for _ in 0..1 + rng.below(3) {
                    let at = rng.below(v.len() as u64) as usize;
                    v[at] = rng.next() as u8;
                }
                v.truncate(rng.below(v.len() as u64 + 1) as usize);
                v
            };
            if let Ok(c) = RtcpCompound::parse(&b) {
                ok += 1;
                assert!(c.iter().count() >= 1);
            }
            for p in RtcpPackets::new(&b).flatten() {
                match p {
                    RtcpPacket::SenderReport(sr) => {
                        assert!(within(&b, sr.extension));
                        let _ = sr.reports.count();
                    }
                    RtcpPacket::ReceiverReport(rr) => {
                        assert!(within(&b, rr.extension));
                        let _ = rr.reports.count();
                    }
                    RtcpPacket::Sdes(s) => {
                        for ch in s.chunks() {
                            for it in ch.items {
                                assert!(within(&b, it.value));
                            }
                        }
                    }
                    RtcpPacket::Bye(bye) => {
                        let _ = bye.sources().count();
                        if let Some(r) = bye.reason {
                            assert!(within(&b, r));
                        }
                    }
                    RtcpPacket::App(a) => assert!(within(&b, a.data)),
                    RtcpPacket::TransportFeedback(f) | RtcpPacket::PayloadFeedback(f) => {
                        assert!(within(&b, f.fci))
                    }
                    RtcpPacket::Other { body, .. } => assert!(within(&b, body)),
                }
            }
        }
        assert!(ok > 1000, "the fuzz should reach valid compounds: {ok}");
    }
}
