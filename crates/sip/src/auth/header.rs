//! `Challenge` (WWW-Authenticate / Proxy-Authenticate) and `Credentials`
//! (Authorization / Proxy-Authorization) header values.

use std::fmt;
use std::str::FromStr;

use super::params::{self, write_extra, write_quoted};
use super::{Algorithm, AuthError, Qop};

/// A Digest challenge, as sent in `WWW-Authenticate`/`Proxy-Authenticate`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    /// `None` when absent, which means MD5.
    pub algorithm: Option<Algorithm>,
    /// Offered qop values; empty means RFC 2069 style (no qop).
    pub qop: Vec<Qop>,
    pub stale: bool,
    pub domain: Option<String>,
    pub userhash: bool,
    pub charset: Option<String>,
    /// Unknown parameters, in order, names as received.
    pub extra: Vec<(String, String)>,
}

/// Digest credentials, as sent in `Authorization`/`Proxy-Authorization`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// The username, or `H(username:realm)` when `userhash` is set.
    pub username: String,
    pub realm: String,
    pub nonce: String,
    /// The digest-uri; the brain compares it with the Request-URI.
    pub uri: String,
    pub response: String,
    /// `None` when absent, which means MD5.
    pub algorithm: Option<Algorithm>,
    pub cnonce: Option<String>,
    pub opaque: Option<String>,
    pub qop: Option<Qop>,
    /// Nonce count; written as 8 lowercase hex digits.
    pub nc: Option<u32>,
    pub userhash: bool,
    /// Unknown parameters (e.g. `username*`), in order, names as received.
    pub extra: Vec<(String, String)>,
}

fn is_true(v: &str) -> bool {
    v.eq_ignore_ascii_case("true")
}

fn parse_algorithm(v: &str) -> Result<Algorithm, AuthError> {
    Algorithm::from_token(v).ok_or(AuthError::UnsupportedAlgorithm)
}

/// `nc-value = 8LHEX`. Uppercase is tolerated; other lengths are not,
/// because the digest is computed over the exact 8-digit form.
fn parse_nc(v: &str) -> Result<u32, AuthError> {
    if v.len() != 8 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AuthError::Malformed("nc is not 8 hex digits"));
    }
    u32::from_str_radix(v, 16).map_err(|_| AuthError::Malformed("nc is not 8 hex digits"))
}

impl Challenge {
    /// Parses a challenge header value such as
    /// `Digest realm="example.com", nonce="...", qop="auth"`.
    ///
    /// An unknown `algorithm` gives `UnsupportedAlgorithm`: RFC 7616 says
    /// such a challenge is to be ignored in favour of another.
    pub fn parse(s: &str) -> Result<Self, AuthError> {
        let mut c = Challenge::default();
        let (mut realm, mut nonce) = (false, false);
        for p in params::parse(s)? {
            let v = p.value;
            let n = p.name;
            if n.eq_ignore_ascii_case("realm") {
                c.realm = v.into_owned();
                realm = true;
            } else if n.eq_ignore_ascii_case("nonce") {
                c.nonce = v.into_owned();
                nonce = true;
            } else if n.eq_ignore_ascii_case("opaque") {
                c.opaque = Some(v.into_owned());
            } else if n.eq_ignore_ascii_case("algorithm") {
                c.algorithm = Some(parse_algorithm(&v)?);
            } else if n.eq_ignore_ascii_case("qop") {
                // qop-options is a quoted comma list; a bare token is tolerated.
                c.qop = v
                    .split(',')
                    .map(|t| t.trim_matches([' ', '\t', '\r', '\n']))
                    .filter(|t| !t.is_empty())
                    .map(Qop::from_token)
                    .collect();
            } else if n.eq_ignore_ascii_case("stale") {
                c.stale = is_true(&v);
            } else if n.eq_ignore_ascii_case("domain") {
                c.domain = Some(v.into_owned());
            } else if n.eq_ignore_ascii_case("userhash") {
                c.userhash = is_true(&v);
            } else if n.eq_ignore_ascii_case("charset") {
                c.charset = Some(v.into_owned());
            } else {
                c.extra.push((n.to_owned(), v.into_owned()));
            }
        }
        if !realm {
            return Err(AuthError::Malformed("challenge without realm"));
        }
        if !nonce {
            return Err(AuthError::Malformed("challenge without nonce"));
        }
        Ok(c)
    }

    /// The algorithm in force (MD5 when none was given).
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm.unwrap_or(Algorithm::Md5)
    }
}

impl FromStr for Challenge {
    type Err = AuthError;
    fn from_str(s: &str) -> Result<Self, AuthError> {
        Self::parse(s)
    }
}

impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digest realm=")?;
        write_quoted(f, &self.realm)?;
        if let Some(domain) = &self.domain {
            f.write_str(", domain=")?;
            write_quoted(f, domain)?;
        }
        f.write_str(", nonce=")?;
        write_quoted(f, &self.nonce)?;
        if let Some(opaque) = &self.opaque {
            f.write_str(", opaque=")?;
            write_quoted(f, opaque)?;
        }
        if self.stale {
            f.write_str(", stale=true")?;
        }
        if let Some(alg) = self.algorithm {
            write!(f, ", algorithm={alg}")?;
        }
        // Items holding a comma could not be read back as one item; parsing
        // never produces them, so they are simply left out.
        let mut qops = self
            .qop
            .iter()
            .map(Qop::as_str)
            .filter(|q| !q.is_empty() && !q.contains(','))
            .peekable();
        if qops.peek().is_some() {
            f.write_str(", qop=\"")?;
            for (i, q) in qops.enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                params::write_escaped(f, q)?;
            }
            f.write_str("\"")?;
        }
        if let Some(charset) = &self.charset {
            f.write_str(", charset=")?;
            params::write_value(f, charset)?;
        }
        if self.userhash {
            f.write_str(", userhash=true")?;
        }
        for (n, v) in &self.extra {
            write_extra(f, n, v)?;
        }
        Ok(())
    }
}

impl Credentials {
    /// Parses a credentials header value such as
    /// `Digest username="alice", realm="example.com", nonce="...", ...`.
    ///
    /// `username`, `realm`, `nonce`, `uri` and `response` are required. The
    /// consistency of qop/nc/cnonce is checked by [`super::DigestServer::verify`].
    pub fn parse(s: &str) -> Result<Self, AuthError> {
        let mut c = Credentials::default();
        let mut seen = [false; 5];
        for p in params::parse(s)? {
            let v = p.value;
            let n = p.name;
            if n.eq_ignore_ascii_case("username") {
                c.username = v.into_owned();
                seen[0] = true;
            } else if n.eq_ignore_ascii_case("realm") {
                c.realm = v.into_owned();
                seen[1] = true;
            } else if n.eq_ignore_ascii_case("nonce") {
                c.nonce = v.into_owned();
                seen[2] = true;
            } else if n.eq_ignore_ascii_case("uri") {
                c.uri = v.into_owned();
                seen[3] = true;
            } else if n.eq_ignore_ascii_case("response") {
                c.response = v.into_owned();
                seen[4] = true;
            } else if n.eq_ignore_ascii_case("algorithm") {
                c.algorithm = Some(parse_algorithm(&v)?);
            } else if n.eq_ignore_ascii_case("cnonce") {
                c.cnonce = Some(v.into_owned());
            } else if n.eq_ignore_ascii_case("opaque") {
                c.opaque = Some(v.into_owned());
            } else if n.eq_ignore_ascii_case("qop") {
                // Some old clients quote it; the lexer already unquoted.
                c.qop = Some(Qop::from_token(v.trim()));
            } else if n.eq_ignore_ascii_case("nc") {
                c.nc = Some(parse_nc(&v)?);
            } else if n.eq_ignore_ascii_case("userhash") {
                c.userhash = is_true(&v);
            } else {
                c.extra.push((n.to_owned(), v.into_owned()));
            }
        }
        const MISSING: [&str; 5] = [
            "credentials without username",
            "credentials without realm",
            "credentials without nonce",
            "credentials without uri",
            "credentials without response",
        ];
        if let Some(i) = seen.iter().position(|s| !s) {
            return Err(AuthError::Malformed(MISSING[i]));
        }
        Ok(c)
    }

    /// The algorithm in force (MD5 when none was given).
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm.unwrap_or(Algorithm::Md5)
    }
}

impl FromStr for Credentials {
    type Err = AuthError;
    fn from_str(s: &str) -> Result<Self, AuthError> {
        Self::parse(s)
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digest username=")?;
        write_quoted(f, &self.username)?;
        f.write_str(", realm=")?;
        write_quoted(f, &self.realm)?;
        f.write_str(", nonce=")?;
        write_quoted(f, &self.nonce)?;
        f.write_str(", uri=")?;
        write_quoted(f, &self.uri)?;
        f.write_str(", response=")?;
        write_quoted(f, &self.response)?;
        if let Some(alg) = self.algorithm {
            write!(f, ", algorithm={alg}")?;
        }
        if let Some(cnonce) = &self.cnonce {
            f.write_str(", cnonce=")?;
            write_quoted(f, cnonce)?;
        }
        if let Some(opaque) = &self.opaque {
            f.write_str(", opaque=")?;
            write_quoted(f, opaque)?;
        }
        if let Some(qop) = &self.qop {
            // RFC 3261 writes message-qop as a bare token.
            f.write_str(", qop=")?;
            params::write_value(f, qop.as_str())?;
        }
        if let Some(nc) = self.nc {
            write!(f, ", nc={nc:08x}")?;
        }
        if self.userhash {
            f.write_str(", userhash=true")?;
        }
        for (n, v) in &self.extra {
            write_extra(f, n, v)?;
        }
        Ok(())
    }
}
