//! The description model, its parser and its serializer.
//!
//! Values that are free text (s=, i=, u=, e=, p=, r=, z=, k=, a= values) are
//! kept verbatim; structured lines (o=, c=, b=, t=, m=) are parsed into fields
//! and written back in the grammar's canonical form (single spaces). So an
//! unmodified description serializes byte-exact as long as it followed the
//! grammar; extra spaces or out-of-order optional lines are accepted but come
//! out normalized.

use std::fmt;
use std::net::IpAddr;

use super::SdpError;

/// A whole session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// o= (v= is always 0 and not stored).
    pub origin: Origin,
    /// s= (RFC 4566 wants it non-empty; RFC 4317's examples leave it empty).
    pub session_name: String,
    /// i=
    pub information: Option<String>,
    /// u=
    pub uri: Option<String>,
    /// e=, in order.
    pub emails: Vec<String>,
    /// p=, in order.
    pub phones: Vec<String>,
    /// Session-level c=, the default for media without their own.
    pub connection: Option<Connection>,
    /// Session-level b=.
    pub bandwidths: Vec<Bandwidth>,
    /// t= lines with their r= lines; at least one.
    pub timings: Vec<Timing>,
    /// z=, verbatim.
    pub time_zones: Option<String>,
    /// k=, verbatim.
    pub key: Option<String>,
    /// Session-level a=, in order.
    pub attributes: Vec<Attribute>,
    /// m= sections, in order.
    pub media: Vec<MediaDescription>,
}

/// o=<username> <sess-id> <sess-version> IN <addrtype> <address>
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub username: String,
    /// Kept as text: it is only ever compared, and some agents use ids
    /// longer than 64 bits.
    pub session_id: String,
    pub session_version: u64,
    pub addr_type: AddrType,
    /// An IP address or a domain name, as written.
    pub address: String,
}

/// The address types of the IN network type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrType {
    Ip4,
    Ip6,
}

impl AddrType {
    pub fn as_str(self) -> &'static str {
        match self {
            AddrType::Ip4 => "IP4",
            AddrType::Ip6 => "IP6",
        }
    }

    /// The type that fits `ip`.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => AddrType::Ip4,
            IpAddr::V6(_) => AddrType::Ip6,
        }
    }

    pub(crate) fn parse(token: &str) -> Option<Self> {
        match token {
            "IP4" => Some(AddrType::Ip4),
            "IP6" => Some(AddrType::Ip6),
            _ => None,
        }
    }
}

impl fmt::Display for AddrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// c=IN <addrtype> <address>[/<ttl>][/<count>]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub addr_type: AddrType,
    /// An IP address or a domain name, as written (without /ttl or /count).
    pub address: String,
    /// IP4 multicast TTL.
    pub ttl: Option<u8>,
    /// Number of consecutive multicast addresses.
    pub count: Option<u32>,
}

impl Connection {
    /// A unicast connection to `ip`.
    pub fn new(ip: IpAddr) -> Self {
        Connection {
            addr_type: AddrType::of(ip),
            address: ip.to_string(),
            ttl: None,
            count: None,
        }
    }

    /// The address as an IP, or `None` for a domain name.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.parse().ok()
    }

    /// RFC 2543 hold: the connection address is 0.0.0.0 (or ::).
    pub fn is_unspecified(&self) -> bool {
        self.ip().is_some_and(|ip| ip.is_unspecified())
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IN {} {}", self.addr_type, self.address)?;
        if let Some(ttl) = self.ttl {
            write!(f, "/{ttl}")?;
        }
        if let Some(count) = self.count {
            write!(f, "/{count}")?;
        }
        Ok(())
    }
}

/// b=<bwtype>:<bandwidth>
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bandwidth {
    /// CT, AS, TIAS, RS, RR or an extension.
    pub bwtype: String,
    pub bandwidth: u64,
}

/// t=<start> <stop> and the r= lines that follow it (verbatim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    pub start: u64,
    pub stop: u64,
    pub repeats: Vec<String>,
}

/// a=<name>[:<value>]. `value` is `None` for a property attribute
/// (`a=rtcp-mux`) and `Some("")` for `a=name:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub name: String,
    pub value: Option<String>,
}

impl Attribute {
    pub fn new(name: impl Into<String>, value: Option<String>) -> Self {
        Attribute {
            name: name.into(),
            value,
        }
    }

    /// A property attribute such as `a=rtcp-mux`.
    pub fn flag(name: impl Into<String>) -> Self {
        Attribute::new(name, None)
    }

    /// A value attribute such as `a=ptime:20`.
    pub fn value(name: impl Into<String>, value: impl Into<String>) -> Self {
        Attribute::new(name, Some(value.into()))
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(value) = &self.value {
            write!(f, ":{value}")?;
        }
        Ok(())
    }
}

/// One m= section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// audio, video, application, text, message, image, ...
    pub media: String,
    /// 0 rejects (answer) or disables (offer) the stream.
    pub port: u16,
    /// m=<media> <port>/<count> ...
    pub port_count: Option<u16>,
    /// RTP/AVP, RTP/SAVP, RTP/SAVPF, UDP/TLS/RTP/SAVPF, udptl, ...
    pub proto: String,
    /// Payload type numbers for RTP protocols, opaque tokens otherwise.
    pub formats: Vec<String>,
    /// i=
    pub information: Option<String>,
    /// Media-level c= lines (several only for multicast layering).
    pub connections: Vec<Connection>,
    pub bandwidths: Vec<Bandwidth>,
    pub key: Option<String>,
    pub attributes: Vec<Attribute>,
}

impl MediaDescription {
    /// An m= section with no lines below it.
    pub fn new(media: impl Into<String>, port: u16, proto: impl Into<String>) -> Self {
        MediaDescription {
            media: media.into(),
            port,
            port_count: None,
            proto: proto.into(),
            formats: Vec::new(),
            information: None,
            connections: Vec::new(),
            bandwidths: Vec::new(),
            key: None,
            attributes: Vec::new(),
        }
    }

    /// Whether the transport is RTP-based, so formats are payload types.
    pub fn is_rtp(&self) -> bool {
        is_rtp_proto(&self.proto)
    }

    /// Port 0: the stream is rejected or disabled.
    pub fn is_rejected(&self) -> bool {
        self.port == 0
    }

    /// The payload type numbers of the m= line, in order (RTP only).
    pub fn payload_types(&self) -> Vec<u8> {
        if !self.is_rtp() {
            return Vec::new();
        }
        self.formats.iter().filter_map(|f| f.parse().ok()).collect()
    }
}

pub(crate) fn is_rtp_proto(proto: &str) -> bool {
    proto.split('/').any(|part| part == "RTP")
}

impl SessionDescription {
    /// Parse a description. Lines may end in CRLF or LF; empty lines are
    /// skipped. v=, o=, s= must come first, in that order; at least one t=
    /// must precede the media; the other session lines may come in any order.
    pub fn parse(text: &str) -> Result<SessionDescription, SdpError> {
        Parser::new(text).parse()
    }

    /// Effective connection for media `index`: its own first c=, else the
    /// session's.
    pub fn media_connection(&self, index: usize) -> Option<&Connection> {
        self.media
            .get(index)
            .and_then(|m| m.connections.first())
            .or(self.connection.as_ref())
    }
}

// ---------------------------------------------------------------- parsing

struct Parser<'a> {
    lines: std::iter::Peekable<Lines<'a>>,
    /// Number of the last line read, for errors about what is missing.
    last: usize,
}

/// Numbered non-empty lines, CR stripped.
struct Lines<'a> {
    rest: std::iter::Enumerate<std::str::Split<'a, char>>,
}

impl<'a> Iterator for Lines<'a> {
    type Item = (usize, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        for (index, raw) in self.rest.by_ref() {
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if !line.is_empty() {
                return Some((index + 1, line));
            }
        }
        None
    }
}

/// One `<type>=<value>` line.
#[derive(Clone, Copy)]
struct Line<'a> {
    number: usize,
    kind: u8,
    value: &'a str,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser {
            lines: Lines {
                rest: text.split('\n').enumerate(),
            }
            .peekable(),
            last: 0,
        }
    }

    fn peek_kind(&mut self) -> Result<Option<u8>, SdpError> {
        match self.lines.peek() {
            None => Ok(None),
            Some(&(number, text)) => Ok(Some(split_line(number, text)?.kind)),
        }
    }

    fn next_line(&mut self) -> Result<Option<Line<'a>>, SdpError> {
        match self.lines.next() {
            None => Ok(None),
            Some((number, text)) => {
                self.last = number;
                split_line(number, text).map(Some)
            }
        }
    }

    /// The next line, which must be of `kind`.
    fn expect(&mut self, kind: u8, missing: &'static str) -> Result<Line<'a>, SdpError> {
        match self.next_line()? {
            Some(line) if line.kind == kind => Ok(line),
            Some(line) => Err(SdpError::syntax(line.number, missing)),
            None => Err(SdpError::syntax(self.last + 1, missing)),
        }
    }

    fn parse(mut self) -> Result<SessionDescription, SdpError> {
        let v = self.expect(b'v', "missing v= line")?;
        if v.value.trim_end() != "0" {
            return Err(SdpError::syntax(v.number, "unsupported SDP version"));
        }
        let o = self.expect(b'o', "missing o= line")?;
        let origin = parse_origin(o)?;
        let s = self.expect(b's', "missing s= line")?;

        let mut sdp = SessionDescription {
            origin,
            session_name: s.value.to_owned(),
            information: None,
            uri: None,
            emails: Vec::new(),
            phones: Vec::new(),
            connection: None,
            bandwidths: Vec::new(),
            timings: Vec::new(),
            time_zones: None,
            key: None,
            attributes: Vec::new(),
            media: Vec::new(),
        };

        while let Some(kind) = self.peek_kind()? {
            if kind == b'm' {
                break;
            }
            let Some(line) = self.next_line()? else {
                break;
            };
            let n = line.number;
            match line.kind {
                b'i' => set_once(&mut sdp.information, line, "duplicate i= line")?,
                b'u' => set_once(&mut sdp.uri, line, "duplicate u= line")?,
                b'e' => sdp.emails.push(line.value.to_owned()),
                b'p' => sdp.phones.push(line.value.to_owned()),
                b'c' => {
                    if sdp.connection.is_some() {
                        return Err(SdpError::syntax(n, "duplicate session c= line"));
                    }
                    sdp.connection = Some(parse_connection(line)?);
                }
                b'b' => sdp.bandwidths.push(parse_bandwidth(line)?),
                b't' => sdp.timings.push(parse_timing(line)?),
                b'r' => match sdp.timings.last_mut() {
                    Some(timing) if !line.value.trim().is_empty() => {
                        timing.repeats.push(line.value.to_owned());
                    }
                    Some(_) => return Err(SdpError::syntax(n, "empty r= line")),
                    None => return Err(SdpError::syntax(n, "r= line before t= line")),
                },
                b'z' => set_once(&mut sdp.time_zones, line, "duplicate z= line")?,
                b'k' => set_once(&mut sdp.key, line, "duplicate k= line")?,
                b'a' => sdp.attributes.push(parse_attribute(line)?),
                b'v' | b'o' | b's' => {
                    return Err(SdpError::syntax(n, "duplicate v=, o= or s= line"));
                }
                _ => return Err(SdpError::syntax(n, "unknown line type")),
            }
        }
        if sdp.timings.is_empty() {
            return Err(SdpError::syntax(self.last + 1, "missing t= line"));
        }

        while let Some(m) = self.next_line()? {
            let mut media = parse_media_line(m)?;
            while let Some(kind) = self.peek_kind()? {
                if kind == b'm' {
                    break;
                }
                let Some(line) = self.next_line()? else {
                    break;
                };
                let n = line.number;
                match line.kind {
                    b'i' => set_once(&mut media.information, line, "duplicate i= line")?,
                    b'c' => media.connections.push(parse_connection(line)?),
                    b'b' => media.bandwidths.push(parse_bandwidth(line)?),
                    b'k' => set_once(&mut media.key, line, "duplicate k= line")?,
                    b'a' => media.attributes.push(parse_attribute(line)?),
                    b'v' | b'o' | b's' | b'u' | b'e' | b'p' | b't' | b'r' | b'z' => {
                        return Err(SdpError::syntax(n, "session-level line inside media"));
                    }
                    _ => return Err(SdpError::syntax(n, "unknown line type")),
                }
            }
            // RFC 4566 §5.7: every stream needs an address from somewhere; a
            // disabled stream (port 0) is excused since nothing is sent.
            if sdp.connection.is_none() && media.connections.is_empty() && media.port != 0 {
                return Err(SdpError::syntax(m.number, "missing c= line for media"));
            }
            sdp.media.push(media);
        }
        Ok(sdp)
    }
}

fn split_line(number: usize, text: &str) -> Result<Line<'_>, SdpError> {
    let Some((kind, value)) = text.split_once('=') else {
        return Err(SdpError::syntax(number, "line is not <type>=<value>"));
    };
    let &[kind] = kind.as_bytes() else {
        return Err(SdpError::syntax(number, "line is not <type>=<value>"));
    };
    if !kind.is_ascii_lowercase() {
        return Err(SdpError::syntax(number, "line is not <type>=<value>"));
    }
    if value.bytes().any(|b| b == b'\r' || b == 0) {
        return Err(SdpError::syntax(number, "CR or NUL inside a line"));
    }
    Ok(Line {
        number,
        kind,
        value,
    })
}

fn set_once(slot: &mut Option<String>, line: Line<'_>, dup: &'static str) -> Result<(), SdpError> {
    if slot.is_some() {
        return Err(SdpError::syntax(line.number, dup));
    }
    *slot = Some(line.value.to_owned());
    Ok(())
}

/// A decimal number made of ASCII digits only (no sign, no spaces).
pub(crate) fn parse_decimal<T: std::str::FromStr>(token: &str) -> Option<T> {
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    token.parse().ok()
}

fn parse_origin(line: Line<'_>) -> Result<Origin, SdpError> {
    let n = line.number;
    let mut tokens = line.value.split_ascii_whitespace();
    let (
        Some(username),
        Some(session_id),
        Some(version),
        Some(net),
        Some(addr_type),
        Some(address),
        None,
    ) = (
        tokens.next(),
        tokens.next(),
        tokens.next(),
        tokens.next(),
        tokens.next(),
        tokens.next(),
        tokens.next(),
    )
    else {
        return Err(SdpError::syntax(n, "o= line needs 6 fields"));
    };
    let session_version =
        parse_decimal(version).ok_or(SdpError::syntax(n, "bad o= session version"))?;
    if net != "IN" {
        return Err(SdpError::syntax(n, "unsupported network type"));
    }
    let addr_type = AddrType::parse(addr_type).ok_or(SdpError::syntax(n, "bad address type"))?;
    // The o= address only identifies the session (nobody sends to it), so
    // any token is accepted: phones put host names with '_' and worse here.
    Ok(Origin {
        username: username.to_owned(),
        session_id: session_id.to_owned(),
        session_version,
        addr_type,
        address: address.to_owned(),
    })
}

/// `host` is an address of `addr_type`, or a plausible domain name.
pub(crate) fn valid_host(addr_type: AddrType, host: &str) -> bool {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => addr_type == AddrType::Ip4,
        Ok(IpAddr::V6(_)) => addr_type == AddrType::Ip6,
        // A name needs a letter, so a mistyped dotted quad is not a name.
        Err(_) => {
            !host.is_empty()
                && host.len() <= 253
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                && host.bytes().any(|b| b.is_ascii_alphabetic())
                && !host.starts_with(['.', '-'])
        }
    }
}

fn parse_connection(line: Line<'_>) -> Result<Connection, SdpError> {
    let n = line.number;
    let mut tokens = line.value.split_ascii_whitespace();
    let (Some(net), Some(addr_type), Some(spec), None) =
        (tokens.next(), tokens.next(), tokens.next(), tokens.next())
    else {
        return Err(SdpError::syntax(n, "c= line needs 3 fields"));
    };
    if net != "IN" {
        return Err(SdpError::syntax(n, "unsupported network type"));
    }
    let addr_type = AddrType::parse(addr_type).ok_or(SdpError::syntax(n, "bad address type"))?;
    let mut parts = spec.split('/');
    let address = parts.next().unwrap_or_default();
    if !valid_host(addr_type, address) {
        return Err(SdpError::syntax(n, "bad c= address"));
    }
    let first = parts.next();
    let second = parts.next();
    if parts.next().is_some() {
        return Err(SdpError::syntax(n, "bad c= address"));
    }
    let bad_suffix = || SdpError::syntax(n, "bad c= multicast suffix");
    // IP4 carries <ttl>[/<count>], IP6 only [/<count>] (RFC 4566 §5.7).
    let (ttl, count) = match (addr_type, first, second) {
        (_, None, _) => (None, None),
        (AddrType::Ip4, Some(ttl), count) => (
            Some(parse_decimal(ttl).ok_or_else(bad_suffix)?),
            count
                .map(|c| parse_decimal(c).ok_or_else(bad_suffix))
                .transpose()?,
        ),
        (AddrType::Ip6, Some(count), None) => {
            (None, Some(parse_decimal(count).ok_or_else(bad_suffix)?))
        }
        (AddrType::Ip6, Some(_), Some(_)) => return Err(bad_suffix()),
    };
    Ok(Connection {
        addr_type,
        address: address.to_owned(),
        ttl,
        count,
    })
}

fn parse_bandwidth(line: Line<'_>) -> Result<Bandwidth, SdpError> {
    let bad = SdpError::syntax(line.number, "bad b= line");
    let (bwtype, value) = line.value.trim_end().split_once(':').ok_or(bad.clone())?;
    if bwtype.is_empty() || bwtype.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(bad);
    }
    Ok(Bandwidth {
        bwtype: bwtype.to_owned(),
        bandwidth: parse_decimal(value).ok_or(bad)?,
    })
}

fn parse_timing(line: Line<'_>) -> Result<Timing, SdpError> {
    let bad = SdpError::syntax(line.number, "bad t= line");
    let mut tokens = line.value.split_ascii_whitespace();
    let (Some(start), Some(stop), None) = (tokens.next(), tokens.next(), tokens.next()) else {
        return Err(bad);
    };
    Ok(Timing {
        start: parse_decimal(start).ok_or(bad.clone())?,
        stop: parse_decimal(stop).ok_or(bad)?,
        repeats: Vec::new(),
    })
}

fn parse_attribute(line: Line<'_>) -> Result<Attribute, SdpError> {
    // Trailing blanks after a property attribute (`a=sendrecv `) are common
    // enough to forgive; they are dropped.
    let (name, value) = match line.value.split_once(':') {
        Some((name, value)) => (name, Some(value.to_owned())),
        None => (line.value.trim_end(), None),
    };
    if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(SdpError::syntax(line.number, "bad a= attribute name"));
    }
    Ok(Attribute {
        name: name.to_owned(),
        value,
    })
}

fn parse_media_line(line: Line<'_>) -> Result<MediaDescription, SdpError> {
    let n = line.number;
    let mut tokens = line.value.split_ascii_whitespace();
    let (Some(media), Some(port_spec), Some(proto)) = (tokens.next(), tokens.next(), tokens.next())
    else {
        return Err(SdpError::syntax(n, "m= line needs media, port, proto"));
    };
    let (port, port_count) = match port_spec.split_once('/') {
        Some((port, count)) => (
            port,
            Some(parse_decimal(count).ok_or(SdpError::syntax(n, "bad m= port count"))?),
        ),
        None => (port_spec, None),
    };
    let port = parse_decimal(port).ok_or(SdpError::syntax(n, "bad m= port"))?;
    let formats: Vec<String> = tokens.map(str::to_owned).collect();
    if formats.is_empty() {
        return Err(SdpError::syntax(n, "m= line has no formats"));
    }
    if is_rtp_proto(proto)
        && formats
            .iter()
            .any(|f| parse_decimal::<u8>(f).is_none_or(|pt| pt > 127))
    {
        return Err(SdpError::syntax(n, "bad m= payload type"));
    }
    Ok(MediaDescription {
        media: media.to_owned(),
        port,
        port_count,
        proto: proto.to_owned(),
        formats,
        information: None,
        connections: Vec::new(),
        bandwidths: Vec::new(),
        key: None,
        attributes: Vec::new(),
    })
}

// ---------------------------------------------------------- serialization

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} IN {} {}",
            self.username, self.session_id, self.session_version, self.addr_type, self.address
        )
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.bwtype, self.bandwidth)
    }
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("v=0\r\n")?;
        write!(f, "o={}\r\n", self.origin)?;
        write!(f, "s={}\r\n", self.session_name)?;
        if let Some(i) = &self.information {
            write!(f, "i={i}\r\n")?;
        }
        if let Some(u) = &self.uri {
            write!(f, "u={u}\r\n")?;
        }
        for e in &self.emails {
            write!(f, "e={e}\r\n")?;
        }
        for p in &self.phones {
            write!(f, "p={p}\r\n")?;
        }
        if let Some(c) = &self.connection {
            write!(f, "c={c}\r\n")?;
        }
        for b in &self.bandwidths {
            write!(f, "b={b}\r\n")?;
        }
        for t in &self.timings {
            write!(f, "t={} {}\r\n", t.start, t.stop)?;
            for r in &t.repeats {
                write!(f, "r={r}\r\n")?;
            }
        }
        if let Some(z) = &self.time_zones {
            write!(f, "z={z}\r\n")?;
        }
        if let Some(k) = &self.key {
            write!(f, "k={k}\r\n")?;
        }
        for a in &self.attributes {
            write!(f, "a={a}\r\n")?;
        }
        for m in &self.media {
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

/// The whole m= section, each line ending in CRLF.
impl fmt::Display for MediaDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={} {}", self.media, self.port)?;
        if let Some(count) = self.port_count {
            write!(f, "/{count}")?;
        }
        write!(f, " {}", self.proto)?;
        for format in &self.formats {
            write!(f, " {format}")?;
        }
        f.write_str("\r\n")?;
        if let Some(i) = &self.information {
            write!(f, "i={i}\r\n")?;
        }
        for c in &self.connections {
            write!(f, "c={c}\r\n")?;
        }
        for b in &self.bandwidths {
            write!(f, "b={b}\r\n")?;
        }
        if let Some(k) = &self.key {
            write!(f, "k={k}\r\n")?;
        }
        for a in &self.attributes {
            write!(f, "a={a}\r\n")?;
        }
        Ok(())
    }
}
