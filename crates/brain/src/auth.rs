//! Digest authentication of subscribers (RFC 3261 §22, RFC 8760), on top of
//! the sans-IO [`sip::auth::DigestServer`].
//!
//! The realm is the tenant's SIP domain, which is also the realm the store
//! computed each subscriber's HA1 with. Nonces are stateless and keyed by the
//! brain's secret, so a standby brain holding the same secret accepts the
//! nonces the active one issued.
//!
//! Policy, in the order a request meets it:
//! - no credentials for our realm: 401 (`WWW-Authenticate`) or, for a proxy
//!   check, 407 (`Proxy-Authenticate`), offering MD5 and SHA-256 — two
//!   header lines in the order of [`Authenticator::with_challenge_order`].
//!   MD5 comes first by default: RFC 8760 §2.4 lets the server order them
//!   by preference, and many phones and test tools (SIPp among them) read
//!   only the first challenge and know only MD5. baresip before 3.12
//!   (libre's SIP client) is the exception that needs more: it reads every
//!   challenge and gives up on the request ("Function not implemented") as
//!   soon as one names an algorithm other than MD5, even after an MD5 one
//!   it could answer. Requests whose User-Agent is such a baresip get the
//!   MD5 challenge alone ([`md5_only_client`]);
//! - a stale nonce with a right digest: the same challenge with `stale=true`,
//!   so the phone retries without asking its user;
//! - a nonce we did not issue (another secret, a garbled header) or an
//!   algorithm we do not check: a fresh challenge. These reveal nothing about
//!   the password, so they cost no budget;
//! - unknown user, wrong password, disabled subscriber, credentials for
//!   another realm, a replayed nonce count, a digest `uri` that is not the
//!   Request-URI, malformed credentials: an offence against the source IP's
//!   budget in the endpoint's guard. While the budget lasts the answer is
//!   403 (400 for malformed credentials) — the same 403 for an unknown user
//!   as for a wrong password, so the answers do not tell which users exist.
//!   Once the budget is spent the source gets silence ([`AuthOutcome::Ignore`])
//!   and the endpoint then drops everything it sends for the ban time;
//! - REGISTER only: the authenticated subscriber may only register its own
//!   address of record, the To user (its username or its number): 403
//!   otherwise (no offence: the caller holds a valid password).

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use sip::auth::{Algorithm, AuthError, Credentials, DigestServer};
use sip::transaction::Peer;
use sip::{HeaderName, Message, Method, Uri};
use sip_transport::endpoint::Endpoint;
use sip_transport::guard::Verdict;
use tracing::{debug, warn};

use crate::metrics::Metrics;

/// What to do with a request after [`Authenticator::check`].
#[derive(Debug)]
pub enum AuthOutcome {
    /// The credentials are good: the request is from this subscriber.
    Authenticated(store::Subscriber),
    /// Send this response (a challenge, 403, 400 or 500) and stop.
    Respond(Box<Message>),
    /// Send nothing: the source has spent its budget.
    Ignore,
}

/// The algorithms we can check: the store keeps MD5 and SHA-256 HA1s.
/// SHA-512-256 is refused at verification, which then re-challenges.
const CHECKED: [Algorithm; 4] = [
    Algorithm::Sha256,
    Algorithm::Sha256Sess,
    Algorithm::Md5,
    Algorithm::Md5Sess,
];

/// Why authentication failed, as it is counted in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    UnknownUser,
    BadResponse,
    Disabled,
    WrongRealm,
    Replay,
    UriMismatch,
    Malformed,
}

impl Failure {
    fn reason(self) -> &'static str {
        match self {
            Failure::UnknownUser => "unknown_user",
            Failure::BadResponse => "bad_response",
            Failure::Disabled => "disabled",
            Failure::WrongRealm => "wrong_realm",
            Failure::Replay => "replay",
            Failure::UriMismatch => "uri_mismatch",
            Failure::Malformed => "malformed",
        }
    }
}

struct Inner {
    store: store::Store,
    /// Cached subscriber lookups, when the brain shares one.
    directory: OnceLock<crate::directory::Directory>,
    endpoint: Endpoint,
    secret: Vec<u8>,
    /// One digest server per realm (tenant domain), made on first use. The
    /// set of realms is the set of tenants, so it stays small.
    servers: Mutex<HashMap<String, Arc<DigestServer>>>,
    metrics: OnceLock<Metrics>,
    /// The challenges offered, most preferred first.
    order: OnceLock<Vec<Algorithm>>,
}

/// Checks digest credentials against the store. Cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

impl fmt::Debug for Authenticator {
    // By hand: the secret must never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Authenticator {
    /// `secret` keys the nonces: share it with the standby brain (32 random
    /// bytes is plenty).
    pub fn new(store: store::Store, endpoint: Endpoint, secret: &[u8]) -> Self {
        Authenticator {
            inner: Arc::new(Inner {
                store,
                directory: OnceLock::new(),
                endpoint,
                secret: secret.to_vec(),
                servers: Mutex::new(HashMap::new()),
                metrics: OnceLock::new(),
                order: OnceLock::new(),
            }),
        }
    }

    /// Counts failures in `tandem_auth_failures_total{reason}`.
    /// Clones made before or after share the setting.
    /// The algorithms to challenge with, most preferred first (RFC 8760
    /// §2.4). Default: MD5, then SHA-256.
    pub fn with_challenge_order(self, order: &[Algorithm]) -> Self {
        let _ = self.inner.order.set(order.to_vec());
        self
    }

    fn order(&self) -> &[Algorithm] {
        self.inner
            .order
            .get()
            .map_or(&[Algorithm::Md5, Algorithm::Sha256], |o| o.as_slice())
    }

    pub fn with_metrics(self, metrics: Metrics) -> Self {
        // Set once; a second call keeps the first registry.
        let _ = self.inner.metrics.set(metrics);
        self
    }

    /// Looks subscribers up through `directory` (and its cache) rather than
    /// straight in the store.
    pub fn with_directory(self, directory: crate::directory::Directory) -> Self {
        let _ = self.inner.directory.set(directory);
        self
    }

    fn server(&self, realm: &str) -> Arc<DigestServer> {
        let mut servers = self
            .inner
            .servers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        servers
            .entry(realm.to_owned())
            .or_insert_with(|| {
                Arc::new(DigestServer::new(realm, &self.inner.secret).with_algorithms(&CHECKED))
            })
            .clone()
    }

    /// Authenticates `req` from `from` as a subscriber of `tenant`.
    /// `proxy` selects 407/`Proxy-Authorization` (INVITE and other requests
    /// the brain routes) over 401/`Authorization` (REGISTER).
    pub async fn check(
        &self,
        req: &Message,
        from: Peer,
        tenant: &store::Tenant,
        proxy: bool,
    ) -> AuthOutcome {
        let realm = tenant.domain.as_str();
        let server = self.server(realm);
        let now = unix_now();
        let header = if proxy {
            HeaderName::ProxyAuthorization
        } else {
            HeaderName::Authorization
        };
        // A request may carry credentials for several realms (proxies on the
        // way); only ours matter.
        let mut ours = None;
        let mut others = 0usize;
        let mut malformed = 0usize;
        for line in req.header_lines(header) {
            match Credentials::parse(line) {
                Ok(c) if c.realm == realm => {
                    ours = Some(c);
                    break;
                }
                Ok(_) => others += 1,
                Err(_) => malformed += 1,
            }
        }
        let Some(creds) = ours else {
            if malformed > 0 {
                return self.fail(req, from.addr.ip(), Failure::Malformed).await;
            }
            if others > 0 {
                return self.fail(req, from.addr.ip(), Failure::WrongRealm).await;
            }
            return challenge(req, &server, self.order(), now, proxy, false);
        };
        if creds.userhash {
            // We never offer userhash, so a client using it is not answering
            // our challenge.
            return self.fail(req, from.addr.ip(), Failure::Malformed).await;
        }

        let found = match self.inner.directory.get() {
            Some(d) => d.find_subscriber(realm, &creds.username).await,
            None => {
                self.inner
                    .store
                    .find_subscriber(realm, &creds.username)
                    .await
            }
        };
        let subscriber = match found {
            Ok(Some(s)) if s.username == creds.username => Some(s),
            // Matched by number: the HA1 is over the username, so the digest
            // cannot be right; treat it as unknown.
            Ok(_) => None,
            Err(e) => {
                warn!(error = %e, "subscriber lookup failed");
                return respond(req, 500, None);
            }
        };
        let Some(subscriber) = subscriber else {
            return self.fail(req, from.addr.ip(), Failure::UnknownUser).await;
        };
        let ha1 = match creds.algorithm().base() {
            Algorithm::Sha256 => subscriber.ha1_sha256.as_str(),
            Algorithm::Md5 => subscriber.ha1_md5.as_str(),
            // Refused by the server as unsupported: a fresh challenge.
            _ => "",
        };
        let method = req.method().map_or("", Method::as_str);
        match server.verify(now, method, &creds, ha1, Some(req.body())) {
            Ok(()) => {}
            Err(AuthError::Stale) => {
                return challenge(req, &server, self.order(), now, proxy, true);
            }
            Err(AuthError::BadNonce | AuthError::UnsupportedAlgorithm) => {
                return challenge(req, &server, self.order(), now, proxy, false);
            }
            Err(AuthError::BadResponse) => {
                return self.fail(req, from.addr.ip(), Failure::BadResponse).await;
            }
            Err(AuthError::Replay) => {
                return self.fail(req, from.addr.ip(), Failure::Replay).await;
            }
            Err(AuthError::WrongRealm) => {
                return self.fail(req, from.addr.ip(), Failure::WrongRealm).await;
            }
            Err(AuthError::Malformed(_)) => {
                return self.fail(req, from.addr.ip(), Failure::Malformed).await;
            }
        }
        // The digest covers `uri`, not the Request-URI: a digest captured
        // for another request must not authorise this one.
        if !uri_matches(req, &creds.uri) {
            return self.fail(req, from.addr.ip(), Failure::UriMismatch).await;
        }
        if !subscriber.enabled {
            return self.fail(req, from.addr.ip(), Failure::Disabled).await;
        }
        if !proxy && req.method() == Some(&Method::Register) && !owns_aor(req, &subscriber) {
            self.count("aor_mismatch");
            return respond(req, 403, Some("Not your address of record"));
        }
        AuthOutcome::Authenticated(subscriber)
    }

    fn count(&self, reason: &'static str) {
        debug!(reason, "authentication refused");
        if let Some(m) = self.inner.metrics.get() {
            m.auth_failure(reason);
        }
    }

    /// Counts an offence for `ip`; 403 (400 for malformed credentials)
    /// while its budget lasts, silence after.
    async fn fail(&self, req: &Message, ip: IpAddr, failure: Failure) -> AuthOutcome {
        self.count(failure.reason());
        warn!(%ip, reason = failure.reason(), "authentication failed");
        match self.inner.endpoint.offence(ip).await {
            Ok(Verdict::Answer) => match failure {
                Failure::Malformed => respond(req, 400, Some("Malformed credentials")),
                _ => respond(req, 403, None),
            },
            Ok(Verdict::Ignore) | Err(_) => AuthOutcome::Ignore,
        }
    }
}

fn respond(req: &Message, code: u16, reason: Option<&str>) -> AuthOutcome {
    let mut resp = Message::response_to(req, code, reason);
    resp.set_to_tag(&sip::ids::new_tag());
    AuthOutcome::Respond(Box::new(resp))
}

/// 401 or 407 with a challenge per algorithm, in `order`.
fn challenge(
    req: &Message,
    server: &DigestServer,
    order: &[Algorithm],
    now: u64,
    proxy: bool,
    stale: bool,
) -> AuthOutcome {
    let (code, header) = if proxy {
        (407, HeaderName::ProxyAuthenticate)
    } else {
        (401, HeaderName::WwwAuthenticate)
    };
    let mut resp = Message::response_to(req, code, None);
    resp.set_to_tag(&sip::ids::new_tag());
    for alg in offered(req, order) {
        resp.push_header(header, server.challenge(now, alg, stale).to_string());
    }
    AuthOutcome::Respond(Box::new(resp))
}

/// The challenges `req` gets: `order`, or only its MD5 ones for a client
/// that fails on any other (unless that leaves none).
fn offered(req: &Message, order: &[Algorithm]) -> Vec<Algorithm> {
    if md5_only_client(req) {
        let md5: Vec<Algorithm> = order
            .iter()
            .copied()
            .filter(|a| a.base() == Algorithm::Md5)
            .collect();
        if !md5.is_empty() {
            return md5;
        }
    }
    order.to_vec()
}

/// A client that gives up when any challenge names an algorithm other than
/// MD5: baresip before 3.12 ("baresip v1.0.0 (x86_64/linux)"), whose libre
/// learnt SHA-256 and to skip unknown challenges in re 3.12 (baresip/re#1103).
fn md5_only_client(req: &Message) -> bool {
    let Some(version) = req
        .header(HeaderName::UserAgent)
        .and_then(|ua| ua.trim_start().strip_prefix("baresip v"))
    else {
        return false;
    };
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    let major = parts.next().and_then(|p| p.parse::<u32>().ok());
    let minor = parts.next().and_then(|p| p.parse::<u32>().ok());
    match (major, minor) {
        (Some(major), Some(minor)) => (major, minor) < (3, 12),
        _ => false,
    }
}

/// The digest `uri` names the Request-URI: byte-equal, or equal by the
/// RFC 3261 §19.1.4 rules (a phone may re-case or re-escape it).
fn uri_matches(req: &Message, digest_uri: &str) -> bool {
    if req
        .request_uri_text()
        .is_some_and(|t| t.as_ref() == digest_uri)
    {
        return true;
    }
    match (req.request_uri(), Uri::parse(digest_uri)) {
        (Some(a), Ok(b)) => a.equivalent(&b),
        _ => false,
    }
}

/// Whether the To user of a REGISTER is this subscriber (username or number).
fn owns_aor(req: &Message, s: &store::Subscriber) -> bool {
    let Ok(to) = req.to_header() else {
        return false;
    };
    let Some(user) = to.uri.as_sip().and_then(|u| u.user.as_deref()) else {
        return false;
    };
    user == s.username || s.number.as_deref() == Some(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(user_agent: Option<&str>) -> Message {
        let mut req = Message::request(Method::Register, Uri::parse("sip:127.0.0.1").expect("uri"));
        if let Some(ua) = user_agent {
            req.push_header(HeaderName::UserAgent, ua);
        }
        req
    }

    const BOTH: [Algorithm; 2] = [Algorithm::Md5, Algorithm::Sha256];

    #[test]
    fn old_baresip_is_challenged_with_md5_alone() {
        for ua in [
            "baresip v1.0.0 (x86_64/linux)",
            "baresip v2.12.0 (arm/linux)",
            "baresip v3.11.0 (x86_64/Linux)",
        ] {
            assert_eq!(offered(&request(Some(ua)), &BOTH), [Algorithm::Md5], "{ua}");
        }
        // Unless the operator offers no MD5 at all.
        assert_eq!(
            offered(
                &request(Some("baresip v1.0.0 (x86_64/linux)")),
                &[Algorithm::Sha256]
            ),
            [Algorithm::Sha256]
        );
    }

    #[test]
    fn everyone_else_gets_every_challenge() {
        for ua in [
            Some("baresip v3.12.0 (x86_64/Linux)"),
            Some("baresip v4.0.0"),
            Some("baresip"),
            Some("Linphone/5.2"),
            Some("SIPp"),
            None,
        ] {
            assert_eq!(offered(&request(ua), &BOTH), BOTH, "{ua:?}");
        }
        assert_eq!(
            offered(&request(None), &[Algorithm::Sha256, Algorithm::Md5]),
            [Algorithm::Sha256, Algorithm::Md5]
        );
    }
}
