//! Typed views of the headers the stack reads: Via, name-addr (From, To,
//! Contact, Route, Record-Route), CSeq, generic parameters and numbers.
//!
//! Views borrow from the header value and parse on demand: a proxy that only
//! needs the top Via's branch never pays for parsing a Contact. Values reach
//! these parsers unfolded (the message parser turns folded lines into single
//! spaces), so linear white space here is only SP and HTAB.

use std::borrow::Cow;

use crate::method::Method;
use crate::uri::{CommonHost, Host, HostRef, Uri, UriRef, host_port_common, parse_host_port_ref};

/// Why a header value did not parse; the text is fit for a 400 reason phrase.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TypedError(pub Cow<'static, str>);

impl TypedError {
    fn new(reason: &'static str) -> TypedError {
        TypedError(Cow::Borrowed(reason))
    }
}

type Result<T> = std::result::Result<T, TypedError>;

/// RFC 3261 `token` characters.
pub fn is_token_char(b: u8) -> bool {
    // A table: this runs for every byte of every header name and parameter.
    TOKEN_CHARS[usize::from(b)]
}

const TOKEN_CHARS: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        b += 1;
    }
    t
};

pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_start_wsp(s: &str) -> &str {
    let b = s.as_bytes();
    &s[b.iter().position(|&c| !is_wsp(c)).unwrap_or(b.len())..]
}

fn trim_wsp(s: &str) -> &str {
    // Byte-wise: `trim_matches` with a closure decodes chars, and this runs
    // for every parameter, name and value.
    let b = s.as_bytes();
    let start = b.iter().position(|&c| !is_wsp(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|&c| !is_wsp(c)).map_or(start, |e| e + 1);
    &s[start..end]
}

/// Length of the quoted string starting at `s[0] == '"'`, quotes included,
/// honouring `\` escapes. `None` when it is not terminated.
fn quoted_len(s: &[u8]) -> Option<usize> {
    // Jump from one quote or backslash to the next: display names and
    // quoted parameter values rarely hold escapes.
    let mut i = 1;
    while i < s.len() {
        i += memchr::memchr2(b'"', b'\\', &s[i..])?;
        match s[i] {
            b'\\' => i += 2,
            _ => return Some(i + 1),
        }
    }
    None
}

/// Removes the quotes and `\` escapes of a quoted-string.
pub fn unquote(s: &str) -> Cow<'_, str> {
    let Some(inner) = s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) else {
        return Cow::Borrowed(s);
    };
    if !inner.contains('\\') {
        return Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Splits a header value at the commas that separate list elements, skipping
/// commas inside quoted strings and `<...>` (RFC 3261 §7.3.1).
pub fn split_list(value: &str) -> ListIter<'_> {
    ListIter { rest: value }
}

pub struct ListIter<'a> {
    rest: &'a str,
}

impl<'a> Iterator for ListIter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let b = self.rest.as_bytes();
            // Most lines hold one value: with no comma at all, that is the
            // whole line, found without tracking quotes and brackets.
            if memchr::memchr(b',', b).is_none() {
                let item = trim_wsp(self.rest);
                self.rest = "";
                return (!item.is_empty()).then_some(item);
            }
            let mut i = 0;
            let mut in_angle = false;
            // Jump from one delimiter that matters in the current state to the
            // next (outside <>: quote, '<' or ','; inside: quote or '>').
            while i < b.len() {
                let next = if in_angle {
                    memchr::memchr2(b'"', b'>', &b[i..])
                } else {
                    memchr::memchr3(b'"', b'<', b',', &b[i..])
                };
                let Some(n) = next else {
                    i = b.len();
                    break;
                };
                i += n;
                match b[i] {
                    b'"' => {
                        i += quoted_len(&b[i..]).unwrap_or(b.len() - i);
                        continue;
                    }
                    b'<' => in_angle = true,
                    b'>' => in_angle = false,
                    _ => break,
                }
                i += 1;
            }
            let item = trim_wsp(&self.rest[..i.min(b.len())]);
            self.rest = if i < b.len() { &self.rest[i + 1..] } else { "" };
            // Empty elements (",,") carry nothing; RFC 3261 grammar has none.
            if !item.is_empty() {
                return Some(item);
            }
        }
    }
}

/// `;name[=value]` parameters, kept as text and read lazily. Names compare
/// case-insensitively; values are returned as written (quotes included, see
/// [`unquote`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params<'a> {
    raw: &'a str,
}

impl<'a> Params<'a> {
    /// Parses the text after the first `;` of a parameter list, checking the
    /// grammar once so later lookups cannot fail.
    pub fn parse(raw: &'a str) -> Result<Params<'a>> {
        let p = Params { raw };
        if params_ok(raw.as_bytes()) {
            return Ok(p);
        }
        // Rejected (`check_items` accepts exactly the same): say why.
        p.check_items()?;
        Ok(p)
    }

    /// [`Params::parse`]'s grammar item by item, naming what is wrong.
    fn check_items(&self) -> Result<()> {
        for item in self.raw_items() {
            let (name, value) = split_param(item)?;
            if !is_token(name) {
                return Err(TypedError::new("malformed parameter name"));
            }
            if let Some(v) = value {
                let ok = if v.starts_with('"') {
                    quoted_len(v.as_bytes()) == Some(v.len())
                } else {
                    !v.is_empty() && v.bytes().all(is_param_value_char)
                };
                if !ok {
                    return Err(TypedError::new("malformed parameter value"));
                }
            }
        }
        Ok(())
    }

    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// Parameters whose text [`Params::parse`] accepted already.
    pub(crate) fn checked(raw: &'a str) -> Params<'a> {
        Params { raw }
    }

    fn raw_items(&self) -> impl Iterator<Item = &'a str> + 'a {
        let raw = self.raw;
        let mut rest = raw;
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let b = rest.as_bytes();
            let mut i = 0;
            while i < b.len() && b[i] != b';' {
                if b[i] == b'"' {
                    i += quoted_len(&b[i..]).unwrap_or(b.len() - i);
                } else {
                    i += 1;
                }
            }
            let item = &rest[..i.min(b.len())];
            rest = if i < b.len() { &rest[i + 1..] } else { "" };
            Some(trim_wsp(item))
        })
    }

    /// Every parameter as (name, value).
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + 'a {
        self.raw_items().filter_map(|item| split_param(item).ok())
    }

    /// `None`: absent; `Some(None)`: present without a value.
    pub fn get(&self, name: &str) -> Option<Option<&'a str>> {
        // Items up to the one asked for, read in one pass while they hold
        // no quote and no white space (as parameters are nearly always
        // written): what `iter` finds there, without its quote tracking and
        // trimming. Anything else goes the general way.
        let (raw, b) = (self.raw, self.raw.as_bytes());
        let mut i = 0;
        while i < b.len() {
            let start = i;
            let mut eq = None;
            while let Some(&c) = b.get(i).filter(|&&c| c != b';') {
                match c {
                    b'"' | b' ' | b'\t' => return self.get_general(name),
                    b'=' if eq.is_none() => eq = Some(i),
                    _ => {}
                }
                i += 1;
            }
            let (n, v) = match eq {
                Some(e) => (&raw[start..e], Some(&raw[e + 1..i])),
                None => (&raw[start..i], None),
            };
            // `iter` skips an item with an empty value.
            if v != Some("") && n.eq_ignore_ascii_case(name) {
                return Some(v);
            }
            i += 1;
        }
        None
    }

    fn get_general(&self, name: &str) -> Option<Option<&'a str>> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    pub fn value(&self, name: &str) -> Option<&'a str> {
        self.get(name).flatten()
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// Whether [`Params::parse`] accepts `b`: the same grammar as its
/// item-by-item checks, in one pass over the bytes, as this runs for every
/// Via, From, To and Contact. `;`-separated items (a trailing `;` allowed),
/// each a token name with optional `= value` (SWS around all three), the
/// value a quoted string or a run of token, host and uri-parameter bytes.
fn params_ok(b: &[u8]) -> bool {
    let skip_wsp = |mut i: usize| {
        while b.get(i).is_some_and(|&c| is_wsp(c)) {
            i += 1;
        }
        i
    };
    let mut i = 0;
    while i < b.len() {
        i = skip_wsp(i);
        let name = i;
        while b.get(i).is_some_and(|&c| is_token_char(c)) {
            i += 1;
        }
        if i == name {
            return false;
        }
        i = skip_wsp(i);
        if b.get(i) == Some(&b'=') {
            i = skip_wsp(i + 1);
            if b.get(i) == Some(&b'"') {
                match quoted_len(&b[i..]) {
                    Some(n) => i += n,
                    None => return false,
                }
            } else {
                let value = i;
                while b.get(i).is_some_and(|&c| is_param_value_char(c)) {
                    i += 1;
                }
                if i == value {
                    return false;
                }
            }
            i = skip_wsp(i);
        }
        match b.get(i) {
            None => return true,
            Some(b';') => i += 1,
            Some(_) => return false,
        }
    }
    true
}

/// token, host (IPv6 reference included) or the extra characters of
/// uri-parameter values.
fn is_param_value_char(b: u8) -> bool {
    is_token_char(b) || matches!(b, b'[' | b']' | b':' | b'/' | b'@')
}

fn split_param(item: &str) -> Result<(&str, Option<&str>)> {
    // Items are short: a plain scan beats the setup of a memchr search.
    match item.bytes().position(|b| b == b'=') {
        Some(eq) => {
            let name = trim_wsp(&item[..eq]);
            let value = trim_wsp(&item[eq + 1..]);
            if value.is_empty() {
                return Err(TypedError::new("parameter with an empty value"));
            }
            Ok((name, Some(value)))
        }
        None => Ok((item, None)),
    }
}

/// Splits `text` at its first `;` that is not inside quotes or `<...>`.
fn split_at_params(text: &str) -> (&str, Option<&str>) {
    let b = text.as_bytes();
    let mut i = 0;
    let mut in_angle = false;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += quoted_len(&b[i..]).unwrap_or(b.len() - i);
                continue;
            }
            b'<' => in_angle = true,
            b'>' => in_angle = false,
            b';' if !in_angle => return (trim_wsp(&text[..i]), Some(&text[i + 1..])),
            _ => {}
        }
        i += 1;
    }
    (trim_wsp(text), None)
}

/// One Via value (RFC 3261 §20.42).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via<'a> {
    /// "SIP/2.0", as written.
    pub protocol: &'a str,
    /// UDP, TCP, TLS, SCTP, WS, WSS or an extension, as written.
    pub transport: &'a str,
    pub host: Host,
    pub port: Option<u16>,
    pub params: Params<'a>,
}

impl<'a> Via<'a> {
    pub fn parse(value: &'a str) -> Result<Via<'a>> {
        let (protocol, transport, host, port, params) = parse_via(value, |h| h.to_host())?;
        Ok(Via {
            protocol,
            transport,
            host,
            port,
            params,
        })
    }

    /// Whether [`Via::parse`] accepts `value`, without copying the host.
    pub fn check(value: &str) -> Result<()> {
        parse_via(value, |_| ()).map(|_| ())
    }

    /// [`Via::check`], giving where the parts are in `value` when the host
    /// is a name or an IPv4 address written without white space (`None`
    /// otherwise): the message parser keeps them, so reading the top Via of
    /// a received message does not parse it again.
    pub(crate) fn check_spans(value: &str) -> Result<Option<ViaSpans>> {
        if let Some(spans) = via_common(value.as_bytes()) {
            return Ok(Some(spans));
        }
        let base = value.as_ptr() as usize;
        // Offsets of a piece of `value` (every non-empty piece below is
        // one; an absent parameter list is a literal "").
        let span = |part: &str| {
            let start = (part.as_ptr() as usize).wrapping_sub(base);
            if part.is_empty() || start > value.len() {
                (0, 0)
            } else {
                (start as u32, (start + part.len()) as u32)
            }
        };
        let (protocol, transport, host, port, params) = parse_via(value, |h| match h {
            // A domain borrowed from a compacted copy of the sent-by is not
            // in `value`: no spans for it.
            HostRef::Domain(d) => {
                let at = (d.as_ptr() as usize).wrapping_sub(base);
                (at <= value.len() && value.len() - at >= d.len())
                    .then(|| ViaHost::Domain(at as u32, (at + d.len()) as u32))
            }
            HostRef::V4(a) => Some(ViaHost::V4(a)),
            HostRef::V6(_) => None,
        })?;
        Ok(host.map(|host| ViaSpans {
            protocol: span(protocol),
            transport: span(transport),
            host,
            port,
            params: span(params.raw()),
        }))
    }

    /// The Via that [`Via::parse`] gives for `value`, from the spans
    /// [`Via::check_spans`] found in it.
    pub(crate) fn from_spans(value: &'a str, s: &ViaSpans) -> Via<'a> {
        let part = |(a, b): (u32, u32)| value.get(a as usize..b as usize).unwrap_or_default();
        Via {
            protocol: part(s.protocol),
            transport: part(s.transport),
            host: match s.host {
                ViaHost::Domain(a, b) => HostRef::Domain(part((a, b))).to_host(),
                ViaHost::V4(a) => Host::V4(a),
            },
            port: s.port,
            // Checked by `check_spans`: the lookups cannot fail.
            params: Params {
                raw: part(s.params),
            },
        }
    }

    pub fn branch(&self) -> Option<&'a str> {
        self.params.value("branch")
    }

    /// RFC 3261 branches start with the magic cookie; older ones need the
    /// RFC 2543 matching rules.
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch().is_some_and(|b| b.starts_with("z9hG4bK"))
    }

    pub fn received(&self) -> Option<&'a str> {
        self.params.value("received")
    }

    /// RFC 3581: `None` absent, `Some(None)` requested, `Some(Some(port))` filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get("rport")
            .map(|v| v.and_then(|p| p.parse().ok()))
    }
}

/// [`Via::check_spans`] for a Via written as nearly every one is:
/// `SIP/2.0/` transport, one space, a hostname or IPv4 address with an
/// optional port, and parameters without white space around them. One
/// tight pass; `None` for any other shape, which the general parser then
/// decides (it gives the same spans for this one).
fn via_common(b: &[u8]) -> Option<ViaSpans> {
    if !b.starts_with(b"SIP/2.0/") || b.last().is_some_and(|&c| is_wsp(c)) {
        return None;
    }
    let mut i = 8;
    while b.get(i).is_some_and(|&c| is_token_char(c)) {
        i += 1;
    }
    if i == 8 || b.get(i) != Some(&b' ') {
        return None;
    }
    let transport = (8, i as u32);
    let (end, host, port) = host_port_common(b, i + 1)?;
    let params = match b.get(end) {
        None => (0, 0),
        Some(b';') if params_ok(&b[end + 1..]) => {
            if end + 1 == b.len() {
                (0, 0)
            } else {
                ((end + 1) as u32, b.len() as u32)
            }
        }
        _ => return None,
    };
    Some(ViaSpans {
        protocol: (0, 7),
        transport,
        host: match host {
            CommonHost::Domain(s, e) => ViaHost::Domain(s as u32, e as u32),
            CommonHost::V4(a) => ViaHost::V4(a),
        },
        port,
        params,
    })
}

/// Where the parts of a checked Via value are (see [`Via::check_spans`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ViaSpans {
    protocol: (u32, u32),
    transport: (u32, u32),
    host: ViaHost,
    port: Option<u16>,
    params: (u32, u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ViaHost {
    Domain(u32, u32),
    V4(std::net::Ipv4Addr),
}

type ViaParts<'a, H> = (&'a str, &'a str, H, Option<u16>, Params<'a>);

/// The Via grammar, shared by [`Via::parse`] and [`Via::check`]; `host`
/// makes what the caller keeps of the host.
fn parse_via<'a, H>(
    value: &'a str,
    host: impl FnOnce(HostRef<'_>) -> H,
) -> Result<ViaParts<'a, H>> {
    let value = trim_wsp(value);
    // sent-protocol: name SLASH version SLASH transport, SWS around SLASH.
    let b = value.as_bytes();
    let bad_protocol = || TypedError::new("malformed Via sent-protocol");
    let (version, rest) = if b.starts_with(b"SIP/2.0/") {
        // As nearly every Via is written: what the general case finds.
        (&value[4..7], trim_start_wsp(&value[8..]))
    } else {
        let s1 = memchr::memchr(b'/', b).ok_or_else(bad_protocol)?;
        let s2 = memchr::memchr(b'/', &b[s1 + 1..])
            .map(|n| s1 + 1 + n)
            .ok_or_else(bad_protocol)?;
        let name = trim_wsp(&value[..s1]);
        let version = trim_wsp(&value[s1 + 1..s2]);
        if !is_token(name) || !is_token(version) {
            return Err(bad_protocol());
        }
        (version, trim_start_wsp(&value[s2 + 1..]))
    };
    let tlen = rest.bytes().take_while(|&b| is_token_char(b)).count();
    if tlen == 0 {
        return Err(TypedError::new("malformed Via transport"));
    }
    let transport = &rest[..tlen];
    let after = &rest[tlen..];
    if !after.starts_with(is_wsp_char) {
        return Err(TypedError::new("malformed Via sent-by"));
    }
    // A valid sent-by holds no quote or '<', so its end is the first ';'
    // (when either comes first, the sent-by fails to parse all the same).
    let (sent_by, params) = match memchr::memchr(b';', after.as_bytes()) {
        Some(semi) => (trim_wsp(&after[..semi]), Some(&after[semi + 1..])),
        None => (trim_wsp(after), None),
    };
    let bad_sent_by = |_| TypedError::new("malformed Via sent-by");
    // White space is no host or port byte: a sent-by that parses as it is
    // has none to remove, and only one that fails needs looking at again.
    let h = match parse_host_port_ref(sent_by) {
        Ok((h, port)) => (host(h), port),
        Err(e) => {
            let compact = compact_colon(sent_by);
            if matches!(compact, Cow::Borrowed(_)) {
                return Err(bad_sent_by(e));
            }
            let (h, port) = parse_host_port_ref(&compact).map_err(bad_sent_by)?;
            (host(h), port)
        }
    };
    let (h, port) = h;
    let params = Params::parse(params.unwrap_or(""))
        .map_err(|_| TypedError::new("malformed Via parameters"))?;
    let protocol_end = version.as_ptr() as usize + version.len() - value.as_ptr() as usize;
    Ok((&value[..protocol_end], transport, h, port, params))
}

fn is_wsp_char(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// `host SWS ":" SWS port` → `host:port` (rarely needed, so only then allocate).
fn compact_colon(s: &str) -> Cow<'_, str> {
    // Sent-by is short: a plain scan beats setting up a memchr2.
    if s.bytes().any(is_wsp) {
        Cow::Owned(s.chars().filter(|c| !is_wsp_char(*c)).collect())
    } else {
        Cow::Borrowed(s)
    }
}

/// name-addr or addr-spec with header parameters: From, To, Contact, Route,
/// Record-Route, Reply-To, Refer-To (RFC 3261 §20.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// Display name, unquoted and unescaped.
    pub display: Option<Cow<'a, str>>,
    pub uri: Uri,
    /// The URI as written, for byte-exact reuse.
    pub uri_text: &'a str,
    /// Whether the URI was enclosed in `<>`; when it was not, `;` starts
    /// header parameters, not URI parameters.
    pub angle: bool,
    pub params: Params<'a>,
}

impl<'a> NameAddr<'a> {
    pub fn parse(value: &'a str) -> Result<NameAddr<'a>> {
        NameAddrRef::parse(value).map(|n| n.to_name_addr())
    }

    pub fn tag(&self) -> Option<&'a str> {
        self.params.value("tag")
    }
}

/// A [`NameAddr`] whose URI is left in the header text ([`UriRef`]): as
/// fully checked, but parsing it allocates nothing. The message parser
/// validates From, To and Contact with it, and tag lookups read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddrRef<'a> {
    /// Display name, unquoted and unescaped.
    pub display: Option<Cow<'a, str>>,
    pub uri: UriRef<'a>,
    /// The URI as written.
    pub uri_text: &'a str,
    /// Whether the URI was enclosed in `<>`.
    pub angle: bool,
    pub params: Params<'a>,
}

type NameAddrSplit<'a> = (Option<Cow<'a, str>>, &'a str, bool, Option<&'a str>);

fn bad_uri(e: crate::uri::UriError) -> TypedError {
    TypedError(Cow::Owned(format!("bad URI: {e}")))
}

impl<'a> NameAddrRef<'a> {
    pub fn parse(value: &'a str) -> Result<NameAddrRef<'a>> {
        let (display, uri_text, angle, params) = Self::split(value, true)?;
        let uri = UriRef::parse(uri_text).map_err(bad_uri)?;
        let params = Params::parse(params.unwrap_or(""))?;
        Ok(NameAddrRef {
            display,
            uri,
            uri_text,
            angle,
            params,
        })
    }

    /// Whether [`NameAddrRef::parse`] accepts `value`, without unescaping
    /// the display name (the message parser checks every From, To and
    /// Contact and reads none of their display names) and without parsing
    /// again a URI text in `checked`, which [`UriRef::parse`] accepted
    /// already (the To of a new request is usually its Request-URI). Gives
    /// the URI text and the parameters' text.
    pub(crate) fn check<'v>(
        value: &'v str,
        checked: &[&str],
    ) -> Result<(&'v str, Option<&'v str>)> {
        let (uri_text, params) = match name_addr_common(value.as_bytes()) {
            // The same pieces `split` finds, found in one pass.
            Some((u, p)) => (
                value.get(u).unwrap_or_default(),
                p.and_then(|p| value.get(p)),
            ),
            None => {
                let (_, uri_text, _, params) = NameAddrRef::split(value, false)?;
                (uri_text, params)
            }
        };
        // (An empty text never parses, so it is never in `checked`.)
        if uri_text.is_empty() || !checked.contains(&uri_text) {
            UriRef::check(uri_text).map_err(bad_uri)?;
        }
        Params::parse(params.unwrap_or(""))?;
        Ok((uri_text, params))
    }

    /// Display name (unquoted when `display`, else `None`; checked all the
    /// same), URI text, whether it was in `<>`, and the parameters' text.
    fn split(value: &'a str, display: bool) -> Result<NameAddrSplit<'a>> {
        let value = trim_wsp(value);
        let b = value.as_bytes();
        let (display, rest) = if b.first() == Some(&b'"') {
            let end =
                quoted_len(b).ok_or_else(|| TypedError::new("unterminated quoted display name"))?;
            let rest = trim_start_wsp(&value[end..]);
            if !rest.starts_with('<') {
                return Err(TypedError::new("display name without <URI>"));
            }
            (display.then(|| unquote(&value[..end])), rest)
        } else if let Some(lt) = memchr::memchr(b'<', b) {
            let name = trim_wsp(&value[..lt]);
            // A token display name: tokens separated by LWS.
            if !name.bytes().all(|c| is_token_char(c) || is_wsp(c)) {
                return Err(TypedError::new("malformed display name"));
            }
            (
                (!name.is_empty()).then_some(Cow::Borrowed(name)),
                &value[lt..],
            )
        } else {
            (None, value)
        };
        let (uri_text, params, angle) = if let Some(inner) = rest.strip_prefix('<') {
            let gt = memchr::memchr(b'>', inner.as_bytes())
                .ok_or_else(|| TypedError::new("missing > after URI"))?;
            let after = trim_start_wsp(&inner[gt + 1..]);
            let params = match after.strip_prefix(';') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(TypedError::new("garbage after <URI>")),
            };
            (&inner[..gt], params, true)
        } else {
            let (uri, params) = split_at_params(rest);
            // addr-spec form: the URI cannot hold these (RFC 3261 §20.10).
            if uri.contains([',', '?', ' ', '\t', '<', '>', '"']) {
                return Err(TypedError::new("malformed addr-spec"));
            }
            (uri, params, false)
        };
        Ok((display, uri_text, angle, params))
    }

    pub fn tag(&self) -> Option<&'a str> {
        self.params.value("tag")
    }

    /// The owned-URI form, as [`NameAddr::parse`] gives it.
    pub fn to_name_addr(&self) -> NameAddr<'a> {
        NameAddr {
            display: self.display.clone(),
            uri: self.uri.to_uri(),
            uri_text: self.uri_text,
            angle: self.angle,
            params: self.params,
        }
    }
}

/// Where [`NameAddrRef::split`] finds the URI and the parameters of a
/// name-addr written as nearly every one is: an optional display name
/// (quoted without escapes, or tokens), `<URI>`, and `;params` right after
/// the `>`; no white space at either end. `None` for any other shape, which
/// `split` then reads (and accepts or names the fault of).
fn name_addr_common(b: &[u8]) -> Option<NameAddrRanges> {
    if b.first().is_none_or(|&c| is_wsp(c)) || b.last().is_some_and(|&c| is_wsp(c)) {
        return None;
    }
    let mut i = 0;
    if b[0] == b'"' {
        i = 1;
        while *b.get(i)? != b'"' {
            if b[i] == b'\\' {
                return None;
            }
            i += 1;
        }
        i += 1;
        while b.get(i).is_some_and(|&c| is_wsp(c)) {
            i += 1;
        }
    } else {
        while b.get(i).is_some_and(|&c| is_token_char(c) || is_wsp(c)) {
            i += 1;
        }
    }
    if b.get(i) != Some(&b'<') {
        return None;
    }
    let uri = i + 1;
    let gt = uri + memchr::memchr(b'>', b.get(uri..)?)?;
    match b.get(gt + 1) {
        None => Some((uri..gt, None)),
        Some(b';') => Some((uri..gt, Some(gt + 2..))),
        Some(_) => None,
    }
}

type NameAddrRanges = (std::ops::Range<usize>, Option<std::ops::RangeFrom<usize>>);

/// The `tag` parameter of a From or To value that the message parser
/// accepted: what `NameAddrRef::parse(value)?.tag()` gives, without parsing
/// the URI and parameters again.
pub(crate) fn checked_tag(value: &str) -> Option<&str> {
    let (_, _, _, params) = NameAddrRef::split(value, false).ok()?;
    Params { raw: params? }.value("tag")
}

/// A Contact value: `*` (remove all bindings) or an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contact<'a> {
    Wildcard,
    Addr(NameAddr<'a>),
}

impl<'a> Contact<'a> {
    pub fn parse(value: &'a str) -> Result<Contact<'a>> {
        Ok(match ContactRef::parse(value)? {
            ContactRef::Wildcard => Contact::Wildcard,
            ContactRef::Addr(n) => Contact::Addr(n.to_name_addr()),
        })
    }
}

/// A Contact value whose URI is left in the text (see [`NameAddrRef`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactRef<'a> {
    Wildcard,
    Addr(NameAddrRef<'a>),
}

impl<'a> ContactRef<'a> {
    pub fn parse(value: &'a str) -> Result<ContactRef<'a>> {
        if trim_wsp(value) == "*" {
            Ok(ContactRef::Wildcard)
        } else {
            NameAddrRef::parse(value).map(ContactRef::Addr)
        }
    }

    /// Whether [`ContactRef::parse`] accepts `value` (see [`NameAddrRef::check`]).
    pub(crate) fn check(value: &str) -> Result<()> {
        if trim_wsp(value) == "*" {
            Ok(())
        } else {
            NameAddrRef::check(value, &[]).map(|_| ())
        }
    }
}

/// CSeq (RFC 3261 §20.16): sequence number and method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    pub fn parse(value: &str) -> Result<CSeq> {
        let (seq, method) = CSeq::split(value)?;
        Ok(CSeq {
            seq,
            method: Method::from_token(method),
        })
    }

    /// What [`CSeq::parse`] accepts, with the method left as its token
    /// (`Method::from_token` of it is the parsed method): the message
    /// parser compares it with the request's and needs nothing owned.
    pub(crate) fn split(value: &str) -> Result<(u32, &str)> {
        // As nearly every CSeq is written: 1 to 9 digits, one space, a
        // token to the end. The same result as below, in one short pass.
        let b = value.as_bytes();
        let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
        if (1..=9).contains(&digits)
            && b.get(digits) == Some(&b' ')
            && b.len() > digits + 1
            && b[digits + 1..].iter().all(|&c| is_token_char(c))
        {
            let n = b[..digits]
                .iter()
                .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
            if n < 1 << 31 {
                return Ok((n, &value[digits + 1..]));
            }
        }
        let value = trim_wsp(value);
        let digits = value.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(TypedError::new("malformed CSeq"));
        }
        // Up to 9 digits cannot exceed u32::MAX: no overflow check per digit.
        let seq = if digits <= 9 {
            let n = value.as_bytes()[..digits]
                .iter()
                .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
            (n < 1 << 31).then_some(n)
        } else {
            parse_u32_max(&value[..digits], (1 << 31) - 1)
        }
        .ok_or_else(|| TypedError::new("CSeq number out of range"))?;
        let rest = &value[digits..];
        let method = trim_start_wsp(rest);
        if method.len() == rest.len() || !is_token(method) {
            return Err(TypedError::new("malformed CSeq method"));
        }
        Ok((seq, method))
    }
}

/// A decimal number no greater than `max` (leading zeros allowed, as the
/// grammar's `1*DIGIT` allows them).
pub fn parse_u32_max(s: &str, max: u32) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut n: u64 = 0;
    for b in s.bytes() {
        n = n * 10 + u64::from(b - b'0');
        if n > u64::from(max) {
            return None;
        }
    }
    u32::try_from(n).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_split_respects_quotes_and_brackets() {
        let v = r#""Doe, John" <sip:j@x;a=1,2>;q=0.5 , <sip:b@y>,,sip:c@z"#;
        let items: Vec<_> = split_list(v).collect();
        assert_eq!(
            items,
            vec![
                r#""Doe, John" <sip:j@x;a=1,2>;q=0.5"#,
                "<sip:b@y>",
                "sip:c@z"
            ]
        );
    }

    #[test]
    fn the_common_name_addr_shape_splits_as_split_does() {
        let bases = [
            "\"Alice Liddell\" <sip:alice@atlanta.example.com>;tag=9fxced76sl",
            "Bob <sip:bob@biloxi.example.com>",
            "<sip:a@b>;expires=60",
            "  A  B <sip:x> ; q=1 ",
            "sip:addr@spec;tag=1",
        ];
        let alphabet = b" \t;=<>\"\\a,@:";
        let mut x: u64 = 0x1357_9bdf_2468_ace0;
        let mut common = 0;
        for _ in 0..50_000 {
            for base in bases {
                let mut v = base.as_bytes().to_vec();
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if !x.is_multiple_of(4) {
                    let at = (x >> 8) as usize % v.len();
                    v[at] = alphabet[(x >> 32) as usize % alphabet.len()];
                }
                let Ok(v) = std::str::from_utf8(&v) else {
                    continue;
                };
                if let Some((u, p)) = name_addr_common(v.as_bytes()) {
                    common += 1;
                    let (_, uri, _, params) =
                        NameAddrRef::split(v, false).unwrap_or_else(|e| panic!("{v}: {e}"));
                    assert_eq!(uri.as_ptr(), v[u.clone()].as_ptr(), "{v}");
                    assert_eq!(uri, &v[u], "{v}");
                    assert_eq!(params, p.map(|p| &v[p]), "{v}");
                }
            }
        }
        assert!(common > 50_000, "{common}");
    }

    #[test]
    fn via_spans_give_what_parsing_gives() {
        let bases = [
            "SIP/2.0/UDP proxy.Atlanta.example.com:5060;branch=z9hG4bK2d4790.1",
            "SIP/2.0/TCP 192.0.2.101:5060;received=198.51.100.7;rport;branch=z9hG4bK74bf9",
            "  SIP / 2.0 / UDP host.example : 5070 ; branch = z9hG4bKx  ",
            "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKv6",
            "sip/2.0/ws a.b",
        ];
        let alphabet = b" \t;=:/.[]aZ9\"-";
        let mut x: u64 = 0x5151_7a7a_0303_9c9c;
        let mut with_spans = 0;
        for _ in 0..20_000 {
            for base in bases {
                let mut v = base.as_bytes().to_vec();
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if !x.is_multiple_of(4) {
                    let at = (x >> 8) as usize % v.len();
                    v[at] = alphabet[(x >> 32) as usize % alphabet.len()];
                }
                let Ok(v) = std::str::from_utf8(&v) else {
                    continue;
                };
                let spans = Via::check_spans(v);
                assert_eq!(spans.is_ok(), Via::check(v).is_ok(), "{v}");
                if let Ok(Some(spans)) = spans {
                    with_spans += 1;
                    let via = Via::from_spans(v, &spans);
                    assert_eq!(Ok(via.clone()), Via::parse(v), "{v}");
                    assert_eq!(via.branch(), Via::parse(v).ok().and_then(|p| p.branch()));
                }
            }
        }
        assert!(with_spans > 20_000, "{with_spans}");
    }

    #[test]
    fn via_with_spaces_everywhere() {
        let v = Via::parse("SIP  /   2.0 / UDP   192.0.2.2 : 5070 ; branch = z9hG4bK390skdjuw;rport;received=192.0.2.9").expect("via");
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, Host::V4("192.0.2.2".parse().expect("ip")));
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.branch(), Some("z9hG4bK390skdjuw"));
        assert!(v.has_rfc3261_branch());
        assert_eq!(v.rport(), Some(None));
        assert_eq!(v.received(), Some("192.0.2.9"));
    }

    #[test]
    fn via_ipv6_and_bad_forms() {
        let v = Via::parse("SIP/2.0/TCP [2001:db8::9:1]:5061;branch=z9hG4bKas3").expect("via");
        assert_eq!(v.host, Host::V6("2001:db8::9:1".parse().expect("ip")));
        assert_eq!(v.port, Some(5061));
        for bad in [
            "SIP/2.0/UDP",
            "SIP/2.0 192.0.2.1",
            "SIP/2.0/UDP 192.0.2.1:99999",
            "SIP/2.0/UDP 192.0.2.1;branch=",
            "",
            "SIP/2.0/UDP 2001:db8::1",
        ] {
            assert!(Via::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse(r#""J Rosenberg \\\"" <sip:jdrosen@example.com>;tag=98asjd8"#)
            .expect("na");
        assert_eq!(n.display.as_deref(), Some(r#"J Rosenberg \""#));
        assert_eq!(n.uri_text, "sip:jdrosen@example.com");
        assert_eq!(n.tag(), Some("98asjd8"));

        let n = NameAddr::parse("sip:alice@atlanta.com;tag=88sja8x").expect("addr-spec");
        assert!(!n.angle);
        assert_eq!(n.uri_text, "sip:alice@atlanta.com");
        assert_eq!(n.tag(), Some("88sja8x"));

        let n = NameAddr::parse("Bob  Smith <sip:bob@b.com;lr>").expect("token display");
        assert_eq!(n.display.as_deref(), Some("Bob  Smith"));
        assert_eq!(n.uri_text, "sip:bob@b.com;lr");
        assert_eq!(n.tag(), None);

        for bad in [
            r#""unterminated <sip:a@b>"#,
            "<sip:a@b",
            "<sip:a@b> junk",
            "sip:a@b?Subject=x",
            "Bad\"Name <sip:a@b>",
        ] {
            assert!(NameAddr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn borrowed_checks_agree_with_the_typed_parsers() {
        for v in [
            "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1",
            "SIP / 2.0 / TCP Proxy.Example : 5070 ;rport",
            "SIP/2.0/UDP",
            "SIP/2.0/UDP 2001:db8::1",
            "SIP/2.0/UDP h;branch=",
        ] {
            assert_eq!(Via::check(v).is_ok(), Via::parse(v).is_ok(), "{v}");
        }
        for v in [
            r#""A \"B" <sip:a%40b@x;lr>;tag=1"#,
            "sip:a@b;tag=2",
            "<tel:+1555>",
            "*",
            "<sip:a@b",
            "Bad\"Name <sip:a@b>",
            "<sip:a@[::1>",
        ] {
            let owned = Contact::parse(v);
            let borrowed = ContactRef::parse(v);
            assert_eq!(owned.is_ok(), borrowed.is_ok(), "{v}");
            if let (Ok(Contact::Addr(o)), Ok(ContactRef::Addr(b))) = (owned, borrowed) {
                assert_eq!(o, b.to_name_addr());
                assert_eq!(o.tag(), b.tag());
            }
        }
    }

    #[test]
    fn cseq_bounds() {
        assert_eq!(
            CSeq::parse("  0009 INVITE").expect("cseq"),
            CSeq {
                seq: 9,
                method: Method::Invite
            }
        );
        assert_eq!(
            CSeq::parse("2147483647 NEWMETHOD").expect("max").seq,
            2_147_483_647
        );
        for bad in [
            "2147483648 INVITE",
            "36893488147419103232 REGISTER",
            "1INVITE",
            "INVITE",
            "1 ",
            "-1 BYE",
        ] {
            assert!(CSeq::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn params_lookup_agrees_with_iterating() {
        let alphabet = b";=ab\" \tB";
        let mut x: u64 = 0x7777_1234_dead_beef;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 12) as usize;
            let raw: String = (0..len)
                .map(|k| alphabet[((x >> (4 * k)) % alphabet.len() as u64) as usize] as char)
                .collect();
            let p = Params { raw: &raw };
            for name in ["a", "b", "ab", "A", ""] {
                assert_eq!(p.get(name), p.get_general(name), "{raw:?} {name}");
            }
        }
    }

    #[test]
    fn params_lookup() {
        let p = Params::parse(r#"tag=a;lr;q="0.5;x";Expires=60"#).expect("params");
        assert_eq!(p.value("tag"), Some("a"));
        assert_eq!(p.get("lr"), Some(None));
        assert_eq!(p.value("q"), Some(r#""0.5;x""#));
        assert_eq!(p.value("expires"), Some("60"));
        assert_eq!(p.get("missing"), None);
        assert!(Params::parse("a b=1").is_err());
        assert!(Params::parse("tag=\"open").is_err());
    }

    #[test]
    fn one_pass_params_check_matches_the_item_checks() {
        let alphabet = [b'a', b';', b'=', b'"', b'\\', b' ', b'[', b','];
        let mut stack = vec![Vec::new()];
        while let Some(s) = stack.pop() {
            let text = std::str::from_utf8(&s).expect("ascii");
            let p = Params { raw: text };
            assert_eq!(params_ok(&s), p.check_items().is_ok(), "{text:?}");
            if s.len() < 6 {
                for c in alphabet {
                    let mut next = s.clone();
                    next.push(c);
                    stack.push(next);
                }
            }
        }
    }

    #[test]
    fn a_via_or_contact_that_checks_whole_is_one_list_element() {
        // The message parser relies on it to skip splitting such lines.
        let bases = [
            "SIP/2.0/UDP h.example.com:5060;branch=z9hG4bK1;q=\"a\"",
            "\"A, B\" <sip:a,b@h;lr>;tag=1;q=\"x,y\"",
            "sip:a@h;tag=2",
            "<sip:a@h>, <sip:b@h>",
            "*",
        ];
        let alphabet = b" \t,;<>\"\\=@:*a";
        let mut x: u64 = 0x0bad_cafe_dead_beef;
        let mut whole_ok = 0;
        for _ in 0..50_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut s = bases[(x % bases.len() as u64) as usize].as_bytes().to_vec();
            for k in 0..1 + (x >> 8) % 3 {
                let at = ((x >> (16 + 8 * k)) as usize) % (s.len() + 1);
                let c = alphabet[((x >> (40 + 4 * k)) as usize) % alphabet.len()];
                if (x >> (60 - k)) & 1 == 0 {
                    s.insert(at, c);
                } else if at < s.len() {
                    s[at] = c;
                }
            }
            let s = String::from_utf8(s).expect("ascii");
            let whole: Vec<&str> = split_list(&s).collect();
            if Via::check(&s).is_ok() || ContactRef::check(&s).is_ok() {
                assert_eq!(whole, vec![trim_wsp(&s)], "{s:?}");
                whole_ok += 1;
            }
        }
        assert!(whole_ok > 5_000, "{whole_ok}");
    }

    #[test]
    fn unquote_escapes() {
        assert_eq!(unquote(r#""a\"b\\c""#), r#"a"b\c"#);
        assert_eq!(unquote("plain"), "plain");
    }
}
