//! Dialogs (RFC 3261 §12) with target refresh (§12.2, re-INVITE §14, UPDATE
//! RFC 3311), as a sans-IO state machine over messages.
//!
//! A [`Dialog`] is created from the request that starts it and the response
//! that gives it a remote tag ([`Dialog::from_uac`], [`Dialog::from_uas`]),
//! builds the requests sent inside it ([`Dialog::request`],
//! [`Dialog::ack_for`]) and the UAS's responses ([`Dialog::response`]), and
//! is told of what arrives ([`Dialog::on_request`], [`Dialog::on_response`]).
//! It knows nothing of transactions: the caller adds the Via (with a fresh
//! branch) when it hands a built request to its client transaction, and
//! passes every response it receives to the dialog it belongs to.
//!
//! Dialogs live in the caller's table keyed by [`DialogId`]; incoming
//! messages find theirs with [`DialogId::for_incoming_request`] and
//! [`DialogId::for_incoming_response`]. A forked INVITE makes one early
//! dialog per remote tag, all sharing Call-ID and local tag
//! ([`DialogId::same_set`]); a non-2xx final response ends all of them, so
//! the caller passes it to each dialog of the set.
//!
//! Choices where the RFCs leave room:
//! - The remote target changes only when a target refresh succeeds: on the
//!   2xx we receive for ours, and when we send the 2xx for theirs (not on
//!   receipt), so a re-INVITE we reject leaves the dialog as it was (the
//!   reading RFC 6141 makes explicit).
//! - The secure flag is the `sips` scheme of the dialog-creating
//!   Request-URI; that the hop used TLS is the transport's business.
//! - A UAS's first request in the dialog uses CSeq 1 (§12.2.1.1 lets the
//!   initial value be anything below 2^31).
//! - Tags and Call-IDs compare byte for byte.
//! - Crossing requests follow §14.2 and RFC 3311 §5.2: an INVITE, or an
//!   offer, arriving while ours is unanswered is glare (491); arriving while
//!   the peer's previous one is still unanswered by us it is a 500 with
//!   Retry-After. An offer is an `application/sdp` (or multipart) body in an
//!   INVITE or UPDATE; it is answered by the final response, or by a
//!   reliable (RFC 3262) 1xx with SDP. Offers in PRACK or in a 2xx/ACK are
//!   not tracked.

use bytes::Bytes;

use crate::header::HeaderName;
use crate::message::Message;
use crate::method::Method;
use crate::typed::{Contact, NameAddr};
use crate::uri::Uri;

/// Identifies a dialog from one side (RFC 3261 §12): the same dialog has
/// the two tags swapped at the other end.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    pub call_id: String,
    pub local_tag: String,
    /// Empty when the peer sent no From tag (RFC 2543 peers, §12.1.1).
    pub remote_tag: String,
}

impl DialogId {
    /// The dialog an arriving request belongs to: our tag is in To, theirs
    /// in From. `None` when To has no tag (the request is not in a dialog).
    pub fn for_incoming_request(req: &Message) -> Option<DialogId> {
        Some(DialogId {
            call_id: req.call_id()?.to_owned(),
            local_tag: req.to_tag()?.to_owned(),
            remote_tag: req.from_tag().unwrap_or("").to_owned(),
        })
    }

    /// The dialog an arriving response belongs to: our tag is in From,
    /// theirs in To. `None` when To has no tag (a 100, or a response that
    /// creates no dialog).
    pub fn for_incoming_response(resp: &Message) -> Option<DialogId> {
        Some(DialogId {
            call_id: resp.call_id()?.to_owned(),
            local_tag: resp.from_tag()?.to_owned(),
            remote_tag: resp.to_tag()?.to_owned(),
        })
    }

    /// Whether both were created by the same request (forked early dialogs
    /// differ only in their remote tag).
    pub fn same_set(&self, other: &DialogId) -> bool {
        self.call_id == other.call_id && self.local_tag == other.local_tag
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    Early,
    Confirmed,
    Terminated,
}

/// Which side of the dialog-creating request we were.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Uac,
    Uas,
}

/// Why a message could not be taken into the dialog or a request not built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialogError {
    #[error("message does not belong to this dialog")]
    Mismatch,
    #[error("dialog is terminated")]
    Terminated,
    #[error("response does not create a dialog")]
    NotDialogCreating,
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// §12.2.2: a request older than the last one accepted.
    #[error("CSeq {got} is lower than the remote CSeq {remote}")]
    OutOfOrder { got: u32, remote: u32 },
    /// Glare: an INVITE, or an offer, arrived while ours is unanswered
    /// (§14.2, RFC 3311 §5.2).
    #[error("our own INVITE or offer is pending")]
    RequestPending,
    /// An INVITE, or an offer, arrived while the peer's previous one is
    /// still unanswered by us (§14.2, RFC 3311 §5.2).
    #[error("the previous INVITE or offer has not been answered")]
    PreviousPending,
    /// §14.1: no new INVITE while one is in progress in either direction.
    #[error("an INVITE transaction is in progress")]
    InviteInProgress,
    /// RFC 3311 §5.1: no new offer while one is outstanding.
    #[error("an offer is outstanding")]
    OfferPending,
    /// ACK goes through [`Dialog::ack_for`]; CANCEL is not sent in a dialog.
    #[error("{0} is not built by Dialog::request")]
    WrongMethod(Method),
    #[error("local CSeq would exceed 2^31 - 1")]
    CSeqExhausted,
}

impl DialogError {
    /// The status to answer a received request with, for errors that come
    /// from one; `None` for errors in our own actions.
    pub fn status(&self) -> Option<u16> {
        match self {
            DialogError::Mismatch | DialogError::Terminated => Some(481),
            DialogError::Malformed(_) => Some(400),
            DialogError::OutOfOrder { .. } | DialogError::PreviousPending => Some(500),
            DialogError::RequestPending => Some(491),
            DialogError::NotDialogCreating
            | DialogError::InviteInProgress
            | DialogError::OfferPending
            | DialogError::WrongMethod(_)
            | DialogError::CSeqExhausted => None,
        }
    }

    /// The response rejecting `req` for this error, with the random 0–10 s
    /// Retry-After that §14.2 and RFC 3311 §5.2 ask of the 500 for an
    /// overlapping request. `None` when [`DialogError::status`] is.
    pub fn response_to(&self, req: &Message) -> Option<Message> {
        let code = self.status()?;
        let mut resp = Message::response_to(req, code, None);
        if *self == DialogError::PreviousPending {
            resp.push_header(
                HeaderName::RetryAfter,
                (rand::random::<u8>() % 11).to_string(),
            );
        }
        Some(resp)
    }
}

/// One element of a route set: a Record-Route value, kept as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEntry {
    value: String,
    uri: Uri,
    loose: bool,
    /// The URI as a strict-routing Request-URI, prepared once.
    request_uri: Uri,
}

impl RouteEntry {
    fn parse(value: &str) -> Result<RouteEntry, DialogError> {
        let na = NameAddr::parse(value).map_err(|_| DialogError::Malformed("Record-Route"))?;
        // Strict routing puts the route URI in the Request-URI, where the
        // RFC 3261 §19.1.1 table allows neither `method` nor headers.
        let mut request_uri = na.uri.clone();
        if let Some(sip) = request_uri.as_sip_mut() {
            sip.remove_param("method");
            sip.headers.clear();
        }
        Ok(RouteEntry {
            value: value.to_owned(),
            loose: na.uri.as_sip().is_some_and(|u| u.lr()),
            uri: na.uri,
            request_uri,
        })
    }

    /// The value as it goes into a Route header.
    pub fn value(&self) -> &str {
        &self.value
    }

    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// Whether the URI carries `;lr`.
    pub fn is_loose(&self) -> bool {
        self.loose
    }
}

/// Methods whose 2xx moves the remote target to their Contact: INVITE and
/// UPDATE (RFC 3261 §12.2, RFC 3311), SUBSCRIBE and NOTIFY (RFC 6665),
/// REFER (RFC 3515). Requests with these methods carry our Contact.
pub fn is_target_refresh(method: &Method) -> bool {
    matches!(
        method,
        Method::Invite | Method::Update | Method::Subscribe | Method::Notify | Method::Refer
    )
}

/// An INVITE or UPDATE transaction not yet answered with a final response.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pending {
    seq: u32,
    method: Method,
    /// It carried an SDP offer.
    offer: bool,
    /// The Contact of a target refresh we received, applied on our 2xx.
    contact: Option<Uri>,
}

/// One dialog as seen from our side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    id: DialogId,
    role: Role,
    state: DialogState,
    /// From (in our requests) with our tag, as written.
    local_party: String,
    /// To (in our requests) with the remote tag, as written.
    remote_party: String,
    local_uri: Uri,
    remote_uri: Uri,
    local_seq: Option<u32>,
    remote_seq: Option<u32>,
    remote_target: Uri,
    route_set: Vec<RouteEntry>,
    secure: bool,
    local_contact: Option<String>,
    /// CSeq of the dialog-creating request.
    initial_seq: u32,
    initial_method: Method,
    /// Our INVITE/UPDATE/target-refresh requests awaiting a final response.
    sent: Vec<Pending>,
    /// The peer's, awaiting our final response.
    received: Vec<Pending>,
}

impl Dialog {
    /// The UAC's dialog from the request it sent and a response carrying a
    /// To tag: a 101–199 makes it early, a 2xx confirmed (§12.1.2). Each
    /// fork of the request gives its own dialog.
    pub fn from_uac(request_sent: &Message, response: &Message) -> Result<Dialog, DialogError> {
        let code = response
            .status()
            .ok_or(DialogError::Malformed("response"))?;
        let method = request_sent
            .method()
            .ok_or(DialogError::Malformed("request"))?;
        let req_cseq = request_sent.cseq().ok_or(DialogError::Malformed("CSeq"))?;
        if !(101..300).contains(&code) {
            return Err(DialogError::NotDialogCreating);
        }
        let remote_tag = response.to_tag().ok_or(DialogError::NotDialogCreating)?;
        let local_tag = request_sent
            .from_tag()
            .ok_or(DialogError::Malformed("From tag"))?;
        let call_id = request_sent
            .call_id()
            .ok_or(DialogError::Malformed("Call-ID"))?;
        if response.call_id() != Some(call_id)
            || response.from_tag() != Some(local_tag)
            || response.cseq() != Some(req_cseq.clone())
        {
            return Err(DialogError::Mismatch);
        }
        let request_uri = request_sent
            .request_uri()
            .ok_or(DialogError::Malformed("request"))?;
        let local_party = header_text(request_sent, HeaderName::From)?;
        let remote_party = header_text(response, HeaderName::To)?;
        // A 1xx need not carry a Contact; until one does, the Request-URI
        // is the best target there is.
        let remote_target = contact_uri(response)?.unwrap_or_else(|| request_uri.clone());
        let local_contact = request_sent
            .values(HeaderName::Contact)
            .next()
            .map(str::to_owned);
        let confirmed = code >= 200;
        let mut sent = Vec::new();
        if !confirmed {
            sent.push(Pending {
                seq: req_cseq.seq,
                method: method.clone(),
                offer: has_sdp(request_sent),
                contact: None,
            });
        }
        Ok(Dialog {
            id: DialogId {
                call_id: call_id.to_owned(),
                local_tag: local_tag.to_owned(),
                remote_tag: remote_tag.to_owned(),
            },
            role: Role::Uac,
            state: if confirmed {
                DialogState::Confirmed
            } else {
                DialogState::Early
            },
            local_uri: party_uri(&local_party)?,
            remote_uri: party_uri(&remote_party)?,
            local_party,
            remote_party,
            local_seq: Some(req_cseq.seq),
            remote_seq: None,
            remote_target,
            // §12.1.2: the UAC's route set is Record-Route reversed.
            route_set: route_set(response, true)?,
            secure: is_sips(request_uri),
            local_contact,
            initial_seq: req_cseq.seq,
            initial_method: method.clone(),
            sent,
            received: Vec::new(),
        })
    }

    /// The UAS's dialog for a dialog-creating request it received (no To
    /// tag), before its first 1xx/2xx: build those with
    /// [`Dialog::response`], which confirms or ends the dialog on the final
    /// one. `local_contact` is our Contact URI or name-addr; a bare URI is
    /// put in `<>` so its parameters stay URI parameters.
    pub fn from_uas(
        request_received: &Message,
        local_tag: &str,
        local_contact: &str,
    ) -> Result<Dialog, DialogError> {
        let method = request_received
            .method()
            .ok_or(DialogError::Malformed("request"))?;
        if request_received.to_tag().is_some() {
            return Err(DialogError::NotDialogCreating);
        }
        let cseq = request_received
            .cseq()
            .ok_or(DialogError::Malformed("CSeq"))?;
        let call_id = request_received
            .call_id()
            .ok_or(DialogError::Malformed("Call-ID"))?;
        let request_uri = request_received
            .request_uri()
            .ok_or(DialogError::Malformed("request"))?;
        let remote_target =
            contact_uri(request_received)?.ok_or(DialogError::Malformed("Contact"))?;
        let local_contact = local_contact_value(local_contact)?;
        let remote_party = header_text(request_received, HeaderName::From)?;
        let local_party = format!(
            "{};tag={local_tag}",
            header_text(request_received, HeaderName::To)?
        );
        Ok(Dialog {
            id: DialogId {
                call_id: call_id.to_owned(),
                local_tag: local_tag.to_owned(),
                remote_tag: request_received.from_tag().unwrap_or("").to_owned(),
            },
            role: Role::Uas,
            state: DialogState::Early,
            local_uri: party_uri(&local_party)?,
            remote_uri: party_uri(&remote_party)?,
            local_party,
            remote_party,
            local_seq: None,
            remote_seq: Some(cseq.seq),
            remote_target: remote_target.clone(),
            // §12.1.1: the UAS keeps Record-Route in its order.
            route_set: route_set(request_received, false)?,
            secure: is_sips(request_uri),
            local_contact: Some(local_contact),
            initial_seq: cseq.seq,
            initial_method: method.clone(),
            sent: Vec::new(),
            received: vec![Pending {
                seq: cseq.seq,
                method: method.clone(),
                offer: has_sdp(request_received),
                contact: Some(remote_target),
            }],
        })
    }

    pub fn id(&self) -> &DialogId {
        &self.id
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn state(&self) -> DialogState {
        self.state
    }

    /// Our From value in requests we send, tag included.
    pub fn local_party(&self) -> &str {
        &self.local_party
    }

    /// Our To value in requests we send, tag included.
    pub fn remote_party(&self) -> &str {
        &self.remote_party
    }

    pub fn local_uri(&self) -> &Uri {
        &self.local_uri
    }

    pub fn remote_uri(&self) -> &Uri {
        &self.remote_uri
    }

    /// The CSeq number of our last request; `None` before the first (UAS).
    pub fn local_seq(&self) -> Option<u32> {
        self.local_seq
    }

    /// The CSeq number of the peer's last request; `None` before the first
    /// (UAC).
    pub fn remote_seq(&self) -> Option<u32> {
        self.remote_seq
    }

    /// Where requests in this dialog go: the peer's Contact.
    pub fn remote_target(&self) -> &Uri {
        &self.remote_target
    }

    pub fn route_set(&self) -> &[RouteEntry] {
        &self.route_set
    }

    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The Contact we put in target refresh requests and responses.
    pub fn local_contact(&self) -> Option<&str> {
        self.local_contact.as_deref()
    }

    /// Changes the Contact sent from now on (a UA that moved, a B2BUA that
    /// hands the leg to another node); the peer learns it from our next
    /// target refresh. A bare URI is put in `<>`.
    pub fn set_local_contact(&mut self, contact: &str) -> Result<(), DialogError> {
        self.local_contact = Some(local_contact_value(contact)?);
        Ok(())
    }

    /// Ends the dialog for reasons the dialog cannot see: a transaction
    /// timeout (§12.2.1.2), a session that is over.
    pub fn terminate(&mut self) {
        self.state = DialogState::Terminated;
    }

    /// A request in this dialog with no body (§12.2.1.1). Add the Via and
    /// hand it to a client transaction. A BYE ends the dialog.
    pub fn request(&mut self, method: Method) -> Result<Message, DialogError> {
        self.build_request(method, None)
    }

    /// A request in this dialog carrying `body`; an `application/sdp` body
    /// in an INVITE or UPDATE is an offer, which the dialog tracks to keep
    /// two offers from crossing.
    pub fn request_with_body(
        &mut self,
        method: Method,
        content_type: &str,
        body: impl Into<Bytes>,
    ) -> Result<Message, DialogError> {
        self.build_request(method, Some((content_type, body.into())))
    }

    fn build_request(
        &mut self,
        method: Method,
        body: Option<(&str, Bytes)>,
    ) -> Result<Message, DialogError> {
        if self.state == DialogState::Terminated {
            return Err(DialogError::Terminated);
        }
        if matches!(method, Method::Ack | Method::Cancel) {
            return Err(DialogError::WrongMethod(method));
        }
        let offer = matches!(method, Method::Invite | Method::Update)
            && body
                .as_ref()
                .is_some_and(|(ct, b)| !b.is_empty() && is_sdp_type(ct));
        let invite_pending = |p: &Pending| p.method == Method::Invite;
        if method == Method::Invite
            && (self.sent.iter().any(invite_pending) || self.received.iter().any(invite_pending))
        {
            return Err(DialogError::InviteInProgress);
        }
        if offer && (self.sent.iter().any(|p| p.offer) || self.received.iter().any(|p| p.offer)) {
            return Err(DialogError::OfferPending);
        }
        let seq = match self.local_seq {
            None => 1,
            Some(s) if s < (1 << 31) - 1 => s + 1,
            Some(_) => return Err(DialogError::CSeqExhausted),
        };
        let mut msg = self.base_request(&method, seq);
        if is_target_refresh(&method)
            && let Some(contact) = &self.local_contact
        {
            msg.push_header(HeaderName::Contact, contact.as_str());
        }
        match body {
            Some((ct, b)) => msg.set_body(b, Some(ct)),
            None => msg.set_body(Bytes::new(), None),
        }
        self.local_seq = Some(seq);
        if is_target_refresh(&method) {
            self.sent.push(Pending {
                seq,
                method: method.clone(),
                offer,
                contact: None,
            });
        }
        if method == Method::Bye {
            self.state = DialogState::Terminated;
        }
        Ok(msg)
    }

    /// The ACK for a 2xx to our INVITE with CSeq number `invite_seq`
    /// (§13.2.2.4): same number, method ACK, routed like any request in
    /// the dialog. It is sent again for each retransmission of the 2xx.
    pub fn ack_for(&self, invite_seq: u32) -> Message {
        let mut msg = self.base_request(&Method::Ack, invite_seq);
        msg.set_body(Bytes::new(), None);
        msg
    }

    /// Request-URI and Route per §12.2.1.1, then From, To, Call-ID, CSeq.
    fn base_request(&self, method: &Method, seq: u32) -> Message {
        let (request_uri, routes): (Uri, Vec<String>) = match self.route_set.first() {
            None => (self.remote_target.clone(), Vec::new()),
            Some(first) if first.loose => (
                self.remote_target.clone(),
                self.route_set.iter().map(|r| r.value.clone()).collect(),
            ),
            // A strict router wants itself in the Request-URI and the
            // real target at the end of the Route list.
            Some(first) => (
                first.request_uri.clone(),
                self.route_set[1..]
                    .iter()
                    .map(|r| r.value.clone())
                    .chain(std::iter::once(format!("<{}>", self.remote_target)))
                    .collect(),
            ),
        };
        let mut msg = Message::request(method.clone(), request_uri);
        for r in routes {
            msg.push_header(HeaderName::Route, r);
        }
        msg.push_header(HeaderName::MaxForwards, "70");
        msg.push_header(HeaderName::From, self.local_party.as_str());
        msg.push_header(HeaderName::To, self.remote_party.as_str());
        msg.push_header(HeaderName::CallId, self.id.call_id.as_str());
        msg.push_header(HeaderName::CSeq, format!("{seq} {method}"));
        msg
    }

    /// A request that arrived in this dialog (§12.2.2). On `Err`, answer
    /// with [`DialogError::response_to`]. A target refresh takes effect
    /// when we send its 2xx through [`Dialog::response`]; a BYE ends the
    /// dialog at once.
    pub fn on_request(&mut self, req: &Message) -> Result<(), DialogError> {
        let method = req.method().ok_or(DialogError::Malformed("request"))?;
        if DialogId::for_incoming_request(req).as_ref() != Some(&self.id) {
            return Err(DialogError::Mismatch);
        }
        if self.state == DialogState::Terminated {
            return Err(DialogError::Terminated);
        }
        let cseq = req.cseq().ok_or(DialogError::Malformed("CSeq"))?;
        // ACK and CANCEL reuse the number of the request they go with; an
        // ACK overtaken by a later request is still good.
        if matches!(method, Method::Ack | Method::Cancel) {
            return Ok(());
        }
        if let Some(remote) = self.remote_seq
            && cseq.seq < remote
        {
            return Err(DialogError::OutOfOrder {
                got: cseq.seq,
                remote,
            });
        }
        let contact = if is_target_refresh(method) {
            contact_uri(req)?
        } else {
            None
        };
        // §12.2.2: the number is taken even if the request is then refused.
        self.remote_seq = Some(cseq.seq);

        let offer = matches!(method, Method::Invite | Method::Update) && has_sdp(req);
        let is_invite = |p: &Pending| p.method == Method::Invite;
        if *method == Method::Invite && self.received.iter().any(is_invite) {
            return Err(DialogError::PreviousPending);
        }
        if (*method == Method::Invite && self.sent.iter().any(is_invite))
            || (offer && self.sent.iter().any(|p| p.offer))
        {
            return Err(DialogError::RequestPending);
        }
        if offer && self.received.iter().any(|p| p.offer) {
            return Err(DialogError::PreviousPending);
        }
        if is_target_refresh(method) {
            self.received.push(Pending {
                seq: cseq.seq,
                method: method.clone(),
                offer,
                contact,
            });
        }
        if *method == Method::Bye {
            self.state = DialogState::Terminated;
        }
        Ok(())
    }

    /// Our response to a request in this dialog, or to the request that
    /// creates it: To tag added, and for a 101–299 our Contact, plus, when
    /// the request creates the dialog, its Record-Route copied (§12.1.1).
    /// The dialog takes the response into account as
    /// [`Dialog::on_response_sent`] does.
    pub fn response(&mut self, req: &Message, code: u16, reason: Option<&str>) -> Message {
        let mut resp = Message::response_to(req, code, reason);
        let creating = req.to_tag().is_none();
        if code > 100 {
            resp.set_to_tag(&self.id.local_tag);
        }
        if creating && (101..300).contains(&code) {
            for rr in req.header_lines(HeaderName::RecordRoute) {
                resp.push_header(HeaderName::RecordRoute, rr);
            }
        }
        let refresh = req.method().is_some_and(is_target_refresh);
        if (101..300).contains(&code)
            && (creating || refresh)
            && let Some(contact) = &self.local_contact
        {
            resp.push_header(HeaderName::Contact, contact.as_str());
        }
        self.on_response_sent(&resp);
        resp
    }

    /// A final response we sent to one of the peer's requests, for callers
    /// that build responses themselves: it ends the pending INVITE/UPDATE,
    /// applies a target refresh on 2xx, and confirms (2xx) or ends (other)
    /// the dialog when it answers the dialog-creating request.
    pub fn on_response_sent(&mut self, resp: &Message) {
        let (Some(code), Some(cseq)) = (resp.status(), resp.cseq()) else {
            return;
        };
        if code < 200 {
            // A reliable 1xx with SDP answers the offer (RFC 3262).
            if is_reliable_answer(resp) {
                self.received
                    .iter_mut()
                    .filter(|p| p.seq == cseq.seq && p.method == cseq.method)
                    .for_each(|p| p.offer = false);
            }
            return;
        }
        let ok = code < 300;
        if let Some(i) = self
            .received
            .iter()
            .position(|p| p.seq == cseq.seq && p.method == cseq.method)
        {
            let p = self.received.remove(i);
            if ok && let Some(target) = p.contact {
                self.remote_target = target;
            }
        }
        if self.role == Role::Uas
            && self.state == DialogState::Early
            && cseq.seq == self.initial_seq
            && cseq.method == self.initial_method
        {
            self.state = if ok {
                DialogState::Confirmed
            } else {
                DialogState::Terminated
            };
        }
    }

    /// A response that arrived for a request we sent in this dialog, or for
    /// the request that created it (§12.1.2, §12.2.1.2, §13.2.2.4).
    ///
    /// A non-2xx final response to the dialog-creating request ends an
    /// early dialog whatever its To tag, since it ends the whole request:
    /// pass it to every early dialog of the set.
    pub fn on_response(&mut self, resp: &Message) -> Result<(), DialogError> {
        let code = resp.status().ok_or(DialogError::Malformed("response"))?;
        let cseq = resp.cseq().ok_or(DialogError::Malformed("CSeq"))?;
        if resp.call_id() != Some(self.id.call_id.as_str())
            || resp.from_tag() != Some(self.id.local_tag.as_str())
        {
            return Err(DialogError::Mismatch);
        }
        let to_creating = self.role == Role::Uac
            && cseq.seq == self.initial_seq
            && cseq.method == self.initial_method;
        if resp.to_tag() != Some(self.id.remote_tag.as_str()) {
            if to_creating && code >= 300 && self.state == DialogState::Early {
                self.sent
                    .retain(|p| !(p.seq == cseq.seq && p.method == cseq.method));
                self.state = DialogState::Terminated;
                return Ok(());
            }
            return Err(DialogError::Mismatch);
        }
        if code < 200 {
            // A reliable 1xx with SDP answers our offer (RFC 3262), so a new
            // offer (an UPDATE in the early dialog) may follow.
            if is_reliable_answer(resp) {
                self.sent
                    .iter_mut()
                    .filter(|p| p.seq == cseq.seq && p.method == cseq.method)
                    .for_each(|p| p.offer = false);
            }
            return Ok(());
        }
        let ok = code < 300;
        let pending = self
            .sent
            .iter()
            .position(|p| p.seq == cseq.seq && p.method == cseq.method)
            .map(|i| self.sent.remove(i));
        if to_creating && self.state == DialogState::Early {
            if ok {
                // §13.2.2.4: the 2xx decides the route set and the target.
                self.route_set = route_set(resp, true)?;
                if let Some(target) = contact_uri(resp)? {
                    self.remote_target = target;
                }
                self.state = DialogState::Confirmed;
            } else {
                self.state = DialogState::Terminated;
            }
            return Ok(());
        }
        if ok
            && pending.is_some()
            && is_target_refresh(&cseq.method)
            && let Some(target) = contact_uri(resp)?
        {
            self.remote_target = target;
        }
        // §12.2.1.2: the peer no longer knows the dialog.
        if matches!(code, 481 | 408) {
            self.state = DialogState::Terminated;
        }
        Ok(())
    }
}

/// Our Contact as a header value: a bare URI goes in `<>` so its
/// parameters stay URI parameters.
fn local_contact_value(contact: &str) -> Result<String, DialogError> {
    let contact = contact.trim();
    let value = if contact.contains('<') {
        contact.to_owned()
    } else {
        format!("<{contact}>")
    };
    match Contact::parse(&value) {
        Ok(Contact::Addr(_)) => Ok(value),
        _ => Err(DialogError::Malformed("local Contact")),
    }
}

/// The first header of this name, as text.
fn header_text(msg: &Message, name: HeaderName) -> Result<String, DialogError> {
    msg.header(name)
        .map(|v| v.trim().to_owned())
        .ok_or(DialogError::Malformed(name.canonical()))
}

fn party_uri(value: &str) -> Result<Uri, DialogError> {
    NameAddr::parse(value)
        .map(|na| na.uri)
        .map_err(|_| DialogError::Malformed("From/To"))
}

/// The URI of the first Contact, if there is one.
fn contact_uri(msg: &Message) -> Result<Option<Uri>, DialogError> {
    match msg.contacts().next() {
        None => Ok(None),
        Some(Ok(Contact::Addr(na))) => Ok(Some(na.uri)),
        Some(Ok(Contact::Wildcard)) | Some(Err(_)) => Err(DialogError::Malformed("Contact")),
    }
}

/// The route set from a message's Record-Route values, reversed for the UAC.
fn route_set(msg: &Message, reverse: bool) -> Result<Vec<RouteEntry>, DialogError> {
    let mut set = msg
        .values(HeaderName::RecordRoute)
        .map(RouteEntry::parse)
        .collect::<Result<Vec<_>, _>>()?;
    if reverse {
        set.reverse();
    }
    Ok(set)
}

fn is_sips(uri: &Uri) -> bool {
    uri.scheme().eq_ignore_ascii_case("sips")
}

/// `application/sdp`, or a multipart body that may hold one.
fn is_sdp_type(content_type: &str) -> bool {
    let mime = content_type.split(';').next().unwrap_or("").trim();
    mime.eq_ignore_ascii_case("application/sdp")
        || mime
            .get(..10)
            .is_some_and(|p| p.eq_ignore_ascii_case("multipart/"))
}

fn has_sdp(msg: &Message) -> bool {
    !msg.body().is_empty() && msg.content_type().is_some_and(is_sdp_type)
}

fn is_reliable_answer(resp: &Message) -> bool {
    has_sdp(resp)
        && resp
            .values(HeaderName::Require)
            .any(|v| v.trim().eq_ignore_ascii_case("100rel"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdp_content_types() {
        assert!(is_sdp_type("application/sdp"));
        assert!(is_sdp_type("Application/SDP ; charset=utf-8"));
        assert!(is_sdp_type("multipart/mixed;boundary=x"));
        assert!(!is_sdp_type("application/dtmf-relay"));
        assert!(!is_sdp_type("multi"));
    }

    #[test]
    fn local_contact_is_bracketed() {
        assert_eq!(
            local_contact_value(" sip:a@h;transport=tcp ").as_deref(),
            Ok("<sip:a@h;transport=tcp>")
        );
        assert_eq!(
            local_contact_value("\"A\" <sip:a@h>;expires=60").as_deref(),
            Ok("\"A\" <sip:a@h>;expires=60")
        );
        assert_eq!(
            local_contact_value("*"),
            Err(DialogError::Malformed("local Contact"))
        );
        assert!(local_contact_value("not a uri").is_err());
    }

    #[test]
    fn error_statuses() {
        assert_eq!(DialogError::RequestPending.status(), Some(491));
        assert_eq!(
            DialogError::OutOfOrder { got: 1, remote: 2 }.status(),
            Some(500)
        );
        assert_eq!(DialogError::PreviousPending.status(), Some(500));
        assert_eq!(DialogError::Terminated.status(), Some(481));
        assert_eq!(DialogError::InviteInProgress.status(), None);
    }
}
