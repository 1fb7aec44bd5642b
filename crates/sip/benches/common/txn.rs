//! The transaction workload, shared by `benches/transactions.rs` and the
//! instruction-count harness (`examples/instr_count.rs`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sip::header::HeaderName;
use sip::transaction::{Config, Event, Peer, TransactionLayer, TransportKind};
use sip::{Message, Method, Uri, parse_datagram};

/// A client and a server layer talking to each other in memory.
pub struct Pair {
    pub uac: TransactionLayer,
    pub uas: TransactionLayer,
    uac_peer: Peer,
    uas_peer: Peer,
    template: Message,
    seq: u32,
    now: Instant,
    step: Duration,
}

impl Pair {
    pub fn new(transport: TransportKind, step: Duration) -> Pair {
        let uac_addr: SocketAddr = "127.0.0.1:5060".parse().expect("addr");
        let uas_addr: SocketAddr = "127.0.0.2:5060".parse().expect("addr");
        let mut template = Message::request(
            Method::Options,
            Uri::parse("sip:probe@127.0.0.2").expect("uri"),
        );
        template.push_header(HeaderName::MaxForwards, "70");
        template.push_header(HeaderName::To, "<sip:probe@127.0.0.2>");
        template.push_header(HeaderName::From, "<sip:monitor@127.0.0.1>;tag=8d3f1a2b9c");
        template.push_header(HeaderName::CallId, "bench-5f2c9a1e7b@127.0.0.1");
        template.push_header(HeaderName::CSeq, "1 OPTIONS");
        template.push_header(HeaderName::ContentLength, "0");
        let cfg = Config {
            sent_by: "127.0.0.1:5060".into(),
            max_transactions: 1_000_000,
            ..Config::default()
        };
        Pair {
            uac: TransactionLayer::new(cfg.clone()),
            uas: TransactionLayer::new(cfg),
            uac_peer: Peer::new(transport, uac_addr),
            uas_peer: Peer::new(transport, uas_addr),
            template,
            seq: 0,
            now: Instant::now(),
            step,
        }
    }

    /// One transaction, start to finish.
    pub fn transaction(&mut self) {
        self.now += self.step;
        self.uac.handle_timeouts(self.now);
        self.uas.handle_timeouts(self.now);
        while self.uac.poll_event().is_some() {}
        while self.uas.poll_event().is_some() {}

        // A fresh CSeq keeps the requests distinct for merged-request
        // detection, as distinct requests from a real client would be.
        self.seq = self.seq % 2_000_000_000 + 1;
        let mut req = self.template.clone();
        req.set_header(HeaderName::CSeq, format!("{} OPTIONS", self.seq));
        let tx = self
            .uac
            .send_request(req, self.uas_peer, self.now)
            .expect("send");

        let out = self.uac.poll_transmit().expect("request out");
        let req = parse_datagram(out.bytes).expect("server parses");
        self.uas.receive(req, self.uac_peer, self.now);
        let (stx, req) = match self.uas.poll_event() {
            Some(Event::NewRequest { tx, msg, .. }) => (tx, msg),
            other => panic!("expected a request, got {other:?}"),
        };
        let mut resp = Message::response_to(&req, 200, None);
        resp.set_to_tag("a1b2c3d4");
        self.uas.respond(stx, resp, self.now).expect("respond");

        let out = self.uas.poll_transmit().expect("response out");
        let resp = parse_datagram(out.bytes).expect("client parses");
        self.uac.receive(resp, self.uas_peer, self.now);
        match self.uac.poll_event() {
            Some(Event::Response { tx: t, msg }) if t == tx && msg.status() == Some(200) => {}
            other => panic!("expected the 200, got {other:?}"),
        }
    }
}
