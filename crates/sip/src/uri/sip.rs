//! `sip:` and `sips:` URIs (RFC 3261 §19.1, grammar in §25.1).

use std::fmt;
use std::str::FromStr;

use std::borrow::Cow;

use super::chars::{self, HEADER, PARAM, PASSWORD, USER, decode};
use super::host::{Host, HostRef, host_port_common, parse_host_port_prefix};
use super::{Uri, UriError, UriErrorKind};

/// A SIP or SIPS URI validated as fully as [`SipUri::parse`] does, but
/// left in the text it came from: parsing it allocates nothing. Accessors
/// unescape on demand; [`SipUriRef::to_sip_uri`] makes the owned form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipUriRef<'a> {
    secure: bool,
    /// As written (escapes kept).
    user: Option<&'a str>,
    password: Option<&'a str>,
    host: HostRef<'a>,
    port: Option<u16>,
    /// The parameters as written, without the leading `;`; "" when none.
    params: &'a str,
    /// The headers as written, without the leading `?`; "" when none.
    headers: &'a str,
}

impl<'a> SipUriRef<'a> {
    /// Parses what follows `sip:` / `sips:`, left to right in one pass:
    /// each component is validated while its end is found.
    #[inline(always)]
    pub(crate) fn parse_body(body: &'a str, secure: bool) -> Result<SipUriRef<'a>, UriError> {
        let b = body.as_bytes();
        let (user, password, hp) = parse_userinfo(body)?;
        let (host, port, end) = parse_host_port_prefix(body.get(hp..).unwrap_or_default(), |c| {
            c == b';' || c == b'?'
        })?;
        let mut i = hp + end;
        let mut params = "";
        if b.get(i) == Some(&b';') {
            let e = parse_params(body, i)?;
            params = body.get(i + 1..e).unwrap_or_default();
            i = e;
        }
        let mut headers = "";
        if b.get(i) == Some(&b'?') {
            let first = i + 1;
            loop {
                let start = i + 1;
                let (ne, nesc) = chars::run(b, start, HEADER)?;
                if ne == start || b.get(ne) != Some(&b'=') {
                    return Err(UriError::new(UriErrorKind::Header));
                }
                let (ve, vesc) = chars::run(b, ne + 1, HEADER)?;
                chars::check(body, start, ne, nesc)?;
                chars::check(body, ne + 1, ve, vesc)?;
                i = ve;
                match b.get(i) {
                    Some(b'&') => {}
                    None => break,
                    Some(_) => return Err(UriError::new(UriErrorKind::Header)),
                }
            }
            headers = body.get(first..).unwrap_or_default();
        }
        Ok(SipUriRef {
            secure,
            user,
            password,
            host,
            port,
            params,
            headers,
        })
    }

    /// `sips:` rather than `sip:`.
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// The user part, unescaped.
    pub fn user(&self) -> Option<Cow<'a, str>> {
        self.user.map(decode)
    }

    /// The password, unescaped.
    pub fn password(&self) -> Option<Cow<'a, str>> {
        self.password.map(decode)
    }

    pub fn host(&self) -> HostRef<'a> {
        self.host
    }

    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// `;name[=value]`, unescaped, in order.
    pub fn params(&self) -> impl Iterator<Item = (Cow<'a, str>, Option<Cow<'a, str>>)> + 'a {
        raw_params(self.params).map(|(n, v)| (decode(n), v.map(decode)))
    }

    /// The first parameter named `name` (case-insensitively): `None` if
    /// absent, `Some(None)` if it has no value (`;lr`).
    pub fn param(&self, name: &str) -> Option<Option<Cow<'a, str>>> {
        self.params()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// `;lr` is present.
    pub fn lr(&self) -> bool {
        self.param("lr").is_some()
    }

    /// `?name=value&...`, unescaped, in order.
    pub fn headers(&self) -> impl Iterator<Item = (Cow<'a, str>, Cow<'a, str>)> + 'a {
        let raw = self.headers;
        raw.split('&').filter(move |_| !raw.is_empty()).map(|h| {
            // Validated: every header has its `=`.
            let (n, v) = h.split_once('=').unwrap_or((h, ""));
            (decode(n), decode(v))
        })
    }

    pub fn has_headers(&self) -> bool {
        !self.headers.is_empty()
    }

    /// The owned form, as [`SipUri::parse`] gives it.
    pub fn to_sip_uri(&self) -> SipUri {
        SipUri {
            secure: self.secure,
            user: self.user().map(Cow::into_owned),
            password: self.password().map(Cow::into_owned),
            host: self.host.to_host(),
            port: self.port,
            params: self
                .params()
                .map(|(n, v)| (n.into_owned(), v.map(Cow::into_owned)))
                .collect(),
            headers: self
                .headers()
                .map(|(n, v)| (n.into_owned(), v.into_owned()))
                .collect(),
        }
    }
}

/// Whether `b` is a SIP URI of the shape nearly every one has, which
/// [`SipUriRef::parse_body`] (after the scheme) accepts without headers:
/// `sip:` or `sips:`, an optional user without escapes and `@`, a
/// hostname or IPv4 address, an optional port, and parameters without
/// escapes. One tight pass with no results to build; `false` says only
/// "not this shape", and the caller then runs the full parser, which
/// decides (and names the fault).
pub(crate) fn common_shape(b: &[u8]) -> bool {
    let mut i = if b.starts_with(b"sip:") {
        4
    } else if b.starts_with(b"sips:") {
        5
    } else {
        return false;
    };
    // Userinfo: the user part, then '@'; or no '@' at all, when the user
    // bytes run to the end (the user part holds ';', so `host;params`
    // reads as one run).
    let start = i;
    while i < b.len() && chars::is(b[i], USER) {
        i += 1;
    }
    let host = match b.get(i) {
        Some(b'@') if i > start => i + 1,
        None => start,
        _ => return false,
    };
    let Some((i, _, _)) = host_port_common(b, host) else {
        return false;
    };
    let mut i = i;
    // Parameters: `;name[=value]`, names non-empty.
    while i < b.len() {
        if b[i] != b';' {
            return false;
        }
        i += 1;
        let name = i;
        while i < b.len() && chars::is(b[i], PARAM) {
            i += 1;
        }
        if i == name {
            return false;
        }
        if b.get(i) == Some(&b'=') {
            i += 1;
            while i < b.len() && chars::is(b[i], PARAM) {
                i += 1;
            }
        }
    }
    true
}

/// The `name[=value]` items of a validated parameter list as written
/// (`;` and `=` cannot appear unescaped inside either).
pub(crate) fn raw_params(raw: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    raw.split(';')
        .filter(move |_| !raw.is_empty())
        .map(|p| match p.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (p, None),
        })
}

/// A SIP or SIPS URI. Every text field holds the unescaped value; `Display`
/// escapes again whatever the grammar does not allow raw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// `sips:` rather than `sip:`.
    pub secure: bool,
    /// Unescaped; `None` when there is no userinfo. Never empty when parsed.
    pub user: Option<String>,
    /// Unescaped; written only when `user` is `Some`.
    pub password: Option<String>,
    pub host: Host,
    pub port: Option<u16>,
    /// `;name[=value]`, unescaped, in order, names as written.
    pub params: Vec<(String, Option<String>)>,
    /// `?name=value&...`, unescaped, in order.
    pub headers: Vec<(String, String)>,
}

/// Parameters that, present in only one of two URIs, make them differ
/// (RFC 3261 §19.1.4; `transport` because its examples treat it so).
const SIGNIFICANT_PARAMS: [&str; 5] = ["user", "ttl", "method", "maddr", "transport"];

impl SipUri {
    /// `sip:host`, with nothing else set.
    pub fn new(host: Host) -> SipUri {
        SipUri {
            secure: false,
            user: None,
            password: None,
            host,
            port: None,
            params: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// Parses a full `sip:` or `sips:` URI; any other scheme is an error.
    pub fn parse(s: &str) -> Result<SipUri, UriError> {
        match Uri::parse(s)? {
            Uri::Sip(u) => Ok(u),
            _ => Err(UriError::new(UriErrorKind::NotSip)),
        }
    }

    /// The first parameter named `name` (case-insensitively): `None` if
    /// absent, `Some(None)` if it has no value (`;lr`).
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }

    /// `transport` parameter as written (compare it case-insensitively).
    pub fn transport(&self) -> Option<&str> {
        self.param("transport").flatten()
    }

    pub fn maddr(&self) -> Option<&str> {
        self.param("maddr").flatten()
    }

    /// `;lr` is present (with or without the `=on` some stacks add).
    pub fn lr(&self) -> bool {
        self.param("lr").is_some()
    }

    /// The `user` parameter (`phone`, `ip`, ...).
    pub fn user_param(&self) -> Option<&str> {
        self.param("user").flatten()
    }

    /// `method` parameter.
    pub fn method_param(&self) -> Option<&str> {
        self.param("method").flatten()
    }

    /// `ttl` parameter, if it is a valid 0..=255 number.
    pub fn ttl(&self) -> Option<u8> {
        self.param("ttl").flatten().and_then(|v| v.parse().ok())
    }

    /// Sets the first parameter named `name` (case-insensitively) and drops
    /// any later duplicates, or appends it.
    pub fn set_param(&mut self, name: &str, value: Option<&str>) {
        let mut found = false;
        self.params.retain_mut(|(n, v)| {
            if !n.eq_ignore_ascii_case(name) {
                return true;
            }
            if found {
                return false;
            }
            found = true;
            *v = value.map(str::to_owned);
            true
        });
        if !found {
            self.params
                .push((name.to_owned(), value.map(str::to_owned)));
        }
    }

    /// Removes every parameter named `name` (case-insensitively).
    pub fn remove_param(&mut self, name: &str) {
        self.params.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// 5060, or 5061 for sips (RFC 3261 §19.1.2).
    pub fn default_port(&self) -> u16 {
        if self.secure { 5061 } else { 5060 }
    }

    /// The explicit port, else the scheme's default.
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or_else(|| self.default_port())
    }

    /// RFC 3261 §19.1.4 equality.
    ///
    /// Because fields are stored unescaped, an escaped character equals its
    /// raw form even for reserved characters (`%3B` vs `;` in a user part),
    /// which the RFC would strictly keep apart; no real stack relies on it.
    pub fn equivalent(&self, other: &SipUri) -> bool {
        self.secure == other.secure
            && self.user == other.user
            && self.password == other.password
            && self.host.equivalent(&other.host)
            && self.port == other.port
            && params_equivalent(&self.params, &other.params)
            && params_equivalent(&other.params, &self.params)
            && headers_equivalent(&self.headers, &other.headers)
    }
}

fn find_param<'a>(params: &'a [(String, Option<String>)], name: &str) -> Option<Option<&'a str>> {
    params
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_deref())
}

type Userinfo<'a> = (Option<&'a str>, Option<&'a str>, usize);

/// Userinfo, if any: `(user, password, where the hostport starts)`.
///
/// A raw `@` can only end the userinfo (no other part allows it), but the
/// user part may hold `;` and `?`, so the userinfo is scanned first and only
/// an `@` where it stops makes it userinfo. Otherwise the text is hostport,
/// unless an `@` still follows, which means a bad character in the userinfo.
fn parse_userinfo(body: &str) -> Result<Userinfo<'_>, UriError> {
    let b = body.as_bytes();
    let (ue, uesc) = chars::run(b, 0, USER)?;
    let (password, at) = match b.get(ue) {
        Some(b'@') => (None, ue),
        Some(b':') => {
            let (pe, pesc) = chars::run(b, ue + 1, PASSWORD)?;
            if b.get(pe) != Some(&b'@') {
                return if b[pe..].contains(&b'@') {
                    Err(UriError::new(UriErrorKind::Password))
                } else {
                    Ok((None, None, 0))
                };
            }
            chars::check(body, ue + 1, pe, pesc)?;
            (body.get(ue + 1..pe), pe)
        }
        _ => {
            return if b[ue..].contains(&b'@') {
                Err(UriError::new(UriErrorKind::User))
            } else {
                Ok((None, None, 0))
            };
        }
    };
    if ue == 0 {
        return Err(UriError::new(UriErrorKind::User));
    }
    chars::check(body, 0, ue, uesc)?;
    Ok((body.get(..ue), password, at + 1))
}

/// Validates `*( ";" pname [ "=" pvalue ] )` from `s[i]`, which is `;`.
/// Stops at `?` or the end and returns that index. An empty value (`;a=`)
/// is accepted as `Some("")`: harmless, and it round-trips.
pub(crate) fn parse_params(s: &str, mut i: usize) -> Result<usize, UriError> {
    let b = s.as_bytes();
    loop {
        let start = i + 1;
        let (ne, nesc) = chars::run(b, start, PARAM)?;
        if ne == start {
            return Err(UriError::new(UriErrorKind::Param));
        }
        chars::check(s, start, ne, nesc)?;
        if b.get(ne) == Some(&b'=') {
            let (ve, vesc) = chars::run(b, ne + 1, PARAM)?;
            chars::check(s, ne + 1, ve, vesc)?;
            i = ve;
        } else {
            i = ne;
        }
        match b.get(i) {
            Some(b';') => {}
            Some(b'?') | None => return Ok(i),
            Some(_) => return Err(UriError::new(UriErrorKind::Param)),
        }
    }
}

/// One direction of the §19.1.4 parameter rule: each parameter of `a` must
/// match in `b` if `b` has it, and a significant one must be in `b`.
fn params_equivalent(a: &[(String, Option<String>)], b: &[(String, Option<String>)]) -> bool {
    a.iter().all(|(name, value)| match find_param(b, name) {
        Some(other) => match (value.as_deref(), other) {
            (None, None) => true,
            (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
            _ => false,
        },
        None => !SIGNIFICANT_PARAMS
            .iter()
            .any(|s| s.eq_ignore_ascii_case(name)),
    })
}

/// Headers are never ignored: the same multiset on both sides, names
/// case-insensitive, values exact (after unescaping), order free.
fn headers_equivalent(a: &[(String, String)], b: &[(String, String)]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let same =
        |x: &(String, String), y: &(String, String)| x.0.eq_ignore_ascii_case(&y.0) && x.1 == y.1;
    // Counting instead of matching up keeps this allocation-free; lists are
    // tiny, so quadratic is fine.
    a.iter()
        .all(|h| a.iter().filter(|x| same(x, h)).count() == b.iter().filter(|y| same(y, h)).count())
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(user) = &self.user {
            chars::write_escaped(f, user, USER)?;
            if let Some(pw) = &self.password {
                f.write_str(":")?;
                chars::write_escaped(f, pw, PASSWORD)?;
            }
            f.write_str("@")?;
        }
        fmt::Display::fmt(&self.host, f)?;
        if let Some(port) = self.port {
            chars::write_port(f, port)?;
        }
        write_params(f, &self.params)?;
        for (i, (n, v)) in self.headers.iter().enumerate() {
            f.write_str(if i == 0 { "?" } else { "&" })?;
            chars::write_escaped(f, n, HEADER)?;
            f.write_str("=")?;
            chars::write_escaped(f, v, HEADER)?;
        }
        Ok(())
    }
}

pub(crate) fn write_params(
    f: &mut fmt::Formatter<'_>,
    params: &[(String, Option<String>)],
) -> fmt::Result {
    for (n, v) in params {
        f.write_str(";")?;
        chars::write_escaped(f, n, PARAM)?;
        if let Some(v) = v {
            f.write_str("=")?;
            chars::write_escaped(f, v, PARAM)?;
        }
    }
    Ok(())
}

impl FromStr for SipUri {
    type Err = UriError;
    fn from_str(s: &str) -> Result<SipUri, UriError> {
        SipUri::parse(s)
    }
}

#[cfg(test)]
mod common_shape_tests {
    use super::*;
    use crate::uri::UriRef;

    #[test]
    fn the_common_shape_is_only_what_the_parser_accepts() {
        let bases = [
            "sip:bob@biloxi.example.com",
            "sip:alice@192.0.2.101:5060;transport=udp",
            "sips:proxy.atlanta.example.com;lr",
            "sip:b-1.x.y.:65535;a=;b",
            "sip:1.2.3.4",
            "sip:+1-555@h;user=phone",
        ];
        let alphabet = b"@:;=.-%?[]aZ09 \"<>&$/,5";
        let mut x: u64 = 0xfeed_5151_0bad_f00d;
        let mut shaped = 0;
        for _ in 0..50_000 {
            for base in bases {
                let mut v = base.as_bytes().to_vec();
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                for k in 0..x % 3 {
                    let at = (x >> (8 + 8 * k)) as usize % v.len();
                    let c = alphabet[(x >> (32 + 5 * k)) as usize % alphabet.len()];
                    match (x >> (50 + k)) % 3 {
                        0 => v[at] = c,
                        1 => v.insert(at, c),
                        _ => {
                            v.remove(at);
                        }
                    }
                    if v.is_empty() {
                        break;
                    }
                }
                if common_shape(&v) {
                    shaped += 1;
                    let s = std::str::from_utf8(&v).expect("the shape is ASCII");
                    let parsed = UriRef::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
                    let sip = parsed.as_sip().unwrap_or_else(|| panic!("{s}: not SIP"));
                    assert!(!sip.has_headers(), "{s}");
                }
            }
        }
        assert!(shaped > 50_000, "{shaped}");
        for s in [
            "sip:bob@biloxi.example.com",
            "sip:alice@192.0.2.101:5060;transport=udp",
        ] {
            assert!(common_shape(s.as_bytes()), "{s}");
        }
        for s in [
            "SIP:a@b",
            "sip:a:pw@b",
            "sip:a%41@b",
            "sip:b?x=y",
            "sip:[::1]",
            "sip:1.2.3.999",
        ] {
            assert!(!common_shape(s.as_bytes()), "{s}");
        }
    }
}
