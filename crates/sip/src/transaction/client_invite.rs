//! The INVITE client transaction (RFC 3261 §17.1.1 as amended by RFC 6026,
//! Figure 5 of RFC 6026).
//!
//! Calling → (1xx) Proceeding → (300–699: ACK sent here) Completed →
//! (Timer D) Terminated; a 2xx from Calling or Proceeding leads to Accepted,
//! where further 2xx go to the TU (which ACKs them) until Timer M.
//! Timer A retransmits over unreliable transports, doubling without cap;
//! Timer B (64·T1) gives up while nothing at all has arrived.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::message::Message;

use super::build::ack_for_non_2xx;
use super::{Config, Event, Outcome, Peer, Sink, Timer, TxId, earliest, expired};

/// Timer D for unreliable transports: "at least 32 seconds" (§17.1.1.2).
const TIMER_D: Duration = Duration::from_secs(32);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Calling,
    Proceeding,
    Completed,
    Accepted,
    Terminated(Outcome),
}

#[derive(Debug)]
pub(crate) struct ClientInvite {
    pub(crate) state: State,
    pub(crate) peer: Peer,
    /// The INVITE as sent: the ACK and the CANCEL are built from it.
    pub(crate) request: Message,
    bytes: Bytes,
    ack: Option<Bytes>,
    a: Option<Instant>,
    a_interval: Duration,
    b: Option<Instant>,
    d: Option<Instant>,
    m: Option<Instant>,
    /// §9.1: a final response must follow a CANCEL within 64·T1.
    cancel_guard: Option<Instant>,
}

impl ClientInvite {
    pub(crate) fn start(
        id: TxId,
        peer: Peer,
        request: Message,
        bytes: Bytes,
        now: Instant,
        cfg: &Config,
        out: &mut Sink,
    ) -> ClientInvite {
        out.send(id, peer, &bytes);
        let reliable = peer.transport.is_reliable();
        ClientInvite {
            state: State::Calling,
            peer,
            request,
            bytes,
            ack: None,
            a: (!reliable).then(|| now + cfg.t1),
            a_interval: cfg.t1,
            b: Some(now + cfg.t64()),
            d: None,
            m: None,
            cancel_guard: None,
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
        let live = matches!(self.state, State::Calling | State::Proceeding);
        match status {
            100..=199 if live => {
                self.state = State::Proceeding;
                self.a = None;
                self.b = None;
                out.event(Event::Response { tx: id, msg });
            }
            200..=299 if live => {
                self.stop_timers();
                self.state = State::Accepted;
                self.m = Some(now + cfg.t64());
                out.event(Event::Response { tx: id, msg });
            }
            // RFC 6026: retransmitted (or forked) 2xx go to the TU, which
            // sends their ACKs.
            200..=299 if self.state == State::Accepted => {
                out.event(Event::Response { tx: id, msg });
            }
            300..=699 if live => {
                self.stop_timers();
                if let Some(ack) = ack_for_non_2xx(&self.request, &msg) {
                    let ack = Bytes::from(ack.to_bytes());
                    out.send(id, self.peer, &ack);
                    self.ack = Some(ack);
                }
                out.event(Event::Response { tx: id, msg });
                if self.peer.transport.is_reliable() {
                    self.state = State::Terminated(Outcome::Completed);
                } else {
                    self.state = State::Completed;
                    self.d = Some(now + TIMER_D);
                }
            }
            // The final response again: our ACK was lost.
            300..=699 if self.state == State::Completed => {
                if let Some(ack) = &self.ack {
                    out.resend(id, self.peer, ack);
                }
            }
            _ => {}
        }
    }

    fn stop_timers(&mut self) {
        self.a = None;
        self.b = None;
        self.cancel_guard = None;
    }

    /// Whether a CANCEL may be sent now (§9.1: only once a provisional came).
    pub(crate) fn cancellable(&self) -> bool {
        self.state == State::Proceeding
    }

    pub(crate) fn cancel_sent(&mut self, now: Instant, cfg: &Config) {
        if self.cancel_guard.is_none() {
            self.cancel_guard = Some(now + cfg.t64());
        }
    }

    pub(crate) fn on_timer(&mut self, id: TxId, now: Instant, _cfg: &Config, out: &mut Sink) {
        let b = expired(&mut self.b, now);
        let guard = expired(&mut self.cancel_guard, now);
        if b || guard {
            self.stop_timers();
            self.state = State::Terminated(Outcome::TimedOut);
            out.event(Event::Timeout {
                tx: id,
                timer: if b { Timer::B } else { Timer::Cancel },
                response: Some(Message::response_to(&self.request, 408, None)),
            });
            return;
        }
        if expired(&mut self.a, now) {
            out.resend(id, self.peer, &self.bytes);
            self.a_interval *= 2;
            self.a = Some(now + self.a_interval);
        }
        if expired(&mut self.d, now) || expired(&mut self.m, now) {
            self.state = State::Terminated(Outcome::Completed);
        }
    }

    pub(crate) fn on_transport_error(&mut self, id: TxId, out: &mut Sink) {
        if matches!(self.state, State::Calling | State::Proceeding) {
            out.event(Event::TransportError { tx: id });
        }
        self.state = State::Terminated(Outcome::TransportError);
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        earliest(&[self.a, self.b, self.d, self.m, self.cancel_guard])
    }

    pub(crate) fn outcome(&self) -> Option<Outcome> {
        match self.state {
            State::Terminated(o) => Some(o),
            _ => None,
        }
    }
}
