//! Mixer throughput. Per-participant figures: divide a tick's time by the
//! participants in it; participants per core = 20 ms / that.
//!
//! - `kernel/g711 3-party`: decode three µ-law frames, sum, N-1 and encode
//!   for each — the bare mixing kernel, no jitter buffer or VAD.
//! - `kernel/g711 3-party x1000`: the same over 1000 conferences' distinct
//!   buffers, so caches see a realistic working set.
//! - `engine/...`: the whole engine per tick — parse and buffer each
//!   incoming packet, play out, VAD, select, mix, encode, write every
//!   outgoing RTP packet.

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};

#[path = "support/rig.rs"]
mod rig;
use media::CodecKind;
use rig::{Rig, Three};

fn kernel_bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("kernel");
    let mut one = Three::new(0);
    g.throughput(Throughput::Elements(3));
    g.bench_function("g711 3-party", |b| {
        b.iter(|| {
            one.mix();
            black_box(&one.out);
        })
    });
    let mut many: Vec<Three> = (0..1000).map(Three::new).collect();
    g.throughput(Throughput::Elements(3000));
    g.bench_function("g711 3-party x1000", |b| {
        b.iter(|| {
            for c in many.iter_mut() {
                c.mix();
            }
            black_box(&many[999].out);
        })
    });
    g.finish();
}

fn engine_bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine");
    let mut cases = vec![
        ("g711 3-party, all talking", CodecKind::Pcmu, 3, 0, 0),
        (
            "g711 100-party, 3 talkers + 97 faint noise",
            CodecKind::Pcmu,
            3,
            97,
            0,
        ),
        (
            "g711 100-party, 3 talkers + 97 sending nothing",
            CodecKind::Pcmu,
            3,
            0,
            97,
        ),
        ("g711 100-party, nobody sending", CodecKind::Pcmu, 0, 0, 100),
        (
            "g722 100-party, 3 talkers + 97 faint noise",
            CodecKind::G722,
            3,
            97,
            0,
        ),
        (
            "g722 100-party, 3 talkers + 97 sending nothing",
            CodecKind::G722,
            3,
            0,
            97,
        ),
    ];
    if cfg!(feature = "opus") {
        cases.push((
            "opus 100-party, 3 talkers + 97 sending nothing",
            CodecKind::Opus,
            3,
            0,
            97,
        ));
    }
    for (name, kind, talkers, quiet, mute) in cases {
        let mut rig = Rig::new(kind, talkers, quiet, mute);
        g.throughput(Throughput::Elements((talkers + quiet + mute) as u64));
        g.bench_function(name, |b| b.iter(|| black_box(rig.tick())));
    }
    g.finish();
}

criterion_group!(benches, kernel_bench, engine_bench);
criterion_main!(benches);
