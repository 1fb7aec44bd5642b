//! The whole SBC over real UDP on 127.0.0.1, driven by a fake brain: two
//! phones talk through it, a stranger is locked out, and the audio keeps
//! flowing while the brain is gone.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use proto::brain::{BrainConfig, NodeConnection, NodeEvent, listen};
use proto::message::{ErrorCode, Event, LegStats, ReplyBody, RequestBody, Role};
use proto::snapshot::{
    CallId, CallSnapshot, LegId, LegSpec, LocalEndpoint, PayloadType, PortRange, RangeId, Rtcp,
    Snapshot,
};
use sbc::{DropReason, Sbc, SbcConfig};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const WAIT: Duration = Duration::from_secs(5);
const PACKETS: u16 = 200;

/// A block of `n` consecutive UDP ports free on 127.0.0.1 right now.
fn free_block(n: u16) -> u16 {
    let start = 20_000 + (std::process::id() % 2000) as u16 * 10;
    let mut base = start;
    loop {
        let socks: Vec<_> = (base..base + n)
            .map(|p| UdpSocket::bind((LOCALHOST, p)))
            .collect();
        if socks.iter().all(|s| s.is_ok()) {
            return base;
        }
        base = if base > 60_000 { 20_000 } else { base + n };
        assert_ne!(base, start, "no free port block");
    }
}

fn leg(id: u32, port: u16, expected: SocketAddr, to: u32) -> LegSpec {
    LegSpec {
        leg_id: LegId(id),
        local: LocalEndpoint {
            range_id: RangeId(7),
            rtp_port: port,
            rtcp: Rtcp::Port(port + 1),
        },
        expected_remote: Some(expected),
        latch: true,
        payload_types: vec![PayloadType {
            pt: 0,
            name: "PCMU".into(),
            clock_rate: 8000,
            channels: 1,
        }],
        telephone_event_pt: None,
        relay_to: Some(LegId(to)),
        continuation: None,
    }
}

fn rtp(seq: u16, ssrc: u32, fill: u8) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    // Distinct per packet and per direction.
    p.extend((0..160u16).map(|i| fill ^ (seq as u8).wrapping_add(i as u8)));
    p
}

fn phone() -> UdpSocket {
    let s = UdpSocket::bind((LOCALHOST, 0)).expect("phone socket");
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("read timeout");
    s
}

/// A and B each send `seqs` to the SBC in lockstep; each checks the
/// other's packets arrive byte-exact, from the SBC's port for its own leg.
fn exchange(a: &UdpSocket, b: &UdpSocket, a_port: u16, b_port: u16, seqs: std::ops::Range<u16>) {
    let mut buf = [0u8; 2048];
    for seq in seqs {
        let (pa, pb) = (rtp(seq, 0xaaaa, 0x11), rtp(seq, 0xbbbb, 0x22));
        a.send_to(&pa, (LOCALHOST, a_port)).expect("A sends");
        b.send_to(&pb, (LOCALHOST, b_port)).expect("B sends");
        let (n, from) = b.recv_from(&mut buf).expect("B receives A's packet");
        assert_eq!(from, SocketAddr::new(LOCALHOST, b_port));
        assert_eq!(&buf[..n], &pa[..], "A→B packet {seq}");
        let (n, from) = a.recv_from(&mut buf).expect("A receives B's packet");
        assert_eq!(from, SocketAddr::new(LOCALHOST, a_port));
        assert_eq!(&buf[..n], &pb[..], "B→A packet {seq}");
    }
}

async fn next_node(incoming: &mut proto::brain::Incoming) -> NodeConnection {
    tokio::time::timeout(Duration::from_secs(10), incoming.next())
        .await
        .expect("SBC connects in time")
        .expect("listener alive")
}

async fn request(node: &NodeConnection, body: RequestBody) -> Result<ReplyBody, ErrorCode> {
    node.handle.request(body, WAIT).await.map_err(|e| match e {
        proto::brain::RequestError::Refused(err) => err.code,
        other => panic!("request failed: {other}"),
    })
}

fn leg_stats(reply: ReplyBody, leg: u32) -> LegStats {
    match reply {
        ReplyBody::Stats { legs, .. } => {
            legs.into_iter()
                .find(|(l, _)| *l == LegId(leg))
                .expect("leg in stats")
                .1
        }
        other => panic!("expected stats, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_phones_talk_through_the_sbc_and_survive_the_brain() {
    tokio::time::timeout(Duration::from_secs(60), scenario())
        .await
        .expect("scenario finishes in time");
}

async fn scenario() {
    let base = free_block(10);
    let (a_port, b_port) = (base, base + 2);
    let mut incoming = listen((LOCALHOST, 0).into(), BrainConfig::default())
        .await
        .expect("brain listens");
    let brain_addr = incoming.local_addr();

    let sbc = Sbc::start(SbcConfig {
        brain: brain_addr,
        node_id: "sbc-test".into(),
        media_ips: vec![LOCALHOST],
        max_streams: 8,
        workers: 2,
        tick: Duration::from_millis(20),
        ..SbcConfig::default()
    })
    .expect("SBC starts");

    let node = next_node(&mut incoming).await;
    assert_eq!(node.hello.role, Role::Sbc);
    assert_eq!(node.hello.node_id.0, "sbc-test");
    assert!(node.hello.snapshots.is_empty());

    let range = PortRange {
        id: RangeId(7),
        bind_ip: LOCALHOST,
        vip: None,
        first_port: base,
        last_port: base + 9,
    };
    let reply = request(
        &node,
        RequestBody::AssignRanges {
            ranges: vec![range.clone()],
        },
    )
    .await;
    assert_eq!(reply, Ok(ReplyBody::Done));

    let (a, b) = (phone(), phone());
    let (a_addr, b_addr) = (a.local_addr().expect("addr"), b.local_addr().expect("addr"));
    let call_id = CallId("it-call".into());
    let snapshot = CallSnapshot {
        call_id: call_id.clone(),
        version: 1,
        legs: vec![leg(1, a_port, a_addr, 2), leg(2, b_port, b_addr, 1)],
    };
    let reply = request(&node, RequestBody::ApplyCall(snapshot.clone())).await;
    assert_eq!(reply, Ok(ReplyBody::Applied { version: 1 }));

    // Refusals: outside the range, unknown range, a port that cannot be
    // bound, a stale version. None of them disturbs the call.
    let mut outside = snapshot.clone();
    outside.call_id = CallId("c-outside".into());
    outside.legs = vec![leg(1, base + 20, a_addr, 2), leg(2, base + 4, b_addr, 1)];
    assert_eq!(
        request(&node, RequestBody::ApplyCall(outside)).await,
        Err(ErrorCode::INVALID)
    );
    let mut unknown_range = snapshot.clone();
    unknown_range.call_id = CallId("c-range".into());
    unknown_range.legs = vec![leg(1, base + 4, a_addr, 2), leg(2, base + 6, b_addr, 1)];
    unknown_range.legs[0].local.range_id = RangeId(99);
    assert_eq!(
        request(&node, RequestBody::ApplyCall(unknown_range)).await,
        Err(ErrorCode::INVALID)
    );
    let squatter = UdpSocket::bind((LOCALHOST, base + 7)).expect("squat a port");
    let mut unbindable = snapshot.clone();
    unbindable.call_id = CallId("c-bind".into());
    unbindable.legs = vec![leg(1, base + 4, a_addr, 2), leg(2, base + 6, b_addr, 1)];
    assert_eq!(
        request(&node, RequestBody::ApplyCall(unbindable)).await,
        Err(ErrorCode::INTERNAL)
    );
    drop(squatter);
    let mut stale = snapshot.clone();
    stale.version = 0;
    assert_eq!(
        request(&node, RequestBody::ApplyCall(stale)).await,
        Err(ErrorCode::STALE_VERSION)
    );
    // Resending the same version is a no-op.
    assert_eq!(
        request(&node, RequestBody::ApplyCall(snapshot.clone())).await,
        Ok(ReplyBody::Applied { version: 1 })
    );

    // 200 packets each way, byte-exact.
    let phones = tokio::task::spawn_blocking(move || {
        exchange(&a, &b, a_port, b_port, 0..PACKETS);
        (a, b)
    });
    let (a, b) = phones.await.expect("exchange");

    // A stranger sending to A's port is dropped and counted.
    let stranger = phone();
    for seq in 0..3 {
        stranger
            .send_to(&rtp(seq, 0xbad, 0x66), (LOCALHOST, a_port))
            .expect("stranger sends");
    }
    let (a, b) = tokio::task::spawn_blocking(move || {
        b.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let mut buf = [0u8; 2048];
        let leaked = b.recv_from(&mut buf);
        assert!(
            matches!(&leaked, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
            "the stranger's packets reached B: {leaked:?}"
        );
        b.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        (a, b)
    })
    .await
    .expect("check");
    // counters() waits briefly on the workers: not on a runtime thread.
    let counters = tokio::task::block_in_place(|| sbc.counters());
    assert_eq!(counters.traffic.drops.get(DropReason::Hijack), 3);
    assert_eq!((counters.calls, counters.streams), (1, 2));
    assert_eq!(counters.ranges.len(), 1);
    assert_eq!(
        counters.ranges[0].traffic.packets_in,
        2 * u64::from(PACKETS)
    );
    assert!(
        counters
            .to_prometheus()
            .contains("sbc_drops_total{reason=\"hijack_attempt\"} 3")
    );

    // Exact per-leg stats.
    let stats = request(
        &node,
        RequestBody::GetStats {
            call_id: call_id.clone(),
        },
    )
    .await
    .expect("stats");
    for l in [1, 2] {
        let s = leg_stats(stats.clone(), l);
        assert_eq!(
            (s.packets_in, s.packets_out, s.lost),
            (u64::from(PACKETS), u64::from(PACKETS), 0),
            "leg {l}: {s:?}"
        );
        assert_eq!(s.bytes_in, u64::from(PACKETS) * 172);
        assert!(s.mos_x100 > 400, "clean loopback call: {s:?}");
    }

    // The brain heard both legs latch onto the phones, and heartbeats
    // carrying the load.
    let mut node = node;
    let mut latched = Vec::new();
    let mut saw_load = false;
    while latched.len() < 2 || !saw_load {
        let ev = tokio::time::timeout(WAIT, node.events.recv())
            .await
            .expect("events in time")
            .expect("connection open");
        match ev {
            NodeEvent::Event(Event::LegLatched { leg, remote, .. }) => latched.push((leg, remote)),
            NodeEvent::Heartbeat(hb) => saw_load |= hb.load.active_streams == 2,
            other => panic!("unexpected {other:?}"),
        }
    }
    latched.sort();
    assert_eq!(latched, vec![(LegId(1), a_addr), (LegId(2), b_addr)]);

    // The brain dies: media flows on.
    drop(node);
    drop(incoming);
    let (a, b) = tokio::task::spawn_blocking(move || {
        exchange(&a, &b, a_port, b_port, PACKETS..PACKETS + 20);
        (a, b)
    })
    .await
    .expect("exchange without a brain");

    // A brain comes back on the same address: the SBC reconnects and
    // uploads its range and the call.
    let mut incoming = listen(brain_addr, BrainConfig::default())
        .await
        .expect("brain listens again");
    let node = next_node(&mut incoming).await;
    assert_eq!(node.hello.ranges, vec![range]);
    assert_eq!(node.hello.snapshots, vec![Snapshot::Call(snapshot)]);

    let reply = request(
        &node,
        RequestBody::ReleaseCall {
            call_id: call_id.clone(),
        },
    )
    .await
    .expect("released");
    let total = u64::from(PACKETS) + 20;
    for l in [1, 2] {
        let s = leg_stats(reply.clone(), l);
        assert_eq!(
            (s.packets_in, s.packets_out, s.lost),
            (total, total, 0),
            "leg {l}"
        );
    }
    assert_eq!(
        request(&node, RequestBody::ReleaseCall { call_id }).await,
        Err(ErrorCode::UNKNOWN_CALL)
    );

    // Released ports are closed: nothing comes back, and they can be bound.
    a.send_to(&rtp(999, 0xaaaa, 0), (LOCALHOST, a_port))
        .expect("send");
    b.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut buf = [0u8; 2048];
    assert!(b.recv_from(&mut buf).is_err());
    for p in base..base + 4 {
        UdpSocket::bind((LOCALHOST, p)).expect("port free after release");
    }
    tokio::task::block_in_place(|| sbc.shutdown());
}
