//! Parse and serialize cost of a typical INVITE with SDP (962 bytes, 240 of
//! them SDP), as a softphone sends it through one proxy (two Vias, a
//! Record-Route).
//!
//! Run: `cargo bench -p sip --bench parse -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sip::HeaderName;

#[path = "common/invite.rs"]
mod invite_msg;
use invite_msg::invite;

fn benches(c: &mut Criterion) {
    let input = invite();
    let parsed = sip::parse_datagram(input.clone()).expect("the bench INVITE parses");
    assert_eq!(
        parsed.to_bytes(),
        input.as_ref(),
        "serialization is byte-exact"
    );

    let mut g = c.benchmark_group("invite");
    g.throughput(Throughput::Bytes(input.len() as u64));

    // Cloning `Bytes` is a refcount increment: the parser is what is measured.
    g.bench_function("parse", |b| {
        b.iter(|| sip::parse_datagram(black_box(input.clone())).expect("parse"))
    });

    // Reusing the buffer is what a transport's send loop does.
    let mut out = Vec::with_capacity(2048);
    g.bench_function("serialize", |b| {
        b.iter(|| {
            out.clear();
            black_box(&parsed).write_to(&mut out);
            black_box(out.len())
        })
    });

    g.bench_function("parse_serialize", |b| {
        b.iter(|| {
            let m = sip::parse_datagram(black_box(input.clone())).expect("parse");
            out.clear();
            m.write_to(&mut out);
            black_box(out.len())
        })
    });

    // What a stateful proxy reads from every request before deciding.
    g.bench_function("parse_proxy_fields", |b| {
        b.iter(|| {
            let m = sip::parse_datagram(black_box(input.clone())).expect("parse");
            let via = m.top_via().expect("via");
            let branch = via.branch().map_or(0, str::len);
            let cseq = m.cseq().expect("cseq").seq;
            let call_id = m.call_id().map_or(0, str::len);
            let from_tag = m.from_tag().map_or(0, str::len);
            let to_tag = m.to_tag().map_or(0, str::len);
            let mf = m.max_forwards();
            black_box((
                branch,
                cseq,
                call_id,
                from_tag,
                to_tag,
                mf,
                m.header(HeaderName::Via),
            ));
        })
    });
    g.finish();
}

criterion_group!(parse, benches);
criterion_main!(parse);
