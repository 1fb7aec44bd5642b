//! What the tests that start the `tandem` binary share: running its
//! commands, starting `tandem up` (or `tandem brain` with an SBC beside it)
//! and reading its addresses, free ports, and a plain HTTP GET.

// Each test binary uses a different subset.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Runs a `tandem` command against `dir` and returns its output; fails the
/// test when it fails.
pub fn tandem(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("tandem");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A running `tandem up` or `tandem brain` (+ `tandem sbc`), killed when dropped.
pub struct Up {
    pub child: Child,
    pub sip: SocketAddr,
    pub api: SocketAddr,
    pub control: SocketAddr,
    pub sbc: Option<Child>,
    /// `tandem sbc --metrics` when the SBC runs on its own.
    pub sbc_metrics: Option<SocketAddr>,
}

impl Drop for Up {
    fn drop(&mut self) {
        for child in std::iter::once(&mut self.child).chain(self.sbc.as_mut()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `role` is "up" (every role in one process) or "brain" (then an SBC
/// process is started beside it, joined over the control protocol).
pub fn up(dir: &Path, config: &Path, role: &str) -> Up {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .arg("--data-dir")
        .arg(dir)
        .args([role, "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("tandem up");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (mut sip, mut api, mut control) = (None, None, None);
    while sip.is_none() || api.is_none() || control.is_none() {
        let line = lines.next().expect("tandem up exited").expect("line");
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts[..] {
            ["listening", "SIP", "UDP", addr] => sip = addr.parse().ok(),
            ["listening", "control", addr] => control = addr.parse().ok(),
            ["listening", "API", url] => {
                api = url
                    .trim_start_matches("http://")
                    .trim_end_matches("/metrics")
                    .parse()
                    .ok();
            }
            _ => {}
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let control: SocketAddr = control.expect("control");
    let sbc_metrics = (role == "brain").then(|| {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        SocketAddr::from(([127, 0, 0, 1], port))
    });
    let sbc = sbc_metrics.map(|metrics| {
        Command::new(env!("CARGO_BIN_EXE_tandem"))
            .args([
                "sbc",
                "--brain",
                &control.to_string(),
                "--media-ip",
                "127.0.0.1",
                "--metrics",
                &metrics.to_string(),
            ])
            .env("RUST_LOG", "warn")
            .spawn()
            .expect("tandem sbc")
    });
    Up {
        child,
        sip: sip.expect("sip"),
        api: api.expect("api"),
        control,
        sbc,
        sbc_metrics,
    }
}

pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub fn http_get(addr: SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect API");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// The newest row of `tandem cdr list`, waiting up to 5 s for the call's
/// CDR to be written; empty if none came.
pub fn newest_cdr_row(dir: &Path) -> String {
    for _ in 0..50 {
        let list = tandem(dir, &["cdr", "list"]);
        if let Some(r) = list.lines().nth(1) {
            return r.to_string();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    String::new()
}

/// The packets received on leg A and leg B, from a `tandem cdr list` row
/// (its last two columns, `received/lost`).
pub fn cdr_leg_packets(row: &str) -> Vec<u64> {
    let mut legs: Vec<u64> = row
        .split_whitespace()
        .rev()
        .take(2)
        .filter_map(|l| l.split('/').next().and_then(|n| n.parse().ok()))
        .collect();
    legs.reverse();
    assert_eq!(legs.len(), 2, "two legs in {row}");
    legs
}

/// A SIPp scenario of `tests/sipp`.
pub fn scenario(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

/// Whether SIPp is here; outside CI a test without it is skipped.
pub fn have_sipp() -> bool {
    if Command::new("sipp").arg("-v").output().is_ok() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "sipp is required in CI");
    eprintln!("sipp not installed: skipping");
    false
}

/// The command for one SIPp run on 127.0.0.1, killed after 60 s at most.
/// SIPp arguments for alice (password `alice-pw`) calling bob once through
/// `target` with `scenario`, answering tandem's 407.
pub fn alice_calls_bob(target: String, scenario: &Path) -> Vec<String> {
    alice_calls(target, "bob", scenario)
}

/// SIPp arguments for alice calling `callee` (a user or a number) once.
pub fn alice_calls(target: String, callee: &str, scenario: &Path) -> Vec<String> {
    vec![
        target,
        "-sf".into(),
        scenario.display().to_string(),
        "-s".into(),
        callee.into(),
        "-au".into(),
        "alice".into(),
        "-ap".into(),
        "alice-pw".into(),
        // SIPp otherwise puts the server's address in the digest uri;
        // tandem checks it names the Request-URI (RFC 3261 §22.4).
        "-auth_uri".into(),
        format!("{callee}@127.0.0.1"),
        "-mp".into(),
        free_udp_port().to_string(),
        "-m".into(),
        "1".into(),
    ]
}

pub fn sipp_command(args: &[String]) -> Command {
    let mut c = Command::new("timeout");
    c.args(["-s", "KILL", "60", "sipp"])
        .args(["-nostdin", "-i", "127.0.0.1", "-timeout", "50s"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// A fresh data directory with tenant `demo` (domain 127.0.0.1), alice
/// (password alice-pw, number 1001) and bob (bob-pw, 1002), and a config
/// file for `tandem up` on free ports with media on
/// `media_base..media_base+999`.
pub fn demo_platform(name: &str, media_base: u16) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("tandem-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    tandem(&dir, &["tenant", "add", "demo", "--domain", "127.0.0.1"]);
    for (user, number) in [("alice", "1001"), ("bob", "1002")] {
        let password = format!("{user}-pw");
        tandem(
            &dir,
            &[
                "subscriber",
                "add",
                "demo",
                user,
                "--password",
                &password,
                "--number",
                number,
            ],
        );
    }
    let config = dir.join("tandem.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\nudp = [\"127.0.0.1:0\"]\ntcp = []\n[api]\nlisten = \"127.0.0.1:0\"\n\
[control]\nlisten = \"127.0.0.1:0\"\n[media]\nport_min = {media_base}\nport_max = {}\n\
[mixer]\nport = 0\n",
            media_base + 999
        ),
    )
    .expect("config");
    (dir, config)
}

/// Registers `user` (password `USER-pw`) with SIPp from local UDP `port`.
pub fn sipp_register(dir: &Path, target: SocketAddr, user: &str, port: u16) {
    let register = std::fs::read_to_string(scenario("register_auth.xml"))
        .expect("scenario")
        .replace("EXPECT", "200");
    let file = dir.join(format!("register-{user}.xml"));
    std::fs::write(&file, register).expect("write");
    let out = sipp_command(&[
        target.to_string(),
        "-sf".into(),
        file.display().to_string(),
        "-s".into(),
        user.into(),
        "-au".into(),
        user.into(),
        "-ap".into(),
        format!("{user}-pw"),
        "-p".into(),
        port.to_string(),
        "-m".into(),
        "1".into(),
    ])
    .output()
    .expect("sipp");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{user} registers: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The value of an unlabelled metric in Prometheus text, 0 if absent.
pub fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(name)
                .and_then(|v| v.strip_prefix(' '))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The newest CDR, read from the store the platform writes.
pub fn newest_cdr(dir: &Path) -> store::Cdr {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = store::Store::open_in_dir(dir).await.expect("store");
        for _ in 0..50 {
            let cdrs = store
                .list_cdrs(&store::CdrFilter::default())
                .await
                .expect("cdrs");
            if let Some(c) = cdrs.into_iter().next() {
                return c;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("no CDR written");
    })
}
