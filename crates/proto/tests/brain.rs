//! The brain's registry and per-connection state machine, with a fake clock.

mod common;

use std::time::{Duration, Instant};

use proto::ProtocolVersion;
use proto::brain::{
    BrainConfig, BrainConnection, ConnClose, ConnEvent, ConnState, NodeRegistry, Pending,
};
use proto::message::*;

const MS: Duration = Duration::from_millis(1);

fn hello_as(id: &str, role: Role, max_streams: u32) -> Hello {
    Hello {
        role,
        capacity: Capacity {
            max_streams,
            workers: 2,
        },
        ..common::hello(id, vec![])
    }
}

fn hb(seq: u64, active_streams: u32) -> Heartbeat {
    Heartbeat {
        seq,
        load: Load {
            active_streams,
            packets_per_sec: active_streams * 50,
            cpu_percent: 1,
        },
    }
}

#[test]
fn dead_node_is_detected_after_dead_after() {
    let t0 = Instant::now();
    let mut reg = NodeRegistry::default();
    assert_eq!(reg.dead_after(), 500 * MS);
    let (a, b) = (NodeId("a".into()), NodeId("b".into()));
    reg.on_hello(t0, &hello_as("a", Role::Sbc, 100));
    reg.on_hello(t0, &hello_as("b", Role::Sbc, 100));

    // `a` heartbeats every 100 ms; `b` falls silent after its Hello.
    let mut seq = 0;
    let mut now = t0;
    while now < t0 + 1000 * MS {
        now += 100 * MS;
        seq += 1;
        assert!(reg.on_heartbeat(now, &a, &hb(seq, 1)));
        let dead = reg.dead_nodes(now);
        if now < t0 + 500 * MS {
            assert!(dead.is_empty(), "{dead:?} at {:?}", now - t0);
        } else {
            assert_eq!(dead, vec![b.clone()], "at {:?}", now - t0);
        }
    }
    assert!(reg.is_alive(now, &a));
    assert!(!reg.is_alive(now, &b));
    assert_eq!(reg.next_death(), Some(t0 + 500 * MS));
    assert!(reg.remove(&b).is_some());
    assert!(reg.dead_nodes(now).is_empty());
    // Heartbeats from a node that never said Hello are not accepted.
    assert!(!reg.on_heartbeat(now, &b, &hb(1, 0)));
}

#[test]
fn least_busy_live_node_of_the_role_wins() {
    let t0 = Instant::now();
    let mut reg = NodeRegistry::new(500 * MS);
    reg.on_hello(t0, &hello_as("big", Role::Sbc, 1000));
    reg.on_hello(t0, &hello_as("small", Role::Sbc, 100));
    reg.on_hello(t0, &hello_as("full", Role::Sbc, 10));
    reg.on_hello(t0, &hello_as("mix", Role::Mixer, 100));
    let id = |s: &str| NodeId(s.into());
    let t = t0 + 100 * MS;
    // big: 300/1000 = 30 %, small: 20/100 = 20 %, full: 10/10.
    reg.on_heartbeat(t, &id("big"), &hb(1, 300));
    reg.on_heartbeat(t, &id("small"), &hb(1, 20));
    reg.on_heartbeat(t, &id("full"), &hb(1, 10));
    reg.on_heartbeat(t, &id("mix"), &hb(1, 99));

    let pick = |reg: &NodeRegistry, now, role| reg.least_busy(now, role).map(|n| n.id.0.clone());
    assert_eq!(pick(&reg, t, Role::Sbc).as_deref(), Some("small"));
    assert_eq!(pick(&reg, t, Role::Mixer).as_deref(), Some("mix"));

    // Ratio, not count: 30 streams on `small` is 30 %, more than big's 25 %.
    reg.on_heartbeat(t, &id("small"), &hb(2, 30));
    reg.on_heartbeat(t, &id("big"), &hb(2, 250));
    assert_eq!(pick(&reg, t, Role::Sbc).as_deref(), Some("big"));

    // A node that stops heartbeating is no longer chosen.
    let later = t + 450 * MS;
    reg.on_heartbeat(later, &id("small"), &hb(3, 30));
    assert_eq!(
        pick(&reg, t + 600 * MS, Role::Sbc).as_deref(),
        Some("small")
    );
    // And when every node is dead or full, none is.
    assert_eq!(pick(&reg, t + 2000 * MS, Role::Sbc), None);
}

#[test]
fn pending_requests_complete_or_expire() {
    let t0 = Instant::now();
    let mut p = Pending::new();
    let a = p.start(t0 + 100 * MS, "a");
    let b = p.start(t0 + 50 * MS, "b");
    let c = p.start(t0 + 200 * MS, "c");
    assert_ne!(a, b);
    assert_eq!(p.next_deadline(), Some(t0 + 50 * MS));
    assert_eq!(p.complete(a), Some("a"));
    assert_eq!(p.complete(a), None, "answered once");
    assert_eq!(p.expire(t0 + 60 * MS), vec![(b, "b")]);
    assert_eq!(p.complete(b), None, "late reply after timeout");
    assert_eq!(p.next_deadline(), Some(t0 + 200 * MS));
    assert_eq!(p.drain(), vec!["c"]);
    assert!(p.is_empty());
    let _ = c;
}

fn events<T>(c: &mut BrainConnection<T>) -> Vec<ConnEvent<T>> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn transmit<T>(c: &mut BrainConnection<T>) -> Vec<BrainMessage> {
    std::iter::from_fn(|| c.poll_transmit()).collect()
}

fn welcomed(t0: Instant) -> BrainConnection<&'static str> {
    let mut c = BrainConnection::new(BrainConfig::default(), t0);
    let hello = common::hello(
        "sbc-1",
        vec![proto::snapshot::Snapshot::Call(common::call("c", 4, 2))],
    );
    c.on_message(t0, NodeMessage::Hello(hello.clone()));
    assert_eq!(c.state(), ConnState::Ready);
    assert_eq!(events(&mut c), vec![ConnEvent::Hello(hello)]);
    let out = transmit(&mut c);
    let [BrainMessage::Welcome(w)] = out.as_slice() else {
        panic!("expected Welcome, got {out:?}");
    };
    assert_eq!(w.heartbeat_interval_ms, 100);
    assert_eq!(w.dead_after_ms, 500);
    assert_eq!(w.protocol_version, ProtocolVersion::CURRENT);
    c
}

#[test]
fn node_with_another_major_version_is_refused_with_a_clear_error() {
    let t0 = Instant::now();
    let mut c: BrainConnection<()> = BrainConnection::new(BrainConfig::default(), t0);
    let theirs = ProtocolVersion {
        major: ProtocolVersion::CURRENT.major + 1,
        minor: 4,
    };
    let hello = Hello {
        protocol_version: theirs,
        ..common::hello("sbc-1", vec![])
    };
    c.on_message(t0, NodeMessage::Hello(hello));
    let out = transmit(&mut c);
    let [BrainMessage::Refused(err)] = out.as_slice() else {
        panic!("expected Refused, got {out:?}");
    };
    assert_eq!(err.code, ErrorCode::VERSION_MISMATCH);
    assert_eq!(
        err.to_string(),
        "version-mismatch: unsupported protocol version 2.4: this side speaks 1.0 (major versions must match)"
    );
    assert!(matches!(
        events(&mut c).as_slice(),
        [ConnEvent::Closed {
            reason: ConnClose::Refused(_),
            ..
        }]
    ));
    assert_eq!(c.state(), ConnState::Closed);
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn heartbeats_are_acked_and_silence_closes() {
    let t0 = Instant::now();
    let mut c = welcomed(t0);
    c.on_message(t0 + 100 * MS, NodeMessage::Heartbeat(hb(1, 3)));
    assert_eq!(
        transmit(&mut c),
        vec![BrainMessage::HeartbeatAck { seq: 1 }]
    );
    assert_eq!(events(&mut c), vec![ConnEvent::Heartbeat(hb(1, 3))]);
    assert_eq!(c.poll_timeout(), Some(t0 + 600 * MS));
    c.handle_timeout(t0 + 599 * MS);
    assert!(events(&mut c).is_empty());
    c.handle_timeout(t0 + 600 * MS);
    assert_eq!(
        events(&mut c),
        vec![ConnEvent::Closed {
            reason: ConnClose::NodeSilent(500 * MS),
            unanswered: vec![]
        }]
    );
}

#[test]
fn requests_are_correlated_and_time_out() {
    let t0 = Instant::now();
    let mut c = welcomed(t0);
    let body = RequestBody::ApplyCall(common::call("c", 5, 2));
    let r1 = c
        .request(t0, body.clone(), 200 * MS, "first")
        .expect("ready");
    let r2 = c
        .request(t0, body.clone(), 100 * MS, "second")
        .expect("ready");
    assert_eq!(
        transmit(&mut c),
        vec![
            BrainMessage::Request(Request {
                req_id: r1,
                body: body.clone()
            }),
            BrainMessage::Request(Request { req_id: r2, body })
        ]
    );
    // Replies can come in any order.
    let stale = Err(ErrorBody::new(ErrorCode::STALE_VERSION, "have 6"));
    c.on_message(
        t0 + 10 * MS,
        NodeMessage::Reply(Reply {
            req_id: r1,
            result: stale.clone(),
        }),
    );
    assert_eq!(
        events(&mut c),
        vec![ConnEvent::Reply {
            token: "first",
            result: stale
        }]
    );
    assert_eq!(c.poll_timeout(), Some(t0 + 100 * MS));
    c.handle_timeout(t0 + 100 * MS);
    assert_eq!(
        events(&mut c),
        vec![ConnEvent::TimedOut { token: "second" }]
    );
    // The late reply is dropped.
    c.on_message(
        t0 + 150 * MS,
        NodeMessage::Reply(Reply {
            req_id: r2,
            result: Ok(ReplyBody::Applied { version: 5 }),
        }),
    );
    assert!(events(&mut c).is_empty());

    // Unanswered requests come back when the connection goes.
    c.request(
        t0,
        RequestBody::GetStats {
            call_id: proto::snapshot::CallId("c".into()),
        },
        1000 * MS,
        "third",
    )
    .expect("ready");
    c.on_disconnected();
    assert_eq!(
        events(&mut c),
        vec![ConnEvent::Closed {
            reason: ConnClose::Lost,
            unanswered: vec!["third"]
        }]
    );
    assert_eq!(
        c.request(
            t0,
            RequestBody::GetStats {
                call_id: proto::snapshot::CallId("c".into())
            },
            MS,
            "x"
        ),
        Err("x")
    );
}

#[test]
fn messages_before_hello_and_missing_hello_close() {
    let t0 = Instant::now();
    let mut c: BrainConnection<()> = BrainConnection::new(BrainConfig::default(), t0);
    c.on_message(t0, NodeMessage::Heartbeat(hb(1, 0)));
    assert!(matches!(
        events(&mut c).as_slice(),
        [ConnEvent::Closed {
            reason: ConnClose::Violation(_),
            ..
        }]
    ));

    let mut c: BrainConnection<()> = BrainConnection::new(BrainConfig::default(), t0);
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(2)));
    c.handle_timeout(t0 + Duration::from_secs(2));
    assert!(matches!(
        events(&mut c).as_slice(),
        [ConnEvent::Closed {
            reason: ConnClose::NoHello(_),
            ..
        }]
    ));
}
