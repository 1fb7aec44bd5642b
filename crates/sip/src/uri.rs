//! URIs: `sip:`/`sips:` (RFC 3261 §19.1, §25.1), `tel:` (RFC 3966), IPv6
//! references (RFC 5118), and any other scheme kept as text.
//!
//! Parsed values hold unescaped text; `Display` writes a canonical form that
//! re-escapes what the grammar needs escaped, so `Uri::parse(&u.to_string())`
//! gives `u` back. Parsing validates the whole grammar, never panics, and
//! allocates only for the strings it returns (and once more per component
//! that contains a `%`).

mod chars;
mod host;
mod sip;
mod tel;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

pub use chars::{
    escape, is_header_char, is_param_char, is_password_char, is_unreserved, is_user_char, unescape,
};
pub(crate) use host::{CommonHost, host_port_common};
pub use host::{Host, HostRef, parse_host_port, parse_host_port_ref};
pub use sip::{SipUri, SipUriRef};
pub use tel::{TelUri, TelUriRef};

use chars::{ABSOLUTE, SCHEME};

/// What was wrong with a URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UriErrorKind {
    Empty,
    Scheme,
    Escape,
    Utf8,
    User,
    Password,
    EmptyHost,
    Host,
    Ipv6,
    Ipv6NotBracketed,
    Port,
    Param,
    Header,
    TelNumber,
    /// Bad text in a URI of a scheme we keep as text.
    Opaque,
    NotSip,
    NotTel,
}

impl UriErrorKind {
    /// Short text fit for a SIP reason phrase.
    pub fn reason(self) -> &'static str {
        match self {
            UriErrorKind::Empty => "empty URI",
            UriErrorKind::Scheme => "invalid URI scheme",
            UriErrorKind::Escape => "invalid %-escape in URI",
            UriErrorKind::Utf8 => "escaped URI text is not UTF-8",
            UriErrorKind::User => "invalid user part in URI",
            UriErrorKind::Password => "invalid password in URI",
            UriErrorKind::EmptyHost => "missing host in URI",
            UriErrorKind::Host => "invalid host in URI",
            UriErrorKind::Ipv6 => "invalid IPv6 reference in URI",
            UriErrorKind::Ipv6NotBracketed => "IPv6 address in URI needs brackets",
            UriErrorKind::Port => "invalid port in URI",
            UriErrorKind::Param => "invalid parameter in URI",
            UriErrorKind::Header => "invalid header in URI",
            UriErrorKind::TelNumber => "invalid number in tel URI",
            UriErrorKind::Opaque => "invalid character in URI",
            UriErrorKind::NotSip => "not a SIP URI",
            UriErrorKind::NotTel => "not a tel URI",
        }
    }
}

/// A URI that could not be parsed. `reason()` is short enough to be the
/// reason phrase of a 400 response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .kind.reason())]
pub struct UriError {
    kind: UriErrorKind,
}

impl UriError {
    pub(crate) fn new(kind: UriErrorKind) -> UriError {
        UriError { kind }
    }

    pub fn kind(&self) -> UriErrorKind {
        self.kind
    }

    pub fn reason(&self) -> &str {
        self.kind.reason()
    }
}

/// A URI of a scheme other than sip, sips and tel (RFC 3986 absolute URI),
/// checked for legal characters and escapes and kept as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbsoluteUri {
    /// Lower-cased (schemes are case-insensitive).
    pub scheme: String,
    /// Everything after the first `:`, as written.
    pub rest: String,
}

impl fmt::Display for AbsoluteUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.scheme, self.rest)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    Sip(SipUri),
    Tel(TelUri),
    Other(AbsoluteUri),
}

/// A URI validated as fully as [`Uri::parse`] does, borrowing the text it
/// came from: parsing allocates nothing (unless a component holds a `%`
/// escape), so a header can be checked without building the owned form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriRef<'a> {
    Sip(SipUriRef<'a>),
    Tel(TelUriRef<'a>),
    /// Another scheme: the scheme as written and everything after its `:`.
    Other {
        scheme: &'a str,
        rest: &'a str,
    },
}

impl<'a> UriRef<'a> {
    pub fn parse(s: &'a str) -> Result<UriRef<'a>, UriError> {
        UriRef::parse_inline(s)
    }

    /// Whether [`UriRef::parse`] accepts `s` and, when it does, whether it
    /// is a SIP URI with headers. The same code inlined, so that what a
    /// check does not keep is never built (the message parser checks every
    /// URI it meets and keeps none).
    pub(crate) fn check(s: &str) -> Result<bool, UriError> {
        if sip::common_shape(s.as_bytes()) {
            return Ok(false);
        }
        UriRef::parse_inline(s).map(|u| u.as_sip().is_some_and(SipUriRef::has_headers))
    }

    #[inline(always)]
    fn parse_inline(s: &'a str) -> Result<UriRef<'a>, UriError> {
        let b = s.as_bytes();
        let Some(&first) = b.first() else {
            return Err(UriError::new(UriErrorKind::Empty));
        };
        if !first.is_ascii_alphabetic() {
            return Err(UriError::new(UriErrorKind::Scheme));
        }
        let mut colon = 1;
        loop {
            match b.get(colon) {
                Some(b':') => break,
                Some(&c) if chars::is(c, SCHEME) => colon += 1,
                _ => return Err(UriError::new(UriErrorKind::Scheme)),
            }
        }
        let (scheme, rest) = (&s[..colon], &s[colon + 1..]);
        if scheme.eq_ignore_ascii_case("sip") {
            SipUriRef::parse_body(rest, false).map(UriRef::Sip)
        } else if scheme.eq_ignore_ascii_case("sips") {
            SipUriRef::parse_body(rest, true).map(UriRef::Sip)
        } else if scheme.eq_ignore_ascii_case("tel") {
            TelUriRef::parse_body(rest).map(UriRef::Tel)
        } else {
            if rest.is_empty() {
                return Err(UriError::new(UriErrorKind::Opaque));
            }
            if chars::run(rest.as_bytes(), 0, ABSOLUTE)?.0 != rest.len() {
                return Err(UriError::new(UriErrorKind::Opaque));
            }
            Ok(UriRef::Other { scheme, rest })
        }
    }

    /// `sip`, `sips`, `tel`, or the other scheme as written.
    pub fn scheme(&self) -> &'a str {
        match self {
            UriRef::Sip(u) if u.secure() => "sips",
            UriRef::Sip(_) => "sip",
            UriRef::Tel(_) => "tel",
            UriRef::Other { scheme, .. } => scheme,
        }
    }

    pub fn as_sip(&self) -> Option<&SipUriRef<'a>> {
        match self {
            UriRef::Sip(u) => Some(u),
            _ => None,
        }
    }

    pub fn as_tel(&self) -> Option<&TelUriRef<'a>> {
        match self {
            UriRef::Tel(t) => Some(t),
            _ => None,
        }
    }

    /// The owned form, as [`Uri::parse`] gives it.
    pub fn to_uri(&self) -> Uri {
        match self {
            UriRef::Sip(u) => Uri::Sip(u.to_sip_uri()),
            UriRef::Tel(t) => Uri::Tel(t.to_tel_uri()),
            UriRef::Other { scheme, rest } => Uri::Other(AbsoluteUri {
                scheme: scheme.to_ascii_lowercase(),
                rest: (*rest).to_owned(),
            }),
        }
    }
}

impl From<UriRef<'_>> for Uri {
    fn from(u: UriRef<'_>) -> Uri {
        u.to_uri()
    }
}

impl Uri {
    pub fn parse(s: &str) -> Result<Uri, UriError> {
        UriRef::parse(s).map(|u| u.to_uri())
    }

    /// `sip`, `sips`, `tel`, or the other scheme (lower-cased).
    pub fn scheme(&self) -> &str {
        match self {
            Uri::Sip(u) if u.secure => "sips",
            Uri::Sip(_) => "sip",
            Uri::Tel(_) => "tel",
            Uri::Other(o) => &o.scheme,
        }
    }

    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            _ => None,
        }
    }

    pub fn as_sip_mut(&mut self) -> Option<&mut SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            _ => None,
        }
    }

    pub fn as_tel(&self) -> Option<&TelUri> {
        match self {
            Uri::Tel(t) => Some(t),
            _ => None,
        }
    }

    /// URI equality as SIP defines it: RFC 3261 §19.1.4 for sip/sips,
    /// RFC 3966 §4 for tel. Other schemes compare by scheme and exact text.
    /// URIs of different schemes never match.
    pub fn equivalent(&self, other: &Uri) -> bool {
        match (self, other) {
            (Uri::Sip(a), Uri::Sip(b)) => a.equivalent(b),
            (Uri::Tel(a), Uri::Tel(b)) => a.equivalent(b),
            (Uri::Other(a), Uri::Other(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(u) => fmt::Display::fmt(u, f),
            Uri::Tel(t) => fmt::Display::fmt(t, f),
            Uri::Other(o) => fmt::Display::fmt(o, f),
        }
    }
}

impl FromStr for Uri {
    type Err = UriError;
    fn from_str(s: &str) -> Result<Uri, UriError> {
        Uri::parse(s)
    }
}

impl From<SipUri> for Uri {
    fn from(u: SipUri) -> Uri {
        Uri::Sip(u)
    }
}

impl From<TelUri> for Uri {
    fn from(t: TelUri) -> Uri {
        Uri::Tel(t)
    }
}
