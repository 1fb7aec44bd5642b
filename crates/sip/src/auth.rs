//! Digest authentication for SIP (RFC 3261 §22, RFC 8760), built on HTTP
//! Digest (RFC 7616, RFC 2617, with RFC 2069 no-qop compatibility).
//!
//! - [`Challenge`] and [`Credentials`] parse and format the values of
//!   `WWW-Authenticate`/`Proxy-Authenticate` and
//!   `Authorization`/`Proxy-Authorization`.
//! - [`DigestServer`] issues stateless, expiring nonces and verifies
//!   credentials against a stored HA1, with nonce-count replay protection.
//! - [`respond`] answers a challenge as a UAC (tandem toward carriers).
//!
//! Sans-IO: the caller passes `now` in seconds (any epoch, used consistently)
//! and nothing here reads a clock or touches the network.

mod digest;
mod header;
mod params;
mod server;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

pub use digest::{ha1, new_cnonce, respond, userhash};
pub use header::{Challenge, Credentials};
pub use server::{DEFAULT_NONCE_LIFETIME, DEFAULT_REPLAY_CAPACITY, DigestServer};

/// Why a header did not parse or a request did not authenticate.
///
/// The brain maps `Stale` to 401 with a fresh challenge carrying
/// `stale=true`; `BadResponse`, `Replay`, `BadNonce` and
/// `UnsupportedAlgorithm` to 401 with a fresh challenge; `WrongRealm` and
/// `Malformed` to 403 or 400 as it sees fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The nonce is ours and the digest is right, but the nonce is too old.
    #[error("nonce is stale")]
    Stale,
    /// The nonce count was already used with this nonce.
    #[error("nonce count replayed")]
    Replay,
    /// The digest does not match (wrong password, or tampered request).
    #[error("digest response does not match")]
    BadResponse,
    /// The credentials name a realm this server does not serve.
    #[error("credentials are for another realm")]
    WrongRealm,
    /// The nonce was not issued by this server (forged or garbled).
    #[error("nonce was not issued by this server")]
    BadNonce,
    /// The algorithm is unknown, not accepted here, or does not match the
    /// supplied HA1.
    #[error("unsupported digest algorithm")]
    UnsupportedAlgorithm,
    /// The header value is not a well-formed Digest challenge/credential.
    #[error("malformed digest header: {0}")]
    Malformed(&'static str),
}

/// A digest algorithm (RFC 7616 §3.2, RFC 8760).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
    Sha512_256,
    Sha512_256Sess,
}

impl Algorithm {
    pub const ALL: [Algorithm; 6] = [
        Algorithm::Md5,
        Algorithm::Md5Sess,
        Algorithm::Sha256,
        Algorithm::Sha256Sess,
        Algorithm::Sha512_256,
        Algorithm::Sha512_256Sess,
    ];

    /// The token used in headers.
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    /// Parses an algorithm token, case-insensitively.
    pub fn from_token(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
    }

    /// Whether HA1 is re-derived per session from the nonce and cnonce.
    pub const fn is_sess(self) -> bool {
        matches!(
            self,
            Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess
        )
    }

    /// The same hash without session keying.
    pub const fn base(self) -> Self {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => Algorithm::Md5,
            Algorithm::Sha256 | Algorithm::Sha256Sess => Algorithm::Sha256,
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => Algorithm::Sha512_256,
        }
    }

    /// Length of a digest in lowercase hex (32 for MD5, 64 otherwise).
    pub const fn hex_len(self) -> usize {
        match self.base() {
            Algorithm::Md5 => 32,
            _ => 64,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = AuthError;
    fn from_str(s: &str) -> Result<Self, AuthError> {
        Self::from_token(s).ok_or(AuthError::UnsupportedAlgorithm)
    }
}

/// Quality of protection (RFC 7616 §3.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Qop {
    Auth,
    AuthInt,
    /// An unknown token, kept so challenges round-trip.
    Other(String),
}

impl Qop {
    /// Parses a qop token (case-insensitive for the known ones).
    pub fn from_token(s: &str) -> Self {
        if s.eq_ignore_ascii_case("auth") {
            Qop::Auth
        } else if s.eq_ignore_ascii_case("auth-int") {
            Qop::AuthInt
        } else {
            Qop::Other(s.to_owned())
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
            Qop::Other(s) => s,
        }
    }
}

impl fmt::Display for Qop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
