//! Whole calls through an in-process brain: two user agents on UDP, a
//! fake SBC on the control protocol, CDRs in a fresh SQLite store.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::*;
use sip::dialog::Dialog;
use sip::{HeaderName, Message, Method};
use store::{Disposition, HangupSide};

const A_MEDIA: &str = "192.0.2.10";
const B_MEDIA: &str = "192.0.2.20";

/// Every test gets this long, end to end.
async fn bounded(test: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(30), test)
        .await
        .expect("test timed out");
}

fn in_plan(port: u16) -> bool {
    (FIRST_PORT..=LAST_PORT).contains(&port)
}

/// An answered call alice → bob: (alice's dialog, bob's dialog).
struct Answered {
    a: Dialog,
    b: Dialog,
    port_a: u16,
    port_b: u16,
}

async fn answer_call(w: &World) -> Answered {
    let inv = invite(&w.alice, "bob", Some(&sdp(A_MEDIA, 5004, "sendrecv")));
    w.alice.send(&inv).await;

    let inv_b = w.bob.expect_request(Method::Invite).await;
    let (ip_b, port_b) = media_of(&inv_b);
    assert_eq!(ip_b, IpAddr::from(SBC_IP), "offer to B names the SBC");
    assert!(in_plan(port_b), "port {port_b} is in the SBC's plan");
    assert_ne!(inv_b.call_id(), inv.call_id(), "leg B has its own Call-ID");
    assert_ne!(inv_b.from_tag(), inv.from_tag());
    assert_eq!(inv_b.max_forwards(), Some(69));
    assert_eq!(
        inv_b.request_uri().map(|u| u.to_string()),
        Some(BOB_CONTACT.to_string()),
        "the binding's contact is the Request-URI (sent to its source address)"
    );
    assert!(!String::from_utf8_lossy(inv_b.body()).contains(A_MEDIA));

    let mut b = callee_dialog(&w.bob, &inv_b);
    w.bob.send(&b.response(&inv_b, 180, None)).await;
    w.alice.expect_status(180).await;
    w.bob
        .send(&ok_with(
            &mut b,
            &inv_b,
            Some(&sdp(B_MEDIA, 6004, "sendrecv")),
        ))
        .await;
    let ack_b = w.bob.expect_request(Method::Ack).await;
    b.on_request(&ack_b).expect("ACK in leg B");

    let ok = w.alice.expect_status(200).await;
    let (ip_a, port_a) = media_of(&ok);
    assert_eq!(ip_a, IpAddr::from(SBC_IP), "answer to A names the SBC");
    assert!(in_plan(port_a));
    assert_ne!(port_a, port_b, "each leg has its own SBC port");
    assert!(!String::from_utf8_lossy(ok.body()).contains(B_MEDIA));
    let a = Dialog::from_uac(&inv, &ok).expect("alice's dialog");
    let mut ack = a.ack_for(1);
    ack.prepend_header(HeaderName::Via, w.alice.via());
    w.alice.send(&ack).await;
    Answered {
        a,
        b,
        port_a,
        port_b,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_call_anchors_media_and_writes_a_cdr() {
    bounded(async {
        let w = world(Options::default()).await;
        let mut call = answer_call(&w).await;

        // The SBC holds both legs, each with its own port and the remote
        // its side announced.
        let last = w.applied().pop().expect("ApplyCall");
        assert_eq!(last.legs.len(), 2);
        let (la, lb) = (&last.legs[0], &last.legs[1]);
        assert_eq!(la.local.rtp_port, call.port_a);
        assert_eq!(lb.local.rtp_port, call.port_b);
        assert_eq!(
            la.expected_remote,
            Some(format!("{A_MEDIA}:5004").parse().expect("addr"))
        );
        assert_eq!(
            lb.expected_remote,
            Some(format!("{B_MEDIA}:6004").parse().expect("addr"))
        );
        assert_eq!(la.relay_to, Some(lb.leg_id));
        assert_eq!(lb.relay_to, Some(la.leg_id));
        assert_eq!(la.telephone_event_pt, Some(101));
        assert!(w.applied().windows(2).all(|p| p[0].version < p[1].version));
        assert_eq!(w.brain().calls().len(), 1);

        // Bob hangs up.
        let bye = w
            .bob
            .send_request(call.b.request(Method::Bye).expect("BYE"))
            .await;
        let ok = w.bob.expect_status(200).await;
        assert_eq!(ok.cseq(), bye.cseq());
        let bye_a = w.alice.expect_request(Method::Bye).await;
        call.a.on_request(&bye_a).expect("BYE in alice's dialog");
        w.alice.send(&call.a.response(&bye_a, 200, None)).await;

        let cdr = w.cdrs(1).await.remove(0);
        assert_eq!(cdr.disposition, Disposition::Answered);
        assert_eq!(cdr.hangup_side, HangupSide::Callee);
        assert_eq!(cdr.sip_code, 200);
        assert_eq!((cdr.caller.as_str(), cdr.callee.as_str()), ("alice", "bob"));
        assert!(cdr.answer_at.is_some());
        let leg_a = cdr.leg_a.expect("caller's media stats");
        assert_eq!(leg_a.packets_received, 100);
        assert_eq!(leg_a.mos, Some(4.3));
        assert_eq!(w.released(), 1);
        assert!(
            w.brain()
                .metrics_text()
                .contains("disposition=\"answered\"")
        );
        for _ in 0..50 {
            if w.brain().calls().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(w.brain().calls().is_empty(), "the call is gone");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_callee_gets_486_to_the_caller() {
    bounded(async {
        let w = world(Options::default()).await;
        let inv = invite(&w.alice, "bob", Some(&sdp(A_MEDIA, 5004, "sendrecv")));
        w.alice.send(&inv).await;
        let inv_b = w.bob.expect_request(Method::Invite).await;
        let mut busy = Message::response_to(&inv_b, 486, None);
        busy.set_to_tag("busy-b");
        w.bob.send(&busy).await;
        // The brain's transaction ACKs the 486 itself.
        w.bob.expect_request(Method::Ack).await;
        let resp = w.alice.expect_status(486).await;
        assert_eq!(resp.call_id(), inv.call_id());
        let cdr = w.cdrs(1).await.remove(0);
        assert_eq!(cdr.disposition, Disposition::Busy);
        assert_eq!(cdr.sip_code, 486);
        assert_eq!(cdr.hangup_side, HangupSide::Callee);
        assert_eq!(w.released(), 1, "the SBC was told to drop the call");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_while_ringing() {
    bounded(async {
        let w = world(Options::default()).await;
        let inv = invite(&w.alice, "bob", Some(&sdp(A_MEDIA, 5004, "sendrecv")));
        w.alice.send(&inv).await;
        let inv_b = w.bob.expect_request(Method::Invite).await;
        let mut b = callee_dialog(&w.bob, &inv_b);
        let (_, port_b) = media_of(&inv_b);
        // Early media: the 183's SDP reaches alice pointed at the SBC.
        let mut progress = b.response(&inv_b, 183, None);
        progress.set_body(sdp(B_MEDIA, 6004, "sendrecv"), Some("application/sdp"));
        w.bob.send(&progress).await;
        let early = w.alice.expect_status(183).await;
        let (ip, port_a) = media_of(&early);
        assert_eq!(ip, IpAddr::from(SBC_IP));
        assert!(in_plan(port_a) && port_a != port_b);
        let last = w.applied().pop().expect("ApplyCall");
        assert_eq!(
            last.legs[1].expected_remote,
            Some(format!("{B_MEDIA}:6004").parse().expect("addr"))
        );

        // CANCEL: same Via branch, Call-ID, From, To, CSeq number.
        let mut cancel = Message::request(Method::Cancel, inv.request_uri().expect("uri").clone());
        for name in [
            HeaderName::Via,
            HeaderName::From,
            HeaderName::To,
            HeaderName::CallId,
        ] {
            cancel.push_header(name, inv.header(name).expect("header"));
        }
        cancel.push_header(HeaderName::MaxForwards, "70");
        cancel.push_header(HeaderName::CSeq, "1 CANCEL");
        cancel.set_body(bytes::Bytes::new(), None);
        w.alice.send(&cancel).await;
        w.alice
            .expect("200 to CANCEL", |m| {
                m.status() == Some(200) && m.cseq().is_some_and(|c| c.method == Method::Cancel)
            })
            .await;
        w.alice.expect_status(487).await;

        let cancel_b = w.bob.expect_request(Method::Cancel).await;
        w.bob
            .send(&Message::response_to(&cancel_b, 200, None))
            .await;
        w.bob.send(&b.response(&inv_b, 487, None)).await;
        w.bob.expect_request(Method::Ack).await;

        let cdr = w.cdrs(1).await.remove(0);
        assert_eq!(cdr.disposition, Disposition::Cancelled);
        assert_eq!(cdr.sip_code, 487);
        assert_eq!(cdr.hangup_side, HangupSide::Caller);
        assert!(cdr.answer_at.is_none());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_offline_and_hopless_calls_are_refused() {
    bounded(async {
        let w = world(Options::default()).await;
        let offer = sdp(A_MEDIA, 5004, "sendrecv");
        w.alice
            .send(&invite(&w.alice, "nobody", Some(&offer)))
            .await;
        w.alice.expect_status(404).await;
        w.alice.send(&invite(&w.alice, "carol", Some(&offer))).await;
        w.alice.expect_status(480).await;
        // By number: 1003 is carol.
        w.alice.send(&invite(&w.alice, "1003", Some(&offer))).await;
        w.alice.expect_status(480).await;

        let mut hopless = invite(&w.alice, "bob", Some(&offer));
        hopless.set_header(HeaderName::MaxForwards, "0");
        w.alice.send(&hopless).await;
        w.alice.expect_status(483).await;

        let cdrs = w.cdrs(3).await;
        let mut seen: Vec<(u16, Disposition)> =
            cdrs.iter().map(|c| (c.sip_code, c.disposition)).collect();
        seen.sort_by_key(|s| s.0);
        assert_eq!(
            seen,
            vec![
                (404, Disposition::Rejected),
                (480, Disposition::NoAnswer),
                (480, Disposition::NoAnswer)
            ]
        );
        w.bob
            .expect_silence(Duration::from_millis(200), |_| false)
            .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_sbc_means_503() {
    bounded(async {
        let w = world(Options {
            sbc: false,
            ..Options::default()
        })
        .await;
        w.alice
            .send(&invite(
                &w.alice,
                "bob",
                Some(&sdp(A_MEDIA, 5004, "sendrecv")),
            ))
            .await;
        w.alice.expect_status(503).await;
        let cdr = w.cdrs(1).await.remove(0);
        assert_eq!(cdr.disposition, Disposition::Failed);
        assert_eq!(cdr.sip_code, 503);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reinvite_hold_is_relayed_with_sdp_rewritten() {
    bounded(async {
        let w = world(Options::default()).await;
        let mut call = answer_call(&w).await;
        let versions = w.applied().len();

        let hold = sdp(A_MEDIA, 5004, "sendonly");
        let reinv = call
            .a
            .request_with_body(Method::Invite, "application/sdp", hold)
            .expect("re-INVITE");
        let reinv = w.alice.send_request(reinv).await;

        let reinv_b = w.bob.expect_request(Method::Invite).await;
        call.b.on_request(&reinv_b).expect("re-INVITE in leg B");
        let offer = body_sdp(&reinv_b);
        assert!(offer.is_on_hold(0), "hold reaches bob");
        assert_eq!(media_of(&reinv_b), (IpAddr::from(SBC_IP), call.port_b));
        w.bob
            .send(&ok_with(
                &mut call.b,
                &reinv_b,
                Some(&sdp(B_MEDIA, 6004, "recvonly")),
            ))
            .await;
        w.bob.expect_request(Method::Ack).await;

        let ok = w
            .alice
            .expect("200 to re-INVITE", |m| {
                m.status() == Some(200) && m.cseq() == reinv.cseq()
            })
            .await;
        assert_eq!(media_of(&ok), (IpAddr::from(SBC_IP), call.port_a));
        assert!(String::from_utf8_lossy(ok.body()).contains("a=recvonly"));
        call.a.on_response(&ok).expect("200 in alice's dialog");
        let seq = reinv.cseq().expect("cseq").seq;
        let mut ack = call.a.ack_for(seq);
        ack.prepend_header(HeaderName::Via, w.alice.via());
        w.alice.send(&ack).await;
        assert!(w.applied().len() > versions, "the SBC saw the new state");

        // Alice hangs up.
        w.alice
            .send_request(call.a.request(Method::Bye).expect("BYE"))
            .await;
        w.alice.expect_status(200).await;
        let bye_b = w.bob.expect_request(Method::Bye).await;
        w.bob.send(&call.b.response(&bye_b, 200, None)).await;
        let cdr = w.cdrs(1).await.remove(0);
        assert_eq!(cdr.hangup_side, HangupSide::Caller);
        assert_eq!(cdr.disposition, Disposition::Answered);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_offer_goes_through_the_acks() {
    bounded(async {
        let w = world(Options::default()).await;
        let inv = invite(&w.alice, "bob", None);
        w.alice.send(&inv).await;
        let inv_b = w.bob.expect_request(Method::Invite).await;
        assert!(inv_b.body().is_empty(), "no offer to B either");
        let mut b = callee_dialog(&w.bob, &inv_b);
        w.bob
            .send(&ok_with(
                &mut b,
                &inv_b,
                Some(&sdp(B_MEDIA, 6004, "sendrecv")),
            ))
            .await;

        let ok = w.alice.expect_status(200).await;
        let (ip, port_a) = media_of(&ok);
        assert_eq!(ip, IpAddr::from(SBC_IP));
        assert!(in_plan(port_a));
        let a = Dialog::from_uac(&inv, &ok).expect("dialog");
        let mut ack = a.ack_for(1);
        ack.set_body(sdp(A_MEDIA, 5004, "sendrecv"), Some("application/sdp"));
        ack.prepend_header(HeaderName::Via, w.alice.via());
        w.alice.send(&ack).await;

        let ack_b = w.bob.expect_request(Method::Ack).await;
        let (ip, port_b) = media_of(&ack_b);
        assert_eq!(
            ip,
            IpAddr::from(SBC_IP),
            "the answer in B's ACK names the SBC"
        );
        assert!(in_plan(port_b) && port_b != port_a);
        let last = w.applied().pop().expect("ApplyCall");
        assert_eq!(
            last.legs[0].expected_remote,
            Some(format!("{A_MEDIA}:5004").parse().expect("addr"))
        );
        assert_eq!(
            last.legs[1].expected_remote,
            Some(format!("{B_MEDIA}:6004").parse().expect("addr"))
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_call_is_cancelled_after_the_timeout() {
    bounded(async {
        let w = world(Options {
            no_answer: Duration::from_millis(600),
            ..Options::default()
        })
        .await;
        w.alice
            .send(&invite(
                &w.alice,
                "bob",
                Some(&sdp(A_MEDIA, 5004, "sendrecv")),
            ))
            .await;
        let inv_b = w.bob.expect_request(Method::Invite).await;
        let mut b = callee_dialog(&w.bob, &inv_b);
        w.bob.send(&b.response(&inv_b, 180, None)).await;
        w.alice.expect_status(180).await;
        w.alice.expect_status(480).await;
        let cancel = w.bob.expect_request(Method::Cancel).await;
        w.bob.send(&Message::response_to(&cancel, 200, None)).await;
        w.bob.send(&b.response(&inv_b, 487, None)).await;
        let cdr = w.cdrs(1).await.remove(0);
        assert_eq!(cdr.disposition, Disposition::NoAnswer);
        assert_eq!(cdr.hangup_side, HangupSide::System);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_flood_gets_503_with_retry_after() {
    bounded(async {
        let w = world(Options::default()).await;
        // Burst of 5 allowed per source; the rest are refused at once.
        for _ in 0..8 {
            w.alice.send(&invite(&w.alice, "nobody", None)).await;
        }
        let refused = w.alice.expect_status(503).await;
        assert_eq!(refused.header(HeaderName::RetryAfter), Some("7"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_is_relayed_in_the_dialog() {
    bounded(async {
        let w = world(Options::default()).await;
        let mut call = answer_call(&w).await;
        let info = call
            .a
            .request_with_body(
                Method::Info,
                "application/dtmf-relay",
                "Signal=5\r\nDuration=160\r\n",
            )
            .expect("INFO");
        let info = w.alice.send_request(info).await;
        let info_b = w.bob.expect_request(Method::Info).await;
        assert_eq!(info_b.body(), info.body());
        call.b.on_request(&info_b).expect("INFO in leg B");
        w.bob.send(&call.b.response(&info_b, 200, None)).await;
        let ok = w.alice.expect_status(200).await;
        assert_eq!(ok.cseq(), info.cseq());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_that_comes_back_is_a_loop() {
    bounded(async {
        let w = world(Options::default()).await;
        // Bob's binding points at the brain itself: leg B comes straight back.
        let brain = w
            .brain()
            .sip_addr(sip_transport::Transport::Udp)
            .expect("udp");
        let now = store::now_ms();
        w.store
            .remove_all_bindings(w.bob_sub.id)
            .await
            .expect("unbind");
        w.store
            .upsert_binding(&store::NewBinding {
                subscriber_id: w.bob_sub.id,
                contact: &format!("sip:bob@{brain}"),
                transport: "udp",
                source: brain,
                flow_token: None,
                expires_at: now + 60_000,
                call_id: "reg-loop",
                cseq: 1,
                q_milli: None,
                instance_id: None,
                reg_id: None,
                user_agent: None,
                now,
            })
            .await
            .expect("binding");
        w.alice
            .send(&invite(
                &w.alice,
                "bob",
                Some(&sdp(A_MEDIA, 5004, "sendrecv")),
            ))
            .await;
        w.alice.expect_status(482).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_sbc_is_noticed_and_its_calls_marked() {
    bounded(async {
        let mut w = world(Options::default()).await;
        let _call = answer_call(&w).await;
        assert!(w.brain().calls().iter().all(|c| c.media_alive));
        // The SBC goes away.
        w.sbc_events = None;
        let mut dead = false;
        for _ in 0..100 {
            if w.brain().nodes().iter().all(|n| !n.alive) {
                dead = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(dead, "the SBC was declared dead");
        let calls = w.brain().calls();
        assert_eq!(calls.len(), 1);
        assert!(!calls[0].media_alive, "its call is marked");
        assert!(
            w.brain()
                .metrics_text()
                .contains("tandem_nodes_lost_total 1")
        );
        // No SBC left: new calls are refused.
        w.alice
            .send(&invite(
                &w.alice,
                "bob",
                Some(&sdp(A_MEDIA, 5004, "sendrecv")),
            ))
            .await;
        w.alice.expect_status(503).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_200_is_resent_until_the_caller_acks() {
    bounded(async {
        let w = world(Options::default()).await;
        let inv = invite(&w.alice, "bob", Some(&sdp(A_MEDIA, 5004, "sendrecv")));
        w.alice.send(&inv).await;
        let inv_b = w.bob.expect_request(Method::Invite).await;
        let mut b = callee_dialog(&w.bob, &inv_b);
        w.bob
            .send(&ok_with(
                &mut b,
                &inv_b,
                Some(&sdp(B_MEDIA, 6004, "sendrecv")),
            ))
            .await;
        let first = w.alice.expect_status(200).await;
        // No ACK yet: the same 200 comes again after T1.
        let again = w.alice.expect_status(200).await;
        assert_eq!(again.to_bytes(), first.to_bytes());
        let a = Dialog::from_uac(&inv, &first).expect("dialog");
        let mut ack = a.ack_for(1);
        ack.prepend_header(HeaderName::Via, w.alice.via());
        w.alice.send(&ack).await;
        // Acknowledged: no more 200s.
        w.alice
            .expect_silence(Duration::from_millis(1200), |m| m.status() != Some(200))
            .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sbc_that_fills_its_slice_is_given_the_next() {
    bounded(async {
        // The plan is two slices of 100 ports (50 RTP/RTCP pairs, 25 calls
        // each); the SBC starts with one.
        let w = world(Options::default()).await;
        let ranges_assigned = |w: &World| -> Vec<usize> {
            w.sbc
                .lock()
                .expect("lock")
                .iter()
                .filter_map(|r| match r {
                    proto::message::RequestBody::AssignRanges { ranges } => Some(ranges.len()),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(ranges_assigned(&w), vec![1]);
        // 50 calls ring at once (bob never answers): all get media ports.
        for _ in 0..50 {
            let inv = invite(&w.alice, "bob", Some(&sdp(A_MEDIA, 5004, "sendrecv")));
            w.alice.send(&inv).await;
            let inv_b = w.bob.expect_request(Method::Invite).await;
            let (_, port) = media_of(&inv_b);
            assert!(in_plan(port));
            // Under the test world's flood limit (50/s, burst 5).
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(ranges_assigned(&w), vec![1, 2], "second slice handed over");
        // The 51st finds every port in use and no slice left.
        let inv = invite(&w.alice, "bob", Some(&sdp(A_MEDIA, 5004, "sendrecv")));
        w.alice.send(&inv).await;
        let refused = w.alice.expect_status(503).await;
        assert_eq!(refused.call_id(), inv.call_id());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callee_that_never_answers_times_out_with_408() {
    bounded(async {
        // Timer B is 64·T1: 3.2 s here, far sooner than the no-answer time.
        let w = world(Options {
            t1: Duration::from_millis(50),
            no_answer: Duration::from_secs(25),
            ..Options::default()
        })
        .await;
        let started = std::time::Instant::now();
        w.alice
            .send(&invite(
                &w.alice,
                "bob",
                Some(&sdp(A_MEDIA, 5004, "sendrecv")),
            ))
            .await;
        // Bob's phone is gone: his socket takes the INVITEs and says nothing.
        let final_resp = w
            .alice
            .expect_within("a final response", Duration::from_secs(8), |m| {
                m.status().is_some_and(|c| c >= 200)
            })
            .await;
        assert_eq!(final_resp.status(), Some(408), "{final_resp}");
        assert!(started.elapsed() < Duration::from_secs(8));
        let cdr = w.cdrs(1).await.remove(0);
        assert_eq!(cdr.disposition, Disposition::NoAnswer);
        assert_eq!(w.released(), 1, "the call's media ports were released");
        assert!(w.brain().calls().is_empty(), "no call left ringing");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_callee_is_given_up_long_before_timer_b() {
    bounded(async {
        // Real timers (Timer B would be 32 s); the callee may stay silent 1 s.
        let w = world(Options {
            no_response: Duration::from_secs(1),
            ..Options::default()
        })
        .await;
        let started = std::time::Instant::now();
        w.alice
            .send(&invite(
                &w.alice,
                "bob",
                Some(&sdp(A_MEDIA, 5004, "sendrecv")),
            ))
            .await;
        let inv_b = w.bob.expect_request(Method::Invite).await;
        let final_resp = w
            .alice
            .expect("a final response", |m| m.status().is_some_and(|c| c >= 200))
            .await;
        assert_eq!(final_resp.status(), Some(408), "{final_resp}");
        assert!(started.elapsed() < Duration::from_secs(3));
        let cdr = w.cdrs(1).await.remove(0);
        assert_eq!(cdr.disposition, Disposition::NoAnswer);
        assert_eq!(cdr.sip_code, 408);
        assert_eq!(w.released(), 1, "the call's media ports were released");

        // The phone wakes up and rings after all: the brain cancels it.
        let mut b = callee_dialog(&w.bob, &inv_b);
        w.bob.send(&b.response(&inv_b, 180, None)).await;
        let cancel = w.bob.expect_request(Method::Cancel).await;
        w.bob.send(&Message::response_to(&cancel, 200, None)).await;
        w.bob.send(&b.response(&inv_b, 487, None)).await;
        w.bob.expect_request(Method::Ack).await;
        w.alice
            .expect_silence(Duration::from_millis(300), |m| m.status() != Some(180))
            .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_banned_for_wrong_passwords_still_gets_a_final_answer() {
    bounded(async {
        let w = world(Options {
            authenticate: true,
            guard: sip_transport::guard::GuardConfig {
                offences_per_sec: 0.001,
                burst: 2.0,
                ban: Duration::from_secs(42),
                ..Default::default()
            },
            ..Options::default()
        })
        .await;
        let offer = sdp(A_MEDIA, 5004, "sendrecv");
        let first = invite(&w.alice, "bob", Some(&offer));
        w.alice.send(&first).await;
        let challenge = w.alice.expect_status(407).await;
        let challenge = challenge
            .header_lines(HeaderName::ProxyAuthenticate)
            .find_map(|v| sip::auth::Challenge::parse(v).ok())
            .expect("a challenge");
        let uri = format!("sip:bob@{DOMAIN}");
        // Wrong passwords: the budget of 2 is answered 403, the offence
        // that spends it gets 503 with the ban time as Retry-After.
        let mut codes = Vec::new();
        for nc in 1..=3 {
            let mut inv = invite(&w.alice, "bob", Some(&offer));
            let creds =
                sip::auth::respond(&challenge, "alice", "wrong", "INVITE", &uri, None, "cn", nc)
                    .expect("credentials");
            inv.push_header(HeaderName::ProxyAuthorization, creds.to_string());
            w.alice.send(&inv).await;
            let resp = w
                .alice
                .expect("a final response", |m| {
                    m.status().is_some_and(|c| c >= 200) && m.call_id() == inv.call_id()
                })
                .await;
            if resp.status() == Some(503) {
                assert_eq!(resp.header(HeaderName::RetryAfter), Some("42"));
            }
            codes.push(resp.status());
        }
        assert_eq!(codes, vec![Some(403), Some(403), Some(503)]);
        // Banned: nothing more is answered, nothing rings.
        // (The earlier refusals are retransmitted until ACKed; that is fine.)
        let banned = invite(&w.alice, "bob", Some(&offer));
        w.alice.send(&banned).await;
        w.alice
            .expect_silence(Duration::from_millis(500), |m| {
                m.call_id() != banned.call_id()
            })
            .await;
        w.bob
            .expect_silence(Duration::from_millis(100), |_| false)
            .await;
    })
    .await;
}

/// A second phone of bob's, registered (behind NAT) from its own socket.
async fn second_phone(w: &World, q_milli: Option<u16>) -> Ua {
    let phone = Ua::new("bob", w.bob.brain).await;
    let now = store::now_ms();
    w.store
        .upsert_binding(&store::NewBinding {
            subscriber_id: w.bob_sub.id,
            contact: "sip:bob@192.0.2.98:5062",
            transport: "udp",
            source: phone.addr,
            flow_token: None,
            expires_at: now + 3_600_000,
            call_id: "reg-bob-2",
            cseq: 1,
            q_milli,
            instance_id: None,
            reg_id: None,
            user_agent: None,
            now,
        })
        .await
        .expect("binding");
    phone
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_binding_rings_and_the_first_answer_wins() {
    bounded(async {
        let w = world(Options::default()).await;
        // The desk phone has the lower q: it rings all the same.
        let mobile = second_phone(&w, Some(500)).await;
        let inv = invite(&w.alice, "bob", Some(&sdp(A_MEDIA, 5004, "sendrecv")));
        w.alice.send(&inv).await;
        let inv_desk = w.bob.expect_request(Method::Invite).await;
        let inv_mobile = mobile.expect_request(Method::Invite).await;
        assert_eq!(inv_mobile.call_id(), inv_desk.call_id());
        assert_eq!(
            inv_mobile.request_uri().map(|u| u.to_string()).as_deref(),
            Some("sip:bob@192.0.2.98:5062")
        );
        assert_eq!(media_of(&inv_mobile), media_of(&inv_desk));

        let mut desk = callee_dialog(&w.bob, &inv_desk);
        w.bob.send(&desk.response(&inv_desk, 180, None)).await;
        w.alice.expect_status(180).await;
        let mut mob = callee_dialog(&mobile, &inv_mobile);
        mobile.send(&mob.response(&inv_mobile, 180, None)).await;
        mobile
            .send(&ok_with(
                &mut mob,
                &inv_mobile,
                Some(&sdp(B_MEDIA, 6006, "sendrecv")),
            ))
            .await;
        mobile.expect_request(Method::Ack).await;
        let ok = w.alice.expect_status(200).await;
        assert_eq!(media_of(&ok).0, IpAddr::from(SBC_IP));
        // The desk phone stops ringing.
        let cancel = w.bob.expect_request(Method::Cancel).await;
        w.bob.send(&Message::response_to(&cancel, 200, None)).await;
        w.bob.send(&desk.response(&inv_desk, 487, None)).await;
        w.bob.expect_request(Method::Ack).await;
        let last = w.applied().pop().expect("ApplyCall");
        assert_eq!(
            last.legs[1].expected_remote,
            Some(format!("{B_MEDIA}:6006").parse().expect("addr")),
            "media goes to the phone that answered"
        );

        // The call is the mobile's: its BYE ends it.
        let a = Dialog::from_uac(&inv, &ok).expect("dialog");
        let mut ack = a.ack_for(1);
        ack.prepend_header(HeaderName::Via, w.alice.via());
        w.alice.send(&ack).await;
        mobile
            .send_request(mob.request(Method::Bye).expect("BYE"))
            .await;
        mobile.expect_status(200).await;
        w.alice.expect_request(Method::Bye).await;
        let cdr = w.cdrs(1).await.remove(0);
        assert_eq!(cdr.disposition, Disposition::Answered);
        assert_eq!(cdr.hangup_side, HangupSide::Callee);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_answer_is_acked_and_hung_up() {
    bounded(async {
        let w = world(Options::default()).await;
        let mobile = second_phone(&w, None).await;
        let inv = invite(&w.alice, "bob", Some(&sdp(A_MEDIA, 5004, "sendrecv")));
        w.alice.send(&inv).await;
        let inv_desk = w.bob.expect_request(Method::Invite).await;
        let inv_mobile = mobile.expect_request(Method::Invite).await;
        let mut desk = callee_dialog(&w.bob, &inv_desk);
        let mut mob = callee_dialog(&mobile, &inv_mobile);
        // Both answer at once: the 2xx of the loser crosses our CANCEL.
        w.bob
            .send(&ok_with(
                &mut desk,
                &inv_desk,
                Some(&sdp(B_MEDIA, 6004, "sendrecv")),
            ))
            .await;
        w.bob.expect_request(Method::Ack).await;
        mobile
            .send(&ok_with(
                &mut mob,
                &inv_mobile,
                Some(&sdp(B_MEDIA, 6006, "sendrecv")),
            ))
            .await;
        mobile.expect_request(Method::Ack).await;
        let bye = mobile.expect_request(Method::Bye).await;
        assert_eq!(bye.call_id(), inv_mobile.call_id());
        mobile.send(&mob.response(&bye, 200, None)).await;
        let ok = w.alice.expect_status(200).await;
        assert_eq!(w.brain().calls().len(), 1);
        let last = w.applied().pop().expect("ApplyCall");
        assert_eq!(
            last.legs[1].expected_remote,
            Some(format!("{B_MEDIA}:6004").parse().expect("addr"))
        );
        let a = Dialog::from_uac(&inv, &ok).expect("dialog");
        let mut ack = a.ack_for(1);
        ack.prepend_header(HeaderName::Via, w.alice.via());
        w.alice.send(&ack).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_binding_refuses_the_best_answer_goes_back() {
    bounded(async {
        let w = world(Options::default()).await;
        let mobile = second_phone(&w, None).await;
        let inv = invite(&w.alice, "bob", Some(&sdp(A_MEDIA, 5004, "sendrecv")));
        w.alice.send(&inv).await;
        let inv_desk = w.bob.expect_request(Method::Invite).await;
        let inv_mobile = mobile.expect_request(Method::Invite).await;
        let mut desk = callee_dialog(&w.bob, &inv_desk);
        let mut mob = callee_dialog(&mobile, &inv_mobile);
        mobile.send(&mob.response(&inv_mobile, 500, None)).await;
        mobile.expect_request(Method::Ack).await;
        // One failure is not the end: the other phone still rings.
        w.alice
            .expect_silence(Duration::from_millis(300), |m| {
                m.status().is_none_or(|c| c < 200)
            })
            .await;
        w.bob.send(&desk.response(&inv_desk, 486, None)).await;
        w.bob.expect_request(Method::Ack).await;
        // 4xx beats 5xx (RFC 3261 §16.7).
        let busy = w
            .alice
            .expect("a final response", |m| m.status().is_some_and(|c| c >= 200))
            .await;
        assert_eq!(busy.status(), Some(486));
        let cdr = w.cdrs(1).await.remove(0);
        assert_eq!(cdr.disposition, Disposition::Busy);
        assert_eq!(w.released(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_6xx_from_one_binding_ends_the_call_at_once() {
    bounded(async {
        let w = world(Options::default()).await;
        let mobile = second_phone(&w, None).await;
        let inv = invite(&w.alice, "bob", Some(&sdp(A_MEDIA, 5004, "sendrecv")));
        w.alice.send(&inv).await;
        let inv_desk = w.bob.expect_request(Method::Invite).await;
        let inv_mobile = mobile.expect_request(Method::Invite).await;
        let mut desk = callee_dialog(&w.bob, &inv_desk);
        let mut mob = callee_dialog(&mobile, &inv_mobile);
        w.bob.send(&desk.response(&inv_desk, 180, None)).await;
        mobile.send(&mob.response(&inv_mobile, 603, None)).await;
        let declined = w
            .alice
            .expect("a final response", |m| m.status().is_some_and(|c| c >= 200))
            .await;
        assert_eq!(declined.status(), Some(603));
        let cancel = w.bob.expect_request(Method::Cancel).await;
        w.bob.send(&Message::response_to(&cancel, 200, None)).await;
        w.bob.send(&desk.response(&inv_desk, 487, None)).await;
        w.bob.expect_request(Method::Ack).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_the_early_dialog_are_relayed_not_481() {
    bounded(async {
        let w = world(Options::default()).await;
        let inv = invite(&w.alice, "bob", Some(&sdp(A_MEDIA, 5004, "sendrecv")));
        w.alice.send(&inv).await;
        let inv_b = w.bob.expect_request(Method::Invite).await;
        let mut b = callee_dialog(&w.bob, &inv_b);
        w.bob.send(&b.response(&inv_b, 180, None)).await;
        let ringing = w.alice.expect_status(180).await;
        let mut a = Dialog::from_uac(&inv, &ringing).expect("early dialog");

        // Bob's UPDATE (no SDP: a session-timer style refresh) reaches alice.
        let update = w
            .bob
            .send_request(b.request(Method::Update).expect("UPDATE"))
            .await;
        let update_a = w.alice.expect_request(Method::Update).await;
        a.on_request(&update_a)
            .expect("UPDATE in alice's early dialog");
        w.alice.send(&a.response(&update_a, 200, None)).await;
        let ok = w
            .bob
            .expect("200 to UPDATE", |m| {
                m.cseq() == update.cseq() && m.status().is_some()
            })
            .await;
        assert_eq!(ok.status(), Some(200), "{ok}");

        // Alice's INFO reaches bob the same way.
        let info = w
            .alice
            .send_request(
                a.request_with_body(Method::Info, "application/dtmf-relay", "Signal=1\r\n")
                    .expect("INFO"),
            )
            .await;
        let info_b = w.bob.expect_request(Method::Info).await;
        b.on_request(&info_b).expect("INFO in bob's early dialog");
        w.bob.send(&b.response(&info_b, 200, None)).await;
        let ok = w
            .alice
            .expect("200 to INFO", |m| {
                m.cseq() == info.cseq() && m.status().is_some()
            })
            .await;
        assert_eq!(ok.status(), Some(200), "{ok}");

        // Alice's BYE in the early dialog ends the attempt like a CANCEL.
        let bye = w
            .alice
            .send_request(a.request(Method::Bye).expect("BYE"))
            .await;
        w.alice
            .expect("200 to BYE", |m| {
                m.cseq() == bye.cseq() && m.status() == Some(200)
            })
            .await;
        w.alice.expect_status(487).await;
        let cancel = w.bob.expect_request(Method::Cancel).await;
        w.bob.send(&Message::response_to(&cancel, 200, None)).await;
        w.bob.send(&b.response(&inv_b, 487, None)).await;
        let cdr = w.cdrs(1).await.remove(0);
        assert_eq!(cdr.disposition, Disposition::Cancelled);
    })
    .await;
}

/// The CANCEL for `inv` (RFC 3261 §9.1: its Via, Call-ID, From, To, CSeq
/// number).
fn cancel_for(inv: &Message) -> Message {
    let mut cancel = Message::request(Method::Cancel, inv.request_uri().expect("uri").clone());
    for name in [
        HeaderName::Via,
        HeaderName::From,
        HeaderName::To,
        HeaderName::CallId,
    ] {
        cancel.push_header(name, inv.header(name).expect("header"));
    }
    cancel.push_header(HeaderName::MaxForwards, "70");
    cancel.push_header(HeaderName::CSeq, "1 CANCEL");
    cancel.set_body(bytes::Bytes::new(), None);
    cancel
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_that_crosses_our_200_changes_nothing() {
    bounded(async {
        let w = world(Options::default()).await;
        let inv = invite(&w.alice, "bob", Some(&sdp(A_MEDIA, 5004, "sendrecv")));
        w.alice.send(&inv).await;
        let inv_b = w.bob.expect_request(Method::Invite).await;
        let mut b = callee_dialog(&w.bob, &inv_b);
        w.bob
            .send(&ok_with(
                &mut b,
                &inv_b,
                Some(&sdp(B_MEDIA, 6004, "sendrecv")),
            ))
            .await;
        w.bob.expect_request(Method::Ack).await;
        // Alice gives up just as the 200 comes (§9.2: a CANCEL after the
        // final response has no effect on the call).
        w.alice.send(&cancel_for(&inv)).await;
        // The CANCEL itself is answered (200, or 481 once the INVITE's
        // transaction is gone); the 200 to the INVITE comes again until ACKed.
        let answer = w
            .alice
            .expect("an answer to the CANCEL", |m| {
                m.cseq().is_some_and(|c| c.method == Method::Cancel)
            })
            .await;
        assert!(matches!(answer.status(), Some(200 | 481)), "{answer}");
        let ok = w
            .alice
            .expect("200 to the INVITE", |m| {
                m.status() == Some(200) && m.cseq().is_some_and(|c| c.method == Method::Invite)
            })
            .await;
        w.bob
            .expect_silence(Duration::from_millis(300), |m| {
                !matches!(m.method(), Some(Method::Cancel | Method::Bye))
            })
            .await;
        let mut a = Dialog::from_uac(&inv, &ok).expect("dialog");
        let mut ack = a.ack_for(1);
        ack.prepend_header(HeaderName::Via, w.alice.via());
        w.alice.send(&ack).await;
        // Then hangs up the call it got: the normal end of an answered call.
        w.alice
            .send_request(a.request(Method::Bye).expect("BYE"))
            .await;
        w.alice
            .expect("200 to BYE", |m| {
                m.status() == Some(200) && m.cseq().is_some_and(|c| c.method == Method::Bye)
            })
            .await;
        let bye_b = w.bob.expect_request(Method::Bye).await;
        w.bob.send(&b.response(&bye_b, 200, None)).await;
        let cdr = w.cdrs(1).await.remove(0);
        assert_eq!(cdr.disposition, Disposition::Answered);
        assert_eq!(cdr.hangup_side, HangupSide::Caller);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_that_crosses_our_cancel_is_acked_and_hung_up() {
    bounded(async {
        let w = world(Options::default()).await;
        let inv = invite(&w.alice, "bob", Some(&sdp(A_MEDIA, 5004, "sendrecv")));
        w.alice.send(&inv).await;
        let inv_b = w.bob.expect_request(Method::Invite).await;
        let mut b = callee_dialog(&w.bob, &inv_b);
        w.bob.send(&b.response(&inv_b, 180, None)).await;
        w.alice.expect_status(180).await;
        w.alice.send(&cancel_for(&inv)).await;
        w.alice.expect_status(487).await;
        let cancel = w.bob.expect_request(Method::Cancel).await;
        // Bob had already answered: his 200 crosses the CANCEL.
        w.bob
            .send(&ok_with(
                &mut b,
                &inv_b,
                Some(&sdp(B_MEDIA, 6004, "sendrecv")),
            ))
            .await;
        w.bob.send(&Message::response_to(&cancel, 200, None)).await;
        let ack = w.bob.expect_request(Method::Ack).await;
        assert_eq!(ack.cseq().map(|c| c.seq), Some(1));
        let bye = w.bob.expect_request(Method::Bye).await;
        b.on_request(&bye).expect("BYE in bob's dialog");
        w.bob.send(&b.response(&bye, 200, None)).await;
        let cdr = w.cdrs(1).await.remove(0);
        assert_eq!(cdr.disposition, Disposition::Cancelled);
        w.alice
            .expect_silence(Duration::from_millis(300), |m| m.status() != Some(200))
            .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retransmitted_200_from_the_callee_is_acked_again() {
    bounded(async {
        let w = world(Options::default()).await;
        let inv = invite(&w.alice, "bob", Some(&sdp(A_MEDIA, 5004, "sendrecv")));
        w.alice.send(&inv).await;
        let inv_b = w.bob.expect_request(Method::Invite).await;
        let mut b = callee_dialog(&w.bob, &inv_b);
        let ok = ok_with(&mut b, &inv_b, Some(&sdp(B_MEDIA, 6004, "sendrecv")));
        w.bob.send(&ok).await;
        let first = w.bob.expect_request(Method::Ack).await;
        // Our ACK "was lost": bob sends his 200 again and gets the same ACK.
        w.bob.send(&ok).await;
        let again = w.bob.expect_request(Method::Ack).await;
        assert_eq!(again.cseq(), first.cseq());
        assert_eq!(again.to_tag(), first.to_tag());
        // A 2xx ACK is its own transaction: not the INVITE's branch (§17.1.1.3).
        let branch = |m: &Message| {
            m.vias()
                .next()
                .and_then(|v| v.ok())
                .and_then(|v| v.branch().map(str::to_string))
        };
        assert_ne!(branch(&first), branch(&inv_b));
        w.alice.expect_status(200).await;
    })
    .await;
}

fn pcma_sdp(ip: &str, port: u16) -> String {
    format!(
        "v=0\r\no=- 1 2 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callee_changes_codec_and_port_with_a_reinvite() {
    bounded(async {
        let w = world(Options::default()).await;
        let mut call = answer_call(&w).await;
        // Bob moves to PCMA on another port.
        let reinv = call
            .b
            .request_with_body(Method::Invite, "application/sdp", pcma_sdp(B_MEDIA, 6008))
            .expect("re-INVITE");
        let reinv = w.bob.send_request(reinv).await;
        let reinv_a = w.alice.expect_request(Method::Invite).await;
        call.a
            .on_request(&reinv_a)
            .expect("re-INVITE in alice's dialog");
        assert_eq!(media_of(&reinv_a), (IpAddr::from(SBC_IP), call.port_a));
        let offer = body_sdp(&reinv_a);
        assert_eq!(offer.media[0].formats, vec!["8".to_string()], "PCMA only");
        w.alice
            .send(&ok_with(
                &mut call.a,
                &reinv_a,
                Some(&pcma_sdp(A_MEDIA, 5004)),
            ))
            .await;
        w.alice.expect_request(Method::Ack).await;
        let ok = w
            .bob
            .expect("200 to re-INVITE", |m| {
                m.status() == Some(200) && m.cseq() == reinv.cseq()
            })
            .await;
        assert_eq!(media_of(&ok), (IpAddr::from(SBC_IP), call.port_b));
        assert_eq!(body_sdp(&ok).media[0].formats, vec!["8".to_string()]);
        call.b.on_response(&ok).expect("200 in bob's dialog");
        let mut ack = call.b.ack_for(reinv.cseq().expect("cseq").seq);
        ack.prepend_header(HeaderName::Via, w.bob.via());
        w.bob.send(&ack).await;

        // The SBC now relays PCMA, to bob's new port.
        let last = w.applied().pop().expect("ApplyCall");
        assert_eq!(
            last.legs[1].expected_remote,
            Some(format!("{B_MEDIA}:6008").parse().expect("addr"))
        );
        for leg in &last.legs {
            let pts: Vec<u8> = leg.payload_types.iter().map(|p| p.pt).collect();
            assert_eq!(pts, vec![8], "{leg:?}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_past_its_maximum_duration_is_hung_up_on_both_sides() {
    bounded(async {
        let w = world(Options {
            max_duration: Some(Duration::from_millis(1500)),
            ..Options::default()
        })
        .await;
        let mut call = answer_call(&w).await;
        let answered = tokio::time::Instant::now();
        let bye_a = w.alice.expect_request(Method::Bye).await;
        let bye_b = w.bob.expect_request(Method::Bye).await;
        assert!(
            answered.elapsed() >= Duration::from_millis(1200),
            "not before the limit"
        );
        call.a.on_request(&bye_a).expect("BYE in alice's dialog");
        call.b.on_request(&bye_b).expect("BYE in bob's dialog");
        w.alice.send(&call.a.response(&bye_a, 200, None)).await;
        w.bob.send(&call.b.response(&bye_b, 200, None)).await;
        let cdr = w.cdrs(1).await.remove(0);
        assert_eq!(cdr.disposition, Disposition::Answered);
        assert_eq!(cdr.hangup_side, HangupSide::System);
        assert!(cdr.duration_ms >= 1200, "{}", cdr.duration_ms);
        assert_eq!(w.released(), 1, "media released");
    })
    .await;
}
