//! Non-INVITE transactions, client and server, driven against each other.

mod transaction_harness;

use std::time::Duration;

use sip::header::HeaderName;
use sip::transaction::{Config, Event, Timer, TransportKind, TxKind};
use transaction_harness::*;

#[test]
fn happy_path_over_udp() {
    let mut net = Net::new(TransportKind::Udp);
    let tx = net.send(request("OPTIONS"));
    let (stx, req) = net.new_request(0);
    assert_eq!(req.method().map(|m| m.as_str()), Some("OPTIONS"));
    let via = req.top_via().expect("via");
    assert!(via.has_rfc3261_branch(), "layer added a branch");
    assert_eq!(via.transport, "UDP");
    net.respond(stx, answer(&req, 200, "b1"));
    assert_eq!(net.uac_responses(tx), [200]);

    // Both sides wait out their timers: K (T4) on the client, J (64·T1) on
    // the server, absorbing late retransmissions meanwhile.
    assert_eq!(net.uac.live_transactions(), 1);
    net.run_until(ms(4_999));
    assert_eq!(net.uac.live_transactions(), 1);
    net.run_until(ms(5_000));
    assert_eq!(net.uac.live_transactions(), 0);
    assert!(net.uac_events.contains(&Event::Terminated { tx }));
    assert_eq!(net.uas.live_transactions(), 1);
    net.run_until(ms(32_000));
    assert_eq!(net.uas.live_transactions(), 0);
    assert!(net.uas_events.contains(&Event::Terminated { tx: stx }));

    let (c, s) = (net.uac.stats(), net.uas.stats());
    assert_eq!(c.created(TxKind::ClientNonInvite), 1);
    assert_eq!(c.completed(TxKind::ClientNonInvite), 1);
    assert_eq!(s.created(TxKind::ServerNonInvite), 1);
    assert_eq!(s.completed(TxKind::ServerNonInvite), 1);
    assert_eq!(c.retransmissions + s.retransmissions, 0);
    // One request, one response: nothing else crossed.
    assert_eq!(net.wire.len(), 2);
}

#[test]
fn timer_e_schedule_and_timer_f_timeout() {
    let mut net = Net::new(TransportKind::Udp);
    let tx = net.send(request("REGISTER"));
    // The server TU never answers.
    net.run_until(ms(40_000));
    let sends: Vec<Duration> = net
        .wire_labels(Dir::ToUas)
        .into_iter()
        .map(|(at, _)| at)
        .collect();
    let expected: Vec<Duration> = [
        0, 500, 1_500, 3_500, 7_500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500,
    ]
    .into_iter()
    .map(ms)
    .collect();
    assert_eq!(sends, expected, "E: 500 ms, 1 s, 2 s, then T2 = 4 s");
    assert_eq!(net.uac.stats().retransmissions, 10);
    assert_eq!(net.uas.stats().absorbed_requests, 10);

    let timeout = net
        .uac_events
        .iter()
        .find_map(|e| match e {
            Event::Timeout {
                tx: t,
                timer,
                response,
            } if *t == tx => Some((*timer, response.clone())),
            _ => None,
        })
        .expect("timeout event");
    assert_eq!(timeout.0, Timer::F);
    let resp = timeout.1.expect("a 408 for the TU");
    assert_eq!(resp.status(), Some(408));
    assert_eq!(
        resp.cseq().map(|c| c.method.to_string()).as_deref(),
        Some("REGISTER")
    );
    assert_eq!(net.uac.stats().timed_out(TxKind::ClientNonInvite), 1);
    assert_eq!(net.uac.live_transactions(), 0);
    // The server got only one NewRequest for all those copies.
    assert_eq!(
        net.uas_events
            .iter()
            .filter(|e| matches!(e, Event::NewRequest { .. }))
            .count(),
        1
    );
}

#[test]
fn timer_f_fires_at_64_t1_exactly() {
    let mut net = Net::new(TransportKind::Udp);
    net.send(request("OPTIONS"));
    net.run_until(ms(31_999));
    assert_eq!(net.uac.live_transactions(), 1);
    net.run_until(ms(32_000));
    assert_eq!(net.uac.live_transactions(), 0);
}

#[test]
fn provisional_moves_timer_e_to_t2() {
    let mut net = Net::new(TransportKind::Udp);
    let tx = net.send(request("SUBSCRIBE"));
    let (stx, req) = net.new_request(0);
    net.respond(stx, answer(&req, 100, ""));
    net.run_until(ms(10_000));
    let sends: Vec<(Duration, String)> = net.wire_labels(Dir::ToUas);
    let times: Vec<Duration> = sends.iter().map(|s| s.0).collect();
    assert_eq!(times, [ms(0), ms(500), ms(4_500), ms(8_500)]);
    // Each retransmission is answered with the last provisional.
    let answers: Vec<(Duration, String)> = net.wire_labels(Dir::ToUac);
    assert_eq!(answers.len(), 4);
    assert!(answers.iter().all(|a| a.1 == "100"));
    assert_eq!(net.uac_responses(tx), [100, 100, 100, 100]);
}

#[test]
fn tcp_has_no_retransmissions_and_no_wait_states() {
    let mut net = Net::new(TransportKind::Tcp);
    let tx = net.send(request("OPTIONS"));
    net.run_until(ms(20_000));
    assert_eq!(net.wire.len(), 1, "no retransmission over TCP");
    let (stx, req) = net.new_request(0);
    net.respond(stx, answer(&req, 200, "t"));
    assert_eq!(net.uac_responses(tx), [200]);
    // Timers J and K are zero on reliable transports.
    assert_eq!(net.uac.live_transactions(), 0);
    assert_eq!(net.uas.live_transactions(), 0);

    // And Timer F still guards a silent server.
    let tx2 = net.send(request("OPTIONS"));
    net.run_until(ms(60_000));
    assert_eq!(net.wire.len(), 3);
    assert!(
        net.uac_events
            .iter()
            .any(|e| matches!(e, Event::Timeout { tx, timer: Timer::F, .. } if *tx == tx2))
    );
    assert_eq!(net.uac.stats().retransmissions, 0);
}

#[test]
fn retransmitted_request_gets_the_final_response_again() {
    let mut net = Net::new(TransportKind::Udp);
    // Lose the first 200 only.
    let mut lost = false;
    net.drop = Box::new(move |dir, msg| {
        if dir == Dir::ToUac && msg.status() == Some(200) && !lost {
            lost = true;
            return true;
        }
        false
    });
    let tx = net.send(request("MESSAGE"));
    let (stx, req) = net.new_request(0);
    net.respond(stx, answer(&req, 200, "m"));
    assert!(net.uac_responses(tx).is_empty());
    net.run_until(ms(600));
    assert_eq!(net.uac_responses(tx), [200]);
    assert_eq!(net.uas.stats().absorbed_requests, 1);
    assert_eq!(net.uas.stats().retransmissions, 1);
    assert_eq!(
        net.uas_events
            .iter()
            .filter(|e| matches!(e, Event::NewRequest { .. }))
            .count(),
        1
    );
    // A duplicate final response in Completed does not reach the TU.
    let dup = net
        .wire
        .iter()
        .rev()
        .find(|s| s.dir == Dir::ToUac)
        .map(|s| s.msg.clone())
        .expect("200");
    net.uac.receive(dup, net.uas_peer(), net.now);
    net.deliver();
    assert_eq!(net.uac_responses(tx), [200]);
}

#[test]
fn stray_response_is_counted_and_dropped() {
    let mut net = Net::new(TransportKind::Udp);
    net.send(request("OPTIONS"));
    let (_, req) = net.new_request(0);
    let mut stray = answer(&req, 200, "x");
    stray.remove_first_value(HeaderName::Via);
    stray.prepend_header(
        HeaderName::Via,
        "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKnobodyknows",
    );
    let before = net.uac_events.len();
    net.uac.receive(stray, net.uas_peer(), net.now);
    net.deliver();
    assert_eq!(net.uac.stats().stray_responses, 1);
    assert_eq!(net.uac_events.len(), before);

    // The right branch but another method is stray too (§17.1.3).
    let mut wrong_method = answer(&req, 200, "x");
    wrong_method.set_header(HeaderName::CSeq, "1 INFO");
    net.uac.receive(wrong_method, net.uas_peer(), net.now);
    assert_eq!(net.uac.stats().stray_responses, 2);
}

#[test]
fn merged_request_gets_482() {
    let mut net = Net::new(TransportKind::Udp);
    let first = request("MESSAGE");
    // The same request arriving by a second path: same From tag, Call-ID
    // and CSeq, different branch.
    let second = first.clone();
    let tx1 = net.send(first);
    let tx2 = net.send(second);
    assert_eq!(
        net.uas_events
            .iter()
            .filter(|e| matches!(e, Event::NewRequest { .. }))
            .count(),
        1
    );
    assert_eq!(net.uac_responses(tx2), [482]);
    assert!(net.uac_responses(tx1).is_empty());
    assert_eq!(net.uas.stats().merged_requests, 1);

    // A request with a To tag is in a dialog and never merged.
    let mut in_dialog = request("INFO");
    in_dialog.set_to_tag("dlg");
    let copy = in_dialog.clone();
    net.send(in_dialog);
    net.send(copy);
    assert_eq!(net.uas.stats().merged_requests, 1);
}

#[test]
fn overload_answers_503_with_retry_after() {
    let uas = Config {
        max_transactions: 2,
        retry_after_secs: 7,
        ..Config::default()
    };
    let mut net = Net::with_configs(TransportKind::Udp, uac_config(), uas);
    let a = net.send(request("OPTIONS"));
    let b = net.send(request("OPTIONS"));
    let c = net.send(request("OPTIONS"));
    assert_eq!(net.uas.live_transactions(), 2);
    assert_eq!(net.uac_responses(c), [503]);
    assert!(net.uac_responses(a).is_empty() && net.uac_responses(b).is_empty());
    let resp = net
        .wire
        .iter()
        .find(|s| s.msg.status() == Some(503))
        .map(|s| s.msg.clone())
        .expect("503");
    assert_eq!(resp.header(HeaderName::RetryAfter), Some("7"));
    assert!(resp.to_tag().is_some());
    assert_eq!(net.uas.stats().overload_rejections, 1);

    // Room again once a transaction ends.
    let (stx, req) = net.new_request(0);
    net.uas
        .respond(stx, answer(&req, 200, "o"), net.now)
        .expect("respond");
    net.run_until(ms(33_000));
    let d = net.send(request("OPTIONS"));
    assert!(net.uac_responses(d).is_empty());
    assert_eq!(net.uas.live_transactions(), 2);
}

#[test]
fn timer_queue_stays_proportional_to_live_transactions() {
    // Over TCP every transaction ends at once, leaving its Timer F entry
    // stale in the queue; compaction must keep those from piling up.
    let mut net = Net::new(TransportKind::Tcp);
    for _ in 0..20_000 {
        net.send(request("OPTIONS"));
        let (stx, req) = net
            .uas_events
            .drain(..)
            .find_map(|e| match e {
                Event::NewRequest { tx, msg, .. } => Some((tx, msg)),
                _ => None,
            })
            .expect("request");
        net.respond(stx, answer(&req, 200, "q"));
        net.uac_events.clear();
        net.wire.clear();
    }
    assert_eq!(net.uac.live_transactions(), 0);
    assert!(
        net.uac.timer_entries() <= 4096 + 1,
        "{}",
        net.uac.timer_entries()
    );
    assert_eq!(net.uac.stats().completed(TxKind::ClientNonInvite), 20_000);
}

#[test]
fn tu_errors() {
    let mut net = Net::new(TransportKind::Udp);
    let tx = net.send(request("OPTIONS"));
    // A client transaction cannot be answered; ACK is not a transaction.
    let (stx, req) = net.new_request(0);
    assert!(
        net.uac
            .respond(tx, answer(&req, 200, "e"), net.now)
            .is_err()
    );
    assert!(
        net.uac
            .send_request(request("ACK"), net.uas_peer(), net.now)
            .is_err()
    );
    net.respond(stx, answer(&req, 200, "e"));
    // A second final response is refused.
    assert!(
        net.uas
            .respond(stx, answer(&req, 500, "e"), net.now)
            .is_err()
    );
    // A transport error ends a client transaction with an event.
    let tx2 = net.send(request("OPTIONS"));
    net.uac.transport_error(tx2);
    net.deliver();
    assert!(net.uac_events.contains(&Event::TransportError { tx: tx2 }));
    assert!(net.uac.kind(tx2).is_none());
}
