//! `tandem bench mixer`: how many conference participants a core mixes,
//! for a conference size, codec and rate — the sizing table an operator
//! needs.
//!
//! End to end (the default): a mixer node runs in this process and is
//! given the conferences through the control protocol, as the brain would;
//! a generator thread plays every participant's SBC endpoint, sending 20 ms
//! packets on time from one socket (each participant from its own loopback
//! address, 127.1.x.y, so the mixer tells them apart by source as it does
//! SBC endpoints), and a sink thread counts what comes back. The figure is
//! participants ÷ the mixer threads' CPU time (from /proc), so the
//! generator's cost is not counted.
//!
//! `--kernel`: the mixing engine alone on this thread, as fast as it goes,
//! no sockets: the ceiling without I/O.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use media::{AnyCodec, Codec, CodecKind};
use proto::message::{ReplyBody, RequestBody};
use proto::snapshot::{
    ConferenceId, ConferenceOptions, ConferenceSnapshot, LocalEndpoint, Participant,
    ParticipantFlags, PayloadType, Rtcp,
};

use super::cpu::Probe;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchCodec {
    Pcmu,
    Pcma,
    G722,
    /// Linear 16-bit at the conference rate.
    L16,
    /// 48 kHz mono (needs a build with the `opus` feature).
    Opus,
}

#[derive(Args, Debug, Clone)]
pub struct MixerArgs {
    /// Participants per conference.
    #[arg(long, default_value_t = 3)]
    pub size: usize,
    /// Participants in all (rounded down to whole conferences).
    #[arg(long, default_value_t = 3000)]
    pub participants: usize,
    #[arg(long, value_enum, default_value_t = BenchCodec::Pcmu)]
    pub codec: BenchCodec,
    /// Mixing rate, Hz; default: the codec's own.
    #[arg(long)]
    pub rate: Option<u32>,
    /// Participants per conference who talk (a tone each); the rest send
    /// silence. Default: up to 3.
    #[arg(long)]
    pub talkers: Option<usize>,
    /// How long to measure, after one second of warm-up.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Mixer threads (end to end only).
    #[arg(long, default_value_t = 1)]
    pub workers: u16,
    /// The engine alone, no sockets.
    #[arg(long)]
    pub kernel: bool,
}

pub struct Outcome {
    pub participants: usize,
    pub conferences: usize,
    pub cpu: f64,
    pub per_core: f64,
    /// Packets received by the participants ÷ those they should have.
    pub delivered: f64,
    pub worst_participant: f64,
    pub late_ticks: u64,
}

impl BenchCodec {
    fn kind(self, rate: u32) -> CodecKind {
        match self {
            BenchCodec::Pcmu => CodecKind::Pcmu,
            BenchCodec::Pcma => CodecKind::Pcma,
            BenchCodec::G722 => CodecKind::G722,
            BenchCodec::L16 => CodecKind::L16 { rate },
            BenchCodec::Opus => CodecKind::Opus,
        }
    }

    fn payload_type(self, rate: u32) -> PayloadType {
        let (pt, name, clock_rate, channels) = match self {
            BenchCodec::Pcmu => (0, "PCMU", 8000, 1),
            BenchCodec::Pcma => (8, "PCMA", 8000, 1),
            BenchCodec::G722 => (9, "G722", 8000, 1),
            BenchCodec::L16 => (96, "L16", rate, 1),
            BenchCodec::Opus => (111, "opus", 48000, 2),
        };
        PayloadType {
            pt,
            name: name.into(),
            clock_rate,
            channels,
        }
    }

    fn default_rate(self) -> u32 {
        match self {
            BenchCodec::Pcmu | BenchCodec::Pcma => 8000,
            BenchCodec::G722 | BenchCodec::L16 => 16000,
            BenchCodec::Opus => 48000,
        }
    }
}

/// 50 frames (1 s) of each sound, encoded ahead: a tone per talker slot
/// and low noise for the rest, so the generator never encodes.
struct Frames {
    pt: u8,
    clock_step: u32,
    talk: Vec<Vec<Vec<u8>>>,
    quiet: Vec<Vec<u8>>,
}

fn frames(kind: CodecKind, pt: u8) -> anyhow::Result<Frames> {
    let rate = kind.rate();
    let n = (rate / 50) as usize;
    let encode_all = |signal: &dyn Fn(usize) -> i16| -> anyhow::Result<Vec<Vec<u8>>> {
        let mut enc = AnyCodec::new(kind).map_err(|e| anyhow::anyhow!("{kind:?}: {e}"))?;
        let mut out = Vec::new();
        for f in 0..50 {
            let pcm: Vec<i16> = (0..n).map(|i| signal(f * n + i)).collect();
            let mut payload = vec![0u8; media::codec::OPUS_MAX_PAYLOAD.max(kind.payload_len(n))];
            let len = enc
                .encode(&pcm, &mut payload)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            payload.truncate(len);
            out.push(payload);
        }
        Ok(out)
    };
    let mut talk = Vec::new();
    for freq in [440.0f64, 1000.0, 1600.0] {
        let r = f64::from(rate);
        talk.push(encode_all(&|i| {
            (8000.0 * (2.0 * std::f64::consts::PI * freq * i as f64 / r).sin()) as i16
        })?);
    }
    let mut seed = 1u32;
    let noise: Vec<i16> = (0..50 * n)
        .map(|_| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((seed >> 16) as i16) >> 10 // about -60 dBFS
        })
        .collect();
    let quiet = encode_all(&|i| noise[i])?;
    Ok(Frames {
        pt,
        clock_step: n as u32 * kind.rtp_clock_rate() / rate,
        talk,
        quiet,
    })
}

/// Writes participant `k`'s packet `seq` into `buf`; its length.
fn write_packet(buf: &mut [u8], f: &Frames, k: usize, talker: Option<usize>, seq: u32) -> usize {
    let payload = match talker {
        Some(t) => &f.talk[t % f.talk.len()][seq as usize % 50],
        None => &f.quiet[seq as usize % 50],
    };
    buf[0] = 0x80;
    buf[1] = f.pt;
    buf[2..4].copy_from_slice(&(seq as u16).to_be_bytes());
    buf[4..8].copy_from_slice(&seq.wrapping_mul(f.clock_step).to_be_bytes());
    buf[8..12].copy_from_slice(&(0x5000_0000u32 + k as u32).to_be_bytes());
    buf[12..12 + payload.len()].copy_from_slice(payload);
    12 + payload.len()
}

/// The loopback address participant `k` sends from.
fn source_ip(k: usize) -> Ipv4Addr {
    let n = k as u32 + 1;
    Ipv4Addr::new(127, 1 + (n >> 16) as u8, (n >> 8) as u8, n as u8)
}

#[cfg(test)]
fn participant_of(ip: Ipv4Addr) -> Option<usize> {
    let o = ip.octets();
    if o[0] != 127 || o[1] == 0 {
        return None;
    }
    let n = (u32::from(o[1] - 1) << 16) | (u32::from(o[2]) << 8) | u32::from(o[3]);
    (n as usize).checked_sub(1)
}

pub fn run(args: &MixerArgs) -> anyhow::Result<Outcome> {
    anyhow::ensure!((1..=1000).contains(&args.size), "--size: 1 to 1000");
    anyhow::ensure!((1..=600).contains(&args.seconds), "--seconds: 1 to 600");
    let conferences = args.participants / args.size;
    anyhow::ensure!(
        conferences >= 1 && conferences * args.size <= 200_000,
        "--participants: at least one conference, at most 200000 participants"
    );
    let rate = args.rate.unwrap_or(args.codec.default_rate());
    anyhow::ensure!(
        [8000, 16000, 32000, 48000].contains(&rate),
        "--rate: 8000, 16000, 32000 or 48000"
    );
    let talkers = args.talkers.unwrap_or(3).min(args.size);
    let kind = args.codec.kind(rate);
    let f = frames(kind, args.codec.payload_type(rate).pt)?;
    let o = if args.kernel {
        kernel(args, conferences, rate, talkers, kind, &f)?
    } else {
        end_to_end(args, conferences, rate, talkers, &f)?
    };
    println!(
        "{} {} conferences of {} ({} participants), {:?} at {} Hz mixed at {rate} Hz, {talkers} talking: \
         mixer CPU {:.1}% → {:.0} participants per core; delivered {:.2}% of packets (worst participant {:.1}%), {} late ticks",
        if args.kernel { "kernel" } else { "end-to-end" },
        o.conferences,
        args.size,
        o.participants,
        args.codec,
        kind.rate(),
        o.cpu * 100.0,
        o.per_core,
        o.delivered * 100.0,
        o.worst_participant * 100.0,
        o.late_ticks
    );
    Ok(o)
}

fn snapshot(
    c: usize,
    size: usize,
    rate: u32,
    payload: &PayloadType,
    range: &proto::snapshot::PortRange,
    generator_port: u16,
) -> ConferenceSnapshot {
    ConferenceSnapshot {
        conference_id: ConferenceId(format!("bench-{c}")),
        version: 1,
        sample_rate: rate,
        tick_ms: 20,
        max_speakers: 3,
        options: ConferenceOptions::default(),
        participants: (0..size)
            .map(|j| {
                let k = c * size + j;
                Participant {
                    participant_id: j as u32 + 1,
                    local: LocalEndpoint {
                        range_id: range.id,
                        rtp_port: range.first_port,
                        rtcp: Rtcp::Mux,
                    },
                    sbc_endpoint: SocketAddr::from((source_ip(k), generator_port)),
                    payload_type: payload.clone(),
                    ssrc: 0x6000_0000 + k as u32,
                    flags: ParticipantFlags::default(),
                }
            })
            .collect(),
    }
}

fn end_to_end(
    args: &MixerArgs,
    conferences: usize,
    rate: u32,
    talkers: usize,
    f: &Frames,
) -> anyhow::Result<Outcome> {
    let total = conferences * args.size;
    let generator = UdpSocket::bind("0.0.0.0:0").context("generator socket")?;
    udpio::big_buffers(&generator, 16 << 20);
    generator.set_nonblocking(true)?;
    let gport = generator.local_addr()?.port();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bench-brain")
        .enable_all()
        .build()?;
    let payload = args.codec.payload_type(rate);
    let (mixer, conn) = rt.block_on(async {
        let mut incoming =
            proto::brain::listen("127.0.0.1:0".parse()?, proto::brain::BrainConfig::default())
                .await?;
        let mixer = mixer::Mixer::start(mixer::MixerConfig {
            brain: incoming.local_addr(),
            node_id: "bench-mixer".into(),
            first_port: 0,
            workers: args.workers.max(1),
            max_participants: u32::try_from(total).unwrap_or(u32::MAX),
            ..mixer::MixerConfig::default()
        })?;
        let conn = tokio::time::timeout(Duration::from_secs(5), incoming.next())
            .await
            .context("the mixer did not connect")?
            .context("listener closed")?;
        for c in 0..conferences {
            let range = &conn.hello.ranges[c % conn.hello.ranges.len()];
            let s = snapshot(c, args.size, rate, &payload, range, gport);
            match conn
                .handle
                .request(RequestBody::ApplyConference(s), Duration::from_secs(5))
                .await?
            {
                ReplyBody::Applied { .. } => {}
                other => bail!("ApplyConference answered {other:?}"),
            }
        }
        anyhow::Ok((mixer, (conn, incoming)))
    })?;
    let ports: Vec<u16> = conn.0.hello.ranges.iter().map(|r| r.first_port).collect();

    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new((0..total).map(|_| AtomicU64::new(0)).collect::<Vec<_>>());
    let sink = {
        let sock = generator.try_clone()?;
        let (stop, received) = (stop.clone(), received.clone());
        std::thread::Builder::new()
            .name("bench-sink".into())
            .spawn(move || {
                // A timed drain, not a wait on the socket: on loopback the
                // sender pays for waking a sleeping receiver, which would
                // charge the mixer for the sink's wake-ups.
                let mut rx = udpio::Receiver::new();
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(2));
                    // The mixer sends to each participant's own address;
                    // the packet's destination is the participant.
                    let _ = rx.drain(&sock, |_, data| {
                        if data.len() >= 12 {
                            let ssrc = u32::from_be_bytes([data[8], data[9], data[10], data[11]]);
                            let k = ssrc.wrapping_sub(0x6000_0000) as usize;
                            if let Some(n) = received.get(k) {
                                n.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    });
                }
            })?
    };
    let sender = {
        let sock = generator.try_clone()?;
        let stop = stop.clone();
        let size = args.size;
        let frames = Frames {
            pt: f.pt,
            clock_step: f.clock_step,
            talk: f.talk.clone(),
            quiet: f.quiet.clone(),
        };
        std::thread::Builder::new()
            .name("bench-gen".into())
            .spawn(move || {
                let mut tx = udpio::Sender::new();
                let start = Instant::now();
                let mut seq: u32 = 0;
                while !stop.load(Ordering::Relaxed) {
                    // 20 slots of 1 ms, conferences spread over them.
                    for slot in 0..20usize {
                        let due = start + Duration::from_millis(u64::from(seq) * 20 + slot as u64);
                        if let Some(w) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(w);
                        }
                        for c in (slot..conferences).step_by(20) {
                            let to =
                                SocketAddr::from((Ipv4Addr::LOCALHOST, ports[c % ports.len()]));
                            for j in 0..size {
                                let k = c * size + j;
                                let buf = tx.next_from(&sock, to, source_ip(k));
                                let talker = (j < talkers).then_some(j);
                                let n = write_packet(buf, &frames, k, talker, seq);
                                tx.commit(&sock, n);
                            }
                        }
                        tx.flush(&sock);
                    }
                    seq += 1;
                }
            })?
    };

    let probe = Probe::Threads("mixer-w".into());
    std::thread::sleep(Duration::from_secs(1));
    let count = || -> Vec<u64> { received.iter().map(|n| n.load(Ordering::Relaxed)).collect() };
    let (r0, cpu0, late0, t0) = (
        count(),
        probe.seconds(),
        mixer.counters().late_ticks,
        Instant::now(),
    );
    std::thread::sleep(Duration::from_secs(args.seconds));
    let (r1, cpu1, late1, elapsed) = (
        count(),
        probe.seconds(),
        mixer.counters().late_ticks,
        t0.elapsed().as_secs_f64(),
    );
    stop.store(true, Ordering::Relaxed);
    let _ = sender.join();
    let _ = sink.join();
    drop(conn);
    mixer.shutdown();
    rt.shutdown_timeout(Duration::from_secs(1));

    let expected = elapsed * 50.0;
    let per: Vec<f64> = r0
        .iter()
        .zip(&r1)
        .map(|(a, b)| (b - a) as f64 / expected)
        .collect();
    let cpu = (cpu1 - cpu0) / elapsed;
    Ok(Outcome {
        participants: total,
        conferences,
        cpu,
        per_core: if cpu > 0.0 { total as f64 / cpu } else { 0.0 },
        delivered: per.iter().sum::<f64>() / total as f64,
        worst_participant: per.iter().copied().fold(f64::INFINITY, f64::min),
        late_ticks: late1 - late0,
    })
}

/// The engine alone: every tick, each participant's packet pushed, every
/// conference ticked, every output written — as fast as it goes.
fn kernel(
    args: &MixerArgs,
    conferences: usize,
    rate: u32,
    talkers: usize,
    kind: CodecKind,
    f: &Frames,
) -> anyhow::Result<Outcome> {
    let mut rooms = Vec::with_capacity(conferences);
    for c in 0..conferences {
        let mut conf = mixer::Conference::new(mixer::ConferenceConfig {
            rate,
            ..mixer::ConferenceConfig::default()
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let ids: Vec<_> = (0..args.size)
            .map(|j| {
                conf.add_participant(mixer::ParticipantConfig {
                    codec: kind,
                    payload_type: f.pt,
                    ssrc: (c * args.size + j) as u32,
                })
            })
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        rooms.push((conf, ids));
    }
    let total = conferences * args.size;
    let mut pkt = [0u8; udpio::MAX_PACKET];
    let mut out = [0u8; udpio::MAX_PACKET];
    let start = Instant::now();
    let cpu0 = thread_cpu();
    let deadline = start + Duration::from_secs(args.seconds);
    let mut seq: u32 = 0;
    let mut sink = 0usize;
    while Instant::now() < deadline {
        let now = start + Duration::from_millis(u64::from(seq) * 20);
        for (c, (conf, ids)) in rooms.iter_mut().enumerate() {
            for (j, id) in ids.iter().enumerate() {
                let n = write_packet(
                    &mut pkt,
                    f,
                    c * args.size + j,
                    (j < talkers).then_some(j),
                    seq,
                );
                let _ = conf.push_rtp(*id, &pkt[..n], now);
            }
            for o in conf.tick(now) {
                sink += o.write(&mut out).unwrap_or(0);
            }
        }
        seq += 1;
    }
    let cpu = thread_cpu() - cpu0;
    std::hint::black_box(sink);
    // Participant-ticks done ÷ CPU seconds ÷ 50 ticks a second.
    let per_core = total as f64 * f64::from(seq) / cpu.max(1e-9) / 50.0;
    Ok(Outcome {
        participants: total,
        conferences,
        cpu: cpu / start.elapsed().as_secs_f64(),
        per_core,
        delivered: 1.0,
        worst_participant: 1.0,
        late_ticks: 0,
    })
}

fn thread_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn participants_map_to_addresses_and_back() {
        for k in [0usize, 1, 254, 255, 256, 65_534, 65_535, 199_999] {
            assert_eq!(participant_of(source_ip(k)), Some(k), "{k}");
        }
        assert_ne!(source_ip(0), Ipv4Addr::new(127, 1, 0, 0));
    }

    /// The tool end to end, briefly: every participant gets its packets.
    #[test]
    fn a_short_run_delivers_to_everyone() {
        let args = MixerArgs {
            size: 3,
            participants: 30,
            codec: BenchCodec::Pcmu,
            rate: None,
            talkers: None,
            seconds: 1,
            workers: 1,
            kernel: false,
        };
        let o = run(&args).expect("runs");
        assert_eq!((o.participants, o.conferences), (30, 10));
        assert!(o.delivered > 0.97, "delivered {}", o.delivered);
        assert!(o.worst_participant > 0.9, "worst {}", o.worst_participant);
        let k = run(&MixerArgs {
            kernel: true,
            ..args
        })
        .expect("kernel");
        assert!(k.per_core > 1000.0, "{}", k.per_core);
    }
}
