//! Runs one bench workload N times, for instruction counts under callgrind:
//! the cost of one iteration is (count at N − count at 0) / N, which takes
//! set-up out of the figure (see BENCHMARKS.md, issue 2).
//!
//! ```sh
//! cargo build --release -p sip --example instr_count
//! valgrind --tool=callgrind target/release/examples/instr_count parse_serialize 2000
//! ```
//!
//! Workloads: parse, serialize, parse_serialize, parse_proxy_fields, tcp, udp.
//! `udp` first runs 40,000 transactions (not counted) so that the timers
//! and live transactions are in their steady state.

use std::hint::black_box;
use std::time::Duration;

use sip::HeaderName;
use sip::transaction::TransportKind;

#[path = "../benches/common/invite.rs"]
mod invite_msg;
#[path = "../benches/common/txn.rs"]
mod txn;

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "parse_serialize".into());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(2000);
    let input = invite_msg::invite();
    let parsed = sip::parse_datagram(input.clone()).expect("the bench INVITE parses");
    let mut out = Vec::with_capacity(2048);
    match what.as_str() {
        "parse" => {
            for _ in 0..n {
                black_box(sip::parse_datagram(black_box(input.clone())).expect("parse"));
            }
        }
        "serialize" => {
            for _ in 0..n {
                out.clear();
                black_box(&parsed).write_to(&mut out);
                black_box(out.len());
            }
        }
        "parse_serialize" => {
            for _ in 0..n {
                let m = sip::parse_datagram(black_box(input.clone())).expect("parse");
                out.clear();
                m.write_to(&mut out);
                black_box(out.len());
            }
        }
        "parse_proxy_fields" => {
            for _ in 0..n {
                let m = sip::parse_datagram(black_box(input.clone())).expect("parse");
                let via = m.top_via().expect("via");
                black_box((
                    via.branch().map_or(0, str::len),
                    m.cseq().expect("cseq").seq,
                    m.call_id().map_or(0, str::len),
                    m.from_tag().map_or(0, str::len),
                    m.to_tag().map_or(0, str::len),
                    m.max_forwards(),
                    m.header(HeaderName::Via),
                ));
            }
        }
        "tcp" => {
            let mut p = txn::Pair::new(TransportKind::Tcp, Duration::from_micros(5));
            for _ in 0..1000 {
                p.transaction();
            }
            for _ in 0..n {
                p.transaction();
            }
        }
        "udp" => {
            let mut p = txn::Pair::new(TransportKind::Udp, Duration::from_millis(1));
            for _ in 0..40_000 {
                p.transaction();
            }
            for _ in 0..n {
                p.transaction();
            }
        }
        other => panic!("unknown workload {other}"),
    }
}
