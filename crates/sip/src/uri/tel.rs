//! `tel:` URIs (RFC 3966).

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use super::chars::{self, TEL_NUMBER, TEL_NUMBER_OUT, decode};
use super::sip::{parse_params, raw_params, write_params};
use super::{Uri, UriError, UriErrorKind};

/// A tel URI validated as fully as [`TelUri::parse`] does, left in the text
/// it came from (see [`super::SipUriRef`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelUriRef<'a> {
    /// As written (escapes kept), without the leading `+`.
    number: &'a str,
    global: bool,
    /// As written, without the leading `;`; "" when none.
    params: &'a str,
}

impl<'a> TelUriRef<'a> {
    pub(crate) fn parse_body(body: &'a str) -> Result<TelUriRef<'a>, UriError> {
        let b = body.as_bytes();
        let global = b.first() == Some(&b'+');
        let start = usize::from(global);
        let (end, esc) = chars::run(b, start, TEL_NUMBER)?;
        let raw = body.get(start..end).unwrap_or_default();
        let number = if esc {
            chars::unescape(raw)?
        } else {
            Cow::Borrowed(raw)
        };
        // Checked after unescaping, so "%2B1" cannot sneak a '+' in.
        if !valid_number(number.as_bytes(), global) {
            return Err(UriError::new(UriErrorKind::TelNumber));
        }
        let (stop, params) = match b.get(end) {
            None => (end, ""),
            Some(b';') => {
                let stop = parse_params(body, end)?;
                (stop, body.get(end + 1..stop).unwrap_or_default())
            }
            Some(_) => return Err(UriError::new(UriErrorKind::TelNumber)),
        };
        // parse_params stops at a '?', but tel URIs have no headers.
        if stop != b.len() {
            return Err(UriError::new(UriErrorKind::Param));
        }
        Ok(TelUriRef {
            number: raw,
            global,
            params,
        })
    }

    /// The number as written, unescaped, without the leading `+`.
    pub fn number(&self) -> Cow<'a, str> {
        decode(self.number)
    }

    pub fn global(&self) -> bool {
        self.global
    }

    /// `;name[=value]`, unescaped, in order.
    pub fn params(&self) -> impl Iterator<Item = (Cow<'a, str>, Option<Cow<'a, str>>)> + 'a {
        raw_params(self.params).map(|(n, v)| (decode(n), v.map(decode)))
    }

    /// The owned form, as [`TelUri::parse`] gives it.
    pub fn to_tel_uri(&self) -> TelUri {
        TelUri {
            number: self.number().into_owned(),
            global: self.global,
            params: self
                .params()
                .map(|(n, v)| (n.into_owned(), v.map(Cow::into_owned)))
                .collect(),
        }
    }
}

/// A tel URI.
///
/// `number` is the number as written, unescaped, *with* its visual
/// separators (`-`, `.`, `(`, `)`) and *without* the leading `+` (that is
/// `global`): keeping it as written lets a proxy forward it untouched.
/// [`TelUri::digits`] gives the number without separators, which is what
/// comparison and routing use.
///
/// A local number without `phone-context` is accepted, although RFC 3966
/// requires one: devices send `tel:911`, and rejecting it helps no caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelUri {
    pub number: String,
    /// The number started with `+` (a global, E.164 number).
    pub global: bool,
    /// `;name[=value]`, unescaped, in order, names as written.
    pub params: Vec<(String, Option<String>)>,
}

fn is_separator(c: u8) -> bool {
    matches!(c, b'-' | b'.' | b'(' | b')')
}

impl TelUri {
    /// Parses a full `tel:` URI; any other scheme is an error.
    pub fn parse(s: &str) -> Result<TelUri, UriError> {
        match Uri::parse(s)? {
            Uri::Tel(t) => Ok(t),
            _ => Err(UriError::new(UriErrorKind::NotTel)),
        }
    }

    /// The number without visual separators (and without `+`).
    pub fn digits(&self) -> Cow<'_, str> {
        if self.number.bytes().any(is_separator) {
            Cow::Owned(
                self.number
                    .chars()
                    .filter(|&c| !c.is_ascii() || !is_separator(c as u8))
                    .collect(),
            )
        } else {
            Cow::Borrowed(&self.number)
        }
    }

    /// The first parameter named `name` (case-insensitively).
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    pub fn phone_context(&self) -> Option<&str> {
        self.param("phone-context").flatten()
    }

    /// RFC 3966 §4: both global or both local, digits equal without visual
    /// separators, the same set of parameter names, values equal
    /// case-insensitively (`phone-context` digits without separators).
    pub fn equivalent(&self, other: &TelUri) -> bool {
        self.global == other.global
            && digits_eq(&self.number, &other.number)
            && tel_params_match(&self.params, &other.params)
            && tel_params_match(&other.params, &self.params)
    }
}

/// Global: `*phonedigit DIGIT *phonedigit`; local: HEXDIG, `*`, `#` and
/// separators with at least one non-separator.
fn valid_number(n: &[u8], global: bool) -> bool {
    let mut seen = false;
    for &c in n {
        if is_separator(c) {
            continue;
        }
        let ok = if global {
            c.is_ascii_digit()
        } else {
            c.is_ascii_hexdigit() || c == b'*' || c == b'#'
        };
        if !ok {
            return false;
        }
        seen = true;
    }
    seen
}

/// Compares ignoring visual separators and ASCII case (hex digits).
fn digits_eq(a: &str, b: &str) -> bool {
    let mut x = a.bytes().filter(|&c| !is_separator(c));
    let mut y = b.bytes().filter(|&c| !is_separator(c));
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some(p), Some(q)) if p.eq_ignore_ascii_case(&q) => {}
            _ => return false,
        }
    }
}

fn tel_params_match(a: &[(String, Option<String>)], b: &[(String, Option<String>)]) -> bool {
    a.iter().all(|(name, value)| {
        let Some((_, other)) = b.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) else {
            return false;
        };
        match (value.as_deref(), other.as_deref()) {
            (None, None) => true,
            (Some(x), Some(y)) => {
                if name.eq_ignore_ascii_case("phone-context") && x.starts_with('+') {
                    y.starts_with('+') && digits_eq(x, y)
                } else {
                    x.eq_ignore_ascii_case(y)
                }
            }
            _ => false,
        }
    })
}

impl fmt::Display for TelUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.global { "tel:+" } else { "tel:" })?;
        chars::write_escaped(f, &self.number, TEL_NUMBER_OUT)?;
        write_params(f, &self.params)
    }
}

impl FromStr for TelUri {
    type Err = UriError;
    fn from_str(s: &str) -> Result<TelUri, UriError> {
        TelUri::parse(s)
    }
}
