//! TODO(registrar): stand-ins for the registrar, digest authenticator and
//! metrics that are being written in parallel (`registrar.rs`, `auth.rs`,
//! `metrics.rs`). They have the agreed interface and the least behaviour
//! the B2BUA needs to run. When the real modules land, this file becomes:
//!
//! ```ignore
//! pub use crate::auth::{AuthOutcome, Authenticator};
//! pub use crate::metrics::Metrics;
//! pub use crate::registrar::{Lookup, Registrar};
//! ```
//!
//! Until then some of their surface goes unused here.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Mutex;

use sip::Message;
use sip::transaction::{Peer, TxId};
use sip_transport::endpoint::Endpoint;
use store::{Binding, Store, Subscriber, Tenant};

/// Where a user of a tenant can be reached.
#[derive(Debug, Clone)]
pub enum Lookup {
    Unknown,
    Offline(Subscriber),
    Online(Subscriber, Vec<Binding>),
}

/// Registrations over the store.
pub struct Registrar {
    store: Store,
    endpoint: Endpoint,
}

impl Registrar {
    pub fn new(store: Store, endpoint: Endpoint) -> Self {
        Self { store, endpoint }
    }

    pub async fn lookup(
        &self,
        tenant: &Tenant,
        user_or_number: &str,
        now_ms: i64,
    ) -> Result<Lookup, store::Error> {
        let Some(sub) = self
            .store
            .find_subscriber(&tenant.domain, user_or_number)
            .await?
        else {
            return Ok(Lookup::Unknown);
        };
        let bindings = self.store.bindings_for(sub.id, now_ms).await?;
        Ok(if bindings.is_empty() {
            Lookup::Offline(sub)
        } else {
            Lookup::Online(sub, bindings)
        })
    }

    /// The stand-in registers nothing: bindings come from the store.
    pub async fn on_register(&self, tx: TxId, req: Message, _from: Peer) {
        let mut resp = Message::response_to(&req, 501, Some("Registrar not available"));
        resp.set_to_tag(&sip::ids::new_tag());
        let _ = self.endpoint.respond(tx, resp).await;
    }
}

/// What [`Authenticator::check`] decided.
#[derive(Debug)]
pub enum AuthOutcome {
    Authenticated(Subscriber),
    /// A 401/407 challenge or a 403.
    Respond(Box<Message>),
    /// The source is banned: send nothing.
    Ignore,
}

/// Digest authentication against the store.
pub struct Authenticator {
    store: Store,
}

impl Authenticator {
    pub fn new(store: Store, _endpoint: Endpoint) -> Self {
        Self { store }
    }

    /// The stand-in trusts the From user (no digest check).
    pub async fn check(
        &self,
        req: &Message,
        _from: Peer,
        tenant: &Tenant,
        _proxy: bool,
    ) -> AuthOutcome {
        let user = req
            .from_header()
            .ok()
            .and_then(|f| f.uri.as_sip().and_then(|u| u.user.clone()));
        let found = match user {
            Some(u) => self
                .store
                .find_subscriber(&tenant.domain, &u)
                .await
                .ok()
                .flatten(),
            None => None,
        };
        match found {
            Some(s) => AuthOutcome::Authenticated(s),
            None => {
                let mut resp = Message::response_to(req, 403, None);
                resp.set_to_tag(&sip::ids::new_tag());
                resp.push_header_raw("Warning", "399 tandem \"Unknown caller\"");
                AuthOutcome::Respond(Box::new(resp))
            }
        }
    }
}

/// Counters, rendered as Prometheus text.
#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<String, i64>>,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    fn add(&self, key: String, n: i64) {
        if let Ok(mut c) = self.counters.lock() {
            *c.entry(key).or_default() += n;
        }
    }

    pub fn sip_request(&self, method: &str) {
        self.add(format!("sip_requests_total{{method=\"{method}\"}}"), 1);
    }

    pub fn sip_response(&self, code: u16) {
        self.add(format!("sip_responses_total{{code=\"{code}\"}}"), 1);
    }

    pub fn call_started(&self) {
        self.add("calls_started_total".into(), 1);
    }

    pub fn call_ended(&self, disposition: store::Disposition) {
        self.add(
            format!("calls_ended_total{{disposition=\"{disposition}\"}}"),
            1,
        );
    }

    pub fn active_calls(&self, delta: i64) {
        self.add("active_calls".into(), delta);
    }

    pub fn transaction_timeout(&self) {
        self.add("transaction_timeouts_total".into(), 1);
    }

    pub fn node_lost(&self) {
        self.add("media_nodes_lost_total".into(), 1);
    }

    pub fn render(&self) -> String {
        let Ok(c) = self.counters.lock() else {
            return String::new();
        };
        c.iter().map(|(k, v)| format!("tandem_{k} {v}\n")).collect()
    }
}
