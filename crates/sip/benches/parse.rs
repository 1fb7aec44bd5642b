//! Parse and serialize cost of a typical INVITE with SDP (962 bytes, 240 of
//! them SDP), as a softphone sends it through one proxy (two Vias, a
//! Record-Route).
//!
//! Run: `cargo bench -p sip --bench parse -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sip::HeaderName;

const SDP: &str = "v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 192.0.2.101\r\n\
s=-\r\n\
c=IN IP4 192.0.2.101\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

fn invite() -> Bytes {
    let head = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP proxy.atlanta.example.com:5060;branch=z9hG4bK2d4790.1\r\n\
Via: SIP/2.0/UDP 192.0.2.101:5060;received=198.51.100.7;rport=40312;branch=z9hG4bK74bf9\r\n\
Record-Route: <sip:proxy.atlanta.example.com;lr>\r\n\
Max-Forwards: 69\r\n\
From: \"Alice Liddell\" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
Call-ID: 3848276298220188511@atlanta.example.com\r\n\
CSeq: 31862 INVITE\r\n\
Contact: \"Alice Liddell\" <sip:alice@192.0.2.101:5060;transport=udp>;expires=3600\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER, NOTIFY\r\n\
Supported: replaces, timer\r\n\
User-Agent: Softphone/5.2.1 (Linux)\r\n\
Content-Type: application/sdp\r\n";
    let text = format!("{head}Content-Length: {}\r\n\r\n{SDP}", SDP.len());
    Bytes::from(text)
}

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
