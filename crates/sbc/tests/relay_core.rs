//! The sans-IO relay core, driven with hand-made datagrams and a fake clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proto::message::Event;
use proto::snapshot::{
    CallId, CallSnapshot, LegId, LegSpec, LocalEndpoint, PayloadType, RangeId, Rtcp,
};
use rtp::{RtcpError, RtpError};
use sbc::relay::{Applied, ApplyError, MAX_PACKET, Relay, RelayConfig, Verdict};
use sbc::{DropReason, Traffic};

const A_PORT: u16 = 40_000;
const B_PORT: u16 = 40_010;
const A_RTCP: u16 = 40_001;
const B_RTCP: u16 = 40_011;
const TE_PT: u8 = 101;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

fn phone_a() -> SocketAddr {
    addr("10.0.0.1:5000")
}

fn phone_b() -> SocketAddr {
    addr("10.0.0.2:6000")
}

fn leg(id: u32, port: u16, rtcp: Rtcp, expected: Option<SocketAddr>, to: u32) -> LegSpec {
    LegSpec {
        leg_id: LegId(id),
        local: LocalEndpoint {
            range_id: RangeId(1),
            rtp_port: port,
            rtcp,
        },
        expected_remote: expected,
        latch: true,
        payload_types: vec![
            PayloadType {
                pt: 0,
                name: "PCMU".into(),
                clock_rate: 8000,
                channels: 1,
            },
            PayloadType {
                pt: TE_PT,
                name: "telephone-event".into(),
                clock_rate: 8000,
                channels: 1,
            },
        ],
        telephone_event_pt: Some(TE_PT),
        relay_to: Some(LegId(to)),
        continuation: None,
    }
}

fn call(
    version: u64,
    mux: bool,
    a_expected: Option<SocketAddr>,
    b_expected: Option<SocketAddr>,
) -> CallSnapshot {
    let (ra, rb) = if mux {
        (Rtcp::Mux, Rtcp::Mux)
    } else {
        (Rtcp::Port(A_RTCP), Rtcp::Port(B_RTCP))
    };
    CallSnapshot {
        call_id: CallId("call-1".into()),
        version,
        legs: vec![
            leg(1, A_PORT, ra, a_expected, 2),
            leg(2, B_PORT, rb, b_expected, 1),
        ],
    }
}

fn cid() -> CallId {
    CallId("call-1".into())
}

fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// A receiver report with no report blocks: the smallest valid compound.
fn rtcp_rr(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 201, 0, 1];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p
}

fn relay() -> Relay {
    Relay::new(RelayConfig {
        relatch_after: Duration::from_secs(2),
        media_timeout: Duration::from_secs(5),
    })
}

fn setup(mux: bool, a_exp: Option<SocketAddr>, b_exp: Option<SocketAddr>) -> (Relay, Instant) {
    let mut r = relay();
    let t0 = Instant::now();
    assert_eq!(r.apply(&call(1, mux, a_exp, b_exp), t0), Ok(Applied::New));
    (r, t0)
}

fn send(r: &mut Relay, port: u16, src: SocketAddr, pkt: &[u8], now: Instant) -> Verdict {
    let mut buf = pkt.to_vec();
    r.on_packet(port, src, &mut buf, now)
}

fn traffic(r: &Relay, leg: u32) -> Traffic {
    *r.leg_traffic(&cid(), LegId(leg)).expect("leg exists")
}

fn events(r: &mut Relay) -> Vec<Event> {
    std::iter::from_fn(|| r.poll_event()).collect()
}

#[test]
fn latches_on_first_packet_and_relays_both_ways() {
    let (mut r, t0) = setup(false, None, None);
    // B has neither latched nor an SDP address: nowhere to send yet.
    let v = send(&mut r, A_PORT, phone_a(), &rtp(0, 1, 160, 0xa, b"a1"), t0);
    assert_eq!(v, Verdict::Drop(DropReason::NoDestination));
    assert_eq!(
        events(&mut r),
        vec![Event::LegLatched {
            call_id: cid(),
            leg: LegId(1),
            remote: phone_a()
        }]
    );
    // B speaks: it latches, and its packet goes to A's latched address
    // from A's port.
    let v = send(&mut r, B_PORT, phone_b(), &rtp(0, 7, 160, 0xb, b"b1"), t0);
    assert_eq!(
        v,
        Verdict::Forward {
            out_port: A_PORT,
            dst: phone_a(),
            len: 14
        }
    );
    let v = send(&mut r, A_PORT, phone_a(), &rtp(0, 2, 320, 0xa, b"a2"), t0);
    assert_eq!(
        v,
        Verdict::Forward {
            out_port: B_PORT,
            dst: phone_b(),
            len: 14
        }
    );
    let a = traffic(&r, 1);
    assert_eq!((a.packets_in, a.bytes_in, a.packets_out), (2, 28, 1));
    assert_eq!(a.drops.get(DropReason::NoDestination), 1);
    let b = traffic(&r, 2);
    assert_eq!((b.packets_in, b.packets_out, b.bytes_out), (1, 1, 14));
}

#[test]
fn forwards_to_expected_remote_before_the_far_end_latches() {
    let b_sdp = addr("10.0.0.2:6000");
    let (mut r, t0) = setup(false, None, Some(b_sdp));
    let v = send(&mut r, A_PORT, phone_a(), &rtp(0, 1, 0, 1, b"x"), t0);
    assert_eq!(
        v,
        Verdict::Forward {
            out_port: B_PORT,
            dst: b_sdp,
            len: 13
        }
    );
    // B's NAT rewrote its port: once B sends, the latched address wins.
    let b_nat = addr("10.0.0.2:31000");
    send(&mut r, B_PORT, b_nat, &rtp(0, 1, 0, 2, b"y"), t0);
    let v = send(&mut r, A_PORT, phone_a(), &rtp(0, 2, 160, 1, b"x"), t0);
    assert!(matches!(v, Verdict::Forward { dst, .. } if dst == b_nat));
}

#[test]
fn hijack_is_dropped_and_counted_until_the_source_goes_silent() {
    let (mut r, t0) = setup(false, None, Some(phone_b()));
    let attacker = addr("192.0.2.66:7000");
    send(&mut r, A_PORT, phone_a(), &rtp(0, 1, 0, 1, b"x"), t0);
    let _ = events(&mut r);
    for i in 0..5 {
        let at = t0 + Duration::from_millis(100 * i);
        let v = send(&mut r, A_PORT, attacker, &rtp(0, 9, 0, 9, b"evil"), at);
        assert_eq!(v, Verdict::Drop(DropReason::Hijack));
    }
    let a = traffic(&r, 1);
    assert_eq!(a.drops.get(DropReason::Hijack), 5);
    assert_eq!(a.packets_in, 1);
    assert_eq!(
        traffic(&r, 2).packets_out,
        1,
        "nothing of the attacker's went out"
    );
    assert!(events(&mut r).is_empty());
    // The real phone has been silent 2 s (a NAT rebinding): the new source
    // may take over, and the brain hears about it.
    let rebound = addr("10.0.0.1:5999");
    let v = send(
        &mut r,
        A_PORT,
        rebound,
        &rtp(0, 2, 160, 1, b"x"),
        t0 + Duration::from_secs(2),
    );
    assert!(matches!(v, Verdict::Forward { .. }));
    assert_eq!(
        events(&mut r),
        vec![Event::LegLatched {
            call_id: cid(),
            leg: LegId(1),
            remote: rebound
        }]
    );
}

#[test]
fn rtcp_on_its_own_port_goes_to_the_peers_rtcp() {
    let (mut r, t0) = setup(false, None, Some(phone_b()));
    // Before B's RTCP source is known: B's RTP address, port + 1.
    let v = send(&mut r, A_RTCP, addr("10.0.0.1:5001"), &rtcp_rr(1), t0);
    assert_eq!(
        v,
        Verdict::Forward {
            out_port: B_RTCP,
            dst: addr("10.0.0.2:6001"),
            len: 8
        }
    );
    // B's RTCP comes from elsewhere (NAT): latched, and used from then on.
    let b_rtcp = addr("10.0.0.2:41234");
    let v = send(&mut r, B_RTCP, b_rtcp, &rtcp_rr(2), t0);
    assert!(matches!(
        v,
        Verdict::Forward {
            out_port: A_RTCP,
            ..
        }
    ));
    let v = send(&mut r, A_RTCP, addr("10.0.0.1:5001"), &rtcp_rr(1), t0);
    assert!(matches!(v, Verdict::Forward { dst, .. } if dst == b_rtcp));
    // Invalid RTCP is dropped by reason; RTP on the RTCP port is not RTCP.
    let v = send(
        &mut r,
        A_RTCP,
        addr("10.0.0.1:5001"),
        &rtp(0, 1, 0, 1, b"x"),
        t0,
    );
    assert_eq!(
        v,
        Verdict::Drop(DropReason::Rtcp(RtcpError::NotReportFirst))
    );
    let a = traffic(&r, 1);
    assert_eq!((a.rtcp_in, a.rtcp_out, a.packets_in), (2, 1, 0));
    assert_eq!(a.drops.get(DropReason::Rtcp(RtcpError::NotReportFirst)), 1);
}

#[test]
fn rtcp_mux_is_demultiplexed_and_relayed_on_the_rtp_ports() {
    let (mut r, t0) = setup(true, None, Some(phone_b()));
    send(&mut r, A_PORT, phone_a(), &rtp(0, 1, 0, 1, b"x"), t0);
    let v = send(&mut r, A_PORT, phone_a(), &rtcp_rr(1), t0);
    assert_eq!(
        v,
        Verdict::Forward {
            out_port: B_PORT,
            dst: phone_b(),
            len: 8
        }
    );
    // Muxed RTCP from a stranger is a hijack too.
    let v = send(&mut r, A_PORT, addr("192.0.2.1:1"), &rtcp_rr(1), t0);
    assert_eq!(v, Verdict::Drop(DropReason::Hijack));
    // A truncated RTCP header (second byte in the RTCP range) is bad RTCP.
    let v = send(&mut r, A_PORT, phone_a(), &[0x80, 200, 0], t0);
    assert!(matches!(v, Verdict::Drop(DropReason::Rtcp(_))));
    let a = traffic(&r, 1);
    assert_eq!((a.packets_in, a.rtcp_in), (1, 1));
    assert_eq!(traffic(&r, 2).rtcp_out, 1);
}

#[test]
fn invalid_datagrams_are_dropped_by_reason() {
    let (mut r, t0) = setup(false, Some(phone_a()), Some(phone_b()));
    let cases: Vec<(Vec<u8>, DropReason)> = vec![
        (vec![0x80, 0, 1], DropReason::Rtp(RtpError::TooShort)),
        (vec![], DropReason::Rtp(RtpError::TooShort)),
        (
            {
                let mut p = rtp(0, 1, 0, 1, b"x");
                p[0] = 0x40; // version 1
                p
            },
            DropReason::Rtp(RtpError::BadVersion),
        ),
        (
            {
                let mut p = rtp(0, 1, 0, 1, b"");
                p[0] = 0x83; // claims 3 CSRCs it does not have
                p
            },
            DropReason::Rtp(RtpError::TruncatedCsrc),
        ),
        (rtp(0, 1, 0, 1, &[0u8; MAX_PACKET]), DropReason::Oversize),
    ];
    for (pkt, reason) in &cases {
        assert_eq!(
            send(&mut r, A_PORT, phone_a(), pkt, t0),
            Verdict::Drop(*reason)
        );
    }
    let a = traffic(&r, 1);
    assert_eq!(a.drops.get(DropReason::Rtp(RtpError::TooShort)), 2);
    assert_eq!(a.drops.get(DropReason::Oversize), 1);
    assert_eq!(a.drops.total(), 5);
    assert_eq!(a.packets_in, 0);
    assert_eq!(traffic(&r, 2).packets_out, 0);
    // Garbage must not latch the leg either.
    assert!(events(&mut r).is_empty());
    // Exactly MAX_PACKET is still relayed.
    let v = send(
        &mut r,
        A_PORT,
        phone_a(),
        &rtp(0, 1, 0, 1, &[0u8; MAX_PACKET - 12]),
        t0,
    );
    assert!(matches!(
        v,
        Verdict::Forward {
            len: MAX_PACKET,
            ..
        }
    ));
    // A port nobody owns.
    assert_eq!(
        send(&mut r, 1234, phone_a(), &rtp(0, 1, 0, 1, b""), t0),
        Verdict::Drop(DropReason::UnknownPort)
    );
    assert_eq!(r.counters().traffic.drops.get(DropReason::UnknownPort), 1);
}

/// Deterministic xorshift64* for reproducible garbage.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn random_garbage_never_panics_and_invalid_is_never_forwarded() {
    let (mut r, t0) = setup(true, Some(phone_a()), Some(phone_b()));
    let mut rng = XorShift(0x5eed_1234_abcd_0001);
    let ports = [A_PORT, B_PORT, A_RTCP, 1];
    let mut buf = [0u8; 1600];
    let mut forwarded = 0;
    for i in 0..20_000u32 {
        let len = (rng.next() % 1600) as usize;
        for b in &mut buf[..len] {
            *b = rng.next() as u8;
        }
        // Half the time make the first byte look like version 2.
        if i.is_multiple_of(2) && len > 0 {
            buf[0] = 0x80 | (buf[0] & 0x3f);
        }
        let port = ports[(rng.next() % 4) as usize];
        let src = if rng.next().is_multiple_of(2) {
            phone_a()
        } else {
            phone_b()
        };
        let data = &mut buf[..len];
        let valid = if data.len() > MAX_PACKET {
            false
        } else if data.get(1).is_some_and(|b| (192..=223).contains(b)) {
            rtp::RtcpCompound::parse(data).is_ok()
        } else {
            rtp::RtpPacket::parse(data).is_ok()
        };
        if let Verdict::Forward { len: out, .. } = r.on_packet(port, src, data, t0) {
            assert!(valid, "forwarded an invalid datagram of {len} bytes");
            assert!(out <= len);
            forwarded += 1;
        }
    }
    let c = r.counters();
    let dropped = c.traffic.drops.total();
    assert_eq!(
        forwarded + dropped,
        20_000,
        "every datagram is either forwarded or counted as a drop"
    );
}

fn te(event: u8, end: bool, duration: u16) -> [u8; 4] {
    let d = duration.to_be_bytes();
    [event, (u8::from(end) << 7) | 10, d[0], d[1]]
}

#[test]
fn rfc4733_events_become_dtmf_events_and_are_still_relayed() {
    let (mut r, t0) = setup(false, None, Some(phone_b()));
    let ts = 8000;
    let mut seq = 10;
    let mut pkts = vec![rtp(TE_PT, seq, ts, 1, &te(5, false, 160))];
    for d in [320, 480] {
        seq += 1;
        pkts.push(rtp(TE_PT, seq, ts, 1, &te(5, false, d)));
    }
    for _ in 0..3 {
        seq += 1;
        pkts.push(rtp(TE_PT, seq, ts, 1, &te(5, true, 800)));
    }
    // A second key; its end packets are lost, and the call is released.
    seq += 1;
    pkts.push(rtp(TE_PT, seq, ts + 2000, 1, &te(11, false, 400)));
    for p in &pkts {
        let v = send(&mut r, A_PORT, phone_a(), p, t0);
        assert!(matches!(v, Verdict::Forward { .. }));
    }
    let dtmf: Vec<Event> = events(&mut r)
        .into_iter()
        .filter(|e| matches!(e, Event::Dtmf { .. }))
        .collect();
    assert_eq!(
        dtmf,
        vec![Event::Dtmf {
            call_id: cid(),
            leg: LegId(1),
            digit: '5',
            duration_ms: 100
        }]
    );
    r.release(&cid()).expect("call exists");
    assert_eq!(
        events(&mut r),
        vec![Event::Dtmf {
            call_id: cid(),
            leg: LegId(1),
            digit: '#',
            duration_ms: 50
        }]
    );
}

#[test]
fn stats_count_loss_from_a_sequence_gap() {
    let (mut r, t0) = setup(false, None, Some(phone_b()));
    for seq in (0u16..100).filter(|s| !(40..45).contains(s)) {
        let at = t0 + Duration::from_millis(20 * u64::from(seq));
        send(
            &mut r,
            A_PORT,
            phone_a(),
            &rtp(0, seq, u32::from(seq) * 160, 7, &[0xff; 160]),
            at,
        );
    }
    let stats = r.call_stats(&cid()).expect("call exists");
    let (_, a) = stats.iter().find(|(l, _)| *l == LegId(1)).expect("leg 1");
    assert_eq!(a.packets_in, 95);
    assert_eq!(a.lost, 5);
    assert!(a.jitter_us < 1000, "evenly spaced: {} us", a.jitter_us);
    assert!(
        a.mos_x100 > 100 && a.mos_x100 < 430,
        "5% loss lowers MOS: {}",
        a.mos_x100
    );
    let (_, b) = stats.iter().find(|(l, _)| *l == LegId(2)).expect("leg 2");
    assert_eq!((b.packets_out, b.bytes_out), (95, 95 * 172));
    assert_eq!(b.mos_x100, 0, "nothing received on B: no score");
}

#[test]
fn snapshot_versions_are_ordered_and_updates_keep_latched_state() {
    let (mut r, t0) = setup(false, None, None);
    send(&mut r, A_PORT, phone_a(), &rtp(0, 1, 0, 1, b"x"), t0);
    assert_eq!(
        r.apply(&call(1, false, None, None), t0),
        Ok(Applied::Unchanged)
    );
    // v3 gives B an address: A's latch and counters survive.
    assert_eq!(
        r.apply(&call(3, false, None, Some(phone_b())), t0),
        Ok(Applied::Updated)
    );
    assert!(matches!(
        r.apply(&call(2, false, None, None), t0),
        Err(ApplyError::Stale(_))
    ));
    assert_eq!(r.version(&cid()), Some(3));
    assert_eq!(traffic(&r, 1).packets_in, 1);
    let v = send(&mut r, A_PORT, phone_a(), &rtp(0, 2, 160, 1, b"x"), t0);
    assert!(matches!(v, Verdict::Forward { dst, .. } if dst == phone_b()));
    let attacker = addr("192.0.2.1:1");
    assert_eq!(
        send(&mut r, A_PORT, attacker, &rtp(0, 3, 320, 1, b"x"), t0),
        Verdict::Drop(DropReason::Hijack),
        "the lock survived the update"
    );
    // v4 moves B to another port: the old one is freed, A relays to the new.
    let mut v4 = call(4, false, None, Some(phone_b()));
    v4.legs[1].local.rtp_port = B_PORT + 100;
    v4.legs[1].local.rtcp = Rtcp::Port(B_PORT + 101);
    assert_eq!(r.apply(&v4, t0), Ok(Applied::Updated));
    assert!(!r.has_port(B_PORT) && !r.has_port(B_RTCP));
    let v = send(&mut r, A_PORT, phone_a(), &rtp(0, 4, 480, 1, b"x"), t0);
    assert!(matches!(v, Verdict::Forward { out_port, .. } if out_port == B_PORT + 100));
    // Another call may not take a port in use.
    let mut other = call(1, false, None, None);
    other.call_id = CallId("call-2".into());
    other.legs[1].local.rtp_port = 41_000;
    other.legs[1].local.rtcp = Rtcp::Port(41_001);
    assert!(matches!(
        r.apply(&other, t0),
        Err(ApplyError::PortInUse { port: A_PORT, .. })
    ));
    // Inconsistent snapshots are refused whole.
    let mut bad = call(5, false, None, None);
    bad.legs[1].relay_to = Some(LegId(9));
    assert!(matches!(r.apply(&bad, t0), Err(ApplyError::Invalid(_))));
    assert_eq!(r.version(&cid()), Some(4));
}

#[test]
fn release_frees_every_port_and_returns_final_stats() {
    let (mut r, t0) = setup(false, None, Some(phone_b()));
    for seq in 0..10 {
        send(&mut r, A_PORT, phone_a(), &rtp(0, seq, 0, 1, b"x"), t0);
    }
    let mut ports = r.call_ports(&cid());
    ports.sort();
    assert_eq!(ports, vec![A_PORT, A_RTCP, B_PORT, B_RTCP]);
    let stats = r.release(&cid()).expect("released");
    assert_eq!(stats.len(), 2);
    assert_eq!(stats[0].1.packets_in, 10);
    assert_eq!(stats[1].1.packets_out, 10);
    assert_eq!((r.call_count(), r.stream_count()), (0, 0));
    for p in ports {
        assert!(!r.has_port(p));
    }
    assert_eq!(
        send(&mut r, A_PORT, phone_a(), &rtp(0, 11, 0, 1, b"x"), t0),
        Verdict::Drop(DropReason::UnknownPort)
    );
    assert_eq!(r.release(&cid()), None);
    // Range totals keep the released legs' traffic.
    let c = r.counters();
    assert_eq!(c.ranges.len(), 1);
    assert_eq!(
        (c.ranges[0].streams, c.ranges[0].traffic.packets_in),
        (0, 10)
    );
    // After a release the call may come back at any version.
    assert_eq!(r.apply(&call(1, false, None, None), t0), Ok(Applied::New));
}

#[test]
fn media_timeout_is_reported_once_per_silence() {
    let (mut r, t0) = setup(false, None, Some(phone_b()));
    r.on_tick(t0 + Duration::from_secs(60));
    assert!(events(&mut r).is_empty(), "no media yet, no timeout");
    send(&mut r, A_PORT, phone_a(), &rtp(0, 1, 0, 1, b"x"), t0);
    let _ = events(&mut r);
    r.on_tick(t0 + Duration::from_secs(4));
    assert!(events(&mut r).is_empty());
    let timeout = Event::MediaTimeout {
        call_id: cid(),
        leg: LegId(1),
    };
    r.on_tick(t0 + Duration::from_secs(5));
    assert_eq!(events(&mut r), vec![timeout.clone()]);
    r.on_tick(t0 + Duration::from_secs(6));
    assert!(events(&mut r).is_empty(), "reported once");
    // Media resumes, then stops again: reported again.
    send(
        &mut r,
        A_PORT,
        phone_a(),
        &rtp(0, 2, 160, 1, b"x"),
        t0 + Duration::from_secs(7),
    );
    r.on_tick(t0 + Duration::from_secs(12));
    assert_eq!(events(&mut r), vec![timeout]);
}
