//! Two transaction layers wired back to back in memory, with a fake clock.
//! Every message crosses as bytes and is parsed on the other side.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sip::header::HeaderName;
use sip::ids::{new_call_id, new_tag};
use sip::transaction::{Config, Event, Peer, TransactionLayer, TransportKind, TxId};
use sip::{Message, Method, Uri, parse_datagram};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    ToUas,
    ToUac,
}

/// One message on the wire.
#[derive(Debug, Clone)]
pub struct Sent {
    pub at: Duration,
    pub dir: Dir,
    pub msg: Message,
}

impl Sent {
    /// "INVITE" for requests, "486" for responses.
    pub fn label(&self) -> String {
        match self.msg.status() {
            Some(code) => code.to_string(),
            None => self.msg.method().map(|m| m.to_string()).unwrap_or_default(),
        }
    }
}

type DropRule = Box<dyn FnMut(Dir, &Message) -> bool>;

pub struct Net {
    pub uac: TransactionLayer,
    pub uas: TransactionLayer,
    pub t0: Instant,
    pub now: Instant,
    pub transport: TransportKind,
    pub uac_addr: SocketAddr,
    pub uas_addr: SocketAddr,
    pub uac_events: Vec<Event>,
    pub uas_events: Vec<Event>,
    pub wire: Vec<Sent>,
    /// Returns true to lose a message.
    pub drop: DropRule,
}

pub fn uac_config() -> Config {
    Config {
        sent_by: "127.0.0.1:5060".into(),
        ..Config::default()
    }
}

impl Net {
    pub fn new(transport: TransportKind) -> Net {
        Net::with_configs(transport, uac_config(), Config::default())
    }

    pub fn with_configs(transport: TransportKind, uac: Config, uas: Config) -> Net {
        let t0 = Instant::now();
        Net {
            uac: TransactionLayer::new(uac),
            uas: TransactionLayer::new(uas),
            t0,
            now: t0,
            transport,
            uac_addr: "127.0.0.1:5060".parse().expect("addr"),
            uas_addr: "127.0.0.2:5060".parse().expect("addr"),
            uac_events: Vec::new(),
            uas_events: Vec::new(),
            wire: Vec::new(),
            drop: Box::new(|_, _| false),
        }
    }

    pub fn uas_peer(&self) -> Peer {
        Peer::new(self.transport, self.uas_addr)
    }

    pub fn uac_peer(&self) -> Peer {
        Peer::new(self.transport, self.uac_addr)
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    /// The UAC TU sends a request.
    pub fn send(&mut self, msg: Message) -> TxId {
        let tx = self
            .uac
            .send_request(msg, self.uas_peer(), self.now)
            .expect("send_request");
        self.deliver();
        tx
    }

    /// The UAS TU answers a server transaction.
    pub fn respond(&mut self, tx: TxId, msg: Message) {
        self.uas.respond(tx, msg, self.now).expect("respond");
        self.deliver();
    }

    /// Moves every queued message across until both sides are quiet.
    pub fn deliver(&mut self) {
        loop {
            let mut moved = false;
            while let Some(t) = self.uac.poll_transmit() {
                moved = true;
                assert_eq!(t.to.addr, self.uas_addr, "UAC sent elsewhere");
                let msg = parse_datagram(t.bytes.clone()).expect("UAC sent unparseable bytes");
                self.wire.push(Sent {
                    at: self.elapsed(),
                    dir: Dir::ToUas,
                    msg: msg.clone(),
                });
                if !(self.drop)(Dir::ToUas, &msg) {
                    self.uas.receive(msg, self.uac_peer(), self.now);
                }
            }
            while let Some(t) = self.uas.poll_transmit() {
                moved = true;
                assert_eq!(t.to.addr, self.uac_addr, "UAS answered elsewhere");
                let msg = parse_datagram(t.bytes.clone()).expect("UAS sent unparseable bytes");
                self.wire.push(Sent {
                    at: self.elapsed(),
                    dir: Dir::ToUac,
                    msg: msg.clone(),
                });
                if !(self.drop)(Dir::ToUac, &msg) {
                    self.uac.receive(msg, self.uas_peer(), self.now);
                }
            }
            while let Some(e) = self.uac.poll_event() {
                self.uac_events.push(e);
            }
            while let Some(e) = self.uas.poll_event() {
                self.uas_events.push(e);
            }
            if !moved {
                return;
            }
        }
    }

    /// Runs both layers' timers up to `t0 + at`, stopping at every deadline.
    pub fn run_until(&mut self, at: Duration) {
        let end = self.t0 + at;
        loop {
            let next = [self.uac.next_deadline(), self.uas.next_deadline()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(d) if d <= end => {
                    self.now = self.now.max(d);
                    self.uac.handle_timeouts(self.now);
                    self.uas.handle_timeouts(self.now);
                    self.deliver();
                }
                _ => break,
            }
        }
        self.now = end;
    }

    pub fn wire_labels(&self, dir: Dir) -> Vec<(Duration, String)> {
        self.wire
            .iter()
            .filter(|s| s.dir == dir)
            .map(|s| (s.at, s.label()))
            .collect()
    }

    /// The request of the UAS's `n`th NewRequest event.
    pub fn new_request(&self, n: usize) -> (TxId, Message) {
        self.uas_events
            .iter()
            .filter_map(|e| match e {
                Event::NewRequest { tx, msg, .. } => Some((*tx, msg.clone())),
                _ => None,
            })
            .nth(n)
            .expect("no such NewRequest")
    }

    pub fn uac_responses(&self, tx: TxId) -> Vec<u16> {
        self.uac_events
            .iter()
            .filter_map(|e| match e {
                Event::Response { tx: t, msg } if *t == tx => msg.status(),
                _ => None,
            })
            .collect()
    }
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A request as a UA core writes it, without Via (the layer adds one).
pub fn request(method: &str) -> Message {
    let method = Method::from_token(method);
    let mut m = Message::request(
        method.clone(),
        Uri::parse("sip:bob@127.0.0.2").expect("uri"),
    );
    m.push_header(HeaderName::MaxForwards, "70");
    m.push_header(HeaderName::To, "Bob <sip:bob@example.com>");
    m.push_header(
        HeaderName::From,
        format!("Alice <sip:alice@example.com>;tag={}", new_tag()),
    );
    m.push_header(HeaderName::CallId, new_call_id("127.0.0.1"));
    m.push_header(HeaderName::CSeq, format!("1 {method}"));
    m.push_header(HeaderName::ContentLength, "0");
    m
}

/// The UAS TU's response, with a To tag unless it is a 100.
pub fn answer(req: &Message, code: u16, tag: &str) -> Message {
    let mut r = Message::response_to(req, code, None);
    if code > 100 {
        r.set_to_tag(tag);
    }
    r
}
