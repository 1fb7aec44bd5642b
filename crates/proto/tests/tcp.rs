//! The tokio drivers over real TCP on 127.0.0.1: connect, Welcome,
//! heartbeats, requests, then a brain restart that the node survives by
//! itself, re-uploading what it carries.

#![cfg(feature = "tokio")]
mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proto::brain::{self, BrainConfig, Incoming, NodeConnection, NodeEvent, RequestError};
use proto::message::*;
use proto::node::{self, NodeConfig, NodeHandler};
use proto::snapshot::{CallId, CallSnapshot, PortRange};
use proto::store::SnapshotStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::timeout;

const SECOND: Duration = Duration::from_secs(1);

/// A stand-in SBC: keeps call snapshots and ranges, answers requests.
#[derive(Default)]
struct FakeSbc {
    calls: SnapshotStore<CallSnapshot>,
    ranges: Vec<PortRange>,
}

#[derive(Clone, Default)]
struct Handler(Arc<Mutex<FakeSbc>>);

impl NodeHandler for Handler {
    fn hello(&mut self) -> Hello {
        let sbc = self.0.lock().expect("lock");
        Hello {
            ranges: sbc.ranges.clone(),
            ..common::hello("sbc-1", sbc.calls.export())
        }
    }

    fn load(&mut self) -> Load {
        let sbc = self.0.lock().expect("lock");
        Load {
            active_streams: sbc.calls.iter().map(|c| c.legs.len() as u32).sum(),
            packets_per_sec: 0,
            cpu_percent: 1,
        }
    }

    fn handle(&mut self, request: RequestBody) -> Result<ReplyBody, ErrorBody> {
        let mut sbc = self.0.lock().expect("lock");
        match request {
            RequestBody::AssignRanges { ranges } => {
                sbc.ranges = ranges;
                Ok(ReplyBody::Done)
            }
            RequestBody::ApplyCall(call) => {
                let version = call.version;
                sbc.calls.apply(call)?;
                Ok(ReplyBody::Applied { version })
            }
            RequestBody::ReleaseCall { call_id } => match sbc.calls.release(&call_id) {
                Some(_) => Ok(ReplyBody::Done),
                None => Err(ErrorBody::new(ErrorCode::UNKNOWN_CALL, call_id.0)),
            },
            RequestBody::GetStats { call_id } => match sbc.calls.get(&call_id) {
                Some(call) => Ok(ReplyBody::Stats {
                    call_id,
                    legs: call
                        .legs
                        .iter()
                        .map(|l| (l.leg_id, LegStats::default()))
                        .collect(),
                }),
                None => Err(ErrorBody::new(ErrorCode::UNKNOWN_CALL, call_id.0)),
            },
            RequestBody::ApplyConference(_)
            | RequestBody::ReleaseConference { .. }
            | RequestBody::GetConferenceStats { .. } => Err(ErrorBody::new(
                ErrorCode::UNSUPPORTED,
                "an SBC does not mix",
            )),
        }
    }
}

async fn start_brain(addr: SocketAddr, brain_id: &str) -> Incoming {
    let config = BrainConfig {
        brain_id: brain_id.into(),
        ..BrainConfig::default()
    };
    brain::listen(addr, config).await.expect("listen")
}

async fn next_node(incoming: &mut Incoming) -> NodeConnection {
    timeout(5 * SECOND, incoming.next())
        .await
        .expect("a node within 5 s")
        .expect("listener alive")
}

async fn heartbeats(node: &mut NodeConnection, n: usize) -> Vec<Heartbeat> {
    let mut got = Vec::new();
    while got.len() < n {
        match timeout(SECOND, node.events.recv()).await {
            Ok(Some(NodeEvent::Heartbeat(hb))) => got.push(hb),
            Ok(Some(_)) => {}
            other => panic!("expected heartbeats, got {other:?}"),
        }
    }
    got
}

#[tokio::test]
async fn node_survives_a_brain_restart_and_reuploads_its_calls() {
    timeout(30 * SECOND, async {
        let mut brain = start_brain("127.0.0.1:0".parse().expect("addr"), "brain-a").await;
        let addr = brain.local_addr();

        let handler = Handler::default();
        let (events_tx, events_rx) = mpsc::channel(64);
        let config = NodeConfig {
            seed: 7,
            ..NodeConfig::default()
        };
        let node_task = tokio::spawn(node::run(addr, config, handler.clone(), events_rx));

        // Hello (empty: a fresh node), Welcome, heartbeats.
        let mut conn = next_node(&mut brain).await;
        assert_eq!(conn.hello.node_id, NodeId("sbc-1".into()));
        assert!(conn.hello.snapshots.is_empty());
        let hbs = heartbeats(&mut conn, 3).await;
        assert!(hbs.windows(2).all(|w| w[1].seq > w[0].seq));

        // Requests and replies.
        let range = common::range(1);
        let reply = conn
            .handle
            .request(
                RequestBody::AssignRanges {
                    ranges: vec![range.clone()],
                },
                SECOND,
            )
            .await;
        assert_eq!(reply, Ok(ReplyBody::Done));
        let call = common::call("call-1", 2, 2);
        let apply = |c: CallSnapshot| RequestBody::ApplyCall(c);
        assert_eq!(
            conn.handle.request(apply(call.clone()), SECOND).await,
            Ok(ReplyBody::Applied { version: 2 })
        );
        // Same version again: a no-op that still succeeds.
        assert_eq!(
            conn.handle.request(apply(call.clone()), SECOND).await,
            Ok(ReplyBody::Applied { version: 2 })
        );
        // Older: refused, state kept.
        let stale = conn
            .handle
            .request(apply(common::call("call-1", 1, 4)), SECOND)
            .await;
        let Err(RequestError::Refused(err)) = stale else {
            panic!("expected a refusal, got {stale:?}");
        };
        assert_eq!(err.code, ErrorCode::STALE_VERSION);
        // A big snapshot (compressed on the wire).
        let big = common::call("call-2", 1, 300);
        assert_eq!(
            conn.handle.request(apply(big.clone()), SECOND).await,
            Ok(ReplyBody::Applied { version: 1 })
        );
        let stats = conn
            .handle
            .request(
                RequestBody::GetStats {
                    call_id: CallId("call-1".into()),
                },
                SECOND,
            )
            .await;
        assert!(matches!(stats, Ok(ReplyBody::Stats { ref legs, .. }) if legs.len() == 2));

        // Media events reach the brain.
        let event = Event::Dtmf {
            call_id: CallId("call-1".into()),
            leg: proto::snapshot::LegId(0),
            digit: '5',
            duration_ms: 120,
        };
        events_tx.send(event.clone()).await.expect("node running");
        loop {
            match timeout(SECOND, conn.events.recv()).await {
                Ok(Some(NodeEvent::Event(e))) => {
                    assert_eq!(e, event);
                    break;
                }
                Ok(Some(NodeEvent::Heartbeat(_))) => {}
                other => panic!("expected the event, got {other:?}"),
            }
        }

        // Kill the brain: listener and connections go.
        drop(conn);
        drop(brain);
        tokio::time::sleep(Duration::from_millis(50)).await;

        // A new brain on the same address: the node comes back by itself and
        // uploads the calls and ranges it kept.
        let mut brain = start_brain(addr, "brain-b").await;
        let mut conn = next_node(&mut brain).await;
        let mut uploaded: Vec<_> = conn.hello.snapshots.clone();
        uploaded.sort_by_key(|s| match s {
            proto::snapshot::Snapshot::Call(c) => c.call_id.clone(),
            proto::snapshot::Snapshot::Conference(_) => CallId(String::new()),
        });
        assert_eq!(
            uploaded,
            vec![
                proto::snapshot::Snapshot::Call(call),
                proto::snapshot::Snapshot::Call(big)
            ]
        );
        assert_eq!(conn.hello.ranges, vec![range]);
        let hbs = heartbeats(&mut conn, 2).await;
        assert_eq!(hbs[0].load.active_streams, 302);
        assert_eq!(
            conn.handle
                .request(
                    RequestBody::ReleaseCall {
                        call_id: CallId("call-2".into())
                    },
                    SECOND
                )
                .await,
            Ok(ReplyBody::Done)
        );

        // Closing the event channel stops the node.
        drop(events_tx);
        timeout(2 * SECOND, node_task)
            .await
            .expect("node stops")
            .expect("node task did not panic");
    })
    .await
    .expect("test finished in time");
}

#[tokio::test]
async fn brain_refuses_a_node_of_another_major_version() {
    timeout(10 * SECOND, async {
        let brain = start_brain("127.0.0.1:0".parse().expect("addr"), "brain-a").await;
        let mut sock = tokio::net::TcpStream::connect(brain.local_addr())
            .await
            .expect("connect");
        let hello = NodeMessage::Hello(Hello {
            protocol_version: proto::ProtocolVersion { major: 9, minor: 0 },
            ..common::hello("sbc-old", vec![])
        });
        sock.write_all(&proto::encode(&hello, 512).expect("encode"))
            .await
            .expect("write");
        // The brain answers Refused and closes.
        let mut bytes = Vec::new();
        sock.read_to_end(&mut bytes).await.expect("read");
        let mut dec = proto::FrameDecoder::<BrainMessage>::default();
        dec.push(&bytes);
        let Ok(Some(BrainMessage::Refused(err))) = dec.next() else {
            panic!("expected Refused");
        };
        assert_eq!(err.code, ErrorCode::VERSION_MISMATCH);
        assert!(err.message.contains("unsupported protocol version 9.0"));
    })
    .await
    .expect("test finished in time");
}

#[tokio::test]
async fn requests_to_a_vanished_node_fail_fast() {
    timeout(10 * SECOND, async {
        let mut brain = start_brain("127.0.0.1:0".parse().expect("addr"), "brain-a").await;
        let (events_tx, events_rx) = mpsc::channel(4);
        let node_task = tokio::spawn(node::run(
            brain.local_addr(),
            NodeConfig::default(),
            Handler::default(),
            events_rx,
        ));
        let mut conn = next_node(&mut brain).await;
        drop(events_tx);
        timeout(2 * SECOND, node_task)
            .await
            .expect("node stops")
            .expect("no panic");
        // The brain sees the connection close and requests fail.
        loop {
            match timeout(2 * SECOND, conn.events.recv()).await {
                Ok(Some(NodeEvent::Closed(_))) => break,
                Ok(Some(_)) => {}
                other => panic!("expected Closed, got {other:?}"),
            }
        }
        let r = conn
            .handle
            .request(
                RequestBody::GetStats {
                    call_id: CallId("x".into()),
                },
                SECOND,
            )
            .await;
        assert_eq!(r, Err(RequestError::Disconnected));
    })
    .await
    .expect("test finished in time");
}
