//! Runs one mixer workload a fixed number of times, for instruction counts
//! under callgrind (wall-clock benches are noisy on a shared machine):
//!
//! `valgrind --tool=callgrind target/release/examples/mixcount kernel 10000`
//!
//! Workloads: `kernel` (bare 3-party G.711 N-1), `three` (engine, 3 talking),
//! `hundred` (engine, 3 talkers + 97 faint noise), `hundred-mute` (3 talkers,
//! 97 sending nothing), `empty` (100 participants, nobody sending).

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
            let (t, q, m) = match w {
                "three" => (3, 0, 0),
                "hundred" => (3, 97, 0),
                "hundred-mute" => (3, 0, 97),
                "empty" => (0, 0, 100),
                _ => panic!("unknown workload {w}"),
            };
            let mut r = rig::Rig::new(t, q, m);
            for _ in 0..n {
                sink += r.tick();
            }
        }
    }
    println!("{which} x{n}: {sink}");
}
