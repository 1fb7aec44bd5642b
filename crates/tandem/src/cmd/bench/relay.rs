//! `tandem bench relay`: how many packets a second a relay moves on this
//! machine, per core of its own CPU time, with loss and added latency.
//!
//! N calls are set up on the relay (two streams each, one each way); a
//! generator thread sends 20 ms G.711 packets for every stream, spread
//! evenly over each packet interval, from two sockets (one for all A
//! sides, one for all B sides) with `sendmmsg`; a sink thread takes what
//! comes back with `recvmmsg`, and reads the send time written in each
//! packet for the latency. The relay's CPU time comes from /proc (its
//! threads, or its process), so the generator's own cost is not counted.
//!
//! Relays: tandem's SBC (started in this process and driven through the
//! control protocol as the brain would), a bare recvmmsg→sendmmsg loop on
//! one socket (the machine's limit, no relay logic at all), and rtpengine
//! (started here in userspace, `--table=-1`, and driven through its NG
//! protocol).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

use super::cpu::Probe;
use udpio::{Receiver, Sender};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// tandem's SBC, in this process.
    Tandem,
    /// A bare recvmmsg→sendmmsg loop on one socket: the machine's limit.
    Bare,
    /// rtpengine from Debian's package, userspace only.
    Rtpengine,
}

#[derive(Args, Debug, Clone)]
pub struct RelayArgs {
    /// Calls to set up; each carries two streams, one each way.
    #[arg(long, default_value_t = 1000)]
    pub calls: usize,
    /// How long to measure, after one second of warm-up.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Packet interval per stream, ms.
    #[arg(long, default_value_t = 20)]
    pub ptime: u64,
    /// Relay threads (the SBC's media workers; rtpengine's --num-threads).
    #[arg(long, default_value_t = 1)]
    pub workers: u16,
    /// What relays; give several to run them one after another, side by side.
    #[arg(long = "target", value_enum, default_values_t = [Target::Tandem])]
    pub targets: Vec<Target>,
    /// First port of the relay's media range (four ports a call). Keep the
    /// range below the kernel's ephemeral ports (ip_local_port_range), or
    /// another socket may hold one of them.
    #[arg(long, default_value_t = 10000)]
    pub first_port: u16,
}

/// A relay set up for the run: where each call's A and B sides send.
struct Relay {
    legs: Vec<(SocketAddrV4, SocketAddrV4)>,
    probe: Probe,
    stop: Box<dyn FnOnce()>,
}

/// Totals the generator and the sink keep.
#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    received: AtomicU64,
    send_errors: AtomicU64,
}

/// Added latency histogram: 1 µs buckets up to 100 ms.
const LAT_BUCKETS: usize = 100_000;

pub struct Outcome {
    pub target: Target,
    pub offered_pps: f64,
    pub relayed_pps: f64,
    pub loss: f64,
    pub cpu: f64,
    pub per_core: f64,
    pub p50_us: usize,
    pub p99_us: usize,
    pub p999_us: usize,
}

pub fn run(args: &RelayArgs) -> anyhow::Result<Vec<Outcome>> {
    anyhow::ensure!(
        args.calls >= 1 && args.calls <= 15_000,
        "--calls: 1 to 15000"
    );
    anyhow::ensure!((1..=1000).contains(&args.ptime), "--ptime: 1 to 1000 ms");
    anyhow::ensure!((1..=600).contains(&args.seconds), "--seconds: 1 to 600");
    let mut out = Vec::new();
    for &target in &args.targets {
        let o = run_one(args, target)?;
        print_outcome(args, &o);
        out.push(o);
    }
    Ok(out)
}

fn print_outcome(args: &RelayArgs, o: &Outcome) {
    println!(
        "{:<9} {} calls ({} streams), {} ms: offered {:.0} pkt/s, relayed {:.0} pkt/s, loss {:.3}%, \
         relay CPU {:.1}% → {:.0} pkt/s per core; added latency p50 {} µs, p99 {} µs, p99.9 {} µs",
        format!("{:?}", o.target).to_lowercase(),
        args.calls,
        args.calls * 2,
        args.ptime,
        o.offered_pps,
        o.relayed_pps,
        o.loss * 100.0,
        o.cpu * 100.0,
        o.per_core,
        o.p50_us,
        o.p99_us,
        o.p999_us
    );
}

fn run_one(args: &RelayArgs, target: Target) -> anyhow::Result<Outcome> {
    let gen_a = UdpSocket::bind("127.0.0.1:0").context("generator socket")?;
    let gen_b = UdpSocket::bind("127.0.0.1:0").context("generator socket")?;
    for s in [&gen_a, &gen_b] {
        udpio::big_buffers(s, 8 << 20);
        s.set_nonblocking(true)?;
    }
    let a_addr = v4(gen_a.local_addr()?)?;
    let b_addr = v4(gen_b.local_addr()?)?;
    let relay = match target {
        Target::Tandem => tandem_sbc(args, a_addr, b_addr)?,
        Target::Bare => bare(args)?,
        Target::Rtpengine => rtpengine(args, a_addr, b_addr)?,
    };

    let counters = Arc::new(Counters::default());
    let stop_gen = Arc::new(AtomicBool::new(false));
    let stop_sink = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let epoch = (
        Instant::now(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );

    let sink = {
        let (a, b) = (gen_a.try_clone()?, gen_b.try_clone()?);
        let (counters, stop, measuring) = (counters.clone(), stop_sink.clone(), measuring.clone());
        std::thread::Builder::new()
            .name("bench-sink".into())
            .spawn(move || sink_loop(&a, &b, &counters, &stop, &measuring, epoch))?
    };
    let generator = {
        let (a, b) = (gen_a.try_clone()?, gen_b.try_clone()?);
        let (counters, stop) = (counters.clone(), stop_gen.clone());
        let legs = relay.legs.clone();
        let ptime = Duration::from_millis(args.ptime);
        std::thread::Builder::new()
            .name("bench-gen".into())
            .spawn(move || generate(&a, &b, &legs, ptime, &counters, &stop, epoch))?
    };

    // Warm-up: latching, caches, socket buffers.
    std::thread::sleep(Duration::from_secs(1));
    let (sent0, recv0, cpu0, t0) = (
        counters.sent.load(Ordering::Relaxed),
        counters.received.load(Ordering::Relaxed),
        relay.probe.seconds(),
        Instant::now(),
    );
    measuring.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(args.seconds));
    measuring.store(false, Ordering::Relaxed);
    let (sent1, recv1, cpu1, elapsed) = (
        counters.sent.load(Ordering::Relaxed),
        counters.received.load(Ordering::Relaxed),
        relay.probe.seconds(),
        t0.elapsed().as_secs_f64(),
    );
    stop_gen.store(true, Ordering::Relaxed);
    let _ = generator.join();
    // What is still in flight arrives, or is lost.
    std::thread::sleep(Duration::from_millis(300));
    stop_sink.store(true, Ordering::Relaxed);
    let hist = sink.join().unwrap_or_default();
    (relay.stop)();

    let sent = counters.sent.load(Ordering::Relaxed);
    let received = counters.received.load(Ordering::Relaxed);
    let cpu = (cpu1 - cpu0) / elapsed;
    let relayed_pps = (recv1 - recv0) as f64 / elapsed;
    Ok(Outcome {
        target,
        offered_pps: (sent1 - sent0) as f64 / elapsed,
        relayed_pps,
        loss: if sent == 0 {
            0.0
        } else {
            sent.saturating_sub(received) as f64 / sent as f64
        },
        cpu,
        per_core: if cpu > 0.0 { relayed_pps / cpu } else { 0.0 },
        p50_us: percentile(&hist, 0.5),
        p99_us: percentile(&hist, 0.99),
        p999_us: percentile(&hist, 0.999),
    })
}

fn v4(a: SocketAddr) -> anyhow::Result<SocketAddrV4> {
    match a {
        SocketAddr::V4(a) => Ok(a),
        SocketAddr::V6(_) => bail!("IPv4 only"),
    }
}

fn percentile(hist: &[u64], q: f64) -> usize {
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return 0;
    }
    let want = (total as f64 * q).ceil() as u64;
    let mut seen = 0;
    for (us, n) in hist.iter().enumerate() {
        seen += n;
        if seen >= want {
            return us;
        }
    }
    hist.len()
}

/// Sends one packet per stream per `ptime`, calls spread over 1 ms slots.
fn generate(
    a: &UdpSocket,
    b: &UdpSocket,
    legs: &[(SocketAddrV4, SocketAddrV4)],
    ptime: Duration,
    counters: &Counters,
    stop: &AtomicBool,
    epoch: (Instant, u64),
) {
    let slots = ptime.as_millis().max(1) as usize;
    let (mut sa, mut sb) = (Sender::new(), Sender::new());
    let mut seq: u16 = 0;
    let start = Instant::now();
    let mut slot = 0usize;
    let mut round: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let due = start + ptime * round as u32 + Duration::from_millis(slot as u64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let now_ns = wall_ns(epoch);
        for i in (slot..legs.len()).step_by(slots) {
            let (to_a_side, to_b_side) = legs[i];
            for (side, sock, sender, dst) in
                [(0u32, a, &mut sa, to_a_side), (1, b, &mut sb, to_b_side)]
            {
                let buf = sender.next(sock, SocketAddr::V4(dst));
                let ssrc = (i as u32) * 2 + side;
                write_rtp(buf, seq, round as u32 * 160, ssrc, now_ns);
                sender.commit(sock, 172);
            }
        }
        sa.flush(a);
        sb.flush(b);
        slot += 1;
        if slot == slots {
            slot = 0;
            round += 1;
            seq = seq.wrapping_add(1);
        }
        counters.sent.store(sa.sent + sb.sent, Ordering::Relaxed);
        counters
            .send_errors
            .store(sa.errors + sb.errors, Ordering::Relaxed);
    }
}

/// A 172-byte PCMU packet whose payload starts with the send time.
fn write_rtp(buf: &mut [u8], seq: u16, ts: u32, ssrc: u32, now_ns: u64) {
    buf[0] = 0x80;
    buf[1] = 0; // PCMU
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[4..8].copy_from_slice(&ts.to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
    buf[12..20].copy_from_slice(&now_ns.to_le_bytes());
    buf[20..172].fill(0xff); // µ-law silence
}

fn sink_loop(
    a: &UdpSocket,
    b: &UdpSocket,
    counters: &Counters,
    stop: &AtomicBool,
    measuring: &AtomicBool,
    epoch: (Instant, u64),
) -> Vec<u64> {
    let mut hist = vec![0u64; LAT_BUCKETS];
    // Kernel arrival stamps, and a timed drain rather than a wait on the
    // sockets: on loopback a sender pays for waking a sleeping receiver,
    // which would charge the relay for the sink's wake-ups.
    let mut rx_a = Receiver::with_timestamps(a).unwrap_or_else(|_| Receiver::new());
    let mut rx_b = Receiver::with_timestamps(b).unwrap_or_else(|_| Receiver::new());
    let mut received = 0u64;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(1));
        let now_ns = wall_ns(epoch);
        let record = measuring.load(Ordering::Relaxed);
        for (sock, rx) in [(a, &mut rx_a), (b, &mut rx_b)] {
            received += rx
                .drain_timed(sock, |_, data, stamp| {
                    if record && data.len() >= 20 {
                        let mut t = [0u8; 8];
                        t.copy_from_slice(&data[12..20]);
                        let at = stamp.map_or(now_ns, |d| d.as_nanos() as u64);
                        let us = (at.saturating_sub(u64::from_le_bytes(t)) / 1000) as usize;
                        hist[us.min(LAT_BUCKETS - 1)] += 1;
                    }
                })
                .unwrap_or(0) as u64;
        }
        counters.received.store(received, Ordering::Relaxed);
    }
    hist
}

/// Nanoseconds since the Unix epoch, as the kernel stamps arrivals; taken
/// from the monotonic clock plus one reading of the wall clock, so a clock
/// step during the run does not show as latency.
fn wall_ns(epoch: (Instant, u64)) -> u64 {
    epoch.1 + epoch.0.elapsed().as_nanos() as u64
}

// ---------------------------------------------------------------- relays

/// tandem's SBC, in this process, told about the calls as the brain does.
fn tandem_sbc(args: &RelayArgs, a: SocketAddrV4, b: SocketAddrV4) -> anyhow::Result<Relay> {
    use proto::message::{ReplyBody, RequestBody};
    use proto::snapshot::{
        CallId, CallSnapshot, LegId, LegSpec, LocalEndpoint, PayloadType, PortRange, RangeId, Rtcp,
    };

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bench-brain")
        .enable_all()
        .build()?;
    let ip = std::net::IpAddr::from(Ipv4Addr::LOCALHOST);
    let first = args.first_port;
    let last = first
        .checked_add(u16::try_from(args.calls * 4 + 3).unwrap_or(u16::MAX))
        .context("--first-port too high for that many calls")?;
    let (sbc, handle, incoming) = rt.block_on(async {
        let mut incoming =
            proto::brain::listen("127.0.0.1:0".parse()?, proto::brain::BrainConfig::default())
                .await?;
        let sbc = sbc::Sbc::start(sbc::SbcConfig {
            brain: incoming.local_addr(),
            node_id: "bench-sbc".into(),
            media_ips: vec![ip],
            max_streams: u32::try_from(args.calls * 2).unwrap_or(u32::MAX),
            workers: args.workers,
            ..sbc::SbcConfig::default()
        })?;
        let conn = tokio::time::timeout(Duration::from_secs(5), incoming.next())
            .await
            .context("the SBC did not connect")?
            .context("listener closed")?;
        let timeout = Duration::from_secs(5);
        conn.handle
            .request(
                RequestBody::AssignRanges {
                    ranges: vec![PortRange {
                        id: RangeId(1),
                        bind_ip: ip,
                        vip: None,
                        first_port: first,
                        last_port: last,
                    }],
                },
                timeout,
            )
            .await?;
        let pcmu = PayloadType {
            pt: 0,
            name: "PCMU".into(),
            clock_rate: 8000,
            channels: 1,
        };
        let leg = |id: u32, port: u16, remote: SocketAddrV4, to: u32| LegSpec {
            leg_id: LegId(id),
            local: LocalEndpoint {
                range_id: RangeId(1),
                rtp_port: port,
                rtcp: Rtcp::Port(port + 1),
            },
            expected_remote: Some(SocketAddr::V4(remote)),
            latch: true,
            payload_types: vec![pcmu.clone()],
            telephone_event_pt: None,
            relay_to: Some(LegId(to)),
            continuation: None,
        };
        for i in 0..args.calls {
            let p = first + (i as u16) * 4;
            let snapshot = CallSnapshot {
                call_id: CallId(format!("bench-{i}")),
                version: 1,
                legs: vec![leg(1, p, a, 2), leg(2, p + 2, b, 1)],
            };
            match conn
                .handle
                .request(RequestBody::ApplyCall(snapshot), timeout)
                .await?
            {
                ReplyBody::Applied { .. } => {}
                other => bail!("ApplyCall answered {other:?}"),
            }
        }
        anyhow::Ok((sbc, conn, incoming))
    })?;
    // A sends to its leg (port p), B to the other (p + 2).
    let legs = (0..args.calls)
        .map(|i| {
            let p = first + (i as u16) * 4;
            (
                SocketAddrV4::new(Ipv4Addr::LOCALHOST, p),
                SocketAddrV4::new(Ipv4Addr::LOCALHOST, p + 2),
            )
        })
        .collect();
    Ok(Relay {
        legs,
        probe: Probe::Threads("sbc-media".into()),
        stop: Box::new(move || {
            drop(handle);
            drop(incoming);
            sbc.shutdown();
            rt.shutdown_timeout(Duration::from_secs(1));
        }),
    })
}

/// One socket; what comes from one generator socket goes to the other.
fn bare(args: &RelayArgs) -> anyhow::Result<Relay> {
    let sock = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, args.first_port))
        .context("bare relay socket")?;
    udpio::big_buffers(&sock, 8 << 20);
    sock.set_nonblocking(true)?;
    let here = v4(sock.local_addr()?)?;
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("bare-relay".into())
            .spawn(move || bare_loop(&sock, &stop))?
    };
    Ok(Relay {
        legs: vec![(here, here); args.calls],
        probe: Probe::Threads("bare-relay".into()),
        stop: Box::new(move || {
            stop.store(true, Ordering::Relaxed);
            let _ = thread.join();
        }),
    })
}

/// The two generator addresses are learnt from the first packets: each
/// packet goes to the one it did not come from.
fn bare_loop(sock: &UdpSocket, stop: &AtomicBool) {
    let mut rx = Receiver::new();
    let mut tx = Sender::new();
    let mut peers: [Option<SocketAddrV4>; 2] = [None, None];
    let mut fd = libc::pollfd {
        fd: std::os::fd::AsRawFd::as_raw_fd(sock),
        events: libc::POLLIN,
        revents: 0,
    };
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: one valid pollfd for the call.
        unsafe { libc::poll(&mut fd, 1, 10) };
        let _ = rx.drain(sock, |from, data| {
            let SocketAddr::V4(from) = from else { return };
            if peers[0].is_none() {
                peers[0] = Some(from);
            } else if peers[0] != Some(from) && peers[1].is_none() {
                peers[1] = Some(from);
            }
            let to = if peers[0] == Some(from) {
                peers[1]
            } else {
                peers[0]
            };
            if let Some(to) = to {
                let n = data.len().min(udpio::MAX_PACKET);
                tx.next(sock, SocketAddr::V4(to))[..n].copy_from_slice(&data[..n]);
                tx.commit(sock, n);
            }
        });
        tx.flush(sock);
    }
}

/// rtpengine in userspace, driven through its NG protocol.
fn rtpengine(args: &RelayArgs, a: SocketAddrV4, b: SocketAddrV4) -> anyhow::Result<Relay> {
    let ng = UdpSocket::bind("127.0.0.1:0")?;
    let ng_port = {
        // A free port for its NG listener.
        let probe = UdpSocket::bind("127.0.0.1:0")?;
        probe.local_addr()?.port()
    };
    let last = u32::from(args.first_port) + (args.calls as u32) * 4 + 100;
    let child: Child = Command::new("timeout")
        .args(["-s", "KILL", "900", "rtpengine"])
        .args([
            "--config-file=none",
            "--table=-1",
            "--interface=127.0.0.1",
            &format!("--listen-ng=127.0.0.1:{ng_port}"),
            &format!("--port-min={}", args.first_port),
            &format!("--port-max={}", last.min(65535)),
            &format!("--num-threads={}", args.workers),
            "--delete-delay=0",
            "--foreground",
            "--log-stderr",
            "--log-level=3",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting rtpengine (Debian: rtpengine-daemon)")?;
    let timeout_pid = child.id();
    let mut guard = ChildGuard(Some(child));
    ng.set_read_timeout(Some(Duration::from_millis(200)))?;
    let ng_addr: SocketAddr = format!("127.0.0.1:{ng_port}").parse()?;
    let mut ready = false;
    for _ in 0..50 {
        if ng_call(&ng, ng_addr, &[("command", "ping")]).is_ok_and(|r| r.contains("pong")) {
            ready = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    anyhow::ensure!(ready, "rtpengine did not answer on its NG port");
    let sdp = |port: u16| {
        format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
        )
    };
    let mut legs = Vec::with_capacity(args.calls);
    for i in 0..args.calls {
        let call_id = format!("bench-{i}");
        let offer = ng_call(
            &ng,
            ng_addr,
            &[
                ("command", "offer"),
                ("call-id", &call_id),
                ("from-tag", "a"),
                ("sdp", &sdp(a.port())),
            ],
        )?;
        let to_b = sdp_port(&offer).context("no port in rtpengine's offer")?;
        let answer = ng_call(
            &ng,
            ng_addr,
            &[
                ("command", "answer"),
                ("call-id", &call_id),
                ("from-tag", "a"),
                ("to-tag", "b"),
                ("sdp", &sdp(b.port())),
            ],
        )?;
        let to_a = sdp_port(&answer).context("no port in rtpengine's answer")?;
        // A sends to the port in the answer (meant for A), B to the offer's.
        legs.push((
            SocketAddrV4::new(Ipv4Addr::LOCALHOST, to_a),
            SocketAddrV4::new(Ipv4Addr::LOCALHOST, to_b),
        ));
    }
    // `timeout` runs rtpengine as its child: measure (and stop) that.
    let pid = child_of(timeout_pid).unwrap_or(timeout_pid);
    Ok(Relay {
        legs,
        probe: Probe::Process(pid),
        stop: Box::new(move || guard.kill()),
    })
}

struct ChildGuard(Option<Child>);

impl ChildGuard {
    /// Kills rtpengine (the child of `timeout`), then `timeout`.
    fn kill(&mut self) {
        if let Some(mut c) = self.0.take() {
            if let Some(pid) = child_of(c.id()) {
                // SAFETY: kill(2) on a process we started; at worst it is
                // already gone.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

fn child_of(pid: u32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// One NG request (`COOKIE <bencoded dict>`), its reply's text.
fn ng_call(sock: &UdpSocket, to: SocketAddr, dict: &[(&str, &str)]) -> anyhow::Result<String> {
    let cookie = format!("{:08x}", rand_u32());
    let mut msg = format!("{cookie} d");
    for (k, v) in dict {
        msg.push_str(&format!("{}:{k}{}:{v}", k.len(), v.len()));
    }
    msg.push('e');
    for _ in 0..5 {
        sock.send_to(msg.as_bytes(), to)?;
        let mut buf = vec![0u8; 65536];
        while let Ok((n, _)) = sock.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.starts_with(&cookie) {
                if text.contains("6:result5:error") {
                    bail!("rtpengine: {text}");
                }
                return Ok(text);
            }
        }
    }
    bail!("rtpengine did not answer")
}

fn rand_u32() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    t ^ std::process::id().rotate_left(16)
}

/// The port of the first m= line of the SDP inside an NG reply.
fn sdp_port(reply: &str) -> Option<u16> {
    let m = reply.find("m=audio ")?;
    reply[m + 8..].split(' ').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_histogram() {
        let mut h = vec![0u64; 100];
        h[10] = 50;
        h[20] = 49;
        h[90] = 1;
        assert_eq!(percentile(&h, 0.5), 10);
        assert_eq!(percentile(&h, 0.99), 20);
        assert_eq!(percentile(&h, 0.999), 90);
        assert_eq!(percentile(&[0; 4], 0.5), 0);
    }

    #[test]
    fn the_port_of_an_ng_reply() {
        let r =
            "abc d3:sdp90:v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 40012 RTP/AVP 0\r\n6:result2:oke";
        assert_eq!(sdp_port(r), Some(40012));
    }

    /// The whole tool against the bare relay and tandem's SBC, briefly:
    /// every packet comes back.
    #[test]
    fn a_short_run_relays_everything() {
        let args = RelayArgs {
            calls: 20,
            seconds: 1,
            ptime: 20,
            workers: 1,
            targets: vec![Target::Bare, Target::Tandem],
            first_port: 47000,
        };
        for o in run(&args).expect("runs") {
            assert!(o.loss < 0.01, "{:?}: loss {}", o.target, o.loss);
            assert!(
                (1800.0..2200.0).contains(&o.relayed_pps),
                "{:?}: {} pkt/s relayed, 2000 offered",
                o.target,
                o.relayed_pps
            );
        }
    }
}
