//! A rough throughput figure for one media worker on loopback: a fake
//! brain sets up one call, one thread floods leg A with 172-byte RTP, and
//! another counts what comes out of leg B. Sender, worker and receiver
//! share the machine's cores, so this is a floor, not a benchmark.
//!
//! It first times the sans-IO core alone (no sockets), which is the part
//! this crate controls; the rest is system calls and scheduling.
//!
//! `cargo run --release -p sbc --example loopback_flood [packets] [base_port]`

use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use proto::brain::{BrainConfig, listen};
use proto::message::RequestBody;
use proto::snapshot::{
    CallId, CallSnapshot, LegId, LegSpec, LocalEndpoint, PortRange, RangeId, Rtcp,
};
use sbc::{Sbc, SbcConfig};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn leg(id: u32, port: u16, to: u32, expected: std::net::SocketAddr) -> LegSpec {
    LegSpec {
        leg_id: LegId(id),
        local: LocalEndpoint {
            range_id: RangeId(1),
            rtp_port: port,
            rtcp: Rtcp::Mux,
        },
        expected_remote: Some(expected),
        latch: true,
        payload_types: vec![],
        telephone_event_pt: None,
        relay_to: Some(LegId(to)),
        continuation: None,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let packets: u32 = args.next().map_or(Ok(1_000_000), |s| s.parse())?;
    let base: u16 = args.next().map_or(Ok(47_000), |s| s.parse())?;

    core_only(packets);

    let mut incoming = listen((LOCALHOST, 0).into(), BrainConfig::default()).await?;
    let sbc = Sbc::start(SbcConfig {
        brain: incoming.local_addr(),
        workers: 1,
        ..SbcConfig::default()
    })?;
    let node = incoming.next().await.context("no SBC")?;
    let t = Duration::from_secs(5);
    let range = PortRange {
        id: RangeId(1),
        bind_ip: LOCALHOST,
        vip: None,
        first_port: base,
        last_port: base + 3,
    };
    node.handle
        .request(
            RequestBody::AssignRanges {
                ranges: vec![range],
            },
            t,
        )
        .await?;
    let sender = UdpSocket::bind((LOCALHOST, 0))?;
    let receiver = UdpSocket::bind((LOCALHOST, 0))?;
    receiver.set_read_timeout(Some(Duration::from_millis(500)))?;
    let call = CallSnapshot {
        call_id: CallId("flood".into()),
        version: 1,
        legs: vec![
            leg(1, base, 2, sender.local_addr()?),
            leg(2, base + 2, 1, receiver.local_addr()?),
        ],
    };
    node.handle.request(RequestBody::ApplyCall(call), t).await?;

    let rx = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let mut n = 0u64;
        let mut first = None;
        let mut last = Instant::now();
        while receiver.recv_from(&mut buf).is_ok() {
            first.get_or_insert_with(Instant::now);
            last = Instant::now();
            n += 1;
        }
        (n, first.map(|f| last.duration_since(f)))
    });
    let mut pkt = [0u8; 172];
    pkt[0] = 0x80;
    let start = Instant::now();
    for seq in 0..packets {
        pkt[2..4].copy_from_slice(&(seq as u16).to_be_bytes());
        pkt[4..8].copy_from_slice(&(seq.wrapping_mul(160)).to_be_bytes());
        pkt[8..12].copy_from_slice(&0x1234u32.to_be_bytes());
        let _ = sender.send_to(&pkt, (LOCALHOST, base));
    }
    let sent_in = start.elapsed();
    let (received, span) = rx
        .join()
        .map_err(|_| anyhow::anyhow!("receiver panicked"))?;
    let span = span.unwrap_or(sent_in).max(Duration::from_millis(1));
    let c = sbc.counters(); // a brief wait on the worker; nothing else runs here
    println!(
        "sent {packets} in {sent_in:?}; relayed {received} in {span:?}: {:.0} packets/s; \
         SBC in {} out {} send errors {}",
        received as f64 / span.as_secs_f64(),
        c.traffic.packets_in,
        c.traffic.packets_out,
        c.send_errors
    );
    sbc.shutdown();
    Ok(())
}

/// The relay core's cost per packet on a latched two-leg call.
fn core_only(packets: u32) {
    let a = (LOCALHOST, 5000).into();
    let b = (LOCALHOST, 6000).into();
    let mut relay = sbc::Relay::new(sbc::RelayConfig::default());
    let now = Instant::now();
    let call = CallSnapshot {
        call_id: CallId("core".into()),
        version: 1,
        legs: vec![leg(1, 30_000, 2, a), leg(2, 30_002, 1, b)],
    };
    if relay.apply(&call, now).is_err() {
        return;
    }
    let mut pkt = [0u8; 172];
    pkt[0] = 0x80;
    let mut forwarded = 0u64;
    let start = Instant::now();
    for seq in 0..packets {
        pkt[2..4].copy_from_slice(&(seq as u16).to_be_bytes());
        pkt[4..8].copy_from_slice(&(seq.wrapping_mul(160)).to_be_bytes());
        let (port, src) = if seq % 2 == 0 {
            (30_000, a)
        } else {
            (30_002, b)
        };
        pkt[8..12].copy_from_slice(&(port as u32).to_be_bytes());
        if let sbc::Verdict::Forward { .. } = relay.on_packet(port, src, &mut pkt, Instant::now()) {
            forwarded += 1;
        }
    }
    let per = start.elapsed().as_nanos() as f64 / f64::from(packets.max(1));
    println!(
        "core alone: {forwarded} of {packets} forwarded, {per:.0} ns per packet (Instant::now() included)"
    );
}
