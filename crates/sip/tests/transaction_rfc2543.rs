//! Server transactions for requests whose Via branch lacks the RFC 3261
//! magic cookie: matched by Request-URI, tags, Call-ID, CSeq and top Via
//! (RFC 3261 §17.2.3, last paragraphs).

use std::time::{Duration, Instant};

use sip::transaction::{Config, Event, Peer, TransactionLayer, TransportKind, TxId};
use sip::{Message, parse_datagram};

fn msg(method: &str, cseq: u32, cseq_method: &str, via: &str, to_tag: Option<&str>) -> Message {
    let to = match to_tag {
        Some(t) => format!("<sip:bob@b.example>;tag={t}"),
        None => "<sip:bob@b.example>".to_string(),
    };
    let text = format!(
        "{method} sip:bob@b.example SIP/2.0\r\n\
Via: {via}\r\n\
Max-Forwards: 70\r\n\
To: {to}\r\n\
From: <sip:old@a.example>;tag=old1\r\n\
Call-ID: legacy-call@a.example\r\n\
CSeq: {cseq} {cseq_method}\r\n\
Content-Length: 0\r\n\r\n"
    );
    parse_datagram(text.into_bytes()).expect("parse")
}

const VIA: &str = "SIP/2.0/UDP 10.0.0.1:5060";

struct Uas {
    layer: TransactionLayer,
    now: Instant,
    from: Peer,
}

impl Uas {
    fn new() -> Uas {
        Uas {
            layer: TransactionLayer::new(Config::default()),
            now: Instant::now(),
            from: Peer::new(TransportKind::Udp, "10.0.0.1:5060".parse().expect("addr")),
        }
    }

    fn feed(&mut self, m: Message) -> (Vec<Message>, Vec<Event>) {
        self.layer.receive(m, self.from, self.now);
        self.drain()
    }

    fn drain(&mut self) -> (Vec<Message>, Vec<Event>) {
        let mut sent = Vec::new();
        while let Some(t) = self.layer.poll_transmit() {
            sent.push(parse_datagram(t.bytes).expect("reparse"));
        }
        let mut events = Vec::new();
        while let Some(e) = self.layer.poll_event() {
            events.push(e);
        }
        (sent, events)
    }

    fn new_tx(events: &[Event]) -> Option<TxId> {
        events.iter().find_map(|e| match e {
            Event::NewRequest { tx, .. } => Some(*tx),
            _ => None,
        })
    }
}

fn reply(req: &Message, code: u16, tag: &str) -> Message {
    let mut r = Message::response_to(req, code, None);
    r.set_to_tag(tag);
    r
}

#[test]
fn retransmission_without_cookie_is_absorbed() {
    let mut uas = Uas::new();
    let req = msg("OPTIONS", 1, "OPTIONS", VIA, None);
    let (_, ev) = uas.feed(req.clone());
    let tx = Uas::new_tx(&ev).expect("new transaction");
    uas.layer
        .respond(tx, reply(&req, 200, "t1"), uas.now)
        .expect("respond");
    let (sent, _) = uas.drain();
    assert_eq!(sent.len(), 1);

    // The same request again: the 200 again, no new transaction.
    let (sent, ev) = uas.feed(req.clone());
    assert_eq!(
        sent.iter().map(|m| m.status()).collect::<Vec<_>>(),
        [Some(200)]
    );
    assert!(Uas::new_tx(&ev).is_none());
    assert_eq!(uas.layer.stats().absorbed_requests, 1);

    // A new CSeq is a new transaction.
    let (_, ev) = uas.feed(msg("OPTIONS", 2, "OPTIONS", VIA, None));
    assert!(Uas::new_tx(&ev).is_some_and(|t| t != tx));

    // So is the same CSeq with another To tag (a request in a dialog).
    let (_, ev) = uas.feed(msg("OPTIONS", 1, "OPTIONS", VIA, Some("zz")));
    assert!(Uas::new_tx(&ev).is_some());
    assert_eq!(uas.layer.live_transactions(), 3);
    // ...and the first one still owns its retransmissions.
    let (sent, ev) = uas.feed(req);
    assert!(ev.is_empty(), "{ev:?}");
    assert_eq!(
        sent.iter().map(|m| m.status()).collect::<Vec<_>>(),
        [Some(200)]
    );
}

#[test]
fn another_top_via_is_another_transaction_and_here_a_merged_request() {
    let mut uas = Uas::new();
    let (_, ev) = uas.feed(msg("OPTIONS", 1, "OPTIONS", VIA, None));
    assert!(Uas::new_tx(&ev).is_some());
    // Same From tag, Call-ID and CSeq by another path: §8.2.2.2.
    let (sent, ev) = uas.feed(msg(
        "OPTIONS",
        1,
        "OPTIONS",
        "SIP/2.0/UDP 10.0.0.2:5060",
        None,
    ));
    assert!(Uas::new_tx(&ev).is_none());
    assert_eq!(
        sent.iter().map(|m| m.status()).collect::<Vec<_>>(),
        [Some(482)]
    );
}

#[test]
fn ack_matches_by_the_response_to_tag() {
    let mut uas = Uas::new();
    let invite = msg("INVITE", 5, "INVITE", VIA, None);
    let (_, ev) = uas.feed(invite.clone());
    let tx = Uas::new_tx(&ev).expect("invite");
    uas.layer
        .respond(tx, reply(&invite, 486, "busy1"), uas.now)
        .expect("respond");
    uas.drain();

    // An ACK with some other To tag is not this transaction's.
    let (_, ev) = uas.feed(msg("ACK", 5, "ACK", VIA, Some("other")));
    assert!(matches!(ev.as_slice(), [Event::AckFor2xx { .. }]), "{ev:?}");

    // The real one confirms the transaction: Timer G stops.
    let (sent, ev) = uas.feed(msg("ACK", 5, "ACK", VIA, Some("busy1")));
    assert!(sent.is_empty() && ev.is_empty(), "{ev:?}");
    uas.now += Duration::from_secs(1);
    uas.layer.handle_timeouts(uas.now);
    let (sent, _) = uas.drain();
    assert!(sent.is_empty(), "486 re-sent after the ACK");
    assert_eq!(uas.layer.stats().retransmissions, 0);
}

#[test]
fn cancel_without_cookie_finds_its_invite() {
    let mut uas = Uas::new();
    let invite = msg("INVITE", 9, "INVITE", VIA, None);
    let (_, ev) = uas.feed(invite.clone());
    let tx = Uas::new_tx(&ev).expect("invite");
    let (sent, ev) = uas.feed(msg("CANCEL", 9, "CANCEL", VIA, None));
    assert_eq!(
        sent.iter().map(|m| m.status()).collect::<Vec<_>>(),
        [Some(200)]
    );
    assert!(
        matches!(ev.as_slice(), [Event::Cancelled { tx: t, .. }] if *t == tx),
        "{ev:?}"
    );
    // The CANCEL retransmitted gets the same 200 from its transaction.
    let (sent, ev) = uas.feed(msg("CANCEL", 9, "CANCEL", VIA, None));
    assert_eq!(
        sent.iter().map(|m| m.status()).collect::<Vec<_>>(),
        [Some(200)]
    );
    assert!(ev.is_empty());
}
