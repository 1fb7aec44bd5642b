//! Character classes of the RFC 3261 §25.1 / RFC 3966 URI grammar, and
//! %-escaping. One 256-entry table answers every "is this byte allowed
//! here" question with a load and a mask, which keeps parsing branch-light.

use std::borrow::Cow;
use std::fmt;

use super::{UriError, UriErrorKind};

pub(crate) const UNRESERVED: u16 = 1 << 0;
/// `user`: unreserved / user-unreserved (`& = + $ , ; ? /`).
pub(crate) const USER: u16 = 1 << 1;
/// `password`: unreserved / `& = + $ ,`.
pub(crate) const PASSWORD: u16 = 1 << 2;
/// `paramchar`: unreserved / param-unreserved (`[ ] / : & + $`). RFC 3966
/// uses the same set for tel parameters.
pub(crate) const PARAM: u16 = 1 << 3;
/// `hname` / `hvalue`: unreserved / hnv-unreserved (`[ ] / ? : + $`).
pub(crate) const HEADER: u16 = 1 << 4;
/// Anything RFC 3986 allows unescaped in a URI (for schemes we keep as text).
pub(crate) const ABSOLUTE: u16 = 1 << 5;
/// `scheme` after its first letter: alphanum / `+ - .`.
pub(crate) const SCHEME: u16 = 1 << 6;
/// tel number characters: HEXDIG / `* #` / visual separators (`- . ( )`).
pub(crate) const TEL_NUMBER: u16 = 1 << 7;
/// TEL_NUMBER minus `#`, which RFC 3966 §5.1.5 wants escaped when written
/// (it is the RFC 3986 fragment delimiter); parsing accepts it raw too.
pub(crate) const TEL_NUMBER_OUT: u16 = 1 << 8;
/// Bytes of a hostname or IPv4 address: alphanum / `- .`.
pub(crate) const HOST: u16 = 1 << 9;
/// ASCII letters and digits.
pub(crate) const ALNUM: u16 = 1 << 10;

static TABLE: [u16; 256] = build_table();

const fn build_table() -> [u16; 256] {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        let alnum = c.is_ascii_alphanumeric();
        let mark = matches!(
            c,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
        );
        let unreserved = alnum || mark;
        let mut v = 0u16;
        if unreserved {
            v |= UNRESERVED;
        }
        if unreserved || matches!(c, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/') {
            v |= USER;
        }
        if unreserved || matches!(c, b'&' | b'=' | b'+' | b'$' | b',') {
            v |= PASSWORD;
        }
        if unreserved || matches!(c, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$') {
            v |= PARAM;
        }
        if unreserved || matches!(c, b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$') {
            v |= HEADER;
        }
        if unreserved
            || matches!(
                c,
                b':' | b'/'
                    | b'?'
                    | b'#'
                    | b'['
                    | b']'
                    | b'@'
                    | b'$'
                    | b'&'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
            )
        {
            v |= ABSOLUTE;
        }
        if alnum || matches!(c, b'+' | b'-' | b'.') {
            v |= SCHEME;
        }
        if alnum || matches!(c, b'-' | b'.') {
            v |= HOST;
        }
        if alnum {
            v |= ALNUM;
        }
        if c.is_ascii_hexdigit() || matches!(c, b'*' | b'#' | b'-' | b'.' | b'(' | b')') {
            v |= TEL_NUMBER;
            if c != b'#' {
                v |= TEL_NUMBER_OUT;
            }
        }
        t[i] = v;
        i += 1;
    }
    t
}

#[inline]
pub(crate) fn is(c: u8, class: u16) -> bool {
    TABLE[c as usize] & class != 0
}

/// `unreserved` of RFC 3261: alphanum and `- _ . ! ~ * ' ( )`.
pub fn is_unreserved(c: u8) -> bool {
    is(c, UNRESERVED)
}
/// Bytes allowed unescaped in the user part of a SIP URI.
pub fn is_user_char(c: u8) -> bool {
    is(c, USER)
}
/// Bytes allowed unescaped in the password of a SIP URI.
pub fn is_password_char(c: u8) -> bool {
    is(c, PASSWORD)
}
/// Bytes allowed unescaped in a URI parameter name or value (`paramchar`).
pub fn is_param_char(c: u8) -> bool {
    is(c, PARAM)
}
/// Bytes allowed unescaped in a URI header name or value.
pub fn is_header_char(c: u8) -> bool {
    is(c, HEADER)
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// %-escapes every byte of `s` for which `allowed` is false. `%` and every
/// non-ASCII byte are always escaped, whatever `allowed` says, so the result
/// is unambiguous ASCII. Borrows when nothing needs escaping.
pub fn escape(s: &str, allowed: fn(u8) -> bool) -> Cow<'_, str> {
    let needs = |c: u8| c == b'%' || !c.is_ascii() || !allowed(c);
    let b = s.as_bytes();
    let Some(first) = b.iter().position(|&c| needs(c)) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 8);
    out.push_str(&s[..first]);
    for &c in &b[first..] {
        if needs(c) {
            out.push('%');
            out.push(HEX[(c >> 4) as usize] as char);
            out.push(HEX[(c & 15) as usize] as char);
        } else {
            out.push(c as char);
        }
    }
    Cow::Owned(out)
}

/// Decodes `%HH` escapes. Rejects a `%` not followed by two hex digits, and
/// a result that is not UTF-8 (every field of this module is a `String`).
/// Borrows when there is no `%`.
pub fn unescape(s: &str) -> Result<Cow<'_, str>, UriError> {
    let b = s.as_bytes();
    let Some(first) = b.iter().position(|&c| c == b'%') else {
        return Ok(Cow::Borrowed(s));
    };
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&b[..first]);
    let mut i = first;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            let hi = b.get(i + 1).copied().and_then(hex_val);
            let lo = b.get(i + 2).copied().and_then(hex_val);
            match (hi, lo) {
                (Some(h), Some(l)) => out.push(h << 4 | l),
                _ => return Err(UriError::new(UriErrorKind::Escape)),
            }
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| UriError::new(UriErrorKind::Utf8))
}

/// Writes `s` escaped like [`escape`] without allocating.
pub(crate) fn write_escaped(f: &mut fmt::Formatter<'_>, s: &str, class: u16) -> fmt::Result {
    let b = s.as_bytes();
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        // Only ASCII bytes pass, so every slice boundary is a char boundary.
        if c.is_ascii() && c != b'%' && is(c, class) {
            continue;
        }
        if start < i {
            f.write_str(&s[start..i])?;
        }
        let esc = [b'%', HEX[(c >> 4) as usize], HEX[(c & 15) as usize]];
        for e in esc {
            fmt::Write::write_char(f, e as char)?;
        }
        start = i + 1;
    }
    if start < b.len() {
        f.write_str(&s[start..])?;
    }
    Ok(())
}

/// Advances from `start` over bytes of `class` and well-formed `%HH`
/// escapes. Returns where it stopped (the first other byte, or the end) and
/// whether it saw an escape. Finding each delimiter this way validates the
/// component in the same pass.
#[inline]
pub(crate) fn run(b: &[u8], start: usize, class: u16) -> Result<(usize, bool), UriError> {
    let mut i = start;
    let mut escaped = false;
    while let Some(&c) = b.get(i) {
        if is(c, class) {
            i += 1;
        } else if c == b'%' {
            match (b.get(i + 1), b.get(i + 2)) {
                (Some(h), Some(l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {}
                _ => return Err(UriError::new(UriErrorKind::Escape)),
            }
            escaped = true;
            i += 3;
        } else {
            break;
        }
    }
    Ok((i, escaped))
}

/// Checks that `s[start..end]` unescapes to UTF-8 (every owned field is a
/// `String`). `start..end` must come from [`run`], so its escapes are
/// well formed; only text with escapes needs the check (and allocates).
#[inline]
pub(crate) fn check(s: &str, start: usize, end: usize, escaped: bool) -> Result<(), UriError> {
    if escaped {
        unescape(s.get(start..end).unwrap_or_default())?;
    }
    Ok(())
}

/// Unescapes text that [`check`] (or a parser using it) already accepted.
pub(crate) fn decode(s: &str) -> Cow<'_, str> {
    // Cannot fail on checked text; the fallback only keeps this panic-free.
    unescape(s).unwrap_or(Cow::Borrowed(s))
}

/// Decimal digits of `n` at the end of `buf`; returns where they start.
/// `core::fmt` integer formatting goes through padding logic that cost more
/// than the rest of a URI's `Display` (measured).
fn decimal(mut n: u32, buf: &mut [u8]) -> usize {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || i == 0 {
            return i;
        }
    }
}

pub(crate) fn write_port(f: &mut fmt::Formatter<'_>, port: u16) -> fmt::Result {
    let mut buf = [0u8; 6];
    let start = decimal(u32::from(port), &mut buf[1..]) + 1;
    buf[start - 1] = b':';
    f.write_str(std::str::from_utf8(&buf[start - 1..]).map_err(|_| fmt::Error)?)
}

pub(crate) fn write_ipv4(f: &mut fmt::Formatter<'_>, a: std::net::Ipv4Addr) -> fmt::Result {
    let mut out = [0u8; 15];
    let mut len = 0;
    for (k, octet) in a.octets().into_iter().enumerate() {
        if k > 0 {
            out[len] = b'.';
            len += 1;
        }
        let mut buf = [0u8; 3];
        let start = decimal(u32::from(octet), &mut buf);
        let digits = &buf[start..];
        out[len..len + digits.len()].copy_from_slice(digits);
        len += digits.len();
    }
    f.write_str(std::str::from_utf8(&out[..len]).map_err(|_| fmt::Error)?)
}
