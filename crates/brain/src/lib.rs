//! The brain: all signalling and all decisions. It is the only component
//! that speaks SIP or reads the subscriber tables; media nodes get their
//! work through the control protocol (`proto`).
//!
//! [`Brain::start`] binds the SIP transports and the node control port and
//! runs the event loop: requests pass `uas::check_request` first, then
//! REGISTER goes to the registrar, OPTIONS is answered here, and INVITE and
//! everything inside a call goes to the [`b2bua`]. The returned
//! [`BrainHandle`] tells where the brain listens, what it is doing, and
//! stops it.

pub mod auth;
pub mod b2bua;
pub mod cdr;
pub mod conference;
pub mod directory;
pub mod metrics;
pub mod nodes;
pub mod registrar;
pub mod routing;

use std::net::SocketAddr;
use std::sync::Arc;

use sip::transaction::Event;
use sip::uas::{UasPolicy, check_request};
use sip::{HeaderName, Message, Method};
use sip_transport::endpoint::{Endpoint, EndpointConfig};
use sip_transport::guard::GuardConfig;
use sip_transport::{ListenerConfig, Transport, TransportConfig, TransportError};
use store::Store;
use tokio::task::JoinHandle;

use crate::auth::Authenticator;
use crate::b2bua::{B2bua, B2buaConfig, CallInfo};
use crate::directory::Directory;
use crate::metrics::Metrics;
use crate::nodes::{NodeSummary, Nodes, NodesConfig};
use crate::registrar::{Registrar, RegistrarConfig};
use crate::routing::{DirectoryRouter, Router};

/// Everything the brain needs to know before it starts.
#[derive(Debug, Clone)]
pub struct BrainConfig {
    /// SIP listeners and transport limits.
    pub sip: TransportConfig,
    /// Transaction timers and limits.
    pub transactions: sip::transaction::Config,
    /// Where media nodes connect.
    pub node_listen: SocketAddr,
    /// Heartbeat interval and how long a silent node lives.
    pub node_protocol: proto::brain::BrainConfig,
    /// The media port plan handed to SBCs.
    pub media: NodesConfig,
    pub b2bua: B2buaConfig,
    /// Registration expiry bounds and NAT keep-alives.
    pub registrar: RegistrarConfig,
    /// Where CDRs wait while the store refuses them (`tandem up`:
    /// `<data dir>/cdr-spool.jsonl`). Without one, such CDRs are only logged.
    pub cdr_spool: Option<std::path::PathBuf>,
    /// When a source that keeps sending garbage or wrong passwords is
    /// ignored, and for how long.
    pub guard: GuardConfig,
}

impl Default for BrainConfig {
    fn default() -> Self {
        Self {
            sip: TransportConfig {
                listeners: vec![ListenerConfig::udp(SocketAddr::from((
                    [127, 0, 0, 1],
                    5060,
                )))],
                ..TransportConfig::default()
            },
            transactions: sip::transaction::Config::default(),
            node_listen: SocketAddr::from(([127, 0, 0, 1], 5090)),
            node_protocol: proto::brain::BrainConfig::default(),
            media: NodesConfig::default(),
            b2bua: B2buaConfig::default(),
            registrar: RegistrarConfig::default(),
            cdr_spool: None,
            guard: GuardConfig::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BrainError {
    #[error("SIP transport: {0}")]
    Transport(#[from] TransportError),
    #[error("node control listener on {addr}: {source}")]
    NodeListen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

pub struct Brain;

impl Brain {
    /// Starts a brain that routes with the built-in directory router.
    pub async fn start(config: BrainConfig, store: Store) -> Result<BrainHandle, BrainError> {
        let directory = Directory::start(store.clone());
        let router = Arc::new(DirectoryRouter::new(directory.0.clone()));
        Self::start_inner(config, store, directory, router).await
    }

    /// Starts a brain whose calls are routed by `router`.
    pub async fn start_with_router(
        config: BrainConfig,
        store: Store,
        router: Arc<dyn Router>,
    ) -> Result<BrainHandle, BrainError> {
        let directory = Directory::start(store.clone());
        Self::start_inner(config, store, directory, router).await
    }

    async fn start_inner(
        config: BrainConfig,
        store: Store,
        (directory, directory_poller): (Directory, JoinHandle<()>),
        router: Arc<dyn Router>,
    ) -> Result<BrainHandle, BrainError> {
        let metrics = Arc::new(Metrics::new());
        let nodes = Nodes::start(
            config.node_listen,
            config.node_protocol.clone(),
            config.media.clone(),
            metrics.clone(),
        )
        .await
        .map_err(|source| BrainError::NodeListen {
            addr: config.node_listen,
            source,
        })?;
        let started = Endpoint::start(EndpointConfig {
            transport: config.sip.clone(),
            transactions: config.transactions.clone(),
            guard: config.guard.clone(),
            ..EndpointConfig::default()
        })
        .await;
        let (endpoint, mut events) = match started {
            Ok(s) => s,
            Err(e) => {
                nodes.shutdown();
                directory_poller.abort();
                return Err(e.into());
            }
        };
        // Nonces are signed with a key of this process: after a restart a
        // phone's next request is simply challenged again.
        let secret: Vec<u8> = (0..4)
            .flat_map(|_| sip::ids::random_u64().to_le_bytes())
            .collect();
        let auth = Authenticator::new(store.clone(), endpoint.clone(), &secret)
            .with_metrics((*metrics).clone())
            .with_directory(directory.clone());
        let registrar = Arc::new(
            Registrar::new(
                store.clone(),
                endpoint.clone(),
                auth.clone(),
                config.registrar.clone(),
            )
            .with_metrics((*metrics).clone())
            .with_directory(directory.clone()),
        );
        let auth = Arc::new(auth);
        // The writer task ends by itself once every handle is gone.
        let (cdrs, _writer) = store::CdrWriter::start(store.clone(), config.cdr_spool.clone());
        let b2bua = B2bua::new(
            endpoint.clone(),
            cdrs.clone(),
            directory,
            registrar.clone(),
            auth,
            router,
            nodes.clone(),
            metrics.clone(),
            config.b2bua.clone(),
        );
        let policy = policy();
        let event_loop = {
            let endpoint = endpoint.clone();
            let b2bua = b2bua.clone();
            let metrics = metrics.clone();
            tokio::spawn(async move {
                while let Some(ev) = events.recv().await {
                    // Keep-alive OPTIONS results belong to the registrar; it
                    // answers at once (a store write only when it drops a
                    // binding), so the loop is not held up.
                    if !matches!(ev, Event::NewRequest { .. }) && registrar.on_event(&ev).await {
                        continue;
                    }
                    dispatch(ev, &endpoint, &policy, &registrar, &b2bua, &metrics);
                }
            })
        };
        for (t, addr) in endpoint.transport().listeners() {
            tracing::info!(transport = %t, %addr, "SIP listening");
        }
        tracing::info!(addr = %nodes.local_addr(), "node control listening");
        Ok(BrainHandle {
            sip_addrs: endpoint.transport().listeners().to_vec(),
            endpoint,
            nodes,
            b2bua,
            metrics,
            event_loop,
            cdrs,
            directory_poller,
        })
    }
}

/// What the brain implements; the rest is refused by `check_request`.
fn policy() -> UasPolicy {
    UasPolicy {
        methods: vec![
            Method::Invite,
            Method::Ack,
            Method::Bye,
            Method::Cancel,
            Method::Options,
            Method::Register,
            Method::Info,
            Method::Update,
        ],
        // No 100rel, timer or replaces yet: a request that requires them
        // gets 420 rather than a call that silently lacks them.
        extensions: vec!["path", "outbound"],
        ..UasPolicy::default()
    }
}

/// Hands one endpoint event to whoever handles it. Never waits on the
/// endpoint (answers go out from tasks): the endpoint may itself be
/// waiting for this loop to take its next event.
fn dispatch(
    ev: Event,
    endpoint: &Endpoint,
    policy: &UasPolicy,
    registrar: &Arc<Registrar>,
    b2bua: &B2bua,
    metrics: &Metrics,
) {
    let Event::NewRequest { tx, msg, from } = ev else {
        b2bua.on_event(ev);
        return;
    };
    let Some(method) = msg.method().cloned() else {
        return;
    };
    metrics.sip_request(&method);
    if let Err(resp) = check_request(&msg, policy) {
        metrics.sip_response(resp.status().unwrap_or(0));
        let endpoint = endpoint.clone();
        tokio::spawn(async move {
            let _ = endpoint.respond(tx, *resp).await;
        });
        return;
    }
    match method {
        Method::Register => {
            let registrar = registrar.clone();
            tokio::spawn(async move { registrar.on_register(tx, msg, from).await });
        }
        Method::Options if msg.to_tag().is_none() => {
            let mut resp = Message::response_to(&msg, 200, None);
            resp.set_to_tag(&sip::ids::new_tag());
            resp.push_header(HeaderName::Allow, policy.allow());
            resp.push_header(HeaderName::Accept, "application/sdp");
            metrics.sip_response(200);
            let endpoint = endpoint.clone();
            tokio::spawn(async move {
                let _ = endpoint.respond(tx, resp).await;
            });
        }
        _ => b2bua.on_event(Event::NewRequest { tx, msg, from }),
    }
}

/// A running brain.
pub struct BrainHandle {
    sip_addrs: Vec<(Transport, SocketAddr)>,
    endpoint: Endpoint,
    nodes: Nodes,
    b2bua: B2bua,
    metrics: Arc<Metrics>,
    event_loop: JoinHandle<()>,
    cdrs: store::CdrWriter,
    directory_poller: JoinHandle<()>,
}

impl BrainHandle {
    /// The bound SIP listeners (real ports).
    pub fn sip_addrs(&self) -> &[(Transport, SocketAddr)] {
        &self.sip_addrs
    }

    /// The first listener of `transport`.
    pub fn sip_addr(&self, transport: Transport) -> Option<SocketAddr> {
        self.sip_addrs
            .iter()
            .find(|(t, _)| *t == transport)
            .map(|(_, a)| *a)
    }

    /// Where media nodes connect.
    pub fn node_addr(&self) -> SocketAddr {
        self.nodes.local_addr()
    }

    /// The metrics in Prometheus text format.
    pub fn metrics_text(&self) -> String {
        self.metrics.cdr_writer(self.cdrs.stats());
        self.metrics.encode()
    }

    pub fn calls(&self) -> Vec<CallInfo> {
        self.b2bua.calls()
    }

    pub fn nodes(&self) -> Vec<NodeSummary> {
        self.nodes.summary()
    }

    /// The conference rooms with anyone in them.
    pub async fn conferences(&self) -> Vec<conference::RoomInfo> {
        self.b2bua.conferences().list().await
    }

    /// The rooms, to lock, kick, mute, record or end.
    pub fn rooms(&self) -> &conference::Conferences {
        self.b2bua.conferences()
    }

    /// Waits until every CDR of a call that has ended is committed to the
    /// store or spooled.
    pub async fn flush_cdrs(&self) {
        self.cdrs.flush().await;
    }

    /// Stops taking SIP and node traffic and drops every call task. Calls
    /// up at the time keep their media on the SBCs. The CDR writer finishes
    /// in the background; [`BrainHandle::close`] waits for it.
    pub fn shutdown(self) {
        self.stop();
    }

    fn stop(&self) {
        self.directory_poller.abort();
        self.event_loop.abort();
        self.b2bua.shutdown();
        self.endpoint.transport().shutdown();
        self.nodes.shutdown();
    }

    /// [`BrainHandle::shutdown`], then waits (at most `grace`) until the CDR
    /// writer has committed or spooled every CDR it was given.
    pub async fn close(self, grace: std::time::Duration) {
        self.stop();
        if tokio::time::timeout(grace, self.cdrs.flush())
            .await
            .is_err()
        {
            let queued = self
                .cdrs
                .stats()
                .queued
                .load(std::sync::atomic::Ordering::Relaxed);
            tracing::error!(
                queued,
                "CDR writer still busy at shutdown: these CDRs are neither stored nor spooled"
            );
        }
    }
}
