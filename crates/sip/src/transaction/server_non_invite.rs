//! The non-INVITE server transaction (RFC 3261 §17.2.2, Figure 8).
//!
//! Trying → (1xx from TU) Proceeding → (final from TU) Completed →
//! (Timer J: 64·T1 unreliable, zero reliable) Terminated. Retransmitted
//! requests are answered with the last response, or absorbed in Trying.

use std::time::Instant;

use bytes::Bytes;

use super::{Config, Event, Outcome, Peer, Sink, TxError, TxId, expired};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Trying,
    Proceeding,
    Completed,
    Terminated(Outcome),
}

#[derive(Debug)]
pub(crate) struct ServerNonInvite {
    pub(crate) state: State,
    /// Where responses go (§18.2.2).
    peer: Peer,
    last: Option<Bytes>,
    j: Option<Instant>,
}

impl ServerNonInvite {
    pub(crate) fn new(peer: Peer) -> ServerNonInvite {
        ServerNonInvite {
            state: State::Trying,
            peer,
            last: None,
            j: None,
        }
    }

    /// Sends a response from the TU (already serialized).
    pub(crate) fn respond(
        &mut self,
        id: TxId,
        status: u16,
        bytes: Bytes,
        now: Instant,
        cfg: &Config,
        out: &mut Sink,
    ) -> Result<(), TxError> {
        if !matches!(self.state, State::Trying | State::Proceeding) {
            return Err(TxError::AlreadyFinal);
        }
        out.send(id, self.peer, &bytes);
        self.last = Some(bytes);
        if status < 200 {
            self.state = State::Proceeding;
        } else if self.peer.transport.is_reliable() {
            self.state = State::Terminated(Outcome::Completed);
        } else {
            self.state = State::Completed;
            self.j = Some(now + cfg.t64());
        }
        Ok(())
    }

    /// The request arrived again.
    pub(crate) fn on_request(&mut self, id: TxId, out: &mut Sink) {
        out.stats.absorbed_requests += 1;
        if let (State::Proceeding | State::Completed, Some(last)) = (self.state, &self.last) {
            out.resend(id, self.peer, last);
        }
    }

    pub(crate) fn on_timer(&mut self, now: Instant) {
        if expired(&mut self.j, now) {
            self.state = State::Terminated(Outcome::Completed);
        }
    }

    pub(crate) fn on_transport_error(&mut self, id: TxId, out: &mut Sink) {
        if self.state != State::Completed {
            out.event(Event::TransportError { tx: id });
        }
        self.state = State::Terminated(Outcome::TransportError);
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.j
    }

    pub(crate) fn outcome(&self) -> Option<Outcome> {
        match self.state {
            State::Terminated(o) => Some(o),
            _ => None,
        }
    }
}
