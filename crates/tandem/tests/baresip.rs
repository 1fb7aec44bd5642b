//! Two real softphones call each other through `tandem up`, and the audio
//! is checked. Two baresip agents (alice and bob) register with digest
//! credentials; alice calls bob, who answers by himself. Each sends a tone
//! from a WAV file (alice 440 Hz, bob 1000 Hz) and records what it receives
//! (baresip's `sndfile` module); sox then checks the frequency and level of
//! each direction, and the CDR must show the call answered with packets on
//! both legs.
//!
//! baresip is driven through its `cons` module (commands as UDP datagrams)
//! and watched through its log on stdout, so the call starts only once both
//! phones are registered and ends when the test hangs it up.

mod common;

use common::{cdr_leg_packets, demo_platform, free_udp_port, newest_cdr_row, up};
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MEDIA_MIN: u16 = 34000;
/// `demo_platform` gives the media range a thousand ports.
const MEDIA_MAX: u16 = MEDIA_MIN + 999;

/// A baresip agent with its own config directory, its log on stdout
/// collected line by line, and a console (`cons`) to type commands into.
struct Phone {
    name: &'static str,
    /// `timeout -s KILL`, the leader of a process group holding baresip.
    child: Child,
    lines: Receiver<String>,
    log: Arc<Mutex<Vec<String>>>,
    console: SocketAddr,
    rec: PathBuf,
}

impl Phone {
    /// `account` is the accounts line; `rtp` the phone's RTP port range.
    fn start(name: &'static str, dir: &Path, account: &str, tone: &Path, rtp: (u16, u16)) -> Phone {
        let cfg = dir.join(name);
        let rec = cfg.join("rec");
        std::fs::create_dir_all(&rec).expect("phone dir");
        let console = SocketAddr::from(([127, 0, 0, 1], free_udp_port()));
        // From /work/shared/peers/baresip/config: headless, aufile as the
        // source, the sndfile filter recording what is sent and received,
        // ALSA's null device as the player; no stdio (no terminal).
        let config = format!(
            "poll_method\t\tepoll\n\
             sip_listen\t\t127.0.0.1:{sip}\n\
             sip_trans_def\t\tudp\n\
             call_local_timeout\t120\n\
             call_max_calls\t\t4\n\
             audio_path\t\t/usr/share/baresip\n\
             audio_player\t\talsa,null\n\
             audio_source\t\taufile,{tone}\n\
             audio_alert\t\taufile,/dev/null\n\
             audio_srate\t\t8000\n\
             audio_channels\t\t1\n\
             audio_level\t\tno\n\
             rtp_tos\t\t\t0\n\
             rtp_ports\t\t{rtp_min}-{rtp_max}\n\
             rtcp_mux\t\tno\n\
             jitter_buffer_delay\t5-10\n\
             rtp_stats\t\tyes\n\
             net_interface\t\t127.0.0.1\n\
             module_path\t\t/usr/lib/baresip/modules\n\
             module\t\t\tg711.so\n\
             module\t\t\taufile.so\n\
             module_app\t\taccount.so\n\
             module_app\t\tmenu.so\n\
             module\t\t\talsa.so\n\
             module\t\t\tsndfile.so\n\
             module\t\t\tcons.so\n\
             cons_listen\t\t{console}\n\
             snd_path\t\t{rec}\n",
            sip = free_udp_port(),
            tone = tone.display(),
            rtp_min = rtp.0,
            rtp_max = rtp.1,
            rec = rec.display(),
        );
        std::fs::write(cfg.join("config"), config).expect("config");
        std::fs::write(cfg.join("accounts"), format!("{account}\n")).expect("accounts");
        // `timeout` makes itself a process group leader: killing the group
        // takes baresip with it. `-t` is baresip's own, gentler bound.
        let mut child = Command::new("timeout")
            .args(["-s", "KILL", "60", "baresip", "-t", "50", "-f"])
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("baresip");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let keep = log.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut buf = Vec::new();
            // baresip's status line ends in \r, not \n: split on both.
            while let Ok(n) = reader.read_until(b'\n', &mut buf) {
                if n == 0 {
                    break;
                }
                for raw in buf.split(|b| *b == b'\r' || *b == b'\n') {
                    let line = String::from_utf8_lossy(raw).trim().to_string();
                    if line.is_empty() || line.contains("audio=") {
                        continue;
                    }
                    keep.lock().expect("log").push(line.clone());
                    let _ = tx.send(line);
                }
                buf.clear();
            }
        });
        Phone {
            name,
            child,
            lines,
            log,
            console,
            rec,
        }
    }

    fn log(&self) -> String {
        self.log.lock().expect("log").join("\n")
    }

    /// Until a log line contains `what`; returns it.
    fn wait_for(&self, what: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(what) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => panic!(
                    "{}: no \"{what}\" within {within:?}; log:\n{}",
                    self.name,
                    self.log()
                ),
            }
        }
    }

    /// Until a line containing `what` is in the whole log, read or not.
    fn logged(&self, what: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self
                .log
                .lock()
                .expect("log")
                .iter()
                .find(|l| l.contains(what))
            {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "{}: no \"{what}\" within {within:?}; log:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Types a command on the console.
    fn command(&self, cmd: &str) {
        UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.send_to(format!("{cmd}\n").as_bytes(), self.console))
            .expect("console");
    }

    /// Quits, and waits (bounded) until baresip has exited.
    fn quit(&mut self) {
        self.command("/quit");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The WAV file of what this phone received.
    fn received(&self) -> PathBuf {
        let mut found: Vec<PathBuf> = std::fs::read_dir(&self.rec)
            .expect("rec dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "{}: one recording of received audio in {}: {found:?}",
            self.name,
            self.rec.display()
        );
        found.remove(0)
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let group = format!("-{}", self.child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        }
        let _ = self.child.wait();
    }
}

/// The RTP source port baresip reports ("receiving from 127.0.0.1:P").
fn rtp_source_port(line: &str) -> u16 {
    line.rsplit(':')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"))
}

fn sox(args: &[&str]) -> String {
    let out = Command::new("timeout")
        .args(["-s", "KILL", "30", "sox"])
        .args(args)
        .output()
        .expect("sox");
    assert!(
        out.status.success(),
        "sox {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `stat` writes to stderr.
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// (dominant frequency in Hz, RMS amplitude, length in seconds).
fn analyse(wav: &Path) -> (f64, f64, f64) {
    let file = wav.to_str().expect("path");
    let stat = sox(&[file, "-n", "stat"]);
    let field = |name: &str| -> f64 {
        stat.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(':').next())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in sox stat:\n{stat}"))
    };
    let rms = field("RMS     amplitude");
    let length = field("Length (seconds)");
    // `stat -freq` lists "frequency power" pairs for each FFT window: the
    // strongest bin over all of them.
    let freq = sox(&[file, "-n", "stat", "-freq"]);
    let (peak, _) = freq
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let f: f64 = parts.next()?.parse().ok()?;
            let p: f64 = parts.next()?.parse().ok()?;
            parts.next().is_none().then_some((f, p))
        })
        .fold(
            (0.0, f64::MIN),
            |best, (f, p)| {
                if p > best.1 { (f, p) } else { best }
            },
        );
    (peak, rms, length)
}

fn installed(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

#[test]
fn two_baresip_phones_call_through_tandem_and_hear_each_other() {
    for (program, arg) in [("baresip", "-h"), ("sox", "--version")] {
        if !installed(program, arg) {
            assert!(
                std::env::var_os("CI").is_none(),
                "{program} is required in CI"
            );
            eprintln!("{program} not installed: skipping");
            return;
        }
    }
    let started = Instant::now();
    let (dir, config) = demo_platform("baresip", MEDIA_MIN);

    // A tone for each direction.
    let tone = |hz: u32| {
        let path = dir.join(format!("tone{hz}.wav"));
        let p = path.to_str().expect("path").to_string();
        let hz = hz.to_string();
        sox(&[
            "-n", "-r", "8000", "-c", "1", "-b", "16", &p, "synth", "8", "sine", &hz, "vol", "0.5",
        ]);
        path
    };
    let (tone440, tone1000) = (tone(440), tone(1000));

    let up = up(&dir, &config, "up");

    // The domain is 127.0.0.1 (port 5060 by default): the outbound proxy
    // sends everything to tandem's port instead, as `tandem up --demo`
    // tells baresip users to.
    let account = |user: &str, extra: &str| {
        format!(
            "<sip:{user}@127.0.0.1>;auth_user={user};auth_pass={user}-pw;\
             outbound=\"sip:{}\";audio_codecs=PCMU{extra}",
            up.sip
        )
    };
    let mut bob = Phone::start(
        "bob",
        &dir,
        &account("bob", ";answermode=auto"),
        &tone1000,
        (35050, 35099),
    );
    let mut alice = Phone::start(
        "alice",
        &dir,
        &account("alice", ""),
        &tone440,
        (35000, 35049),
    );
    for phone in [&bob, &alice] {
        phone.wait_for("200 OK () [1 binding]", Duration::from_secs(10));
    }
    let registered = started.elapsed();

    alice.command("/dial sip:bob@127.0.0.1");
    for phone in [&alice, &bob] {
        phone.wait_for("Call established", Duration::from_secs(10));
    }
    // Each phone's audio comes from tandem's SBC, not from the other phone.
    for phone in [&alice, &bob] {
        let line = phone.logged("incoming rtp for 'audio'", Duration::from_secs(5));
        let port = rtp_source_port(&line);
        assert!(
            (MEDIA_MIN..=MEDIA_MAX).contains(&port),
            "{}: media from outside the SBC: {line}",
            phone.name
        );
    }
    std::thread::sleep(Duration::from_secs(3));
    alice.command("/hangup");
    for phone in [&alice, &bob] {
        phone.wait_for("terminated", Duration::from_secs(10));
    }
    // The call is over, so the recordings are closed; quit all the same.
    bob.quit();
    alice.quit();

    // Each direction carried its tone: the right frequency, a clear level.
    for (phone, expected) in [(&bob, 440.0), (&alice, 1000.0)] {
        let wav = phone.received();
        let (freq, rms, length) = analyse(&wav);
        eprintln!(
            "{} received {}: {freq:.1} Hz, RMS {rms:.3}, {length:.2} s",
            phone.name,
            wav.display()
        );
        assert!(
            (freq - expected).abs() <= 20.0,
            "{} heard {freq} Hz, expected {expected} Hz",
            phone.name
        );
        // The tones are sent at 0.5 peak, 0.354 RMS; silence is ~0.
        assert!(rms > 0.2, "{} heard a level of only {rms} RMS", phone.name);
        assert!(length >= 2.0, "{} recorded only {length} s", phone.name);
    }

    // The CDR: answered, with packets on both legs (3 s is 150 per leg).
    let row = newest_cdr_row(&dir);
    assert!(
        row.contains("answered") && row.contains(" 200 ") && row.contains("alice"),
        "CDR: {row}"
    );
    for received in cdr_leg_packets(&row) {
        assert!(
            received >= 100,
            "a leg received only {received} packets: {row}"
        );
    }
    eprintln!(
        "registered after {registered:?}, done after {:?}; CDR: {row}",
        started.elapsed()
    );
    drop(alice);
    drop(bob);
    drop(up);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Energy at `hz` in the last `secs` seconds of a recording, relative to
/// full scale (dB).
fn tone_level(wav: &Path, hz: f64, secs: f64) -> f64 {
    let w = media::wav::Wav::open(wav).unwrap_or_else(|e| panic!("{}: {e}", wav.display()));
    let pcm = w.to_mono();
    let take = ((secs * f64::from(w.rate)) as usize).min(pcm.len());
    let tail = &pcm[pcm.len() - take..];
    let amp = media::analysis::tone_amplitude(tail, w.rate, hz);
    20.0 * (amp.max(1e-9) / 32768.0).log10()
}

/// Three softphones dial the demo tenant's conference number; each sends
/// its own tone and must hear the other two — mixed by tandem's mixer,
/// through its SBC — and never itself.
#[test]
fn three_baresip_phones_meet_in_a_conference_and_hear_each_other() {
    for (program, arg) in [("baresip", "-h"), ("sox", "--version")] {
        if !installed(program, arg) {
            assert!(
                std::env::var_os("CI").is_none(),
                "{program} is required in CI"
            );
            eprintln!("{program} not installed: skipping");
            return;
        }
    }
    const CONF_MEDIA: u16 = 44000;
    let (dir, config) = demo_platform("conference", CONF_MEDIA);
    common::tandem(
        &dir,
        &[
            "subscriber",
            "add",
            "demo",
            "carol",
            "--password",
            "carol-pw",
        ],
    );
    common::tandem(
        &dir,
        &["number", "add", "demo", "3000", "--conference", "room"],
    );
    let tone = |hz: u32| {
        let path = dir.join(format!("tone{hz}.wav"));
        let p = path.to_str().expect("path").to_string();
        let hz = hz.to_string();
        sox(&[
            "-n", "-r", "8000", "-c", "1", "-b", "16", &p, "synth", "12", "sine", &hz, "vol", "0.3",
        ]);
        path
    };
    let up = up(&dir, &config, "up");
    let account = |user: &str| {
        format!(
            "<sip:{user}@127.0.0.1>;auth_user={user};auth_pass={user}-pw;\
             outbound=\"sip:{}\";audio_codecs=PCMU",
            up.sip
        )
    };
    let voices = [("alice", 440u32), ("bob", 1000), ("carol", 1700)];
    let mut phones: Vec<Phone> = voices
        .iter()
        .enumerate()
        .map(|(i, (name, hz))| {
            let rtp = 45000 + 50 * i as u16;
            Phone::start(name, &dir, &account(name), &tone(*hz), (rtp, rtp + 49))
        })
        .collect();
    for phone in &phones {
        phone.wait_for("200 OK () [1 binding]", Duration::from_secs(10));
    }
    for phone in &phones {
        phone.command("/dial sip:3000@127.0.0.1");
        phone.wait_for("Call established", Duration::from_secs(10));
        let line = phone.logged("incoming rtp for 'audio'", Duration::from_secs(5));
        let port = rtp_source_port(&line);
        assert!(
            (CONF_MEDIA..=CONF_MEDIA + 999).contains(&port),
            "{}: media from outside the SBC: {line}",
            phone.name
        );
    }
    // All three talk at once for a while.
    std::thread::sleep(Duration::from_secs(4));
    for phone in &phones {
        phone.command("/hangup");
        phone.wait_for("terminated", Duration::from_secs(10));
    }
    for phone in &mut phones {
        phone.quit();
    }

    for (phone, (name, own)) in phones.iter().zip(voices) {
        let wav = phone.received();
        // The last 2 s, when everyone was in.
        let levels: Vec<(u32, f64)> = voices
            .iter()
            .map(|(_, hz)| (*hz, tone_level(&wav, f64::from(*hz), 2.0)))
            .collect();
        eprintln!("{name} heard {levels:?} (dBFS)");
        let own_level = levels
            .iter()
            .find(|(hz, _)| *hz == own)
            .map_or(0.0, |l| l.1);
        for (hz, level) in &levels {
            if *hz == own {
                assert!(*level < -45.0, "{name} heard itself at {level:.1} dBFS");
            } else {
                // Sent at -10.5 dBFS; the mix may scale it, not bury it.
                assert!(
                    *level > -30.0,
                    "{name} heard {hz} Hz at only {level:.1} dBFS"
                );
                assert!(
                    level - own_level > 20.0,
                    "{name}: {hz} Hz only {:.1} dB above its own tone",
                    level - own_level
                );
            }
        }
    }

    // One CDR per caller: answered, in the conference.
    let out = common::tandem(&dir, &["cdr", "list", "--limit", "10"]);
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("room") && l.contains("answered"))
        .collect();
    assert_eq!(rows.len(), 3, "three answered conference CDRs:\n{out}");
    drop(phones);
    drop(up);
    let _ = std::fs::remove_dir_all(&dir);
}
