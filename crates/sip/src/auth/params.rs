//! The auth-param lexer shared by challenges and credentials, and the
//! writers that keep formatted values safe to put in a header.

use std::borrow::Cow;
use std::fmt;

use super::AuthError;

/// More parameters than any real phone sends; bounds the duplicate check.
const MAX_PARAMS: usize = 64;

/// One `name=value` pair; `value` has quotes and escapes removed.
pub(super) struct Param<'a> {
    pub name: &'a str,
    pub value: Cow<'a, str>,
}

fn malformed(reason: &'static str) -> AuthError {
    AuthError::Malformed(reason)
}

/// LWS between elements. CR and LF count too, so folded lines are accepted
/// whether or not the message parser already unfolded them.
fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// RFC 3261 `token` characters.
pub(super) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// Characters of an unquoted value. Wider than `token` because phones send
/// base64 nonces and URIs unquoted; anything visible but a delimiter goes.
fn is_bare_value_byte(b: u8) -> bool {
    b.is_ascii_graphic() && b != b',' && b != b'"'
}

fn skip_lws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && is_lws(s[i]) {
        i += 1;
    }
    i
}

/// Splits `Digest <params>`, checking the scheme (case-insensitive).
pub(super) fn parse(input: &str) -> Result<Vec<Param<'_>>, AuthError> {
    let s = input.as_bytes();
    let start = skip_lws(s, 0);
    let mut i = start;
    while i < s.len() && is_token_byte(s[i]) {
        i += 1;
    }
    if !input[start..i].eq_ignore_ascii_case("digest") {
        return Err(malformed("scheme is not Digest"));
    }
    if i < s.len() && !is_lws(s[i]) {
        return Err(malformed("no space after scheme"));
    }
    parse_params(input, i)
}

fn parse_params(input: &str, mut i: usize) -> Result<Vec<Param<'_>>, AuthError> {
    let s = input.as_bytes();
    let mut out: Vec<Param<'_>> = Vec::with_capacity(12);
    loop {
        // Empty list elements (",,") are legal in the #rule; skip them.
        while i < s.len() && (is_lws(s[i]) || s[i] == b',') {
            i += 1;
        }
        if i == s.len() {
            break;
        }
        let name_start = i;
        while i < s.len() && is_token_byte(s[i]) {
            i += 1;
        }
        if i == name_start {
            return Err(malformed("expected parameter name"));
        }
        let name = &input[name_start..i];
        i = skip_lws(s, i);
        if s.get(i) != Some(&b'=') {
            return Err(malformed("expected '=' after parameter name"));
        }
        i = skip_lws(s, i + 1);
        let value;
        if s.get(i) == Some(&b'"') {
            let (v, next) = quoted(input, i + 1)?;
            value = v;
            i = next;
        } else {
            let value_start = i;
            while i < s.len() && is_bare_value_byte(s[i]) {
                i += 1;
            }
            if i == value_start {
                return Err(malformed("empty parameter value"));
            }
            value = Cow::Borrowed(&input[value_start..i]);
        }
        i = skip_lws(s, i);
        if i < s.len() && s[i] != b',' {
            return Err(malformed("expected ',' between parameters"));
        }
        if out.len() == MAX_PARAMS {
            return Err(malformed("too many parameters"));
        }
        if out.iter().any(|p| p.name.eq_ignore_ascii_case(name)) {
            return Err(malformed("duplicate parameter"));
        }
        out.push(Param { name, value });
    }
    if out.is_empty() {
        return Err(malformed("no parameters"));
    }
    Ok(out)
}

/// Reads a quoted-string body starting just after the opening quote;
/// returns the unescaped value and the index after the closing quote.
fn quoted(input: &str, start: usize) -> Result<(Cow<'_, str>, usize), AuthError> {
    let s = input.as_bytes();
    let mut i = start;
    // Borrow when there is nothing to unescape, which is the usual case.
    let mut owned: Option<Vec<u8>> = None;
    let mut run_start = start;
    while i < s.len() {
        match s[i] {
            b'"' => {
                let value = match owned {
                    None => Cow::Borrowed(&input[start..i]),
                    Some(mut buf) => {
                        buf.extend_from_slice(&s[run_start..i]);
                        // Escapes only drop ASCII backslashes, so this holds.
                        Cow::Owned(String::from_utf8(buf).map_err(|_| malformed("invalid UTF-8"))?)
                    }
                };
                return Ok((value, i + 1));
            }
            b'\\' => {
                // quoted-pair allows escaped controls too, but nothing honest
                // sends them and they could not be written back out.
                let escaped = *s
                    .get(i + 1)
                    .ok_or(malformed("unterminated quoted string"))?;
                if !(escaped == b'\t' || (0x20..0x7f).contains(&escaped)) {
                    return Err(malformed("bad escape in quoted string"));
                }
                let buf = owned.get_or_insert_with(Vec::new);
                buf.extend_from_slice(&s[run_start..i]);
                buf.push(escaped);
                i += 2;
                run_start = i;
            }
            b if (b < 0x20 && b != b'\t') || b == 0x7f => {
                return Err(malformed("control character in quoted string"));
            }
            _ => i += 1,
        }
    }
    Err(malformed("unterminated quoted string"))
}

/// Writes `"value"` with `"` and `\` escaped. Control characters are
/// dropped: CR/LF cannot be escaped and would let a value inject headers.
pub(super) fn write_quoted(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    f.write_str("\"")?;
    write_escaped(f, value)?;
    f.write_str("\"")
}

/// The inside of a quoted-string, without the quotes.
pub(super) fn write_escaped(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    let mut rest = value;
    while let Some(pos) = rest.find(|c: char| c == '"' || c == '\\' || c.is_ascii_control()) {
        f.write_str(&rest[..pos])?;
        let c = rest.as_bytes()[pos];
        if c == b'"' || c == b'\\' {
            write!(f, "\\{}", c as char)?;
        } else if c == b'\t' {
            f.write_str("\t")?;
        }
        rest = &rest[pos + 1..];
    }
    f.write_str(rest)
}

/// Writes a value bare when it is a token, quoted otherwise.
pub(super) fn write_value(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    if !value.is_empty() && value.bytes().all(is_token_byte) {
        f.write_str(value)
    } else {
        write_quoted(f, value)
    }
}

/// Writes an unknown parameter, skipping names that are not tokens (they
/// could only come from a caller-built value and would break the header).
pub(super) fn write_extra(f: &mut fmt::Formatter<'_>, name: &str, value: &str) -> fmt::Result {
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Ok(());
    }
    write!(f, ", {name}=")?;
    write_value(f, value)
}
