//! Input checks done before anything reaches SQL, so bad input gets a clear
//! `Error::Invalid` instead of a database error or a stored oddity.

use crate::error::{Error, Result};

fn plain(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && !s.chars().any(char::is_control)
}

pub(crate) fn tenant_name(s: &str) -> Result<()> {
    if plain(s, 128) && s.trim() == s {
        Ok(())
    } else {
        Err(Error::Invalid(
            "tenant name must be 1-128 bytes, without control characters or edge spaces",
        ))
    }
}

/// Returns the domain lower-cased: SIP host names compare case-insensitively
/// (RFC 3261 §19.1.4), and the UNIQUE constraint then does too.
pub(crate) fn domain(s: &str) -> Result<String> {
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if ok {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(Error::Invalid(
            "SIP domain must be 1-253 bytes of letters, digits, '.', '-' (or an IP address)",
        ))
    }
}

pub(crate) fn username(s: &str) -> Result<()> {
    // ':' and '@' would make "user:realm:password" and user@host ambiguous.
    let ok = plain(s, 128) && !s.chars().any(|c| c.is_whitespace() || c == ':' || c == '@');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(
            "username must be 1-128 bytes, without spaces, control characters, ':' or '@'",
        ))
    }
}

/// A dialable number: an optional '+' then 1-32 digits (E.164 or a short extension).
pub(crate) fn number(s: &str) -> Result<()> {
    let digits = s.strip_prefix('+').unwrap_or(s);
    if !digits.is_empty() && digits.len() <= 32 && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(Error::Invalid(
            "number must be 1-32 digits, optionally after a '+'",
        ))
    }
}

pub(crate) fn password(s: &str) -> Result<()> {
    if plain(s, 256) {
        Ok(())
    } else {
        Err(Error::Invalid(
            "password must be 1-256 bytes without control characters",
        ))
    }
}

/// Free text such as a display name, a Contact URI or a User-Agent.
pub(crate) fn text(s: &str, max: usize, what: &'static str) -> Result<()> {
    if plain(s, max) {
        Ok(())
    } else {
        Err(Error::Invalid(what))
    }
}

pub(crate) fn optional_text(s: Option<&str>, max: usize, what: &'static str) -> Result<()> {
    s.map_or(Ok(()), |s| text(s, max, what))
}

pub(crate) fn to_i64(v: u64, what: &'static str) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::Invalid(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_lowercased_and_checked() {
        assert_eq!(domain("Example.COM").ok().as_deref(), Some("example.com"));
        assert_eq!(
            domain("[2001:DB8::1]").ok().as_deref(),
            Some("[2001:db8::1]")
        );
        assert!(domain("").is_err());
        assert!(domain("a b").is_err());
        assert!(domain("a\u{7}b").is_err());
        assert!(domain(&"a".repeat(254)).is_err());
    }

    #[test]
    fn usernames_numbers_names() {
        assert!(username("alice").is_ok());
        assert!(username("al:ice").is_err());
        assert!(username("al ice").is_err());
        assert!(username("").is_err());
        assert!(number("+4930123").is_ok());
        assert!(number("1001").is_ok());
        assert!(number("+").is_err());
        assert!(number("12a").is_err());
        assert!(tenant_name("Acme").is_ok());
        assert!(tenant_name(" Acme").is_err());
        assert!(tenant_name("Ac\nme").is_err());
    }
}
