//! Typed views of the attributes that matter for media: rtpmap and the RFC
//! 3551 static payload types, fmtp, ptime, direction, rtcp, rtcp-mux,
//! telephone-event. Attributes stay stored verbatim; these helpers read them
//! and skip malformed ones rather than failing the whole description.

use std::fmt;
use std::net::IpAddr;

use super::session::{
    AddrType, Attribute, MediaDescription, SessionDescription, parse_decimal, valid_host,
};

/// a=sendrecv / sendonly / recvonly / inactive (RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction named by an attribute name, if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::Inactive,
        ]
        .into_iter()
        .find(|d| name.eq_ignore_ascii_case(d.as_str()))
    }

    pub(crate) fn from_parts(send: bool, recv: bool) -> Self {
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The same stream seen from the other end: sendonly ↔ recvonly.
    pub fn reversed(self) -> Self {
        Direction::from_parts(self.receives(), self.sends())
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// a=rtpmap:<pt> <encoding>/<clock>[/<channels>]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    pub payload_type: u8,
    pub encoding: String,
    pub clock_rate: u32,
    /// As written; audio defaults to 1 when absent.
    pub channels: Option<u16>,
}

impl RtpMap {
    /// Parse the value of an `a=rtpmap:` attribute.
    pub fn parse(value: &str) -> Option<Self> {
        let (pt, rest) = value.trim().split_once(' ')?;
        let payload_type = parse_payload_type(pt)?;
        let mut parts = rest.trim().split('/');
        let encoding = parts.next().filter(|e| !e.is_empty())?;
        let clock_rate = parse_decimal(parts.next()?)?;
        let channels = match parts.next() {
            Some(c) => Some(parse_decimal(c)?),
            None => None,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(RtpMap {
            payload_type,
            encoding: encoding.to_owned(),
            clock_rate,
            channels,
        })
    }
}

impl fmt::Display for RtpMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}/{}",
            self.payload_type, self.encoding, self.clock_rate
        )?;
        if let Some(channels) = self.channels {
            write!(f, "/{channels}")?;
        }
        Ok(())
    }
}

fn parse_payload_type(token: &str) -> Option<u8> {
    parse_decimal::<u8>(token).filter(|pt| *pt <= 127)
}

/// A payload format of an m= line with everything needed to match or use
/// it: from its rtpmap, or from RFC 3551 when a static type has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    pub payload_type: u8,
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: u16,
    /// The a=fmtp parameters for this payload type, verbatim.
    pub fmtp: Option<String>,
}

impl Codec {
    /// Same encoding (case-insensitive), clock rate and channel count.
    pub fn matches(&self, encoding: &str, clock_rate: u32, channels: u16) -> bool {
        self.encoding.eq_ignore_ascii_case(encoding)
            && self.clock_rate == clock_rate
            && self.channels == channels
    }

    /// RFC 4733 events rather than a voice codec.
    pub fn is_telephone_event(&self) -> bool {
        self.encoding.eq_ignore_ascii_case("telephone-event")
    }

    /// Formats that ride along with a codec rather than being one: events,
    /// comfort noise, redundancy, FEC and retransmission.
    pub fn is_auxiliary(&self) -> bool {
        [
            "telephone-event",
            "CN",
            "red",
            "ulpfec",
            "flexfec-03",
            "rtx",
        ]
        .iter()
        .any(|name| self.encoding.eq_ignore_ascii_case(name))
    }
}

/// RFC 3551 static payload types: (encoding, clock rate, channels). G722
/// says 8000 although it samples at 16 kHz — an RFC 1890 mistake kept for
/// compatibility (RFC 3551 §4.5.2).
pub fn static_payload_type(pt: u8) -> Option<(&'static str, u32, u16)> {
    Some(match pt {
        0 => ("PCMU", 8000, 1),
        3 => ("GSM", 8000, 1),
        4 => ("G723", 8000, 1),
        5 => ("DVI4", 8000, 1),
        6 => ("DVI4", 16000, 1),
        7 => ("LPC", 8000, 1),
        8 => ("PCMA", 8000, 1),
        9 => ("G722", 8000, 1),
        10 => ("L16", 44100, 2),
        11 => ("L16", 44100, 1),
        12 => ("QCELP", 8000, 1),
        13 => ("CN", 8000, 1),
        14 => ("MPA", 90000, 1),
        15 => ("G728", 8000, 1),
        16 => ("DVI4", 11025, 1),
        17 => ("DVI4", 22050, 1),
        18 => ("G729", 8000, 1),
        25 => ("CelB", 90000, 1),
        26 => ("JPEG", 90000, 1),
        28 => ("nv", 90000, 1),
        31 => ("H261", 90000, 1),
        32 => ("MPV", 90000, 1),
        33 => ("MP2T", 90000, 1),
        34 => ("H263", 90000, 1),
        _ => return None,
    })
}

/// A set of RFC 4733 event codes, as in `a=fmtp:101 0-15,66,70`. Kept
/// sorted and merged so sets compare and print canonically.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventRanges {
    ranges: Vec<(u8, u8)>,
}

impl EventRanges {
    /// Events 0-15: the DTMF digits, *, # and A-D. RFC 4733 §2.4.1 says a
    /// telephone-event stream without fmtp carries exactly these.
    pub fn dtmf() -> Self {
        EventRanges::from_ranges(&[(0, 15)])
    }

    pub fn from_ranges(ranges: &[(u8, u8)]) -> Self {
        let mut sorted: Vec<(u8, u8)> = ranges.iter().map(|&(a, b)| (a.min(b), a.max(b))).collect();
        sorted.sort_unstable();
        let mut merged: Vec<(u8, u8)> = Vec::with_capacity(sorted.len());
        for (start, end) in sorted {
            match merged.last_mut() {
                Some(last) if u16::from(start) <= u16::from(last.1) + 1 => {
                    last.1 = last.1.max(end);
                }
                _ => merged.push((start, end)),
            }
        }
        EventRanges { ranges: merged }
    }

    /// Parse `0-15,66,70-71`; `None` if any piece is malformed.
    pub fn parse(text: &str) -> Option<Self> {
        let mut ranges = Vec::new();
        for piece in text.split(',') {
            let piece = piece.trim();
            let range = match piece.split_once('-') {
                Some((a, b)) => (parse_decimal(a.trim())?, parse_decimal(b.trim())?),
                None => {
                    let event = parse_decimal(piece)?;
                    (event, event)
                }
            };
            ranges.push(range);
        }
        Some(EventRanges::from_ranges(&ranges))
    }

    pub fn ranges(&self) -> &[(u8, u8)] {
        &self.ranges
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn contains(&self, event: u8) -> bool {
        self.ranges.iter().any(|&(a, b)| a <= event && event <= b)
    }

    /// The events in both sets.
    pub fn intersection(&self, other: &EventRanges) -> EventRanges {
        let mut out = Vec::new();
        for &(a1, b1) in &self.ranges {
            for &(a2, b2) in &other.ranges {
                let (start, end) = (a1.max(a2), b1.min(b2));
                if start <= end {
                    out.push((start, end));
                }
            }
        }
        EventRanges::from_ranges(&out)
    }
}

impl fmt::Display for EventRanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(start, end)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
        }
        Ok(())
    }
}

/// An offered or answered telephone-event (RFC 4733) format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelephoneEvent {
    pub payload_type: u8,
    pub clock_rate: u32,
    pub events: EventRanges,
}

/// a=rtcp:<port> [IN <addrtype> <address>] (RFC 3605).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpAttribute {
    pub port: u16,
    pub address: Option<(AddrType, String)>,
}

impl RtcpAttribute {
    pub fn parse(value: &str) -> Option<Self> {
        let mut tokens = value.split_ascii_whitespace();
        let port = parse_decimal(tokens.next()?)?;
        let address = match (tokens.next(), tokens.next(), tokens.next(), tokens.next()) {
            (None, ..) => None,
            (Some("IN"), Some(addr_type), Some(address), None) => {
                let addr_type = AddrType::parse(addr_type)?;
                if !valid_host(addr_type, address) {
                    return None;
                }
                Some((addr_type, address.to_owned()))
            }
            _ => return None,
        };
        Some(RtcpAttribute { port, address })
    }

    /// The explicit address as an IP, if there is one and it is not a name.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.as_ref().and_then(|(_, a)| a.parse().ok())
    }
}

impl fmt::Display for RtcpAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.port)?;
        if let Some((addr_type, address)) = &self.address {
            write!(f, " IN {addr_type} {address}")?;
        }
        Ok(())
    }
}

// ----------------------------------------------- attribute list plumbing

pub(crate) fn attribute_value<'a>(attributes: &'a [Attribute], name: &str) -> Option<&'a str> {
    attributes
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(name))
        .map(|a| a.value.as_deref().unwrap_or(""))
}

pub(crate) fn direction_of(attributes: &[Attribute]) -> Option<Direction> {
    attributes.iter().find_map(|a| {
        if a.value.is_none() {
            Direction::from_name(&a.name)
        } else {
            None
        }
    })
}

/// Replace every attribute `matches` selects with `new`, at the position of
/// the first one (so the order others see stays stable), or append it.
pub(crate) fn replace_attributes(
    attributes: &mut Vec<Attribute>,
    matches: impl Fn(&Attribute) -> bool,
    new: Option<Attribute>,
) {
    let position = attributes.iter().position(&matches);
    attributes.retain(|a| !matches(a));
    if let Some(new) = new {
        let at = position.unwrap_or(attributes.len()).min(attributes.len());
        attributes.insert(at, new);
    }
}

macro_rules! attribute_accessors {
    ($ty:ty) => {
        impl $ty {
            /// Value of the first attribute called `name` (case-insensitive);
            /// `Some("")` for a property attribute.
            pub fn attribute(&self, name: &str) -> Option<&str> {
                attribute_value(&self.attributes, name)
            }

            /// Values of every attribute called `name`, in order.
            pub fn attributes_named<'a>(
                &'a self,
                name: &'a str,
            ) -> impl Iterator<Item = &'a str> + 'a {
                self.attributes
                    .iter()
                    .filter(move |a| a.name.eq_ignore_ascii_case(name))
                    .map(|a| a.value.as_deref().unwrap_or(""))
            }

            pub fn has_attribute(&self, name: &str) -> bool {
                self.attribute(name).is_some()
            }

            /// Set `name` to `value` (`None` for a property attribute),
            /// replacing every existing one in place of the first.
            pub fn set_attribute(&mut self, name: &str, value: Option<String>) {
                replace_attributes(
                    &mut self.attributes,
                    |a| a.name.eq_ignore_ascii_case(name),
                    Some(Attribute::new(name, value)),
                );
            }

            /// Remove every attribute called `name`.
            pub fn remove_attribute(&mut self, name: &str) {
                self.attributes
                    .retain(|a| !a.name.eq_ignore_ascii_case(name));
            }

            /// Set the direction attribute, replacing any there was.
            pub fn set_direction(&mut self, direction: Direction) {
                replace_attributes(
                    &mut self.attributes,
                    |a| a.value.is_none() && Direction::from_name(&a.name).is_some(),
                    Some(Attribute::flag(direction.as_str())),
                );
            }
        }
    };
}

attribute_accessors!(SessionDescription);
attribute_accessors!(MediaDescription);

impl SessionDescription {
    /// The session-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        direction_of(&self.attributes)
    }

    /// The direction of media `index`: its own attribute, else the
    /// session's, else sendrecv (RFC 3264 §5.1).
    pub fn media_direction(&self, index: usize) -> Direction {
        self.media
            .get(index)
            .and_then(MediaDescription::direction)
            .or_else(|| self.direction())
            .unwrap_or_default()
    }

    /// Whether the sender of this description holds media `index`: it will
    /// not receive (sendonly or inactive), or its address is 0.0.0.0 — the
    /// RFC 2543 way, still sent by old phones.
    pub fn is_on_hold(&self, index: usize) -> bool {
        !self.media_direction(index).receives()
            || self
                .media_connection(index)
                .is_some_and(|c| c.is_unspecified())
    }

    /// Session-level b= of `bwtype` (AS, CT, TIAS, ...).
    pub fn bandwidth(&self, bwtype: &str) -> Option<u64> {
        self.bandwidths
            .iter()
            .find(|b| b.bwtype.eq_ignore_ascii_case(bwtype))
            .map(|b| b.bandwidth)
    }
}

impl MediaDescription {
    /// The media-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        direction_of(&self.attributes)
    }

    /// Every well-formed a=rtpmap, in attribute order.
    pub fn rtpmaps(&self) -> impl Iterator<Item = RtpMap> + '_ {
        self.attributes_named("rtpmap").filter_map(RtpMap::parse)
    }

    /// The a=fmtp parameters for `pt`, verbatim.
    pub fn fmtp(&self, pt: u8) -> Option<&str> {
        self.attributes_named("fmtp").find_map(|value| {
            let (format, params) = value.split_once(' ').unwrap_or((value, ""));
            (parse_payload_type(format) == Some(pt)).then(|| params.trim_start())
        })
    }

    /// The codec behind payload type `pt` if it is on the m= line: its
    /// rtpmap, else its RFC 3551 static assignment.
    pub fn codec(&self, pt: u8) -> Option<Codec> {
        self.codecs().into_iter().find(|c| c.payload_type == pt)
    }

    /// The known codecs of the m= line, in its order (the sender's
    /// preference). Dynamic payload types without an rtpmap are skipped.
    pub fn codecs(&self) -> Vec<Codec> {
        // Tables indexed by payload type keep this linear however many
        // formats and attributes a hostile description carries.
        let mut maps: Vec<Option<RtpMap>> = vec![None; 128];
        let mut fmtps: Vec<Option<&str>> = vec![None; 128];
        for attribute in &self.attributes {
            let Some(value) = attribute.value.as_deref() else {
                continue;
            };
            if attribute.name.eq_ignore_ascii_case("rtpmap") {
                if let Some(map) = RtpMap::parse(value)
                    && let Some(slot @ None) = maps.get_mut(usize::from(map.payload_type))
                {
                    *slot = Some(map);
                }
            } else if attribute.name.eq_ignore_ascii_case("fmtp") {
                let (format, params) = value.split_once(' ').unwrap_or((value, ""));
                if let Some(pt) = parse_payload_type(format)
                    && let Some(slot @ None) = fmtps.get_mut(usize::from(pt))
                {
                    *slot = Some(params.trim_start());
                }
            }
        }
        let mut seen = [false; 128];
        let mut codecs = Vec::new();
        for pt in self.payload_types() {
            let index = usize::from(pt);
            match seen.get_mut(index) {
                Some(seen @ false) => *seen = true,
                _ => continue,
            }
            let (encoding, clock_rate, channels) = match maps.get_mut(index).and_then(Option::take)
            {
                Some(map) => (map.encoding, map.clock_rate, map.channels.unwrap_or(1)),
                None => match static_payload_type(pt) {
                    Some((encoding, clock_rate, channels)) => {
                        (encoding.to_owned(), clock_rate, channels)
                    }
                    None => continue,
                },
            };
            codecs.push(Codec {
                payload_type: pt,
                encoding,
                clock_rate,
                channels,
                fmtp: fmtps.get(index).copied().flatten().map(str::to_owned),
            });
        }
        codecs
    }

    /// Every telephone-event format offered, in m= order. Without fmtp the
    /// events are 0-15 (RFC 4733 §2.4.1); an unreadable fmtp counts as none.
    pub fn telephone_events(&self) -> Vec<TelephoneEvent> {
        self.codecs()
            .into_iter()
            .filter(Codec::is_telephone_event)
            .filter_map(|codec| {
                let events = match &codec.fmtp {
                    Some(fmtp) => EventRanges::parse(fmtp)?,
                    None => EventRanges::dtmf(),
                };
                Some(TelephoneEvent {
                    payload_type: codec.payload_type,
                    clock_rate: codec.clock_rate,
                    events,
                })
            })
            .collect()
    }

    /// The first telephone-event format.
    pub fn telephone_event(&self) -> Option<TelephoneEvent> {
        self.telephone_events().into_iter().next()
    }

    /// a=ptime in milliseconds (a fractional part, seen in the wild, is
    /// dropped).
    pub fn ptime(&self) -> Option<u32> {
        self.attribute("ptime").and_then(parse_millis)
    }

    /// a=maxptime in milliseconds.
    pub fn maxptime(&self) -> Option<u32> {
        self.attribute("maxptime").and_then(parse_millis)
    }

    /// a=rtcp (RFC 3605), if present and well-formed.
    pub fn rtcp(&self) -> Option<RtcpAttribute> {
        self.attribute("rtcp").and_then(RtcpAttribute::parse)
    }

    /// a=rtcp-mux (RFC 5761).
    pub fn rtcp_mux(&self) -> bool {
        self.has_attribute("rtcp-mux")
    }

    /// Media-level b= of `bwtype`.
    pub fn bandwidth(&self, bwtype: &str) -> Option<u64> {
        self.bandwidths
            .iter()
            .find(|b| b.bwtype.eq_ignore_ascii_case(bwtype))
            .map(|b| b.bandwidth)
    }
}

fn parse_millis(value: &str) -> Option<u32> {
    let value = value.trim();
    let whole = value.split_once('.').map_or(value, |(whole, _)| whole);
    parse_decimal(whole)
}
