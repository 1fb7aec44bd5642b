//! The registrar/proxy side: stateless expiring nonces and verification.
//!
//! A nonce is `base64url(ts ‖ random ‖ mac)`: an 8-byte big-endian
//! timestamp, 16 random bytes and the first 16 bytes of
//! HMAC-SHA256(secret, label ‖ ts ‖ random ‖ realm). Any brain holding the
//! secret can check it without having stored it, so nonces survive a
//! failover to the standby. The only state is the replay table, which
//! remembers the highest nonce count seen per nonce until the nonce expires.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Mutex, PoisonError};

use hmac::{Hmac, Mac};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use sha2::Sha256;

use super::digest::{DigestInput, request_digest};
use super::{Algorithm, AuthError, Challenge, Credentials, Qop};

/// How long a nonce stays fresh, in seconds.
pub const DEFAULT_NONCE_LIFETIME: u64 = 300;
/// How many nonces the replay table tracks before evicting.
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;

const TS_LEN: usize = 8;
const RANDOM_LEN: usize = 16;
const MAC_LEN: usize = 16;
const NONCE_LEN: usize = TS_LEN + RANDOM_LEN + MAC_LEN;
/// Domain separation, so the secret can't be confused with other MAC uses.
const MAC_LABEL: &[u8] = b"tandem sip digest nonce v1";

/// Issues challenges and verifies credentials for one realm.
///
/// Shareable between threads (`&self` everywhere); the replay table and the
/// nonce RNG sit behind their own short-held mutexes.
pub struct DigestServer {
    realm: String,
    mac: Hmac<Sha256>,
    lifetime: u64,
    /// Bit i set = `Algorithm::ALL[i]` accepted.
    accepted: u8,
    rng: Mutex<StdRng>,
    seen: Mutex<ReplayTable>,
}

impl fmt::Debug for DigestServer {
    // By hand, so the key never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestServer")
            .field("realm", &self.realm)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

fn alg_bit(alg: Algorithm) -> u8 {
    let i = Algorithm::ALL.iter().position(|a| *a == alg).unwrap_or(0);
    1 << i
}

impl DigestServer {
    /// A server for `realm` whose nonces are keyed by `secret` (share it with
    /// the standby brain; 32 random bytes is plenty). Nonce randomness comes
    /// from an RNG seeded from the thread RNG.
    pub fn new(realm: impl Into<String>, secret: &[u8]) -> Self {
        Self::with_rng(realm.into(), secret, StdRng::from_rng(&mut rand::rng()))
    }

    /// Like [`DigestServer::new`] but with a deterministic RNG (tests, replays).
    pub fn with_seed(realm: impl Into<String>, secret: &[u8], seed: u64) -> Self {
        Self::with_rng(realm.into(), secret, StdRng::seed_from_u64(seed))
    }

    fn with_rng(realm: String, secret: &[u8], rng: StdRng) -> Self {
        let mac = match <Hmac<Sha256> as Mac>::new_from_slice(secret) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        DigestServer {
            realm,
            mac,
            lifetime: DEFAULT_NONCE_LIFETIME,
            accepted: u8::MAX,
            rng: Mutex::new(rng),
            seen: Mutex::new(ReplayTable::new(DEFAULT_REPLAY_CAPACITY)),
        }
    }

    /// Sets the nonce lifetime in seconds (default 300).
    pub fn with_lifetime(mut self, seconds: u64) -> Self {
        self.lifetime = seconds;
        self
    }

    /// Sets how many nonces the replay table tracks (default 100 000).
    pub fn with_replay_capacity(mut self, capacity: usize) -> Self {
        self.seen = Mutex::new(ReplayTable::new(capacity));
        self
    }

    /// Restricts the algorithms `verify` accepts (default: all).
    pub fn with_algorithms(mut self, algorithms: &[Algorithm]) -> Self {
        self.accepted = algorithms.iter().fold(0, |m, a| m | alg_bit(*a));
        self
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    pub fn lifetime(&self) -> u64 {
        self.lifetime
    }

    /// How many nonces the replay table currently remembers.
    pub fn tracked_nonces(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map
            .len()
    }

    /// A fresh challenge offering `qop="auth"`. Pass `stale = true` after a
    /// `Stale` error so the phone retries without asking its user.
    pub fn challenge(&self, now: u64, algorithm: Algorithm, stale: bool) -> Challenge {
        Challenge {
            realm: self.realm.clone(),
            nonce: self.new_nonce(now),
            algorithm: Some(algorithm),
            qop: vec![Qop::Auth],
            stale,
            ..Challenge::default()
        }
    }

    fn nonce_mac(&self, ts_and_random: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(MAC_LABEL);
        mac.update(ts_and_random);
        mac.update(self.realm.as_bytes());
        mac
    }

    fn new_nonce(&self, now: u64) -> String {
        let mut raw = [0u8; NONCE_LEN];
        raw[..TS_LEN].copy_from_slice(&now.to_be_bytes());
        self.rng
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .fill_bytes(&mut raw[TS_LEN..TS_LEN + RANDOM_LEN]);
        let tag = self.nonce_mac(&raw[..TS_LEN + RANDOM_LEN]).finalize();
        raw[TS_LEN + RANDOM_LEN..].copy_from_slice(&tag.into_bytes()[..MAC_LEN]);
        base64url(&raw)
    }

    /// Checks the MAC (constant time) and splits out timestamp and key.
    fn open_nonce(&self, nonce: &str) -> Result<(u64, u128), AuthError> {
        let raw: [u8; NONCE_LEN] = base64url_decode(nonce).ok_or(AuthError::BadNonce)?;
        let (body, tag) = raw.split_at(TS_LEN + RANDOM_LEN);
        self.nonce_mac(body)
            .verify_truncated_left(tag)
            .map_err(|_| AuthError::BadNonce)?;
        let (ts, random) = body.split_at(TS_LEN);
        let ts = u64::from_be_bytes(ts.try_into().map_err(|_| AuthError::BadNonce)?);
        let key = u128::from_be_bytes(random.try_into().map_err(|_| AuthError::BadNonce)?);
        Ok((ts, key))
    }

    /// Verifies `creds` for a request with `method` (and `body`, used only
    /// for `qop=auth-int`), given the subscriber's plain HA1 in hex (see
    /// [`super::ha1`]; for `-sess` pass the same plain HA1).
    ///
    /// The checks run in an order that keeps the errors honest: `Stale` only
    /// for a correct digest (so a wrong password is never retried silently),
    /// and the replay table is only written once the digest is proven, so a
    /// forger cannot burn nonce counts for a real phone.
    ///
    /// The caller still compares `creds.uri` with the Request-URI and looks
    /// up `creds.username` (a hash when `creds.userhash`).
    pub fn verify(
        &self,
        now: u64,
        method: &str,
        creds: &Credentials,
        ha1: &str,
        body: Option<&[u8]>,
    ) -> Result<(), AuthError> {
        if creds.uri.is_empty() {
            return Err(AuthError::Malformed("missing uri"));
        }
        if creds.realm != self.realm {
            return Err(AuthError::WrongRealm);
        }
        let alg = creds.algorithm();
        // A HA1 of the wrong size means the store holds another algorithm's
        // hash for this user: challenge again with one we can check.
        if self.accepted & alg_bit(alg) == 0 || ha1.len() != alg.hex_len() {
            return Err(AuthError::UnsupportedAlgorithm);
        }
        let nc = match &creds.qop {
            None => None,
            Some(Qop::Auth | Qop::AuthInt) => {
                match creds.cnonce.as_deref() {
                    None | Some("") => return Err(AuthError::Malformed("qop without cnonce")),
                    Some(_) => {}
                }
                match creds.nc {
                    None => return Err(AuthError::Malformed("qop without nc")),
                    Some(0) => return Err(AuthError::Malformed("nc starts at 1")),
                    Some(nc) => Some(nc),
                }
            }
            Some(Qop::Other(_)) => return Err(AuthError::Malformed("unsupported qop")),
        };
        let (ts, key) = self.open_nonce(&creds.nonce)?;

        // Stores may hand back uppercase hex; the digest is over lowercase.
        let lower;
        let ha1 = if ha1.bytes().any(|b| b.is_ascii_uppercase()) {
            lower = ha1.to_ascii_lowercase();
            lower.as_str()
        } else {
            ha1
        };
        let expected = request_digest(&DigestInput {
            alg,
            ha1,
            nonce: &creds.nonce,
            qop: creds.qop.as_ref(),
            nc: creds.nc,
            cnonce: creds.cnonce.as_deref(),
            method,
            uri: &creds.uri,
            body,
        })?;
        if !hex_eq_ct(expected.as_bytes(), creds.response.as_bytes()) {
            return Err(AuthError::BadResponse);
        }
        if expired(ts, now, self.lifetime) {
            return Err(AuthError::Stale);
        }
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(now, self.lifetime, key, ts, nc)
    }
}

/// Outside the lifetime on either side: a nonce from the far future means a
/// clock jumped back, and is not trusted to be fresh either.
fn expired(ts: u64, now: u64, lifetime: u64) -> bool {
    ts.abs_diff(now) > lifetime
}

/// Constant-time comparison of our lowercase hex with the client's
/// (accepted in either case). Length is public, content is not.
fn hex_eq_ct(expected: &[u8], got: &[u8]) -> bool {
    if expected.len() != got.len() {
        return false;
    }
    let diff = expected
        .iter()
        .zip(got)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b.to_ascii_lowercase()));
    std::hint::black_box(diff) == 0
}

/// Marks a nonce used without qop: any later use is a replay.
const USED_WITHOUT_QOP: u32 = u32::MAX;

/// Highest nonce count per nonce, bounded. Entries go in first-use order;
/// expired ones are dropped from the front, and at capacity the oldest is
/// evicted even if live. Evicting a live entry would let its old counts be
/// replayed, so the newest timestamp among such victims is kept as a
/// watermark: unknown nonces at or below it are answered `Stale`, which
/// costs an honest phone one silent retry.
struct ReplayTable {
    capacity: usize,
    map: HashMap<u128, u32>,
    order: VecDeque<(u128, u64)>,
    watermark: Option<u64>,
}

impl ReplayTable {
    fn new(capacity: usize) -> Self {
        ReplayTable {
            capacity: capacity.max(1),
            map: HashMap::new(),
            order: VecDeque::new(),
            watermark: None,
        }
    }

    fn record(
        &mut self,
        now: u64,
        lifetime: u64,
        key: u128,
        ts: u64,
        nc: Option<u32>,
    ) -> Result<(), AuthError> {
        if let Some(last) = self.map.get_mut(&key) {
            return match nc {
                Some(nc) if *last != USED_WITHOUT_QOP && nc > *last => {
                    *last = nc;
                    Ok(())
                }
                _ => Err(AuthError::Replay),
            };
        }
        if self.watermark.is_some_and(|w| ts <= w) {
            return Err(AuthError::Stale);
        }
        while let Some(&(old, old_ts)) = self.order.front() {
            if !expired(old_ts, now, lifetime) {
                break;
            }
            self.order.pop_front();
            self.map.remove(&old);
        }
        while self.map.len() >= self.capacity {
            let Some((old, old_ts)) = self.order.pop_front() else {
                break;
            };
            self.map.remove(&old);
            if !expired(old_ts, now, lifetime) {
                self.watermark = Some(self.watermark.map_or(old_ts, |w| w.max(old_ts)));
            }
        }
        self.map.insert(key, nc.unwrap_or(USED_WITHOUT_QOP));
        self.order.push_back((key, ts));
        Ok(())
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Unpadded base64url: compact, and safe bare or quoted in a header.
pub(super) fn base64url(bytes: &[u8]) -> String {
    let mut out = String::with_capacity((bytes.len() * 4).div_ceil(3));
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

fn b64_value(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Decodes exactly `N` bytes; rejects other lengths and non-zero trailing
/// bits, so each nonce has exactly one spelling.
fn base64url_decode<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.as_bytes();
    if s.len() != (N * 4).div_ceil(3) {
        return None;
    }
    let mut out = [0u8; N];
    let (mut acc, mut bits, mut o) = (0u32, 0u32, 0usize);
    for &c in s {
        acc = (acc << 6) | b64_value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            *out.get_mut(o)? = (acc >> bits) as u8;
            o += 1;
            acc &= (1 << bits) - 1;
        }
    }
    (acc == 0 && o == N).then_some(out)
}
