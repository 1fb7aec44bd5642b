//! Hosts and host:port (RFC 3261 §25.1 `hostport`, RFC 5118 for IPv6).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::chars::{ALNUM, is};
use super::{UriError, UriErrorKind};

/// The host of a SIP URI or a Via sent-by.
///
/// [`Host::parse`] lower-cases domain names: hosts compare
/// case-insensitively (RFC 3261 §19.1.4), and storing one spelling makes the
/// derived `Eq`/`Hash` agree with that, so a `Host` can key a map.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A hostname, lower-cased by the parser; a trailing dot is kept.
    Domain(String),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl Host {
    /// Parses `example.com`, `192.0.2.1` or `[2001:db8::1]` (the brackets
    /// are required for IPv6). No port.
    pub fn parse(s: &str) -> Result<Host, UriError> {
        if let Some(inner) = s.strip_prefix('[') {
            return match inner.strip_suffix(']') {
                Some(addr) => parse_v6(addr).map(|h| h.to_host()),
                None => Err(UriError::new(UriErrorKind::Ipv6)),
            };
        }
        parse_plain(s).map(|h| h.to_host())
    }

    /// RFC 3261 §19.1.4 host comparison: domains case-insensitively, IP
    /// addresses by value, and a name never equals an address.
    pub fn equivalent(&self, other: &Host) -> bool {
        match (self, other) {
            (Host::Domain(a), Host::Domain(b)) => a.eq_ignore_ascii_case(b),
            (Host::V4(a), Host::V4(b)) => a == b,
            (Host::V6(a), Host::V6(b)) => a == b,
            _ => false,
        }
    }

    pub fn is_ip(&self) -> bool {
        !matches!(self, Host::Domain(_))
    }
}

/// A validated host as written, borrowed from the text it was parsed from:
/// what the parsers produce before anything is copied. A domain keeps its
/// spelling; [`HostRef::to_host`] lower-cases it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostRef<'a> {
    Domain(&'a str),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl HostRef<'_> {
    pub fn to_host(&self) -> Host {
        match *self {
            HostRef::Domain(d) => Host::Domain(d.to_ascii_lowercase()),
            HostRef::V4(a) => Host::V4(a),
            HostRef::V6(a) => Host::V6(a),
        }
    }

    pub fn is_ip(&self) -> bool {
        !matches!(self, HostRef::Domain(_))
    }
}

impl fmt::Display for HostRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostRef::Domain(d) => f.write_str(d),
            HostRef::V4(a) => super::chars::write_ipv4(f, *a),
            HostRef::V6(a) => write!(f, "[{a}]"),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::V4(a) => super::chars::write_ipv4(f, *a),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

impl FromStr for Host {
    type Err = UriError;
    fn from_str(s: &str) -> Result<Host, UriError> {
        Host::parse(s)
    }
}

impl From<Ipv4Addr> for Host {
    fn from(a: Ipv4Addr) -> Host {
        Host::V4(a)
    }
}

impl From<Ipv6Addr> for Host {
    fn from(a: Ipv6Addr) -> Host {
        Host::V6(a)
    }
}

impl From<std::net::IpAddr> for Host {
    fn from(a: std::net::IpAddr) -> Host {
        match a {
            std::net::IpAddr::V4(a) => Host::V4(a),
            std::net::IpAddr::V6(a) => Host::V6(a),
        }
    }
}

/// Parses `host[:port]`, as in a Via sent-by: `[::1]:5070`, `host`,
/// `1.2.3.4:5060`. `[2001:db8::10:5070]` is an address without a port
/// (RFC 5118 §4.3): inside brackets every colon belongs to the address.
pub fn parse_host_port(s: &str) -> Result<(Host, Option<u16>), UriError> {
    parse_host_port_ref(s).map(|(h, p)| (h.to_host(), p))
}

/// [`parse_host_port`] without copying the host.
pub fn parse_host_port_ref(s: &str) -> Result<(HostRef<'_>, Option<u16>), UriError> {
    parse_host_port_prefix(s, |_| false).map(|(h, p, _)| (h, p))
}

/// Parses the `hostport` at the start of `s`, which must end at the end of
/// `s` or at a byte for which `stop` holds; returns where it ended. One pass
/// finds the end and validates, as this runs for every URI.
pub(crate) fn parse_host_port_prefix(
    s: &str,
    stop: impl Fn(u8) -> bool + Copy,
) -> Result<(HostRef<'_>, Option<u16>, usize), UriError> {
    let b = s.as_bytes();
    let (host, mut i) = if b.first() == Some(&b'[') {
        let Some(close) = b.iter().position(|&c| c == b']') else {
            return Err(UriError::new(UriErrorKind::Ipv6));
        };
        (parse_v6(&s[1..close])?, close + 1)
    } else if let Some((a, end)) = v4_prefix(b) {
        (HostRef::V4(a), end)
    } else {
        let (end, valid) = scan_hostname(b);
        match plain(&s[..end], valid) {
            Ok(h) => (h, end),
            Err(e) => return Err(bare_v6_or(s, stop, e)),
        }
    };
    let mut port = None;
    let mut kind = UriErrorKind::Host;
    if b.get(i) == Some(&b':') {
        let start = i + 1;
        i = b[start..]
            .iter()
            .position(|c| !c.is_ascii_digit())
            .map_or(b.len(), |n| start + n);
        match parse_port(&s[start..i]) {
            Ok(p) => port = Some(p),
            Err(e) => return Err(bare_v6_or(s, stop, e)),
        }
        kind = UriErrorKind::Port;
    }
    match b.get(i) {
        Some(&c) if !stop(c) => Err(bare_v6_or(s, stop, UriError::new(kind))),
        _ => Ok((host, port, i)),
    }
}

/// The `hostport` at `b[at..]` in the shape nearly every one has: a
/// hostname (labels of letters, digits and inner hyphens, the last starting
/// with a letter, one trailing dot allowed) or an IPv4 address, and an
/// optional port. Gives where it ends, the host (a domain as its span in
/// `b`) and the port; [`parse_host_port_prefix`] gives the same for it.
/// `None`: not this shape (an IPv6 reference, a bad host or port), for the
/// caller to hand to the full parser.
#[inline(always)]
pub(crate) fn host_port_common(b: &[u8], at: usize) -> Option<(usize, CommonHost, Option<u16>)> {
    // An IPv4 address is tried first, as `parse_host_port_prefix` does.
    if b.get(at).is_some_and(u8::is_ascii_digit)
        && let Some((a, n)) = v4_prefix(b.get(at..)?)
    {
        return common_port(b, at + n, CommonHost::V4(a));
    }
    // The rules of `scan_hostname`, checked only at the dots and hyphens
    // (a label is `b[label..]` up to the next dot): none empty, none
    // starting or ending with '-'.
    let mut i = at;
    let (mut ok, mut label, mut last_label) = (true, at, at);
    while let Some(&c) = b.get(i) {
        if !is(c, ALNUM) {
            match c {
                b'.' => {
                    ok &= i != label && b[i - 1] != b'-';
                    last_label = label;
                    label = i + 1;
                }
                b'-' => ok &= i != label,
                _ => break,
            }
        }
        i += 1;
    }
    // The last byte; a '.' also when there is none, as `scan_hostname`
    // starts from one.
    let last = if i == at { b'.' } else { b[i - 1] };
    let top = if last == b'.' { last_label } else { label };
    if !(ok && last != b'-' && b.get(top).is_some_and(u8::is_ascii_alphabetic)) {
        return None;
    }
    common_port(b, i, CommonHost::Domain(at, i))
}

/// The optional `:port` at `b[i..]` after `host`.
#[inline(always)]
fn common_port(
    b: &[u8],
    mut i: usize,
    host: CommonHost,
) -> Option<(usize, CommonHost, Option<u16>)> {
    let mut port = None;
    if b.get(i) == Some(&b':') {
        i += 1;
        let digits = i;
        let mut p: u32 = 0;
        while let Some(&c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            p = p * 10 + u32::from(c - b'0');
            if p > u32::from(u16::MAX) {
                return None;
            }
            i += 1;
        }
        if i == digits {
            return None;
        }
        port = Some(p as u16);
    }
    Some((i, host, port))
}

/// A host as [`host_port_common`] finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CommonHost {
    /// `b[start..end]`.
    Domain(usize, usize),
    V4(Ipv4Addr),
}

/// `err`, unless the hostport looks like an unbracketed IPv6 address, which
/// RFC 5118 §4.2 says is invalid: then say that.
fn bare_v6_or(s: &str, stop: impl Fn(u8) -> bool, err: UriError) -> UriError {
    let end = s.bytes().position(stop).unwrap_or(s.len());
    let hp = s.get(..end).unwrap_or(s);
    let looks_v6 = hp.parse::<Ipv6Addr>().is_ok()
        || hp
            .rsplit_once(':')
            .is_some_and(|(h, _)| h.parse::<Ipv6Addr>().is_ok());
    if looks_v6 {
        UriError::new(UriErrorKind::Ipv6NotBracketed)
    } else {
        err
    }
}

/// `port = 1*DIGIT`, and it must fit in 16 bits.
pub(crate) fn parse_port(s: &str) -> Result<u16, UriError> {
    let err = || UriError::new(UriErrorKind::Port);
    if s.is_empty() {
        return Err(err());
    }
    let mut v: u32 = 0;
    for &c in s.as_bytes() {
        if !c.is_ascii_digit() {
            return Err(err());
        }
        v = v * 10 + u32::from(c - b'0');
        if v > u32::from(u16::MAX) {
            return Err(err());
        }
    }
    u16::try_from(v).map_err(|_| err())
}

fn parse_v6(s: &str) -> Result<HostRef<'_>, UriError> {
    // std's parser takes exactly RFC 4291 text forms, including an embedded
    // IPv4 tail, and no zone id — what RFC 5954's corrected ABNF allows.
    if let Ok(a) = s.parse::<Ipv6Addr>() {
        return Ok(HostRef::V6(a));
    }
    // RFC 3261's original ABNF wanted three colons before an IPv4 tail
    // ("2001:db8:::192.0.2.1"); RFC 5118 §4.10 asks receivers to be robust
    // and take it, meaning the same address as with two.
    if let Some(i) = s.find(":::")
        && s[i + 3..].contains('.')
        && !s[i + 3..].contains(':')
    {
        let fixed = format!("{}::{}", &s[..i], &s[i + 3..]);
        if let Ok(a) = fixed.parse::<Ipv6Addr>() {
            return Ok(HostRef::V6(a));
        }
    }
    Err(UriError::new(UriErrorKind::Ipv6))
}

/// A hostname or an IPv4 address (no brackets, no port).
fn parse_plain(s: &str) -> Result<HostRef<'_>, UriError> {
    let (end, valid) = scan_hostname(s.as_bytes());
    plain(s, valid && end == s.len())
}

/// `s` as an IPv4 address, else as a hostname when `valid_hostname`.
fn plain(s: &str, valid_hostname: bool) -> Result<HostRef<'_>, UriError> {
    let b = s.as_bytes();
    if b.is_empty() {
        return Err(UriError::new(UriErrorKind::EmptyHost));
    }
    if let Some(a) = parse_v4(b) {
        return Ok(HostRef::V4(a));
    }
    // Digits-and-dots that are not IPv4 ("1.2.3", "1.2.3.999") are no
    // hostname either: a toplabel starts with a letter.
    if !valid_hostname {
        return Err(bare_v6_or(s, |_| false, UriError::new(UriErrorKind::Host)));
    }
    Ok(HostRef::Domain(s))
}

/// `IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT`, each
/// at most 255 (leading zeros are allowed by the grammar and accepted).
/// A dotted-quad IPv4 address at the start of `b`, ended by the end or a
/// byte no hostname holds: then what scanning the hostname and reading it
/// as IPv4 finds, in one pass instead of two.
fn v4_prefix(b: &[u8]) -> Option<(Ipv4Addr, usize)> {
    let mut octets = [0u8; 4];
    let (mut idx, mut val, mut digits, mut i) = (0, 0u16, 0, 0);
    while let Some(&c) = b.get(i) {
        if c.is_ascii_digit() {
            if digits == 3 {
                return None;
            }
            val = val * 10 + u16::from(c - b'0');
            digits += 1;
        } else if c == b'.' {
            if digits == 0 || idx == 3 {
                return None;
            }
            octets[idx] = u8::try_from(val).ok()?;
            (idx, val, digits) = (idx + 1, 0, 0);
        } else {
            break;
        }
        i += 1;
    }
    if idx != 3 || digits == 0 || b.get(i).is_some_and(|&c| is(c, ALNUM) || c == b'-') {
        return None;
    }
    octets[3] = u8::try_from(val).ok()?;
    Some((Ipv4Addr::from(octets), i))
}

fn parse_v4(b: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut idx = 0;
    let mut val: u16 = 0;
    let mut digits = 0;
    for &c in b {
        if c == b'.' {
            if digits == 0 || idx == 3 {
                return None;
            }
            octets[idx] = u8::try_from(val).ok()?;
            idx += 1;
            val = 0;
            digits = 0;
        } else {
            if digits == 3 || !c.is_ascii_digit() {
                return None;
            }
            val = val * 10 + u16::from(c - b'0');
            digits += 1;
        }
    }
    if idx != 3 || digits == 0 {
        return None;
    }
    octets[3] = u8::try_from(val).ok()?;
    Some(Ipv4Addr::from(octets))
}

/// Finds where the hostname-or-IPv4 text at the start of `b` ends (the
/// first byte neither can hold) and, in the same pass, whether it is a valid
/// `hostname = *( domainlabel "." ) toplabel [ "." ]`: labels are alphanum
/// with inner hyphens, and the toplabel starts with a letter. This runs for
/// every URI and Via, so it looks at each byte once.
fn scan_hostname(b: &[u8]) -> (usize, bool) {
    let mut ok = true;
    let mut prev = b'.';
    // Where the current label starts, and where the one before it did.
    let (mut label, mut last_label) = (0, 0);
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if !is(c, ALNUM) {
            match c {
                // Labels are checked at their edges: no empty label, none
                // starting or ending with '-'.
                b'.' => {
                    ok &= prev != b'.' && prev != b'-';
                    last_label = label;
                    label = i + 1;
                }
                b'-' => ok &= prev != b'.',
                _ => break,
            }
        }
        prev = c;
        i += 1;
    }
    // One trailing dot is allowed: then the toplabel is the one before it.
    let top = if prev == b'.' { last_label } else { label };
    let valid = ok && prev != b'-' && b.get(top).is_some_and(u8::is_ascii_alphabetic);
    (i, valid)
}

#[cfg(test)]
mod v4_prefix_tests {
    use super::*;

    #[test]
    fn agrees_with_scanning_the_hostname() {
        let alphabet = b"0123456789.a-:;]2";
        let mut x: u64 = 0x0123_4567_89ab_cdef;
        let mut found = 0;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = 1 + (x % 18) as usize;
            let s: String = (0..len)
                .map(|k| alphabet[((x >> (3 * k)) % alphabet.len() as u64) as usize] as char)
                .collect();
            let s = if x & 1 == 0 { format!("192.0.{s}") } else { s };
            if let Some((a, end)) = v4_prefix(s.as_bytes()) {
                let (scan_end, valid) = scan_hostname(s.as_bytes());
                assert_eq!(end, scan_end, "{s}");
                assert_eq!(plain(&s[..end], valid), Ok(HostRef::V4(a)), "{s}");
                found += 1;
            }
        }
        assert!(found > 1000, "{found}");
    }
}

#[cfg(test)]
mod legacy_v6_tests {
    use super::*;

    #[test]
    fn three_colon_ipv4_tail_reads_as_two() {
        let want: Ipv6Addr = "2001:db8::192.0.2.1".parse().expect("v6");
        assert_eq!(Host::parse("[2001:db8:::192.0.2.1]"), Ok(Host::V6(want)));
        // Only before an IPv4 tail: elsewhere three colons stay an error.
        assert!(Host::parse("[2001:db8:::1]").is_err());
        assert!(Host::parse("[:::]").is_err());
    }
}

#[cfg(test)]
mod hostname_tests {
    use super::*;

    /// The grammar read literally: split into labels, check each.
    fn reference(s: &str) -> bool {
        let s = s.strip_suffix('.').unwrap_or(s);
        let labels: Vec<&str> = s.split('.').collect();
        labels.iter().all(|l| {
            !l.is_empty()
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        }) && labels
            .last()
            .is_some_and(|t| t.as_bytes()[0].is_ascii_alphabetic())
    }

    #[test]
    fn one_pass_scan_matches_the_grammar() {
        let alphabet = [b'a', b'1', b'-', b'.', b'Z'];
        let mut stack = vec![Vec::new()];
        while let Some(s) = stack.pop() {
            let text = std::str::from_utf8(&s).expect("ascii");
            let (end, valid) = scan_hostname(&s);
            assert_eq!(end, s.len(), "{text}");
            assert_eq!(valid, reference(text), "{text:?}");
            if s.len() < 6 {
                for c in alphabet {
                    let mut next = s.clone();
                    next.push(c);
                    stack.push(next);
                }
            }
        }
        assert_eq!(scan_hostname(b"a.b;lr"), (3, true));
    }

    #[test]
    fn common_shape_scan_matches_the_grammar() {
        let alphabet = [b'a', b'1', b'-', b'.', b'Z'];
        let mut stack = vec![Vec::new()];
        while let Some(s) = stack.pop() {
            let text = std::str::from_utf8(&s).expect("ascii");
            let got = host_port_common(&s, 0);
            if reference(text) {
                assert_eq!(
                    got,
                    Some((s.len(), CommonHost::Domain(0, s.len()), None)),
                    "{text}"
                );
            } else if let Some((end, host, _)) = got {
                // Only an address, as the full parser reads it.
                assert!(matches!(host, CommonHost::V4(_)), "{text}");
                assert_eq!(parse_host_port_ref(text).map(|h| h.1), Ok(None), "{text}");
                assert_eq!(end, s.len(), "{text}");
            }
            if s.len() < 7 {
                for c in alphabet {
                    let mut next = s.clone();
                    next.push(c);
                    stack.push(next);
                }
            }
        }
        assert_eq!(scan_hostname(b"a_b"), (1, true));
    }
}
