//! The brain's Prometheus metrics: what `/metrics` serves.
//!
//! [`Metrics`] is a cheap handle (an `Arc`) over one `prometheus-client`
//! registry; every part of the brain holds a clone and bumps its counters
//! directly (atomics, no lock). Label values are bounded on purpose: unknown
//! SIP methods are counted as `OTHER` and impossible status codes as
//! `other`, so a peer cannot grow the series set by sending junk.

use std::fmt;
use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sip::Method;

type Labels = Vec<(&'static str, String)>;

struct Inner {
    registry: Registry,
    sip_requests: Family<Labels, Counter>,
    sip_responses: Family<Labels, Counter>,
    transaction_timeouts: Counter,
    calls: Family<Labels, Counter>,
    active_calls: Gauge,
    registrations: Gauge,
    auth_failures: Family<Labels, Counter>,
    nodes: Family<Labels, Gauge>,
    nodes_lost: Counter,
    cdr_queued: Gauge,
    cdr_spooled: Gauge,
    cdrs_written: Counter,
    cdrs_rejected: Counter,
    cdr_store_failures: Counter,
}

/// The brain's metrics. Clones share the same series.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// A method label with bounded cardinality.
fn method_label(m: &Method) -> &str {
    match m {
        Method::Other(_) => "OTHER",
        m => m.as_str(),
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let sip_requests = Family::<Labels, Counter>::default();
        let sip_responses = Family::<Labels, Counter>::default();
        let transaction_timeouts = Counter::default();
        let calls = Family::<Labels, Counter>::default();
        let active_calls = Gauge::default();
        let registrations = Gauge::default();
        let auth_failures = Family::<Labels, Counter>::default();
        let nodes = Family::<Labels, Gauge>::default();
        let nodes_lost = Counter::default();
        let cdr_queued = Gauge::default();
        let cdr_spooled = Gauge::default();
        let cdrs_written = Counter::default();
        let cdrs_rejected = Counter::default();
        let cdr_store_failures = Counter::default();
        // Counters are registered without `_total`: the encoder appends it.
        registry.register(
            "tandem_sip_requests",
            "SIP requests received, by method",
            sip_requests.clone(),
        );
        registry.register(
            "tandem_sip_responses",
            "SIP responses sent, by status code",
            sip_responses.clone(),
        );
        registry.register(
            "tandem_transaction_timeouts",
            "SIP transactions that timed out",
            transaction_timeouts.clone(),
        );
        registry.register("tandem_calls", "Calls ended, by disposition", calls.clone());
        registry.register(
            "tandem_active_calls",
            "Calls in progress",
            active_calls.clone(),
        );
        registry.register(
            "tandem_registrations",
            "Unexpired registration bindings",
            registrations.clone(),
        );
        registry.register(
            "tandem_auth_failures",
            "Failed digest authentications, by reason",
            auth_failures.clone(),
        );
        registry.register(
            "tandem_nodes",
            "Media nodes, by role and state",
            nodes.clone(),
        );
        registry.register(
            "tandem_nodes_lost",
            "Media nodes declared dead after missing their heartbeats",
            nodes_lost.clone(),
        );
        registry.register(
            "tandem_cdr_queue",
            "CDRs handed to the writer and not yet committed or spooled",
            cdr_queued.clone(),
        );
        registry.register(
            "tandem_cdr_spooled",
            "CDRs waiting in the local spool file for the store to take them",
            cdr_spooled.clone(),
        );
        registry.register(
            "tandem_cdrs_written",
            "CDRs committed to the store",
            cdrs_written.clone(),
        );
        registry.register(
            "tandem_cdrs_rejected",
            "CDRs refused as invalid (logged in full, never stored)",
            cdrs_rejected.clone(),
        );
        registry.register(
            "tandem_cdr_store_failures",
            "CDR batches the store refused (each was spooled)",
            cdr_store_failures.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                registry,
                sip_requests,
                sip_responses,
                transaction_timeouts,
                calls,
                active_calls,
                registrations,
                auth_failures,
                nodes,
                nodes_lost,
                cdr_queued,
                cdr_spooled,
                cdrs_written,
                cdrs_rejected,
                cdr_store_failures,
            }),
        }
    }

    /// A SIP request arrived.
    pub fn sip_request(&self, method: &Method) {
        self.inner
            .sip_requests
            .get_or_create(&vec![("method", method_label(method).to_owned())])
            .inc();
    }

    /// A SIP response was sent.
    pub fn sip_response(&self, code: u16) {
        let code = if (100..=699).contains(&code) {
            code.to_string()
        } else {
            "other".to_owned()
        };
        self.inner
            .sip_responses
            .get_or_create(&vec![("code", code)])
            .inc();
    }

    /// A media node missed its heartbeats and was declared dead.
    pub fn node_lost(&self) {
        self.inner.nodes_lost.inc();
    }

    pub fn transaction_timeout(&self) {
        self.inner.transaction_timeouts.inc();
    }

    /// A call started: the active-calls gauge goes up.
    pub fn call_started(&self) {
        self.inner.active_calls.inc();
    }

    /// A call ended with `disposition` (a `store::Disposition` string such as
    /// "answered"); the active-calls gauge goes down.
    pub fn call_ended(&self, disposition: &str) {
        self.inner
            .calls
            .get_or_create(&vec![("disposition", disposition.to_owned())])
            .inc();
        self.inner.active_calls.dec();
    }

    /// Sets the active-calls gauge outright (after a rebuild from snapshots).
    pub fn active_calls_set(&self, n: i64) {
        self.inner.active_calls.set(n);
    }

    /// Sets the number of unexpired bindings.
    pub fn registrations_set(&self, n: i64) {
        self.inner.registrations.set(n);
    }

    /// A digest authentication failed for `reason` (a short fixed token such
    /// as "bad_response" or "unknown_user").
    pub fn auth_failure(&self, reason: &str) {
        self.inner
            .auth_failures
            .get_or_create(&vec![("reason", reason.to_owned())])
            .inc();
    }

    /// Sets how many nodes of `role` ("sbc", "mixer") are in `state`.
    pub fn nodes_set(&self, role: &str, state: &str, n: i64) {
        self.inner
            .nodes
            .get_or_create(&vec![
                ("role", role.to_owned()),
                ("state", state.to_owned()),
            ])
            .set(n);
    }

    /// Copies the CDR writer's counters in (they live in the store crate,
    /// which knows nothing of Prometheus).
    pub fn cdr_writer(&self, s: &store::CdrWriterStats) {
        let get = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let catch_up = |c: &Counter, v: u64| {
            if let Some(d) = v.checked_sub(c.get()) {
                c.inc_by(d);
            }
        };
        let i = &self.inner;
        i.cdr_queued.set(gauge(get(&s.queued)));
        i.cdr_spooled.set(gauge(get(&s.spooled)));
        catch_up(&i.cdrs_written, get(&s.written));
        catch_up(&i.cdrs_rejected, get(&s.rejected));
        catch_up(&i.cdr_store_failures, get(&s.store_failures));
    }

    /// Everything, in the Prometheus text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an error would only mean a
        // metric refused to encode, and a partial page is better than none.
        if let Err(e) = encode(&mut out, &self.inner.registry) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_gauges_appear_in_the_text() {
        let m = Metrics::new();
        m.sip_request(&Method::Register);
        m.sip_request(&Method::Register);
        m.sip_request(&Method::Other("FOO".into()));
        m.sip_response(200);
        m.sip_response(1000);
        m.transaction_timeout();
        m.call_started();
        m.call_started();
        m.call_ended("answered");
        m.registrations_set(7);
        m.auth_failure("bad_response");
        m.nodes_set("sbc", "up", 2);
        let text = m.clone().encode();
        for line in [
            "tandem_sip_requests_total{method=\"REGISTER\"} 2",
            "tandem_sip_requests_total{method=\"OTHER\"} 1",
            "tandem_sip_responses_total{code=\"200\"} 1",
            "tandem_sip_responses_total{code=\"other\"} 1",
            "tandem_transaction_timeouts_total 1",
            "tandem_calls_total{disposition=\"answered\"} 1",
            "tandem_active_calls 1",
            "tandem_registrations 7",
            "tandem_auth_failures_total{reason=\"bad_response\"} 1",
            "tandem_nodes{role=\"sbc\",state=\"up\"} 2",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
