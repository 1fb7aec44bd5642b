//! The relay's per-packet work on a 172-byte G.711 packet (12-byte header,
//! 160 bytes of 20 ms μ-law): parse, then rewrite SSRC/seq/timestamp in
//! place; and one receive-statistics update per packet.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rtp::{ReceiverStats, Rewriter, RtpHeader, RtpHeaderMut, RtpPacket};

fn g711_packet() -> [u8; 172] {
    let mut buf = [0xffu8; 172];
    RtpHeader {
        payload_type: 0,
        sequence_number: 4242,
        timestamp: 123_456,
        ssrc: 0x1122_3344,
        ..RtpHeader::default()
    }
    .write(&mut buf)
    .expect("172 bytes hold a header");
    buf
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("rtp");
    g.throughput(Throughput::Elements(1));

    let mut buf = g711_packet();
    g.bench_function("parse_172B", |b| {
        b.iter(|| {
            let p = RtpPacket::parse(black_box(&buf)).expect("valid");
            black_box((p.sequence_number(), p.timestamp(), p.payload().len()))
        })
    });

    let mut seq = 0u16;
    g.bench_function("parse_and_rewrite_172B", |b| {
        b.iter(|| {
            let pkt = black_box(&mut buf[..]);
            let (s, t) = match RtpPacket::parse(pkt) {
                Ok(p) => (p.sequence_number(), p.timestamp()),
                Err(_) => return,
            };
            seq = seq.wrapping_add(1);
            if let Ok(mut h) = RtpHeaderMut::new(pkt) {
                h.set_ssrc(0xdead_beef);
                h.set_sequence_number(s.wrapping_add(seq));
                h.set_timestamp(t.wrapping_add(160));
            }
        })
    });

    let mut buf = g711_packet();
    let mut rw = Rewriter::new(0xdead_beef, 160);
    g.bench_function("parse_and_rewriter_apply_172B", |b| {
        b.iter(|| {
            let pkt = black_box(&mut buf[..]);
            if RtpPacket::parse(pkt).is_ok() {
                black_box(rw.apply(pkt).ok());
            }
        })
    });

    let mut stats = ReceiverStats::new(0x1122_3344, 8000);
    let mut i = 0u32;
    g.bench_function("stats_update", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let ts = i.wrapping_mul(160);
            // Arrival wobbles by a few units so the jitter path is exercised.
            let arrival = ts.wrapping_add(i & 7);
            black_box(stats.on_packet(black_box(i as u16), ts, arrival))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
