//! The node's session state machine, driven with a fake clock.

mod common;

use std::time::{Duration, Instant};

use proto::ProtocolVersion;
use proto::message::*;
use proto::node::{CloseReason, NodeConfig, NodeOutput, NodeSession, NodeState};

const MS: Duration = Duration::from_millis(1);

fn welcome(version: ProtocolVersion) -> BrainMessage {
    BrainMessage::Welcome(Welcome {
        brain_id: "brain-a".into(),
        protocol_version: version,
        heartbeat_interval_ms: 100,
        dead_after_ms: 500,
    })
}

fn outputs(s: &mut NodeSession) -> Vec<NodeOutput> {
    std::iter::from_fn(|| s.poll_output()).collect()
}

/// Advances to `until`, firing every timer on the way; returns what came out
/// with the time it came out.
fn run_until(s: &mut NodeSession, now: &mut Instant, until: Instant) -> Vec<(Instant, NodeOutput)> {
    let mut out = Vec::new();
    loop {
        let next = s.poll_timeout().max(*now);
        if next > until {
            *now = until;
            return out;
        }
        *now = next;
        s.handle_timeout(*now);
        out.extend(outputs(s).into_iter().map(|o| (*now, o)));
    }
}

/// A session that is connected and welcomed at the returned time.
fn ready(t0: Instant) -> (NodeSession, Instant) {
    let mut s = NodeSession::new(NodeConfig::default(), t0);
    s.handle_timeout(t0);
    assert_eq!(outputs(&mut s), vec![NodeOutput::Connect]);
    assert_eq!(s.state(), NodeState::Connecting);
    let hello = common::hello("sbc-1", vec![]);
    s.on_connected(t0, hello.clone());
    assert_eq!(s.state(), NodeState::AwaitWelcome);
    assert_eq!(
        outputs(&mut s),
        vec![NodeOutput::Send(NodeMessage::Hello(hello))]
    );
    let t = t0 + 5 * MS;
    assert_eq!(s.on_message(t, welcome(ProtocolVersion::CURRENT)), None);
    assert_eq!(s.state(), NodeState::Ready);
    assert_eq!(s.brain_id(), Some("brain-a"));
    (s, t)
}

#[test]
fn backoff_schedule_doubles_to_two_seconds() {
    let t0 = Instant::now();
    let mut s = NodeSession::new(NodeConfig::default(), t0);
    let mut now = t0;
    let mut last_fail = t0;
    let mut gaps = Vec::new();
    // Each Connect fails at once.
    for _ in 0..8 {
        now = s.poll_timeout().max(now);
        s.handle_timeout(now);
        assert_eq!(outputs(&mut s), vec![NodeOutput::Connect]);
        gaps.push(now - last_fail);
        s.on_connect_failed(now);
        last_fail = now;
        assert_eq!(s.state(), NodeState::Disconnected);
    }
    assert_eq!(gaps[0], Duration::ZERO, "first attempt is immediate");
    for (gap, nominal_ms) in gaps[1..].iter().zip([100, 200, 400, 800, 1600, 2000, 2000]) {
        let nominal = nominal_ms * MS;
        assert!(
            *gap <= nominal && *gap >= nominal * 3 / 4,
            "gap {gap:?} for nominal {nominal:?}"
        );
    }
}

#[test]
fn connect_attempt_times_out() {
    let t0 = Instant::now();
    let mut s = NodeSession::new(NodeConfig::default(), t0);
    s.handle_timeout(t0);
    assert_eq!(outputs(&mut s), vec![NodeOutput::Connect]);
    assert_eq!(s.poll_timeout(), t0 + Duration::from_secs(1));
    s.handle_timeout(t0 + Duration::from_secs(1));
    assert_eq!(
        outputs(&mut s),
        vec![NodeOutput::Close(CloseReason::ConnectTimeout)]
    );
    assert_eq!(s.state(), NodeState::Disconnected);
}

#[test]
fn heartbeats_every_interval_while_the_brain_answers() {
    let (mut s, t) = ready(Instant::now());
    // The first heartbeat goes out with the Welcome.
    let first = outputs(&mut s);
    assert!(matches!(
        first.as_slice(),
        [NodeOutput::Send(NodeMessage::Heartbeat(Heartbeat {
            seq: 1,
            ..
        }))]
    ));
    s.set_load(Load {
        active_streams: 7,
        packets_per_sec: 350,
        cpu_percent: 3,
    });

    let mut now = t;
    let mut sent = Vec::new();
    for _ in 0..20 {
        let until = now + 100 * MS;
        let out = run_until(&mut s, &mut now, until);
        for (at, o) in out {
            match o {
                NodeOutput::Send(NodeMessage::Heartbeat(hb)) => {
                    sent.push((at, hb));
                    // The brain acks each one, which keeps the link alive.
                    assert_eq!(
                        s.on_message(at + MS, BrainMessage::HeartbeatAck { seq: hb.seq }),
                        None
                    );
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(s.state(), NodeState::Ready);
    assert_eq!(sent.len(), 20);
    for (i, (at, hb)) in sent.iter().enumerate() {
        assert_eq!(hb.seq, i as u64 + 2);
        assert_eq!(*at, t + (i as u32 + 1) * 100 * MS);
        assert_eq!(hb.load.active_streams, 7);
    }
}

#[test]
fn silent_brain_is_dropped_after_dead_after_and_the_node_reconnects() {
    let (mut s, t) = ready(Instant::now());
    let _ = outputs(&mut s);
    let mut now = t;
    let out = run_until(&mut s, &mut now, t + 600 * MS);
    let heartbeats = out
        .iter()
        .filter(|(_, o)| matches!(o, NodeOutput::Send(NodeMessage::Heartbeat(_))))
        .count();
    // Heartbeats at +100..+400, then silence wins at +500.
    assert_eq!(heartbeats, 4);
    let closes: Vec<_> = out
        .iter()
        .filter_map(|(at, o)| match o {
            NodeOutput::Close(r) => Some((*at, r.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        closes,
        vec![(t + 500 * MS, CloseReason::BrainSilent(500 * MS))]
    );
    assert_eq!(s.brain_id(), None);

    // Backoff was reset by the Welcome: the next attempt is within 100 ms.
    let reconnect = out
        .iter()
        .find(|(_, o)| *o == NodeOutput::Connect)
        .map(|(at, _)| *at)
        .expect("reconnect");
    assert!(reconnect > t + 500 * MS && reconnect <= t + 600 * MS);
    assert_eq!(s.state(), NodeState::Connecting);
}

#[test]
fn requests_are_handed_out_once_ready() {
    let (mut s, t) = ready(Instant::now());
    let req = Request {
        req_id: 9,
        body: RequestBody::ApplyCall(common::call("c-1", 1, 2)),
    };
    assert_eq!(
        s.on_message(t, BrainMessage::Request(req.clone())),
        Some(req)
    );
}

#[test]
fn welcome_with_another_major_version_is_refused() {
    let t0 = Instant::now();
    let mut s = NodeSession::new(NodeConfig::default(), t0);
    s.handle_timeout(t0);
    s.on_connected(t0, common::hello("sbc-1", vec![]));
    let _ = outputs(&mut s);
    let theirs = ProtocolVersion {
        major: ProtocolVersion::CURRENT.major + 1,
        minor: 0,
    };
    s.on_message(t0, welcome(theirs));
    let out = outputs(&mut s);
    let [NodeOutput::Close(CloseReason::Version(e))] = out.as_slice() else {
        panic!("expected a version close, got {out:?}");
    };
    assert_eq!(e.theirs, theirs);
    assert!(e.to_string().contains("unsupported protocol version 2.0"));
    assert_eq!(s.state(), NodeState::Disconnected);
    // Retrying soon will not help: the next try waits near the cap.
    assert!(s.poll_timeout() >= t0 + 1500 * MS);
}

#[test]
fn refusal_by_the_brain_closes_with_its_reason() {
    let t0 = Instant::now();
    let mut s = NodeSession::new(NodeConfig::default(), t0);
    s.handle_timeout(t0);
    s.on_connected(t0, common::hello("sbc-1", vec![]));
    let _ = outputs(&mut s);
    let err = ErrorBody::new(ErrorCode::VERSION_MISMATCH, "speak 1.x");
    s.on_message(t0, BrainMessage::Refused(err.clone()));
    assert_eq!(
        outputs(&mut s),
        vec![NodeOutput::Close(CloseReason::Refused(err))]
    );
}

#[test]
fn no_welcome_in_time_drops_the_connection() {
    let t0 = Instant::now();
    let mut s = NodeSession::new(NodeConfig::default(), t0);
    s.handle_timeout(t0);
    s.on_connected(t0, common::hello("sbc-1", vec![]));
    let _ = outputs(&mut s);
    // Waits for Welcome at least connect_timeout (1 s).
    assert_eq!(s.poll_timeout(), t0 + Duration::from_secs(1));
    s.handle_timeout(t0 + Duration::from_secs(1));
    assert!(matches!(
        outputs(&mut s).as_slice(),
        [NodeOutput::Close(CloseReason::BrainSilent(_))]
    ));
}

#[test]
fn a_request_before_welcome_is_a_violation() {
    let t0 = Instant::now();
    let mut s = NodeSession::new(NodeConfig::default(), t0);
    s.handle_timeout(t0);
    s.on_connected(t0, common::hello("sbc-1", vec![]));
    let _ = outputs(&mut s);
    let req = BrainMessage::Request(Request {
        req_id: 1,
        body: RequestBody::GetStats {
            call_id: proto::snapshot::CallId("c".into()),
        },
    });
    assert_eq!(s.on_message(t0, req), None);
    assert!(matches!(
        outputs(&mut s).as_slice(),
        [NodeOutput::Close(CloseReason::Violation(_))]
    ));
}

#[test]
fn lost_connection_reconnects_with_backoff() {
    let (mut s, t) = ready(Instant::now());
    let _ = outputs(&mut s);
    s.on_disconnected(t);
    assert_eq!(s.state(), NodeState::Disconnected);
    let next = s.poll_timeout();
    assert!(next > t && next <= t + 100 * MS);
    // Stale messages from the dead connection are ignored.
    assert_eq!(s.on_message(t, welcome(ProtocolVersion::CURRENT)), None);
    assert_eq!(s.state(), NodeState::Disconnected);
}
