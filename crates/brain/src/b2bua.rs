//! The back-to-back user agent: subscriber to subscriber within a tenant,
//! with media anchored on an SBC.
//!
//! Every call is a task (`call`) that owns both dialogs — leg A towards the
//! caller, leg B towards the callee, each with its own Call-ID, tags and
//! CSeq — and the call's media lease. This module is the dispatcher in
//! front of them: it refuses what never becomes a call (floods, loops,
//! exhausted Max-Forwards), starts a task per new INVITE, and hands every
//! later event to its call in arrival order. Events are routed by
//! (Call-ID, our tag), known before any request of the call goes out, so
//! a response can never beat its routing entry.

mod call;
mod limit;
mod media;
mod member;
mod retransmit;
mod silence;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use proto::message::NodeId;
use sip::transaction::{Event, Peer, TransportKind, TxId};
use sip::{HeaderName, Message, Method};
use sip_transport::endpoint::Endpoint;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::auth::Authenticator;
use crate::conference::{ConferenceConfig, Conferences};
use crate::metrics::Metrics;
use crate::nodes::Nodes;
use crate::registrar::Registrar;
use crate::routing::Router;

pub use limit::RateLimit;

/// The B2BUA's knobs.
#[derive(Debug, Clone)]
pub struct B2buaConfig {
    /// How long leg B may ring before the call is given up (480 to A).
    pub no_answer: Duration,
    /// How long leg B may stay silent — not even a 100 Trying — before
    /// the call is given up (408 to A). A phone that is off or out of
    /// reach is found out in this time rather than at Timer B (64·T1,
    /// 32 s), and its media ports go back with it.
    pub no_response: Duration,
    /// Longest an answered call may last; then both sides get a BYE. A cap
    /// on what a hijacked account (or a call whose BYE was lost) can cost.
    pub max_duration: Option<Duration>,
    /// Check digest credentials on INVITE. Off: the From user is trusted
    /// (tests, trusted networks).
    pub authenticate: bool,
    /// New INVITEs per source address.
    pub invite_rate: RateLimit,
    /// RFC 3261 T1 and T2, for our 2xx retransmissions over UDP.
    pub t1: Duration,
    pub t2: Duration,
    /// The address written in Via and Contact when a listener is bound to
    /// an unspecified address (0.0.0.0).
    pub advertise: Option<IpAddr>,
    /// How conference rooms are mixed.
    pub conference: ConferenceConfig,
}

impl Default for B2buaConfig {
    fn default() -> Self {
        Self {
            no_answer: Duration::from_secs(60),
            no_response: Duration::from_secs(10),
            max_duration: Some(Duration::from_secs(4 * 3600)),
            authenticate: true,
            invite_rate: RateLimit::default(),
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            advertise: None,
            conference: ConferenceConfig::default(),
        }
    }
}

/// Where a live call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    /// Authenticating, routing, reserving media.
    Setup,
    /// Leg B is ringing.
    Ringing,
    Answered,
    /// A final answer went to the caller; leg B is being cleaned up.
    Ending,
}

/// A live call, for operators.
#[derive(Debug, Clone)]
pub struct CallInfo {
    /// Leg A's Call-ID.
    pub call_id: String,
    pub tenant: String,
    pub caller: String,
    pub callee: String,
    pub state: CallState,
    /// Unix milliseconds.
    pub started_at: i64,
    pub answered_at: Option<i64>,
    pub media_node: Option<NodeId>,
    /// False when the SBC carrying the call has been declared dead.
    pub media_alive: bool,
}

/// What the dispatcher hands a call.
#[derive(Debug)]
pub(crate) enum CallEvent {
    /// A request inside one of the call's dialogs.
    Request {
        tx: TxId,
        msg: Message,
    },
    /// The ACK for a 2xx we sent.
    Ack {
        msg: Message,
    },
    /// The caller cancelled the INVITE.
    Cancelled,
    Response {
        tx: TxId,
        msg: Message,
    },
    /// A client transaction timed out (with the locally made 408) or could
    /// not be sent.
    Failed {
        tx: TxId,
        response: Option<Message>,
    },
    /// The SBC has had no media on this leg for its media timeout.
    MediaTimeout {
        leg: proto::snapshot::LegId,
    },
}

type CallKey = u64;

/// The answer to an in-dialog request its dialog refuses (a CSeq out of
/// order, another dialog's tags): the dialog layer's code, else 500.
fn refusal_for(e: sip::dialog::DialogError, req: &Message) -> Message {
    let mut resp = e
        .response_to(req)
        .unwrap_or_else(|| Message::response_to(req, 500, None));
    if let Some(tag) = req.to_tag() {
        resp.set_to_tag(tag);
    }
    resp
}

#[derive(Default)]
struct Routes {
    next_key: CallKey,
    /// (Call-ID, our tag) of each leg.
    dialogs: HashMap<(String, String), CallKey>,
    txs: HashMap<TxId, CallKey>,
    inboxes: HashMap<CallKey, mpsc::UnboundedSender<CallEvent>>,
    tasks: HashMap<CallKey, AbortHandle>,
    /// Leg A's Call-ID, which names the call on its SBC.
    media_calls: HashMap<String, CallKey>,
    /// Via branches of the INVITEs we sent, to recognise one coming back.
    branches: HashSet<String>,
    info: HashMap<CallKey, CallInfo>,
    /// What each call put in `dialogs` and `txs`, so forgetting a call
    /// touches its own entries instead of scanning everyone's.
    owned: HashMap<CallKey, Owned>,
}

#[derive(Default)]
struct Owned {
    dialogs: Vec<(String, String)>,
    txs: Vec<TxId>,
    media_call: Option<String>,
}

impl Routes {
    fn add_dialog(&mut self, key: CallKey, call_id: &str, tag: &str) {
        let id = (call_id.to_string(), tag.to_string());
        self.owned.entry(key).or_default().dialogs.push(id.clone());
        self.dialogs.insert(id, key);
    }

    fn add_tx(&mut self, key: CallKey, tx: TxId) {
        self.owned.entry(key).or_default().txs.push(tx);
        self.txs.insert(tx, key);
    }
}

/// Everything a call task needs.
pub(crate) struct Ctx {
    pub(crate) endpoint: Endpoint,
    pub(crate) cdrs: store::CdrWriter,
    pub(crate) directory: crate::directory::Directory,
    pub(crate) registrar: Arc<Registrar>,
    pub(crate) auth: Arc<Authenticator>,
    pub(crate) router: Arc<dyn Router>,
    pub(crate) nodes: Nodes,
    pub(crate) conferences: Conferences,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) config: B2buaConfig,
    routes: Mutex<Routes>,
    limiter: Mutex<limit::Limiter>,
}

/// The B2BUA. Cheap to clone.
#[derive(Clone)]
pub struct B2bua {
    ctx: Arc<Ctx>,
}

#[allow(clippy::too_many_arguments)]
impl B2bua {
    pub(crate) fn new(
        endpoint: Endpoint,
        cdrs: store::CdrWriter,
        directory: crate::directory::Directory,
        registrar: Arc<Registrar>,
        auth: Arc<Authenticator>,
        router: Arc<dyn Router>,
        nodes: Nodes,
        metrics: Arc<Metrics>,
        config: B2buaConfig,
    ) -> B2bua {
        let limiter = limit::Limiter::new(config.invite_rate);
        let mut media_events = nodes.media_events();
        let b2bua = B2bua {
            ctx: Arc::new(Ctx {
                endpoint,
                cdrs,
                directory,
                registrar,
                auth,
                router,
                conferences: Conferences::new(nodes.clone(), config.conference.clone()),
                nodes,
                metrics,
                config,
                routes: Mutex::new(Routes::default()),
                limiter: Mutex::new(limiter),
            }),
        };
        // Media timeouts go to their calls, for as long as the B2BUA lives.
        let ctx = Arc::downgrade(&b2bua.ctx);
        tokio::spawn(async move {
            loop {
                let ev = match media_events.recv().await {
                    Ok(ev) => ev,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                };
                let Some(ctx) = ctx.upgrade() else { return };
                if let proto::message::Event::MediaTimeout { call_id, leg } = ev {
                    let key = ctx.routes().media_calls.get(&call_id.0).copied();
                    ctx.deliver(key, CallEvent::MediaTimeout { leg });
                }
            }
        });
        b2bua
    }

    /// Takes one endpoint event. Never waits: answers go out from tasks,
    /// so the endpoint is never blocked on its own event queue.
    pub fn on_event(&self, ev: Event) {
        let ctx = &self.ctx;
        match ev {
            Event::NewRequest { tx, msg, from } => self.on_request(tx, msg, from),
            Event::Response { tx, msg } => {
                let key = msg
                    .call_id()
                    .zip(msg.from_tag())
                    .and_then(|(c, t)| ctx.route_dialog(c, t));
                ctx.deliver(key, CallEvent::Response { tx, msg });
            }
            Event::AckFor2xx { msg, .. } => {
                let key = msg
                    .call_id()
                    .zip(msg.to_tag())
                    .and_then(|(c, t)| ctx.route_dialog(c, t));
                ctx.deliver(key, CallEvent::Ack { msg });
            }
            Event::Cancelled { tx, .. } => {
                let key = ctx.routes().txs.get(&tx).copied();
                ctx.deliver(key, CallEvent::Cancelled);
            }
            Event::Timeout { tx, response, .. } => {
                ctx.metrics.transaction_timeout();
                let key = response
                    .as_ref()
                    .and_then(|r| r.call_id().zip(r.from_tag()))
                    .and_then(|(c, t)| ctx.route_dialog(c, t))
                    .or_else(|| ctx.routes().txs.get(&tx).copied());
                // A server transaction's Timer H (no ACK for our non-2xx)
                // needs nothing from the call.
                if response.is_some() {
                    ctx.deliver(key, CallEvent::Failed { tx, response });
                }
            }
            Event::TransportError { tx } => {
                let key = ctx.routes().txs.get(&tx).copied();
                ctx.deliver(key, CallEvent::Failed { tx, response: None });
            }
            Event::Terminated { tx } => {
                ctx.routes().txs.remove(&tx);
            }
        }
    }

    fn on_request(&self, tx: TxId, msg: Message, from: Peer) {
        let ctx = &self.ctx;
        let method = msg.method().cloned();
        if msg.to_tag().is_some() {
            let key = msg
                .call_id()
                .zip(msg.to_tag())
                .and_then(|(c, t)| ctx.route_dialog(c, t));
            match key {
                Some(key) => ctx.deliver(Some(key), CallEvent::Request { tx, msg }),
                None => ctx.reply(tx, &msg, 481, None),
            }
            return;
        }
        if method != Some(Method::Invite) {
            ctx.reply(tx, &msg, 481, None);
            return;
        }
        if let Some(reason) = self.refusal(&msg, from) {
            match reason {
                Refusal::Flood => {
                    let mut resp = Message::response_to(&msg, 503, Some("Too Many Calls"));
                    resp.set_to_tag(&sip::ids::new_tag());
                    resp.push_header(
                        HeaderName::RetryAfter,
                        ctx.config.invite_rate.retry_after_secs.to_string(),
                    );
                    ctx.send_response(tx, resp);
                }
                Refusal::Hops => ctx.reply(tx, &msg, 483, None),
                Refusal::Loop => ctx.reply(tx, &msg, 482, None),
            }
            return;
        }
        let (inbox_tx, inbox) = mpsc::unbounded_channel();
        let a_tag = sip::ids::new_tag();
        let key = {
            let mut routes = ctx.routes();
            routes.next_key += 1;
            let key = routes.next_key;
            if let Some(call_id) = msg.call_id() {
                routes.add_dialog(key, call_id, &a_tag);
                routes.media_calls.insert(call_id.to_string(), key);
                routes.owned.entry(key).or_default().media_call = Some(call_id.to_string());
            }
            routes.add_tx(key, tx);
            routes.inboxes.insert(key, inbox_tx);
            key
        };
        let task = tokio::spawn(call::run(ctx.clone(), key, tx, msg, from, a_tag, inbox));
        let mut routes = ctx.routes();
        // A call that ended before we got here must not leave its handle.
        if routes.inboxes.contains_key(&key) {
            routes.tasks.insert(key, task.abort_handle());
        }
    }

    fn refusal(&self, msg: &Message, from: Peer) -> Option<Refusal> {
        let ctx = &self.ctx;
        if !ctx
            .limiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .allow(from.addr.ip(), std::time::Instant::now())
        {
            return Some(Refusal::Flood);
        }
        if msg.max_forwards() == Some(0) {
            return Some(Refusal::Hops);
        }
        let routes = ctx.routes();
        // Our own leg B coming back (through a forwarding rule, a contact
        // that points at us): same Call-ID and From tag, or one of our
        // branches in its Vias.
        let ours = msg
            .call_id()
            .zip(msg.from_tag())
            .is_some_and(|(c, t)| routes.dialogs.contains_key(&(c.to_string(), t.to_string())));
        let via_ours = msg.vias().any(|v| {
            v.ok()
                .and_then(|v| v.branch())
                .is_some_and(|b| routes.branches.contains(b))
        });
        (ours || via_ours).then_some(Refusal::Loop)
    }

    /// The calls in progress.
    pub fn conferences(&self) -> &Conferences {
        &self.ctx.conferences
    }

    pub fn calls(&self) -> Vec<CallInfo> {
        let infos: Vec<CallInfo> = self.ctx.routes().info.values().cloned().collect();
        infos
            .into_iter()
            .map(|mut c| {
                c.media_alive = c
                    .media_node
                    .as_ref()
                    .is_none_or(|n| self.ctx.nodes.is_alive(n));
                c
            })
            .collect()
    }

    /// Stops every call task (no BYEs: the process is going away).
    pub fn shutdown(&self) {
        let mut routes = self.ctx.routes();
        for (_, task) in routes.tasks.drain() {
            task.abort();
        }
        routes.inboxes.clear();
    }
}

enum Refusal {
    Flood,
    Hops,
    Loop,
}

impl Ctx {
    fn routes(&self) -> MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn route_dialog(&self, call_id: &str, tag: &str) -> Option<CallKey> {
        self.routes()
            .dialogs
            .get(&(call_id.to_string(), tag.to_string()))
            .copied()
    }

    fn deliver(&self, key: Option<CallKey>, ev: CallEvent) {
        let sent = key
            .and_then(|k| self.routes().inboxes.get(&k).cloned())
            .is_some_and(|inbox| inbox.send(ev).is_ok());
        if !sent {
            tracing::debug!("event for no live call dropped");
        }
    }

    /// Answers `req` from a task with a fresh To tag.
    fn reply(&self, tx: TxId, req: &Message, code: u16, reason: Option<&str>) {
        let mut resp = Message::response_to(req, code, reason);
        resp.set_to_tag(&sip::ids::new_tag());
        self.send_response(tx, resp);
    }

    fn send_response(&self, tx: TxId, resp: Message) {
        let endpoint = self.endpoint.clone();
        if let Some(code) = resp.status() {
            self.metrics.sip_response(code);
        }
        tokio::spawn(async move {
            if let Err(e) = endpoint.respond(tx, resp).await {
                tracing::debug!(%tx, error = %e, "response not sent");
            }
        });
    }

    /// Registers a leg's (Call-ID, our tag) for the call.
    pub(crate) fn add_dialog(&self, key: CallKey, call_id: &str, tag: &str) {
        self.routes().add_dialog(key, call_id, tag);
    }

    pub(crate) fn add_branch(&self, branch: &str) {
        self.routes().branches.insert(branch.to_string());
    }

    pub(crate) fn add_tx(&self, key: CallKey, tx: TxId) {
        self.routes().add_tx(key, tx);
    }

    pub(crate) fn set_info(&self, key: CallKey, info: CallInfo) {
        self.routes().info.insert(key, info);
    }

    /// Forgets the call: later events for it are dropped.
    pub(crate) fn remove_call(&self, key: CallKey, branches: &[String]) {
        let mut routes = self.routes();
        let owned = routes.owned.remove(&key).unwrap_or_default();
        for d in &owned.dialogs {
            if routes.dialogs.get(d) == Some(&key) {
                routes.dialogs.remove(d);
            }
        }
        for tx in &owned.txs {
            if routes.txs.get(tx) == Some(&key) {
                routes.txs.remove(tx);
            }
        }
        if let Some(c) = &owned.media_call
            && routes.media_calls.get(c) == Some(&key)
        {
            routes.media_calls.remove(c);
        }
        routes.inboxes.remove(&key);
        routes.tasks.remove(&key);
        routes.info.remove(&key);
        for b in branches {
            routes.branches.remove(b);
        }
    }

    /// Our address for requests over `transport`: the listener's, with the
    /// advertised address when it is bound to 0.0.0.0.
    pub(crate) fn local_addr(&self, transport: TransportKind) -> SocketAddr {
        let t = match transport {
            TransportKind::Tcp => sip_transport::Transport::Tcp,
            TransportKind::Tls => sip_transport::Transport::Tls,
            TransportKind::Ws => sip_transport::Transport::Ws,
            TransportKind::Wss => sip_transport::Transport::Wss,
            TransportKind::Udp | TransportKind::Sctp => sip_transport::Transport::Udp,
        };
        let layer = self.endpoint.transport();
        let mut addr = layer
            .local_addr(t)
            .or_else(|| layer.listeners().first().map(|(_, a)| *a))
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5060)));
        if addr.ip().is_unspecified() {
            addr.set_ip(
                self.config
                    .advertise
                    .unwrap_or(IpAddr::from([127, 0, 0, 1])),
            );
        }
        addr
    }
}
