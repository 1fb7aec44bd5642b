//! tandem's SIP stack against a real peer: SIPp (Debian's sip-tester) drives
//! `tandem sip serve` over real UDP and TCP sockets on loopback.
//!
//! SIPp exits 0 only when every call of the run succeeded, so each test runs
//! a bounded number of calls and asserts that exit status.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Serve {
    child: Child,
    udp: SocketAddr,
    tcp: Option<SocketAddr>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `tandem sip serve` on ephemeral loopback ports (UDP, and TCP when
/// asked) and waits for it to say which.
fn serve(tcp: bool, extra: &[&str]) -> Serve {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tandem"));
    cmd.args(["sip", "serve", "--udp", "127.0.0.1:0"]);
    if tcp {
        cmd.args(["--tcp", "127.0.0.1:0"]);
    }
    cmd.args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().expect("start tandem");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let (mut udp, mut tcp_addr) = (None, None);
    while udp.is_none() || (tcp && tcp_addr.is_none()) {
        let line = lines.next().expect("tandem exited early").expect("read");
        let mut parts = line.split_whitespace();
        if parts.next() != Some("listening") {
            continue;
        }
        let kind = parts.next().unwrap_or("");
        let addr: SocketAddr = parts.next().and_then(|a| a.parse().ok()).expect("address");
        match kind {
            "UDP" => udp = Some(addr),
            "TCP" => tcp_addr = Some(addr),
            _ => {}
        }
    }
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Serve {
        child,
        udp: udp.expect("udp"),
        tcp: tcp_addr,
    }
}

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

fn sipp_available() -> bool {
    let found = Command::new("sipp").arg("-v").output().is_ok();
    if !found && std::env::var_os("CI").is_some() {
        panic!("sipp (Debian package sip-tester) is required in CI");
    }
    if !found {
        eprintln!("sipp not installed: skipping (scripts/test.sh installs it)");
    }
    found
}

/// Runs SIPp to completion (killed after `limit`) and returns its exit code
/// and output.
fn sipp(target: SocketAddr, args: &[&str], limit: Duration) -> (i32, String) {
    let out = Command::new("timeout")
        .args(["-s", "KILL", &limit.as_secs().to_string(), "sipp"])
        .arg(target.to_string())
        .args([
            "-nostdin",
            "-i",
            "127.0.0.1",
            "-timeout",
            &format!("{}s", limit.as_secs().saturating_sub(5).max(5)),
        ])
        .args(args)
        .output()
        .expect("run sipp");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn assert_all_calls_succeeded((code, out): (i32, String), what: &str) {
    assert_eq!(
        code,
        0,
        "{what}: SIPp reported failed calls (exit {code}):\n{}",
        tail(&out)
    );
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

#[test]
fn options_over_udp_and_tcp() {
    if !sipp_available() {
        return;
    }
    let s = serve(true, &[]);
    let sf = scenario("options.xml");
    let sf = sf.to_str().expect("path");
    assert_all_calls_succeeded(
        sipp(
            s.udp,
            &["-sf", sf, "-m", "200", "-r", "100"],
            Duration::from_secs(40),
        ),
        "OPTIONS over UDP",
    );
    let tcp = s.tcp.expect("tcp").to_string();
    assert_all_calls_succeeded(
        sipp(
            tcp.parse().expect("addr"),
            &["-sf", sf, "-t", "t1", "-m", "200", "-r", "100"],
            Duration::from_secs(40),
        ),
        "OPTIONS over TCP",
    );
}

#[test]
fn calls_with_invite_ack_bye_over_udp_and_tcp() {
    if !sipp_available() {
        return;
    }
    let s = serve(true, &[]);
    // SIPp's own UAC: INVITE with SDP, 180/200, ACK, 200 ms of call, BYE.
    assert_all_calls_succeeded(
        sipp(
            s.udp,
            &[
                "-sn", "uac", "-s", "bob", "-m", "100", "-r", "50", "-d", "200",
            ],
            Duration::from_secs(40),
        ),
        "calls over UDP",
    );
    assert_all_calls_succeeded(
        sipp(
            s.tcp.expect("tcp"),
            &[
                "-sn", "uac", "-s", "bob", "-t", "t1", "-m", "100", "-r", "50", "-d", "200",
            ],
            Duration::from_secs(40),
        ),
        "calls over TCP",
    );
}

fn register_scenario(expect: u16) -> tempfile_path::TempPath {
    let text = std::fs::read_to_string(scenario("register_auth.xml")).expect("scenario");
    let mut text = text.replace("EXPECT", &expect.to_string());
    if expect != 200 {
        // Only a 200 echoes the binding with its expiry.
        text = text.replace(r#"check_it="true""#, r#"check_it="false""#);
    }
    tempfile_path::TempPath::write(&format!("register_{expect}.xml"), &text)
}

#[test]
fn register_with_digest_auth() {
    if !sipp_available() {
        return;
    }
    let s = serve(false, &["--user", "alice:s3cret", "--realm", "tandem.test"]);
    let ok = register_scenario(200);
    assert_all_calls_succeeded(
        sipp(
            s.udp,
            &[
                "-sf",
                ok.as_str(),
                "-s",
                "alice",
                "-au",
                "alice",
                "-ap",
                "s3cret",
                "-m",
                "20",
                "-r",
                "20",
            ],
            Duration::from_secs(30),
        ),
        "REGISTER with the right password",
    );
    let bad = register_scenario(403);
    assert_all_calls_succeeded(
        sipp(
            s.udp,
            &[
                "-sf",
                bad.as_str(),
                "-s",
                "alice",
                "-au",
                "alice",
                "-ap",
                "wrong",
                "-m",
                "5",
                "-r",
                "5",
            ],
            Duration::from_secs(30),
        ),
        "REGISTER with a wrong password gets 403",
    );
}

#[test]
fn cancel_while_ringing_and_busy() {
    if !sipp_available() {
        return;
    }
    let ringing = serve(false, &["--ring-ms", "5000"]);
    let sf = scenario("invite_cancel.xml");
    assert_all_calls_succeeded(
        sipp(
            ringing.udp,
            &[
                "-sf",
                sf.to_str().expect("path"),
                "-s",
                "bob",
                "-m",
                "10",
                "-r",
                "10",
            ],
            Duration::from_secs(30),
        ),
        "CANCEL before answer",
    );
    let busy = serve(false, &["--reject", "486"]);
    let sf = scenario("invite_busy.xml");
    assert_all_calls_succeeded(
        sipp(
            busy.udp,
            &[
                "-sf",
                sf.to_str().expect("path"),
                "-s",
                "bob",
                "-m",
                "10",
                "-r",
                "10",
            ],
            Duration::from_secs(30),
        ),
        "486 Busy Here",
    );
}

/// A flood of malformed requests from one address: the first ones are
/// answered with a 400 that names the fault, then the address is ignored,
/// and a well-behaved client on another socket is served throughout.
#[test]
fn garbage_flood_from_one_source_does_not_hurt_others() {
    if !sipp_available() {
        return;
    }
    let s = serve(false, &[]);
    let target = s.udp;
    let flooder = std::thread::spawn(move || {
        let sock = UdpSocket::bind("127.0.0.2:0").expect("bind flooder");
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let bad = "INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:9;branch=z9hG4bKflood\r\n\
From: <sip:x@y>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: flood\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n";
        let started = Instant::now();
        let mut sent = 0u32;
        // Bounded in count and time.
        while sent < 20_000 && started.elapsed() < Duration::from_secs(10) {
            if sock.send_to(bad.as_bytes(), target).is_ok() {
                sent += 1;
            }
        }
        let mut answers = Vec::new();
        let mut buf = [0u8; 2048];
        while let Ok((n, _)) = sock.recv_from(&mut buf) {
            answers.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        (sent, answers)
    });
    let sf = scenario("options.xml");
    let result = sipp(
        target,
        &["-sf", sf.to_str().expect("path"), "-m", "100", "-r", "50"],
        Duration::from_secs(40),
    );
    let (sent, answers) = flooder.join().expect("flooder");
    assert_all_calls_succeeded(result, "OPTIONS from another client during the flood");
    assert!(
        sent >= 1_000,
        "the flood was too small to mean anything ({sent})"
    );
    assert!(
        !answers.is_empty(),
        "the first bad requests must be answered"
    );
    assert!(
        answers
            .iter()
            .all(|a| a.starts_with("SIP/2.0 400 CSeq method does not match the request method")),
        "400s must name the fault: {:?}",
        answers.first()
    );
    // The guard's budget is a burst of 50 plus 10 a second: far fewer
    // answers than requests, so the flood cannot be reflected or amplified.
    assert!(
        answers.len() <= 200,
        "{} of {sent} bad requests answered",
        answers.len()
    );
}

/// A scenario written to a file of its own for one test.
mod tempfile_path {
    use std::path::PathBuf;

    pub struct TempPath(PathBuf);

    impl TempPath {
        pub fn write(name: &str, text: &str) -> TempPath {
            let dir = std::env::temp_dir().join(format!("tandem-sipp-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("temp dir");
            let path = dir.join(name);
            std::fs::write(&path, text).expect("write scenario");
            TempPath(path)
        }

        pub fn as_str(&self) -> &str {
            self.0.to_str().unwrap_or("")
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}
