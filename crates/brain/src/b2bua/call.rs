//! One call: a task owning leg A (we are the UAS towards the caller), leg
//! B (we are the UAC towards the callee), the media lease on an SBC and
//! the call's CDR.
//!
//! Leg B rings every binding of the callee at once, as a forking proxy
//! would (RFC 3261 §16.7): the first 2xx wins and the other forks are
//! cancelled (a 2xx that crosses the CANCEL is ACKed and hung up); a 6xx
//! ends the call at once; when every fork has failed the caller gets the
//! best of their answers. Before the answer, leg B stands for the fork
//! that last sent a provisional, so requests in any fork's early dialog
//! are relayed like those of a confirmed one.
//!
//! Set-up (tenant, caller, route, registrar, media) runs before leg B
//! exists; every refusal after the caller is known writes a CDR. Then the
//! task takes its events in order: leg B's responses, the caller's CANCEL,
//! in-dialog requests from either side (relayed to the other with the SDP
//! rewritten), ACKs, and its timers (no answer, 2xx retransmission).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::snapshot::{CallSnapshot, LegId};
use sip::dialog::{Dialog, DialogError};
use sip::sdp::SessionDescription;
use sip::transaction::{Peer, TransportKind, TxId};
use sip::{HeaderName, Message, Method, Uri};
use store::{Binding, HangupSide, Subscriber, Tenant};
use tokio::sync::mpsc;

use super::media::{self, SideMedia};
use super::member::{self, Member, Refusal};
use super::retransmit::{Due, Retransmit};
use super::silence::Silence;
use super::{CallEvent, CallInfo, CallKey, CallState, Ctx};
use crate::auth::AuthOutcome;
use crate::cdr::{CallRecord, Ending, leg_stats};
use crate::nodes::MediaLease;
use crate::registrar::Lookup;
use crate::routing::{CallContext, RouteDecision};

const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO";
const SDP: &str = "application/sdp";
const LEG_A: LegId = LegId(1);
const LEG_B: LegId = LegId(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    A,
    B,
}

impl Side {
    fn idx(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }

    fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }

    fn hangup(self) -> HangupSide {
        match self {
            Side::A => HangupSide::Caller,
            Side::B => HangupSide::Callee,
        }
    }
}

struct Leg {
    /// `None` on leg B until a response gives it a To tag.
    dialog: Option<Dialog>,
    /// Where requests to this side go: the caller's source address, the
    /// callee's binding source (what gets through their NAT).
    peer: Peer,
    call_id: String,
    /// The SBC port facing this side.
    port: u16,
    media: SideMedia,
    retransmit: Option<Retransmit>,
    /// The last ACK sent to this side, re-sent on a retransmitted 2xx.
    last_ack: Option<(u32, Message)>,
}

/// One INVITE of leg B, to one binding of the callee.
struct Fork {
    tx: TxId,
    peer: Peer,
    /// As sent: its dialog is made from it.
    invite: Message,
    /// Any response came.
    heard: bool,
    /// A provisional came, so it may be cancelled (RFC 3261 §9.1).
    provisional: bool,
    /// A CANCEL waits for its first provisional.
    cancel_owed: bool,
    /// Its INVITE transaction has its final response (or failed).
    done: bool,
    /// Its early dialog while another fork's is in leg B.
    dialog: Option<Dialog>,
    /// The ACK for its 2xx when another fork had already won.
    stray_ack: Option<Message>,
}

/// A request from one side relayed to the other, awaiting its answer.
struct Relay {
    origin: Side,
    tx: TxId,
    request: Message,
    /// It carried an offer (an SDP re-INVITE or UPDATE).
    offer: bool,
    /// The origin's media before the offer, restored if it is refused.
    before: SideMedia,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Ringing,
    /// The caller has its final answer; leg B is being wound up.
    Abandoning,
    Confirmed,
}

struct Call {
    ctx: Arc<Ctx>,
    key: CallKey,
    legs: [Leg; 2],
    invite_a: Message,
    tx_a: TxId,
    /// Leg B's INVITEs, one per binding rung.
    forks: Vec<Fork>,
    /// The fork whose (early) dialog and address leg B holds now: events
    /// of another fork swap theirs in first ([`Call::focus`]).
    current: usize,
    /// The fork that answered.
    winner: Option<usize>,
    /// The best final response of the forks so far (§16.7): code, reason,
    /// and whether we made it (a timeout, a lost connection).
    best: Option<(u16, Option<String>, bool)>,
    phase: Phase,
    no_answer_at: Option<Instant>,
    /// When an answered call is hung up by us ([`B2buaConfig::max_duration`]).
    hangup_at: Option<Instant>,
    /// Until leg B's first response (any, even 100).
    no_response_at: Option<Instant>,
    linger_until: Option<Instant>,
    lease: MediaLease,
    version: u64,
    record: CallRecord,
    ended: bool,
    done: bool,
    relays: HashMap<TxId, Relay>,
    /// An ACK owed to a side, to carry the answer that the other side
    /// gives in its own ACK (late offer).
    ack_owed: Option<(Side, u32)>,
    a_had_offer: bool,
    /// Leg B's SDP from an early (183) response, and the fork it came from.
    early_answer: Option<(usize, SessionDescription)>,
    branches: Vec<String>,
    info: CallInfo,
    silence: Silence,
}

pub(crate) async fn run(
    ctx: Arc<Ctx>,
    key: CallKey,
    tx: TxId,
    invite: Message,
    from: Peer,
    a_tag: String,
    mut inbox: mpsc::UnboundedReceiver<CallEvent>,
) {
    let mut branches = Vec::new();
    match setup(&ctx, key, tx, invite, from, a_tag).await {
        Some(Started::Bridge(mut call)) => {
            call.run(&mut inbox).await;
            branches = std::mem::take(&mut call.branches);
        }
        Some(Started::Conference(mut member)) => member.run(&mut inbox).await,
        None => {}
    }
    ctx.remove_call(key, &branches);
}

/// What a new call turned out to be.
enum Started {
    /// Subscriber to subscriber, through us.
    Bridge(Box<Call>),
    /// A caller answered by us and put in a conference room.
    Conference(Box<Member>),
}

/// The set-up phase's state, for refusing the call properly.
struct Setup<'a> {
    ctx: &'a Arc<Ctx>,
    tx: TxId,
    invite: &'a Message,
    record: Option<CallRecord>,
}

impl Setup<'_> {
    /// Answers the caller with `code` and ends the attempt; with a CDR once
    /// the caller is known.
    async fn fail(&mut self, code: u16, reason: Option<&str>) {
        let mut resp = Message::response_to(self.invite, code, reason);
        resp.set_to_tag(&sip::ids::new_tag());
        self.ctx.send_response(self.tx, resp);
        if let Some(record) = self.record.take() {
            let ending = Ending::Refused {
                code,
                side: HangupSide::System,
            };
            self.ctx.cdrs.submit(record.finish(ending, store::now_ms()));
            self.ctx.metrics.call_ended(ending.disposition().as_str());
        }
    }
}

fn uri_user(uri: &Uri) -> Option<String> {
    match uri {
        Uri::Sip(s) => s.user.clone(),
        Uri::Tel(t) => Some(t.digits().into_owned()),
        _ => None,
    }
}

fn uri_host(uri: &Uri) -> Option<String> {
    uri.as_sip().map(|s| s.host.to_string())
}

/// The tenant whose domain the caller's From names, else the
/// Request-URI's, else the To's.
async fn find_tenant(ctx: &Ctx, invite: &Message) -> Option<Tenant> {
    let hosts = [
        invite.from_header().ok().and_then(|f| uri_host(&f.uri)),
        invite.request_uri().and_then(uri_host),
        invite.to_header().ok().and_then(|t| uri_host(&t.uri)),
    ];
    for host in hosts.into_iter().flatten() {
        match ctx.directory.tenant_by_domain(&host).await {
            Ok(Some(t)) => return Some(t),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "tenant lookup failed"),
        }
    }
    None
}

/// The most bindings of one callee rung at once; a subscriber with more
/// gets its highest-q, most recently refreshed ones.
const MAX_FORKS: usize = 10;

/// Where to ring: every binding we can send to (RFC 3261 §16.6-style
/// parallel forking), highest q first, then the most recently refreshed.
fn ring_targets(mut bindings: Vec<Binding>) -> Vec<(Peer, Uri)> {
    bindings.sort_by_key(|b| std::cmp::Reverse((b.q_milli.unwrap_or(1000), b.updated_at)));
    bindings
        .iter()
        .filter_map(|b| Some((crate::registrar::peer_of(b)?, contact_uri(&b.contact)?)))
        .take(MAX_FORKS)
        .collect()
}

/// RFC 3261 §16.7 step 6, for a B2BUA's forks: of the final responses
/// (none being 2xx or 6xx, which end the call at once), the lowest class
/// wins; the first of its class, but in 4xx one the caller can act on
/// (credentials, media, extensions, a short address) goes first.
fn better(code: u16, than: u16) -> bool {
    let preferred = |c: u16| matches!(c, 401 | 407 | 415 | 420 | 484);
    let (class, best_class) = (code / 100, than / 100);
    class < best_class || (class == 4 && best_class == 4 && preferred(code) && !preferred(than))
}

fn contact_uri(contact: &str) -> Option<Uri> {
    Uri::parse(contact.trim())
        .ok()
        .or_else(|| sip::typed::NameAddr::parse(contact).ok().map(|n| n.uri))
}

/// Final responses from leg B as the caller should see them: a redirect
/// or a credentials challenge aimed at us means nothing to the caller,
/// and a 503 would make it try another server (RFC 3261 §16.7 step 6).
fn relay_code(code: u16) -> u16 {
    match code {
        300..=399 | 401 | 407 => 480,
        503 => 500,
        c => c,
    }
}

pub(super) fn via_for(ctx: &Ctx, peer: &Peer) -> (String, String) {
    let branch = sip::ids::new_branch();
    let via = format!(
        "SIP/2.0/{} {};branch={branch};rport",
        peer.transport.via_token(),
        ctx.local_addr(peer.transport)
    );
    (via, branch)
}

pub(super) fn contact_for(ctx: &Ctx, transport: TransportKind) -> String {
    let addr = ctx.local_addr(transport);
    match transport {
        TransportKind::Udp => format!("<sip:tandem@{addr}>"),
        t => format!(
            "<sip:tandem@{addr};transport={}>",
            t.via_token().to_ascii_lowercase()
        ),
    }
}

async fn setup(
    ctx: &Arc<Ctx>,
    key: CallKey,
    tx: TxId,
    invite: Message,
    from: Peer,
    a_tag: String,
) -> Option<Started> {
    let start_ms = store::now_ms();
    let mut s = Setup {
        ctx,
        tx,
        invite: &invite,
        record: None,
    };
    let Some(tenant) = find_tenant(ctx, &invite).await else {
        s.fail(403, Some("Unknown domain")).await;
        return None;
    };
    let caller = match caller(ctx, &invite, from, &tenant).await {
        Ok(c) => c,
        Err(resp) => {
            ctx.send_response(tx, *resp);
            return None;
        }
    };
    if !caller.enabled {
        s.fail(403, Some("Caller disabled")).await;
        return None;
    }
    ctx.metrics.call_started();
    let target = invite.request_uri().and_then(uri_user).unwrap_or_default();
    let call_id = invite.call_id().unwrap_or_default().to_string();
    s.record = Some(CallRecord {
        tenant_id: tenant.id,
        tenant_name: tenant.name.clone(),
        call_id: call_id.clone(),
        caller: caller.username.clone(),
        callee: target.clone(),
        direction: "internal",
        start_at: start_ms,
        answer_at: None,
        leg_a: None,
        leg_b: None,
    });
    let mut info = CallInfo {
        call_id: call_id.clone(),
        tenant: tenant.name.clone(),
        caller: caller.username.clone(),
        callee: target.clone(),
        state: CallState::Setup,
        started_at: start_ms,
        answered_at: None,
        media_node: None,
        media_alive: true,
    };
    ctx.set_info(key, info.clone());

    let route_ctx = CallContext {
        tenant: tenant.clone(),
        caller: caller.clone(),
        target,
        request_uri: invite
            .request_uri_text()
            .map(|u| u.into_owned())
            .unwrap_or_default(),
        from: invite.header(HeaderName::From).unwrap_or("").to_string(),
        to: invite.header(HeaderName::To).unwrap_or("").to_string(),
        headers: invite
            .headers()
            .map(|h| (h.raw_name.to_string(), h.value.to_string()))
            .collect(),
        source: from.addr,
    };
    let user = match ctx.router.route(&route_ctx).await {
        RouteDecision::Subscriber(user) => user,
        RouteDecision::Conference(room) => {
            let record = s.record.take()?;
            return match member::start(
                ctx, key, tx, &invite, from, &a_tag, &tenant, room, record, info,
            )
            .await
            {
                Ok(m) => Some(Started::Conference(Box::new(m))),
                Err(refusal) => {
                    let Refusal {
                        code,
                        reason,
                        record,
                    } = *refusal;
                    s.record = Some(record);
                    s.fail(code, Some(reason)).await;
                    None
                }
            };
        }
        RouteDecision::Reject { code, reason } => {
            s.fail(code, reason.as_deref()).await;
            return None;
        }
    };
    let (callee, bindings) = match ctx.registrar.lookup(&tenant, &user, store::now_ms()).await {
        Ok(Lookup::Online(sub, bindings)) if sub.enabled => (sub, bindings),
        Ok(Lookup::Online(..)) | Ok(Lookup::Offline(_)) => {
            s.fail(480, None).await;
            return None;
        }
        Ok(Lookup::Unknown) => {
            s.fail(404, None).await;
            return None;
        }
        Err(e) => {
            tracing::warn!(error = %e, "registrar lookup failed");
            s.fail(500, Some("Directory unavailable")).await;
            return None;
        }
    };
    if let Some(r) = s.record.as_mut() {
        r.callee = callee.username.clone();
    }
    info.callee = callee.username.clone();
    let targets = ring_targets(bindings);
    let Some(&(peer_b, _)) = targets.first() else {
        s.fail(480, Some("Unreachable contact")).await;
        return None;
    };
    let offer = match media::sdp_of(&invite) {
        Ok(o) => o,
        Err(code) => {
            s.fail(code, Some("Bad SDP")).await;
            return None;
        }
    };
    let contact_a = contact_for(ctx, from.transport);
    let Ok(dialog_a) = Dialog::from_uas(&invite, &a_tag, &contact_a) else {
        s.fail(400, Some("Cannot form a dialog")).await;
        return None;
    };
    let lease = match ctx.nodes.lease(&call_id, 2).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "no media relay for call");
            s.fail(503, Some("No media relay")).await;
            return None;
        }
    };
    info.media_node = Some(lease.node.clone());
    let &[port_a, port_b] = lease.ports.as_slice() else {
        ctx.nodes.free(&lease);
        s.fail(503, Some("No media relay")).await;
        return None;
    };

    // Leg B's INVITE: a new dialog of our own. Every fork shares its
    // Call-ID and From tag, as a forking proxy's branches do; each has its
    // own Via branch, Request-URI and destination.
    let b_call_id = sip::ids::new_call_id(&ctx.local_addr(peer_b.transport).ip().to_string());
    let b_tag = sip::ids::new_tag();
    let mut inv = Message::request(Method::Invite, targets[0].1.clone());
    let hops = invite.max_forwards().unwrap_or(70).saturating_sub(1);
    inv.push_header(HeaderName::MaxForwards, hops.to_string());
    let display = caller
        .display_name
        .as_deref()
        .map(|d| format!("\"{}\" ", d.replace(['"', '\\'], "")))
        .unwrap_or_default();
    inv.push_header(
        HeaderName::From,
        format!(
            "{display}<sip:{}@{}>;tag={b_tag}",
            caller.username, tenant.domain
        ),
    );
    inv.push_header(
        HeaderName::To,
        format!("<sip:{}@{}>", callee.username, tenant.domain),
    );
    inv.push_header(HeaderName::CallId, b_call_id.clone());
    inv.push_header(HeaderName::CSeq, "1 INVITE");
    inv.push_header(HeaderName::Allow, ALLOW);
    let a_media = offer
        .as_ref()
        .map(|o| media::learn(o, None))
        .unwrap_or_default();
    match &offer {
        Some(o) => match media::rewrite(o, lease.addr, port_b) {
            Ok(body) => inv.set_body(body, Some(SDP)),
            Err(code) => {
                ctx.nodes.free(&lease);
                s.fail(code, Some("Bad SDP")).await;
                return None;
            }
        },
        None => inv.set_body(bytes::Bytes::new(), None),
    }

    // Filled in above; the call owns it from here.
    let Some(record) = s.record.take() else {
        ctx.nodes.free(&lease);
        s.fail(500, None).await;
        return None;
    };
    let mut call = Call {
        ctx: ctx.clone(),
        key,
        legs: [
            Leg {
                dialog: Some(dialog_a),
                peer: from,
                call_id,
                port: port_a,
                media: a_media,
                retransmit: None,
                last_ack: None,
            },
            Leg {
                dialog: None,
                peer: peer_b,
                call_id: b_call_id.clone(),
                port: port_b,
                media: SideMedia::default(),
                retransmit: None,
                last_ack: None,
            },
        ],
        a_had_offer: offer.is_some(),
        invite_a: invite.clone(),
        tx_a: tx,
        forks: Vec::new(),
        current: 0,
        winner: None,
        best: None,
        phase: Phase::Ringing,
        no_answer_at: None,
        hangup_at: None,
        no_response_at: None,
        linger_until: None,
        lease,
        version: 0,
        record,
        ended: false,
        done: false,
        relays: HashMap::new(),
        ack_owed: None,
        early_answer: None,
        branches: Vec::new(),
        info,
        silence: Silence::default(),
    };
    // The SBC first: ringing someone we cannot carry media for is worse
    // than refusing the call.
    if let Err(e) = ctx.nodes.apply(&call.lease, call.snapshot(1)).await {
        tracing::warn!(error = %e, "SBC refused the call");
        ctx.nodes.free(&call.lease);
        s.record = Some(call.record);
        s.fail(503, Some("Media relay unavailable")).await;
        return None;
    }
    call.version = 1;
    ctx.add_dialog(key, &b_call_id, &b_tag);
    for (peer, uri) in targets {
        let mut fork = inv.clone();
        fork.set_request_uri(uri);
        let (via, branch) = via_for(ctx, &peer);
        fork.prepend_header(HeaderName::Via, via);
        fork.push_header(HeaderName::Contact, contact_for(ctx, peer.transport));
        // Before sending, so a response cannot beat the loop check.
        ctx.add_branch(&branch);
        call.branches.push(branch);
        match ctx.endpoint.send_request(fork.clone(), peer).await {
            Ok(tx_b) => {
                ctx.add_tx(key, tx_b);
                call.forks.push(Fork {
                    tx: tx_b,
                    peer,
                    invite: fork,
                    heard: false,
                    provisional: false,
                    cancel_owed: false,
                    done: false,
                    dialog: None,
                    stray_ack: None,
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, %peer.addr, "INVITE to a callee's binding not sent")
            }
        }
    }
    if call.forks.is_empty() {
        call.release_media().await;
        s.record = Some(call.record);
        s.fail(503, Some("Callee unreachable")).await;
        return None;
    }
    call.legs[1].peer = call.forks[0].peer;
    call.no_answer_at = Some(Instant::now() + ctx.config.no_answer);
    call.no_response_at = Some(Instant::now() + ctx.config.no_response);
    call.info.state = CallState::Ringing;
    ctx.set_info(key, call.info.clone());
    Some(Started::Bridge(Box::new(call)))
}

/// The authenticated caller, or the response to send.
async fn caller(
    ctx: &Ctx,
    invite: &Message,
    from: Peer,
    tenant: &Tenant,
) -> Result<Subscriber, Box<Message>> {
    if ctx.config.authenticate {
        return match ctx.auth.check(invite, from, tenant, true).await {
            AuthOutcome::Authenticated(s) => Ok(s),
            AuthOutcome::Respond(resp) => Err(resp),
            // The source is banned from now on. Its INVITE transaction still
            // gets a final answer, or it would ring on with 100 Trying and
            // hold a server transaction open; later INVITEs are dropped
            // unread by the endpoint for the ban time.
            AuthOutcome::Ignore => {
                let mut resp = Message::response_to(invite, 503, Some("Try Later"));
                resp.set_to_tag(&sip::ids::new_tag());
                let secs = ctx.endpoint.ban_time().as_secs().max(1);
                resp.push_header(HeaderName::RetryAfter, secs.to_string());
                Err(Box::new(resp))
            }
        };
    }
    let user = invite
        .from_header()
        .ok()
        .and_then(|f| uri_user(&f.uri))
        .unwrap_or_default();
    match ctx.directory.find_subscriber(&tenant.domain, &user).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) | Err(_) => {
            let mut resp = Message::response_to(invite, 403, Some("Unknown caller"));
            resp.set_to_tag(&sip::ids::new_tag());
            Err(Box::new(resp))
        }
    }
}

impl Call {
    async fn run(&mut self, inbox: &mut mpsc::UnboundedReceiver<CallEvent>) {
        while !self.done {
            let deadline = self.deadline();
            tokio::select! {
                ev = inbox.recv() => match ev {
                    Some(ev) => self.on_event(ev).await,
                    None => return,
                },
                () = tokio::time::sleep_until(deadline.into()) => self.on_timer(Instant::now()).await,
            }
        }
    }

    fn deadline(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        [
            self.no_answer_at.filter(|_| self.phase == Phase::Ringing),
            self.no_response_at
                .filter(|_| self.phase == Phase::Ringing && !self.forks.iter().any(|f| f.heard)),
            self.linger_until,
            self.hangup_at.filter(|_| self.phase == Phase::Confirmed),
            self.legs[0].retransmit.as_ref().map(|r| r.next),
            self.legs[1].retransmit.as_ref().map(|r| r.next),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(far)
    }

    fn leg(&mut self, side: Side) -> &mut Leg {
        &mut self.legs[side.idx()]
    }

    fn side_of(&self, msg: &Message) -> Side {
        if msg.call_id() == Some(self.legs[1].call_id.as_str()) {
            Side::B
        } else {
            Side::A
        }
    }

    fn set_state(&mut self, state: CallState) {
        self.info.state = state;
        self.ctx.set_info(self.key, self.info.clone());
    }

    fn snapshot(&self, version: u64) -> CallSnapshot {
        let (a, b) = (&self.legs[0], &self.legs[1]);
        CallSnapshot {
            call_id: self.lease.call_id.clone(),
            version,
            legs: vec![
                media::leg_spec(LEG_A, LEG_B, self.lease.range, a.port, &a.media, &b.media),
                media::leg_spec(LEG_B, LEG_A, self.lease.range, b.port, &b.media, &a.media),
            ],
        }
    }

    /// Sends the current media state to the SBC under a new version.
    async fn apply(&mut self) {
        self.version += 1;
        let snap = self.snapshot(self.version);
        if let Err(e) = self.ctx.nodes.apply(&self.lease, snap).await {
            // The call goes on: its signalling is fine, and moving media to
            // a working node is the failover's business.
            tracing::warn!(call = %self.info.call_id, error = %e, "snapshot not applied");
        }
    }

    /// Takes what a side said in SDP into the call's media state.
    fn learn(&mut self, side: Side, sdp: &SessionDescription) {
        let leg = self.leg(side);
        leg.media = media::learn(sdp, leg.media.remote);
    }

    /// `sdp` from one side rewritten for `to`.
    fn rewrite_for(&self, to: Side, sdp: &SessionDescription) -> Result<String, u16> {
        media::rewrite(sdp, self.lease.addr, self.legs[to.idx()].port)
    }

    async fn respond(&self, tx: TxId, resp: Message) {
        if let Some(code) = resp.status() {
            self.ctx.metrics.sip_response(code);
        }
        if let Err(e) = self.ctx.endpoint.respond(tx, resp).await {
            tracing::debug!(%tx, error = %e, "response not sent");
        }
    }

    /// A response in `side`'s dialog (or a bare one if it has none).
    fn dialog_response(
        &mut self,
        side: Side,
        req: &Message,
        code: u16,
        reason: Option<&str>,
    ) -> Message {
        // A request from leg B before the answer: its fork's early dialog.
        if side == Side::B
            && let Some(i) = self.fork_by_tag(req.from_tag())
        {
            self.focus(i);
        }
        match self.leg(side).dialog.as_mut() {
            Some(d) => d.response(req, code, reason),
            None => {
                let mut r = Message::response_to(req, code, reason);
                r.set_to_tag(&sip::ids::new_tag());
                r
            }
        }
    }

    /// Sends a request built in `side`'s dialog, with our Via.
    async fn send_in_dialog(&mut self, side: Side, mut req: Message) -> Option<TxId> {
        let peer = self.leg(side).peer;
        let (via, _) = via_for(&self.ctx, &peer);
        req.prepend_header(HeaderName::Via, via);
        match self.ctx.endpoint.send_request(req, peer).await {
            Ok(tx) => {
                self.ctx.add_tx(self.key, tx);
                Some(tx)
            }
            Err(e) => {
                tracing::warn!(call = %self.info.call_id, error = %e, "request not sent");
                None
            }
        }
    }

    async fn send_ack(&mut self, side: Side, seq: u32, body: Option<String>) {
        let Some(dialog) = self.leg(side).dialog.as_ref() else {
            return;
        };
        let mut ack = dialog.ack_for(seq);
        if let Some(body) = body {
            ack.set_body(body, Some(SDP));
        }
        let peer = self.leg(side).peer;
        let (via, _) = via_for(&self.ctx, &peer);
        ack.prepend_header(HeaderName::Via, via);
        if let Err(e) = self.ctx.endpoint.send_stateless(ack.clone(), peer).await {
            tracing::debug!(error = %e, "ACK not sent");
        }
        self.leg(side).last_ack = Some((seq, ack));
    }

    async fn bye(&mut self, side: Side) {
        let Some(dialog) = self.leg(side).dialog.as_mut() else {
            return;
        };
        match dialog.request(Method::Bye) {
            Ok(req) => {
                self.send_in_dialog(side, req).await;
            }
            Err(e) => tracing::debug!(error = %e, "no BYE"),
        }
    }

    /// Cancels fork `i` now if it may be, or once its first provisional
    /// comes (RFC 3261 §9.1).
    async fn cancel_fork(&mut self, i: usize) {
        let fork = &mut self.forks[i];
        if fork.done {
            return;
        }
        if !fork.provisional {
            fork.cancel_owed = true;
            return;
        }
        fork.cancel_owed = false;
        let tx = fork.tx;
        if let Err(e) = self.ctx.endpoint.cancel(tx).await {
            tracing::debug!(error = %e, "CANCEL not sent");
        }
    }

    /// Cancels every fork but `keep`.
    async fn cancel_forks(&mut self, keep: Option<usize>) {
        for i in 0..self.forks.len() {
            if Some(i) != keep {
                self.cancel_fork(i).await;
            }
        }
    }

    fn fork_of(&self, tx: TxId) -> Option<usize> {
        self.forks.iter().position(|f| f.tx == tx)
    }

    /// The fork whose early dialog has this remote (the callee's) tag.
    fn fork_by_tag(&self, tag: Option<&str>) -> Option<usize> {
        let tag = tag?;
        let held = |d: &Option<Dialog>| {
            d.as_ref()
                .is_some_and(|d| d.id().remote_tag.as_str() == tag)
        };
        if held(&self.legs[1].dialog) {
            return Some(self.current);
        }
        self.forks.iter().position(|f| held(&f.dialog))
    }

    /// Makes fork `i` the one leg B stands for: its early dialog and its
    /// address go into leg B, the other fork's dialog is put aside. Once a
    /// fork has won, leg B is that fork's for good.
    fn focus(&mut self, i: usize) {
        if i == self.current || self.winner.is_some() || i >= self.forks.len() {
            return;
        }
        let held = self.legs[1].dialog.take();
        self.forks[self.current].dialog = held;
        self.legs[1].dialog = self.forks[i].dialog.take();
        self.legs[1].peer = self.forks[i].peer;
        self.current = i;
    }

    /// Makes leg B's dialog from a response with a To tag (leg B stands for
    /// the response's fork).
    fn ensure_dialog_b(&mut self, resp: &Message) {
        if resp.to_tag().is_none() {
            return;
        }
        // A 2xx from another dialog of this fork (forked further on) than
        // the early one wins.
        let other_fork = self.legs[1]
            .dialog
            .as_ref()
            .is_some_and(|d| Some(d.id().remote_tag.as_str()) != resp.to_tag());
        if other_fork && resp.status().is_some_and(|c| (200..300).contains(&c)) {
            self.legs[1].dialog = None;
        }
        match self.legs[1].dialog.as_mut() {
            Some(d) => {
                if let Err(e) = d.on_response(resp) {
                    tracing::debug!(error = %e, "response outside leg B's dialog");
                }
            }
            None => match Dialog::from_uac(&self.forks[self.current].invite, resp) {
                Ok(d) => self.legs[1].dialog = Some(d),
                Err(e) => tracing::debug!(error = %e, "no dialog from leg B's response"),
            },
        }
    }

    /// A 2xx from fork `i` after another fork won or the caller was given
    /// its answer: ACK it (again, for a retransmission) and, the first
    /// time, hang it up (RFC 3261 §16.7 step 2 leaves the choice to us).
    async fn hang_up_stray(&mut self, i: usize, ok: &Message) {
        let peer = self.forks[i].peer;
        if let Some(ack) = self.forks[i].stray_ack.clone() {
            let _ = self.ctx.endpoint.send_stateless(ack, peer).await;
            return;
        }
        let Ok(mut dialog) = Dialog::from_uac(&self.forks[i].invite, ok) else {
            return;
        };
        let seq = ok.cseq().map_or(1, |c| c.seq);
        let mut ack = dialog.ack_for(seq);
        ack.prepend_header(HeaderName::Via, via_for(&self.ctx, &peer).0);
        if let Err(e) = self.ctx.endpoint.send_stateless(ack.clone(), peer).await {
            tracing::debug!(error = %e, "ACK not sent");
        }
        self.forks[i].stray_ack = Some(ack);
        if let Ok(mut bye) = dialog.request(Method::Bye) {
            bye.prepend_header(HeaderName::Via, via_for(&self.ctx, &peer).0);
            match self.ctx.endpoint.send_request(bye, peer).await {
                Ok(tx) => self.ctx.add_tx(self.key, tx),
                Err(e) => tracing::debug!(error = %e, "BYE not sent"),
            }
        }
    }

    fn start_retransmit(&mut self, side: Side, tx: TxId, resp: &Message) {
        if self.leg(side).peer.transport.is_reliable() {
            return;
        }
        self.leg(side).retransmit = Some(Retransmit::new(tx, resp, self.ctx.config.t1));
    }

    async fn on_event(&mut self, ev: CallEvent) {
        match ev {
            CallEvent::Cancelled => {
                if self.phase == Phase::Ringing {
                    self.give_up(487, None, Ending::Cancelled).await;
                }
            }
            CallEvent::Response { tx, msg } => {
                if let Some(i) = self.fork_of(tx) {
                    self.on_invite_response(i, msg).await;
                } else {
                    let side = self.side_of(&msg);
                    self.on_relay_response(side, tx, msg).await;
                }
            }
            CallEvent::Failed { tx, response } => {
                if let Some(i) = self.fork_of(tx) {
                    // Timer B (with its 408), or the callee's connection is
                    // gone: out of reach (480), not us overloaded (503).
                    let code = if response.is_some() { 408 } else { 480 };
                    if !self.forks[i].done {
                        self.on_fork_failed(i, code, None).await;
                    }
                } else if let Some(relay) = self.relays.remove(&tx) {
                    let code = if response.is_some() { 408 } else { 503 };
                    self.refuse_relay(relay, code, None).await;
                }
            }
            CallEvent::Request { tx, msg } => {
                let side = self.side_of(&msg);
                self.on_request(side, tx, msg).await;
            }
            CallEvent::Ack { msg } => {
                let side = self.side_of(&msg);
                self.on_ack(side, msg).await;
            }
            CallEvent::MediaTimeout { leg } => self.on_media_timeout(leg).await,
        }
    }

    /// No media either way for the SBC's timeout: both phones are gone (a
    /// BYE lost, a crash, a dropped network), so the call ends rather than
    /// bill on to its maximum duration. A held call is left alone.
    async fn on_media_timeout(&mut self, leg: LegId) {
        if self.phase != Phase::Confirmed || self.legs.iter().any(|l| l.media.held) {
            return;
        }
        if self
            .silence
            .on_report(&self.ctx.nodes, &self.lease, leg, &[LEG_A, LEG_B])
            .await
        {
            tracing::info!(call = %self.info.call_id, "no media either way; hanging up");
            self.bye(Side::A).await;
            self.bye(Side::B).await;
            self.end(Ending::HungUp(HangupSide::System)).await;
            self.done = true;
        }
    }

    async fn on_timer(&mut self, now: Instant) {
        let t2 = self.ctx.config.t2;
        for side in [Side::A, Side::B] {
            let Some(r) = self.leg(side).retransmit.as_mut() else {
                continue;
            };
            let Some(due) = r.poll(now, t2) else {
                continue;
            };
            if let Due::GiveUp = due {
                // RFC 3261 §13.3.1.4: no ACK means the session is dead.
                self.leg(side).retransmit = None;
                tracing::warn!(call = %self.info.call_id, ?side, "no ACK for our 2xx");
                if self.phase == Phase::Confirmed {
                    self.bye(Side::A).await;
                    self.bye(Side::B).await;
                    self.end(Ending::HungUp(HangupSide::System)).await;
                    self.done = true;
                }
                return;
            }
            let (tx, resp) = (r.tx, r.resp.clone());
            self.respond(tx, resp).await;
        }
        if self.phase == Phase::Ringing
            && !self.forks.iter().any(|f| f.heard)
            && self.no_response_at.is_some_and(|t| t <= now)
        {
            tracing::info!(call = %self.info.call_id, "callee sent nothing; given up");
            self.give_up(
                408,
                Some("Callee Not Responding"),
                Ending::NoAnswer { code: 408 },
            )
            .await;
        }
        if self.phase == Phase::Ringing && self.no_answer_at.is_some_and(|t| t <= now) {
            self.give_up(480, Some("No Answer"), Ending::NoAnswer { code: 480 })
                .await;
        }
        if self.phase == Phase::Confirmed && self.hangup_at.is_some_and(|t| t <= now) {
            tracing::info!(call = %self.info.call_id, "maximum call duration reached");
            self.hangup_at = None;
            self.bye(Side::A).await;
            self.bye(Side::B).await;
            self.end(Ending::HungUp(HangupSide::System)).await;
            self.done = true;
        }
        if self.linger_until.is_some_and(|t| t <= now) {
            self.done = true;
        }
    }

    /// Sends the caller a final non-2xx and ends the attempt.
    async fn finish_a(&mut self, code: u16, reason: Option<&str>, ending: Ending) {
        let invite = self.invite_a.clone();
        let resp = self.dialog_response(Side::A, &invite, code, reason);
        self.respond(self.tx_a, resp).await;
        self.end(ending).await;
    }

    /// The caller gets its final answer now; leg B's forks are cancelled
    /// (each once it may be) and the task stays until their INVITEs are
    /// over, so a late 2xx is still ACKed and hung up.
    async fn give_up(&mut self, code: u16, reason: Option<&str>, ending: Ending) {
        self.phase = Phase::Abandoning;
        self.set_state(CallState::Ending);
        self.linger_until = Some(Instant::now() + self.ctx.config.t1 * 64);
        self.cancel_forks(None).await;
        self.finish_a(code, reason, ending).await;
    }

    /// A final non-2xx (or a failure: `msg` is `None`, `code` what it
    /// stands for) ended fork `i`.
    async fn on_fork_failed(&mut self, i: usize, code: u16, msg: Option<&Message>) {
        self.forks[i].done = true;
        if self.phase != Phase::Ringing {
            self.done = self.phase == Phase::Abandoning && self.forks.iter().all(|f| f.done);
            return;
        }
        if i == self.current {
            // Leg B stands for a fork that may still answer.
            if let Some(j) = self
                .forks
                .iter()
                .position(|f| !f.done && f.dialog.is_some())
            {
                self.focus(j);
            }
        }
        let reason = msg.and_then(|m| m.reason()).map(str::to_string);
        let local = msg.is_none();
        if self.best.as_ref().is_none_or(|(b, ..)| better(code, *b)) || code >= 600 {
            self.best = Some((code, reason, local));
        }
        let all_done = self.forks.iter().all(|f| f.done);
        // §16.7 step 5: a 6xx ends the search at once.
        if !(all_done || code >= 600) {
            return;
        }
        let (best, reason, local) = self.best.clone().unwrap_or((408, None, true));
        let mapped = relay_code(best);
        let reason = reason.filter(|_| mapped == best);
        let ending = if local {
            Ending::NoAnswer { code: mapped }
        } else {
            Ending::Refused {
                code: mapped,
                side: HangupSide::Callee,
            }
        };
        if all_done {
            self.finish_a(mapped, reason.as_deref(), ending).await;
            self.done = true;
        } else {
            // The others may still answer before their CANCEL.
            self.give_up(mapped, reason.as_deref(), ending).await;
        }
    }

    async fn on_invite_response(&mut self, i: usize, msg: Message) {
        let Some(code) = msg.status() else { return };
        self.forks[i].heard = true;
        if code < 200 {
            self.forks[i].provisional = true;
            if self.forks[i].cancel_owed {
                self.cancel_fork(i).await;
                return;
            }
        }
        match self.phase {
            Phase::Ringing if code < 200 => {
                if code == 100 {
                    return;
                }
                // A provisional without a To tag makes no early dialog:
                // leg B keeps standing for the fork that has one.
                if msg.to_tag().is_some() {
                    self.focus(i);
                    self.ensure_dialog_b(&msg);
                }
                let invite = self.invite_a.clone();
                let mut resp = self.dialog_response(Side::A, &invite, code, msg.reason());
                // Early media: leg B's answer, pointed at the SBC.
                if self.a_had_offer
                    && let Ok(Some(sdp)) = media::sdp_of(&msg)
                {
                    self.learn(Side::B, &sdp);
                    self.apply().await;
                    if let Ok(body) = self.rewrite_for(Side::A, &sdp) {
                        resp.set_body(body, Some(SDP));
                    }
                    self.early_answer = Some((i, sdp));
                }
                self.respond(self.tx_a, resp).await;
            }
            Phase::Ringing if code < 300 => {
                // First 2xx wins (§16.7 step 5); the other forks are cancelled.
                // Another fork's early SDP is not this one's answer.
                self.early_answer.take_if(|(f, _)| *f != i);
                self.focus(i);
                self.forks[i].done = true;
                self.winner = Some(i);
                self.cancel_forks(Some(i)).await;
                self.on_answer(msg).await;
            }
            Phase::Ringing => self.on_fork_failed(i, code, Some(&msg)).await,
            _ if code < 200 => {}
            Phase::Confirmed if self.winner == Some(i) && code < 300 => {
                // A retransmitted 2xx: it lost our ACK.
                if let Some((1, ack)) = self.legs[1].last_ack.clone() {
                    let peer = self.legs[1].peer;
                    let _ = self.ctx.endpoint.send_stateless(ack, peer).await;
                }
            }
            _ if code < 300 => {
                // Answered after another fork won, or after the caller was
                // told no: take it and hang up.
                self.forks[i].done = true;
                self.hang_up_stray(i, &msg).await;
                self.done = self.phase == Phase::Abandoning && self.forks.iter().all(|f| f.done);
            }
            _ => self.on_fork_failed(i, code, Some(&msg)).await,
        }
    }

    /// Leg B answered the initial INVITE.
    async fn on_answer(&mut self, msg: Message) {
        self.ensure_dialog_b(&msg);
        self.no_answer_at = None;
        let sdp = media::sdp_of(&msg).unwrap_or_default();
        let body = if self.a_had_offer {
            // The answer; a callee that gave it in a 183 may leave it out.
            match sdp.or_else(|| self.early_answer.clone().map(|(_, a)| a)) {
                Some(answer) => {
                    self.learn(Side::B, &answer);
                    self.send_ack(Side::B, 1, None).await;
                    self.rewrite_for(Side::A, &answer).ok()
                }
                None => None,
            }
        } else {
            // Late offer: leg B offers in its 2xx; the caller answers in
            // its ACK, which leg B's ACK will carry.
            match sdp {
                Some(offer) => {
                    self.learn(Side::B, &offer);
                    self.ack_owed = Some((Side::B, 1));
                    self.rewrite_for(Side::A, &offer).ok()
                }
                None => None,
            }
        };
        let Some(body) = body else {
            tracing::warn!(call = %self.info.call_id, "callee answered without usable SDP");
            if self.legs[1].last_ack.is_none() {
                self.send_ack(Side::B, 1, None).await;
            }
            self.bye(Side::B).await;
            self.finish_a(
                502,
                Some("Callee sent no usable SDP"),
                Ending::Refused {
                    code: 502,
                    side: HangupSide::System,
                },
            )
            .await;
            self.done = true;
            return;
        };
        self.apply().await;
        let invite = self.invite_a.clone();
        let mut ok = self.dialog_response(Side::A, &invite, 200, None);
        ok.set_body(body, Some(SDP));
        self.start_retransmit(Side::A, self.tx_a, &ok);
        self.respond(self.tx_a, ok).await;
        self.phase = Phase::Confirmed;
        self.hangup_at = self.ctx.config.max_duration.map(|d| Instant::now() + d);
        let now = store::now_ms();
        self.record.answer_at = Some(now);
        self.info.answered_at = Some(now);
        self.set_state(CallState::Answered);
    }

    async fn on_ack(&mut self, side: Side, msg: Message) {
        if let Some(d) = self.leg(side).dialog.as_mut() {
            let _ = d.on_request(&msg);
        }
        let seq = msg.cseq().map_or(0, |c| c.seq);
        if self
            .leg(side)
            .retransmit
            .as_ref()
            .is_some_and(|r| r.seq == seq)
        {
            self.leg(side).retransmit = None;
        }
        let Some((owed, owed_seq)) = self.ack_owed else {
            return;
        };
        if owed != side.other() {
            return;
        }
        self.ack_owed = None;
        let body = match media::sdp_of(&msg) {
            Ok(Some(answer)) => {
                self.learn(side, &answer);
                self.apply().await;
                self.rewrite_for(owed, &answer).ok()
            }
            _ => None,
        };
        self.send_ack(owed, owed_seq, body).await;
    }

    async fn on_request(&mut self, side: Side, tx: TxId, msg: Message) {
        let Some(method) = msg.method().cloned() else {
            return;
        };
        tracing::debug!(call = %self.info.call_id, ?side, %method, phase = ?self.phase, "request in the call");
        // Before the answer, requests in an early dialog (UPDATE, INFO,
        // the caller's BYE) are served like any other: only a dialog we do
        // not have gets 481.
        let early_dialog = match side {
            Side::A => self.legs[0].dialog.is_some(),
            Side::B => self.fork_by_tag(msg.from_tag()).is_some(),
        };
        if self.phase == Phase::Abandoning || (self.phase == Phase::Ringing && !early_dialog) {
            let resp = self.dialog_response(side, &msg, 481, None);
            self.respond(tx, resp).await;
            return;
        }
        if side == Side::B
            && let Some(i) = self.fork_by_tag(msg.from_tag())
        {
            self.focus(i);
        }
        let checked = match self.leg(side).dialog.as_mut() {
            Some(d) => d.on_request(&msg),
            None => Err(DialogError::Mismatch),
        };
        if let Err(e) = checked {
            self.respond(tx, super::refusal_for(e, &msg)).await;
            return;
        }
        match method {
            Method::Bye if self.phase == Phase::Ringing => {
                let resp = self.dialog_response(side, &msg, 200, None);
                self.respond(tx, resp).await;
                match side {
                    // The caller may end an early dialog with BYE (§15):
                    // for the call that is a CANCEL.
                    Side::A => self.give_up(487, None, Ending::Cancelled).await,
                    // A callee may not (§15), but if it does, that fork
                    // is over.
                    Side::B => self.cancel_fork(self.current).await,
                }
            }
            Method::Bye => {
                let resp = self.dialog_response(side, &msg, 200, None);
                self.respond(tx, resp).await;
                self.bye(side.other()).await;
                self.end(Ending::HungUp(side.hangup())).await;
                self.done = true;
            }
            Method::Invite | Method::Update | Method::Info => {
                self.relay(side, tx, msg, method).await
            }
            _ => {
                let mut resp = self.dialog_response(side, &msg, 501, None);
                resp.push_header(HeaderName::Allow, ALLOW);
                self.respond(tx, resp).await;
            }
        }
    }

    /// Relays a request from `side` into the other dialog.
    async fn relay(&mut self, side: Side, tx: TxId, msg: Message, method: Method) {
        let other = side.other();
        let sdp = if method == Method::Info {
            None
        } else {
            match media::sdp_of(&msg) {
                Ok(s) => s,
                Err(code) => {
                    let resp = self.dialog_response(side, &msg, code, None);
                    self.respond(tx, resp).await;
                    return;
                }
            }
        };
        let before = self.leg(side).media.clone();
        let body = match &sdp {
            Some(offer) => match self.rewrite_for(other, offer) {
                Ok(b) => Some((SDP.to_string(), bytes::Bytes::from(b))),
                Err(code) => {
                    let resp = self.dialog_response(side, &msg, code, None);
                    self.respond(tx, resp).await;
                    return;
                }
            },
            None if !msg.body().is_empty() => Some((
                msg.content_type()
                    .unwrap_or("application/octet-stream")
                    .to_string(),
                msg.body().clone(),
            )),
            None => None,
        };
        let Some(dialog) = self.leg(other).dialog.as_mut() else {
            let resp = self.dialog_response(side, &msg, 481, None);
            self.respond(tx, resp).await;
            return;
        };
        let built = match body {
            Some((ct, b)) => dialog.request_with_body(method, &ct, b),
            None => dialog.request(method),
        };
        let req = match built {
            Ok(r) => r,
            Err(e) => {
                // Our own request towards that side is still open.
                let code = match e {
                    DialogError::InviteInProgress | DialogError::OfferPending => 491,
                    _ => 500,
                };
                let resp = self.dialog_response(side, &msg, code, None);
                self.respond(tx, resp).await;
                return;
            }
        };
        let Some(client_tx) = self.send_in_dialog(other, req).await else {
            let resp = self.dialog_response(side, &msg, 503, None);
            self.respond(tx, resp).await;
            return;
        };
        if let Some(offer) = &sdp {
            self.learn(side, offer);
            self.apply().await;
        }
        self.relays.insert(
            client_tx,
            Relay {
                origin: side,
                tx,
                request: msg,
                offer: sdp.is_some(),
                before,
            },
        );
    }

    async fn on_relay_response(&mut self, side: Side, tx: TxId, msg: Message) {
        let Some(code) = msg.status() else { return };
        // Before the answer: the fork whose early dialog this is.
        if side == Side::B
            && let Some(i) = self.fork_by_tag(msg.to_tag())
        {
            self.focus(i);
        }
        if let Some(d) = self.leg(side).dialog.as_mut() {
            let _ = d.on_response(&msg);
        }
        if code < 200 {
            return;
        }
        let Some(relay) = self.relays.remove(&tx) else {
            // A 2xx retransmitted for a re-INVITE we already ACKed.
            let seq = msg.cseq().map_or(0, |c| c.seq);
            if let Some((s, ack)) = self.leg(side).last_ack.clone()
                && s == seq
            {
                let peer = self.leg(side).peer;
                let _ = self.ctx.endpoint.send_stateless(ack, peer).await;
            }
            return;
        };
        if code >= 300 {
            self.refuse_relay(relay, code, msg.reason()).await;
            return;
        }
        let origin = relay.origin;
        let method = relay.request.method().cloned();
        let mut resp = self.dialog_response(origin, &relay.request, code, None);
        if let Ok(Some(sdp)) = media::sdp_of(&msg) {
            self.learn(side, &sdp);
            self.apply().await;
            if let Ok(body) = self.rewrite_for(origin, &sdp) {
                resp.set_body(body, Some(SDP));
            }
        } else if !msg.body().is_empty() {
            resp.set_body(msg.body().clone(), msg.content_type());
        }
        if method == Some(Method::Invite) {
            let seq = msg.cseq().map_or(0, |c| c.seq);
            if relay.offer {
                self.send_ack(side, seq, None).await;
            } else {
                // Late offer inside the dialog: the origin's ACK answers.
                self.ack_owed = Some((side, seq));
            }
            self.start_retransmit(origin, relay.tx, &resp);
        }
        self.respond(relay.tx, resp).await;
    }

    /// The other side refused a relayed request: the origin hears the same,
    /// and an offer it made is forgotten (RFC 3261 §14.1: a refused
    /// re-INVITE changes nothing).
    async fn refuse_relay(&mut self, relay: Relay, code: u16, reason: Option<&str>) {
        if relay.offer {
            self.leg(relay.origin).media = relay.before;
            self.apply().await;
        }
        let resp = self.dialog_response(relay.origin, &relay.request, code, reason);
        self.respond(relay.tx, resp).await;
    }

    /// Frees the call's media: the SBC's final stats go into the record.
    async fn release_media(&mut self) {
        match self.ctx.nodes.release(&self.lease).await {
            Ok(legs) => {
                for (leg, stats) in legs {
                    let stats = Some(leg_stats(&stats));
                    match leg {
                        LEG_A => self.record.leg_a = stats,
                        LEG_B => self.record.leg_b = stats,
                        _ => {}
                    }
                }
            }
            Err(e) => tracing::warn!(call = %self.info.call_id, error = %e, "ReleaseCall failed"),
        }
        self.ctx.nodes.free(&self.lease);
    }

    /// The attempt is over: media released, CDR written. Once.
    async fn end(&mut self, ending: Ending) {
        if self.ended {
            return;
        }
        self.ended = true;
        tracing::debug!(call = %self.info.call_id, ?ending, "call ended");
        self.release_media().await;
        self.ctx
            .cdrs
            .submit(self.record.finish(ending, store::now_ms()));
        self.ctx.metrics.call_ended(ending.disposition().as_str());
    }
}
