//! Callers to a conference number through an in-process brain: answered by
//! the brain, media anchored on the (fake) SBC towards the (fake) mixer,
//! the room's snapshot on the mixer following joins, holds and leaves.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use brain::conference::RoomKey;
use common::*;
use proto::message::RequestBody;
use proto::snapshot::{ConferenceSnapshot, LegId};
use sip::dialog::Dialog;
use sip::{HeaderName, Message, Method};
use store::{Disposition, HangupSide, NumberKind};

async fn bounded(test: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(30), test)
        .await
        .expect("test timed out");
}

async fn conference_world() -> World {
    let w = world(Options {
        mixer: true,
        ..Options::default()
    })
    .await;
    w.store
        .add_number(w.tenant.id, "3000", NumberKind::Conference, "room")
        .await
        .expect("number");
    w
}

fn snapshots(w: &World) -> Vec<ConferenceSnapshot> {
    w.mixer
        .lock()
        .expect("lock")
        .iter()
        .filter_map(|r| match r {
            RequestBody::ApplyConference(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

async fn until(what: &str, mut ok: impl FnMut() -> bool) {
    for _ in 0..250 {
        if ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what}");
}

async fn ack(ua: &Ua, dialog: &Dialog, seq: u32, body: Option<&str>) {
    let mut ack = dialog.ack_for(seq);
    if let Some(b) = body {
        ack.set_body(b.to_string(), Some("application/sdp"));
    }
    ack.prepend_header(HeaderName::Via, ua.via());
    ua.send(&ack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_is_answered_seated_and_let_go() {
    bounded(async {
        let w = conference_world().await;
        let inv = invite(&w.alice, "3000", Some(&sdp("192.0.2.10", 5004, "sendrecv")));
        w.alice.send(&inv).await;
        let ok = w.alice.expect_status(200).await;
        let (ip, port_a) = media_of(&ok);
        assert_eq!(ip, IpAddr::from(SBC_IP), "the answer names the SBC");
        let answer = body_sdp(&ok);
        let codecs: Vec<_> = answer.media[0]
            .codecs()
            .into_iter()
            .map(|c| c.encoding)
            .collect();
        assert_eq!(codecs[0], "PCMU", "one codec the mixer takes: {codecs:?}");
        let mut a = Dialog::from_uac(&inv, &ok).expect("dialog");
        ack(&w.alice, &a, 1, None).await;

        // The mixer has alice, sent from the SBC's other port.
        until("the room on the mixer", || !snapshots(&w).is_empty()).await;
        let snap = snapshots(&w).pop().expect("snapshot");
        assert_eq!(snap.participants.len(), 1);
        let p = &snap.participants[0];
        assert_eq!(p.payload_type.name, "PCMU");
        assert_eq!(p.sbc_endpoint.ip(), IpAddr::from(SBC_IP));
        assert_ne!(p.sbc_endpoint.port(), port_a);
        // The SBC relays alice's leg to the mixer's port.
        let call = w.applied().pop().expect("SBC call");
        let to_mixer = call
            .legs
            .iter()
            .find(|l| l.leg_id == LegId(2))
            .expect("leg 2");
        assert_eq!(
            to_mixer.expected_remote,
            Some(SocketAddr::new(IpAddr::from(SBC_IP), MIXER_PORT))
        );
        assert_eq!(to_mixer.local.rtp_port, p.sbc_endpoint.port());
        let rooms = w.brain().conferences().await;
        assert_eq!(rooms.len(), 1);
        assert_eq!(
            (rooms[0].room.name.as_str(), rooms[0].participants),
            ("room", 1)
        );

        // Hold: muted and deaf in the room, the answer says recvonly.
        let mut hold = a
            .request_with_body(
                Method::Invite,
                "application/sdp",
                sdp("192.0.2.10", 5004, "sendonly"),
            )
            .expect("re-INVITE");
        hold = w.alice.send_request(hold).await;
        let ok2 = w.alice.expect_status(200).await;
        assert!(
            String::from_utf8_lossy(ok2.body()).contains("a=recvonly"),
            "{ok2}"
        );
        ack(&w.alice, &a, hold.cseq().map_or(2, |c| c.seq), None).await;
        until("alice muted and deaf", || {
            snapshots(&w)
                .last()
                .is_some_and(|s| s.participants[0].flags.muted && s.participants[0].flags.deaf)
        })
        .await;

        let bye = a.request(Method::Bye).expect("BYE");
        w.alice.send_request(bye).await;
        w.alice.expect_status(200).await;
        until("the room released", || {
            w.mixer
                .lock()
                .expect("lock")
                .iter()
                .any(|r| matches!(r, RequestBody::ReleaseConference { .. }))
        })
        .await;
        let cdr = w.cdrs(1).await.remove(0);
        assert_eq!(cdr.disposition, Disposition::Answered);
        assert_eq!(
            (cdr.direction.as_str(), cdr.callee.as_str()),
            ("conference", "room")
        );
        assert_eq!(cdr.hangup_side, HangupSide::Caller);
        let mixer_side = cdr.leg_b.expect("the mixer's figures");
        assert_eq!(mixer_side.packets_received, 300);
        assert!(w.brain().conferences().await.is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_offer_is_offered_the_mixers_codecs_and_seated_on_the_ack() {
    bounded(async {
        let w = conference_world().await;
        let inv = invite(&w.alice, "3000", None);
        w.alice.send(&inv).await;
        let ok = w.alice.expect_status(200).await;
        let offer = body_sdp(&ok);
        let codecs: Vec<_> = offer.media[0]
            .codecs()
            .into_iter()
            .map(|c| c.encoding)
            .collect();
        assert_eq!(codecs, ["G722", "PCMU", "PCMA", "telephone-event"]);
        assert!(snapshots(&w).is_empty(), "not seated before the answer");
        let a = Dialog::from_uac(&inv, &ok).expect("dialog");
        let answer = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
                      m=audio 5004 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";
        ack(&w.alice, &a, 1, Some(answer)).await;
        until("seated after the ACK", || !snapshots(&w).is_empty()).await;
        let snap = snapshots(&w).pop().expect("snapshot");
        assert_eq!(snap.participants[0].payload_type.name, "PCMA");
        let call = w.applied().pop().expect("SBC call");
        let caller = call
            .legs
            .iter()
            .find(|l| l.leg_id == LegId(1))
            .expect("leg 1");
        assert_eq!(
            caller.expected_remote,
            Some("192.0.2.10:5004".parse().expect("addr"))
        );
        assert_eq!(caller.payload_types[0].name, "PCMA");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kicked_caller_gets_a_bye_and_a_locked_room_refuses() {
    bounded(async {
        let w = conference_world().await;
        let inv = invite(&w.alice, "3000", Some(&sdp("192.0.2.10", 5004, "sendrecv")));
        w.alice.send(&inv).await;
        let ok = w.alice.expect_status(200).await;
        let a = Dialog::from_uac(&inv, &ok).expect("dialog");
        ack(&w.alice, &a, 1, None).await;
        until("seated", || !snapshots(&w).is_empty()).await;
        let room = RoomKey {
            tenant: w.tenant.id,
            name: "room".into(),
        };
        assert!(w.brain().rooms().lock(&room, true).await);
        let inv2 = invite(&w.bob, "3000", Some(&sdp("192.0.2.20", 6004, "sendrecv")));
        w.bob.send(&inv2).await;
        let refused = w.bob.expect_status(403).await;
        assert_eq!(refused.reason(), Some("Conference locked"));

        let id = snapshots(&w)[0].participants[0].participant_id;
        assert!(w.brain().rooms().kick(&room, id).await);
        let bye: Message = w.alice.expect_request(Method::Bye).await;
        let mut a = a;
        a.on_request(&bye).expect("BYE in the dialog");
        w.alice.send(&a.response(&bye, 200, None)).await;
        let cdrs = w.cdrs(2).await;
        let kicked = cdrs
            .iter()
            .find(|c| c.disposition == Disposition::Answered)
            .expect("cdr");
        assert_eq!(kicked.hangup_side, HangupSide::System);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_mixer_means_503() {
    bounded(async {
        let w = world(Options::default()).await;
        w.store
            .add_number(w.tenant.id, "3000", NumberKind::Conference, "room")
            .await
            .expect("number");
        let inv = invite(&w.alice, "3000", Some(&sdp("192.0.2.10", 5004, "sendrecv")));
        w.alice.send(&inv).await;
        let r = w.alice.expect_status(503).await;
        assert_eq!(r.reason(), Some("Conference unavailable"));
        let cdr = w.cdrs(1).await.remove(0);
        assert_eq!(cdr.sip_code, 503);
        assert_eq!(w.released(), 0, "nothing left on the SBC");
    })
    .await;
}
