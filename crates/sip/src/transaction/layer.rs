//! The transaction layer: owns every live transaction, matches incoming
//! messages to them (§17.1.3, §17.2.3, §9.2), creates server transactions for
//! new requests, and queues what the machines send and report.
//!
//! Transactions live in a slab (index + generation = [`TxId`]); each slot
//! keeps its transaction's matching key in a buffer reused from one
//! transaction to the next. Two hash tables of ids, hashed and compared by
//! those keys, match responses to client transactions and requests to server
//! transactions; a third holds a fingerprint of From tag, Call-ID and CSeq per
//! server transaction for merged-request detection.

use std::hash::BuildHasher;
use std::time::Instant;

use bytes::Bytes;
use hashbrown::HashTable;

use crate::header::HeaderName;
use crate::ids::new_tag;
use crate::message::Message;
use crate::method::Method;

use super::build::{cancel_for, ensure_branch, layer_response};
use super::client_invite::{self, ClientInvite};
use super::client_non_invite::ClientNonInvite;
use super::keys::{client_key, merge_fingerprint, response_peer, rfc2543_key, server_key};
use super::server_invite::{AckFate, ServerInvite};
use super::server_non_invite::ServerNonInvite;
use super::timers::TimerQueue;
use super::{Config, Event, Outcome, Peer, Sink, Stats, Transmit, TxError, TxId, TxKind};

/// The INVITE machines keep the whole request and are three times the size
/// of the others, so they are boxed: the slot table stays dense for the
/// common non-INVITE transactions.
#[derive(Debug)]
#[allow(clippy::enum_variant_names)] // named as in TxKind and the RFC
enum Machine {
    ClientInvite(Box<ClientInvite>),
    ClientNonInvite(ClientNonInvite),
    ServerInvite(Box<ServerInvite>),
    ServerNonInvite(ServerNonInvite),
}

impl Machine {
    fn kind(&self) -> TxKind {
        match self {
            Machine::ClientInvite(_) => TxKind::ClientInvite,
            Machine::ClientNonInvite(_) => TxKind::ClientNonInvite,
            Machine::ServerInvite(_) => TxKind::ServerInvite,
            Machine::ServerNonInvite(_) => TxKind::ServerNonInvite,
        }
    }

    fn is_client(&self) -> bool {
        matches!(self, Machine::ClientInvite(_) | Machine::ClientNonInvite(_))
    }

    fn outcome(&self) -> Option<Outcome> {
        match self {
            Machine::ClientInvite(m) => m.outcome(),
            Machine::ClientNonInvite(m) => m.outcome(),
            Machine::ServerInvite(m) => m.outcome(),
            Machine::ServerNonInvite(m) => m.outcome(),
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        match self {
            Machine::ClientInvite(m) => m.next_deadline(),
            Machine::ClientNonInvite(m) => m.next_deadline(),
            Machine::ServerInvite(m) => m.next_deadline(),
            Machine::ServerNonInvite(m) => m.next_deadline(),
        }
    }

    fn on_timer(&mut self, id: TxId, now: Instant, cfg: &Config, out: &mut Sink) {
        match self {
            Machine::ClientInvite(m) => m.on_timer(id, now, cfg, out),
            Machine::ClientNonInvite(m) => m.on_timer(id, now, cfg, out),
            Machine::ServerInvite(m) => m.on_timer(id, now, cfg, out),
            Machine::ServerNonInvite(m) => m.on_timer(now),
        }
    }

    fn on_transport_error(&mut self, id: TxId, out: &mut Sink) {
        match self {
            Machine::ClientInvite(m) => m.on_transport_error(id, out),
            Machine::ClientNonInvite(m) => m.on_transport_error(id, out),
            Machine::ServerInvite(m) => m.on_transport_error(id, out),
            Machine::ServerNonInvite(m) => m.on_transport_error(id, out),
        }
    }
}

#[derive(Debug)]
struct Entry {
    machine: Machine,
    /// Matched by the RFC 2543 rules: an ACK must also carry the To tag of
    /// the response.
    legacy: bool,
    merge: Option<u64>,
    /// The deadline this transaction's live timer-queue entry is at.
    scheduled: Option<Instant>,
    /// Run by the layer on its own (the CANCEL it answers): no events.
    internal: bool,
}

#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    /// The matching key of the transaction in `entry` (or of the last one),
    /// and its hash in the table that holds it. The buffer outlives the
    /// transaction, so a reused slot needs no allocation for its key.
    key: Vec<u8>,
    key_hash: u64,
    entry: Option<Entry>,
}

/// Transaction ids by matching key. The keys live in the slots, so the table
/// holds only ids and removing one needs neither the key nor a comparison of
/// it. Hashed with a randomly seeded hash: branches come from the network,
/// so the hash must not be predictable (HashDoS).
#[derive(Debug, Default)]
struct KeyIndex {
    table: HashTable<TxId>,
    hasher: foldhash::fast::RandomState,
}

impl KeyIndex {
    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    fn find(&self, slots: &[Slot], hash: u64, key: &[u8]) -> Option<TxId> {
        self.table
            .find(hash, |&id| slots[slot_index(id)].key == key)
            .copied()
    }

    /// Indexes `id` under the key already in its slot, replacing any other
    /// transaction indexed under the same key.
    fn insert(&mut self, slots: &[Slot], id: TxId) {
        let slot = &slots[slot_index(id)];
        let entry = self.table.entry(
            slot.key_hash,
            |&other| slots[slot_index(other)].key == slot.key,
            |&other| slots[slot_index(other)].key_hash,
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(mut e) => *e.get_mut() = id,
            hashbrown::hash_table::Entry::Vacant(e) => {
                e.insert(id);
            }
        }
    }

    fn remove(&mut self, hash: u64, id: TxId) {
        if let Ok(e) = self.table.find_entry(hash, |&other| other == id) {
            e.remove();
        }
    }
}

fn slot_index(id: TxId) -> usize {
    (id.0 & 0xffff_ffff) as usize
}

fn entry_mut(slots: &mut [Slot], id: TxId) -> Option<&mut Entry> {
    let slot = slots.get_mut(slot_index(id))?;
    if u64::from(slot.generation) != id.0 >> 32 {
        return None;
    }
    slot.entry.as_mut()
}

fn entry_ref(slots: &[Slot], id: TxId) -> Option<&Entry> {
    let slot = slots.get(slot_index(id))?;
    if u64::from(slot.generation) != id.0 >> 32 {
        return None;
    }
    slot.entry.as_ref()
}

/// Whether the To header has a tag. A value without `=` or without the
/// letters cannot, which spares parsing it for the usual out-of-dialog
/// request.
fn has_to_tag(msg: &Message) -> bool {
    let Some(to) = msg.header(HeaderName::To) else {
        return false;
    };
    let to = to.as_bytes();
    memchr::memchr(b'=', to).is_some()
        && to.windows(3).any(|w| w.eq_ignore_ascii_case(b"tag"))
        && msg.to_tag().is_some()
}

/// How a new server transaction is matched later; its key is in `scratch`.
struct ServerMatch {
    hash: u64,
    legacy: bool,
    merge: Option<u64>,
}

/// The transaction layer of one endpoint. See the [module docs](super).
#[derive(Debug)]
pub struct TransactionLayer {
    cfg: Config,
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
    clients: KeyIndex,
    servers: KeyIndex,
    /// (fingerprint, server transaction). A fingerprint is a keyed hash
    /// already, so it serves as its own hash here.
    merged: HashTable<(u64, TxId)>,
    hasher: foldhash::quality::RandomState,
    timers: TimerQueue,
    out: Sink,
    /// Lookup keys are built here, so matching allocates nothing.
    scratch: Vec<u8>,
}

impl TransactionLayer {
    /// A layer with `cfg`; T1 and T4 are raised to at least 1 ms and T2 to
    /// at least T1, so no timer can re-arm itself at the instant it fired.
    pub fn new(mut cfg: Config) -> TransactionLayer {
        let floor = std::time::Duration::from_millis(1);
        cfg.t1 = cfg.t1.max(floor);
        cfg.t4 = cfg.t4.max(floor);
        cfg.t2 = cfg.t2.max(cfg.t1);
        TransactionLayer {
            cfg,
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            clients: KeyIndex::default(),
            servers: KeyIndex::default(),
            merged: HashTable::new(),
            hasher: foldhash::quality::RandomState::default(),
            timers: TimerQueue::default(),
            out: Sink::default(),
            scratch: Vec::with_capacity(128),
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn stats(&self) -> &Stats {
        &self.out.stats
    }

    /// Transactions not yet terminated.
    pub fn live_transactions(&self) -> usize {
        self.live
    }

    /// Entries in the timer queue, stale ones included: stays proportional
    /// to [`TransactionLayer::live_transactions`].
    pub fn timer_entries(&self) -> usize {
        self.timers.len()
    }

    /// The kind of a live transaction.
    pub fn kind(&self, tx: TxId) -> Option<TxKind> {
        entry_ref(&self.slots, tx).map(|e| e.machine.kind())
    }

    /// The next bytes to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.transmits.pop_front()
    }

    /// The next event for the TU.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.out.events.pop_front()
    }

    /// When [`TransactionLayer::handle_timeouts`] should next be called. It may
    /// be earlier than needed (a stopped timer), never later.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.peek()
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeouts(&mut self, now: Instant) {
        while let Some((at, id)) = self.timers.pop_due(now) {
            let Some(entry) = entry_mut(&mut self.slots, id) else {
                continue;
            };
            if entry.scheduled != Some(at) {
                continue;
            }
            entry.scheduled = None;
            entry.machine.on_timer(id, now, &self.cfg, &mut self.out);
            self.settle(id);
        }
    }

    /// Sending a [`Transmit`] of transaction `tx` failed (§17.1.4, §17.2.4).
    pub fn transport_error(&mut self, tx: TxId) {
        if let Some(entry) = entry_mut(&mut self.slots, tx) {
            entry.machine.on_transport_error(tx, &mut self.out);
            self.settle(tx);
        }
    }

    /// Sends a message outside any transaction: the ACK for a 2xx, or a
    /// response a stateless element forwards.
    pub fn send_stateless(&mut self, msg: &Message, to: Peer) {
        self.out.transmits.push_back(Transmit {
            to,
            bytes: Bytes::from(msg.to_bytes()),
            tx: None,
        });
    }

    /// Starts a client transaction for a request from the TU and sends it.
    /// A top Via with a fresh branch is added when the request has no Via
    /// (sent-by from [`Config::sent_by`]), and a branch when its top Via has
    /// none.
    pub fn send_request(
        &mut self,
        mut msg: Message,
        to: Peer,
        now: Instant,
    ) -> Result<TxId, TxError> {
        let method = match msg.method() {
            Some(Method::Ack) | None => return Err(TxError::NotARequest),
            Some(m) => m.clone(),
        };
        if self.live >= self.cfg.max_transactions {
            return Err(TxError::Overloaded);
        }
        let scratch = &mut self.scratch;
        ensure_branch(&mut msg, to.transport, &self.cfg.sent_by, |branch| {
            client_key(scratch, branch, &method)
        })?;
        let hash = self.clients.hash(&self.scratch);
        if self
            .clients
            .find(&self.slots, hash, &self.scratch)
            .is_some()
        {
            return Err(TxError::BranchInUse);
        }
        let bytes = Bytes::from(msg.to_bytes());
        let id = self.vacant_id();
        let machine = if method == Method::Invite {
            Machine::ClientInvite(Box::new(ClientInvite::start(
                id,
                to,
                msg,
                bytes,
                now,
                &self.cfg,
                &mut self.out,
            )))
        } else {
            Machine::ClientNonInvite(ClientNonInvite::start(
                id,
                to,
                bytes,
                now,
                &self.cfg,
                &mut self.out,
            ))
        };
        self.occupy(id, machine, hash, false, None, false);
        Ok(id)
    }

    /// Sends the TU's response on server transaction `tx`.
    pub fn respond(&mut self, tx: TxId, msg: Message, now: Instant) -> Result<(), TxError> {
        let status = msg.status().ok_or(TxError::BadStatus)?;
        if !(100..=699).contains(&status) {
            return Err(TxError::BadStatus);
        }
        let entry = entry_mut(&mut self.slots, tx).ok_or(TxError::UnknownTransaction)?;
        let bytes = Bytes::from(msg.to_bytes());
        match &mut entry.machine {
            Machine::ServerNonInvite(m) => {
                m.respond(tx, status, bytes, now, &self.cfg, &mut self.out)
            }
            Machine::ServerInvite(m) => m.respond(
                tx,
                status,
                msg.to_tag(),
                bytes,
                now,
                &self.cfg,
                &mut self.out,
            ),
            _ => Err(TxError::NotServer),
        }?;
        self.settle(tx);
        Ok(())
    }

    /// Cancels INVITE client transaction `tx` (§9.1): builds the CANCEL from
    /// the INVITE, sends it on a new non-INVITE client transaction and returns
    /// that one's id. Refused until a provisional response has arrived (the
    /// TU calls again when it sees one) and after a final response. Asking
    /// twice returns the CANCEL already sent. If no final response follows
    /// within 64·T1, the INVITE transaction ends with [`super::Timer::Cancel`].
    pub fn cancel(&mut self, tx: TxId, now: Instant) -> Result<TxId, TxError> {
        let entry = entry_mut(&mut self.slots, tx).ok_or(TxError::UnknownTransaction)?;
        let Machine::ClientInvite(invite) = &mut entry.machine else {
            return Err(TxError::NotInviteClient);
        };
        match invite.state {
            client_invite::State::Calling => return Err(TxError::NoProvisionalYet),
            client_invite::State::Proceeding => {}
            _ => return Err(TxError::Completed),
        }
        debug_assert!(invite.cancellable());
        let cancel = cancel_for(&invite.request).ok_or(TxError::Malformed)?;
        let peer = invite.peer;
        {
            let via = cancel.top_via().map_err(|_| TxError::Malformed)?;
            let branch = via.branch().ok_or(TxError::Malformed)?;
            client_key(&mut self.scratch, branch, &Method::Cancel);
        }
        let hash = self.clients.hash(&self.scratch);
        if let Some(existing) = self.clients.find(&self.slots, hash, &self.scratch) {
            return Ok(existing);
        }
        let Some(Entry {
            machine: Machine::ClientInvite(invite),
            ..
        }) = entry_mut(&mut self.slots, tx)
        else {
            return Err(TxError::UnknownTransaction);
        };
        invite.cancel_sent(now, &self.cfg);
        self.settle(tx);
        // Exempt from the cap: a CANCEL frees capacity.
        let id = self.vacant_id();
        let bytes = Bytes::from(cancel.to_bytes());
        let machine = Machine::ClientNonInvite(ClientNonInvite::start(
            id,
            peer,
            bytes,
            now,
            &self.cfg,
            &mut self.out,
        ));
        self.occupy(id, machine, hash, false, None, false);
        Ok(id)
    }

    /// Takes in a message from the transport.
    pub fn receive(&mut self, msg: Message, from: Peer, now: Instant) {
        if msg.is_request() {
            self.receive_request(msg, from, now);
        } else {
            self.receive_response(msg, now);
        }
    }

    fn receive_response(&mut self, msg: Message, now: Instant) {
        {
            let (Ok(via), Some(cseq)) = (msg.top_via(), msg.cseq()) else {
                self.out.stats.malformed += 1;
                return;
            };
            let Some(branch) = via.branch() else {
                self.out.stats.stray_responses += 1;
                return;
            };
            client_key(&mut self.scratch, branch, &cseq.method);
        }
        let hash = self.clients.hash(&self.scratch);
        let found = self.clients.find(&self.slots, hash, &self.scratch);
        let Some((id, entry)) = found.and_then(|id| Some((id, entry_mut(&mut self.slots, id)?)))
        else {
            self.out.stats.stray_responses += 1;
            return;
        };
        match &mut entry.machine {
            Machine::ClientInvite(m) => m.on_response(id, msg, now, &self.cfg, &mut self.out),
            Machine::ClientNonInvite(m) => m.on_response(id, msg, now, &self.cfg, &mut self.out),
            _ => self.out.stats.stray_responses += 1,
        }
        self.settle(id);
    }

    fn receive_request(&mut self, msg: Message, from: Peer, now: Instant) {
        let Some(method) = msg.method().cloned() else {
            return;
        };
        let is_ack = method == Method::Ack;
        // Key for this request's own transaction, and where answers go.
        let (peer, legacy) = {
            let Ok(via) = msg.top_via() else {
                self.out.stats.malformed += 1;
                return;
            };
            let peer = response_peer(&via, from);
            // One parameter lookup: `has_rfc3261_branch` would do a second.
            match via.branch() {
                Some(branch) if branch.starts_with("z9hG4bK") => {
                    server_key(&mut self.scratch, &via, branch, &method);
                    (peer, false)
                }
                _ => (peer, true),
            }
        };
        let found = if legacy {
            let Some(found) = self.find_legacy(&msg, &method, is_ack) else {
                self.out.stats.malformed += 1;
                return;
            };
            found
        } else {
            self.find_server(&msg, is_ack)
        };
        if let Some(id) = found {
            self.on_matched_request(id, msg, from, is_ack, now);
            return;
        }
        if is_ack {
            // The ACK of a 2xx has its own branch: it is the dialog's.
            self.out.event(Event::AckFor2xx { msg, from });
            return;
        }
        if method == Method::Cancel {
            self.receive_cancel(msg, peer, legacy, now);
            return;
        }
        let hash = self.servers.hash(&self.scratch);
        if self.live >= self.cfg.max_transactions {
            self.out.stats.overload_rejections += 1;
            let mut resp = layer_response(&msg, 503, Some(&new_tag()));
            resp.push_header(
                HeaderName::RetryAfter,
                self.cfg.retry_after_secs.to_string(),
            );
            self.send_stateless(&resp, peer);
            return;
        }
        let fingerprint = if self.cfg.detect_merged_requests && !has_to_tag(&msg) {
            merge_fingerprint(&self.hasher, &msg)
        } else {
            None
        };
        if let Some(fp) = fingerprint
            && self.merged.find(fp, |&(f, _)| f == fp).is_some()
        {
            // Same request by another path (§8.2.2.2): answer it on a
            // transaction of its own so its retransmissions are absorbed.
            self.out.stats.merged_requests += 1;
            let resp = layer_response(&msg, 482, Some(&new_tag()));
            let m = ServerMatch {
                hash,
                legacy,
                merge: None,
            };
            let id = self.new_server(&msg, &method, peer, m, true, now);
            let _ = self.respond(id, resp, now);
            return;
        }
        let m = ServerMatch {
            hash,
            legacy,
            merge: fingerprint,
        };
        let id = self.new_server(&msg, &method, peer, m, false, now);
        self.out.event(Event::NewRequest { tx: id, msg, from });
    }

    /// The server transaction whose key is in `scratch`. An ACK matched by
    /// RFC 2543 rules must carry the To tag of the response it acknowledges.
    fn find_server(&self, msg: &Message, is_ack: bool) -> Option<TxId> {
        let hash = self.servers.hash(&self.scratch);
        let id = self.servers.find(&self.slots, hash, &self.scratch)?;
        let entry = entry_ref(&self.slots, id)?;
        if !(entry.legacy && is_ack) {
            return Some(id);
        }
        match &entry.machine {
            Machine::ServerInvite(m) => {
                (m.to_tag.is_none() || m.to_tag.as_deref() == msg.to_tag()).then_some(id)
            }
            _ => None,
        }
    }

    /// RFC 2543 matching; leaves the request's own key in `scratch`. An ACK
    /// is looked up under the INVITE's To tag: none when the INVITE was
    /// outside a dialog, else the same as the ACK's. `None` when the request
    /// lacks the fields.
    fn find_legacy(
        &mut self,
        msg: &Message,
        method: &Method,
        is_ack: bool,
    ) -> Option<Option<TxId>> {
        let own_tag = msg.to_tag();
        if is_ack {
            if !rfc2543_key(&mut self.scratch, msg, method, None) {
                return None;
            }
            if let Some(id) = self.find_server(msg, true) {
                return Some(Some(id));
            }
        }
        if !rfc2543_key(&mut self.scratch, msg, method, own_tag) {
            return None;
        }
        Some(self.find_server(msg, is_ack))
    }

    fn on_matched_request(
        &mut self,
        id: TxId,
        msg: Message,
        from: Peer,
        is_ack: bool,
        now: Instant,
    ) {
        let Some(entry) = entry_mut(&mut self.slots, id) else {
            return;
        };
        match &mut entry.machine {
            Machine::ServerInvite(m) if is_ack => {
                let fate = m.on_ack(now, &self.cfg);
                if fate == AckFate::ToTu {
                    self.out.event(Event::AckFor2xx { msg, from });
                }
            }
            Machine::ServerInvite(m) => m.on_request(id, &mut self.out),
            Machine::ServerNonInvite(m) => m.on_request(id, &mut self.out),
            _ => {}
        }
        self.settle(id);
    }

    /// A CANCEL that is not a retransmission (§9.2): matched to the INVITE
    /// server transaction with the same branch and sent-by (or RFC 2543
    /// fields) and answered here, 200 or 481, on a transaction of its own.
    /// The CANCEL's own key is in `scratch`.
    fn receive_cancel(&mut self, msg: Message, peer: Peer, legacy: bool, now: Instant) {
        // Matching the INVITE reuses `scratch`; CANCELs are few enough to
        // allocate for keeping their own key meanwhile.
        let own = self.scratch.clone();
        let formed = if legacy {
            rfc2543_key(&mut self.scratch, &msg, &Method::Invite, msg.to_tag())
        } else {
            match msg.top_via() {
                Ok(via) => match via.branch() {
                    Some(branch) => {
                        server_key(&mut self.scratch, &via, branch, &Method::Invite);
                        true
                    }
                    None => false,
                },
                Err(_) => false,
            }
        };
        let invite = formed
            .then(|| self.find_server(&msg, false))
            .flatten()
            .and_then(|id| match &entry_ref(&self.slots, id)?.machine {
                Machine::ServerInvite(m) => Some((id, m.cancellable(), m.to_tag.clone())),
                _ => None,
            });
        if invite.is_none() && self.live >= self.cfg.max_transactions {
            self.out.stats.overload_rejections += 1;
            let mut resp = layer_response(&msg, 503, Some(&new_tag()));
            resp.push_header(
                HeaderName::RetryAfter,
                self.cfg.retry_after_secs.to_string(),
            );
            self.send_stateless(&resp, peer);
            return;
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(&own);
        let m = ServerMatch {
            hash: self.servers.hash(&self.scratch),
            legacy,
            merge: None,
        };
        let id = self.new_server(&msg, &Method::Cancel, peer, m, true, now);
        let Some((invite_id, cancellable, tag)) = invite else {
            self.out.stats.unmatched_cancels += 1;
            let resp = layer_response(&msg, 481, Some(&new_tag()));
            let _ = self.respond(id, resp, now);
            return;
        };
        // §9.2: the 200 to the CANCEL carries the To tag the INVITE's
        // responses carry, when there has been one.
        let tag = tag.map_or_else(new_tag, String::from);
        let resp = layer_response(&msg, 200, Some(&tag));
        let _ = self.respond(id, resp, now);
        if cancellable {
            self.out.event(Event::Cancelled {
                tx: invite_id,
                cancel: msg,
            });
        }
    }

    fn new_server(
        &mut self,
        msg: &Message,
        method: &Method,
        peer: Peer,
        m: ServerMatch,
        internal: bool,
        now: Instant,
    ) -> TxId {
        let id = self.vacant_id();
        let machine = if *method == Method::Invite {
            Machine::ServerInvite(Box::new(ServerInvite::new(
                peer,
                msg.clone(),
                now,
                &self.cfg,
            )))
        } else {
            Machine::ServerNonInvite(ServerNonInvite::new(peer))
        };
        self.occupy(id, machine, m.hash, m.legacy, m.merge, internal);
        id
    }

    /// An id for a slot about to be filled by [`Self::occupy`].
    fn vacant_id(&mut self) -> TxId {
        let index = match self.free.last() {
            Some(&i) => i,
            None => {
                self.slots.push(Slot::default());
                // More than 2^32 slots would need 2^32 live transactions.
                (self.slots.len() - 1) as u32
            }
        };
        let generation = self.slots[index as usize].generation;
        TxId(u64::from(generation) << 32 | u64::from(index))
    }

    /// Fills the slot of `id` and indexes it under the key in `scratch`,
    /// whose hash is `hash`.
    fn occupy(
        &mut self,
        id: TxId,
        machine: Machine,
        hash: u64,
        legacy: bool,
        merge: Option<u64>,
        internal: bool,
    ) {
        let index = slot_index(id);
        if self.free.last().is_some_and(|&i| i as usize == index) {
            self.free.pop();
        }
        self.out.stats.created[machine.kind() as usize] += 1;
        self.live += 1;
        let is_client = machine.is_client();
        let slot = &mut self.slots[index];
        slot.key.clear();
        slot.key.extend_from_slice(&self.scratch);
        slot.key_hash = hash;
        slot.entry = Some(Entry {
            machine,
            legacy,
            merge,
            scheduled: None,
            internal,
        });
        if is_client {
            self.clients.insert(&self.slots, id);
        } else {
            self.servers.insert(&self.slots, id);
        }
        if let Some(fp) = merge {
            self.merged.insert_unique(fp, (fp, id), |&(fp, _)| fp);
        }
        self.settle(id);
    }

    /// After a machine ran: remove it if it ended, else make sure the timer
    /// queue will wake it for its earliest timer.
    fn settle(&mut self, id: TxId) {
        let Some(entry) = entry_mut(&mut self.slots, id) else {
            return;
        };
        if let Some(outcome) = entry.machine.outcome() {
            self.remove(id, outcome);
            return;
        }
        if let Some(next) = entry.machine.next_deadline() {
            // A moved deadline gets a new entry at once, the old one going
            // stale: waking at the old one to reschedule would touch the
            // transaction again (a cache miss by then, for a non-INVITE
            // client whose Timer E gives way to K).
            if entry.scheduled != Some(next) {
                entry.scheduled = Some(next);
                self.timers.push(next, id);
            }
        }
    }

    fn remove(&mut self, id: TxId, outcome: Outcome) {
        let index = slot_index(id);
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        let Some(entry) = slot.entry.take() else {
            return;
        };
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(index as u32);
        self.live -= 1;
        let index_of = if entry.machine.is_client() {
            &mut self.clients
        } else {
            &mut self.servers
        };
        index_of.remove(slot.key_hash, id);
        if let Some(fp) = entry.merge
            && let Ok(e) = self.merged.find_entry(fp, |&(_, other)| other == id)
        {
            e.remove();
        }
        let kind = entry.machine.kind() as usize;
        let stats = &mut self.out.stats;
        match outcome {
            Outcome::Completed => stats.completed[kind] += 1,
            Outcome::TimedOut => stats.timed_out[kind] += 1,
            Outcome::TransportError => stats.transport_errors[kind] += 1,
        }
        if !entry.internal {
            self.out.event(Event::Terminated { tx: id });
        }
        let slots = &self.slots;
        self.timers.compact(self.live, |at, id| {
            entry_ref(slots, id).is_some_and(|e| e.scheduled == Some(at))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uri::Uri;

    #[test]
    fn to_tag_precheck_agrees_with_parsing() {
        for to in [
            "<sip:b@x>",
            "<sip:b@x>;tag=1",
            "<sip:b@x>;TAG=1",
            "\"tag\" <sip:tag@x>",
            "sip:b@x;Tag=2",
            "<sip:b@x;tag=3>",
            "<sip:b@x>;tag",
            "<sip:b@x;transport=tcp>",
            "",
        ] {
            let mut m = Message::request(Method::Options, Uri::parse("sip:b@x").expect("uri"));
            m.push_header(HeaderName::To, to);
            assert_eq!(has_to_tag(&m), m.to_tag().is_some(), "{to}");
        }
        let m = Message::request(Method::Options, Uri::parse("sip:b@x").expect("uri"));
        assert!(!has_to_tag(&m));
    }
}
