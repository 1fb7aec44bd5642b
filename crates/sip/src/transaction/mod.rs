//! Transactions (RFC 3261 §17, with the RFC 6026 Accepted states) as sans-IO
//! state machines, and the [`TransactionLayer`] that owns and matches them.
//!
//! The layer never touches a socket or a clock. A driver feeds it:
//!
//! - [`TransactionLayer::receive`] for every parsed message, with the [`Peer`]
//!   it came from (the transport should already have stamped `received` /
//!   `rport` into the top Via, RFC 3261 §18.2.1);
//! - [`TransactionLayer::handle_timeouts`] when [`TransactionLayer::next_deadline`]
//!   has passed;
//! - [`TransactionLayer::transport_error`] when sending a [`Transmit`] that
//!   named a transaction failed;
//!
//! and drains [`TransactionLayer::poll_transmit`] (bytes to send) and
//! [`TransactionLayer::poll_event`] (what the transaction user must handle)
//! after each call. The transaction user (a UA core or proxy core) acts through
//! [`TransactionLayer::send_request`], [`TransactionLayer::respond`],
//! [`TransactionLayer::cancel`] and [`TransactionLayer::send_stateless`].
//!
//! Every time is an [`Instant`] passed in by the caller.
//!
//! What the layer does on its own, and what it leaves to the TU:
//!
//! - Requests are matched to server transactions by branch, sent-by and
//!   method (an ACK under INVITE), or, for branches without the magic cookie,
//!   by the RFC 2543 fields; a retransmission gets the last response again.
//!   Responses are matched to client transactions by branch and CSeq method;
//!   the rest are stray, counted and dropped.
//! - The INVITE client transaction ACKs 300–699 itself. ACKs for 2xx are the
//!   TU's: it receives each 2xx (retransmissions too, in the Accepted state)
//!   and sends the ACK with [`TransactionLayer::send_stateless`]; an ACK that
//!   matches no transaction reaches it as [`Event::AckFor2xx`].
//! - A CANCEL is matched to the INVITE server transaction it names (§9.2)
//!   and answered here: 200 plus [`Event::Cancelled`] when it matches, 481
//!   when it does not. A CANCEL naming a non-INVITE gets 481 too.
//! - A request without To tag whose From tag, Call-ID and CSeq equal those of
//!   a live server transaction but that does not match it gets 482 (§8.2.2.2;
//!   see [`Config::detect_merged_requests`]).
//! - Above [`Config::max_transactions`] new requests get a stateless 503 with
//!   Retry-After, and [`TransactionLayer::send_request`] refuses.
//! - A server transaction lives until the TU answers it: the TU must answer
//!   every request it is given (an INVITE server transaction has no timer of
//!   its own in Proceeding, nor has an INVITE client transaction once a
//!   provisional has come, except after a CANCEL).

mod build;
mod client_invite;
mod client_non_invite;
mod keys;
mod layer;
mod server_invite;
mod server_non_invite;
mod timers;

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::message::Message;

pub use layer::TransactionLayer;

/// The transport a message travels on. Reliable transports skip
/// retransmissions and use zero for the wait timers D, I, J and K.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    Udp,
    Tcp,
    Tls,
    Sctp,
    Ws,
    Wss,
}

impl TransportKind {
    pub fn is_reliable(self) -> bool {
        !matches!(self, TransportKind::Udp)
    }

    /// The transport token written in a Via.
    pub fn via_token(self) -> &'static str {
        match self {
            TransportKind::Udp => "UDP",
            TransportKind::Tcp => "TCP",
            TransportKind::Tls => "TLS",
            TransportKind::Sctp => "SCTP",
            TransportKind::Ws => "WS",
            TransportKind::Wss => "WSS",
        }
    }
}

/// A connection (or other flow) the transport can send back on, so responses
/// to a request received over TCP/TLS/WS leave on the same connection
/// (RFC 3261 §18.2.2). The number is the transport's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowId(pub u64);

/// The far end of a message: where it came from or where it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    pub transport: TransportKind,
    pub addr: SocketAddr,
    pub flow: Option<FlowId>,
}

impl Peer {
    pub fn new(transport: TransportKind, addr: SocketAddr) -> Peer {
        Peer {
            transport,
            addr,
            flow: None,
        }
    }
}

/// A transaction's handle. Never reused while the layer lives (a slot index
/// plus a generation), so a stale id simply stops matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxId(pub(crate) u64);

impl fmt::Display for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tx{}.{}", self.0 & 0xffff_ffff, self.0 >> 32)
    }
}

/// The four transaction machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxKind {
    ClientInvite = 0,
    ClientNonInvite = 1,
    ServerInvite = 2,
    ServerNonInvite = 3,
}

/// The RFC 3261 timer whose expiry ended a transaction in failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// INVITE client: no response at all within 64·T1.
    B,
    /// Non-INVITE client: no final response within 64·T1.
    F,
    /// INVITE server: no ACK for a non-2xx final response within 64·T1.
    H,
    /// INVITE client: no final response within 64·T1 of sending a CANCEL
    /// (RFC 3261 §9.1).
    Cancel,
}

/// Bytes to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub to: Peer,
    pub bytes: Bytes,
    /// The transaction sending it, to pass to
    /// [`TransactionLayer::transport_error`] if the send fails; `None` for
    /// stateless responses (481 to a stray CANCEL, 503 when overloaded).
    pub tx: Option<TxId>,
}

/// Something the transaction user must handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A request that created a server transaction; answer it with
    /// [`TransactionLayer::respond`].
    NewRequest { tx: TxId, msg: Message, from: Peer },
    /// A response for a client transaction: every provisional and final
    /// response, and, in the Accepted state, each further 2xx (retransmissions
    /// and forks: the TU acknowledges them, RFC 6026).
    Response { tx: TxId, msg: Message },
    /// The transaction timed out. For a client transaction `response` holds a
    /// locally generated 408 so the TU can treat it like any final response
    /// (RFC 3261 §8.1.3.1); for an INVITE server transaction (Timer H) it is
    /// `None`: the ACK never came.
    Timeout {
        tx: TxId,
        timer: Timer,
        response: Option<Message>,
    },
    /// Sending failed ([`TransactionLayer::transport_error`]); the transaction
    /// is over. A client TU treats this as a 503 (RFC 3261 §8.1.3.1).
    TransportError { tx: TxId },
    /// A CANCEL matched this INVITE server transaction before it sent a final
    /// response. The layer has answered the CANCEL with 200; the TU should
    /// now answer the INVITE, normally with 487.
    Cancelled { tx: TxId, cancel: Message },
    /// An ACK that matched no transaction in need of it: the ACK for a 2xx,
    /// which belongs to the dialog, not to the INVITE transaction.
    AckFor2xx { msg: Message, from: Peer },
    /// The transaction is gone; its id will not be seen again.
    Terminated { tx: TxId },
}

/// Why a TU action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("no such transaction")]
    UnknownTransaction,
    #[error("not a server transaction")]
    NotServer,
    #[error("not an INVITE client transaction")]
    NotInviteClient,
    #[error("the transaction has already sent a final response")]
    AlreadyFinal,
    #[error("a response needs a status of 100 to 699")]
    BadStatus,
    #[error("the message is not a request, or an ACK (send that statelessly)")]
    NotARequest,
    #[error("the request lacks a usable top Via or CSeq")]
    Malformed,
    #[error("no provisional response yet: a CANCEL must wait for one (RFC 3261 §9.1)")]
    NoProvisionalYet,
    #[error("the INVITE has already received a final response")]
    Completed,
    #[error("a client transaction with this branch and method exists")]
    BranchInUse,
    #[error("the transaction table is full")]
    Overloaded,
}

/// Timer bases and limits.
#[derive(Debug, Clone)]
pub struct Config {
    /// RTT estimate (default 500 ms).
    pub t1: Duration,
    /// Maximum retransmission interval for non-INVITE requests and INVITE
    /// responses (default 4 s).
    pub t2: Duration,
    /// Maximum time a message stays in the network (default 5 s).
    pub t4: Duration,
    /// An INVITE server transaction sends 100 Trying when the TU has not
    /// responded within this (RFC 3261 §17.2.1: 200 ms).
    pub trying_delay: Duration,
    /// Live transactions allowed; requests that would create more are
    /// answered 503 statelessly and the TU's requests are refused.
    pub max_transactions: usize,
    /// Retry-After, in seconds, on those 503s.
    pub retry_after_secs: u32,
    /// Reject merged requests with 482 (RFC 3261 §8.2.2.2). A UAS core wants
    /// this; a proxy core does not.
    pub detect_merged_requests: bool,
    /// `host[:port]` for the Via that [`TransactionLayer::send_request`] adds
    /// when the TU wrote none.
    pub sent_by: String,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            trying_delay: Duration::from_millis(200),
            max_transactions: 200_000,
            retry_after_secs: 5,
            detect_merged_requests: true,
            sent_by: "localhost".into(),
        }
    }
}

impl Config {
    /// Timers B, F, H, J (unreliable), L and M: 64·T1.
    pub(crate) fn t64(&self) -> Duration {
        self.t1 * 64
    }
}

/// Counters since the layer was created. Arrays are indexed by [`TxKind`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub created: [u64; 4],
    /// Ended normally (a final response went or came through).
    pub completed: [u64; 4],
    pub timed_out: [u64; 4],
    pub transport_errors: [u64; 4],
    /// Requests and responses re-sent by timers or in answer to a
    /// retransmitted message (ACKs for non-2xx included).
    pub retransmissions: u64,
    /// Retransmitted requests absorbed by a server transaction.
    pub absorbed_requests: u64,
    /// Responses that matched no client transaction, dropped.
    pub stray_responses: u64,
    /// Requests answered 482 as merged.
    pub merged_requests: u64,
    /// Requests answered 503 because the table was full.
    pub overload_rejections: u64,
    /// CANCELs that matched no INVITE and got a 481.
    pub unmatched_cancels: u64,
    /// Messages dropped because the fields needed to match them are missing.
    pub malformed: u64,
}

impl Stats {
    pub fn created(&self, kind: TxKind) -> u64 {
        self.created[kind as usize]
    }
    pub fn completed(&self, kind: TxKind) -> u64 {
        self.completed[kind as usize]
    }
    pub fn timed_out(&self, kind: TxKind) -> u64 {
        self.timed_out[kind as usize]
    }
}

/// How a machine ended, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Completed,
    TimedOut,
    TransportError,
}

/// Where the machines put their output; owned by the layer.
#[derive(Debug, Default)]
pub(crate) struct Sink {
    pub(crate) transmits: VecDeque<Transmit>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) stats: Stats,
}

impl Sink {
    pub(crate) fn send(&mut self, tx: TxId, to: Peer, bytes: &Bytes) {
        self.transmits.push_back(Transmit {
            to,
            bytes: bytes.clone(),
            tx: Some(tx),
        });
    }

    pub(crate) fn resend(&mut self, tx: TxId, to: Peer, bytes: &Bytes) {
        self.stats.retransmissions += 1;
        self.send(tx, to, bytes);
    }

    pub(crate) fn event(&mut self, ev: Event) {
        self.events.push_back(ev);
    }
}

/// The earliest of a machine's armed timers.
pub(crate) fn earliest(timers: &[Option<Instant>]) -> Option<Instant> {
    timers.iter().flatten().min().copied()
}

/// Whether an armed timer has expired, disarming it if so.
pub(crate) fn expired(timer: &mut Option<Instant>, now: Instant) -> bool {
    match *timer {
        Some(at) if at <= now => {
            *timer = None;
            true
        }
        _ => false,
    }
}
