//! `tandem sip serve`: a SIP endpoint for checking that phones, trunks and
//! test tools interoperate with tandem's SIP stack over every transport. It
//! answers OPTIONS; checks digest credentials on REGISTER and INVITE when
//! users are configured; answers INVITEs (signalling only: the SDP answer is
//! `inactive`, since no media node is attached) and keeps their dialogs for
//! re-INVITE, UPDATE and BYE; and refuses what RFC 3261 §8.2 says to refuse.
//!
//! Registrations are answered but not stored: routing to registered phones
//! is the brain's job.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;
use sip::auth::{Algorithm, AuthError, Credentials, DigestServer};
use sip::dialog::{Dialog, DialogId};
use sip::sdp::{
    Capabilities, CodecOrder, Direction, LocalCodec, LocalEndpoint, OfferBuilder,
    SessionDescription,
};
use sip::transaction::{Event, Peer, TxId};
use sip::uas::{UasPolicy, check_request};
use sip::{HeaderName, Message, Method};
use sip_transport::endpoint::{Endpoint, EndpointConfig};
use sip_transport::guard::Verdict;
use sip_transport::{ListenerConfig, PemSource, TlsIdentity, TransportConfig};
use tokio::sync::Mutex;
use tracing::{info, warn};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// UDP listen address (repeatable).
    #[arg(long)]
    pub udp: Vec<SocketAddr>,
    /// TCP listen address (repeatable).
    #[arg(long)]
    pub tcp: Vec<SocketAddr>,
    /// TLS listen address (repeatable); needs --cert and --key.
    #[arg(long)]
    pub tls: Vec<SocketAddr>,
    /// WebSocket (RFC 7118) listen address (repeatable).
    #[arg(long)]
    pub ws: Vec<SocketAddr>,
    /// Secure WebSocket listen address (repeatable); needs --cert and --key.
    #[arg(long)]
    pub wss: Vec<SocketAddr>,
    /// PEM certificate chain for TLS and WSS.
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// PEM private key for TLS and WSS.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// A user allowed to REGISTER and call, as USER:PASSWORD (repeatable).
    /// Without any, requests are not challenged.
    #[arg(long = "user")]
    pub users: Vec<String>,
    /// The digest realm.
    #[arg(long, default_value = "tandem")]
    pub realm: String,
    /// How long to ring before answering an INVITE, in milliseconds (a
    /// CANCEL in that window ends the call with 487).
    #[arg(long, default_value_t = 0)]
    pub ring_ms: u64,
    /// Answer every INVITE with this status instead of 200 (e.g. 486).
    #[arg(long)]
    pub reject: Option<u16>,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut listeners = Vec::new();
    listeners.extend(args.udp.iter().map(|a| ListenerConfig::udp(*a)));
    listeners.extend(args.tcp.iter().map(|a| ListenerConfig::tcp(*a)));
    listeners.extend(args.ws.iter().map(|a| ListenerConfig::ws(*a)));
    if !args.tls.is_empty() || !args.wss.is_empty() {
        let (Some(cert), Some(key)) = (&args.cert, &args.key) else {
            anyhow::bail!("--tls and --wss need --cert and --key");
        };
        let identity = TlsIdentity {
            cert_chain: PemSource::File(cert.clone()),
            key: PemSource::File(key.clone()),
        };
        listeners.extend(
            args.tls
                .iter()
                .map(|a| ListenerConfig::tls(*a, identity.clone())),
        );
        listeners.extend(
            args.wss
                .iter()
                .map(|a| ListenerConfig::wss(*a, identity.clone())),
        );
    }
    if listeners.is_empty() {
        listeners.push(ListenerConfig::udp(SocketAddr::from((
            Ipv4Addr::LOCALHOST,
            5060,
        ))));
    }
    let mut users = HashMap::new();
    for u in &args.users {
        let (name, pass) = u
            .split_once(':')
            .with_context(|| format!("--user {u}: expected USER:PASSWORD"))?;
        users.insert(
            name.to_string(),
            sip::auth::ha1(Algorithm::Md5, name, &args.realm, pass),
        );
    }

    let mut cfg = EndpointConfig {
        transport: TransportConfig {
            listeners,
            ..TransportConfig::default()
        },
        ..EndpointConfig::default()
    };
    let (endpoint, mut events) = Endpoint::start(cfg.clone()).await?;
    for (transport, addr) in endpoint.transport().listeners() {
        // Scripts and tests wait for this line to know the ports.
        println!("listening {transport} {addr}");
    }
    if let Some((_, addr)) = endpoint.transport().listeners().first() {
        cfg.transactions.sent_by = addr.to_string();
    }
    let secret: [u8; 32] = rand_bytes();
    let ua = Arc::new(Ua {
        endpoint,
        policy: UasPolicy {
            registrar: true,
            ..UasPolicy::default()
        },
        digest: DigestServer::new(args.realm.clone(), &secret),
        users,
        ring: Duration::from_millis(args.ring_ms),
        reject: args.reject,
        calls: Mutex::new(Calls::default()),
    });

    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                // In order: a CANCEL must find the INVITE it cancels.
                Some(ev) => ua.on_event(ev).await,
                None => return Ok(()),
            },
            _ = tokio::signal::ctrl_c() => {
                let s = ua.endpoint.transport().stats().snapshot();
                info!(?s, "stopping");
                return Ok(());
            }
        }
    }
}

fn rand_bytes() -> [u8; 32] {
    let mut b = [0u8; 32];
    for chunk in b.chunks_mut(8) {
        chunk.copy_from_slice(&sip::ids::random_u64().to_le_bytes());
    }
    b
}

#[derive(Default)]
struct Calls {
    dialogs: HashMap<DialogId, Dialog>,
    /// INVITE server transactions still ringing, by transaction.
    ringing: HashMap<TxId, Message>,
}

struct Ua {
    endpoint: Endpoint,
    policy: UasPolicy,
    digest: DigestServer,
    users: HashMap<String, String>,
    ring: Duration,
    reject: Option<u16>,
    calls: Mutex<Calls>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

enum Auth {
    Ok,
    /// Send this response.
    Refuse(Box<Message>),
    /// Send nothing: the source has spent its budget.
    Silent,
}

impl Ua {
    async fn on_event(self: &Arc<Self>, ev: Event) {
        match ev {
            Event::NewRequest { tx, msg, from } => self.on_request(tx, msg, from).await,
            Event::Cancelled { tx, .. } => {
                let invite = self.calls.lock().await.ringing.remove(&tx);
                if let Some(invite) = invite {
                    let mut resp = Message::response_to(&invite, 487, None);
                    resp.set_to_tag(&sip::ids::new_tag());
                    self.send(tx, resp).await;
                }
            }
            Event::AckFor2xx { msg, .. } => {
                if let Some(id) = DialogId::for_incoming_request(&msg) {
                    let mut calls = self.calls.lock().await;
                    if let Some(d) = calls.dialogs.get_mut(&id) {
                        let _ = d.on_request(&msg);
                    }
                }
            }
            Event::Timeout { tx, .. } => {
                self.calls.lock().await.ringing.remove(&tx);
            }
            _ => {}
        }
    }

    async fn send(&self, tx: TxId, resp: Message) {
        if let Err(e) = self.endpoint.respond(tx, resp).await {
            warn!(%tx, error = %e, "response not sent");
        }
    }

    async fn on_request(self: &Arc<Self>, tx: TxId, req: Message, from: Peer) {
        let Some(method) = req.method().cloned() else {
            return;
        };
        tracing::debug!(peer = %from.addr, transport = ?from.transport, %method, call_id = req.call_id().unwrap_or(""), "request");
        if let Err(resp) = check_request(&req, &self.policy) {
            self.send(tx, *resp).await;
            return;
        }
        // In-dialog requests.
        if req.to_tag().is_some() {
            self.in_dialog(tx, &req).await;
            return;
        }
        match method {
            Method::Options => {
                let mut resp = Message::response_to(&req, 200, None);
                resp.set_to_tag(&sip::ids::new_tag());
                resp.push_header(HeaderName::Allow, self.policy.allow());
                resp.push_header(HeaderName::Accept, "application/sdp");
                resp.push_header(HeaderName::Supported, "replaces, timer");
                self.send(tx, resp).await;
            }
            Method::Register => match self.authenticate(&req, from.addr.ip()).await {
                Auth::Ok => {
                    let mut resp = Message::response_to(&req, 200, None);
                    resp.set_to_tag(&sip::ids::new_tag());
                    let expires = req.expires().unwrap_or(3600);
                    for c in req.values(HeaderName::Contact) {
                        if c.trim() != "*" {
                            let c = if c.contains("expires=") {
                                c.to_string()
                            } else {
                                format!("{c};expires={expires}")
                            };
                            resp.push_header(HeaderName::Contact, c);
                        }
                    }
                    self.send(tx, resp).await;
                }
                Auth::Refuse(resp) => self.send(tx, *resp).await,
                Auth::Silent => {}
            },
            Method::Invite => match self.authenticate(&req, from.addr.ip()).await {
                Auth::Ok => self.answer_invite(tx, req).await,
                Auth::Refuse(resp) => self.send(tx, *resp).await,
                Auth::Silent => {}
            },
            // A BYE or other in-dialog method without a To tag matches no dialog.
            _ => {
                let mut resp = Message::response_to(&req, 481, None);
                resp.set_to_tag(&sip::ids::new_tag());
                self.send(tx, resp).await;
            }
        }
    }

    /// Digest check (RFC 3261 §22.4 with RFC 7616): 401 with a challenge
    /// when credentials are missing, stale or wrong; repeated failures from
    /// one address spend its budget and are then ignored.
    async fn authenticate(&self, req: &Message, ip: IpAddr) -> Auth {
        if self.users.is_empty() {
            return Auth::Ok;
        }
        let now = unix_now();
        let challenge = |stale: bool| {
            let mut resp = Message::response_to(req, 401, None);
            resp.set_to_tag(&sip::ids::new_tag());
            resp.push_header(
                HeaderName::WwwAuthenticate,
                self.digest
                    .challenge(now, Algorithm::Md5, stale)
                    .to_string(),
            );
            Auth::Refuse(Box::new(resp))
        };
        let Some(value) = req.header(HeaderName::Authorization) else {
            return challenge(false);
        };
        let method = req.method().map(Method::as_str).unwrap_or("");
        let result = Credentials::parse(value).and_then(|creds| {
            let ha1 = self
                .users
                .get(&creds.username)
                .ok_or(AuthError::BadResponse)?;
            if creds.realm != self.digest.realm() {
                return Err(AuthError::WrongRealm);
            }
            self.digest
                .verify(now, method, &creds, ha1, Some(req.body()))
        });
        match result {
            Ok(()) => Auth::Ok,
            Err(AuthError::Stale) => challenge(true),
            Err(e) => {
                warn!(%ip, error = %e, "authentication failed");
                match self.endpoint.offence(ip).await {
                    Ok(Verdict::Answer) => {
                        let mut resp = Message::response_to(req, 403, Some("Bad credentials"));
                        resp.set_to_tag(&sip::ids::new_tag());
                        Auth::Refuse(Box::new(resp))
                    }
                    _ => Auth::Silent,
                }
            }
        }
    }

    async fn answer_invite(self: &Arc<Self>, tx: TxId, req: Message) {
        let tag = sip::ids::new_tag();
        let contact = self.contact();
        if let Some(code) = self.reject {
            let mut resp = Message::response_to(&req, code, None);
            resp.set_to_tag(&tag);
            self.send(tx, resp).await;
            return;
        }
        let Ok(mut dialog) = Dialog::from_uas(&req, &tag, &contact) else {
            let mut resp = Message::response_to(&req, 400, Some("Cannot form a dialog"));
            resp.set_to_tag(&tag);
            self.send(tx, resp).await;
            return;
        };
        let ringing = dialog.response(&req, 180, None);
        self.send(tx, ringing).await;
        if self.ring.is_zero() {
            self.accept(tx, req, dialog).await;
            return;
        }
        self.calls.lock().await.ringing.insert(tx, req.clone());
        let ua = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(ua.ring).await;
            // Cancelled while ringing: the 487 has gone already.
            if ua.calls.lock().await.ringing.remove(&tx).is_some() {
                ua.accept(tx, req, dialog).await;
            }
        });
    }

    async fn accept(&self, tx: TxId, req: Message, mut dialog: Dialog) {
        let body = match session_answer(&req) {
            Ok(body) => body,
            Err(code) => {
                let resp = dialog.response(&req, code, None);
                self.send(tx, resp).await;
                return;
            }
        };
        let mut ok = dialog.response(&req, 200, None);
        ok.set_body(body.to_string(), Some("application/sdp"));
        self.calls
            .lock()
            .await
            .dialogs
            .insert(dialog.id().clone(), dialog);
        self.send(tx, ok).await;
    }

    async fn in_dialog(&self, tx: TxId, req: &Message) {
        let resp = {
            let mut calls = self.calls.lock().await;
            let id = DialogId::for_incoming_request(req);
            match id.as_ref().and_then(|id| calls.dialogs.get_mut(id)) {
                None => {
                    let mut r = Message::response_to(req, 481, None);
                    r.set_to_tag(req.to_tag().unwrap_or(""));
                    r
                }
                Some(dialog) => match dialog.on_request(req) {
                    Err(e) => e
                        .response_to(req)
                        .unwrap_or_else(|| Message::response_to(req, 500, None)),
                    Ok(()) => match req.method() {
                        Some(Method::Bye) => {
                            let r = dialog.response(req, 200, None);
                            if let Some(id) = id {
                                calls.dialogs.remove(&id);
                            }
                            r
                        }
                        Some(Method::Invite | Method::Update) => match session_answer(req) {
                            Ok(body) => {
                                let mut r = dialog.response(req, 200, None);
                                r.set_body(body.to_string(), Some("application/sdp"));
                                r
                            }
                            Err(code) => dialog.response(req, code, None),
                        },
                        _ => dialog.response(req, 200, None),
                    },
                },
            }
        };
        self.send(tx, resp).await;
    }

    fn contact(&self) -> String {
        let addr = self
            .endpoint
            .transport()
            .listeners()
            .first()
            .map_or_else(|| "127.0.0.1:5060".to_string(), |(_, a)| a.to_string());
        format!("<sip:tandem@{addr}>")
    }
}

/// The SDP for a 2xx: an answer to the request's offer, or an offer of our
/// own when the request had none (late offer). Signalling only, so every
/// stream is `inactive` at the discard port.
fn session_answer(req: &Message) -> Result<SessionDescription, u16> {
    let addr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let codecs = || {
        vec![
            LocalCodec::new("PCMU", 8000, 1),
            LocalCodec::new("PCMA", 8000, 1),
        ]
    };
    if req.body().is_empty() {
        let mut b = OfferBuilder::new(addr, 9).direction(Direction::Inactive);
        for c in codecs() {
            b = b.codec(c);
        }
        return b.build().map_err(|_| 500);
    }
    let text = std::str::from_utf8(req.body()).map_err(|_| 400u16)?;
    let offer = SessionDescription::parse(text).map_err(|e| e.sip_status())?;
    let mut caps = Capabilities::audio(codecs());
    caps.direction = Direction::Inactive;
    // The caller's preference wins: it knows its network.
    caps.order = CodecOrder::Offerer;
    let local = LocalEndpoint::new(addr, vec![9; offer.media.len()]);
    sip::sdp::answer(&offer, &caps, &local).map_err(|e| e.sip_status())
}
