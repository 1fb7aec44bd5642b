//! A caller in a conference: we are the UAS of one dialog, and its media
//! runs caller ⇄ SBC ⇄ mixer. The SBC carries the call as two legs (A to
//! the caller, B to the mixer's port for the room), so the mixer only ever
//! hears from SBCs, and a caller behind NAT is latched like any other.
//!
//! The caller is answered at once with one codec the mixer takes, in the
//! caller's order of preference among G.722, G.711 µ-law and A-law. A hold
//! (sendonly/inactive re-INVITE) mutes and deafens them in the room, so
//! their phone's hold music never reaches the others.

use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::snapshot::{
    CallSnapshot, LegId, LegSpec, LocalEndpoint, ParticipantFlags, PayloadType, Rtcp,
};
use sip::dialog::Dialog;
use sip::sdp::{self, Capabilities, LocalCodec, SessionDescription};
use sip::transaction::{Peer, TxId};
use sip::{HeaderName, Message, Method};
use store::{HangupSide, Tenant};
use tokio::sync::mpsc;

use super::media;
use super::retransmit::{Due, Retransmit};
use super::silence::Silence;
use super::{CallEvent, CallInfo, CallKey, CallState, Ctx};
use crate::cdr::{CallRecord, Ending, leg_stats};
use crate::conference::{ConferenceError, JoinAs, RoomKey, Seat};
use crate::nodes::MediaLease;

const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO";
const SDP: &str = "application/sdp";
const LEG_CALLER: LegId = LegId(1);
const LEG_MIXER: LegId = LegId(2);

/// Why a caller could not be put in the room: the final response, and the
/// record to write it into.
pub(super) struct Refusal {
    pub code: u16,
    pub reason: &'static str,
    pub record: CallRecord,
}

/// What the caller's side of the media looks like now.
#[derive(Debug, Clone)]
struct CallerMedia {
    remote: Option<std::net::SocketAddr>,
    rtcp_mux: bool,
    telephone_event: Option<u8>,
    held: bool,
}

pub(super) struct Member {
    ctx: Arc<Ctx>,
    key: CallKey,
    dialog: Dialog,
    peer: Peer,
    lease: MediaLease,
    room: RoomKey,
    /// `None` until the caller's media is known (a late offer: until the ACK).
    seat: Option<Seat>,
    /// Our offer in the 200, when the INVITE had none: the ACK answers it.
    late_offer: Option<SessionDescription>,
    codec: PayloadType,
    caller: CallerMedia,
    /// Our current SDP, re-sent in answers to offerless re-INVITEs.
    local_sdp: SessionDescription,
    version: u64,
    record: CallRecord,
    info: CallInfo,
    retransmit: Option<Retransmit>,
    hangup_at: Option<Instant>,
    flags: ParticipantFlags,
    ended: bool,
    done: bool,
    /// After our BYE: wait this long for its answer, then go.
    linger_until: Option<Instant>,
    silence: Silence,
}

/// What the mixer takes, in the order we would choose if the caller had no
/// preference. (Opus is left out until every mixer build has it.)
fn capabilities() -> Capabilities {
    let mut caps = Capabilities::audio(vec![
        LocalCodec::new("G722", 8000, 1),
        LocalCodec::new("PCMU", 8000, 1),
        LocalCodec::new("PCMA", 8000, 1),
    ]);
    caps.order = sdp::CodecOrder::Offerer;
    caps.max_codecs = Some(1);
    if let Some(m) = caps.media.first_mut() {
        m.ptime = Some(20);
    }
    caps
}

/// Answers `offer` from the SBC's `addr`:`port`; what the caller will send
/// and where it receives.
fn negotiate(
    offer: &SessionDescription,
    addr: std::net::IpAddr,
    port: u16,
    version: u64,
) -> Result<(SessionDescription, PayloadType, CallerMedia), u16> {
    let mut local = sdp::LocalEndpoint::new(addr, vec![port]);
    local.username = "tandem".into();
    local.session_version = version;
    let answer = sdp::answer(offer, &capabilities(), &local).map_err(|e| e.sip_status())?;
    let streams = sdp::negotiated(offer, &answer).map_err(|e| e.sip_status())?;
    let Some(stream) = streams.first().filter(|s| s.accepted) else {
        return Err(488);
    };
    let Some(codec) = stream.codec.as_ref() else {
        return Err(488);
    };
    let payload = PayloadType {
        pt: codec.payload_type,
        name: codec.encoding.clone(),
        clock_rate: codec.clock_rate,
        channels: u8::try_from(codec.channels).unwrap_or(1),
    };
    let caller = CallerMedia {
        remote: stream
            .offerer
            .as_ref()
            .and_then(|e| e.rtp())
            .filter(|a| !a.ip().is_unspecified() && a.port() != 0),
        rtcp_mux: stream.rtcp_mux,
        telephone_event: stream.telephone_event.as_ref().map(|t| t.payload_type),
        held: stream.offerer_holds,
    };
    Ok((answer, payload, caller))
}

/// Answers the caller and seats them in `room`. On failure nothing is held.
#[allow(clippy::too_many_arguments)]
pub(super) async fn start(
    ctx: &Arc<Ctx>,
    key: CallKey,
    tx: TxId,
    invite: &Message,
    from: Peer,
    a_tag: &str,
    tenant: &Tenant,
    room: String,
    mut record: CallRecord,
    mut info: CallInfo,
) -> Result<Member, Box<Refusal>> {
    record.direction = "conference";
    record.callee = room.clone();
    let refuse = |code, reason, record| {
        Err(Box::new(Refusal {
            code,
            reason,
            record,
        }))
    };
    let offer = match media::sdp_of(invite) {
        Ok(o) => o,
        Err(code) => return refuse(code, "Bad SDP", record),
    };
    let contact = super::call::contact_for(ctx, from.transport);
    let Ok(dialog) = Dialog::from_uas(invite, a_tag, &contact) else {
        return refuse(400, "Cannot form a dialog", record);
    };
    let lease = match ctx.nodes.lease(&record.call_id, 2).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "no media relay for conference call");
            return refuse(503, "No media relay", record);
        }
    };
    let &[port_a, _] = lease.ports.as_slice() else {
        ctx.nodes.free(&lease);
        return refuse(503, "No media relay", record);
    };
    let room_key = RoomKey {
        tenant: tenant.id,
        name: room,
    };
    // With an offer we answer it; without (a late offer) we offer what the
    // mixer takes in the 200 and the caller answers in the ACK, when the
    // seat is taken.
    let (local_sdp, late, media) = match offer {
        Some(offer) => match negotiate(&offer, lease.addr, port_a, 1) {
            Ok((answer, codec, caller)) => (answer, None, Some((codec, caller))),
            Err(code) => {
                ctx.nodes.free(&lease);
                return refuse(code, "No codec the conference takes", record);
            }
        },
        None => match late_offer(lease.addr, port_a) {
            Ok(offer) => (offer.clone(), Some(offer), None),
            Err(_) => {
                ctx.nodes.free(&lease);
                return refuse(500, "Cannot make an offer", record);
            }
        },
    };
    info.callee = room_key.name.clone();
    info.media_node = Some(lease.node.clone());
    let seated_now = media.is_some();
    let (codec, caller) = media.unwrap_or_else(|| {
        (
            PayloadType {
                pt: 0,
                name: String::new(),
                clock_rate: 8000,
                channels: 1,
            },
            CallerMedia {
                remote: None,
                rtcp_mux: false,
                telephone_event: None,
                held: false,
            },
        )
    });
    let mut m = Member {
        ctx: ctx.clone(),
        key,
        dialog,
        peer: from,
        lease,
        room: room_key,
        seat: None,
        late_offer: late,
        codec,
        caller,
        local_sdp,
        version: 0,
        record,
        info,
        retransmit: None,
        hangup_at: None,
        flags: ParticipantFlags::default(),
        ended: false,
        done: false,
        linger_until: None,
        silence: Silence::default(),
    };
    if seated_now && let Err((code, reason)) = m.take_seat().await {
        ctx.nodes.free(&m.lease);
        return refuse(code, reason, m.record);
    }
    let mut ok = m.dialog.response(invite, 200, None);
    ok.push_header(HeaderName::Allow, ALLOW);
    ok.set_body(m.local_sdp.to_string(), Some(SDP));
    let now = store::now_ms();
    m.record.answer_at = Some(now);
    m.info.answered_at = Some(now);
    m.info.state = CallState::Answered;
    ctx.set_info(key, m.info.clone());
    m.hangup_at = ctx.config.max_duration.map(|d| Instant::now() + d);
    if !from.transport.is_reliable() {
        m.retransmit = Some(Retransmit::new(tx, &ok, ctx.config.t1));
    }
    m.respond(tx, ok).await;
    Ok(m)
}

/// Our offer to a caller who made none: the codecs the mixer takes and
/// telephone-events, at the SBC's port facing the caller.
fn late_offer(addr: std::net::IpAddr, port: u16) -> Result<SessionDescription, u16> {
    let mut b = sdp::OfferBuilder::new(addr, port).origin("tandem", "1", 1);
    for c in capabilities().media[0].codecs.iter().cloned() {
        b = b.codec(c);
    }
    b.telephone_event(sdp::EventRanges::dtmf())
        .ptime(20)
        .build()
        .map_err(|e| e.sip_status())
}

impl Member {
    /// Joins the room and sets up the SBC for the media now known.
    async fn take_seat(&mut self) -> Result<(), (u16, &'static str)> {
        self.flags = ParticipantFlags {
            muted: self.caller.held,
            deaf: self.caller.held,
            moderator: false,
        };
        let sbc = std::net::SocketAddr::new(self.lease.addr, self.lease.ports[1]);
        let join = JoinAs {
            flags: self.flags,
            end_on_exit: false,
        };
        let seat = match self
            .ctx
            .conferences
            .join(&self.room, sbc, self.codec.clone(), join)
            .await
        {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, room = %self.room.name, "cannot join conference");
                return Err(match e {
                    ConferenceError::Locked(_) => (403, "Conference locked"),
                    ConferenceError::Full(_) => (486, "Conference full"),
                    ConferenceError::Ending(_) => (480, "Conference ending"),
                    ConferenceError::Node(_) | ConferenceError::Refused(_) => {
                        (503, "Conference unavailable")
                    }
                });
            }
        };
        self.seat = Some(seat);
        self.version += 1;
        if let Err(e) = self
            .ctx
            .nodes
            .apply(&self.lease, self.snapshot(self.version))
            .await
        {
            tracing::warn!(error = %e, "SBC refused the conference call");
            if let Some(seat) = self.seat.take() {
                self.ctx.conferences.leave(&seat).await;
            }
            return Err((503, "Media relay unavailable"));
        }
        Ok(())
    }

    /// The ACK to our late offer: its answer tells how the caller sends.
    async fn on_late_answer(&mut self, ack: &Message) {
        let Some(offer) = self.late_offer.take() else {
            return;
        };
        let stream = match media::sdp_of(ack) {
            Ok(Some(answer)) => sdp::negotiated(&offer, &answer)
                .ok()
                .and_then(|s| s.into_iter().next())
                .filter(|s| s.accepted && s.codec.is_some()),
            _ => None,
        };
        let Some(stream) = stream else {
            // RFC 3261 §13.3.1.4: an ACK without an acceptable answer
            // leaves a session we cannot run; end it.
            tracing::info!(call = %self.info.call_id, "no usable answer in the ACK");
            self.hang_up().await;
            return;
        };
        if let Some(c) = stream.codec.as_ref() {
            self.codec = PayloadType {
                pt: c.payload_type,
                name: c.encoding.clone(),
                clock_rate: c.clock_rate,
                channels: u8::try_from(c.channels).unwrap_or(1),
            };
        }
        self.caller = CallerMedia {
            remote: stream
                .answerer
                .as_ref()
                .and_then(|e| e.rtp())
                .filter(|a| !a.ip().is_unspecified() && a.port() != 0),
            rtcp_mux: stream.rtcp_mux,
            telephone_event: stream.telephone_event.as_ref().map(|t| t.payload_type),
            held: stream.answerer_holds,
        };
        if let Err((code, reason)) = self.take_seat().await {
            tracing::info!(call = %self.info.call_id, code, reason, "seat refused after the ACK");
            self.hang_up().await;
        }
    }

    pub(super) async fn run(&mut self, inbox: &mut mpsc::UnboundedReceiver<CallEvent>) {
        while !self.done {
            let deadline = self.deadline();
            let mut view = self.seat.as_ref().map(|s| s.view.clone());
            tokio::select! {
                ev = inbox.recv() => match ev {
                    Some(ev) => self.on_event(ev).await,
                    None => break,
                },
                // Kicked or the room ended: we hang up. The room moved to
                // another mixer: the SBC leg follows it.
                Some(Ok(())) = async { match view.as_mut() {
                    Some(v) => Some(v.changed().await),
                    None => std::future::pending().await,
                } }, if !self.ended => {
                    let leave = match self.seat.as_mut() {
                        Some(seat) => {
                            seat.view.mark_unchanged();
                            seat.must_leave()
                        }
                        None => false,
                    };
                    if leave {
                        tracing::info!(call = %self.info.call_id, "told to leave the conference");
                        self.hang_up().await;
                    } else {
                        self.apply().await;
                    }
                }
                () = tokio::time::sleep_until(deadline.into()) => self.on_timer(Instant::now()).await,
            }
        }
        self.end(Ending::HungUp(HangupSide::System)).await;
    }

    fn deadline(&self) -> Instant {
        [
            self.retransmit.as_ref().map(|r| r.next),
            self.hangup_at,
            self.linger_until,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))
    }

    fn snapshot(&self, version: u64) -> CallSnapshot {
        let (port_a, port_b) = (self.lease.ports[0], self.lease.ports[1]);
        let payload_types = vec![self.codec.clone()];
        CallSnapshot {
            call_id: self.lease.call_id.clone(),
            version,
            legs: vec![
                LegSpec {
                    leg_id: LEG_CALLER,
                    local: LocalEndpoint {
                        range_id: self.lease.range,
                        rtp_port: port_a,
                        rtcp: if self.caller.rtcp_mux {
                            Rtcp::Mux
                        } else {
                            Rtcp::Port(port_a.saturating_add(1))
                        },
                    },
                    expected_remote: self.caller.remote,
                    latch: true,
                    payload_types: payload_types.clone(),
                    telephone_event_pt: self.caller.telephone_event,
                    relay_to: Some(LEG_MIXER),
                    continuation: None,
                },
                LegSpec {
                    leg_id: LEG_MIXER,
                    local: LocalEndpoint {
                        range_id: self.lease.range,
                        rtp_port: port_b,
                        // The mixer has one port per room: RTCP goes there too.
                        rtcp: Rtcp::Mux,
                    },
                    expected_remote: self.seat.as_ref().map(Seat::mixer),
                    latch: false,
                    payload_types,
                    telephone_event_pt: None,
                    relay_to: Some(LEG_CALLER),
                    continuation: None,
                },
            ],
        }
    }

    async fn apply(&mut self) {
        self.version += 1;
        let snap = self.snapshot(self.version);
        if let Err(e) = self.ctx.nodes.apply(&self.lease, snap).await {
            tracing::warn!(call = %self.info.call_id, error = %e, "snapshot not applied");
        }
    }

    async fn respond(&self, tx: TxId, resp: Message) {
        if let Some(code) = resp.status() {
            self.ctx.metrics.sip_response(code);
        }
        if let Err(e) = self.ctx.endpoint.respond(tx, resp).await {
            tracing::debug!(%tx, error = %e, "response not sent");
        }
    }

    async fn on_event(&mut self, ev: CallEvent) {
        match ev {
            CallEvent::Request { tx, msg } => self.on_request(tx, msg).await,
            CallEvent::Ack { msg } => {
                let _ = self.dialog.on_request(&msg);
                let seq = msg.cseq().map_or(0, |c| c.seq);
                if self.retransmit.as_ref().is_some_and(|r| r.seq == seq) {
                    self.retransmit = None;
                }
                if self.late_offer.is_some() {
                    self.on_late_answer(&msg).await;
                }
            }
            // Already answered: a CANCEL that crossed our 200 changes nothing.
            CallEvent::Cancelled => {}
            // The answer to our BYE (or its failure): the dialog is over.
            CallEvent::Response { msg, .. } if msg.status().is_some_and(|c| c >= 200) => {
                if self.linger_until.is_some() {
                    self.done = true;
                }
            }
            CallEvent::Response { .. } => {}
            CallEvent::Failed { .. } => {
                if self.linger_until.is_some() {
                    self.done = true;
                }
            }
            CallEvent::MediaTimeout { leg } => self.on_media_timeout(leg).await,
        }
    }

    /// The caller has sent nothing for the SBC's timeout (and is not
    /// holding): they are gone, and so is their seat.
    async fn on_media_timeout(&mut self, leg: LegId) {
        if self.ended || self.caller.held || leg != LEG_CALLER {
            return;
        }
        if self
            .silence
            .on_report(&self.ctx.nodes, &self.lease, leg, &[LEG_CALLER])
            .await
        {
            tracing::info!(call = %self.info.call_id, "no media from the caller; hanging up");
            self.hang_up().await;
        }
    }

    async fn on_timer(&mut self, now: Instant) {
        if let Some(r) = self.retransmit.as_mut()
            && let Some(due) = r.poll(now, self.ctx.config.t2)
        {
            match due {
                Due::Resend => {
                    let (tx, resp) = (r.tx, r.resp.clone());
                    self.respond(tx, resp).await;
                }
                Due::GiveUp => {
                    tracing::warn!(call = %self.info.call_id, "no ACK for our 2xx");
                    self.retransmit = None;
                    self.hang_up().await;
                    return;
                }
            }
        }
        if self.hangup_at.is_some_and(|t| t <= now) {
            tracing::info!(call = %self.info.call_id, "maximum call duration reached");
            self.hangup_at = None;
            self.hang_up().await;
        }
        if self.linger_until.is_some_and(|t| t <= now) {
            self.done = true;
        }
    }

    /// We end the call: BYE to the caller, out of the room, CDR.
    async fn hang_up(&mut self) {
        if let Ok(mut bye) = self.dialog.request(Method::Bye) {
            let (via, _) = super::call::via_for(&self.ctx, &self.peer);
            bye.prepend_header(HeaderName::Via, via);
            match self.ctx.endpoint.send_request(bye, self.peer).await {
                Ok(tx) => self.ctx.add_tx(self.key, tx),
                Err(e) => tracing::debug!(error = %e, "BYE not sent"),
            }
        }
        self.end(Ending::HungUp(HangupSide::System)).await;
        self.linger_until = Some(Instant::now() + self.ctx.config.t1 * 64);
    }

    async fn on_request(&mut self, tx: TxId, msg: Message) {
        let Some(method) = msg.method().cloned() else {
            return;
        };
        if self.ended {
            let resp = self.dialog.response(&msg, 481, None);
            self.respond(tx, resp).await;
            return;
        }
        if let Err(e) = self.dialog.on_request(&msg) {
            self.respond(tx, super::refusal_for(e, &msg)).await;
            return;
        }
        match method {
            Method::Bye => {
                let resp = self.dialog.response(&msg, 200, None);
                self.respond(tx, resp).await;
                self.end(Ending::HungUp(HangupSide::Caller)).await;
                self.done = true;
            }
            Method::Invite | Method::Update => self.on_offer(tx, msg, method).await,
            Method::Info | Method::Options => {
                let resp = self.dialog.response(&msg, 200, None);
                self.respond(tx, resp).await;
            }
            _ => {
                let mut resp = self.dialog.response(&msg, 501, None);
                resp.push_header(HeaderName::Allow, ALLOW);
                self.respond(tx, resp).await;
            }
        }
    }

    /// A re-INVITE or UPDATE: a new offer is answered on the same port and
    /// codec family; none gets our current description (RFC 3261 §14.2).
    async fn on_offer(&mut self, tx: TxId, msg: Message, method: Method) {
        let offer = match media::sdp_of(&msg) {
            Ok(o) => o,
            Err(code) => {
                let resp = self.dialog.response(&msg, code, Some("Bad SDP"));
                self.respond(tx, resp).await;
                return;
            }
        };
        let mut resp = self.dialog.response(&msg, 200, None);
        resp.push_header(HeaderName::Allow, ALLOW);
        if let Some(offer) = offer {
            let session_version = self.local_sdp.origin.session_version + 1;
            match negotiate(
                &offer,
                self.lease.addr,
                self.lease.ports[0],
                session_version,
            ) {
                Ok((answer, codec, caller)) if codec.name == self.codec.name => {
                    // The payload type may be renumbered; the codec stays.
                    let refresh = codec != self.codec
                        || caller.remote != self.caller.remote
                        || caller.rtcp_mux != self.caller.rtcp_mux;
                    let hold_changed = caller.held != self.caller.held;
                    self.codec = codec;
                    self.caller = CallerMedia {
                        remote: caller.remote.or(self.caller.remote),
                        ..caller
                    };
                    self.local_sdp = answer;
                    if refresh {
                        self.apply().await;
                    }
                    if hold_changed {
                        self.set_held().await;
                    }
                }
                Ok(_) => {
                    let resp = self
                        .dialog
                        .response(&msg, 488, Some("Codec change not supported"));
                    self.respond(tx, resp).await;
                    return;
                }
                Err(code) => {
                    let resp = self.dialog.response(&msg, code, None);
                    self.respond(tx, resp).await;
                    return;
                }
            }
            resp.set_body(self.local_sdp.to_string(), Some(SDP));
        } else if method == Method::Invite {
            resp.set_body(self.local_sdp.to_string(), Some(SDP));
        }
        if method == Method::Invite && !self.peer.transport.is_reliable() {
            self.retransmit = Some(Retransmit::new(tx, &resp, self.ctx.config.t1));
        }
        self.respond(tx, resp).await;
    }

    /// A held caller neither speaks nor hears in the room.
    async fn set_held(&mut self) {
        self.flags.muted = self.caller.held;
        self.flags.deaf = self.caller.held;
        let Some(seat) = self.seat.as_ref() else {
            return;
        };
        if let Err(e) = self.ctx.conferences.set_flags(seat, self.flags).await {
            tracing::warn!(call = %self.info.call_id, error = %e, "hold not applied in the room");
        }
    }

    /// Out of the room, media released, CDR written. Once.
    async fn end(&mut self, ending: Ending) {
        if self.ended {
            return;
        }
        self.ended = true;
        self.set_state(CallState::Ending);
        let seat = self.seat.take();
        if let Some(seat) = seat.as_ref()
            && let Some(stats) = self.ctx.conferences.leave(seat).await
        {
            // What the mixer heard from and sent to this caller.
            self.record.leg_b = Some(leg_stats(&stats));
        }
        // Nothing was set up on the SBC for a late offer never answered.
        let released = if self.version > 0 {
            self.ctx.nodes.release(&self.lease).await
        } else {
            Ok(Vec::new())
        };
        match released {
            Ok(legs) => {
                for (leg, stats) in legs {
                    if leg == LEG_CALLER {
                        self.record.leg_a = Some(leg_stats(&stats));
                    }
                }
            }
            Err(e) => tracing::warn!(call = %self.info.call_id, error = %e, "ReleaseCall failed"),
        }
        self.ctx.nodes.free(&self.lease);
        self.ctx
            .cdrs
            .submit(self.record.finish(ending, store::now_ms()));
        self.ctx.metrics.call_ended(ending.disposition().as_str());
    }

    fn set_state(&mut self, state: CallState) {
        self.info.state = state;
        self.ctx.set_info(self.key, self.info.clone());
    }
}
