//! The registrar (RFC 3261 §10.3) and the location service built on it.
//!
//! Bindings live in the store, not in memory, so a restarted or standby
//! brain reaches every phone that registered before. Each binding keeps the
//! address the REGISTER came *from* (and its transport and connection): that
//! is where requests for the phone go, because it is what gets through the
//! phone's NAT; the Contact URI is kept as the Request-URI to use.
//!
//! Order of processing a REGISTER (the RFC's steps):
//! 1. the tenant from the Request-URI host (404 when no tenant serves it; a
//!    Request-URI naming us by IP address falls back to the To host);
//! 2. option tags are the caller's business (`sip::uas::check_request`);
//! 3. and 4. digest authentication through the [`Authenticator`], which
//!    also checks that the subscriber registers its own address of record;
//! 5. the address of record from To, which must be in the tenant's domain
//!    (404 otherwise);
//! 6. `Contact: *` must come alone and with `Expires: 0` (400 otherwise);
//! 7. every Contact's expiry (its `expires` parameter, else the Expires
//!    header, else the default; 423 with Min-Expires below the minimum,
//!    capped at the maximum, 0 removes), then the Call-ID/CSeq rule: a
//!    binding from the same Call-ID is only changed by a higher CSeq. A
//!    request that breaks it "fails" (the RFC's word) and changes nothing:
//!    we answer 500, the code the same step gives for failed binding updates.
//!    All checks run before the first write, and a store failure half-way
//!    puts back what was written, so a REGISTER changes all of its bindings
//!    or none (500);
//! 8. 200 listing every current binding with its remaining expiry, and a Date.
//!
//! REGISTERs for one subscriber are processed one at a time (a per-subscriber
//! lock), so two phones of one account cannot interleave their updates.
//!
//! A background task (started by [`Registrar::new`] inside a tokio runtime)
//! sends an OPTIONS every `keepalive_interval` to each binding whose source
//! address differs from its Contact (the phone is behind a NAT, or reached
//! over a connection), through its source address and connection: the NAT
//! pinhole stays open, and a phone that stops answering is dropped after
//! `keepalive_failures` keep-alives in a row time out. The results of those
//! OPTIONS arrive as transaction events on the brain's event channel, so
//! **the brain must pass client-transaction events to
//! [`Registrar::on_event`]**, which says whether the event was a keep-alive's.
//! The same task deletes expired bindings every `purge_interval` and
//! refreshes the `tandem_registrations` gauge.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use sip::transaction::{Event, FlowId, Peer, TransportKind, TxId};
use sip::typed::{Contact, NameAddr, unquote};
use sip::uri::Host;
use sip::{HeaderName, Message, Method, Uri};
use sip_transport::endpoint::Endpoint;
use store::{Binding, NewBinding, Subscriber, SubscriberId, Tenant};
use tokio::task::AbortHandle;
use tracing::{debug, info, warn};

use crate::auth::{AuthOutcome, Authenticator};
use crate::directory::Directory;
use crate::metrics::Metrics;

/// Registrar limits and timers.
#[derive(Debug, Clone)]
pub struct RegistrarConfig {
    /// Shortest registration accepted, seconds (423 below it).
    pub min_expires: u32,
    /// Longest registration granted, seconds (longer requests are cut).
    pub max_expires: u32,
    /// Granted when the request asks for no expiry or a malformed one.
    pub default_expires: u32,
    /// How often NAT'd bindings get an OPTIONS; zero turns keep-alives off.
    pub keepalive_interval: Duration,
    /// Keep-alives in a row that must go unanswered before the binding is
    /// dropped. Any answer counts as alive (a phone that says 405 or 501
    /// to OPTIONS is still there); more than one, because one lost
    /// datagram must not unregister a phone.
    pub keepalive_failures: u32,
    /// How often expired bindings are deleted; zero turns purging off.
    pub purge_interval: Duration,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            keepalive_interval: Duration::from_secs(30),
            keepalive_failures: 3,
            purge_interval: Duration::from_secs(60),
        }
    }
}

/// Where a subscriber can be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// No such subscriber in the tenant, or it is disabled: a disabled
    /// subscriber is refused service both ways, and callers learn no more
    /// than for a number that does not exist.
    Unknown,
    /// The subscriber exists but has no unexpired binding.
    Offline(Subscriber),
    /// Its bindings, highest q first, then the most recently refreshed.
    Online(Subscriber, Vec<Binding>),
}

/// A binding is named by its subscriber and Contact, as the store keys it.
type Key = (SubscriberId, String);

/// A binding that gets keep-alives.
#[derive(Debug, Clone)]
struct Target {
    peer: Peer,
    /// The tenant's domain, for the OPTIONS' From.
    domain: String,
    expires_at: i64,
    failures: u32,
    in_flight: Option<(TxId, Instant)>,
}

#[derive(Default)]
struct KeepAlive {
    targets: HashMap<Key, Target>,
    /// Keep-alives in flight, and whether the phone has answered each yet.
    pending: HashMap<TxId, (Key, bool)>,
}

struct Inner {
    store: store::Store,
    /// Cached tenant and subscriber lookups, when the brain shares one.
    directory: OnceLock<Directory>,
    endpoint: Endpoint,
    auth: Authenticator,
    config: RegistrarConfig,
    metrics: OnceLock<Metrics>,
    keepalive: Mutex<KeepAlive>,
    /// Serialises REGISTERs per subscriber; entries go once unused.
    locks: Mutex<HashMap<SubscriberId, Arc<tokio::sync::Mutex<()>>>>,
    task: Mutex<Option<AbortHandle>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(t) = self
            .task
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            t.abort();
        }
    }
}

/// The registrar. Cheap to clone; clones share state and the background task,
/// which stops when the last clone is dropped.
#[derive(Clone)]
pub struct Registrar {
    inner: Arc<Inner>,
}

impl fmt::Debug for Registrar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registrar")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Why a REGISTER is refused before anything is written.
struct Refusal {
    code: u16,
    reason: Option<&'static str>,
    min_expires: Option<u32>,
}

impl Refusal {
    fn new(code: u16, reason: &'static str) -> Refusal {
        Refusal {
            code,
            reason: Some(reason),
            min_expires: None,
        }
    }
}

/// One Contact of the request, checked.
struct Change {
    /// The store's key: the Contact URI as first registered, so a phone that
    /// re-cases its URI refreshes its binding instead of adding one.
    contact: String,
    /// Seconds; 0 removes.
    expires: u32,
    q_milli: Option<u16>,
    instance_id: Option<String>,
    reg_id: Option<u32>,
    /// The binding as it was, for the CSeq rule and for putting it back.
    previous: Option<Binding>,
}

impl Registrar {
    /// Starts the keep-alive and purge task when called inside a tokio
    /// runtime (and loads the NAT'd bindings a previous run left in the
    /// store); outside one, only the request handling works.
    pub fn new(
        store: store::Store,
        endpoint: Endpoint,
        auth: Authenticator,
        config: RegistrarConfig,
    ) -> Self {
        let inner = Arc::new(Inner {
            store,
            directory: OnceLock::new(),
            endpoint,
            auth,
            config,
            metrics: OnceLock::new(),
            keepalive: Mutex::new(KeepAlive::default()),
            locks: Mutex::new(HashMap::new()),
            task: Mutex::new(None),
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let handle = rt.spawn(maintain(Arc::downgrade(&inner)));
            *inner.task.lock().unwrap_or_else(PoisonError::into_inner) =
                Some(handle.abort_handle());
        }
        Registrar { inner }
    }

    /// Counts the responses the registrar sends and keeps the
    /// `tandem_registrations` gauge. (The caller counts requests.)
    pub fn with_metrics(self, metrics: Metrics) -> Self {
        // Set once; a second call keeps the first registry.
        let _ = self.inner.metrics.set(metrics);
        self
    }

    /// Looks tenants and subscribers up through `directory` (and its cache)
    /// rather than straight in the store.
    pub fn with_directory(self, directory: Directory) -> Self {
        let _ = self.inner.directory.set(directory);
        self
    }

    pub fn config(&self) -> &RegistrarConfig {
        &self.inner.config
    }

    /// Handles a REGISTER received on server transaction `tx` and answers it
    /// (or not, when the source has spent its authentication budget).
    pub async fn on_register(&self, tx: TxId, req: Message, from: Peer) {
        let Some(resp) = self.inner.register(&req, from).await else {
            return;
        };
        if let Some(m) = self.inner.metrics.get()
            && let Some(code) = resp.status()
        {
            m.sip_response(code);
        }
        if let Err(e) = self.inner.endpoint.respond(tx, resp).await {
            warn!(%tx, error = %e, "REGISTER response not sent");
        }
    }

    /// Where `user_or_number` of `tenant` can be reached at `now_ms`.
    pub async fn lookup(
        &self,
        tenant: &Tenant,
        user_or_number: &str,
        now_ms: i64,
    ) -> Result<Lookup, store::Error> {
        let Some(sub) = self
            .inner
            .find_subscriber(&tenant.domain, user_or_number)
            .await?
        else {
            return Ok(Lookup::Unknown);
        };
        if !sub.enabled {
            return Ok(Lookup::Unknown);
        }
        let bindings = self.inner.store.bindings_for(sub.id, now_ms).await?;
        Ok(if bindings.is_empty() {
            Lookup::Offline(sub)
        } else {
            Lookup::Online(sub, bindings)
        })
    }

    /// Takes the events of keep-alive OPTIONS transactions: call it with every
    /// client-transaction event (`Response`, `Timeout`, `TransportError`,
    /// `Terminated`). Returns true when the event was a keep-alive's, which
    /// the caller then ignores.
    pub async fn on_event(&self, ev: &Event) -> bool {
        // Any response, provisional or final and whatever its code (a phone
        // may well refuse OPTIONS with 405 or 501), shows the phone is
        // there; only silence or a failed send counts against it.
        let (tx, answered) = match ev {
            Event::Response { tx, .. } => (*tx, true),
            Event::Timeout { tx, .. } | Event::TransportError { tx } => (*tx, false),
            Event::Terminated { tx } => {
                let mut ka = self.inner.keepalive();
                return ka.pending.remove(tx).is_some();
            }
            _ => return false,
        };
        let drop_key = {
            let mut ka = self.inner.keepalive();
            let Some((key, heard)) = ka.pending.get_mut(&tx).map(|p| {
                let heard = p.1;
                p.1 |= answered;
                (p.0.clone(), heard)
            }) else {
                return false;
            };
            let limit = self.inner.config.keepalive_failures.max(1);
            let Some(target) = ka.targets.get_mut(&key) else {
                return true;
            };
            if !answered && target.in_flight.is_some_and(|(t, _)| t == tx) {
                target.in_flight = None;
            }
            if answered {
                target.failures = 0;
                // The final answer ends the round; a provisional keeps it
                // open (no new OPTIONS on top of this one).
                if matches!(ev, Event::Response { msg, .. } if msg.status().is_some_and(|c| c >= 200))
                    && target.in_flight.is_some_and(|(t, _)| t == tx)
                {
                    target.in_flight = None;
                }
                None
            } else if heard {
                // It answered 1xx and then went quiet: still alive.
                None
            } else {
                target.failures += 1;
                debug!(contact = %key.1, failures = target.failures, "keep-alive failed");
                if target.failures >= limit {
                    ka.targets.remove(&key);
                    Some(key)
                } else {
                    None
                }
            }
        };
        if let Some((sub, contact)) = drop_key {
            info!(%contact, "phone stopped answering keep-alives; binding dropped");
            if let Err(e) = self.inner.store.remove_binding(sub, &contact).await {
                warn!(error = %e, "dropping an unreachable binding failed");
            }
            self.inner.refresh_gauge().await;
        }
        true
    }

    /// How many bindings get keep-alives now (for tests and diagnostics).
    pub fn keepalive_targets(&self) -> usize {
        self.inner.keepalive().targets.len()
    }
}

fn respond(req: &Message, code: u16, reason: Option<&str>) -> Message {
    let mut resp = Message::response_to(req, code, reason);
    resp.set_to_tag(&sip::ids::new_tag());
    resp
}

impl Inner {
    async fn tenant_by_domain(&self, domain: &str) -> Result<Option<Tenant>, store::Error> {
        match self.directory.get() {
            Some(d) => d.tenant_by_domain(domain).await,
            None => self.store.tenant_by_domain(domain).await,
        }
    }

    async fn find_subscriber(
        &self,
        domain: &str,
        user: &str,
    ) -> Result<Option<store::Subscriber>, store::Error> {
        match self.directory.get() {
            Some(d) => d.find_subscriber(domain, user).await,
            None => self.store.find_subscriber(domain, user).await,
        }
    }

    fn keepalive(&self) -> std::sync::MutexGuard<'_, KeepAlive> {
        self.keepalive
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The whole of §10.3; `None` means send nothing.
    async fn register(&self, req: &Message, from: Peer) -> Option<Message> {
        let Some(ruri) = req.request_uri().and_then(Uri::as_sip) else {
            return Some(respond(req, 416, None));
        };
        let to = match req.to_header() {
            Ok(to) => to,
            Err(_) => return Some(respond(req, 400, Some("Malformed To"))),
        };
        let tenant = match self.tenant_for(&ruri.host, &to).await {
            Ok(Some(t)) => t,
            Ok(None) => return Some(respond(req, 404, Some("Domain not served here"))),
            Err(e) => {
                warn!(error = %e, "tenant lookup failed");
                return Some(respond(req, 500, None));
            }
        };
        // Step 5 comes after authentication in the RFC, but a To that names
        // no user of this domain can only fail; checking the shape first
        // keeps a malformed AOR from costing a challenge round trip.
        let Some(to_sip) = to.uri.as_sip() else {
            return Some(respond(
                req,
                400,
                Some("Address of record must be a SIP or SIPS URI"),
            ));
        };
        if to_sip.user.is_none() {
            return Some(respond(req, 400, Some("Address of record needs a user")));
        }
        let aor_in_domain =
            host_names(&to_sip.host).contains(&tenant.domain) || to_sip.host.equivalent(&ruri.host);
        if !aor_in_domain {
            return Some(respond(
                req,
                404,
                Some("Address of record not in this domain"),
            ));
        }

        let sub = match self.auth.check(req, from, &tenant, false).await {
            AuthOutcome::Authenticated(s) => s,
            AuthOutcome::Respond(r) => return Some(*r),
            AuthOutcome::Ignore => return None,
        };

        let lock = self.lock_for(sub.id);
        let resp = {
            let _guard = lock.lock().await;
            self.update(req, from, &tenant, &sub).await
        };
        drop(lock);
        self.locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, l| Arc::strong_count(l) > 1);
        Some(resp)
    }

    fn lock_for(&self, id: SubscriberId) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(id)
            .or_default()
            .clone()
    }

    /// The tenant a REGISTER is for: its Request-URI host, or — when that is
    /// an IP address no tenant is named by, i.e. the phone addressed this box
    /// rather than a domain — the host of its address of record.
    async fn tenant_for(
        &self,
        ruri_host: &Host,
        to: &NameAddr<'_>,
    ) -> Result<Option<Tenant>, store::Error> {
        for name in host_names(ruri_host) {
            if let Some(t) = self.tenant_by_domain(&name).await? {
                return Ok(Some(t));
            }
        }
        if ruri_host.is_ip()
            && let Some(Host::Domain(d)) = to.uri.as_sip().map(|u| &u.host)
        {
            return self.tenant_by_domain(d).await;
        }
        Ok(None)
    }

    /// Steps 6 to 8 for an authenticated subscriber.
    async fn update(
        &self,
        req: &Message,
        from: Peer,
        tenant: &Tenant,
        sub: &Subscriber,
    ) -> Message {
        let now = store::now_ms();
        let existing = match self.store.bindings_for(sub.id, now).await {
            Ok(b) => b,
            Err(e) => {
                warn!(error = %e, "reading bindings failed");
                return respond(req, 500, None);
            }
        };
        let plan = match self.plan(req, &existing) {
            Ok(p) => p,
            Err(r) => {
                let mut resp = respond(req, r.code, r.reason);
                if let Some(min) = r.min_expires {
                    resp.push_header(HeaderName::MinExpires, min.to_string());
                }
                return resp;
            }
        };
        let (Some(call_id), Some(cseq)) = (req.call_id(), req.cseq()) else {
            return respond(req, 400, Some("Missing Call-ID or CSeq"));
        };
        let result = match &plan {
            Plan::Query => Ok(()),
            Plan::RemoveAll => self
                .store
                .remove_all_bindings(sub.id)
                .await
                .map(|_| ())
                .map_err(|e| (e, Vec::new())),
            Plan::Update(changes) => {
                self.apply(changes, req, from, sub, call_id, cseq.seq, now)
                    .await
            }
        };
        if let Err((e, applied)) = result {
            self.roll_back(sub.id, &applied).await;
            return match e {
                store::Error::OutOfOrder => respond(req, 500, Some("Out-of-order REGISTER")),
                store::Error::Invalid(_) => respond(req, 400, Some("Contact not acceptable")),
                e => {
                    warn!(error = %e, "storing a binding failed");
                    respond(req, 500, None)
                }
            };
        }
        self.track(&plan, sub.id, from, tenant, now);
        if !matches!(plan, Plan::Query) {
            self.refresh_gauge().await;
        }

        let current = match self.store.bindings_for(sub.id, now).await {
            Ok(b) => b,
            Err(e) => {
                warn!(error = %e, "reading bindings failed");
                return respond(req, 500, None);
            }
        };
        let mut resp = respond(req, 200, None);
        for b in &current {
            resp.push_header(HeaderName::Contact, contact_value(b, now));
        }
        resp.push_header_raw("Date", http_date(now.div_euclid(1000)));
        resp
    }

    /// Checks every Contact before anything is written.
    fn plan(&self, req: &Message, existing: &[Binding]) -> Result<Plan, Refusal> {
        let cfg = &self.config;
        let mut contacts = Vec::new();
        let mut wildcard = false;
        for c in req.contacts() {
            match c {
                Ok(Contact::Wildcard) => wildcard = true,
                Ok(Contact::Addr(a)) => contacts.push(a),
                Err(_) => return Err(Refusal::new(400, "Malformed Contact")),
            }
        }
        let header_expires = req.header(HeaderName::Expires).map(str::trim);
        let call_id = req.call_id().unwrap_or("");
        let cseq = req.cseq().map_or(0, |c| c.seq);
        // §10.3 step 7: same Call-ID needs a higher CSeq.
        let out_of_order = |b: &Binding| b.call_id == call_id && cseq <= b.cseq;

        if wildcard {
            if !contacts.is_empty() || header_expires != Some("0") {
                return Err(Refusal::new(
                    400,
                    "Contact: * needs Expires: 0 and no other Contact",
                ));
            }
            if existing.iter().any(out_of_order) {
                return Err(Refusal::new(500, "Out-of-order REGISTER"));
            }
            return Ok(Plan::RemoveAll);
        }
        if contacts.is_empty() {
            return Ok(Plan::Query);
        }
        // A malformed delta-seconds counts as the default (RFC 3261 §20.19).
        let default = header_expires
            .map_or(Some(cfg.default_expires), parse_delta)
            .unwrap_or(cfg.default_expires);
        let mut changes: Vec<Change> = Vec::with_capacity(contacts.len());
        for na in &contacts {
            if !matches!(na.uri.scheme(), "sip" | "sips") {
                return Err(Refusal::new(400, "Contact must be a SIP or SIPS URI"));
            }
            let asked = match na.params.get("expires") {
                None => default,
                Some(v) => v.and_then(parse_delta).unwrap_or(cfg.default_expires),
            };
            if asked != 0 && asked < cfg.min_expires {
                return Err(Refusal {
                    code: 423,
                    reason: None,
                    min_expires: Some(cfg.min_expires),
                });
            }
            let expires = asked.min(cfg.max_expires);
            let q_milli = match na.params.get("q") {
                None => None,
                Some(v) => Some(
                    v.and_then(parse_q)
                        .ok_or_else(|| Refusal::new(400, "Malformed q in Contact"))?,
                ),
            };
            let instance_id = na
                .params
                .value("+sip.instance")
                .map(|v| unquote(v).into_owned());
            let reg_id = match na.params.get("reg-id") {
                None => None,
                Some(v) => Some(
                    v.and_then(|v| v.parse::<u32>().ok())
                        .ok_or_else(|| Refusal::new(400, "Malformed reg-id in Contact"))?,
                ),
            };
            let previous = existing
                .iter()
                .find(|b| {
                    b.contact == na.uri_text
                        || Uri::parse(&b.contact).is_ok_and(|u| u.equivalent(&na.uri))
                })
                .cloned();
            if previous.as_ref().is_some_and(out_of_order) {
                return Err(Refusal::new(500, "Out-of-order REGISTER"));
            }
            let contact = previous
                .as_ref()
                .map_or_else(|| na.uri_text.to_owned(), |b| b.contact.clone());
            // The same Contact twice in one request: the last one wins.
            changes.retain(|c| c.contact != contact);
            changes.push(Change {
                contact,
                expires,
                q_milli,
                instance_id,
                reg_id,
                previous,
            });
        }
        Ok(Plan::Update(changes))
    }

    /// Writes the changes in order; on failure returns the error and the
    /// changes already written, for [`Inner::roll_back`].
    #[allow(clippy::too_many_arguments)] // the REGISTER's parts, borrowed
    async fn apply<'a>(
        &self,
        changes: &'a [Change],
        req: &Message,
        from: Peer,
        sub: &Subscriber,
        call_id: &str,
        cseq: u32,
        now: i64,
    ) -> Result<(), (store::Error, Vec<&'a Change>)> {
        let transport = from.transport.via_token().to_ascii_lowercase();
        let flow = from.flow.map(|f| f.0.to_string());
        let user_agent = req.header(HeaderName::UserAgent).and_then(user_agent);
        let mut applied = Vec::new();
        for c in changes {
            let result = if c.expires == 0 {
                self.store
                    .remove_binding(sub.id, &c.contact)
                    .await
                    .map(|_| ())
            } else {
                self.store
                    .upsert_binding(&NewBinding {
                        subscriber_id: sub.id,
                        contact: &c.contact,
                        transport: &transport,
                        source: from.addr,
                        flow_token: flow.as_deref(),
                        expires_at: now.saturating_add(i64::from(c.expires) * 1000),
                        call_id,
                        cseq,
                        q_milli: c.q_milli,
                        instance_id: c.instance_id.as_deref(),
                        reg_id: c.reg_id,
                        user_agent,
                        now,
                    })
                    .await
                    .map(|_| ())
            };
            match result {
                Ok(()) => applied.push(c),
                Err(e) => return Err((e, applied)),
            }
        }
        Ok(())
    }

    /// Best effort: puts back the bindings a failed REGISTER changed.
    async fn roll_back(&self, sub: SubscriberId, applied: &[&Change]) {
        for c in applied.iter().rev() {
            if let Err(e) = self.store.remove_binding(sub, &c.contact).await {
                warn!(error = %e, "rolling back a binding failed");
                continue;
            }
            if let Some(b) = &c.previous {
                let restore = NewBinding {
                    subscriber_id: b.subscriber_id,
                    contact: &b.contact,
                    transport: &b.transport,
                    source: b.source,
                    flow_token: b.flow_token.as_deref(),
                    expires_at: b.expires_at,
                    call_id: &b.call_id,
                    cseq: b.cseq,
                    q_milli: b.q_milli,
                    instance_id: b.instance_id.as_deref(),
                    reg_id: b.reg_id,
                    user_agent: b.user_agent.as_deref(),
                    now: b.updated_at,
                };
                if let Err(e) = self.store.upsert_binding(&restore).await {
                    warn!(error = %e, "restoring a binding failed");
                }
            }
        }
    }

    /// Brings the keep-alive targets in line with what a REGISTER stored.
    fn track(&self, plan: &Plan, sub: SubscriberId, from: Peer, tenant: &Tenant, now: i64) {
        let mut ka = self.keepalive();
        match plan {
            Plan::Query => {}
            Plan::RemoveAll => ka.targets.retain(|(s, _), _| *s != sub),
            Plan::Update(changes) => {
                for c in changes {
                    let key = (sub, c.contact.clone());
                    if c.expires == 0 || !behind_nat(&c.contact, from.addr) {
                        ka.targets.remove(&key);
                        continue;
                    }
                    let target = Target {
                        peer: from,
                        domain: tenant.domain.clone(),
                        expires_at: now.saturating_add(i64::from(c.expires) * 1000),
                        failures: 0,
                        in_flight: None,
                    };
                    ka.targets.insert(key, target);
                }
            }
        }
    }

    async fn refresh_gauge(&self) {
        let Some(m) = self.metrics.get() else {
            return;
        };
        match self.store.count_bindings(store::now_ms()).await {
            Ok(n) => m.registrations_set(i64::try_from(n).unwrap_or(i64::MAX)),
            Err(e) => warn!(error = %e, "counting bindings failed"),
        }
    }

    /// Reads the NAT'd bindings a previous run left in the store.
    async fn load_targets(&self) -> Result<(), store::Error> {
        let now = store::now_ms();
        let mut found = Vec::new();
        for tenant in self.store.list_tenants().await? {
            for sub in self.store.list_subscribers(tenant.id).await? {
                for b in self.store.bindings_for(sub.id, now).await? {
                    let Some(peer) = peer_of(&b) else { continue };
                    if behind_nat(&b.contact, b.source) {
                        let target = Target {
                            peer,
                            domain: tenant.domain.clone(),
                            expires_at: b.expires_at,
                            failures: 0,
                            in_flight: None,
                        };
                        found.push(((b.subscriber_id, b.contact), target));
                    }
                }
            }
        }
        let mut ka = self.keepalive();
        for (key, target) in found {
            // A REGISTER that arrived meanwhile knows better.
            ka.targets.entry(key).or_insert(target);
        }
        Ok(())
    }

    /// One round of keep-alives.
    async fn send_keepalives(&self) {
        let now = store::now_ms();
        // An OPTIONS in flight this long lost its events (nobody routed them
        // to `on_event`); forget it rather than stop pinging.
        let give_up = (self.config.keepalive_interval * 3).max(Duration::from_secs(40));
        let due: Vec<(Key, Target)> = {
            let mut ka = self.keepalive();
            ka.targets.retain(|_, t| t.expires_at > now);
            ka.targets
                .iter()
                .filter(|(_, t)| t.in_flight.is_none_or(|(_, at)| at.elapsed() > give_up))
                .map(|(k, t)| (k.clone(), t.clone()))
                .collect()
        };
        for (key, target) in due {
            let msg = match keepalive_request(&key.1, &target.domain) {
                Some(m) => m,
                None => {
                    // Not a URI we can send to: nothing to keep alive.
                    self.keepalive().targets.remove(&key);
                    continue;
                }
            };
            match self.endpoint.send_request(msg, target.peer).await {
                Ok(tx) => {
                    let mut ka = self.keepalive();
                    if let Some(t) = ka.targets.get_mut(&key) {
                        if let Some((old, _)) = t.in_flight.replace((tx, Instant::now())) {
                            ka.pending.remove(&old);
                        }
                        ka.pending.insert(tx, (key, false));
                    }
                }
                Err(e) => debug!(error = %e, contact = %key.1, "keep-alive not sent"),
            }
        }
    }

    async fn purge(&self) {
        match self.store.expire_bindings(store::now_ms()).await {
            Ok(0) => {}
            Ok(n) => debug!(n, "expired bindings deleted"),
            Err(e) => warn!(error = %e, "deleting expired bindings failed"),
        }
        self.refresh_gauge().await;
    }
}

/// What a REGISTER asks for.
enum Plan {
    /// No Contact: list the bindings.
    Query,
    /// `Contact: *` with `Expires: 0`.
    RemoveAll,
    Update(Vec<Change>),
}

/// The background task: keep-alives and purging, until the registrar goes.
async fn maintain(weak: Weak<Inner>) {
    let (ka_every, purge_every) = {
        let Some(inner) = weak.upgrade() else { return };
        if let Err(e) = inner.load_targets().await {
            warn!(error = %e, "loading bindings for keep-alives failed");
        }
        inner.refresh_gauge().await;
        (inner.config.keepalive_interval, inner.config.purge_interval)
    };
    let mut ka = ticker(ka_every);
    let mut purge = ticker(purge_every);
    loop {
        tokio::select! {
            _ = tick(&mut ka) => {
                let Some(inner) = weak.upgrade() else { return };
                inner.send_keepalives().await;
            }
            _ = tick(&mut purge) => {
                let Some(inner) = weak.upgrade() else { return };
                inner.purge().await;
            }
        }
    }
}

/// An interval whose first tick is one period away; `None` when disabled.
fn ticker(every: Duration) -> Option<tokio::time::Interval> {
    if every.is_zero() {
        return None;
    }
    let mut i = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    Some(i)
}

async fn tick(i: &mut Option<tokio::time::Interval>) {
    match i {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// The names a tenant could be stored under for this host: the domain, or
/// the address (an IPv6 one with and without brackets).
fn host_names(host: &Host) -> Vec<String> {
    match host {
        Host::Domain(d) => vec![d.to_ascii_lowercase()],
        Host::V4(a) => vec![a.to_string()],
        Host::V6(a) => vec![format!("[{a}]"), a.to_string()],
    }
}

/// Whether the phone registered from somewhere other than its Contact says:
/// then only its source address (through its NAT or connection) reaches it.
fn behind_nat(contact: &str, source: SocketAddr) -> bool {
    let Ok(Uri::Sip(u)) = Uri::parse(contact) else {
        return true;
    };
    let ip = match u.host {
        Host::V4(a) => IpAddr::V4(a),
        Host::V6(a) => IpAddr::V6(a),
        Host::Domain(_) => return true,
    };
    ip != source.ip() || u.port_or_default() != source.port()
}

/// Where requests for a stored binding go: its source, over its connection.
pub(crate) fn peer_of(b: &Binding) -> Option<Peer> {
    let transport = match b.transport.to_ascii_lowercase().as_str() {
        "udp" => TransportKind::Udp,
        "tcp" => TransportKind::Tcp,
        "tls" => TransportKind::Tls,
        "sctp" => TransportKind::Sctp,
        "ws" => TransportKind::Ws,
        "wss" => TransportKind::Wss,
        _ => return None,
    };
    Some(Peer {
        transport,
        addr: b.source,
        flow: b
            .flow_token
            .as_deref()
            .and_then(|f| f.parse().ok())
            .map(FlowId),
    })
}

/// The OPTIONS a keep-alive sends: to the Contact, from the tenant's domain.
/// The transaction layer adds the Via.
fn keepalive_request(contact: &str, domain: &str) -> Option<Message> {
    let uri = Uri::parse(contact).ok()?;
    let mut msg = Message::request(Method::Options, uri);
    msg.push_header(HeaderName::MaxForwards, "70");
    msg.push_header(
        HeaderName::From,
        format!("<sip:keepalive@{domain}>;tag={}", sip::ids::new_tag()),
    );
    msg.push_header(HeaderName::To, format!("<{contact}>"));
    msg.push_header(HeaderName::CallId, sip::ids::new_call_id(domain));
    msg.push_header(HeaderName::CSeq, "1 OPTIONS");
    msg.push_header(HeaderName::ContentLength, "0");
    Some(msg)
}

/// A Contact of the 200: the binding with its remaining seconds.
fn contact_value(b: &Binding, now: i64) -> String {
    let left = ((b.expires_at - now).max(0) + 999) / 1000;
    let mut v = format!("<{}>;expires={left}", b.contact);
    if let Some(q) = b.q_milli {
        v.push_str(";q=");
        v.push_str(&format_q(q));
    }
    if let Some(i) = &b.instance_id {
        v.push_str(&format!(
            ";+sip.instance=\"{}\"",
            i.replace(['"', '\\'], "")
        ));
    }
    if let Some(r) = b.reg_id {
        v.push_str(&format!(";reg-id={r}"));
    }
    v
}

/// delta-seconds; values past u32 saturate (they are capped anyway).
fn parse_delta(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut n: u64 = 0;
    for b in s.bytes() {
        n = (n * 10 + u64::from(b - b'0')).min(u64::from(u32::MAX));
    }
    u32::try_from(n).ok()
}

/// `qvalue = ("0" ["." 0*3DIGIT]) / ("1" ["." 0*3("0")])`, in thousandths.
fn parse_q(s: &str) -> Option<u16> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match int {
        "0" => {
            let mut n: u16 = 0;
            for i in 0..3 {
                let d = frac.as_bytes().get(i).map_or(0, |b| b - b'0');
                n = n * 10 + u16::from(d);
            }
            Some(n)
        }
        "1" if frac.bytes().all(|b| b == b'0') => Some(1000),
        _ => None,
    }
}

fn format_q(q: u16) -> String {
    if q >= 1000 {
        return "1".to_owned();
    }
    let s = format!("0.{q:03}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The User-Agent as the store takes it: at most 256 bytes, no controls.
fn user_agent(ua: &str) -> Option<&str> {
    let ua = ua.trim();
    let mut end = ua.len().min(256);
    while !ua.is_char_boundary(end) {
        end -= 1;
    }
    let ua = &ua[..end];
    (!ua.is_empty() && !ua.chars().any(char::is_control)).then_some(ua)
}

/// An RFC 1123 date (RFC 3261 §20.17): `Sat, 13 Nov 2010 23:29:00 GMT`.
fn http_date(unix_secs: i64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = store::UtcTime::from_unix_secs(unix_secs);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[usize::from(t.weekday % 7)],
        t.day,
        MONTHS[usize::from(t.month.clamp(1, 12) - 1)],
        t.year,
        t.hour,
        t.minute,
        t.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc1123() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(1_000_000_000), "Sun, 09 Sep 2001 01:46:40 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(http_date(1_289_690_940), "Sat, 13 Nov 2010 23:29:00 GMT");
    }

    #[test]
    fn q_values() {
        assert_eq!(parse_q("0.5"), Some(500));
        assert_eq!(parse_q("0.125"), Some(125));
        assert_eq!(parse_q("0"), Some(0));
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("1.000"), Some(1000));
        for bad in ["1.5", "0.1234", "2", "", ".5", "0.x"] {
            assert_eq!(parse_q(bad), None, "{bad}");
        }
        assert_eq!(format_q(500), "0.5");
        assert_eq!(format_q(125), "0.125");
        assert_eq!(format_q(0), "0");
        assert_eq!(format_q(1000), "1");
    }

    #[test]
    fn deltas_saturate() {
        assert_eq!(parse_delta("3600"), Some(3600));
        assert_eq!(parse_delta("99999999999999999999"), Some(u32::MAX));
        assert_eq!(parse_delta("-1"), None);
        assert_eq!(parse_delta(""), None);
    }

    #[test]
    fn nat_is_a_source_unlike_the_contact() {
        let src: SocketAddr = "192.0.2.1:5060".parse().expect("addr");
        assert!(!behind_nat("sip:alice@192.0.2.1", src));
        assert!(!behind_nat("sip:alice@192.0.2.1:5060;transport=udp", src));
        assert!(behind_nat("sip:alice@192.0.2.1:5070", src));
        assert!(behind_nat("sip:alice@10.0.0.2", src));
        assert!(behind_nat("sip:alice@abc.invalid", src));
    }

    #[test]
    fn user_agents_fit_the_store() {
        assert_eq!(user_agent(" Phone 1.0 "), Some("Phone 1.0"));
        assert_eq!(user_agent(""), None);
        let long = "é".repeat(200);
        assert!(user_agent(&long).is_some_and(|u| u.len() <= 256));
    }
}
