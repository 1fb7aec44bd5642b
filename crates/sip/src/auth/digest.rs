//! The digest computations (RFC 7616 §3.4) and the client side.

use md5::Md5;
use rand::RngCore;
use sha2::{Digest, Sha256, Sha512_256};

use super::{Algorithm, AuthError, Challenge, Credentials, Qop};

enum Hasher {
    Md5(Md5),
    Sha256(Sha256),
    Sha512_256(Sha512_256),
}

impl Hasher {
    fn new(alg: Algorithm) -> Self {
        match alg.base() {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512_256 => Hasher::Sha512_256(Sha512_256::new()),
            _ => Hasher::Md5(Md5::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Md5(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512_256(h) => h.update(data),
        }
    }

    fn hex(self) -> String {
        match self {
            Hasher::Md5(h) => to_hex(&h.finalize()),
            Hasher::Sha256(h) => to_hex(&h.finalize()),
            Hasher::Sha512_256(h) => to_hex(&h.finalize()),
        }
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 0xf)] as char);
    }
    s
}

/// `H(p0 ":" p1 ":" ...)` in lowercase hex.
pub(super) fn h(alg: Algorithm, parts: &[&[u8]]) -> String {
    let mut hasher = Hasher::new(alg);
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update(b":");
        }
        hasher.update(p);
    }
    hasher.hex()
}

/// `H(username:realm:password)`, the value a subscriber table stores.
///
/// For the `-sess` algorithms this is still the plain HA1 (of the base hash);
/// the per-session value is derived from it at verification time, so one
/// stored value serves both `MD5` and `MD5-sess`.
pub fn ha1(alg: Algorithm, username: &str, realm: &str, password: &str) -> String {
    h(
        alg,
        &[username.as_bytes(), realm.as_bytes(), password.as_bytes()],
    )
}

/// `H(username:realm)`, sent in place of the username when `userhash=true`
/// (RFC 7616 §3.4.4).
pub fn userhash(alg: Algorithm, username: &str, realm: &str) -> String {
    h(alg, &[username.as_bytes(), realm.as_bytes()])
}

/// A fresh client nonce: 12 random bytes, base64url (16 characters).
pub fn new_cnonce<R: RngCore + ?Sized>(rng: &mut R) -> String {
    let mut bytes = [0u8; 12];
    rng.fill_bytes(&mut bytes);
    super::server::base64url(&bytes)
}

/// Everything the request digest covers, borrowed from the request.
pub(super) struct DigestInput<'a> {
    pub alg: Algorithm,
    /// Plain HA1, lowercase hex.
    pub ha1: &'a str,
    pub nonce: &'a str,
    pub qop: Option<&'a Qop>,
    pub nc: Option<u32>,
    pub cnonce: Option<&'a str>,
    pub method: &'a str,
    pub uri: &'a str,
    pub body: Option<&'a [u8]>,
}

/// The `response` value (RFC 7616 §3.4.1, RFC 2617 §3.2.2.1).
pub(super) fn request_digest(d: &DigestInput<'_>) -> Result<String, AuthError> {
    let alg = d.alg;
    let session_ha1;
    let ha1 = if alg.is_sess() {
        let cnonce = d
            .cnonce
            .ok_or(AuthError::Malformed("-sess algorithm without cnonce"))?;
        session_ha1 = h(
            alg,
            &[d.ha1.as_bytes(), d.nonce.as_bytes(), cnonce.as_bytes()],
        );
        session_ha1.as_str()
    } else {
        d.ha1
    };
    let ha2 = match d.qop {
        None | Some(Qop::Auth) => h(alg, &[d.method.as_bytes(), d.uri.as_bytes()]),
        Some(Qop::AuthInt) => {
            let body_hash = h(alg, &[d.body.unwrap_or_default()]);
            h(
                alg,
                &[d.method.as_bytes(), d.uri.as_bytes(), body_hash.as_bytes()],
            )
        }
        Some(Qop::Other(_)) => return Err(AuthError::Malformed("unsupported qop")),
    };
    match d.qop {
        None => Ok(h(
            alg,
            &[ha1.as_bytes(), d.nonce.as_bytes(), ha2.as_bytes()],
        )),
        Some(qop) => {
            let nc = d.nc.ok_or(AuthError::Malformed("qop without nc"))?;
            let cnonce = d.cnonce.ok_or(AuthError::Malformed("qop without cnonce"))?;
            let nc = format!("{nc:08x}");
            Ok(h(
                alg,
                &[
                    ha1.as_bytes(),
                    d.nonce.as_bytes(),
                    nc.as_bytes(),
                    cnonce.as_bytes(),
                    qop.as_str().as_bytes(),
                    ha2.as_bytes(),
                ],
            ))
        }
    }
}

/// Answers `challenge` as a UAC.
///
/// Picks `qop=auth` when offered, else `auth-int` (over `body`, empty when
/// `None`), else no qop if the challenge offers none (RFC 2069 style).
/// Echoes `opaque`, uses the challenge's algorithm, and hashes the username
/// when the challenge asks for `userhash`. `cnonce` and `nc` (starting at 1,
/// incremented by the caller for each reuse of the nonce) are used only when
/// a qop or a `-sess` algorithm needs them.
#[allow(clippy::too_many_arguments)] // mirrors the digest's own inputs
pub fn respond(
    challenge: &Challenge,
    username: &str,
    password: &str,
    method: &str,
    uri: &str,
    body: Option<&[u8]>,
    cnonce: &str,
    nc: u32,
) -> Result<Credentials, AuthError> {
    let alg = challenge.algorithm();
    let qop = if challenge.qop.contains(&Qop::Auth) {
        Some(Qop::Auth)
    } else if challenge.qop.contains(&Qop::AuthInt) {
        Some(Qop::AuthInt)
    } else if challenge.qop.is_empty() {
        None
    } else {
        return Err(AuthError::Malformed("no supported qop offered"));
    };
    let needs_cnonce = qop.is_some() || alg.is_sess();
    if needs_cnonce && cnonce.is_empty() {
        return Err(AuthError::Malformed("empty cnonce"));
    }
    if qop.is_some() && nc == 0 {
        return Err(AuthError::Malformed("nc starts at 1"));
    }
    let realm = challenge.realm.as_str();
    let plain_ha1 = ha1(alg, username, realm, password);
    let response = request_digest(&DigestInput {
        alg,
        ha1: &plain_ha1,
        nonce: &challenge.nonce,
        qop: qop.as_ref(),
        nc: Some(nc),
        cnonce: Some(cnonce),
        method,
        uri,
        body,
    })?;
    Ok(Credentials {
        username: if challenge.userhash {
            userhash(alg, username, realm)
        } else {
            username.to_owned()
        },
        realm: realm.to_owned(),
        nonce: challenge.nonce.clone(),
        uri: uri.to_owned(),
        response,
        algorithm: challenge.algorithm,
        cnonce: needs_cnonce.then(|| cnonce.to_owned()),
        opaque: challenge.opaque.clone(),
        nc: qop.is_some().then_some(nc),
        qop,
        userhash: challenge.userhash,
        extra: Vec::new(),
    })
}
