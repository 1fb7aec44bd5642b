//! INVITE transactions, client and server, and CANCEL, driven against each
//! other.

mod transaction_harness;

use std::time::Duration;

use sip::header::HeaderName;
use sip::transaction::{Event, Timer, TransportKind, TxError, TxKind};
use sip::{Message, Method};
use transaction_harness::*;

fn acks(net: &Net) -> Vec<(Duration, Message)> {
    net.wire
        .iter()
        .filter(|s| s.dir == Dir::ToUas && s.msg.method() == Some(&Method::Ack))
        .map(|s| (s.at, s.msg.clone()))
        .collect()
}

#[test]
fn ringing_then_busy_acked_by_the_client_transaction() {
    let mut net = Net::new(TransportKind::Udp);
    let tx = net.send(request("INVITE"));
    let (stx, invite) = net.new_request(0);
    net.respond(stx, answer(&invite, 180, "b0b"));
    net.respond(stx, answer(&invite, 486, "b0b"));
    assert_eq!(net.uac_responses(tx), [180, 486]);

    let acks = acks(&net);
    assert_eq!(acks.len(), 1);
    let ack = &acks[0].1;
    // §17.1.1.3: same Request-URI, Call-ID, From, top Via; To of the
    // response; CSeq number of the INVITE with method ACK.
    assert_eq!(ack.request_uri_text(), invite.request_uri_text());
    assert_eq!(ack.call_id(), invite.call_id());
    assert_eq!(
        ack.header(HeaderName::From),
        invite.header(HeaderName::From)
    );
    assert_eq!(
        ack.values(HeaderName::Via).collect::<Vec<_>>(),
        [invite.values(HeaderName::Via).next().expect("via")]
    );
    assert_eq!(ack.to_tag(), Some("b0b"));
    let cseq = ack.cseq().expect("cseq");
    assert_eq!(cseq.seq, invite.cseq().expect("cseq").seq);
    assert_eq!(cseq.method, Method::Ack);
    // The ACK matched the server transaction: not passed to the TU.
    assert!(
        !net.uas_events
            .iter()
            .any(|e| matches!(e, Event::AckFor2xx { .. }))
    );
    // Confirmed: Timer I (T4) then gone. Client: Timer D (32 s).
    net.run_until(ms(5_000));
    assert_eq!(net.uas.live_transactions(), 0);
    assert_eq!(net.uas.stats().completed(TxKind::ServerInvite), 1);
    assert_eq!(net.uac.live_transactions(), 1);
    net.run_until(ms(32_000));
    assert_eq!(net.uac.live_transactions(), 0);
    assert_eq!(net.uac.stats().completed(TxKind::ClientInvite), 1);
    // No 486 was ever re-sent: the ACK came at once.
    assert_eq!(net.uas.stats().retransmissions, 0);
}

#[test]
fn lost_ack_retransmitted_486_is_absorbed_and_acked_again() {
    let mut net = Net::new(TransportKind::Udp);
    let mut lost = false;
    net.drop = Box::new(move |dir, msg| {
        if dir == Dir::ToUas && msg.method() == Some(&Method::Ack) && !lost {
            lost = true;
            return true;
        }
        false
    });
    let tx = net.send(request("INVITE"));
    let (stx, invite) = net.new_request(0);
    net.respond(stx, answer(&invite, 486, "busy"));
    net.run_until(ms(1_000));
    // Timer G re-sent the 486 at T1; the client did not hand it to the TU
    // again but sent its ACK again, which got through this time.
    assert_eq!(net.uac_responses(tx), [486]);
    let acks = acks(&net);
    assert_eq!(
        acks.iter().map(|a| a.0).collect::<Vec<_>>(),
        [ms(0), ms(500)]
    );
    assert_eq!(acks[0].1.to_bytes(), acks[1].1.to_bytes(), "same ACK");
    assert_eq!(net.uas.stats().retransmissions, 1);
    assert_eq!(net.uac.stats().retransmissions, 1);
    // Confirmed now: no more 486s.
    net.run_until(ms(10_000));
    let finals = net
        .wire_labels(Dir::ToUac)
        .into_iter()
        .filter(|l| l.1 == "486")
        .count();
    assert_eq!(finals, 2);
}

#[test]
fn timer_g_backs_off_to_t2_and_timer_h_reports_the_missing_ack() {
    let mut net = Net::new(TransportKind::Udp);
    net.drop = Box::new(|dir, msg| dir == Dir::ToUas && msg.method() == Some(&Method::Ack));
    net.send(request("INVITE"));
    let (stx, invite) = net.new_request(0);
    net.respond(stx, answer(&invite, 603, "no"));
    net.run_until(ms(40_000));
    let sends: Vec<Duration> = net
        .wire_labels(Dir::ToUac)
        .into_iter()
        .filter(|l| l.1 == "603")
        .map(|l| l.0)
        .collect();
    let expected: Vec<Duration> = [
        0, 500, 1_500, 3_500, 7_500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500,
    ]
    .into_iter()
    .map(ms)
    .collect();
    assert_eq!(sends, expected);
    let timeout = net.uas_events.iter().find_map(|e| match e {
        Event::Timeout {
            tx,
            timer,
            response,
        } => Some((*tx, *timer, response.is_none())),
        _ => None,
    });
    assert_eq!(timeout, Some((stx, Timer::H, true)));
    assert_eq!(net.uas.stats().timed_out(TxKind::ServerInvite), 1);
    // Timer H is 64·T1.
    let terminated_at = net
        .wire_labels(Dir::ToUac)
        .last()
        .map(|l| l.0)
        .expect("sent");
    assert!(terminated_at < ms(32_000));
    assert_eq!(net.uas.live_transactions(), 0);
}

#[test]
fn two_hundred_goes_to_accepted_and_retransmissions_reach_the_tu() {
    let mut net = Net::new(TransportKind::Udp);
    let tx = net.send(request("INVITE"));
    let (stx, invite) = net.new_request(0);
    let ok = answer(&invite, 200, "dlg");
    net.respond(stx, ok.clone());
    assert_eq!(net.uac_responses(tx), [200]);
    // The UAS core retransmits its 2xx through the Accepted transaction;
    // the UAC's Accepted transaction passes each copy up (RFC 6026).
    net.now += ms(500);
    net.respond(stx, ok.clone());
    assert_eq!(net.uac_responses(tx), [200, 200]);
    // No ACK from the transaction for a 2xx: the TU sends it, on a new
    // branch, and the server side gives it to its TU.
    assert!(acks(&net).is_empty());
    let mut ack = request("ACK");
    ack.set_header(HeaderName::To, ok.header(HeaderName::To).expect("to"));
    ack.set_header(HeaderName::CallId, invite.call_id().expect("call-id"));
    ack.set_header(
        HeaderName::From,
        invite.header(HeaderName::From).expect("from"),
    );
    ack.prepend_header(
        HeaderName::Via,
        "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKack2xx",
    );
    net.uac.send_stateless(&ack, net.uas_peer());
    net.deliver();
    assert!(
        net.uas_events
            .iter()
            .any(|e| matches!(e, Event::AckFor2xx { msg, .. } if msg.to_tag() == Some("dlg")))
    );
    // A 4xx after the 2xx is refused.
    assert_eq!(
        net.uas.respond(stx, answer(&invite, 486, "dlg"), net.now),
        Err(TxError::AlreadyFinal)
    );
    // Timers L and M: 64·T1 after the 2xx.
    net.run_until(ms(31_999));
    assert_eq!(net.uac.live_transactions(), 1);
    assert_eq!(net.uas.live_transactions(), 1);
    net.run_until(ms(32_000));
    assert_eq!(net.uac.live_transactions(), 0);
    assert_eq!(net.uas.live_transactions(), 0);
    assert_eq!(net.uas.stats().retransmissions, 0, "2xx resent by the TU");
    // After Timer M, a late 2xx is stray.
    let late = net
        .wire
        .iter()
        .find(|s| s.msg.status() == Some(200))
        .map(|s| s.msg.clone())
        .expect("200");
    net.uac.receive(late, net.uas_peer(), net.now);
    assert_eq!(net.uac.stats().stray_responses, 1);
}

#[test]
fn hundred_trying_after_200_ms_when_the_tu_is_silent() {
    let mut net = Net::new(TransportKind::Udp);
    let tx = net.send(request("INVITE"));
    net.run_until(ms(199));
    assert!(net.wire_labels(Dir::ToUac).is_empty());
    net.run_until(ms(200));
    assert_eq!(net.wire_labels(Dir::ToUac), [(ms(200), "100".to_string())]);
    let trying = &net.wire[1].msg;
    assert_eq!(trying.to_tag(), None, "no tag on a 100");
    assert_eq!(net.uac_responses(tx), [100]);
    // The 100 stopped Timer A: no INVITE retransmission at 500 ms.
    net.run_until(ms(5_000));
    assert_eq!(net.wire_labels(Dir::ToUas).len(), 1);

    // A TU that answers in time suppresses the 100.
    let tx2 = net.send(request("INVITE"));
    let (stx2, invite2) = net.new_request(1);
    net.run_until(ms(5_150));
    net.respond(stx2, answer(&invite2, 180, "r"));
    net.run_until(ms(6_000));
    assert_eq!(net.uac_responses(tx2), [180]);
}

#[test]
fn timer_a_doubles_and_timer_b_times_out() {
    let mut net = Net::new(TransportKind::Udp);
    // The server is unreachable.
    net.drop = Box::new(|dir, _| dir == Dir::ToUas);
    let tx = net.send(request("INVITE"));
    net.run_until(ms(40_000));
    let sends: Vec<Duration> = net
        .wire_labels(Dir::ToUas)
        .into_iter()
        .map(|l| l.0)
        .collect();
    let expected: Vec<Duration> = [0, 500, 1_500, 3_500, 7_500, 15_500, 31_500]
        .into_iter()
        .map(ms)
        .collect();
    assert_eq!(sends, expected, "A doubles without the T2 cap");
    let timeout = net.uac_events.iter().find_map(|e| match e {
        Event::Timeout {
            tx: t,
            timer,
            response,
        } if *t == tx => Some((*timer, response.as_ref().and_then(|r| r.status()))),
        _ => None,
    });
    assert_eq!(timeout, Some((Timer::B, Some(408))));
    assert_eq!(net.uac.stats().timed_out(TxKind::ClientInvite), 1);
}

#[test]
fn invite_over_tcp_skips_retransmissions_and_wait_states() {
    let mut net = Net::new(TransportKind::Tcp);
    let tx = net.send(request("INVITE"));
    let (stx, invite) = net.new_request(0);
    net.run_until(ms(3_000));
    // Only the INVITE and the 100 Trying.
    assert_eq!(net.wire.len(), 2);
    net.respond(stx, answer(&invite, 480, "t"));
    // ACK sent, then Timer D = 0 and Timer I = 0 end both at once.
    assert_eq!(acks(&net).len(), 1);
    assert_eq!(net.uac_responses(tx), [100, 480]);
    assert_eq!(net.uac.live_transactions(), 0);
    assert_eq!(net.uas.live_transactions(), 0);
}

#[test]
fn cancel_is_answered_200_and_the_tu_sends_487() {
    let mut net = Net::new(TransportKind::Udp);
    let tx = net.send(request("INVITE"));
    // No provisional yet: the CANCEL must wait (§9.1).
    assert_eq!(net.uac.cancel(tx, net.now), Err(TxError::NoProvisionalYet));
    let (stx, invite) = net.new_request(0);
    net.respond(stx, answer(&invite, 180, "ring"));
    let ctx = net.uac.cancel(tx, net.now).expect("cancel");
    net.deliver();
    assert_eq!(net.uac.kind(ctx), Some(TxKind::ClientNonInvite));
    // Asking again does not send a second CANCEL.
    assert_eq!(net.uac.cancel(tx, net.now), Ok(ctx));

    let cancel = net
        .wire
        .iter()
        .find(|s| s.msg.method() == Some(&Method::Cancel))
        .map(|s| s.msg.clone())
        .expect("CANCEL sent");
    assert_eq!(
        cancel.top_via().expect("via").branch(),
        invite.top_via().expect("via").branch()
    );
    assert_eq!(cancel.cseq().map(|c| c.seq), invite.cseq().map(|c| c.seq));
    assert_eq!(cancel.request_uri_text(), invite.request_uri_text());

    // The layer answered the CANCEL (with the INVITE's To tag) and told
    // the TU which transaction it cancels.
    assert_eq!(net.uac_responses(ctx), [200]);
    let ok = net
        .wire
        .iter()
        .find(|s| {
            s.msg.status() == Some(200) && s.msg.cseq().map(|c| c.method) == Some(Method::Cancel)
        })
        .map(|s| s.msg.clone())
        .expect("200 to CANCEL");
    assert_eq!(ok.to_tag(), Some("ring"));
    assert!(
        net.uas_events
            .iter()
            .any(|e| matches!(e, Event::Cancelled { tx, .. } if *tx == stx))
    );
    // The CANCEL's own transaction is the layer's: the TU never sees it.
    assert_eq!(
        net.uas_events
            .iter()
            .filter(|e| matches!(e, Event::NewRequest { .. }))
            .count(),
        1
    );

    net.respond(stx, answer(&invite, 487, "ring"));
    assert_eq!(net.uac_responses(tx), [180, 487]);
    assert_eq!(acks(&net).len(), 1);
    net.run_until(ms(40_000));
    assert_eq!(net.uac.live_transactions(), 0);
    assert_eq!(net.uas.live_transactions(), 0);
    assert_eq!(net.uac.stats().timed_out(TxKind::ClientInvite), 0);
}

#[test]
fn cancel_after_the_final_response_changes_nothing() {
    let mut net = Net::new(TransportKind::Udp);
    let tx = net.send(request("INVITE"));
    let (stx, invite) = net.new_request(0);
    net.respond(stx, answer(&invite, 180, "x"));
    net.respond(stx, answer(&invite, 200, "x"));
    assert_eq!(net.uac.cancel(tx, net.now), Err(TxError::Completed));
}

#[test]
fn cancel_without_a_final_response_gives_up_after_64_t1() {
    let mut net = Net::new(TransportKind::Udp);
    let tx = net.send(request("INVITE"));
    let (stx, invite) = net.new_request(0);
    net.respond(stx, answer(&invite, 183, "x"));
    // The server's TU ignores the CANCEL.
    net.run_until(ms(1_000));
    net.uac.cancel(tx, net.now).expect("cancel");
    net.deliver();
    net.run_until(ms(1_000 + 31_999));
    assert!(net.uac.kind(tx).is_some());
    net.run_until(ms(1_000 + 32_000));
    assert!(net.uac.kind(tx).is_none());
    assert!(net.uac_events.iter().any(|e| matches!(
        e,
        Event::Timeout { tx: t, timer: Timer::Cancel, .. } if *t == tx
    )));
}

#[test]
fn cancel_matching_nothing_gets_481() {
    let mut net = Net::new(TransportKind::Udp);
    let mut cancel = request("CANCEL");
    cancel.prepend_header(
        HeaderName::Via,
        "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKnoinvite;rport",
    );
    let ctx = net.send(cancel.clone());
    assert_eq!(net.uac_responses(ctx), [481]);
    assert_eq!(net.uas.stats().unmatched_cancels, 1);
    assert!(net.uas_events.is_empty(), "{:?}", net.uas_events);

    // A CANCEL with the branch of a live INVITE but another sent-by is not
    // for that INVITE (§9.2).
    let tx = net.send(request("INVITE"));
    let (stx, invite) = net.new_request(0);
    net.respond(stx, answer(&invite, 180, "r"));
    let branch = invite
        .top_via()
        .expect("via")
        .branch()
        .expect("branch")
        .to_string();
    let mut other = request("CANCEL");
    other.prepend_header(
        HeaderName::Via,
        format!("SIP/2.0/UDP 127.0.0.9:5060;branch={branch}"),
    );
    net.uas.receive(other, net.uac_peer(), net.now);
    net.deliver();
    assert_eq!(net.uas.stats().unmatched_cancels, 2);
    assert!(
        !net.uas_events
            .iter()
            .any(|e| matches!(e, Event::Cancelled { .. }))
    );
    assert_eq!(net.uac_responses(tx), [180]);
}

#[test]
fn retransmitted_invite_is_answered_with_the_last_provisional() {
    let mut net = Net::new(TransportKind::Udp);
    // Lose the first 180.
    let mut lost = false;
    net.drop = Box::new(move |dir, msg| {
        if dir == Dir::ToUac && msg.status() == Some(180) && !lost {
            lost = true;
            return true;
        }
        false
    });
    let tx = net.send(request("INVITE"));
    let (stx, invite) = net.new_request(0);
    net.respond(stx, answer(&invite, 180, "r"));
    net.run_until(ms(600));
    assert_eq!(net.uac_responses(tx), [180]);
    assert_eq!(net.uas.stats().absorbed_requests, 1);
    assert_eq!(
        net.uas_events
            .iter()
            .filter(|e| matches!(e, Event::NewRequest { .. }))
            .count(),
        1
    );
}
