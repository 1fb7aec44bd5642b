//! The non-INVITE client transaction (RFC 3261 §17.1.2, Figure 6).
//!
//! Trying → (1xx) Proceeding → (final) Completed → (Timer K) Terminated.
//! Timer E retransmits over unreliable transports, doubling up to T2 (and at
//! T2 once a provisional came); Timer F (64·T1) gives up.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::message::Message;
use crate::parse::parse_datagram;

use super::{Config, Event, Outcome, Peer, Sink, Timer, TxId, earliest, expired};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Trying,
    Proceeding,
    Completed,
    Terminated(Outcome),
}

#[derive(Debug)]
pub(crate) struct ClientNonInvite {
    pub(crate) state: State,
    peer: Peer,
    /// The request as sent, for retransmission (and to build a 408).
    request: Bytes,
    e: Option<Instant>,
    e_interval: Duration,
    f: Option<Instant>,
    k: Option<Instant>,
}

impl ClientNonInvite {
    /// Sends the request and arms E (unreliable only) and F.
    pub(crate) fn start(
        id: TxId,
        peer: Peer,
        request: Bytes,
        now: Instant,
        cfg: &Config,
        out: &mut Sink,
    ) -> ClientNonInvite {
        out.send(id, peer, &request);
        let reliable = peer.transport.is_reliable();
        ClientNonInvite {
            state: State::Trying,
            peer,
            request,
            e: (!reliable).then(|| now + cfg.t1),
            e_interval: cfg.t1,
            f: Some(now + cfg.t64()),
            k: None,
        }
    }

    pub(crate) fn on_response(
        &mut self,
        id: TxId,
        msg: Message,
        now: Instant,
        cfg: &Config,
        out: &mut Sink,
    ) {
        let status = msg.status().unwrap_or(0);
        match self.state {
            State::Trying | State::Proceeding if status < 200 => {
                self.state = State::Proceeding;
                out.event(Event::Response { tx: id, msg });
            }
            State::Trying | State::Proceeding => {
                out.event(Event::Response { tx: id, msg });
                self.e = None;
                self.f = None;
                if self.peer.transport.is_reliable() {
                    self.state = State::Terminated(Outcome::Completed);
                } else {
                    // Timer K absorbs retransmitted finals.
                    self.state = State::Completed;
                    self.k = Some(now + cfg.t4);
                }
            }
            // Retransmissions of the final response are absorbed.
            State::Completed | State::Terminated(_) => {}
        }
    }

    pub(crate) fn on_timer(&mut self, id: TxId, now: Instant, cfg: &Config, out: &mut Sink) {
        if expired(&mut self.f, now) {
            self.e = None;
            self.state = State::Terminated(Outcome::TimedOut);
            let response = parse_datagram(self.request.clone())
                .ok()
                .map(|req| Message::response_to(&req, 408, None));
            out.event(Event::Timeout {
                tx: id,
                timer: Timer::F,
                response,
            });
            return;
        }
        if expired(&mut self.e, now) {
            out.resend(id, self.peer, &self.request);
            self.e_interval = match self.state {
                State::Proceeding => cfg.t2,
                _ => (self.e_interval * 2).min(cfg.t2),
            };
            self.e = Some(now + self.e_interval);
        }
        if expired(&mut self.k, now) {
            self.state = State::Terminated(Outcome::Completed);
        }
    }

    pub(crate) fn on_transport_error(&mut self, id: TxId, out: &mut Sink) {
        if matches!(self.state, State::Trying | State::Proceeding) {
            out.event(Event::TransportError { tx: id });
        }
        self.state = State::Terminated(Outcome::TransportError);
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        earliest(&[self.e, self.f, self.k])
    }

    pub(crate) fn outcome(&self) -> Option<Outcome> {
        match self.state {
            State::Terminated(o) => Some(o),
            _ => None,
        }
    }
}
