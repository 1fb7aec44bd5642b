//! The packet path allocates nothing: this binary counts every allocation
//! while the core relays, drops and measures a steady stream.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use proto::snapshot::{CallId, CallSnapshot, LegId, LegSpec, LocalEndpoint, RangeId, Rtcp};
use sbc::relay::{Relay, RelayConfig, Verdict};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn leg(id: u32, port: u16, to: u32, expected: SocketAddr) -> LegSpec {
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
        telephone_event_pt: Some(101),
        relay_to: Some(LegId(to)),
        continuation: None,
    }
}

fn rtp(buf: &mut [u8; 172], pt: u8, seq: u16, ssrc: u32) {
    buf[0] = 0x80;
    buf[1] = pt;
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

#[test]
fn steady_relaying_allocates_nothing() {
    let a: SocketAddr = "10.0.0.1:5000".parse().expect("addr");
    let b: SocketAddr = "10.0.0.2:6000".parse().expect("addr");
    let stranger: SocketAddr = "192.0.2.1:1".parse().expect("addr");
    let mut relay = Relay::new(RelayConfig::default());
    let t0 = Instant::now();
    let call = CallSnapshot {
        call_id: CallId("c".into()),
        version: 1,
        legs: vec![leg(1, 30_000, 2, a), leg(2, 30_002, 1, b)],
    };
    relay.apply(&call, t0).expect("apply");
    let mut buf = [0u8; 172];
    // Latch both legs first: that emits events, which may allocate.
    for (port, src, ssrc) in [(30_000, a, 1), (30_002, b, 2)] {
        rtp(&mut buf, 0, 0, ssrc);
        relay.on_packet(port, src, &mut buf, t0);
    }
    while relay.poll_event().is_some() {}

    let before = ALLOCS.load(Ordering::Relaxed);
    let mut forwarded = 0;
    for seq in 1..10_000u16 {
        let now = t0 + Duration::from_millis(20 * u64::from(seq));
        for (port, src, ssrc) in [(30_000, a, 1), (30_002, b, 2)] {
            rtp(&mut buf, 0, seq, ssrc);
            if let Verdict::Forward { .. } = relay.on_packet(port, src, &mut buf, now) {
                forwarded += 1;
            }
        }
        // Drops: a stranger, garbage, and muxed RTCP.
        rtp(&mut buf, 0, seq, 9);
        relay.on_packet(30_000, stranger, &mut buf, now);
        relay.on_packet(30_000, a, &mut buf[..5], now);
        let rr = [0x80, 201, 0, 1, 0, 0, 0, 1];
        let mut rr_buf = rr;
        relay.on_packet(30_002, b, &mut rr_buf, now);
    }
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    assert_eq!(forwarded, 2 * 9_999);
    assert_eq!(allocs, 0, "allocations on the packet path");
}
