//! Runs one mixer workload a fixed number of times, for instruction counts
//! under callgrind (wall-clock benches are noisy on a shared machine):
//!
//! `valgrind --tool=callgrind target/release/examples/mixcount kernel 10000`
//!
//! Workloads: `kernel` (bare 3-party G.711 N-1), `three` (engine, 3 talking),
//! `hundred` (engine, 3 talkers + 97 faint noise), `hundred-mute` (3 talkers,
//! 97 sending nothing), `empty` (100 participants, nobody sending), and
//! `g722-hundred`, `g722-hundred-mute` (the same two in G.722 at 16 kHz).

#[path = "../benches/support/rig.rs"]
mod rig;

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "kernel".into());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let mut sink = 0usize;
    match which.as_str() {
        "kernel" => {
            let mut c = rig::Three::new(0);
            for _ in 0..n {
                c.mix();
                sink += c.out[0][0] as usize;
            }
        }
        w => {
            use media::CodecKind::{G722, Pcmu};
            let (kind, t, q, m) = match w {
                "three" => (Pcmu, 3, 0, 0),
                "hundred" => (Pcmu, 3, 97, 0),
                "hundred-mute" => (Pcmu, 3, 0, 97),
                "empty" => (Pcmu, 0, 0, 100),
                "g722-hundred" => (G722, 3, 97, 0),
                "g722-hundred-mute" => (G722, 3, 0, 97),
                _ => panic!("unknown workload {w}"),
            };
            let mut r = rig::Rig::new(kind, t, q, m);
            for _ in 0..n {
                sink += r.tick();
            }
        }
    }
    println!("{which} x{n}: {sink}");
}
