//! Dialogs driven by the messages of RFC 3665 §3.2 (a call from Alice to
//! Bob through two record-routing proxies), adapted: Alice's INVITE goes
//! straight to Proxy 1 with credentials already in place, and the proxies
//! are simulated by popping their own Route entry and adding a Via.

use std::collections::HashMap;

use sip::dialog::{Dialog, DialogError, DialogId, DialogState, Role};
use sip::{HeaderName, Message, Method, ids, parse_datagram};

const CALL_ID: &str = "3848276298220188511@atlanta.example.com";
const ALICE_CONTACT: &str = "sip:alice@client.atlanta.example.com;transport=tcp";
const BOB_CONTACT: &str = "sip:bob@client.biloxi.example.com;transport=tcp";
const SS1: &str = "<sip:ss1.atlanta.example.com;lr>";
const SS2: &str = "<sip:ss2.biloxi.example.com;lr>";

const ALICE_SDP: &str = "v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 client.atlanta.example.com\r\n\
s=-\r\n\
c=IN IP4 192.0.2.101\r\n\
t=0 0\r\n\
m=audio 49172 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

const BOB_SDP: &str = "v=0\r\n\
o=bob 2890844527 2890844527 IN IP4 client.biloxi.example.com\r\n\
s=-\r\n\
c=IN IP4 192.0.2.201\r\n\
t=0 0\r\n\
m=audio 3456 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

/// A message from header lines and a body, Content-Length filled in.
fn msg(lines: &[&str], body: &str) -> Message {
    let mut text = lines.join("\r\n");
    text.push_str(&format!("\r\nContent-Length: {}\r\n\r\n{body}", body.len()));
    parse_datagram(text.into_bytes()).expect("test message parses")
}

/// F4-like: Alice's INVITE as she sends it.
fn alice_invite() -> Message {
    msg(
        &[
            "INVITE sip:bob@biloxi.example.com SIP/2.0",
            "Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9",
            "Max-Forwards: 70",
            "From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl",
            "To: Bob <sip:bob@biloxi.example.com>",
            "Call-ID: 3848276298220188511@atlanta.example.com",
            "CSeq: 2 INVITE",
            "Contact: <sip:alice@client.atlanta.example.com;transport=tcp>",
            "Proxy-Authorization: Digest username=\"alice\", realm=\"atlanta.example.com\", \
nonce=\"dc3a5ab25302aa931904ba7d88fa1cf5\", opaque=\"\", uri=\"sip:bob@biloxi.example.com\", \
response=\"ccdca50cb091d587421457305d097458c\"",
            "Content-Type: application/sdp",
        ],
        ALICE_SDP,
    )
}

/// F7-like: the INVITE as Bob receives it from Proxy 2.
fn bob_invite() -> Message {
    msg(
        &[
            "INVITE sip:bob@client.biloxi.example.com SIP/2.0",
            "Via: SIP/2.0/TCP ss2.biloxi.example.com:5060;branch=z9hG4bK721e4.1",
            "Via: SIP/2.0/TCP ss1.atlanta.example.com:5060;branch=z9hG4bK2d4790.1;received=192.0.2.111",
            "Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9;received=192.0.2.101",
            "Max-Forwards: 68",
            "Record-Route: <sip:ss2.biloxi.example.com;lr>",
            "Record-Route: <sip:ss1.atlanta.example.com;lr>",
            "From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl",
            "To: Bob <sip:bob@biloxi.example.com>",
            "Call-ID: 3848276298220188511@atlanta.example.com",
            "CSeq: 2 INVITE",
            "Contact: <sip:alice@client.atlanta.example.com;transport=tcp>",
            "Content-Type: application/sdp",
        ],
        ALICE_SDP,
    )
}

/// F12/F16-like: a response to Alice's INVITE as it reaches her, with the
/// two Record-Route entries the proxies added (Proxy 2 nearest Bob first).
fn to_alice(status: &str, tag: &str, contact: Option<&str>, rr: &[&str], body: &str) -> Message {
    let mut lines = vec![
        status.to_owned(),
        "Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9;received=192.0.2.101"
            .to_owned(),
    ];
    for r in rr {
        lines.push(format!("Record-Route: {r}"));
    }
    lines.push("From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl".to_owned());
    lines.push(format!("To: Bob <sip:bob@biloxi.example.com>;tag={tag}"));
    lines.push(format!("Call-ID: {CALL_ID}"));
    lines.push("CSeq: 2 INVITE".to_owned());
    if let Some(c) = contact {
        lines.push(format!("Contact: <{c}>"));
    }
    if !body.is_empty() {
        lines.push("Content-Type: application/sdp".to_owned());
    }
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    msg(&refs, body)
}

fn ringing() -> Message {
    to_alice(
        "SIP/2.0 180 Ringing",
        "314159",
        Some(BOB_CONTACT),
        &[SS2, SS1],
        "",
    )
}

fn ok() -> Message {
    to_alice(
        "SIP/2.0 200 OK",
        "314159",
        Some(BOB_CONTACT),
        &["<sip:ss2.biloxi.example.com;lr>, <sip:ss1.atlanta.example.com;lr>"],
        BOB_SDP,
    )
}

/// What a client transaction does before sending: a Via with a fresh
/// branch. Then the bytes go out and are parsed as the next hop would,
/// which must give back the same message.
fn send(mut req: Message, host: &str) -> Message {
    req.prepend_header(
        HeaderName::Via,
        format!("SIP/2.0/TCP {host}:5060;branch={}", ids::new_branch()),
    );
    let bytes = req.to_bytes();
    let parsed = parse_datagram(bytes.clone()).expect("built request re-parses");
    assert_eq!(parsed.to_bytes(), bytes, "round trip changes nothing");
    parsed
}

/// A response on the wire and back.
fn wire(resp: &Message) -> Message {
    let bytes = resp.to_bytes();
    let parsed = parse_datagram(bytes.clone()).expect("built response re-parses");
    assert_eq!(parsed.to_bytes(), bytes);
    parsed
}

/// A loose-routing proxy at `host`: the top Route must be its own; it pops
/// it, adds its Via and forwards.
fn proxy(mut req: Message, host: &str) -> Message {
    let top = req.values(HeaderName::Route).next().map(str::to_owned);
    assert_eq!(top.as_deref(), Some(format!("<sip:{host};lr>").as_str()));
    assert!(req.remove_first_value(HeaderName::Route));
    let mf = req.max_forwards().expect("Max-Forwards");
    req.set_header(HeaderName::MaxForwards, (mf - 1).to_string());
    req.prepend_header(
        HeaderName::Via,
        format!("SIP/2.0/TCP {host}:5060;branch={}", ids::new_branch()),
    );
    parse_datagram(req.to_bytes()).expect("forwarded request parses")
}

/// A response as it comes back through the proxies: their Vias removed.
fn back_through(resp: &Message, hops: usize) -> Message {
    let mut r = wire(resp);
    for _ in 0..hops {
        assert!(r.remove_first_value(HeaderName::Via));
    }
    wire(&r)
}

fn routes(m: &Message) -> Vec<&str> {
    m.values(HeaderName::Route).collect()
}

fn ruri(m: &Message) -> String {
    m.request_uri_text().expect("request").into_owned()
}

fn cseq(m: &Message) -> (u32, Method) {
    let c = m.cseq().expect("CSeq");
    (c.seq, c.method)
}

/// Both ends of the confirmed call, as the flow leaves them after F16.
fn call() -> (Dialog, Dialog) {
    let invite_at_bob = bob_invite();
    let mut bob = Dialog::from_uas(&invite_at_bob, "314159", BOB_CONTACT).expect("uas");
    let mut r200 = bob.response(&invite_at_bob, 200, None);
    r200.set_body(BOB_SDP, Some("application/sdp"));
    let alice = Dialog::from_uac(&alice_invite(), &back_through(&r200, 2)).expect("uac");
    (alice, bob)
}

#[test]
fn uac_through_two_proxies_reverses_the_route_set() {
    let invite = alice_invite();
    let mut alice = Dialog::from_uac(&invite, &ringing()).expect("early dialog");
    assert_eq!(alice.role(), Role::Uac);
    assert_eq!(alice.state(), DialogState::Early);
    let rs: Vec<&str> = alice.route_set().iter().map(|r| r.value()).collect();
    assert_eq!(
        rs,
        [SS1, SS2],
        "the UAC's route set is Record-Route reversed"
    );
    assert!(alice.route_set().iter().all(|r| r.is_loose()));

    alice.on_response(&ok()).expect("200 OK");
    assert_eq!(alice.state(), DialogState::Confirmed);
    assert_eq!(alice.remote_target().to_string(), BOB_CONTACT);
    assert_eq!(alice.local_seq(), Some(2));
    assert_eq!(alice.remote_seq(), None);

    // F17: the ACK goes to Bob's Contact through ss1 then ss2.
    let ack = send(alice.ack_for(2), "client.atlanta.example.com");
    assert_eq!(ruri(&ack), BOB_CONTACT);
    assert_eq!(routes(&ack), [SS1, SS2]);
    assert_eq!(cseq(&ack), (2, Method::Ack));
    assert_eq!(ack.from_tag(), Some("9fxced76sl"));
    assert_eq!(ack.to_tag(), Some("314159"));
    assert_eq!(ack.call_id(), Some(CALL_ID));
    assert_eq!(ack.max_forwards(), Some(70));
    assert_eq!(ack.header(HeaderName::Contact), None);
    let at_bob = proxy(
        proxy(ack, "ss1.atlanta.example.com"),
        "ss2.biloxi.example.com",
    );
    assert!(routes(&at_bob).is_empty());

    // Alice hangs up: BYE to Bob's Contact along the same route.
    let bye = send(
        alice.request(Method::Bye).expect("bye"),
        "client.atlanta.example.com",
    );
    assert_eq!(ruri(&bye), BOB_CONTACT);
    assert_eq!(routes(&bye), [SS1, SS2]);
    assert_eq!(cseq(&bye), (3, Method::Bye));
    assert_eq!(
        bye.header(HeaderName::From),
        Some("Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl")
    );
    assert_eq!(
        bye.header(HeaderName::To),
        Some("Bob <sip:bob@biloxi.example.com>;tag=314159")
    );
    assert_eq!(bye.header(HeaderName::ContentLength), Some("0"));
    assert_eq!(alice.state(), DialogState::Terminated);
    assert_eq!(
        alice.request(Method::Info).map(|_| ()),
        Err(DialogError::Terminated)
    );
}

#[test]
fn uas_keeps_record_route_order_and_answers_with_it() {
    let invite = bob_invite();
    let mut bob = Dialog::from_uas(&invite, "314159", BOB_CONTACT).expect("uas");
    assert_eq!(bob.role(), Role::Uas);
    assert_eq!(bob.state(), DialogState::Early);
    let rs: Vec<&str> = bob.route_set().iter().map(|r| r.value()).collect();
    assert_eq!(rs, [SS2, SS1], "the UAS keeps Record-Route as it came");
    assert_eq!(bob.remote_target().to_string(), ALICE_CONTACT);
    assert_eq!(bob.remote_seq(), Some(2));
    assert_eq!(bob.local_seq(), None);

    // F8-like 180: To tag, Contact, Record-Route copied in order.
    let r180 = wire(&bob.response(&invite, 180, None));
    assert_eq!(r180.status(), Some(180));
    assert_eq!(r180.to_tag(), Some("314159"));
    assert_eq!(
        r180.header(HeaderName::Contact),
        Some(format!("<{BOB_CONTACT}>").as_str())
    );
    assert_eq!(
        r180.header_lines(HeaderName::RecordRoute)
            .collect::<Vec<_>>(),
        [SS2, SS1]
    );
    assert_eq!(r180.values(HeaderName::Via).count(), 3);
    assert_eq!(bob.state(), DialogState::Early);

    let mut r200 = bob.response(&invite, 200, None);
    r200.set_body(BOB_SDP, Some("application/sdp"));
    let r200 = wire(&r200);
    assert_eq!(bob.state(), DialogState::Confirmed);
    assert_eq!(r200.to_tag(), Some("314159"));
    assert_eq!(r200.values(HeaderName::RecordRoute).count(), 2);

    // The same 200 at Alice makes her dialog: the two ids mirror each other.
    let mut alice = Dialog::from_uac(&alice_invite(), &back_through(&r200, 2)).expect("uac");
    assert_eq!(alice.state(), DialogState::Confirmed);
    assert_eq!(alice.id().local_tag, bob.id().remote_tag);
    assert_eq!(alice.id().remote_tag, bob.id().local_tag);

    // The ACK reaches Bob and matches his dialog.
    let ack = send(alice.ack_for(2), "client.atlanta.example.com");
    let ack = proxy(
        proxy(ack, "ss1.atlanta.example.com"),
        "ss2.biloxi.example.com",
    );
    assert_eq!(
        DialogId::for_incoming_request(&ack).as_ref(),
        Some(bob.id())
    );
    bob.on_request(&ack).expect("ack");

    // RFC 3665 §3.2 F20: Bob's BYE, CSeq 1, to Alice's Contact via ss2, ss1.
    let bye = send(
        bob.request(Method::Bye).expect("bye"),
        "client.biloxi.example.com",
    );
    assert_eq!(ruri(&bye), ALICE_CONTACT);
    assert_eq!(routes(&bye), [SS2, SS1]);
    assert_eq!(cseq(&bye), (1, Method::Bye));
    assert_eq!(
        bye.header(HeaderName::From),
        Some("Bob <sip:bob@biloxi.example.com>;tag=314159")
    );
    assert_eq!(
        bye.header(HeaderName::To),
        Some("Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl")
    );
    let bye = proxy(
        proxy(bye, "ss2.biloxi.example.com"),
        "ss1.atlanta.example.com",
    );
    assert_eq!(
        DialogId::for_incoming_request(&bye).as_ref(),
        Some(alice.id())
    );
    alice.on_request(&bye).expect("bye accepted");
    assert_eq!(alice.state(), DialogState::Terminated);
    let bye_ok = wire(&alice.response(&bye, 200, None));
    assert_eq!(bye_ok.header(HeaderName::Contact), None);
    let bye_ok = back_through(&bye_ok, 2);
    assert_eq!(
        DialogId::for_incoming_response(&bye_ok).as_ref(),
        Some(bob.id())
    );
    bob.on_response(&bye_ok).expect("200 to BYE");
    assert_eq!(bob.state(), DialogState::Terminated);
}

#[test]
fn strict_router_takes_the_request_uri() {
    // Proxy 1 is an RFC 2543 strict router (no ;lr) and puts a `method`
    // parameter in its URI, which a Request-URI may not carry.
    let r200 = to_alice(
        "SIP/2.0 200 OK",
        "314159",
        Some(BOB_CONTACT),
        &[
            "<sip:ss2.biloxi.example.com;lr>, <sip:ss1.atlanta.example.com;transport=tcp;method=INVITE>",
        ],
        BOB_SDP,
    );
    let mut alice = Dialog::from_uac(&alice_invite(), &r200).expect("uac");
    assert!(!alice.route_set()[0].is_loose());
    let bye = send(
        alice.request(Method::Bye).expect("bye"),
        "client.atlanta.example.com",
    );
    assert_eq!(ruri(&bye), "sip:ss1.atlanta.example.com;transport=tcp");
    let bob_last = format!("<{BOB_CONTACT}>");
    assert_eq!(routes(&bye), [SS2, bob_last.as_str()]);

    // The ACK follows the same rule.
    let ack = send(alice.ack_for(2), "client.atlanta.example.com");
    assert_eq!(ruri(&ack), "sip:ss1.atlanta.example.com;transport=tcp");
    assert_eq!(routes(&ack).len(), 2);

    // Seen from the UAS, the strict router is first in its own order.
    let mut invite = bob_invite();
    invite.remove_header(HeaderName::RecordRoute);
    invite.push_header(HeaderName::RecordRoute, "<sip:ss2.biloxi.example.com>");
    invite.push_header(HeaderName::RecordRoute, SS1);
    let invite = wire(&invite);
    let mut bob = Dialog::from_uas(&invite, "314159", BOB_CONTACT).expect("uas");
    bob.response(&invite, 200, None);
    let bye = send(
        bob.request(Method::Bye).expect("bye"),
        "client.biloxi.example.com",
    );
    assert_eq!(ruri(&bye), "sip:ss2.biloxi.example.com");
    let alice_last = format!("<{ALICE_CONTACT}>");
    assert_eq!(routes(&bye), [SS1, alice_last.as_str()]);
}

#[test]
fn cseq_increments_per_request_and_ack_reuses_the_invites() {
    let (mut alice, mut bob) = call();
    let info = send(
        alice.request(Method::Info).expect("info"),
        "client.atlanta.example.com",
    );
    assert_eq!(cseq(&info), (3, Method::Info));
    assert_eq!(
        info.header(HeaderName::Contact),
        None,
        "INFO refreshes nothing"
    );
    let options = send(
        alice.request(Method::Options).expect("options"),
        "client.atlanta.example.com",
    );
    assert_eq!(cseq(&options), (4, Method::Options));
    let ack = send(alice.ack_for(2), "client.atlanta.example.com");
    assert_eq!(cseq(&ack), (2, Method::Ack));
    assert_eq!(alice.local_seq(), Some(4), "an ACK takes no number");
    let update = send(
        alice.request(Method::Update).expect("update"),
        "client.atlanta.example.com",
    );
    assert_eq!(cseq(&update), (5, Method::Update));
    assert_eq!(
        update.header(HeaderName::Contact),
        Some(format!("<{ALICE_CONTACT}>").as_str()),
        "a target refresh carries our Contact"
    );

    // The UAS starts its own numbering.
    let b1 = send(
        bob.request(Method::Info).expect("info"),
        "client.biloxi.example.com",
    );
    let b2 = send(
        bob.request(Method::Info).expect("info"),
        "client.biloxi.example.com",
    );
    assert_eq!((cseq(&b1).0, cseq(&b2).0), (1, 2));

    assert_eq!(
        alice.request(Method::Ack).map(|_| ()),
        Err(DialogError::WrongMethod(Method::Ack))
    );
    assert_eq!(
        alice.request(Method::Cancel).map(|_| ()),
        Err(DialogError::WrongMethod(Method::Cancel))
    );
}

#[test]
fn lower_cseq_is_refused_with_500() {
    let (mut alice, mut bob) = call();
    let first = send(
        alice.request(Method::Info).expect("info"),
        "client.atlanta.example.com",
    );
    let second = send(
        alice.request(Method::Info).expect("info"),
        "client.atlanta.example.com",
    );
    // They arrive in the wrong order.
    bob.on_request(&second).expect("in order");
    assert_eq!(bob.remote_seq(), Some(4));
    let err = bob.on_request(&first).expect_err("out of order");
    assert_eq!(err, DialogError::OutOfOrder { got: 3, remote: 4 });
    assert_eq!(err.status(), Some(500));
    let resp = wire(&err.response_to(&first).expect("a response"));
    assert_eq!(resp.status(), Some(500));
    assert_eq!(resp.cseq().map(|c| c.seq), Some(3));
    assert_eq!(resp.header(HeaderName::RetryAfter), None);
    assert_eq!(
        bob.remote_seq(),
        Some(4),
        "the refused request moves nothing"
    );
    // A retransmission of the last one is not out of order.
    bob.on_request(&second).expect("same number");
}

#[test]
fn crossing_reinvites_get_491_and_overlapping_ones_500() {
    let (mut alice, mut bob) = call();
    let a_inv = send(
        alice
            .request_with_body(Method::Invite, "application/sdp", ALICE_SDP)
            .expect("re-INVITE"),
        "client.atlanta.example.com",
    );
    // Bob's carries no offer (he will offer in the 2xx): INVITEs cross all
    // the same.
    let b_inv = send(
        bob.request(Method::Invite).expect("re-INVITE"),
        "client.biloxi.example.com",
    );
    // Glare: each side has its own re-INVITE outstanding (§14.2).
    let err = alice.on_request(&b_inv).expect_err("glare");
    assert_eq!(err, DialogError::RequestPending);
    let r491 = wire(&err.response_to(&b_inv).expect("response"));
    assert_eq!(r491.status(), Some(491));
    assert_eq!(alice.remote_seq(), Some(1), "the number is still taken");
    assert_eq!(
        bob.on_request(&a_inv),
        Err(DialogError::RequestPending),
        "and the same on the other side"
    );

    // No third INVITE while one is out.
    assert_eq!(
        alice.request(Method::Invite).map(|_| ()),
        Err(DialogError::InviteInProgress)
    );

    // Once Alice's INVITE has its 491, she may try again.
    let b_r491 = wire(
        &DialogError::RequestPending
            .response_to(&a_inv)
            .expect("response"),
    );
    alice.on_response(&b_r491).expect("491 taken");
    assert_eq!(alice.state(), DialogState::Confirmed);
    let retry = alice
        .request_with_body(Method::Invite, "application/sdp", ALICE_SDP)
        .expect("retry");
    assert_eq!(cseq(&retry), (4, Method::Invite));

    // Bob, whose own INVITE got a 491 too, takes Alice's retry, then sees
    // another INVITE before answering it: 500 with Retry-After (§14.2).
    bob.on_response(&wire(&r491)).expect("491 to Bob's INVITE");
    let retry = send(retry, "client.atlanta.example.com");
    bob.on_request(&retry).expect("accepted");
    let mut again = retry.clone();
    again.set_header(HeaderName::CSeq, "5 INVITE");
    // Without an offer, so only the INVITE rule can refuse it.
    again.set_body("", None);
    let err = bob.on_request(&again).expect_err("overlap");
    assert_eq!(err, DialogError::PreviousPending);
    let r500 = wire(&err.response_to(&again).expect("response"));
    assert_eq!(r500.status(), Some(500));
    let after: u32 = r500
        .header(HeaderName::RetryAfter)
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!(after <= 10);
}

#[test]
fn crossing_update_offers_get_491() {
    let (mut alice, mut bob) = call();
    let _a_upd = send(
        alice
            .request_with_body(Method::Update, "application/sdp", ALICE_SDP)
            .expect("update"),
        "client.atlanta.example.com",
    );
    assert_eq!(
        alice
            .request_with_body(Method::Update, "application/sdp", ALICE_SDP)
            .map(|_| ()),
        Err(DialogError::OfferPending),
        "one offer at a time"
    );
    let b_upd = send(
        bob.request_with_body(Method::Update, "application/sdp", BOB_SDP)
            .expect("update"),
        "client.biloxi.example.com",
    );
    assert_eq!(alice.on_request(&b_upd), Err(DialogError::RequestPending));
    // An UPDATE without an offer (a session refresh) crosses nothing.
    let b_refresh = send(
        bob.request(Method::Update).expect("update"),
        "client.biloxi.example.com",
    );
    alice.on_request(&b_refresh).expect("no offer, no glare");

    // A second offer from the peer before we answered its first: 500 with
    // Retry-After (RFC 3311 §5.2).
    let (mut alice, mut bob) = call();
    let b_upd = send(
        bob.request_with_body(Method::Update, "application/sdp", BOB_SDP)
            .expect("update"),
        "client.biloxi.example.com",
    );
    alice.on_request(&b_upd).expect("first offer");
    let mut second = b_upd.clone();
    second.set_header(HeaderName::CSeq, "2 UPDATE");
    let err = alice.on_request(&second).expect_err("second offer");
    assert_eq!(err, DialogError::PreviousPending);
    assert_eq!(err.status(), Some(500));
    // Our answer (the 2xx) closes the first; the next offer is welcome.
    alice.response(&b_upd, 200, None);
    let mut third = b_upd.clone();
    third.set_header(HeaderName::CSeq, "3 UPDATE");
    alice.on_request(&third).expect("offer after the answer");
}

#[test]
fn target_refresh_moves_the_remote_target_on_success_only() {
    let (mut alice, mut bob) = call();
    const MOVED: &str = "sip:bob@192.0.2.250:5070;transport=tcp";
    const MOVED_AGAIN: &str = "sip:bob@192.0.2.251;transport=tcp";

    // Bob moves and tells Alice with a re-INVITE.
    bob.set_local_contact(MOVED).expect("contact");
    let reinvite = send(
        bob.request_with_body(Method::Invite, "application/sdp", BOB_SDP)
            .expect("re-INVITE"),
        "client.biloxi.example.com",
    );
    assert_eq!(
        reinvite.header(HeaderName::Contact),
        Some(format!("<{MOVED}>").as_str())
    );
    alice.on_request(&reinvite).expect("accepted");
    assert_eq!(
        alice.remote_target().to_string(),
        BOB_CONTACT,
        "not before the 2xx"
    );
    let mut r200 = alice.response(&reinvite, 200, None);
    r200.set_body(ALICE_SDP, Some("application/sdp"));
    let r200 = wire(&r200);
    assert_eq!(alice.remote_target().to_string(), MOVED);
    assert_eq!(
        r200.header(HeaderName::Contact),
        Some(format!("<{ALICE_CONTACT}>").as_str())
    );
    bob.on_response(&r200).expect("200");
    let ack = send(bob.ack_for(1), "client.biloxi.example.com");
    alice.on_request(&ack).expect("ack");

    // A refused re-INVITE moves nothing.
    bob.set_local_contact(MOVED_AGAIN).expect("contact");
    let refused = send(
        bob.request_with_body(Method::Invite, "application/sdp", BOB_SDP)
            .expect("re-INVITE"),
        "client.biloxi.example.com",
    );
    alice.on_request(&refused).expect("accepted for now");
    let r488 = wire(&alice.response(&refused, 488, None));
    assert_eq!(r488.header(HeaderName::Contact), None);
    assert_eq!(alice.remote_target().to_string(), MOVED);
    bob.on_response(&r488).expect("488");
    assert_eq!(bob.state(), DialogState::Confirmed);

    // Alice's next request goes to where Bob moved.
    let bye = send(
        alice.request(Method::Bye).expect("bye"),
        "client.atlanta.example.com",
    );
    assert_eq!(ruri(&bye), MOVED);

    // The UAC side: Bob's 2xx to Alice's re-INVITE carries a new Contact.
    let (mut alice, mut bob) = call();
    let reinvite = send(
        alice
            .request_with_body(Method::Invite, "application/sdp", ALICE_SDP)
            .expect("re-INVITE"),
        "client.atlanta.example.com",
    );
    bob.on_request(&reinvite).expect("accepted");
    bob.set_local_contact(MOVED).expect("contact");
    let r200 = wire(&bob.response(&reinvite, 200, None));
    assert_eq!(alice.remote_target().to_string(), BOB_CONTACT);
    alice.on_response(&r200).expect("200");
    assert_eq!(alice.remote_target().to_string(), MOVED);
    assert_eq!(bob.remote_target().to_string(), ALICE_CONTACT);
}

#[test]
fn early_dialog_from_180_is_confirmed_by_200() {
    // A 180 with a tag but neither Contact nor Record-Route.
    let r180 = to_alice("SIP/2.0 180 Ringing", "314159", None, &[], "");
    let mut alice = Dialog::from_uac(&alice_invite(), &r180).expect("early");
    assert_eq!(alice.state(), DialogState::Early);
    assert!(alice.route_set().is_empty());
    assert_eq!(
        alice.remote_target().to_string(),
        "sip:bob@biloxi.example.com",
        "the Request-URI until a Contact arrives"
    );
    // A 100 makes no dialog.
    let r100 = to_alice("SIP/2.0 100 Trying", "x", None, &[], "");
    let mut r100 = wire(&r100);
    r100.set_header(HeaderName::To, "Bob <sip:bob@biloxi.example.com>");
    assert_eq!(
        Dialog::from_uac(&alice_invite(), &r100).map(|_| ()),
        Err(DialogError::NotDialogCreating)
    );
    assert_eq!(DialogId::for_incoming_response(&r100), None);

    // The 200 brings the route set and the target (§13.2.2.4).
    alice.on_response(&ok()).expect("200");
    assert_eq!(alice.state(), DialogState::Confirmed);
    assert_eq!(alice.remote_target().to_string(), BOB_CONTACT);
    let rs: Vec<&str> = alice.route_set().iter().map(|r| r.value()).collect();
    assert_eq!(rs, [SS1, SS2]);
    // A retransmitted 200 changes nothing.
    alice.on_response(&ok()).expect("again");
    assert_eq!(alice.state(), DialogState::Confirmed);
}

#[test]
fn forked_invite_makes_one_early_dialog_per_tag() {
    let invite = alice_invite();
    const DESK: &str = "sip:bob@desk.biloxi.example.com;transport=tcp";
    const MOBILE: &str = "sip:bob@mobile.biloxi.example.com;transport=tcp";
    let mut table: HashMap<DialogId, Dialog> = HashMap::new();
    for (tag, contact) in [("desk1", DESK), ("mob2", MOBILE)] {
        let r180 = to_alice("SIP/2.0 180 Ringing", tag, Some(contact), &[SS2, SS1], "");
        let id = DialogId::for_incoming_response(&r180).expect("tagged");
        match table.get_mut(&id) {
            Some(d) => d.on_response(&r180).expect("known fork"),
            None => {
                table.insert(id, Dialog::from_uac(&invite, &r180).expect("new fork"));
            }
        }
    }
    assert_eq!(table.len(), 2);
    let ids: Vec<&DialogId> = table.keys().collect();
    assert!(ids[0].same_set(ids[1]));
    assert_ne!(ids[0], ids[1]);

    // The mobile answers: its dialog is confirmed, the desk's stays early.
    let rr = format!("{SS2}, {SS1}");
    let r200 = to_alice("SIP/2.0 200 OK", "mob2", Some(MOBILE), &[&rr], BOB_SDP);
    let id = DialogId::for_incoming_response(&r200).expect("tagged");
    let mobile = table.get_mut(&id).expect("mobile fork");
    mobile.on_response(&r200).expect("200");
    assert_eq!(mobile.state(), DialogState::Confirmed);
    let ack = send(mobile.ack_for(2), "client.atlanta.example.com");
    assert_eq!(ruri(&ack), MOBILE);
    assert_eq!(ack.to_tag(), Some("mob2"));
    let desk_id = DialogId {
        remote_tag: "desk1".into(),
        ..id.clone()
    };
    let desk = table.get_mut(&desk_id).expect("desk fork");
    assert_eq!(desk.state(), DialogState::Early);
    // Another fork's response is not this dialog's.
    assert_eq!(desk.on_response(&r200), Err(DialogError::Mismatch));
    assert_eq!(desk.remote_target().to_string(), DESK);
}

#[test]
fn final_failure_terminates_early_dialogs() {
    let invite = alice_invite();
    let r180_a = to_alice("SIP/2.0 180 Ringing", "a1", Some(BOB_CONTACT), &[], "");
    let r180_b = to_alice("SIP/2.0 180 Ringing", "b2", Some(BOB_CONTACT), &[], "");
    let mut a = Dialog::from_uac(&invite, &r180_a).expect("a");
    let mut b = Dialog::from_uac(&invite, &r180_b).expect("b");

    // A 486 from the fork that rang ends its dialog.
    let r486 = to_alice("SIP/2.0 486 Busy Here", "b2", None, &[], "");
    assert_eq!(
        DialogId::for_incoming_response(&r486).as_ref(),
        Some(b.id())
    );
    b.on_response(&r486).expect("486");
    assert_eq!(b.state(), DialogState::Terminated);
    assert_eq!(a.state(), DialogState::Early);

    // The final answer the proxy forwards carries its own tag; it still ends
    // every early dialog of the INVITE.
    let r480 = to_alice("SIP/2.0 480 Temporarily Unavailable", "px9", None, &[], "");
    let id = DialogId::for_incoming_response(&r480).expect("tagged");
    assert_ne!(&id, a.id());
    assert!(id.same_set(a.id()));
    a.on_response(&r480).expect("480");
    assert_eq!(a.state(), DialogState::Terminated);
    assert_eq!(
        a.request(Method::Bye).map(|_| ()),
        Err(DialogError::Terminated)
    );

    // A 4xx cannot make a dialog.
    assert_eq!(
        Dialog::from_uac(&invite, &r486).map(|_| ()),
        Err(DialogError::NotDialogCreating)
    );
}

#[test]
fn the_uas_rejecting_the_invite_terminates_its_dialog() {
    let invite = bob_invite();
    let mut bob = Dialog::from_uas(&invite, "314159", BOB_CONTACT).expect("uas");
    bob.response(&invite, 180, None);
    let r603 = wire(&bob.response(&invite, 603, None));
    assert_eq!(r603.to_tag(), Some("314159"));
    assert_eq!(r603.header(HeaderName::Contact), None);
    assert_eq!(r603.header(HeaderName::RecordRoute), None);
    assert_eq!(bob.state(), DialogState::Terminated);
}

#[test]
fn dialog_ids_match_from_both_sides() {
    let (alice, bob) = call();
    assert_eq!(
        alice.id(),
        &DialogId {
            call_id: CALL_ID.into(),
            local_tag: "9fxced76sl".into(),
            remote_tag: "314159".into(),
        }
    );
    assert_eq!(
        bob.id(),
        &DialogId {
            call_id: CALL_ID.into(),
            local_tag: "314159".into(),
            remote_tag: "9fxced76sl".into(),
        }
    );
    let mut table = HashMap::new();
    table.insert(alice.id().clone(), "alice");
    table.insert(bob.id().clone(), "bob");

    // The dialog-creating INVITE is in no dialog yet.
    assert_eq!(DialogId::for_incoming_request(&bob_invite()), None);
    // A 200 to Alice finds Alice; an in-dialog request from Alice finds Bob.
    let id = DialogId::for_incoming_response(&ok()).expect("id");
    assert_eq!(table.get(&id), Some(&"alice"));
    let mut alice = alice;
    let info = send(
        alice.request(Method::Info).expect("info"),
        "client.atlanta.example.com",
    );
    let id = DialogId::for_incoming_request(&info).expect("id");
    assert_eq!(table.get(&id), Some(&"bob"));
}

#[test]
fn requests_of_other_dialogs_are_refused_with_481() {
    let (mut alice, mut bob) = call();
    let mut info = send(
        alice.request(Method::Info).expect("info"),
        "client.atlanta.example.com",
    );
    info.set_header(HeaderName::CallId, "other@atlanta.example.com");
    let err = bob.on_request(&info).expect_err("not ours");
    assert_eq!(err, DialogError::Mismatch);
    assert_eq!(err.status(), Some(481));
}

#[test]
fn in_dialog_481_or_408_terminates() {
    for code in [481u16, 408] {
        let (mut alice, _bob) = call();
        let info = send(
            alice.request(Method::Info).expect("info"),
            "client.atlanta.example.com",
        );
        let resp = wire(&Message::response_to(&info, code, None));
        alice.on_response(&resp).expect("response");
        assert_eq!(alice.state(), DialogState::Terminated, "{code}");
    }
    // Any other failure leaves the dialog up.
    let (mut alice, _bob) = call();
    let info = send(
        alice.request(Method::Info).expect("info"),
        "client.atlanta.example.com",
    );
    alice
        .on_response(&wire(&Message::response_to(&info, 415, None)))
        .expect("response");
    assert_eq!(alice.state(), DialogState::Confirmed);
}

#[test]
fn sips_request_uri_makes_the_dialog_secure() {
    let (alice, bob) = call();
    assert!(!alice.is_secure() && !bob.is_secure());
    let text = String::from_utf8(bob_invite().to_bytes())
        .expect("utf8")
        .replacen(
            "INVITE sip:bob@client.biloxi.example.com",
            "INVITE sips:bob@client.biloxi.example.com",
            1,
        );
    let invite = parse_datagram(text.into_bytes()).expect("parse");
    let bob = Dialog::from_uas(&invite, "314159", BOB_CONTACT).expect("uas");
    assert!(bob.is_secure());
}

#[test]
fn reliable_183_answer_lets_an_early_update_offer() {
    let invite = alice_invite();
    // Unanswered offer: the INVITE's SDP with only a plain 180 back.
    let mut alice = Dialog::from_uac(&invite, &ringing()).expect("early");
    assert_eq!(
        alice
            .request_with_body(Method::Update, "application/sdp", ALICE_SDP)
            .map(|_| ()),
        Err(DialogError::OfferPending)
    );
    // A 183 with SDP sent reliably (RFC 3262) answers it.
    let mut r183 = to_alice(
        "SIP/2.0 183 Session Progress",
        "314159",
        Some(BOB_CONTACT),
        &[SS2, SS1],
        BOB_SDP,
    );
    r183.push_header(HeaderName::Require, "100rel");
    r183.push_header(HeaderName::RSeq, "1");
    let r183 = wire(&r183);
    let mut alice = Dialog::from_uac(&invite, &ringing()).expect("early");
    alice.on_response(&r183).expect("183");
    let update = send(
        alice
            .request_with_body(Method::Update, "application/sdp", ALICE_SDP)
            .expect("offer allowed now"),
        "client.atlanta.example.com",
    );
    assert_eq!(cseq(&update), (3, Method::Update));
    assert_eq!(routes(&update), [SS1, SS2]);
    assert_eq!(alice.state(), DialogState::Early);
    // Still no re-INVITE while the first INVITE is in progress (§14.1).
    assert_eq!(
        alice.request(Method::Invite).map(|_| ()),
        Err(DialogError::InviteInProgress)
    );
}
