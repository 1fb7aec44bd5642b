//! The INVITE server transaction (RFC 3261 §17.2.1 as amended by RFC 6026,
//! Figure 7 of RFC 6026).
//!
//! Proceeding → (2xx from TU) Accepted → (Timer L) Terminated, or
//! Proceeding → (300–699 from TU) Completed → (ACK) Confirmed → (Timer I)
//! Terminated. In Completed, Timer G retransmits the final response over
//! unreliable transports (doubling up to T2) and Timer H gives up on the ACK.
//! A 100 Trying goes out if the TU has said nothing within 200 ms.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::message::Message;

use super::build::layer_response;
use super::{Config, Event, Outcome, Peer, Sink, Timer, TxError, TxId, earliest, expired};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
    Terminated(Outcome),
}

#[derive(Debug)]
pub(crate) struct ServerInvite {
    pub(crate) state: State,
    peer: Peer,
    /// The INVITE, for the 100 Trying.
    request: Message,
    last: Option<Bytes>,
    /// The To tag of the responses sent so far: an RFC 2543 ACK is matched
    /// by it, and the 200 to a CANCEL reuses it (§9.2).
    pub(crate) to_tag: Option<Box<str>>,
    trying: Option<Instant>,
    g: Option<Instant>,
    g_interval: Duration,
    h: Option<Instant>,
    i: Option<Instant>,
    l: Option<Instant>,
}

/// What became of an ACK that matched this transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AckFate {
    Absorbed,
    /// The ACK of a 2xx: it belongs to the TU.
    ToTu,
}

impl ServerInvite {
    pub(crate) fn new(peer: Peer, request: Message, now: Instant, cfg: &Config) -> ServerInvite {
        ServerInvite {
            state: State::Proceeding,
            peer,
            request,
            last: None,
            to_tag: None,
            trying: Some(now + cfg.trying_delay),
            g: None,
            g_interval: cfg.t1,
            h: None,
            i: None,
            l: None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn respond(
        &mut self,
        id: TxId,
        status: u16,
        to_tag: Option<&str>,
        bytes: Bytes,
        now: Instant,
        cfg: &Config,
        out: &mut Sink,
    ) -> Result<(), TxError> {
        match self.state {
            State::Proceeding => {}
            // RFC 6026: the TU retransmits its 2xx through the transaction.
            State::Accepted if (200..300).contains(&status) => {
                out.send(id, self.peer, &bytes);
                return Ok(());
            }
            _ => return Err(TxError::AlreadyFinal),
        }
        out.send(id, self.peer, &bytes);
        self.last = Some(bytes);
        self.trying = None;
        if let Some(tag) = to_tag {
            self.to_tag = Some(tag.into());
        }
        match status {
            100..=199 => {}
            200..=299 => {
                self.state = State::Accepted;
                self.l = Some(now + cfg.t64());
            }
            _ => {
                self.state = State::Completed;
                if !self.peer.transport.is_reliable() {
                    self.g = Some(now + cfg.t1);
                }
                self.h = Some(now + cfg.t64());
            }
        }
        Ok(())
    }

    /// The INVITE arrived again.
    pub(crate) fn on_request(&mut self, id: TxId, out: &mut Sink) {
        out.stats.absorbed_requests += 1;
        match (self.state, &self.last) {
            (State::Proceeding | State::Completed, Some(last)) => {
                out.resend(id, self.peer, last);
            }
            // The client is retransmitting and has heard nothing: say Trying
            // now rather than at the 200 ms mark.
            (State::Proceeding, None) => self.send_trying(id, out),
            _ => {}
        }
    }

    pub(crate) fn on_ack(&mut self, now: Instant, cfg: &Config) -> AckFate {
        match self.state {
            State::Completed => {
                self.g = None;
                self.h = None;
                if self.peer.transport.is_reliable() {
                    self.state = State::Terminated(Outcome::Completed);
                } else {
                    self.state = State::Confirmed;
                    self.i = Some(now + cfg.t4);
                }
                AckFate::Absorbed
            }
            State::Accepted => AckFate::ToTu,
            _ => AckFate::Absorbed,
        }
    }

    /// A CANCEL only affects a transaction still waiting for its final
    /// response (§9.2).
    pub(crate) fn cancellable(&self) -> bool {
        self.state == State::Proceeding
    }

    fn send_trying(&mut self, id: TxId, out: &mut Sink) {
        self.trying = None;
        let trying = Bytes::from(layer_response(&self.request, 100, None).to_bytes());
        out.send(id, self.peer, &trying);
        self.last = Some(trying);
    }

    pub(crate) fn on_timer(&mut self, id: TxId, now: Instant, cfg: &Config, out: &mut Sink) {
        if expired(&mut self.trying, now) && self.state == State::Proceeding && self.last.is_none()
        {
            self.send_trying(id, out);
        }
        if expired(&mut self.h, now) {
            self.g = None;
            self.state = State::Terminated(Outcome::TimedOut);
            out.event(Event::Timeout {
                tx: id,
                timer: Timer::H,
                response: None,
            });
            return;
        }
        if expired(&mut self.g, now) {
            if let Some(last) = &self.last {
                out.resend(id, self.peer, last);
            }
            self.g_interval = (self.g_interval * 2).min(cfg.t2);
            self.g = Some(now + self.g_interval);
        }
        if expired(&mut self.i, now) || expired(&mut self.l, now) {
            self.state = State::Terminated(Outcome::Completed);
        }
    }

    pub(crate) fn on_transport_error(&mut self, id: TxId, out: &mut Sink) {
        // Without a final response delivered (or with the 2xx the TU is
        // still retransmitting) the TU must know.
        if matches!(self.state, State::Proceeding | State::Accepted) {
            out.event(Event::TransportError { tx: id });
        }
        self.state = State::Terminated(Outcome::TransportError);
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        earliest(&[self.trying, self.g, self.h, self.i, self.l])
    }

    pub(crate) fn outcome(&self) -> Option<Outcome> {
        match self.state {
            State::Terminated(o) => Some(o),
            _ => None,
        }
    }
}
