//! Whole non-INVITE transactions through a client layer and a server layer
//! in memory: the TU builds a request, the client layer adds its Via and
//! serializes it, the server side parses it and gets a NewRequest, the TU
//! answers 200, the server layer serializes it, the client side parses it and
//! completes. The figure therefore includes parsing and serialization.
//!
//! `tcp`: transactions end with the final response (timers J and K are zero).
//! `udp`: the fake clock moves 1 ms per transaction, so Completed states pile
//! up for Timer K (5 s) and Timer J (32 s) and expire through the timer queue
//! as they would in service (about 5k client and 32k server transactions
//! live in steady state).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sip::transaction::TransportKind;
use std::time::Duration;

#[path = "common/txn.rs"]
mod txn;
use txn::Pair;

fn non_invite(c: &mut Criterion) {
    let mut group = c.benchmark_group("non_invite_transaction");
    group.throughput(Throughput::Elements(1));
    let mut tcp = Pair::new(TransportKind::Tcp, Duration::from_micros(5));
    group.bench_function("tcp", |b| b.iter(|| tcp.transaction()));
    let mut udp = Pair::new(TransportKind::Udp, Duration::from_millis(1));
    group.bench_function("udp", |b| b.iter(|| udp.transaction()));
    group.finish();
    eprintln!(
        "udp steady state: {} client / {} server transactions live, {} / {} timer entries",
        udp.uac.live_transactions(),
        udp.uas.live_transactions(),
        udp.uac.timer_entries(),
        udp.uas.timer_entries(),
    );
}

criterion_group!(benches, non_invite);
criterion_main!(benches);
