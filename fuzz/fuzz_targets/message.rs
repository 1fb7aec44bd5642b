//! Parses arbitrary bytes as a datagram and as a stream frame. Whatever
//! parses must serialize to bytes that parse again and serialize identically
//! (forwarding a message twice must not change it); whatever fails must yield
//! either no response or a 400/505 that itself parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip::{Message, ParseError};

fuzz_target!(|data: &[u8]| {
    check(sip::parse_datagram(data.to_vec()), sip::parse_datagram);
    check(
        sip::parse_stream_frame(data.to_vec()),
        sip::parse_stream_frame,
    );
});

fn check(parsed: Result<Message, ParseError>, reparse: fn(Vec<u8>) -> Result<Message, ParseError>) {
    match parsed {
        Ok(m) => {
            touch(&m);
            answer_and_stamp(&m);
            let first = m.to_bytes();
            assert_eq!(first.len(), m.encoded_len(), "encoded_len is exact");
            let again = match reparse(first.clone()) {
                Ok(again) => again,
                Err(e) => panic!(
                    "serialized message does not re-parse: {e}\n{}",
                    String::from_utf8_lossy(&first)
                ),
            };
            let second = again.to_bytes();
            assert!(
                first == second,
                "re-serialization differs:\n{}\n---\n{}",
                String::from_utf8_lossy(&first),
                String::from_utf8_lossy(&second)
            );
        }
        Err(e) => {
            if let Some(resp) = e.response() {
                let bytes = resp.to_bytes();
                // A 400 may be malformed only where it echoes the request.
                if let Err(e2) = sip::parse_datagram(bytes.clone())
                    && !sip::parse::is_echoed_header_fault(&e2.reason)
                {
                    panic!(
                        "the {} sent for `{}` does not parse: {e2}\n{}",
                        e.status,
                        e.reason,
                        String::from_utf8_lossy(&bytes)
                    );
                }
            }
        }
    }
}

/// What a proxy or UAS does with an accepted request must yield messages
/// that parse: a response echoing its headers, and the request with its top
/// Via stamped with the source address.
fn answer_and_stamp(m: &Message) {
    if m.is_request() {
        let mut resp = Message::response_to(m, 180, None);
        resp.set_to_tag("fz1");
        let bytes = resp.to_bytes();
        if let Err(e) = sip::parse_datagram(bytes.clone()) {
            panic!(
                "response_to output does not parse: {e}\n{}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
    let mut stamped = m.clone();
    stamped.stamp_received("[2001:db8::7]:5070".parse().expect("address"));
    let bytes = stamped.to_bytes();
    if let Err(e) = sip::parse_datagram(bytes.clone()) {
        panic!(
            "stamped message does not parse: {e}\n{}",
            String::from_utf8_lossy(&bytes)
        );
    }
}

/// Reads what the stack reads from an accepted message: none of it may panic.
fn touch(m: &Message) {
    let _ = (m.call_id(), m.cseq(), m.max_forwards(), m.expires());
    let _ = (m.from_tag(), m.to_tag(), m.request_uri_text(), m.reason());
    for via in m.vias().flatten() {
        let _ = (via.branch(), via.received(), via.rport());
    }
    for c in m.contacts() {
        let _ = c;
    }
    for h in m.headers() {
        let _ = (h.name, h.raw_name, h.value);
    }
}
