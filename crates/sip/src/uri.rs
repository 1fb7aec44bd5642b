//! PLACEHOLDER — replaced by the URI module (sip/sips/tel, RFC 3261 §19, RFC 3966, RFC 5118).
use std::fmt;
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri(String);
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UriError(pub &'static str);
impl UriError {
    pub fn reason(&self) -> &str {
        self.0
    }
}
impl Uri {
    pub fn parse(s: &str) -> Result<Uri, UriError> {
        if s.contains(':') && !s.contains(['<', '>', ' ']) {
            Ok(Uri(s.to_string()))
        } else {
            Err(UriError("bad URI"))
        }
    }
    pub fn scheme(&self) -> &str {
        self.0.split(':').next().unwrap_or("")
    }
}
impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Domain(String),
    V4(std::net::Ipv4Addr),
    V6(std::net::Ipv6Addr),
}
impl Host {
    pub fn parse(s: &str) -> Result<Host, UriError> {
        if let Some(v6) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            return v6.parse().map(Host::V6).map_err(|_| UriError("bad v6"));
        }
        if let Ok(v4) = s.parse() {
            return Ok(Host::V4(v4));
        }
        if s.is_empty()
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err(UriError("bad host"));
        }
        Ok(Host::Domain(s.to_string()))
    }
}
impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}
pub fn parse_host_port(s: &str) -> Result<(Host, Option<u16>), UriError> {
    let (h, p) = match s.rfind(':') {
        Some(i) if !s[i..].contains(']') && (s.starts_with('[') || !s[..i].contains(':')) => (
            &s[..i],
            Some(s[i + 1..].parse().map_err(|_| UriError("bad port"))?),
        ),
        _ => (s, None),
    };
    Ok((Host::parse(h)?, p))
}
